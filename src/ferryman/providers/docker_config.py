"""Docker containers → one provider :class:`Configuration`, with Traefik v3's defaults.

Pure: the provider task lists and inspects containers through the engine's API, turns each into a
:class:`ContainerInfo` and calls :func:`build_configuration`; this module does no I/O. It follows
Traefik's ``pkg/provider/docker`` (``config.go``, ``shared.go``) and ``pkg/provider``
(``configuration.go`` ``BuildRouterConfiguration``, ``Merge``):

* a container is kept when it is enabled (``traefik.enable``, default ``exposedByDefault``), its
  labels match ``constraints``, it is running (or ``traefik.docker.allownonrunning``), and healthy
  (or ``allowEmptyServices``); a kept container that is not running/healthy gets its routers and
  services without servers;
* its labels are decoded (:mod:`ferryman.dynamic.labels`); with no HTTP service one named after
  the container (``<compose service>_<project>`` normalized) is created; each load balancer gets
  one server ``<scheme>://<ip>:<port>`` (``loadbalancer.server.port``/``.scheme``/``.url`` labels,
  else the lowest exposed port) and Traefik's defaults (``wrr``, ``passHostHeader``, 100ms flush);
* with no HTTP router and at most one service a router named after the service is created; a
  router without a rule gets the rendered ``defaultRule``; a router without a service is linked to
  the only service (dropped when there are several);
* TCP/UDP sections are built the same way (address ``ip:port``) and passed on raw: ferryman does
  not route TCP/UDP yet;
* containers are merged in ``<service>-<container id>`` order: equal definitions are kept once,
  services whose load balancers differ only in servers merge their servers, anything else defined
  differently by two containers is dropped and reported.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ferryman.dynamic.base import empty_section
from ferryman.dynamic.decode import ElementError, validate_elements
from ferryman.dynamic.labels import decode_labels
from ferryman.dynamic.models import (
    Configuration,
    HTTPConfiguration,
    Service,
    TLSConfiguration,
)
from ferryman.errors import ConfigError, RuleError
from ferryman.providers.base import ElementProblem
from ferryman.rules.compiler import parse_rule
from ferryman.rules.tree import And, Call, Node, Or

__all__ = [
    "ContainerInfo",
    "DockerSettings",
    "TemplateError",
    "build_configuration",
    "container_from_inspect",
    "container_ip",
    "container_port",
    "normalize",
    "render_default_rule",
    "service_name",
    "settings_errors",
]

DEFAULT_RULE = "Host(`{{ normalize .Name }}`)"
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_PROJECT = "com.docker.compose.project"


@dataclass(frozen=True)
class ContainerInfo:
    """What ``/containers/json`` plus ``/containers/{id}/json`` say about one container.

    ``networks`` maps a network name to the container's address on it (IPv4, else IPv6);
    ``ports`` are the exposed ports (``"80/tcp"``); ``port_bindings`` the published ones
    (``"80/tcp" → ((host_ip, host_port), ...)``); ``state`` is Docker's ``State.Status``
    (``""`` = unknown, treated as running) and ``health`` its ``State.Health.Status``
    (``""`` = no health check); ``node_ip`` the Swarm node's address, when known.
    """

    id: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    state: str = "running"
    health: str = ""
    network_mode: str = ""
    networks: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[str, ...] = ()
    port_bindings: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    node_ip: str = ""
    service: str = ""  # Swarm's service name; when set it is the default name instead of ``name``

    @property
    def container_name(self) -> str:
        return self.name.removeprefix("/")

    def label(self, key: str) -> str | None:
        """A label by key, case-insensitively (exact spelling first)."""
        if key in self.labels:
            return self.labels[key]
        lower = key.lower()
        for k, v in self.labels.items():
            if k.lower() == lower:
                return v
        return None


def container_from_inspect(inspect: Mapping[str, Any]) -> ContainerInfo:
    """A :class:`ContainerInfo` from the engine's ``GET /containers/{id}/json`` answer.

    Ports are the keys of ``NetworkSettings.Ports`` (exposed and published ports), as Traefik reads
    them; a network's address is its ``IPAddress``,
    else its ``GlobalIPv6Address``."""
    config = inspect.get("Config") or {}
    state = inspect.get("State") or {}
    host = inspect.get("HostConfig") or {}
    net = inspect.get("NetworkSettings") or {}
    networks = {str(name): str(n.get("IPAddress") or n.get("GlobalIPv6Address") or "")
                for name, n in (net.get("Networks") or {}).items() if isinstance(n, Mapping)}
    published = net.get("Ports") or {}
    # Only NetworkSettings.Ports, as Traefik: a host-network container has none there (its
    # Config.ExposedPorts do not count), so it needs the loadbalancer.server.port label.
    ports = sorted(published, key=_port_number)
    bindings = {str(port): tuple((str(b.get("HostIp") or ""), str(b.get("HostPort") or ""))
                                 for b in (binds or ()) if isinstance(b, Mapping))
                for port, binds in published.items()}
    health = state.get("Health") or {}
    return ContainerInfo(
        id=str(inspect.get("Id", "")),
        name=str(inspect.get("Name", "")),
        labels={str(k): str(v) for k, v in (config.get("Labels") or {}).items()},
        state=str(state.get("Status", "")),
        health=str(health.get("Status", "")) if isinstance(health, Mapping) else "",
        network_mode=str(host.get("NetworkMode", "")),
        networks=networks,
        ports=tuple(str(p) for p in ports),
        port_bindings=bindings,
    )


@dataclass(frozen=True)
class DockerSettings:
    """The pure part of ``providers.docker`` (Traefik's option names in the docstrings)."""

    exposed_by_default: bool = True  # exposedByDefault
    default_rule: str = DEFAULT_RULE  # defaultRule
    network: str = ""  # network
    constraints: str = ""  # constraints
    allow_empty_services: bool = False  # allowEmptyServices
    use_bind_port_ip: bool = False  # useBindPortIP


class TemplateError(ValueError):
    """A ``defaultRule`` template that cannot be rendered."""


# --------------------------------------------------------------------------------------------
# Names, addresses, ports


_NOT_ALNUM = re.compile(r"[^\w]|_", re.UNICODE)


def normalize(name: str) -> str:
    """Traefik's ``provider.Normalize``: the runs of letters and digits joined with ``-``."""
    return "-".join(part for part in _NOT_ALNUM.split(name) if part)


def service_name(container: ContainerInfo) -> str:
    """The default service (and router) name: the container name, or ``<service>_<project>``
    for a Compose container, normalized."""
    name = container.service or container.container_name
    svc, project = container.label(COMPOSE_SERVICE), container.label(COMPOSE_PROJECT)
    if svc and project:
        name = f"{svc}_{project}"
    return normalize(name)


def container_ip(container: ContainerInfo, settings: DockerSettings) -> str:
    """The address to reach the container at (Traefik's ``getIPAddress``); ``""`` if none."""
    network = container.label("traefik.docker.network") or settings.network
    if network:
        addr = container.networks.get(network)
        if addr:
            return addr
    mode = container.network_mode
    if mode == "host":
        return container.node_ip or "127.0.0.1"
    if mode.startswith("container:"):
        return ""  # the provider resolves the peer container and passes its networks instead
    for addr in container.networks.values():
        if addr:
            return addr
    return ""


def _port_number(port: str) -> int:
    try:
        return int(port.split("/", 1)[0])
    except ValueError:
        return 1 << 30


def container_port(container: ContainerInfo, server_port: str) -> str:
    """``loadbalancer.server.port`` if given, else the lowest exposed port, else ``""``."""
    if server_port:
        return server_port
    ports = sorted(container.ports, key=_port_number)
    return ports[0].split("/", 1)[0] if ports else ""


def _ip_port(container: ContainerInfo, settings: DockerSettings, server_port: str) -> tuple[str, str]:
    port = container_port(container, server_port)
    if not port:
        raise ValueError("port is missing (expose a port or set the loadbalancer.server.port label)")
    if settings.use_bind_port_ip:
        for key in (f"{port}/tcp", f"{port}/udp", port):
            for host_ip, host_port in container.port_bindings.get(key, ()):
                if host_ip and host_ip not in ("0.0.0.0", "::") and host_port:
                    return host_ip, host_port
    ip = container_ip(container, settings)
    if not ip:
        raise ValueError("no IP address (attach the container to a network or set traefik.docker.network)")
    return ip, port


def _join(ip: str, port: str) -> str:
    try:
        if isinstance(ipaddress.ip_address(ip.split("%", 1)[0]), ipaddress.IPv6Address):
            return f"[{ip}]:{port}"
    except ValueError:
        pass
    return f"{ip}:{port}"


# --------------------------------------------------------------------------------------------
# defaultRule: the part of Go's text/template that default rules use


_ACTION = re.compile(r"\{\{(-?)(.*?)(-?)\}\}", re.S)
_TOKEN = re.compile(r'\s*(?:(\()|(\))|(\|)|"((?:[^"\\]|\\.)*)"|`([^`]*)`|(\.[A-Za-z_][\w]*|\.)|([A-Za-z_]\w*))')


def _str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{v}" for k, v in sorted(value.items())) + "]"
    return str(value)


