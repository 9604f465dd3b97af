"""The file provider's decoder: YAML/TOML documents → a validated :class:`Configuration`.

Pure: bytes in, values out. Reading files and watching directories is the provider's job.

Two kinds of problems are told apart:

* **Structural** problems make a whole document unusable — a YAML/TOML syntax error, a top level
  that is not a mapping, an unknown section such as ``htttp`` or ``http.routres``. They raise
  :class:`~ferryman.errors.ConfigError`, so the provider keeps its last good configuration.
* **Element** problems concern one router, service, middleware, servers transport or TLS item.
  Each element is validated on its own; a broken one becomes an :class:`ElementError` and every
  other element survives. (Traefik itself rejects the whole file on any decoding error; ferryman
  is deliberately more forgiving and says exactly which element was dropped and why.)

:func:`validate_elements` takes an already nested raw mapping, so the flat-key decoders (labels,
KV) can reuse the per-element validation.
"""

from __future__ import annotations

import difflib
import re
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from ferryman.dynamic.models import (
    IMPLEMENTED_MIDDLEWARES,
    Certificate,
    Configuration,
    HTTPConfiguration,
    Middleware,
    Router,
    ServersTransport,
    Service,
    TLSConfiguration,
    TLSOptions,
    TLSStore,
)
from ferryman.errors import ConfigError

__all__ = [
    "Decoded",
    "ElementError",
    "Format",
    "decode_document",
    "decode_files",
    "format_for",
    "validate_elements",
]

Format = Literal["yaml", "toml"]

#: File suffixes the file provider reads (case-insensitive), as Traefik's ``isFileSupported``.
SUFFIXES: dict[str, Format] = {".yml": "yaml", ".yaml": "yaml", ".toml": "toml"}


