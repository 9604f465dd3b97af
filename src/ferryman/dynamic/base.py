"""Base model for configuration: frozen values, Traefik key names, case-insensitive keys."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.alias_generators import to_camel

#: Per model class: lower-cased key -> the key as the model spells it.
_KEY_MAPS: dict[type, dict[str, str]] = {}


class Model(BaseModel):
    """A frozen configuration value.

    Keys are Traefik's (camelCase aliases) and are matched case-insensitively, as Traefik's own
    decoder does (``entrypoints`` and ``entryPoints`` are the same key). Unknown keys are errors.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        populate_by_name=True,
        alias_generator=to_camel,
        validate_default=False,
    )

    @classmethod
    def _key_map(cls) -> dict[str, str]:
        folded = _KEY_MAPS.get(cls)
        if folded is None:
            folded = {}
            for name, field in cls.model_fields.items():
                alias = field.alias or name
                folded[alias.lower()] = alias
                folded[name.lower()] = alias
            _KEY_MAPS[cls] = folded
        return folded

    @model_validator(mode="before")
    @classmethod
    def _fold_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        keys = cls._key_map()
        out: dict[str, Any] = {}
        for key, value in data.items():
            canon = keys.get(str(key).lower(), key) if isinstance(key, str) else key
            out[canon] = value
        return out


def empty_section(value: Any) -> Any:
    """Traefik enables an option section by its mere presence (``tls: {}``, label ``...tls=true``)."""
    if value is True or value is None or value == "":
        return {}
    if value is False:
        return None
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return {} if value.lower() == "true" else None
    return value