_FUNCS: dict[str, Any] = {
    "normalize": lambda s: normalize(_str(s)),
    "lower": lambda s: _str(s).lower(),
    "upper": lambda s: _str(s).upper(),
    "trim": lambda s: _str(s).strip(),
    "trimPrefix": lambda p, s: _str(s).removeprefix(_str(p)),
    "trimSuffix": lambda p, s: _str(s).removesuffix(_str(p)),
    "replace": lambda old, new, s: _str(s).replace(_str(old), _str(new)),
    "default": lambda d, v=None: v if v not in (None, "") else d,
    "index": None,  # special-cased: map lookup
}


def render_default_rule(template: str, model: Mapping[str, Any]) -> str:
    """Render ``template`` with ``model`` (``Name``, ``ContainerName``, ``Labels``).

    Supports field access (``.Name``), string literals, pipelines (``.Name | normalize``),
    parentheses and the functions ``normalize``, ``index``, ``lower``, ``upper``, ``trim``,
    ``trimPrefix``, ``trimSuffix``, ``replace``, ``default``. Anything else raises
    :class:`TemplateError`, as Go's template would (the router is then left out)."""
    out: list[str] = []
    pos = 0
    for m in _ACTION.finditer(template):
        text = template[pos:m.start()]
        if m.group(1):
            text = text.rstrip()
        out.append(text)
        pos = m.end()
        if m.group(3):
            rest = template[pos:]
            pos += len(rest) - len(rest.lstrip())
        body = m.group(2).strip()
        if body.startswith("/*"):
            continue
        out.append(_str(_Eval(body, model).run()))
    tail = template[pos:]
    if "{{" in tail or "}}" in tail:
        raise TemplateError(f"unclosed action in {template!r}")
    out.append(tail)
    return "".join(out)


