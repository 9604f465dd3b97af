"""Flat keys (command-line flags, ``TRAEFIK_*`` environment variables) -> nested configuration.

Traefik's paerser rules, reproduced:

* flags are ``--a.b.c=value`` or ``--a.b.c value`` (one or two dashes); a flag naming a boolean
  or a section (``--api.insecure``, ``--api``, ``--entryPoints.web.http.tls``) needs no value
  and means ``true``; a section set to ``true`` is turned on with its defaults;
* path elements match field names case-insensitively; an element that is a map key (an entry
  point's name) is kept as written (``TRAEFIK_*`` names are lower-cased entirely, so entry point
  names from the environment are lower-case, as in Traefik);
* lists take comma-separated values (``--entryPoints.web.http.middlewares=a@file,b@file``; a
  repeated flag appends) and lists of sections take indexes (``...tls.domains[0].main=x``);
* values stay text; pydantic converts them to the field types.

The result is a nested ``dict`` for :meth:`StaticConfig.model_validate`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ferryman.errors import ConfigError
from ferryman.static.diagnostics import StaticConfigError, format_path, unknown_key
from ferryman.static.schema import Node, field_node, known_keys

__all__ = ["ENV_PREFIX", "FlatKey", "ParsedArgs", "decode_flat", "env_keys", "parse_args", "split_key"]

ENV_PREFIX = "TRAEFIK_"
CONFIG_FILE_KEY = "configfile"
COMMAND_LINE = "command line"
ENVIRONMENT = "environment"


@dataclass(frozen=True, slots=True)
class FlatKey:
    """One flat setting: path elements as written, the text value, and where it came from."""

    parts: tuple[str, ...]
    value: str
    origin: str


@dataclass(slots=True)
class ParsedArgs:
    config_file: str | None = None
    items: list[FlatKey] = field(default_factory=list)


class _Problem(Exception):
    def __init__(self, error: ConfigError) -> None:
        super().__init__(error.render())
        self.error = error


def split_key(key: str) -> tuple[str, ...]:
    """``entryPoints.web.http.tls.domains[0].main`` -> ``(..., "domains", "[0]", "main")``."""
    parts: list[str] = []
    for piece in key.split("."):
        if not piece:
            raise ValueError(f"empty element in key {key!r}")
        if piece[0] == "[":
            raise ValueError(f"a key element cannot start with '[' in {key!r} (write name[0])")
        if piece.endswith("]") and "[" in piece:
            left = piece.index("[")
            parts.extend((piece[:left], piece[left:]))
        else:
            parts.append(piece)
    return tuple(parts)


def _index(part: str) -> int | None:
    if len(part) >= 3 and part[0] == "[" and part[-1] == "]" and part[1:-1].isdigit():
        return int(part[1:-1])
    return None


# -- walking the schema along raw path elements ---------------------------------------------------


def _step(root: type[BaseModel], node: Node, loc: list[str | int], part: str, source: str,
          origin: str) -> tuple[str | int, Node]:
    """Resolve one raw path element under ``node``; returns the canonical key and the child node."""
    if node.kind == "model":
        if part.startswith("["):
            raise _Problem(ConfigError(f"unexpected list index {part} (in {origin})", source=source,
                                       path=format_path(loc)))
        found = field_node(node.model, part)
        if found is None:
            raise _Problem(unknown_key(root, loc, part, source=source, note=f"in {origin}"))
        return found
    if node.kind == "map":
        if part.startswith("["):
            raise _Problem(ConfigError(f"expected a name, got list index {part} (in {origin})",
                                       source=source, path=format_path(loc)))
        return part, node.child()
    if node.kind == "list":
        index = _index(part)
        if index is None:
            raise _Problem(ConfigError(
                f"expected a list index such as [0], got {part!r} (in {origin})", source=source,
                path=format_path(loc), fix=f"write {format_path(loc)}[0]..."))
        return index, node.child()
    if node.kind == "loose":
        return part, Node("loose")
    raise _Problem(ConfigError(f"is a value, it has no key {part!r} (in {origin})", source=source,
                               path=format_path(loc)))


def _walk(root: type[BaseModel], parts: Sequence[str]) -> tuple[Node, bool] | None:
    """The node at raw ``parts`` and whether it lies inside a free-form section; None if unknown."""
    node = Node("model", root)
    loc: list[str | int] = []
    inside_loose = False
    try:
        for part in parts:
            inside_loose = inside_loose or node.kind == "loose"
            key, node = _step(root, node, loc, part, COMMAND_LINE, "")
            loc.append(key)
    except _Problem:
        return None
    return node, inside_loose


def _is_switch(root: type[BaseModel], parts: Sequence[str]) -> bool | None:
    """Whether a flag needs no value (paerser: bool and pointer kinds): True for booleans and
    sections, False for other values, None when unknown (inside a free-form section)."""
    found = _walk(root, parts)
    if found is None:
        return False
    node, inside_loose = found
    if inside_loose:
        return None
    return node.kind in ("model", "loose") or (node.kind == "scalar" and node.inner is bool)


# -- flags and environment ------------------------------------------------------------------------


def parse_args(root: type[BaseModel], args: Sequence[str]) -> ParsedArgs:
    """Split command-line arguments into ``--configFile`` and flat settings.

    Raises :class:`StaticConfigError` for malformed flags and stray arguments.
    """
    parsed = ParsedArgs()
    problems: list[ConfigError] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            if i < len(args):
                problems.append(ConfigError(f"unexpected arguments {list(args[i:])!r}", source=COMMAND_LINE))
            break
        if len(arg) < 2 or arg[0] != "-":
            problems.append(ConfigError(f"unexpected argument {arg!r}", source=COMMAND_LINE,
                                        fix="flags look like --entryPoints.web.address=:80"))
            continue
        name = arg[2:] if arg.startswith("--") else arg[1:]
        if not name or name[0] in "-=":
            problems.append(ConfigError(f"bad flag syntax: {arg}", source=COMMAND_LINE))
            continue
        name, eq, value = name.partition("=")
        if name.lower() == CONFIG_FILE_KEY:
            if not eq:
                if i >= len(args):
                    problems.append(ConfigError(f"flag needs an argument: {arg}", source=COMMAND_LINE))
                    continue
                value = args[i]
                i += 1
            parsed.config_file = value
            continue
        try:
            parts = split_key(name)
        except ValueError as exc:
            problems.append(ConfigError(f"bad flag {arg}: {exc}", source=COMMAND_LINE))
            continue
        if not eq:
            switch = _is_switch(root, parts)
            has_next = i < len(args) and not args[i].startswith("-")
            if switch or (switch is None and not has_next):
                value = "true"
            elif has_next:
                value = args[i]
                i += 1
            elif _walk(root, parts) is None:
                value = ""  # unknown key: reported (with a hint) when decoding
            else:
                problems.append(ConfigError(f"flag needs an argument: {arg}", source=COMMAND_LINE,
                                            fix=f"write {arg}=VALUE"))
                continue
        parsed.items.append(FlatKey(parts, value, arg.partition("=")[0]))
    if problems:
        raise StaticConfigError(problems)
    return parsed


def env_keys(root: type[BaseModel], env: Mapping[str, str]) -> tuple[list[FlatKey], list[str]]:
    """The ``TRAEFIK_*`` settings in ``env`` and the names of variables Traefik's loader ignores.

    As Traefik, a variable counts when its name starts with ``TRAEFIK_`` followed by a top-level
    key (``TRAEFIK_ENTRYPOINTS_...``, ``TRAEFIK_API...``); the rest of the name is lower-cased and
    ``_`` separates path elements. Names are matched case-insensitively.
    ``TRAEFIK_CONFIGFILE`` is returned among the ignored names (Traefik reads ``--configFile``
    from the command line only).
    """
    prefixes = tuple(ENV_PREFIX + key.upper() for key in (*known_keys(root), CONFIG_FILE_KEY))
    items: list[FlatKey] = []
    ignored: list[str] = []
    for name in sorted(env):
        upper = name.upper()
        if not upper.startswith(prefixes):
            continue
        key = name[len(ENV_PREFIX):].lower().replace("_", ".")
        if key == CONFIG_FILE_KEY:
            ignored.append(name)
            continue
        try:
            parts = split_key(key)
        except ValueError:
            parts = (key,)
        items.append(FlatKey(parts, env[name], name))
    return items, ignored


# -- decoding ---------------------------------------------------------------------------------------

_OFF = object()


def _set_leaf(container: dict[Any, Any], key: str | int, node: Node, item: FlatKey, loc: list[str | int],
              source: str, inside_loose: bool) -> None:
    path = format_path(loc)
    value = item.value
    if inside_loose or node.kind == "scalar":
        container[key] = value
        return
    if node.kind in ("model", "loose"):
        switch = value.strip().lower()
        if switch in ("true", ""):
            if not isinstance(container.get(key), dict):
                container[key] = {}
        elif switch == "false" and node.optional:
            container[key] = _OFF
        else:
            expected = "true or false" if node.optional else "true"
            raise _Problem(ConfigError(
                f"is a section: expected {expected} (turns it on), got {value!r} (in {item.origin})",
                source=source, path=path, fix=f"set its keys instead, e.g. {path}.<key>=VALUE"))
        return
    if node.kind == "map":
        raise _Problem(ConfigError(f"is a map of named sections, got a value {value!r} (in {item.origin})",
                                   source=source, path=path, fix=f"write {path}.<name>.<key>=VALUE"))
    # a list
    if node.child().kind in ("model", "map", "list"):
        raise _Problem(ConfigError(f"is a list of sections, got a value {value!r} (in {item.origin})",
                                   source=source, path=path, fix=f"write {path}[0].<key>=VALUE"))
    values = [v.strip() for v in value.split(",") if v.strip()]
    existing = container.get(key)
    container[key] = [*existing, *values] if isinstance(existing, list) else values


def _insert(root: type[BaseModel], tree: dict[Any, Any], item: FlatKey, source: str) -> None:
    # Resolve the whole path first, so that a bad key leaves the tree untouched.
    steps: list[tuple[str | int, Node, Node, bool]] = []  # key, parent node, child node, inside loose
    node = Node("model", root)
    loc: list[str | int] = []
    inside_loose = False
    for part in item.parts:
        inside_loose = inside_loose or node.kind == "loose"
        key, child = _step(root, node, loc, part, source, item.origin)
        steps.append((key, node, child, inside_loose))
        loc.append(key)
        node = child

    container = tree
    loc = []
    for n, (key, parent, child, loose) in enumerate(steps):
        if parent.kind == "map" and isinstance(key, str):
            # paerser merges map keys case-insensitively; the first spelling wins.
            key = next((k for k in container if isinstance(k, str) and k.lower() == key.lower()), key)
        loc.append(key)
        if n == len(steps) - 1:
            _set_leaf(container, key, child, item, loc, source, loose)
            return
        nxt = container.get(key)
        if not isinstance(nxt, dict):
            nxt = {}
            container[key] = nxt
        container = nxt


def _finish(value: Any) -> Any:
    if isinstance(value, dict):
        items = {k: _finish(v) for k, v in value.items() if v is not _OFF}
        if items and all(isinstance(k, int) for k in items):
            return [items[k] for k in sorted(items)]
        return items
    return value


def decode_flat(root: type[BaseModel], items: Sequence[FlatKey],
                source: str) -> tuple[dict[str, Any], list[ConfigError]]:
    """Build the nested configuration for ``root`` from flat settings.

    Returns the configuration built from the usable settings and one problem per unknown key or
    misplaced value, so that the caller can validate the rest and report everything together.
    """
    tree: dict[Any, Any] = {}
    problems: list[ConfigError] = []
    for item in items:
        try:
            _insert(root, tree, item, source)
        except _Problem as problem:
            problems.append(problem.error)
    result: dict[str, Any] = _finish(tree)
    return result, problems
