"""The API's JSON, built once per :class:`~ferryman.control.compile.Snapshot`.

Shapes follow Traefik's ``pkg/api`` (``handler_http.go``, ``handler_overview.go``,
``handler_entrypoint.go``) and ``pkg/config/runtime``, checked against a running Traefik 3.7
(``tests/golden/api/README.md``): a router is its dynamic configuration (``entryPoints``,
``middlewares``, ``service``, ``rule``, ``ruleSyntax``, ``priority``, ``tls``, ``observability``)
followed by ``error`` (errors and warnings, one list as in Traefik), ``status``
(``enabled``/``warning``/``disabled``), ``using``, then ``name``, ``provider``, ``priorityStr``;
a service is its configuration then ``error``, ``status``, ``usedBy``, ``name``, ``provider``,
``type`` (``loadbalancer``, ``weighted``...) and ``serverStatus``; a middleware is
``{<type>: config}`` then ``error``, ``status``, ``usedBy``, ``name``, ``provider``, ``type``.

Every element is encoded once here; a request only selects, filters and concatenates bytes.
Statuses combine merge's (references, rules) with compile's (a builder that refused its
configuration; an HTTPS router not served yet), so the API says why something does not serve.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ferryman.api.certificates import CertItem, certificate_items
from ferryman.api.gojson import encode, go_fields
from ferryman.control.compile import Snapshot
from ferryman.dynamic.merge import MiddlewareInfo, RouterInfo, ServiceInfo
from ferryman.dynamic.models import LoadBalancer, Router, Service
from ferryman.static.models import StaticConfig

__all__ = ["ApiViews", "Item", "Listing", "StaticViews", "build_static_views", "build_views"]

INTERNAL = "internal"


@dataclass(frozen=True, slots=True)
class Item:
    """One element of a list endpoint: its encoded JSON and what filters and sorting look at."""

    name: str
    body: bytes
    status: str = ""
    provider: str = ""
    rule: str = ""
    service: str = ""
    middlewares: tuple[str, ...] = ()
    priority: int = 0
    entry_points: int = 0
    type: str = ""
    servers: int = 0


@dataclass(frozen=True)
class Listing:
    """A list endpoint's elements sorted by name (Traefik's default order), and by name."""

    items: tuple[Item, ...] = ()
    by_name: Mapping[str, Item] = field(default_factory=dict)

    @classmethod
    def of(cls, items: Iterable[Item]) -> Listing:
        ordered = tuple(sorted(items, key=lambda i: i.name))
        return cls(ordered, {i.name: i for i in ordered})


EMPTY = Listing()


@dataclass(frozen=True)
class StaticViews:
    """What depends on the static configuration only (built once at startup)."""

    entry_points: Listing
    features: dict[str, Any]
    providers: tuple[str, ...]


@dataclass(frozen=True)
class ApiViews:
    routers: Listing
    services: Listing
    middlewares: Listing
    overview: bytes
    rawdata: bytes
    #: sorted by common name; ``cert_by_name`` by fingerprint (the URL id)
    certificates: tuple[CertItem, ...] = ()
    cert_by_name: Mapping[str, CertItem] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Static: entry points, features, providers

#: Traefik's static ``Providers`` struct: Go field name per key, in declaration order.
_PROVIDER_FIELDS: tuple[tuple[str, str], ...] = (
    ("docker", "Docker"), ("swarm", "Swarm"), ("file", "File"), ("kubernetesIngress", "KubernetesIngress"),
    ("kubernetesIngressNGINX", "KubernetesIngressNGINX"), ("kubernetesCRD", "KubernetesCRD"),
    ("kubernetesGateway", "KubernetesGateway"), ("knative", "Knative"), ("rest", "Rest"),
    ("consulCatalog", "ConsulCatalog"), ("nomad", "Nomad"), ("ecs", "Ecs"), ("consul", "Consul"),
    ("etcd", "Etcd"), ("zooKeeper", "ZooKeeper"), ("redis", "Redis"), ("http", "HTTP"),
)
_METRICS_FIELDS = (("prometheus", "Prometheus"), ("datadog", "Datadog"), ("statsd", "StatsD"),
                   ("influxdb2", "InfluxDB2"), ("otlp", "OTLP"))

#: Entry point keys Traefik writes even when false (``*bool``) / only when configured (nil pointers).
_EP_ALWAYS = frozenset({"sanitizePath"})
_EP_ONLY_IF_SET = frozenset({"observability", "encodedCharacters", "underscoreHeadersStrategy", "http3"})


def _entry_point_json(name: str, ep: BaseModel) -> dict[str, Any]:
    out = go_fields(ep, always=_EP_ALWAYS, only_if_set=_EP_ONLY_IF_SET)
    out["name"] = name
    return out


def build_static_views(static: StaticConfig) -> StaticViews:
    items = [Item(name=name, body=encode(_entry_point_json(name, ep), newline=False))
             for name, ep in static.entry_points.items()]
    providers: list[str] = []
    for key, go_name in _PROVIDER_FIELDS:
        attr = next((n for n, f in type(static.providers).model_fields.items() if (f.alias or n) == key), None)
        if attr is not None and getattr(static.providers, attr) is not None:
            providers.append(go_name)
    if static.providers.plugin:
        providers.extend(f"plugin-{k}" for k in static.providers.plugin)
    metrics = ""
    if static.metrics is not None:
        metrics = next((go for attr, go in _METRICS_FIELDS if getattr(static.metrics, attr, None) is not None), "")
    features = {"tracing": "OTLP" if static.tracing is not None else "", "metrics": metrics,
                "accessLog": static.access_log is not None}
    return StaticViews(entry_points=Listing.of(items), features=features, providers=tuple(providers))


# --------------------------------------------------------------------------------------------
# Dynamic: routers, services, middlewares


def _dump(model: BaseModel, **kw: Any) -> dict[str, Any]:
    return go_fields(model, **kw)


def _observability(cfg: Router) -> dict[str, Any]:
    obs = cfg.observability
    out: dict[str, Any] = {"accessLogs": True, "metrics": True, "tracing": True, "traceVerbosity": "minimal"}
    if obs is not None:
        for attr, key in (("access_logs", "accessLogs"), ("metrics", "metrics"), ("tracing", "tracing"),
                          ("trace_verbosity", "traceVerbosity")):
            value = getattr(obs, attr)
            if value is not None:
                out[key] = value
    return out


def _router_json(info: RouterInfo, errors: Sequence[str], status: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cfg = info.config
    if cfg is not None:
        if info.entry_points:
            out["entryPoints"] = list(info.entry_points)
        if cfg.middlewares:
            out["middlewares"] = list(cfg.middlewares)
        if cfg.service:
            out["service"] = cfg.service
        if cfg.rule:
            out["rule"] = cfg.rule
        syntax = "default" if info.provider == INTERNAL else cfg.rule_syntax
        if syntax:
            out["ruleSyntax"] = syntax
        if info.priority:
            out["priority"] = info.priority
        if cfg.tls is not None:
            tls = _dump(cfg.tls)
            out["tls"] = {"options": cfg.tls.options or "default", **{k: v for k, v in tls.items() if k != "options"}}
        out["observability"] = _observability(cfg)
    if errors:
        out["error"] = list(errors)
    out["status"] = status
    if info.using:
        out["using"] = list(info.using)
    return out


_LB_ORDER = ("sticky", "servers", "strategy", "healthCheck", "passiveHealthCheck", "passHostHeader",
             "responseForwarding", "serversTransport")


def _load_balancer_json(lb: LoadBalancer) -> tuple[dict[str, Any], list[str]]:
    raw = _dump(lb, always=("passHostHeader",))
    raw.setdefault("responseForwarding", {"flushInterval": "100ms"})
    middlewares = raw.pop("middlewares", [])
    out = {k: raw.pop(k) for k in _LB_ORDER if k in raw}
    out.update(raw)
    return out, list(middlewares)


def _service_config_json(cfg: Service) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if cfg.load_balancer is not None:
        lb, middlewares = _load_balancer_json(cfg.load_balancer)
        if middlewares:
            out["middlewares"] = middlewares
        out["loadBalancer"] = lb
        return out
    for attr in ("highest_random_weight", "weighted", "mirroring", "failover"):
        section = getattr(cfg, attr)
        if section is None:
            continue
        key = type(cfg).model_fields[attr].alias or attr
        body = _dump(section)
        if attr in ("weighted", "highest_random_weight"):
            # WRRService.SetDefaults: weight 1
            body["services"] = [{"name": ref.name, "weight": 1 if ref.weight is None else ref.weight}
                                for ref in section.services]
            if not body["services"]:
                del body["services"]
        out[key] = body
    return out


def _service_json(info: ServiceInfo, errors: Sequence[str], status: str, used_by: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = _service_config_json(info.config) if info.config is not None else {}
    if errors:
        out["error"] = list(errors)
    out["status"] = status
    if used_by:
        out["usedBy"] = list(used_by)
    return out


def _middleware_json(info: MiddlewareInfo, errors: Sequence[str], status: str,
                     used_by: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cfg = info.config
    if cfg is not None:
        for name, fld in type(cfg).model_fields.items():
            value = getattr(cfg, name)
            if value is None:
                continue
            key = fld.alias or name
            out[key] = _dump(value) if isinstance(value, BaseModel) else dict(value)
    if errors:
        out["error"] = list(errors)
    out["status"] = status
    if used_by:
        out["usedBy"] = list(used_by)
    return out


def _extra(snapshot: Snapshot, kinds: tuple[str, ...]) -> dict[str, tuple[list[str], list[str]]]:
    """Compile's findings per element name: (errors, warnings) beyond merge's own diagnostics."""
    found: dict[str, tuple[list[str], list[str]]] = {}
    merged_count = len(snapshot.merged.diagnostics)
    for diag in snapshot.diagnostics[merged_count:]:
        if diag.kind not in kinds:
            continue
        errors, warnings = found.setdefault(diag.name, ([], []))
        (errors if diag.level == "error" else warnings).append(diag.message)
    return found


def _status_of(base: str, errors: Sequence[str], warnings: Sequence[str], disabled: bool) -> str:
    if disabled or base == "disabled":
        return "disabled"
    if base == "warning" or errors or warnings:
        return "warning"
    return "enabled"


def _messages(*groups: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(m for group in groups for m in group))


def _section(items: Sequence[Item]) -> dict[str, int]:
    return {"total": len(items), "warnings": sum(1 for i in items if i.status == "warning"),
            "errors": sum(1 for i in items if i.status == "disabled")}


_EMPTY_SECTION = {"total": 0, "warnings": 0, "errors": 0}


def build_views(snapshot: Snapshot | None, static: StaticViews, now: datetime.datetime | None = None,
                router_problems: Mapping[str, Sequence[str]] | None = None) -> ApiViews:
    """Encode every router, service, middleware and certificate of ``snapshot`` once
    (certificate statuses as of ``now``; ``router_problems``: warnings found outside the snapshot,
    by the router's own qualified name)."""
    raw_routers: dict[str, Any] = {}
    raw_services: dict[str, Any] = {}
    raw_middlewares: dict[str, Any] = {}
    routers: list[Item] = []
    services: list[Item] = []
    middlewares: list[Item] = []
    if snapshot is not None:
        merged = snapshot.merged
        router_extra = _extra(snapshot, ("http.routers", "router"))
        service_extra = _extra(snapshot, ("http.services", "service"))
        for name, rinfo in merged.routers.items():
            cerr, cwarn = router_extra.get(name, ([], []))
            if router_problems:
                cwarn = [*cwarn, *router_problems.get(rinfo.origin or name, ())]
            errors = _messages(rinfo.errors, cerr, rinfo.warnings, cwarn)
            status = _status_of(rinfo.status, cerr, cwarn, name in snapshot.disabled)
            body = _router_json(rinfo, errors, status)
            raw_routers[name] = body
            cfg = rinfo.config
            routers.append(Item(
                name=name, status=status, provider=rinfo.provider,
                body=encode({**body, "name": name, "provider": rinfo.provider,
                             "priorityStr": str(rinfo.priority)}, newline=False),
                rule=cfg.rule if cfg is not None else "", service=rinfo.service,
                middlewares=tuple(cfg.middlewares) if cfg is not None else (), priority=rinfo.priority,
                entry_points=len(rinfo.entry_points)))
        users = set(merged.routers)
        for name, sinfo in merged.services.items():
            cerr, cwarn = service_extra.get(name, ([], []))
            errors = _messages(sinfo.errors, cerr, sinfo.warnings, cwarn)
            status = _status_of(sinfo.status, cerr, cwarn, name in snapshot.disabled)
            used_by = [u for u in sinfo.used_by if u in users]
            lb = sinfo.config.load_balancer if sinfo.config is not None else None
            server_status: dict[str, str] | None = None
            if lb is not None and name in snapshot.built_services and status != "disabled":
                # No health checks yet: every server of a built load balancer is UP, as in Traefik.
                server_status = {s.url: "UP" for s in sorted(lb.servers, key=lambda s: s.url)} or None
            body = _service_json(sinfo, errors, status, used_by)
            kind = sinfo.kind.lower() if sinfo.config is not None else ""
            raw_services[name] = {**body, **({"serverStatus": server_status} if server_status else {})}
            listed = {**body, "name": name, "provider": sinfo.provider}
            if kind:
                listed["type"] = kind
            if server_status:
                listed["serverStatus"] = server_status
            services.append(Item(name=name, status=status, provider=sinfo.provider, body=encode(listed, newline=False),
                                 type=kind, servers=len(lb.servers) if lb is not None else 0))
        mw_users = users | set(merged.services)
        for name, minfo in merged.middlewares.items():
            used_by = [u for u in minfo.used_by if u in mw_users]
            errors = _messages(minfo.errors, minfo.warnings)
            status = _status_of(minfo.status, (), (), name in snapshot.disabled)
            body = _middleware_json(minfo, errors, status, used_by)
            raw_middlewares[name] = body
            kind = minfo.kind.lower() if minfo.config is not None else ""
            listed = {**body, "name": name, "provider": minfo.provider}
            if kind:
                listed["type"] = kind
            middlewares.append(Item(name=name, status=status, provider=minfo.provider,
                                    body=encode(listed, newline=False), type=kind))
    r, s, m = Listing.of(routers), Listing.of(services), Listing.of(middlewares)
    certs = certificate_items(snapshot.tls_store if snapshot is not None else None,
                              now or datetime.datetime.now(datetime.UTC))
    overview: dict[str, Any] = {
        "http": {"routers": _section(r.items), "services": _section(s.items), "middlewares": _section(m.items)},
        "tcp": {"routers": _EMPTY_SECTION, "services": _EMPTY_SECTION, "middlewares": _EMPTY_SECTION},
        "udp": {"routers": _EMPTY_SECTION, "services": _EMPTY_SECTION},
        "certificates": {"total": len(certs), "warnings": sum(1 for c in certs if c.status == "warning"),
                         "errors": sum(1 for c in certs if c.status == "expired")},
        "features": static.features,
    }
    if static.providers:
        overview["providers"] = list(static.providers)
    rawdata: dict[str, Any] = {}
    for key, table in (("routers", raw_routers), ("middlewares", raw_middlewares), ("services", raw_services)):
        if table:
            rawdata[key] = dict(sorted(table.items()))
    return ApiViews(routers=r, services=s, middlewares=m, overview=encode(overview), rawdata=encode(rawdata),
                    certificates=tuple(certs), cert_by_name={c.name: c for c in certs})