class _Eval:
    def __init__(self, text: str, model: Mapping[str, Any]) -> None:
        self.tokens: list[tuple[str, str]] = []
        self.model = model
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                if text[pos:].strip() == "":
                    break
                raise TemplateError(f"cannot parse {text[pos:]!r} in template action {text!r}")
            pos = m.end()
            kinds = ("(", ")", "|", "str", "raw", "field", "ident")
            for kind, value in zip(kinds, m.groups(), strict=True):
                if value is not None:
                    if kind == "str":
                        try:  # Go's escapes in "..." are JSON's, plus a few rare ones
                            value = json.loads(f'"{value}"')
                        except ValueError:
                            raise TemplateError(f"invalid string literal \"{value}\"") from None
                        kind = "raw"
                    self.tokens.append((kind, value))
                    break
        self.i = 0

    def run(self) -> Any:
        value = self.pipeline()
        if self.i != len(self.tokens):
            raise TemplateError(f"unexpected {self.tokens[self.i][1]!r} in template action")
        return value

    def pipeline(self) -> Any:
        value = self.command(None, piped=False)
        while self.i < len(self.tokens) and self.tokens[self.i][0] == "|":
            self.i += 1
            value = self.command(value, piped=True)
        return value

    def command(self, piped_value: Any, *, piped: bool) -> Any:
        if self.i >= len(self.tokens):
            raise TemplateError("missing value in template action")
        kind, value = self.tokens[self.i]
        if kind == "ident":
            self.i += 1
            if value not in _FUNCS:
                raise TemplateError(f'function "{value}" not defined')
            args: list[Any] = []
            while self.i < len(self.tokens) and self.tokens[self.i][0] not in ("|", ")"):
                args.append(self.operand())
            if piped:
                args.append(piped_value)
            return self.call(value, args)
        if piped:
            raise TemplateError("only a function can follow '|'")
        result = self.operand()
        if self.i < len(self.tokens) and self.tokens[self.i][0] not in ("|", ")"):
            raise TemplateError(f"can't give argument to non-function {value!r}")
        return result

    def operand(self) -> Any:
        kind, value = self.tokens[self.i]
        self.i += 1
        if kind == "raw":
            return value
        if kind == "field":
            if value == ".":
                return self.model
            name = value[1:]
            if name not in self.model:
                raise TemplateError(f"can't evaluate field {name}")
            return self.model[name]
        if kind == "(":
            result = self.pipeline()
            if self.i >= len(self.tokens) or self.tokens[self.i][0] != ")":
                raise TemplateError("unclosed left paren")
            self.i += 1
            return result
        if kind == "ident" and value in _FUNCS:
            return self.call(value, [])
        raise TemplateError(f"unexpected {value!r} in template action")

    @staticmethod
    def call(name: str, args: list[Any]) -> Any:
        if name == "index":
            if not args:
                raise TemplateError("wrong number of args for index")
            value = args[0]
            for key in args[1:]:
                if not isinstance(value, Mapping):
                    raise TemplateError(f"can't index item of type {type(value).__name__}")
                value = value.get(key, "")
            return value
        try:
            return _FUNCS[name](*args)
        except TypeError:
            raise TemplateError(f"wrong number of args for {name}: got {len(args)}") from None


