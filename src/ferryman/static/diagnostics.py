"""Readable static-configuration errors: where, which key, what was wrong, how to fix it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from ferryman.errors import ConfigError
from ferryman.static.base import HintedValueError
from ferryman.static.schema import closest, known_keys, resolve

__all__ = ["StaticConfigError", "format_path", "unknown_key", "validation_problems"]


class StaticConfigError(ConfigError):
    """One or more static configuration problems, all reported together (one per line).

    ``problems`` holds one :class:`ConfigError` per problem, each with ``source``, ``path`` and,
    when known, ``fix``. The first problem's fields are also this error's own.
    """

    def __init__(self, problems: Sequence[ConfigError]) -> None:
        if not problems:
            raise ValueError("StaticConfigError needs at least one problem")
        self.problems: list[ConfigError] = list(problems)
        first = self.problems[0]
        super().__init__(first.message, source=first.source, path=first.path, fix=first.fix)

    def render(self) -> str:
        return "\n".join(problem.render() for problem in self.problems)


def format_path(loc: Sequence[str | int]) -> str:
    """``("entryPoints", "web", "http", "tls", "domains", 0, "main")`` ->
    ``entryPoints.web.http.tls.domains[0].main``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def unknown_key(root: type[BaseModel], loc: Sequence[str | int], key: str, *, source: str,
                note: str = "") -> ConfigError:
    """An "unknown key" error for ``key`` under ``loc``, with the closest known key as the fix."""
    node = resolve(root, loc)
    candidates = known_keys(node.model) if node is not None and node.kind == "model" else []
    guess = closest(key, candidates)
    if guess is not None:
        fix = f'did you mean "{guess}"?'
    elif candidates:
        fix = "known keys here: " + ", ".join(candidates)
    else:
        fix = None
    message = "unknown key" + (f" ({note})" if note else "")
    return ConfigError(message, source=source, path=format_path([*loc, key]), fix=fix)


_EXPECTED = {
    "bool_parsing": "a boolean (true or false)",
    "bool_type": "a boolean (true or false)",
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "string_type": "a string",
    "dict_type": "a mapping of keys to values",
    "model_type": "a mapping of keys to values",
    "model_attributes_type": "a mapping of keys to values",
    "mapping_type": "a mapping of keys to values",
    "list_type": "a list",
    "tuple_type": "a list",
    "iterable_type": "a list",
}


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _problem(root: type[BaseModel], err: ErrorDetails, source: str) -> ConfigError:
    loc = [p for p in err["loc"] if isinstance(p, str | int)]
    kind = err["type"]
    if kind == "extra_forbidden":
        return unknown_key(root, loc[:-1], str(loc[-1]), source=source)
    path = format_path(loc) or None
    if kind == "missing":
        return ConfigError("missing required key", source=source, path=path,
                           fix=f"set {path}" if path else None)
    value = err.get("input")
    if kind in _EXPECTED:
        return ConfigError(f"expected {_EXPECTED[kind]}, got {_show(value)}", source=source, path=path)
    if kind == "literal_error":
        expected = str((err.get("ctx") or {}).get("expected", ""))
        guess = closest(str(value), re.findall(r"'([^']*)'", expected))
        return ConfigError(f"expected one of {expected}, got {_show(value)}", source=source, path=path,
                           fix=f'did you mean "{guess}"?' if guess else None)
    if kind in ("value_error", "assertion_error"):
        msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, HintedValueError):
            return ConfigError(msg, source=source, path=path, fix=cause.fix)
        if isinstance(value, dict | list) or _show(value) in msg:
            return ConfigError(msg, source=source, path=path)
        return ConfigError(f"invalid value {_show(value)}: {msg}", source=source, path=path)
    return ConfigError(f"{err['msg']} (got {_show(value)})", source=source, path=path)


def validation_problems(root: type[BaseModel], exc: ValidationError, source: str) -> list[ConfigError]:
    """One readable :class:`ConfigError` per pydantic error, in input order."""
    return [_problem(root, err, source) for err in exc.errors(include_url=False)]
