"""The one error tree of ferryman.

Every error a user can see carries *where* (file, key path, provider, element name) and, when we
know it, *the fix*. Messages are written for the operator reading a log line, not for a developer.
"""

from __future__ import annotations


class FerrymanError(Exception):
    """Base of every error ferryman raises on purpose."""


class ConfigError(FerrymanError):
    """A configuration value that cannot be used.

    ``source`` names where it came from (a file path, ``"command line"``, ``"environment"``,
    a provider such as ``"docker"``); ``path`` is the dotted key path (``entryPoints.web.address``);
    ``fix`` is a short hint on how to repair it.
    """

    def __init__(self, message: str, *, source: str | None = None, path: str | None = None,
                 fix: str | None = None) -> None:
        self.message = message
        self.source = source
        self.path = path
        self.fix = fix
        super().__init__(self.render())

    def render(self) -> str:
        parts: list[str] = []
        if self.source:
            parts.append(self.source)
        if self.path:
            parts.append(self.path)
        head = ": ".join(parts)
        text = f"{head}: {self.message}" if head else self.message
        if self.fix:
            text += f" (fix: {self.fix})"
        return text


class RuleError(ConfigError):
    """A router rule that does not parse or does not compile; points at the column."""

    def __init__(self, message: str, *, rule: str, column: int, fix: str | None = None) -> None:
        self.rule = rule
        self.column = column  # 0-based offset into ``rule``
        super().__init__(message, fix=fix)

    def render(self) -> str:
        # Show only the line holding the column (rules may span lines in YAML block scalars).
        start = self.rule.rfind("\n", 0, max(self.column, 0)) + 1
        end = self.rule.find("\n", start)
        line = self.rule[start:] if end < 0 else self.rule[start:end]
        col = max(self.column, 0) - start
        where = f"column {col + 1}" if start == 0 else f"line {self.rule.count(chr(10), 0, start) + 1}, column {col + 1}"
        text = f"{self.message} at {where}\n    {line}\n    {' ' * col}^"
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class ProtocolError(FerrymanError):
    """A malformed request or response; ``status_hint`` is what to answer the client with."""

    def __init__(self, message: str, status_hint: int = 400) -> None:
        self.status_hint = status_hint
        super().__init__(message)


class UpstreamError(FerrymanError):
    """A backend that could not be reached or answered badly (becomes 502/504)."""

    def __init__(self, message: str, status_hint: int = 502) -> None:
        self.status_hint = status_hint
        super().__init__(message)