# --------------------------------------------------------------------------------------------
# Constraints: Label("k", "v"), LabelRegex("k", "re"), &&, ||, !


def settings_errors(settings: DockerSettings) -> list[tuple[str, str]]:
    """``(option, message)`` for ``constraints`` that do not parse and a ``defaultRule`` template
    that cannot render (checked once at startup, instead of failing for every container)."""
    errors: list[tuple[str, str]] = []
    try:
        _constraints_match(settings.constraints, {})
    except (RuleError, ValueError) as exc:
        errors.append(("constraints", f"constraints {settings.constraints!r}: {exc}"))
    try:
        render_default_rule(settings.default_rule, {"Name": "name", "ContainerName": "name", "Labels": {}})
    except TemplateError as exc:
        errors.append(("defaultRule", f"defaultRule {settings.default_rule!r}: {exc}"))
    return errors


def _constraints_match(expr: str, labels: Mapping[str, str]) -> bool:
    if not expr.strip():
        return True
    tree = parse_rule(expr, ("Label", "LabelRegex"))
    return _eval_constraint(tree, labels)


def _eval_constraint(node: Node, labels: Mapping[str, str]) -> bool:
    if isinstance(node, And):
        return _eval_constraint(node.left, labels) and _eval_constraint(node.right, labels)
    if isinstance(node, Or):
        return _eval_constraint(node.left, labels) or _eval_constraint(node.right, labels)
    assert isinstance(node, Call)
    values = node.values()
    if len(values) != 2:
        raise ValueError(f"{node.name} takes 2 arguments (label name, value), got {len(values)}")
    key, want = values
    matched = False
    if key in labels:
        if node.name == "Label":
            matched = labels[key] == want
        else:
            try:
                matched = re.fullmatch(want, labels[key]) is not None
            except re.error as exc:
                raise ValueError(f"LabelRegex: invalid regular expression {want!r}: {exc}") from None
    return matched != node.negated


