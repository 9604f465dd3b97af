"""JSON the way Traefik's Go code writes it.

* :func:`encode`: ``encoding/json`` bytes -- compact, UTF-8, ``<``, ``>``, ``&``, U+2028 and U+2029
  escaped (Go's default HTML-safe escaping, so a rule ``A && B`` reads ``A \\u0026\\u0026 B``).
* :func:`go_duration`: ``time.Duration.String()`` (``"1m0s"``, ``"100ms"``).
* :func:`go_fields`: a configuration model as Go's encoder writes the matching Traefik struct with
  ``omitempty`` tags: fields in declaration order under their Traefik key, zero values (``false``,
  ``0``, ``""``, empty lists and maps, ``None``) left out, nested sections kept even when empty
  (a non-nil pointer), durations as Go durations.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from pydantic import BaseModel

from ferryman.types import format_duration, go_duration

__all__ = ["encode", "go_duration", "go_fields", "go_time"]

_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
            ("\u2029", "\\u2029"))


def encode(value: Any, *, newline: bool = True) -> bytes:
    """Go's ``json.NewEncoder(w).Encode(value)`` (``newline``) or ``json.Marshal(value)``."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for raw, escaped in _ESCAPES:
        if raw in text:
            text = text.replace(raw, escaped)
    return (text + "\n" if newline else text).encode()


def go_time(ts: float) -> str:
    """A UNIX timestamp as Go's ``time.Time`` JSON (RFC 3339, nanoseconds, zeros trimmed, UTC)."""
    import datetime

    whole = int(ts)
    frac = round((ts - whole) * 1e9)
    if frac >= 10**9:
        whole, frac = whole + 1, 0
    stamp = datetime.datetime.fromtimestamp(whole, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        stamp += f".{frac:09d}".rstrip("0")
    return stamp + "Z"


def _is_duration(field: Any) -> bool:
    return any(getattr(m, "func", None) is format_duration for m in field.metadata)


def _empty(value: Any) -> bool:
    if value is None or value is False:
        return True
    if isinstance(value, int | float | str | tuple | list | dict | Mapping) and not isinstance(value, bool):
        return not value
    return False


def go_fields(model: BaseModel, *, always: Collection[str] = (), only_if_set: Collection[str] = ()) -> dict[str, Any]:
    """``model`` as Go's encoder writes the Traefik struct (see the module docstring).

    ``always``: keys written even when zero (Traefik's ``*bool`` fields such as ``passHostHeader``
    and ``sanitizePath``). ``only_if_set``: keys written only when the configuration sets them
    (Traefik has no default for them: a nil pointer)."""
    out: dict[str, Any] = {}
    cls = type(model)
    for name, field in cls.model_fields.items():
        key = field.alias or name
        value = getattr(model, name)
        if key in only_if_set and name not in model.model_fields_set:
            continue
        if _is_duration(field) and isinstance(value, int | float):
            if value or key in always:
                out[key] = go_duration(float(value))
            continue
        if isinstance(value, BaseModel):
            out[key] = go_fields(value, always=always, only_if_set=only_if_set)
            continue
        if key not in always and _empty(value):
            continue
        out[key] = _plain(value, always, only_if_set)
    return out


def _plain(value: Any, always: Collection[str], only_if_set: Collection[str]) -> Any:
    if isinstance(value, BaseModel):
        return go_fields(value, always=always, only_if_set=only_if_set)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, always, only_if_set) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v, always, only_if_set) for v in value]
    return value
