"""Value types shared by static and dynamic configuration (pure, no I/O)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(value: Any) -> float:
    """Parse a Traefik duration into seconds.

    Traefik accepts Go duration strings (``"1m30s"``, ``"100ms"``, ``"-1s"``) and bare numbers,
    which mean **seconds** (``types.Duration`` unmarshalling). Raises ``ValueError`` with the fix.
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as \"10s\", got a boolean")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as \"10s\", got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise ValueError("empty duration (write e.g. \"10s\" or \"100ms\")")
    try:
        return float(text)
    except ValueError:
        pass
    sign = 1.0
    if text[0] in "+-":
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    pos = 0
    total = 0.0
    while pos < len(text):
        m = _PART.match(text, pos)
        if not m:
            raise ValueError(f"invalid duration {value!r} (write e.g. \"10s\", \"1m30s\", \"250ms\")")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def format_duration(seconds: float) -> str:
    """Render seconds the way Go prints a ``time.Duration`` (good enough for the API and logs)."""
    if seconds == 0:
        return "0s"
    if abs(seconds) < 1:
        ms = seconds * 1000
        return f"{ms:g}ms"
    return f"{seconds:g}s"


def go_duration_ns(ns: int) -> str:
    """Go's ``time.Duration.String()`` for a duration in nanoseconds (``"1m0s"``, ``"100ms"``)."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_frac(ns, 1000)}µs"
    if ns < _SECOND_NS:
        return f"{sign}{_frac(ns, 1_000_000)}ms"
    hours, rest = divmod(ns, 3600 * _SECOND_NS)
    minutes, rest = divmod(rest, 60 * _SECOND_NS)
    out = sign
    if hours:
        out += f"{hours}h{minutes}m"
    elif minutes:
        out += f"{minutes}m"
    return out + f"{_frac(rest, _SECOND_NS)}s"


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()`` for a duration in seconds."""
    return go_duration_ns(round(seconds * 1e9))


_SECOND_NS = 1_000_000_000


def _frac(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{frac:0{digits}d}".rstrip("0")


#: A duration in seconds, accepting Traefik's string and number forms.
Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)]