# --------------------------------------------------------------------------------------------
# One container


class _Skip(Exception):
    """The container contributes nothing (the message says why)."""


def _bool_label(container: ContainerInfo, key: str, default: bool) -> bool:
    value = container.label(key)
    if value is None:
        return default
    return value.strip().lower() == "true"


def _ci_get(mapping: Mapping[str, Any], key: str) -> tuple[str | None, Any]:
    for k, v in mapping.items():
        if k.lower() == key.lower():
            return k, v
    return None, None


def _lb(service: Any, where: str) -> dict[str, Any]:
    if not isinstance(service, dict):
        raise _Skip(f"{where}: the load-balancer is not defined")
    key, lb = _ci_get(service, "loadBalancer")
    if key is None:
        raise _Skip(f"{where}: the load-balancer is not defined")
    if not isinstance(lb, dict):
        lb = {}
        service[key] = lb
    return lb


def _pop_server(lb: dict[str, Any]) -> dict[str, Any]:
    """``loadbalancer.server.*`` (Traefik's label-slice-as-struct): the first server's labels."""
    key, server = _ci_get(lb, "server")
    if key is not None:
        del lb[key]
    skey, servers = _ci_get(lb, "servers")
    if skey is not None:
        del lb[skey]
        if isinstance(servers, list) and servers and isinstance(servers[0], dict):
            merged = dict(servers[0])
            if isinstance(server, dict):
                merged.update(server)
            return merged
    return dict(server) if isinstance(server, dict) else {}


def _http_services(c: ContainerInfo, s: DockerSettings, http: dict[str, Any], name: str,
                   serve: bool) -> None:
    services = http.setdefault("services", {})
    if not services:
        services[name] = {"loadBalancer": {}}
    for svc_name, service in services.items():
        lb = _lb(service, f"http.services.{svc_name}")
        server = _pop_server(lb)
        if _ci_get(lb, "strategy")[0] is None:
            lb["strategy"] = "wrr"
        if _ci_get(lb, "passHostHeader")[0] is None:
            lb["passHostHeader"] = True
        if _ci_get(lb, "responseForwarding")[0] is None:
            lb["responseForwarding"] = {"flushInterval": "100ms"}
        if not serve:
            continue
        port_key, port = _ci_get(server, "port")
        scheme_key, scheme = _ci_get(server, "scheme")
        url_key, url = _ci_get(server, "url")
        for k in (port_key, scheme_key, url_key):
            if k is not None:
                del server[k]
        if url:
            if port or scheme:
                raise _Skip(f"http.services.{svc_name}: defining scheme or port is not allowed "
                            "when URL is defined")
            server["url"] = url
        else:
            try:
                ip, p = _ip_port(c, s, str(port or ""))
            except ValueError as exc:
                raise _Skip(f"http.services.{svc_name}: {exc}") from None
            server["url"] = f"{scheme or 'http'}://{_join(ip, p)}"
        lb["servers"] = [server]


def _l4_services(c: ContainerInfo, s: DockerSettings, sec: dict[str, Any], proto: str, name: str,
                 serve: bool) -> None:
    services = sec.setdefault("services", {})
    if not services:
        services[name] = {"loadBalancer": {}}
    for svc_name, service in services.items():
        lb = _lb(service, f"{proto}.services.{svc_name}")
        server = _pop_server(lb)
        if not serve:
            continue
        port_key, port = _ci_get(server, "port")
        if port_key is not None:
            del server[port_key]
        try:
            ip, p = _ip_port(c, s, str(port or ""))
        except ValueError as exc:
            raise _Skip(f"{proto}.services.{svc_name}: {exc}") from None
        server["address"] = _join(ip, p)
        lb["servers"] = [server]


