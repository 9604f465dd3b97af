"""Walk the models' schema by key path: used to decode flat keys and to explain errors.

Flags and environment variables lose the structure of the configuration
(``--entryPoints.web.http.tls.domains[0].main``), so they are decoded against the models: a path
element is a field (matched case-insensitively), a map key (kept as written), or a list index.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from ferryman.static.base import key_map

__all__ = ["Node", "closest", "field_node", "node_of", "resolve"]

Kind = Literal["model", "map", "list", "loose", "scalar"]


@dataclass(frozen=True, slots=True)
class Node:
    """What sits at a key path: a model, a map (``Mapping[str, X]``), a list, a free-form section
    (``dict[str, Any]``), or a scalar. ``optional`` is True for sections that are off when absent
    (``X | None``), which a bare flag (``--api``) turns on."""

    kind: Kind
    inner: Any = None  # model class; value Node annotation for map/list; scalar type
    optional: bool = False

    @property
    def model(self) -> type[BaseModel]:
        assert self.kind == "model"
        cls: type[BaseModel] = self.inner
        return cls

    def child(self) -> Node:
        """The element node of a map or a list."""
        assert self.kind in ("map", "list")
        return node_of(self.inner)


def node_of(annotation: Any) -> Node:
    """Classify a (pydantic field) annotation."""
    optional = False
    ann = annotation
    while True:
        origin = get_origin(ann)
        if origin is Annotated:
            ann = get_args(ann)[0]
            continue
        if origin is Union or origin is types.UnionType:
            members = [a for a in get_args(ann) if a is not type(None)]
            if len(members) != len(get_args(ann)):
                optional = True
            if len(members) == 1:
                ann = members[0]
                continue
            return Node("scalar", ann, optional)
        break
    origin = get_origin(ann)
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return Node("model", ann, optional)
    if origin in (dict, Mapping) or ann is dict:
        args = get_args(ann)
        value = args[1] if len(args) == 2 else Any
        if value is Any:
            return Node("loose", None, optional)
        return Node("map", value, optional)
    if origin in (list, tuple, Sequence) or ann in (list, tuple):
        args = get_args(ann)
        return Node("list", args[0] if args else Any, optional)
    return Node("scalar", ann, optional)


def field_node(model: type[BaseModel], key: str) -> tuple[str, Node] | None:
    """The alias and node of ``model``'s field named ``key`` (case-insensitive), or None."""
    alias = key_map(model).get(key.lower())
    if alias is None:
        return None
    for name, info in model.model_fields.items():
        if (info.alias or name) == alias:
            # pydantic keeps Annotated metadata apart; only the bare annotation matters here
            return alias, node_of(info.annotation)
    return None  # pragma: no cover - key_map only holds existing fields


def known_keys(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def closest(key: str, candidates: Sequence[str]) -> str | None:
    """The candidate nearest to ``key`` (case-insensitive), for "did you mean" hints."""
    lowered = {c.lower(): c for c in candidates}
    found = difflib.get_close_matches(key.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[found[0]] if found else None


def resolve(root: type[BaseModel], loc: Sequence[str | int]) -> Node | None:
    """The node at ``loc`` (aliases, map keys, list indexes) under ``root``, or None if unknown."""
    node = Node("model", root)
    for part in loc:
        if node.kind == "model":
            if not isinstance(part, str):
                return None
            found = field_node(node.model, part)
            if found is None:
                return None
            node = found[1]
        elif node.kind in ("map", "list"):
            node = node.child()
        elif node.kind == "loose":
            return node
        else:
            return None
    return node
