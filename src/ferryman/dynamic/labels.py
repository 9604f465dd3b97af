"""Traefik's flat label grammar → the nested raw mapping :func:`validate_elements` takes.

Pure. Shared by the label providers (Docker) and, with another separator, the KV providers::

    traefik.http.routers.web.rule=Host(`a.example`)          → {"http": {"routers": {"web": {"rule": ...}}}}
    traefik.http.routers.web.tls=true                        → ... "tls": "true"   (enables an empty section)
    traefik.http.routers.web.tls.domains[0].main=a.example   → ... "tls": {"domains": [{"main": ...}]}
    traefik.http.middlewares.h.headers.customrequestheaders.X-Foo=bar   (map key as a path element)

Rules, as Traefik's paerser reads labels:

* only ``traefik.http.*``, ``traefik.tcp.*``, ``traefik.udp.*`` and ``traefik.tls.*`` are
  configuration; every other label (``traefik.enable``, ``traefik.docker.network``,
  ``traefik.docker.allownonrunning``, ``traefik.tags``, ...) is left to the caller;
* path elements are matched case-insensitively: two labels whose keys differ only in case name
  the same node (the first spelling is kept, so element names keep the case first written);
  the models fold key names onto their aliases;
* values stay strings; comma lists are split by the models (``StrList``);
* ``name[n]`` is element ``n`` of a list (indices need not be contiguous; they are sorted);
* a key given both a value and sub-keys (``tls=true`` and ``tls.certresolver=le``) keeps the
  sub-keys: the value only enabled the section.

A label that does not parse becomes a :class:`LabelError` naming it; when it belongs to an
element (``kind``/``name`` set) the caller drops that element, and the other elements survive.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["LabelError", "Labels", "decode_labels", "decode_paths"]

#: Sections and the element maps they hold (Traefik's names; matched case-insensitively).
_SECTIONS: dict[str, tuple[str, ...]] = {
    "http": ("routers", "services", "middlewares", "serversTransports"),
    "tcp": ("routers", "services", "middlewares", "serversTransports"),
    "udp": ("routers", "services"),
    "tls": ("options", "stores"),
}

_SEGMENT = re.compile(r"^([^\[\]]+)((?:\[[0-9]+\])*)$")


@dataclass(frozen=True)
class LabelError:
    """One label that could not be decoded. ``kind`` (``http.routers``) and ``name`` are set when
    the label belongs to an element, which the caller then disables."""

    label: str
    message: str
    kind: str = ""
    name: str = ""

    def __str__(self) -> str:
        return f"label {self.label!r}: {self.message}"


@dataclass(frozen=True)
class Labels:
    """Decoded labels: the nested raw configuration and the labels that did not parse."""

    raw: dict[str, Any]
    errors: tuple[LabelError, ...] = ()

    def failed(self, kind: str) -> frozenset[str]:
        """Names of the elements of ``kind`` that had a label error."""
        return frozenset(e.name for e in self.errors if e.kind == kind and e.name)


class _Index(dict[int, Any]):
    """A list under construction (index → value)."""


def decode_labels(labels: Mapping[str, str], prefix: str = "traefik") -> Labels:
    """Decode container labels (``traefik.http.routers.x.rule`` ...) into a nested raw mapping."""
    wanted = prefix.lower() + "."
    paths: dict[str, tuple[list[str], str]] = {}
    for label, value in labels.items():
        if not label.lower().startswith(wanted):
            continue
        rest = label[len(wanted):]
        head = rest.split(".", 1)[0].lower()
        if head not in _SECTIONS:
            continue  # traefik.enable, traefik.docker.*, traefik.tags: the caller's business
        paths[label] = (rest.split("."), value)
    return decode_paths(paths)


def decode_paths(paths: Mapping[str, tuple[list[str], str]]) -> Labels:
    """Decode already split keys (``label → (["http", "routers", "x", "rule"], value)``).

    The KV providers split ``traefik/http/routers/x/rule`` on ``/`` and call this. Labels are
    applied in sorted order so the result does not depend on the engine's label order."""
    root: dict[str, Any] = {}
    errors: list[LabelError] = []
    for label in sorted(paths):
        parts, value = paths[label]
        err = _insert(root, label, parts, value)
        if err is not None:
            errors.append(err)
    dropped = {(e.kind, e.name) for e in errors if e.name}
    raw = _finish(root)
    for kind, name in dropped:
        section, sub = kind.split(".")
        elements = raw.get(section, {}).get(sub)
        if isinstance(elements, dict):
            elements.pop(name, None)
    return Labels(raw=raw, errors=tuple(errors))


def _insert(root: dict[str, Any], label: str, parts: list[str], value: str) -> LabelError | None:
    kind = name = ""
    if len(parts) < 2:
        return LabelError(label, "expected <section>.<kind>.<name>...")
    section = parts[0].lower()
    known = _SECTIONS.get(section)
    if known is None:
        return LabelError(label, f"unknown section {parts[0]!r} (known: {', '.join(_SECTIONS)})")
    canon = next((k for k in known if k.lower() == parts[1].lower()), None)
    if canon is None:
        return LabelError(label, f"unknown key {parts[1]!r} under {section!r} (known: {', '.join(known)})")
    if len(parts) >= 3:
        kind, name = f"{section}.{canon}", parts[2]
    if len(parts) < 3 or not name:
        return LabelError(label, f"expected {section}.{canon}.<name>...", kind, name)
    if "@" in name:
        return LabelError(label, f"'@' is not allowed in a name ({name!r})", kind, name)
    node: Any = root
    steps: list[str | int] = [section, canon, name]
    for part in parts[3:]:
        m = _SEGMENT.match(part)
        if m is None:
            return LabelError(label, f"malformed path element {part!r} (expected key or key[n])", kind, name)
        steps.append(m.group(1))
        steps.extend(int(i) for i in re.findall(r"\[([0-9]+)\]", m.group(2)))
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        nxt = None if last else steps[i + 1]
        key = _find(node, step)
        if last:
            existing = node.get(key)
            if isinstance(existing, dict) and existing:
                return None  # sub-keys win over "=true"
            node[key] = value
            return None
        child = node.get(key)
        if isinstance(nxt, int):
            if not isinstance(child, _Index):
                if isinstance(child, dict) and child:
                    return LabelError(label, f"{step!r} is used both as a mapping and as a list", kind, name)
                child = _Index()
                node[key] = child
        elif not isinstance(child, dict) or isinstance(child, _Index):
            if isinstance(child, _Index) and child:
                return LabelError(label, f"{step!r} is used both as a list and as a mapping", kind, name)
            child = {}
            node[key] = child
        node = child
    return None


def _find(node: dict[Any, Any], step: str | int) -> str | int:
    if isinstance(step, int):
        return step
    if step in node:
        return step
    lower = step.lower()
    for key in node:
        if isinstance(key, str) and key.lower() == lower:
            return key
    return step


def _finish(node: Any) -> Any:
    if isinstance(node, _Index):
        return [_finish(node[i]) for i in sorted(node)]
    if isinstance(node, dict):
        return {k: _finish(v) for k, v in node.items()}
    return node