def _l4_routers(sec: dict[str, Any], proto: str, warnings: list[str], where: str) -> None:
    routers = sec.get("routers") or {}
    services = sec.get("services") or {}
    for rname in list(routers):
        router = routers[rname]
        if not isinstance(router, dict):
            router = {}
            routers[rname] = router
        tls_key, tls = _ci_get(router, "tls")
        if tls_key is not None and not isinstance(tls, dict):  # tls=true enables an empty section
            section = empty_section(tls)
            if section is None:
                del router[tls_key]
            else:
                router[tls_key] = section
        if proto == "tcp" and not _ci_get(router, "rule")[1]:
            warnings.append(f"{where}: tcp.routers.{rname}: empty rule; router left out")
            del routers[rname]
            continue
        if not _ci_get(router, "service")[1]:
            if len(services) > 1:
                warnings.append(f"{where}: {proto}.routers.{rname}: cannot be linked automatically "
                                "with multiple services; router left out")
                del routers[rname]
                continue
            for sname in services:
                router["service"] = sname


def _http_routers(http: dict[str, Any], c: ContainerInfo, s: DockerSettings, name: str,
                  failed: frozenset[str], warnings: list[str], where: str) -> set[str]:
    """Default router, default rule, service link. Returns the routers whose rule is the default."""
    routers = http.setdefault("routers", {})
    services = http.get("services") or {}
    defaulted: set[str] = set()
    if not routers and not failed:
        if len(services) > 1:
            warnings.append(f"{where}: no router created: too many services ({', '.join(services)})")
        else:
            routers[name] = {}
    model = {"Name": name, "ContainerName": c.container_name, "Labels": dict(c.labels)}
    for rname in list(routers):
        router = routers[rname]
        if not isinstance(router, dict):
            router = {}
            routers[rname] = router
        if not _ci_get(router, "rule")[1]:
            try:
                rule = render_default_rule(s.default_rule, model)
            except TemplateError as exc:
                warnings.append(f"{where}: http.routers.{rname}: defaultRule {s.default_rule!r}: {exc}; "
                                "router left out")
                del routers[rname]
                continue
            if not rule:
                warnings.append(f"{where}: http.routers.{rname}: the defaultRule is empty; router left out")
                del routers[rname]
                continue
            key = _ci_get(router, "rule")[0] or "rule"
            router[key] = rule
            defaulted.add(rname)
        if not _ci_get(router, "service")[1]:
            if len(services) > 1:
                warnings.append(f"{where}: http.routers.{rname}: cannot be linked automatically with "
                                "multiple services; router left out")
                del routers[rname]
                continue
            for sname in services:
                router["service"] = sname
    return defaulted


@dataclass
class _Built:
    raw: dict[str, Any]
    problems: list[ElementProblem]
    warnings: list[str]


def _build_one(c: ContainerInfo, s: DockerSettings, name: str) -> _Built:
    where = f"container {c.container_name!r}"
    labels = decode_labels(c.labels)
    problems = [ElementProblem(e.kind or "labels", e.name or c.container_name, f"{where}: {e}")
                for e in labels.errors]
    warnings: list[str] = []
    raw = labels.raw
    running = c.state in ("", "running") and c.health in ("", "healthy")
    tcp_or_udp = False
    for proto in ("tcp", "udp"):
        sec = raw.get(proto)
        if isinstance(sec, dict) and (sec.get("routers") or sec.get("services")):
            tcp_or_udp = True
            _l4_services(c, s, sec, proto, name, running)
            _l4_routers(sec, proto, warnings, where)
    http = raw.get("http")
    if tcp_or_udp and not (isinstance(http, dict) and any(http.get(k) for k in ("routers", "services", "middlewares"))):
        return _Built(raw, problems, warnings)
    http = raw.setdefault("http", {})
    failed = labels.failed("http.routers")
    _http_services(c, s, http, name, running)
    defaulted = _http_routers(http, c, s, name, failed, warnings, where)
    del defaulted  # Traefik flags them (DefaultRule) for its anti-recursion middleware
    return _Built(raw, problems, warnings)


