"""ferryman's own logs (``log.*``), shaped like Traefik's zerolog output, on stdlib ``logging``.

* levels as Traefik: TRACE, DEBUG, INFO, WARN, ERROR, FATAL, PANIC (and DISABLED);
* ``format: common`` -> zerolog's console style, one line per record, fields sorted::

      2026-11-25T18:00:00Z INF Configuration loaded from file path=/etc/traefik/traefik.yml

  At DEBUG and TRACE the caller is shown as zerolog does: ``... DBG ferryman/app.py:42 > msg``.
* ``format: json`` -> one JSON object per line: ``level`` (lower-case, as zerolog), ``time``,
  ``message`` and the structured fields;
* ``filePath`` -> append to that file instead of stdout; colours are never used (``noColor``).

Structured fields travel in ``extra={"fields": {...}}``::

    log = get_logger("ferryman.providers.file")
    log.info("Configuration loaded", extra={"fields": {"providerName": "file"}})
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

__all__ = ["LEVELS", "PANIC", "TRACE", "get_logger", "reopen_log_files", "setup_logging"]

TRACE = 5
PANIC = logging.CRITICAL + 10
_DISABLED = PANIC + 100

#: Traefik level name -> stdlib level number.
LEVELS: dict[str, int] = {
    "TRACE": TRACE,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
    "PANIC": PANIC,
    "DISABLED": _DISABLED,
}

# zerolog's console abbreviations and JSON names, by stdlib level (nearest lower wins).
_SHORT = ((PANIC, "PNC", "panic"), (logging.CRITICAL, "FTL", "fatal"), (logging.ERROR, "ERR", "error"),
          (logging.WARNING, "WRN", "warn"), (logging.INFO, "INF", "info"), (logging.DEBUG, "DBG", "debug"),
          (0, "TRC", "trace"))


class LogSettings(Protocol):
    """What :func:`setup_logging` reads (``ferryman.static.models.Log`` satisfies it)."""

    @property
    def level(self) -> str: ...
    @property
    def format(self) -> str: ...
    @property
    def file_path(self) -> str: ...


def _names(levelno: int) -> tuple[str, str]:
    for threshold, short, long in _SHORT:
        if levelno >= threshold:
            return short, long
    return "TRC", "trace"  # pragma: no cover - threshold 0 always matches non-negative levels


def _time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


def _caller(record: logging.LogRecord) -> str:
    path = record.pathname.replace("\\", "/")
    marker = path.rfind("/ferryman/")
    short = path[marker + 1:] if marker >= 0 else path.rsplit("/", 1)[-1]
    return f"{short}:{record.lineno}"


def _console_value(value: Any) -> str:
    if isinstance(value, str):
        if value and not any(c.isspace() or c in '"\\=' or ord(c) < 0x20 for c in value):
            return value
        return json.dumps(value, ensure_ascii=False)
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except ValueError:
        return json.dumps(str(value), ensure_ascii=False)


class CommonFormatter(logging.Formatter):
    """zerolog ConsoleWriter style: ``<time> <LVL> [caller >] <message> key=value ...``."""

    def __init__(self, show_caller: bool = False) -> None:
        super().__init__()
        self.show_caller = show_caller

    def format(self, record: logging.LogRecord) -> str:
        short, _ = _names(record.levelno)
        parts = [_time(record), short]
        if self.show_caller:
            parts.append(f"{_caller(record)} >")
        parts.append(record.getMessage())
        fields = _fields(record)
        if record.exc_info and record.exc_info[1] is not None:
            fields.setdefault("error", str(record.exc_info[1]))
        error = fields.pop("error", None)
        if error is not None:
            parts.append(f"error={_console_value(error)}")
        parts.extend(f"{key}={_console_value(fields[key])}" for key in sorted(fields))
        line = " ".join(part for part in parts if part)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ``level``, ``time``, the fields, ``message``."""

    def __init__(self, show_caller: bool = False) -> None:
        super().__init__()
        self.show_caller = show_caller

    def format(self, record: logging.LogRecord) -> str:
        _, long = _names(record.levelno)
        out: dict[str, Any] = {"level": long, "time": _time(record)}
        for key, value in _fields(record).items():
            if key not in ("level", "time", "message"):
                out[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            out.setdefault("error", str(record.exc_info[1]))
            out["stack"] = self.formatException(record.exc_info)
        if self.show_caller:
            out["caller"] = _caller(record)
        out["message"] = record.getMessage()
        return json.dumps(out, ensure_ascii=False, default=str)


class _StreamHandler(logging.StreamHandler[TextIO]):
    """The handler :func:`setup_logging` installs for a stream (a second call replaces it)."""


class _FileHandler(logging.FileHandler):
    """The handler :func:`setup_logging` installs for ``log.filePath``."""


_OURS = (_StreamHandler, _FileHandler)


def setup_logging(log_config: LogSettings, *, stream: TextIO | None = None) -> None:
    """Configure the root logger from ``log`` settings (idempotent: replaces what it set before).

    ``stream`` overrides stdout (tests); ``log_config.file_path`` wins over both.
    """
    logging.addLevelName(TRACE, "TRACE")
    logging.addLevelName(PANIC, "PANIC")
    level_name = str(log_config.level).upper()
    if level_name not in LEVELS:
        raise ValueError(f"unknown log level {log_config.level!r} (known: {', '.join(LEVELS)})")
    level = LEVELS[level_name]
    show_caller = level <= logging.DEBUG
    formatter: logging.Formatter
    if str(log_config.format).lower() == "json":
        formatter = JSONFormatter(show_caller)
    else:
        formatter = CommonFormatter(show_caller)

    handler: logging.Handler
    if log_config.file_path:
        handler = _FileHandler(log_config.file_path, mode="a", encoding="utf-8")
    else:
        handler = _StreamHandler(stream if stream is not None else sys.stdout)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, _OURS):
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)
    root.setLevel(level)


def get_logger(name: str) -> logging.Logger:
    """A logger under ``ferryman`` (``get_logger("watcher")`` -> ``ferryman.watcher``)."""
    if name != "ferryman" and not name.startswith("ferryman."):
        name = f"ferryman.{name}"
    return logging.getLogger(name)


def reopen_log_files() -> None:
    """Close the ``log.filePath`` file; the next record opens it again (SIGUSR1 after logrotate)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _FileHandler):
            with handler.lock or contextlib.nullcontext():
                stream = handler.stream
                if stream is not None:
                    handler.stream = None  # FileHandler opens it again on the next emit
                    stream.close()