@dataclass(frozen=True)
class ElementError:
    """One element that was dropped, and why.

    ``kind`` is the section (``http.routers``, ``http.services``, ``http.middlewares``,
    ``http.serversTransports``, ``tls.options``, ``tls.stores``, ``tls.certificates``); ``name`` the
    element's name (for ``tls.certificates`` its index); ``message`` the full operator-facing line
    ``<source>: <key path>: <what is wrong> (<fix>)``; ``source`` and ``path`` are its parts.
    """

    kind: str
    name: str
    message: str
    source: str = ""
    path: str = ""

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Decoded:
    """What a decoder produced: the valid elements, the dropped ones, and things worth telling."""

    config: Configuration
    errors: list[ElementError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Public entry points


def format_for(filename: str) -> Format | None:
    """The format the file provider reads ``filename`` as, or ``None`` if it skips the file."""
    dot = filename.rfind(".")
    slash = max(filename.rfind("/"), filename.rfind("\\"))
    if dot <= slash:
        return None
    return SUFFIXES.get(filename[dot:].lower())


def decode_document(data: bytes | str, *, source: str, fmt: Format) -> Decoded:
    """Decode one YAML or TOML document of dynamic configuration.

    Raises :class:`ConfigError` for structural problems (see the module docstring); everything
    else is reported per element in the result.
    """
    text = _to_text(data, source)
    warnings: list[str] = []
    template_line = _template_line(text)
    if template_line:
        warnings.append(
            f"{source}:{template_line}: contains Go template markers '{{{{ ... }}}}'; Traefik's file "
            "provider evaluates files as Go templates, ferryman does not evaluate templates yet, so "
            "the text is used literally (fix: render the template before handing the file to ferryman)")
    try:
        raw = _parse(text, source, fmt)
    except ConfigError as exc:
        if template_line and exc.fix is None:
            exc.fix = ("the file contains Go template markers '{{', which ferryman does not "
                       "evaluate yet; render the template first")
            exc.args = (exc.render(),)
        raise
    if raw is None:
        return Decoded(config=Configuration(), warnings=warnings)
    if not isinstance(raw, dict):
        raise ConfigError(
            f"the top level must be a mapping of sections (http, tcp, udp, tls), got {_type_name(raw)}",
            source=source,
            fix="start the file with a section such as 'http:'")
    decoded = validate_elements(raw, source)
    decoded.warnings[:0] = warnings
    return decoded


def decode_files(files: Sequence[tuple[str, bytes]]) -> Decoded:
    """Decode a directory: several files merged into one provider configuration.

    Files are taken by suffix (``.yml``, ``.yaml``, ``.toml``, any case; others are ignored) in
    the order Traefik reads a directory tree (names sorted, path component by component). As in
    Traefik (``provider.Merge`` with ``ResourceStrategySkipDuplicates``), an element name defined
    in two files keeps the **first** definition and the later one is skipped with a warning; an
    identical TLS certificate given twice is kept once. A structural error in any file raises
    :class:`ConfigError` for the whole directory, as Traefik fails the whole directory.
    """
    chosen = [(name, data, fmt) for name, data in files if (fmt := format_for(name)) is not None]
    chosen.sort(key=lambda item: _path_key(item[0]))
    merged = _Merger()
    for name, data, fmt in chosen:
        merged.add(name, decode_document(data, source=name, fmt=fmt))
    return merged.result()


def validate_elements(raw: Mapping[str, Any], source: str) -> Decoded:
    """Validate an already nested raw configuration, element by element.

    ``raw`` is the shape of a file (``{"http": {"routers": {...}}, "tls": {...}}``), with keys in
    any case. Unknown sections raise :class:`ConfigError`; a broken element becomes an
    :class:`ElementError` and the rest survives.
    """
    errors: list[ElementError] = []
    warnings: list[str] = []
    top = _fold_top(raw, source, warnings)

    http_raw = _mapping_section(top.get("http"), source, "http")
    http_sections = _fold_section(http_raw, _HTTP_KEYS, source, "http")
    routers = _validate_map(http_sections, "routers", Router, source, errors)
    services = _validate_map(http_sections, "services", Service, source, errors)
    middlewares = _validate_map(http_sections, "middlewares", Middleware, source, errors)
    transports = _validate_map(http_sections, "serversTransports", ServersTransport, source, errors)

    for name, mw in middlewares.items():
        if mw.kind not in IMPLEMENTED_MIDDLEWARES:
            warnings.append(
                f"{source}: http.middlewares.{name}: middleware type {mw.kind!r} is not implemented "
                "in ferryman yet; routers that use it are disabled")

    tls_raw = _mapping_section(top.get("tls"), source, "tls")
    tls_sections = _fold_section(tls_raw, _TLS_KEYS, source, "tls")
    certificates = _validate_list(tls_sections.get("certificates"), Certificate, source, errors)
    options = _validate_map(tls_sections, "options", TLSOptions, source, errors, prefix="tls")
    stores = _validate_map(tls_sections, "stores", TLSStore, source, errors, prefix="tls")

    extra: dict[str, Any] = {}
    for section in ("tcp", "udp"):
        value = _mapping_section(top.get(section), source, section)
        if value:
            extra[section] = value
            warnings.append(
                f"{source}: {section}: {section.upper()} routing is not implemented in ferryman yet; "
                f"the '{section}' section is ignored")

    config = Configuration(
        http=HTTPConfiguration(
            routers=routers, services=services, middlewares=middlewares, servers_transports=transports),
        tls=TLSConfiguration(certificates=tuple(certificates), options=options, stores=stores),
        **extra,
    )
    return Decoded(config=config, errors=errors, warnings=warnings)


# --------------------------------------------------------------------------------------------
# Sections and elements

_TOP_KEYS = ("http", "tcp", "udp", "tls")
_HTTP_KEYS = ("routers", "services", "middlewares", "serversTransports")
_TLS_KEYS = ("certificates", "options", "stores")


def _fold_top(raw: Mapping[Any, Any], source: str, warnings: list[str]) -> dict[str, Any]:
    """Top-level keys. Traefik silently ignores unknown ones (its decoder filters the root keys),
    which people use to hold YAML anchors (``x-defaults: &d``). A key that looks like a typo of a
    section (``htttp``) would silently drop the whole configuration, so it is an error; any other
    unknown key is ignored with a warning."""
    kept: dict[Any, Any] = {}
    lowered = [k.lower() for k in _TOP_KEYS]
    for key, value in raw.items():
        text = str(key)
        if text.lower() in lowered:
            kept[key] = value
        elif difflib.get_close_matches(text.lower(), lowered, n=1, cutoff=0.6):
            raise ConfigError(f"unknown section {text!r}", source=source, path=text,
                              fix=_did_you_mean(text, _TOP_KEYS))
        else:
            warnings.append(f"{source}: {text}: unknown top-level key ignored (known sections: "
                            f"{', '.join(_TOP_KEYS)}), as Traefik ignores it")
    return _fold_section(kept, _TOP_KEYS, source, "")


def _fold_section(raw: Mapping[Any, Any], known: tuple[str, ...], source: str, where: str) -> dict[str, Any]:
    """Map keys case-insensitively onto ``known``; an unknown key is a structural error."""
    by_lower = {k.lower(): k for k in known}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        canon = by_lower.get(str(key).lower())
        path = f"{where}.{key}" if where else str(key)
        if canon is None:
            what = "section" if not where else "key"
            raise ConfigError(f"unknown {what} {str(key)!r}", source=source, path=path,
                              fix=_did_you_mean(str(key), known))
        if canon in out:
            raise ConfigError(f"section {canon!r} is given twice (keys are case-insensitive)",
                              source=source, path=path, fix="merge the two sections into one")
        out[canon] = value
    return out


def _mapping_section(value: Any, source: str, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"expected a mapping, got {_type_name(value)}", source=source, path=path,
                          fix="write the section as 'name: {...}' entries")
    return value


def _validate_map(sections: Mapping[str, Any], key: str, model: type[BaseModel], source: str,
                  errors: list[ElementError], prefix: str = "http") -> dict[str, Any]:
    kind = f"{prefix}.{key}"
    elements = _mapping_section(sections.get(key), source, kind)
    out: dict[str, Any] = {}
    for raw_name, raw in elements.items():
        name = str(raw_name)
        path = f"{kind}.{name}"
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            errors.append(_element_error(kind, name, source, path,
                                         f"expected a mapping, got {_type_name(raw)}"))
            continue
        try:
            out[name] = model.model_validate(raw)
        except ValidationError as exc:
            errors.extend(_element_errors(exc, model, kind, name, source, path))
    return out


def _validate_list(value: Any, model: type[BaseModel], source: str,
                   errors: list[ElementError]) -> list[Any]:
    kind = "tls.certificates"
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"expected a list, got {_type_name(value)}", source=source, path=kind,
                          fix="write each certificate as a list item '- certFile: ...'")
    out: list[Any] = []
    for index, raw in enumerate(value):
        path = f"{kind}[{index}]"
        if not isinstance(raw, dict):
            errors.append(_element_error(kind, str(index), source, path,
                                         f"expected a mapping, got {_type_name(raw)}"))
            continue
        try:
            out.append(model.model_validate(raw))
        except ValidationError as exc:
            errors.extend(_element_errors(exc, model, kind, str(index), source, path))
    return out