# --------------------------------------------------------------------------------------------
# All containers


def build_configuration(containers: Sequence[ContainerInfo], settings: DockerSettings | None = None,
                        ) -> tuple[Configuration, list[ElementProblem], list[str]]:
    """Translate containers into the Docker provider's configuration.

    Returns the configuration, the problems (dropped elements and containers, each message
    naming the container and the label or the conflict) and warnings (routers left out by the
    defaults, unimplemented middlewares, TCP/UDP ignored)."""
    s = settings or DockerSettings()
    problems: list[ElementProblem] = []
    warnings: list[str] = []
    built: list[tuple[str, ContainerInfo, Configuration, dict[str, Any]]] = []
    for c in containers:
        where = f"container {c.container_name!r}"
        if not _bool_label(c, "traefik.enable", s.exposed_by_default):
            continue
        try:
            if not _constraints_match(s.constraints, c.labels):
                continue
        except (RuleError, ValueError) as exc:
            problems.append(ElementProblem("constraints", c.container_name,
                                           f"{where}: constraints {s.constraints!r}: {exc}"))
            continue
        allow_non_running = _bool_label(c, "traefik.docker.allownonrunning", False)
        if c.state not in ("", "running") and not allow_non_running:
            continue
        if c.health not in ("", "healthy") and not s.allow_empty_services:
            continue
        name = service_name(c)
        try:
            one = _build_one(c, s, name)
        except _Skip as exc:
            problems.append(ElementProblem("container", c.container_name, f"{where}: {exc}; container skipped"))
            continue
        problems.extend(one.problems)
        warnings.extend(one.warnings)
        raw = one.raw
        l4: dict[str, Any] = {p: raw.pop(p) for p in ("tcp", "udp") if p in raw}
        try:
            decoded = validate_elements(raw, where)
        except ConfigError as exc:
            problems.append(ElementProblem("container", c.container_name, f"{where}: {exc}; container skipped"))
            continue
        problems.extend(_problem(e, c) for e in decoded.errors)
        warnings.extend(decoded.warnings)
        built.append((f"{name}-{c.id}", c, decoded.config, l4))
    built.sort(key=lambda item: item[0])
    config, merge_problems = _merge([(c.container_name, cfg, l4) for _key, c, cfg, l4 in built])
    problems.extend(merge_problems)
    return config, problems, warnings


_PATH = re.compile(r"^(container '[^']*': )((?:http|tls)\.[^\s:]+): ")


def _problem(e: ElementError, c: ContainerInfo) -> ElementProblem:
    """The decoder's problem with the key path replaced by the label(s) it came from:
    ``container 'x': label 'traefik.http.routers.a.priority': expected an integer ...``."""
    m = _PATH.match(e.message)
    if m is None:
        return ElementProblem(e.kind, e.name, e.message)
    path = "traefik." + m.group(2).lower()
    exact = [k for k in c.labels if k.lower() == path]
    nested = sorted(k for k in c.labels if k.lower().startswith(path + ".") or k.lower().startswith(path + "["))
    found = exact or nested
    if not found:
        return ElementProblem(e.kind, e.name, e.message)
    shown = ", ".join(repr(k) for k in found[:3]) + (", ..." if len(found) > 3 else "")
    what = "label" if len(found) == 1 else "labels"
    return ElementProblem(e.kind, e.name, f"{m.group(1)}{what} {shown}: {e.message[m.end():]}")


_KINDS = (("http", "routers"), ("http", "services"), ("http", "middlewares"),
          ("http", "servers_transports"), ("tls", "options"), ("tls", "stores"))


