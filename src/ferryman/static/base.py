"""The base of every static-configuration model: frozen, strict about keys, lenient about case.

Traefik decodes its configuration with *paerser*, which matches key names case-insensitively
(``entryPoints``, ``entrypoints`` and ``ENTRYPOINTS`` are one key) while map keys such as an entry
point's name keep the case they were written in. :class:`Model` reproduces that: a
``model_validator(mode="before")`` folds the incoming keys of a mapping onto the field aliases
(Traefik's camelCase names) case-insensitively, then pydantic validates as usual, with unknown
keys rejected (``extra="forbid"``).

Other packages may subclass :class:`Model` for their own Traefik-shaped sections.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator
from pydantic.alias_generators import to_camel

__all__ = ["HintedValueError", "Model", "StrList", "choices", "split_commas", "strip_nulls"]

@functools.cache
def key_map(cls: type[BaseModel]) -> Mapping[str, str]:
    """Map every lower-cased alias (and Python field name) of ``cls`` to the field's alias."""
    found: dict[str, str] = {}
    for name, field in cls.model_fields.items():
        alias = field.alias or name
        found.setdefault(name.lower(), alias)
        found[alias.lower()] = alias
    return found


class Model(BaseModel):
    """A frozen configuration value with Traefik's key names matched case-insensitively.

    * field names are snake_case; their aliases are Traefik's camelCase keys (``to_camel``, or an
      explicit ``Field(alias=...)`` where Traefik spells it differently, e.g. ``graceTimeOut``);
    * both the alias and the Python name are accepted (``populate_by_name``);
    * unknown keys are errors; two keys that fold onto the same field are an error too;
    * numbers are accepted where a string is expected (``address: 8080`` in YAML), as Traefik
      turns every scalar into text before decoding it.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        populate_by_name=True,
        alias_generator=to_camel,
        coerce_numbers_to_str=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _fold_keys(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        keys = key_map(cls)
        out: dict[Any, Any] = {}
        origin: dict[Any, Any] = {}
        for key, value in data.items():
            canon = key
            if isinstance(key, str) and key not in cls.model_fields:
                canon = keys.get(key.lower(), key)
            if canon in out:
                raise ValueError(
                    f'keys "{origin[canon]}" and "{key}" are the same key (keys are case-insensitive); '
                    "keep only one"
                )
            out[canon] = value
            origin[canon] = key
        return out


def split_commas(value: Any) -> Any:
    """Traefik accepts a comma-separated string wherever it expects a list of scalars."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


#: A list of strings; also accepts ``"a,b"``.
StrList = Annotated[tuple[str, ...], BeforeValidator(split_commas)]


def strip_nulls(value: Any) -> Any:
    """Drop ``null`` values from mappings, recursively.

    Traefik's file decoder skips keys whose value is null (``api:`` alone does *not* enable the
    API; ``api: {}`` does), so a null is the same as an absent key.
    """
    if isinstance(value, Mapping):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_nulls(v) for v in value if v is not None]
    return value


class HintedValueError(ValueError):
    """A validation failure that knows the fix (shown as "fix: ..." in the error report)."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


def choices(*allowed: str) -> BeforeValidator:
    """Accept one of ``allowed`` case-insensitively and return its canonical spelling.

    Use with the matching ``Literal``: ``Annotated[Literal["v3", "v2"], choices("v3", "v2")]``.
    A wrong value is reported with the choices and the closest one.
    """
    canon = {value.lower(): value for value in allowed}

    def check(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        found = canon.get(value.strip().lower())
        if found is not None:
            return found
        guess = difflib.get_close_matches(value.lower(), list(canon), n=1, cutoff=0.6)
        raise HintedValueError(
            "expected one of " + ", ".join(f'"{v}"' for v in allowed) + f", got {value!r}",
            fix=f'did you mean "{canon[guess[0]]}"?' if guess else None,
        )

    fn: Callable[[Any], Any] = check
    return BeforeValidator(fn)
