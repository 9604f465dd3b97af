"""Base model for configuration: frozen values, Traefik key names, case-insensitive keys."""

from __future__ import annotations

from typing import Any

# One base for static and dynamic configuration: frozen values, Traefik's camelCase keys matched
# case-insensitively (two spellings of one key are an error), unknown keys rejected.
from ferryman.static.base import Model

__all__ = ["Model", "empty_section"]

def empty_section(value: Any) -> Any:
    """Traefik enables an option section by its mere presence (``tls: {}``, label ``...tls=true``)."""
    if value is True or value is None or value == "":
        return {}
    if value is False:
        return None
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return {} if value.lower() == "true" else None
    return value