def _merge(items: Sequence[tuple[str, Configuration, dict[str, Any]]],  # (container name, ...)
           ) -> tuple[Configuration, list[ElementProblem]]:
    maps: dict[tuple[str, str], dict[str, Any]] = {k: {} for k in _KINDS}
    owners: dict[tuple[str, str, str], list[str]] = {}
    conflicts: set[tuple[str, str, str]] = set()
    l4: dict[str, dict[str, dict[str, Any]]] = {}
    for key, cfg, raw_l4 in items:
        for part, attr in _KINDS:
            elements: Mapping[str, Any] = getattr(getattr(cfg, part), attr)
            target = maps[(part, attr)]
            for name, element in elements.items():
                ident = (part, attr, name)
                owners.setdefault(ident, []).append(key)
                if name not in target:
                    target[name] = element
                    continue
                merged = _merge_element(target[name], element)
                if merged is None:
                    conflicts.add(ident)
                else:
                    target[name] = merged
        for proto, sec in raw_l4.items():
            out = l4.setdefault(proto, {})
            for sub, elements in sec.items():
                if not isinstance(elements, dict):
                    continue
                target = out.setdefault(sub, {})
                for name, element in elements.items():
                    ident = (proto, sub, name)
                    owners.setdefault(ident, []).append(key)
                    if name not in target:
                        target[name] = element
                        continue
                    merged_raw = _merge_raw(target[name], element, sub)
                    if merged_raw is None:
                        conflicts.add(ident)
                    else:
                        target[name] = merged_raw
    problems: list[ElementProblem] = []
    for part, attr, name in sorted(conflicts):
        if (part, attr) in maps:
            maps[(part, attr)].pop(name, None)
            kind = f"{part}.{'serversTransports' if attr == 'servers_transports' else attr}"
        else:
            l4[part][attr].pop(name, None)
            kind = f"{part}.{attr}"
        containers = ", ".join(repr(n) for n in owners[(part, attr, name)])
        problems.append(ElementProblem(kind, name, f"{kind}.{name}: defined multiple times with different "
                                       f"configurations (labels 'traefik.{kind.lower()}.{name}.*' of "
                                       f"containers {containers}); left out"))
    config = Configuration(
        http=HTTPConfiguration(routers=maps[("http", "routers")], services=maps[("http", "services")],
                               middlewares=maps[("http", "middlewares")],
                               servers_transports=maps[("http", "servers_transports")]),
        tls=TLSConfiguration(options=maps[("tls", "options")], stores=maps[("tls", "stores")]),
        tcp=l4.get("tcp"), udp=l4.get("udp"))
    return config, problems


def _merge_element(old: Any, new: Any) -> Any:
    if old == new:
        return old
    if (isinstance(old, Service) and isinstance(new, Service) and old.load_balancer and new.load_balancer
            and old.load_balancer.model_copy(update={"servers": ()})
            == new.load_balancer.model_copy(update={"servers": ()})):
        servers = list(old.load_balancer.servers)
        urls = {srv.url for srv in servers}
        servers += [srv for srv in new.load_balancer.servers if srv.url not in urls]
        return old.model_copy(update={"load_balancer": old.load_balancer.model_copy(
            update={"servers": tuple(servers)})})
    return None


def _merge_raw(old: Any, new: Any, sub: str) -> Any:
    if old == new:
        return old
    if sub == "services" and isinstance(old, dict) and isinstance(new, dict):
        ok, olb = _ci_get(old, "loadBalancer")
        nk, nlb = _ci_get(new, "loadBalancer")
        if ok and nk and isinstance(olb, dict) and isinstance(nlb, dict):
            rest_old = {k: v for k, v in olb.items() if k != "servers"}
            rest_new = {k: v for k, v in nlb.items() if k != "servers"}
            if rest_old == rest_new:
                servers = list(olb.get("servers") or [])
                servers += [srv for srv in nlb.get("servers") or [] if srv not in servers]
                return {**old, ok: {**olb, "servers": servers}}
    return None