def _element_error(kind: str, name: str, source: str, path: str, text: str) -> ElementError:
    return ElementError(kind=kind, name=name, message=f"{source}: {path}: {text}", source=source, path=path)


# --------------------------------------------------------------------------------------------
# Pydantic errors → one readable line each

_TYPE_TEXT = {
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected a string",
    "dict_type": "expected a mapping (key: value)",
    "model_type": "expected a mapping (key: value)",
    "model_attributes_type": "expected a mapping (key: value)",
    "tuple_type": "expected a list",
    "list_type": "expected a list",
    "missing": "required key is missing",
}


def _element_errors(exc: ValidationError, model: type[BaseModel], kind: str, name: str, source: str,
                    base: str) -> list[ElementError]:
    out: list[ElementError] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err.get("loc", ()))
        path = base + _render_loc(loc)
        text = _error_text(err, model, loc)
        out.append(_element_error(kind, name, source, path, text))
    return out


def _render_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue  # pydantic's union/validator tags are not user keys
        else:
            out += f".{part}"
    return out


def _error_text(err: Mapping[str, Any], model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    etype = str(err.get("type", ""))
    if etype == "extra_forbidden":
        known = _known_keys(model, loc[:-1])
        key = str(loc[-1]) if loc else ""
        hint = _did_you_mean(key, known) if known else None
        return f"unknown key ({hint})" if hint else "unknown key"
    if etype in ("value_error", "assertion_error"):
        msg = str(err.get("msg", ""))
        for prefix in ("Value error, ", "Assertion failed, "):
            if msg.startswith(prefix):
                msg = msg[len(prefix):]
        return msg
    text = _TYPE_TEXT.get(etype)
    if text is None:
        text = str(err.get("msg", "invalid value"))
        text = text[:1].lower() + text[1:]
    if etype != "missing" and "input" in err:
        text += f", got {_show(err['input'])}"
    return text


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str, ...]:
    """The keys the model accepts at ``loc`` (walking nested models, lists and maps)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            if not isinstance(part, str):
                return ()
            found = None
            for fname, finfo in current.model_fields.items():
                if part in (finfo.alias, fname):
                    found = finfo.annotation
                    break
            if found is None:
                return ()
            current = found
            continue
        origin = typing.get_origin(current)
        args = typing.get_args(current)
        if (origin is tuple and args and isinstance(part, int)) or (origin is list and args and isinstance(part, int)):
            current = args[0]
        elif origin is dict and len(args) == 2:
            current = args[1]
        else:
            return ()
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return tuple(f.alias or n for n, f in current.model_fields.items())
    return ()


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` down to the model/container type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            models = [a for a in members if isinstance(a, type) and issubclass(a, BaseModel)]
            if models:
                annotation = models[0]
                continue
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation


def _did_you_mean(word: str, known: Iterable[str]) -> str:
    known = tuple(known)
    lowered = {k.lower(): k for k in known}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    if close:
        return f'did you mean "{lowered[close[0]]}"?'
    return "known: " + ", ".join(known)


# --------------------------------------------------------------------------------------------
# Text and parsers


def _to_text(data: bytes | str, source: str) -> str:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"the file is not valid UTF-8 (byte {exc.start}, line {line})", source=source,
                          fix="save the file as UTF-8") from None


_TEMPLATE = re.compile(r"\{\{.*?\}\}", re.S)


def _template_line(text: str) -> int:
    """Line (1-based) of the first Go template action, 0 if none."""
    m = _TEMPLATE.search(text)
    return text.count("\n", 0, m.start()) + 1 if m else 0


def _parse(text: str, source: str, fmt: Format) -> Any:
    if fmt == "toml":
        try:
            return tomllib.loads(text) if text.strip() else None
        except tomllib.TOMLDecodeError as exc:
            msg = str(exc)
            m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
            if m:
                where = f"{source}:{m.group(1)}:{m.group(2)}"
            elif "(at end of document)" in msg:
                where = f"{source}:{text.count(chr(10)) + 1}"
            else:
                where = source
            msg = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", msg)
            raise ConfigError(f"TOML syntax error: {msg}", source=where,
                              fix="check the TOML syntax at that position") from None
    try:
        if _yaml_rs is not None and "<<" not in text:
            # Rust parser (YAML 1.2 core schema, duplicate keys rejected, like Go's yaml.v3): ~50x
            # faster on a 10,000-router file. It has no merge keys, hence the check above; on any
            # error the file is read again below for PyYAML's messages and our hints.
            try:
                return _yaml_rs.loads(text)
            except Exception:
                pass
        try:
            return yaml.load(text, Loader=_FastLoader)
        except yaml.YAMLError:
            if _FastLoader is _Loader:
                raise
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigError(f"YAML syntax error: {problem}", source=where, fix=_yaml_fix(exc)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML syntax error: {exc}", source=source) from None


def _yaml_fix(exc: yaml.MarkedYAMLError) -> str | None:
    problem = exc.problem or ""
    if "already defined" in problem:
        return "each key may appear once per mapping; remove or rename the duplicate"
    if "'\\t'" in problem or "tab" in problem.lower():
        return "indent with spaces, not tabs"
    if "found character '`'" in problem or "found character '@'" in problem:
        return "quote the value, e.g. rule: \"Host(`example.com`)\""
    return None


def _path_key(name: str) -> tuple[str, ...]:
    return tuple(part for part in re.split(r"[/\\]", name) if part)


def _type_name(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {_show(value)}"
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {_show(value)}"


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 core scalars and Go yaml.v3's duplicate-key error.

    Traefik reads YAML with ``gopkg.in/yaml.v3``: ``yes``/``no``/``on``/``off`` are strings,
    ``1:30`` is not a base-60 number, dates stay strings, and a key given twice in one mapping
    is an error ("mapping key already defined").
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # Only the keys written in this mapping count: keys brought in by a merge key (``<<``)
        # may be overridden, as in yaml.v3.
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    "found an unhashable key", key_node.start_mark) from None
            if key in seen:
                first = seen[key].start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"mapping key {key!r} already defined at line {first.line + 1}",
                    key_node.start_mark)
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _core_schema() -> None:
    resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}
    for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items():
        kept = [(tag, rx) for tag, rx in entries
                if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
                               "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value")]
        if kept:
            resolvers[first] = kept
    _Loader.yaml_implicit_resolvers = resolvers
    _Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    _Loader.add_implicit_resolver(
        "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
        list("-+0123456789"))
    _Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                   r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
        list("-+.0123456789"))


def _construct_core_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    value = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    sign = -1 if value.startswith("-") else 1
    digits = value.lstrip("+-")
    if digits.startswith("0o"):
        return sign * int(digits[2:], 8)
    if digits.startswith("0x"):
        return sign * int(digits[2:], 16)
    return sign * int(digits, 10)


def _construct_core_bool(loader: yaml.SafeLoader, node: yaml.Node) -> bool:
    return str(loader.construct_scalar(node)).lower() == "true"  # type: ignore[arg-type]


_core_schema()
_Loader.add_constructor("tag:yaml.org,2002:int", _construct_core_int)
_Loader.add_constructor("tag:yaml.org,2002:bool", _construct_core_bool)

#: The same loader on libyaml's parser (several times faster on large files); errors are re-read
#: with the pure-Python parser, whose messages name the offending character.
_FastLoader: type[yaml.SafeLoader] = _Loader
try:
    from yaml._yaml import CParser
except ImportError:  # PyYAML built without libyaml
    pass
else:
    class _CLoader(CParser, _Loader):
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    _FastLoader = _CLoader

_yaml_rs: Any
try:
    import yaml_rs as _yaml_rs
except ImportError:  # optional accelerator
    _yaml_rs = None


# --------------------------------------------------------------------------------------------
# Directory merge (first file wins, as Traefik's ResourceStrategySkipDuplicates)

_MAP_KINDS: tuple[tuple[str, str, str], ...] = (
    ("http.routers", "http", "routers"),
    ("http.services", "http", "services"),
    ("http.middlewares", "http", "middlewares"),
    ("http.serversTransports", "http", "servers_transports"),
    ("tls.options", "tls", "options"),
    ("tls.stores", "tls", "stores"),
)


class _Merger:
    def __init__(self) -> None:
        self.maps: dict[str, dict[str, Any]] = {kind: {} for kind, _, _ in _MAP_KINDS}
        self.owner: dict[tuple[str, str], str] = {}
        self.certificates: list[Certificate] = []
        self.cert_owner: dict[tuple[str, str], str] = {}
        self.extra: dict[str, dict[str, Any]] = {}
        self.errors: list[ElementError] = []
        self.warnings: list[str] = []

    def add(self, source: str, decoded: Decoded) -> None:
        self.warnings.extend(decoded.warnings)
        cfg = decoded.config
        errors_by_key: dict[tuple[str, str], list[ElementError]] = {}
        for err in decoded.errors:
            errors_by_key.setdefault((err.kind, err.name), []).append(err)
        for kind, part, attr in _MAP_KINDS:
            elements: Mapping[str, Any] = getattr(getattr(cfg, part), attr)
            names = set(elements) | {n for k, n in errors_by_key if k == kind}
            for name in sorted(names):
                first = self.owner.get((kind, name))
                if first is not None:
                    self.warnings.append(
                        f"{source}: {kind}.{name}: already defined in {first}; this definition is "
                        f"skipped (the first file in name order wins, as in Traefik)")
                    continue
                self.owner[(kind, name)] = source
                if name in elements:
                    self.maps[kind][name] = elements[name]
                self.errors.extend(errors_by_key.get((kind, name), ()))
        self.errors.extend(e for e in decoded.errors if e.kind == "tls.certificates")
        for cert in cfg.tls.certificates:
            key = (cert.cert_file, cert.key_file)
            first = self.cert_owner.get(key)
            if first is not None:
                self.warnings.append(
                    f"{source}: tls.certificates: certificate {cert.cert_file!r} is already "
                    f"configured in {first}; skipped")
                continue
            self.cert_owner[key] = source
            self.certificates.append(cert)
        for section in ("tcp", "udp"):
            value = getattr(cfg, section)
            if not value:
                continue
            target = self.extra.setdefault(section, {})
            for sub, elements in value.items():
                if isinstance(elements, dict) and isinstance(target.get(sub, {}), dict):
                    merged = target.setdefault(sub, {})
                    for name, element in elements.items():
                        merged.setdefault(name, element)
                else:
                    target.setdefault(sub, elements)

    def result(self) -> Decoded:
        config = Configuration(
            http=HTTPConfiguration(
                routers=self.maps["http.routers"],
                services=self.maps["http.services"],
                middlewares=self.maps["http.middlewares"],
                servers_transports=self.maps["http.serversTransports"],
            ),
            tls=TLSConfiguration(
                certificates=tuple(self.certificates),
                options=self.maps["tls.options"],
                stores=self.maps["tls.stores"],
            ),
            **self.extra,
        )
        return Decoded(config=config, errors=self.errors, warnings=self.warnings)
