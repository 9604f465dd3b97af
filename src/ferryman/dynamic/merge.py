"""Merge: every provider's configuration → one resolved, diagnosed configuration.

Pure and deterministic: it never mutates its input and returns new frozen values. It follows what
Traefik does between its providers and its router/service/middleware managers
(``pkg/server/aggregator.go``, ``pkg/provider/traefik/internal.go``, ``pkg/server/router``,
``pkg/server/service``, ``pkg/server/middleware``, ``pkg/config/runtime``):

* Elements are named ``name@provider``; a reference without ``@`` resolves in the referencing
  element's provider, ``x@other`` across providers.
* The internal provider contributes ``noop@internal`` and, per entry point with
  ``http.redirections.entryPoint``, the router ``<ep>-to-<to>@internal`` and its
  ``redirect-<ep>-to-<to>@internal`` ``redirectScheme`` middleware.
* Entry-point "models" (``http.middlewares``, ``http.tls``, observability, ...) are applied as
  Traefik's ``applyModel`` does: on an entry point with a model, a router gets that entry point's
  middlewares prepended and its TLS default; a router on several entry points is split into one
  copy per entry point with a model, named ``<ep>-<name>@<provider>``.
* Every element gets a status — ``enabled``, ``warning`` (serving, with something to fix) or
  ``disabled`` (not serving) — with messages that name the element, the problem and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from ferryman.dynamic.models import (
    IMPLEMENTED_MIDDLEWARES,
    Certificate,
    Configuration,
    Middleware,
    RedirectScheme,
    Router,
    RouterObservability,
    RouterTLS,
    ServersTransport,
    Service,
    TLSConfiguration,
    TLSOptions,
    TLSStore,
)
from ferryman.errors import RuleError
from ferryman.rules import CompiledRule, compile_rule

__all__ = [
    "DEFAULT_PRECEDENCE",
    "DEFAULT_REDIRECT_PRIORITY",
    "MAX_INT",
    "MAX_USER_PRIORITY",
    "Diagnostic",
    "EntryPointInfo",
    "MergeSettings",
    "Merged",
    "MiddlewareInfo",
    "Redirect",
    "RejectedElement",
    "RouterInfo",
    "ServersTransportInfo",
    "ServiceInfo",
    "Status",
    "merge",
    "normalize",
]

#: Go's ``math.MaxInt`` on 64-bit platforms.
MAX_INT = 2**63 - 1
#: Routers above this priority are rejected unless they come from the internal provider.
MAX_USER_PRIORITY = MAX_INT - 1000
#: ``http.redirections.entryPoint.priority`` default (``static.RedirectEntryPoint.SetDefaults``).
DEFAULT_REDIRECT_PRIORITY = MAX_INT - 1
#: ``providers.precedence`` default (traefik.md §1.4); earlier wins a priority tie.
DEFAULT_PRECEDENCE: tuple[str, ...] = (
    "kubernetesgateway", "kubernetescrd", "kubernetes", "kubernetesingressnginx", "swarm", "docker",
    "file", "redis", "knative", "consul", "consulcatalog", "nomad", "etcd", "ecs", "http",
    "zookeeper", "rest",
)

INTERNAL = "internal"
#: Traefik's internal entry point (api, dashboard); never a default entry point for routers.
INTERNAL_ENTRY_POINT = "traefik"
DEFAULT_TRANSPORT = "default@internal"
DEFAULT_TLS_OPTIONS = "default"
DEFAULT_TLS_STORE = "default"

_T = TypeVar("_T")

Status = Literal["enabled", "warning", "disabled"]
Level = Literal["error", "warning"]


# --------------------------------------------------------------------------------------------
# Settings (from the static configuration)


@dataclass(frozen=True)
class Redirect:
    """``entryPoints.<ep>.http.redirections.entryPoint``: ``to`` is an entry point name or ``:port``."""

    to: str
    scheme: str = "https"
    permanent: bool = True
    priority: int = DEFAULT_REDIRECT_PRIORITY


@dataclass(frozen=True)
class EntryPointInfo:
    """What merge needs to know about one static entry point.

    ``port`` comes from the address (``:443`` → 443; ``None`` if unknown); ``protocol`` ``"udp"``
    entry points carry no HTTP routers. ``tls`` is ``http.tls``: ``True`` for ``tls: {}`` or a
    :class:`RouterTLS` with its options/certResolver/domains. ``observability`` is the entry
    point's ``observability`` section and ``model`` forces a model for settings merge does not
    otherwise see (``http.encodedCharacters``): both change how routers are split, as in Traefik.
    """

    name: str
    port: int | None = None
    protocol: Literal["tcp", "udp"] = "tcp"
    as_default: bool = False
    middlewares: tuple[str, ...] = ()
    tls: bool | RouterTLS = False
    redirect: Redirect | None = None
    observability: RouterObservability | None = None
    allow_acme_bypass: bool = False
    model: bool = False

    @property
    def tls_config(self) -> RouterTLS | None:
        if isinstance(self.tls, RouterTLS):
            return self.tls
        return RouterTLS() if self.tls else None


@dataclass(frozen=True)
class MergeSettings:
    """Static settings merge depends on.

    ``core_rule_syntax`` is true when the static ``core.defaultRuleSyntax`` is *set* (even to
    ``v3``): Traefik then creates a model for every entry point, which splits every router that
    sits on several entry points. ``internal_services`` are the ``*@internal`` services ferryman
    itself answers (``noop``; the app adds ``api``, ``dashboard``, ``ping``, ... when enabled).
    """

    entry_points: tuple[EntryPointInfo, ...] = ()
    default_rule_syntax: str = "v3"
    core_rule_syntax: bool = False
    precedence: tuple[str, ...] = DEFAULT_PRECEDENCE
    internal_services: tuple[str, ...] = ("noop",)


class RejectedElement(Protocol):
    """An element a decoder dropped (``decode.ElementError``, ``providers.base.ElementProblem``)."""

    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def message(self) -> str: ...


# --------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Diagnostic:
    """One thing worth reporting: ``kind`` is ``router``, ``service``, ``middleware``,
    ``serversTransport``, ``tls.options``, ``tls.stores`` or ``entryPoint``."""

    kind: str
    name: str
    level: Level
    message: str

    def render(self) -> str:
        return f'{self.kind} "{self.name}": {self.message}'


@dataclass(frozen=True)
class RouterInfo:
    """A router after merge.

    ``config`` has qualified ``service``/``middlewares`` (entry-point middlewares first) and the
    entry point's TLS default applied; it is ``None`` when the decoder rejected the router.
    ``entry_points`` are the ones configured (or the defaults), ``using`` those that exist.
    ``middleware_chain`` is the flattened list of leaf middlewares to apply, in order.
    ``origin`` is the router's own qualified name (differs from ``name`` for per-entry-point copies).
    """

    name: str
    provider: str
    config: Router | None
    entry_points: tuple[str, ...]
    using: tuple[str, ...]
    rule: CompiledRule | None
    priority: int
    provider_rank: int
    tls: bool
    tls_options: str | None
    middleware_chain: tuple[str, ...]
    status: Status
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    origin: str = ""

    @property
    def service(self) -> str:
        return self.config.service if self.config is not None else ""

    @property
    def serving(self) -> bool:
        return self.status != "disabled"


@dataclass(frozen=True)
class ServiceInfo:
    """A service after merge. ``config`` has qualified references; it is ``None`` for services
    ferryman answers itself (``noop@internal``, ...) and for services the decoder rejected.
    ``kind`` is ``loadBalancer``, ``weighted``, ``mirroring``, ``failover``,
    ``highestRandomWeight``, ``internal`` or ``""`` (rejected)."""

    name: str
    provider: str
    config: Service | None
    kind: str
    status: Status
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    used_by: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    middleware_chain: tuple[str, ...] = ()


@dataclass(frozen=True)
class MiddlewareInfo:
    """A middleware after merge; ``expanded`` is the leaf middlewares it stands for (a chain
    flattened, recursively; a leaf is just itself)."""

    name: str
    provider: str
    config: Middleware | None
    kind: str
    expanded: tuple[str, ...]
    status: Status
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    used_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServersTransportInfo:
    """A servers transport; ``default@internal`` (the static ``serversTransport``) always exists,
    with ``config`` ``None`` meaning the defaults."""

    name: str
    provider: str
    config: ServersTransport | None
    status: Status
    errors: tuple[str, ...] = ()
    used_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Merged:
    routers: dict[str, RouterInfo]
    services: dict[str, ServiceInfo]
    middlewares: dict[str, MiddlewareInfo]
    servers_transports: dict[str, ServersTransportInfo]
    tls: TLSConfiguration
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def routers_on(self, entry_point: str, *, tls: bool) -> list[RouterInfo]:
        """Serving routers on ``entry_point`` for its TLS (``tls=True``) or plain-HTTP side, in
        routing order (priority desc, provider precedence, name)."""
        found = [r for r in self.routers.values()
                 if r.serving and r.tls == tls and entry_point in r.using and r.rule is not None]
        found.sort(key=lambda r: (-r.priority, r.provider_rank, r.name))
        return found


# --------------------------------------------------------------------------------------------
# Helpers


def normalize(name: str) -> str:
    """Traefik's ``provider.Normalize``: runs of non-letters/digits become ``-``."""
    return "-".join(re.findall(r"[^\W_]+", name))


def qualify(ref: str, provider: str) -> str:
    """A reference as Traefik's ``GetQualifiedName``: without ``@`` it belongs to ``provider``."""
    return ref if "@" in ref else f"{ref}@{provider}"


def _provider_of(qname: str) -> str:
    return qname.rsplit("@", 1)[1] if "@" in qname else ""


def _known(missing: str, names: Iterable[str], limit: int = 10) -> str:
    names = sorted(names)
    if not names:
        return "none is defined"
    close = _closest(missing, names)
    shown = ", ".join(names[:limit]) + (f", and {len(names) - limit} more" if len(names) > limit else "")
    if close:
        return f'did you mean "{close}"? known: {shown}'
    return f"known: {shown}"


def _closest(missing: str, names: Sequence[str]) -> str | None:
    """The known name ``missing`` was probably meant as: compared on the local part (before
    ``@``), so the shared ``@provider`` suffix does not make every name look alike."""
    local = missing.rsplit("@", 1)[0]
    by_local: dict[str, list[str]] = {}
    for name in names:
        by_local.setdefault(name.rsplit("@", 1)[0], []).append(name)
    if local in by_local:
        return by_local[local][0]
    close = difflib.get_close_matches(local, list(by_local), n=1, cutoff=0.6)
    return by_local[close[0]][0] if close else None


def _status(errors: Sequence[str], warnings: Sequence[str], critical: bool) -> Status:
    if critical:
        return "disabled"
    if errors or warnings:
        return "warning"
    return "enabled"


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _first_line(messages: Sequence[str]) -> str:
    return messages[0].splitlines()[0] if messages else "disabled"


class _Report:
    """Mutable per-element findings while merging."""

    __slots__ = ("critical", "errors", "warnings")

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.critical = False

    def error(self, message: str, *, critical: bool = True) -> None:
        if message not in self.errors:
            self.errors.append(message)
        self.critical = self.critical or critical

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    @property
    def status(self) -> Status:
        return _status(self.errors, self.warnings, self.critical)


def _find_cycles(nodes: Iterable[str], edges: Callable[[str], Sequence[str]], kind: str) -> dict[str, str]:
    """Every node that lies on a cycle → ``recursion detected: kind:a -> kind:b -> kind:a``."""
    color: dict[str, int] = {}
    path: list[str] = []
    found: dict[str, str] = {}

    def visit(node: str) -> None:
        color[node] = 1
        path.append(node)
        for nxt in edges(node):
            state = color.get(nxt, 0)
            if state == 0:
                visit(nxt)
            elif state == 1:
                cycle = [*path[path.index(nxt):], nxt]
                text = "recursion detected: " + " -> ".join(f"{kind}:{n}" for n in cycle)
                for member in cycle:
                    found.setdefault(member, text)
        path.pop()
        color[node] = 2

    for node in sorted(nodes):
        if color.get(node, 0) == 0:
            visit(node)
    return found


# --------------------------------------------------------------------------------------------
# The merge


def merge(configs: Mapping[str, Configuration], settings: MergeSettings, *,
          rejected: Mapping[str, Sequence[RejectedElement]] | None = None) -> Merged:
    """Merge the providers' configurations (``{"file": cfg, "docker": cfg, ...}``).

    ``rejected`` (optional) lists per provider the elements its decoder dropped, so they appear
    as disabled with the decoder's message and their users say *why* the reference fails.
    """
    return _Merger(configs, settings, rejected or {}).run()


_REJECTED_KINDS = {
    "http.routers": "routers",
    "http.services": "services",
    "http.middlewares": "middlewares",
    "http.serversTransports": "transports",
    "tls.options": "tls_options",
    "tls.stores": "tls_stores",
}


@dataclass
class _Element:
    provider: str
    name: str
    config: Any
    rejected: list[str] = field(default_factory=list)

    @property
    def qname(self) -> str:
        return f"{self.name}@{self.provider}"


class _Merger:
    def __init__(self, configs: Mapping[str, Configuration], settings: MergeSettings,
                 rejected: Mapping[str, Sequence[RejectedElement]]) -> None:
        self.configs = configs
        self.settings = settings
        self.rejected = rejected
        self.eps = {ep.name: ep for ep in settings.entry_points}
        self.http_eps = {name for name, ep in self.eps.items() if ep.protocol != "udp"}
        self.diagnostics: list[Diagnostic] = []
        self.rank = {name: i for i, name in enumerate(settings.precedence)}
        # qualified name -> element
        self.routers: dict[str, _Element] = {}
        self.services: dict[str, _Element] = {}
        self.middlewares: dict[str, _Element] = {}
        self.transports: dict[str, _Element] = {}
        self.tls_options: dict[str, _Element] = {}
        self.tls_stores: dict[str, _Element] = {}
        self.used_by: dict[str, dict[str, list[str]]] = {
            "service": {}, "middleware": {}, "transport": {}}
        self.ep_reports: dict[str, _Report] = {}
        self.default_options_providers: list[str] = []
        self.default_store_providers: list[str] = []

    # -- collection -----------------------------------------------------------------------------

    def run(self) -> Merged:
        self._collect()
        middlewares = self._middlewares()
        transports_known = set(self.transports)
        services = self._services(middlewares, transports_known)
        tls, tls_errors = self._tls()
        routers = self._routers(middlewares, services, tls, tls_errors)
        self._tls_conflicts(routers)
        return self._finish(routers, services, middlewares, tls)

    def _collect(self) -> None:
        providers = sorted(p for p in self.configs if p != INTERNAL)
        for provider in providers:
            self._add_config(provider, self.configs[provider])
        self._add_internal()
        for provider in sorted(self.rejected):
            for item in self.rejected[provider]:
                attr = _REJECTED_KINDS.get(item.kind)
                if attr is None:
                    continue
                table: dict[str, _Element] = getattr(self, attr)
                if attr == "tls_options":
                    qname = _tls_key(item.name, provider, DEFAULT_TLS_OPTIONS)
                elif attr == "tls_stores":
                    qname = _tls_key(item.name, provider, DEFAULT_TLS_STORE)
                else:
                    qname = f"{item.name}@{provider}"
                element = table.get(qname)
                if element is None:
                    element = table[qname] = _Element(provider, item.name, None)
                if element.config is None:
                    element.rejected.append(item.message)

    def _add_config(self, provider: str, cfg: Configuration) -> None:
        for name, router in cfg.http.routers.items():
            self.routers[f"{name}@{provider}"] = _Element(provider, name, router)
        for name, service in cfg.http.services.items():
            self.services[f"{name}@{provider}"] = _Element(provider, name, service)
        for name, mw in cfg.http.middlewares.items():
            self.middlewares[f"{name}@{provider}"] = _Element(provider, name, mw)
        for name, st in cfg.http.servers_transports.items():
            self.transports[f"{name}@{provider}"] = _Element(provider, name, st)
        for name, opts in cfg.tls.options.items():
            if name == DEFAULT_TLS_OPTIONS:
                self.default_options_providers.append(provider)
            self.tls_options.setdefault(_tls_key(name, provider, DEFAULT_TLS_OPTIONS),
                                        _Element(provider, name, opts))
        for name, store in cfg.tls.stores.items():
            if name == DEFAULT_TLS_STORE:
                self.default_store_providers.append(provider)
            self.tls_stores.setdefault(_tls_key(name, provider, DEFAULT_TLS_STORE),
                                       _Element(provider, name, store))

    def _add_internal(self) -> None:
        """The internal provider: what the static configuration implies, plus ``configs["internal"]``."""
        given = self.configs.get(INTERNAL)
        if given is not None:
            self._add_config(INTERNAL, given)
        for name in self.settings.internal_services:
            self.services.setdefault(f"{name}@{INTERNAL}", _Element(INTERNAL, name, None))
        self.transports.setdefault(DEFAULT_TRANSPORT, _Element(INTERNAL, "default", None))
        for ep in sorted(self.settings.entry_points, key=lambda e: e.name):
            redirect = ep.redirect
            if redirect is None:
                continue
            report = self.ep_reports.setdefault(ep.name, _Report())
            if not redirect.to:
                report.error("unable to create the redirection: the entry point or the port is missing "
                             "(fix: set http.redirections.entryPoint.to to an entry point name or ':port')")
                continue
            port_match = re.fullmatch(r":(\d+)", redirect.to)
            if port_match:
                port = port_match.group(1)
            else:
                target = self.eps.get(redirect.to)
                if target is None:
                    report.error(f"http.redirections.entryPoint.to references a non-existing entry point "
                                 f"{redirect.to!r} ({_known(redirect.to, self.eps)})")
                    continue
                if target.port is None:
                    report.error(f"cannot redirect to entry point {redirect.to!r}: its address has no port")
                    continue
                port = str(target.port)
            rt_name = normalize(f"{ep.name}-to-{redirect.to}")
            md_name = f"redirect-{rt_name}"
            rule = "HostRegexp(`^.+$`)"
            if ep.allow_acme_bypass:
                rule += " && !PathPrefix(`/.well-known/acme-challenge/`)"
            router = Router(rule=rule, rule_syntax="v3", entry_points=(ep.name,), middlewares=(md_name,),
                            service=f"noop@{INTERNAL}", priority=redirect.priority)
            middleware = Middleware(redirect_scheme=RedirectScheme(
                scheme=redirect.scheme, port=port, permanent=redirect.permanent))
            self.routers.setdefault(f"{rt_name}@{INTERNAL}", _Element(INTERNAL, rt_name, router))
            self.middlewares.setdefault(f"{md_name}@{INTERNAL}", _Element(INTERNAL, md_name, middleware))

    def _use(self, what: str, target: str, user: str) -> None:
        users = self.used_by[what].setdefault(target, [])
        if user not in users:
            users.append(user)

    # -- middlewares ----------------------------------------------------------------------------

    def _members(self, qname: str) -> list[str]:
        element = self.middlewares.get(qname)
        if element is None or element.config is None or element.config.chain is None:
            return []
        return [qualify(m, element.provider) for m in element.config.chain.middlewares]

    def _middlewares(self) -> dict[str, MiddlewareInfo]:
        cycles = _find_cycles(self.middlewares, lambda n: [m for m in self._members(n) if m in self.middlewares],
                              "middleware")
        done: dict[str, MiddlewareInfo] = {}

        def resolve(qname: str) -> MiddlewareInfo:
            info = done.get(qname)
            if info is not None:
                return info
            element = self.middlewares[qname]
            report = _Report()
            config: Middleware | None = element.config
            kind = config.kind if config is not None else ""
            expanded: tuple[str, ...] = ()
            if config is None:
                for message in element.rejected or ["the middleware is invalid"]:
                    report.error(message)
            elif qname in cycles:
                report.error(cycles[qname] + " (fix: a chain must not include itself, directly or "
                                             "through other chains)")
                config = self._qualified_middleware(element)
            elif config.chain is not None:
                leaves: list[str] = []
                for member in self._members(qname):
                    self._use("middleware", member, qname)
                    if member not in self.middlewares:
                        report.error(f'middleware "{member}" does not exist '
                                     f'({_known(member, self.middlewares)})')
                        continue
                    sub = resolve(member)
                    if sub.status == "disabled":
                        report.error(f'middleware "{member}" is disabled: {_first_line(sub.errors)}')
                        continue
                    leaves.extend(sub.expanded)
                expanded = tuple(leaves)
                config = self._qualified_middleware(element)
            elif kind not in IMPLEMENTED_MIDDLEWARES:
                report.error(f"middleware type {kind!r} is not implemented in ferryman yet "
                             "(fix: remove it from the routers that use it, or use a supported type)")
            else:
                expanded = (qname,)
            if report.critical:
                expanded = ()
            info = MiddlewareInfo(name=qname, provider=element.provider, config=config, kind=kind,
                                  expanded=expanded, status=report.status, errors=tuple(report.errors),
                                  warnings=tuple(report.warnings))
            done[qname] = info
            return info

        for qname in sorted(self.middlewares):
            resolve(qname)
        return done

    def _qualified_middleware(self, element: _Element) -> Middleware:
        config: Middleware = element.config
        if config.chain is None:
            return config
        chain = config.chain.model_copy(update={
            "middlewares": tuple(qualify(m, element.provider) for m in config.chain.middlewares)})
        return config.model_copy(update={"chain": chain})

    def _check_middlewares(self, refs: Sequence[str], user: str, report: _Report,
                           middlewares: Mapping[str, MiddlewareInfo]) -> tuple[str, ...]:
        """Check qualified middleware references of a router or service; return the leaf chain."""
        chain: list[str] = []
        for ref in refs:
            self._use("middleware", ref, user)
            info = middlewares.get(ref)
            if info is None:
                report.error(f'middleware "{ref}" does not exist ({_known(ref, middlewares)})')
                continue
            if info.status == "disabled":
                if info.config is not None and info.config.chain is None \
                        and info.kind not in IMPLEMENTED_MIDDLEWARES:
                    report.error(f'middleware "{ref}" is a {info.kind} middleware, which ferryman does not '
                                 "implement yet")
                else:
                    report.error(f'middleware "{ref}" is disabled: {_first_line(info.errors)}')
                continue
            chain.extend(info.expanded)
        return tuple(chain)

    # -- services -------------------------------------------------------------------------------

    def _children(self, qname: str) -> list[str]:
        element = self.services.get(qname)
        if element is None or element.config is None:
            return []
        svc: Service = element.config
        p = element.provider
        refs: list[str] = []
        if svc.weighted is not None:
            refs = [s.name for s in svc.weighted.services]
        elif svc.highest_random_weight is not None:
            refs = [s.name for s in svc.highest_random_weight.services]
        elif svc.mirroring is not None:
            refs = [svc.mirroring.service, *(m.name for m in svc.mirroring.mirrors)]
        elif svc.failover is not None:
            refs = [svc.failover.service, svc.failover.fallback]
        return [qualify(r, p) for r in refs if r]

    def _services(self, middlewares: Mapping[str, MiddlewareInfo],
                  transports: set[str]) -> dict[str, ServiceInfo]:
        cycles = _find_cycles(self.services, lambda n: [c for c in self._children(n) if c in self.services],
                              "service")
        done: dict[str, ServiceInfo] = {}

        def resolve(qname: str) -> ServiceInfo:
            info = done.get(qname)
            if info is not None:
                return info
            element = self.services[qname]
            report = _Report()
            config: Service | None = element.config
            children = tuple(self._children(qname))
            chain: tuple[str, ...] = ()
            kind = config.kind if config is not None else ("" if element.rejected else "internal")
            for child in children:
                self._use("service", child, qname)
            if config is None:
                for message in element.rejected:
                    report.error(message)
            else:
                config = self._qualified_service(element)
                if qname in cycles:
                    report.error(cycles[qname] + " (fix: a service must not include itself, directly or "
                                                 "through other services)")
                else:
                    for child in children:
                        if child not in self.services:
                            report.error(f'service "{child}" does not exist ({_known(child, self.services)})')
                            continue
                        sub = resolve(child)
                        if sub.status == "disabled":
                            report.error(f'service "{child}" is disabled: {_first_line(sub.errors)}')
                if config.load_balancer is not None:
                    chain = self._check_load_balancer(qname, config, report, middlewares, transports)
                elif config.weighted is not None and not config.weighted.services:
                    report.warn("the weighted service has no services: it answers 503 Service Unavailable")
                elif config.highest_random_weight is not None and not config.highest_random_weight.services:
                    report.warn("the highestRandomWeight service has no services: it answers 503 "
                                "Service Unavailable")
                elif config.mirroring is not None and not config.mirroring.service:
                    report.error("mirroring.service is missing (fix: name the main service)")
                elif config.failover is not None:
                    if not config.failover.service:
                        report.error("failover.service is missing (fix: name the main service)")
                    if not config.failover.fallback:
                        report.error("failover.fallback is missing (fix: name the fallback service)")
            if report.critical:
                chain = ()
            info = ServiceInfo(name=qname, provider=element.provider, config=config, kind=kind,
                               status=report.status, errors=tuple(report.errors),
                               warnings=tuple(report.warnings), children=children, middleware_chain=chain)
            done[qname] = info
            return info

        for qname in sorted(self.services):
            resolve(qname)
        return done

    def _qualified_service(self, element: _Element) -> Service:
        svc: Service = element.config
        p = element.provider
        if svc.load_balancer is not None:
            lb = svc.load_balancer
            if not lb.middlewares and not lb.servers_transport:
                return svc  # nothing to qualify (the common case): no copies
            update: dict[str, Any] = {"middlewares": tuple(qualify(m, p) for m in lb.middlewares)}
            if lb.servers_transport:
                update["servers_transport"] = qualify(lb.servers_transport, p)
            return svc.model_copy(update={"load_balancer": lb.model_copy(update=update)})
        if svc.weighted is not None:
            refs = tuple(r.model_copy(update={"name": qualify(r.name, p)}) for r in svc.weighted.services)
            return svc.model_copy(update={"weighted": svc.weighted.model_copy(update={"services": refs})})
        if svc.highest_random_weight is not None:
            hrw = svc.highest_random_weight
            refs = tuple(r.model_copy(update={"name": qualify(r.name, p)}) for r in hrw.services)
            return svc.model_copy(update={"highest_random_weight": hrw.model_copy(update={"services": refs})})
        if svc.mirroring is not None:
            mir = svc.mirroring
            mirrors = tuple(m.model_copy(update={"name": qualify(m.name, p)}) for m in mir.mirrors)
            new = mir.model_copy(update={"service": qualify(mir.service, p) if mir.service else "",
                                         "mirrors": mirrors})
            return svc.model_copy(update={"mirroring": new})
        if svc.failover is not None:
            fo = svc.failover
            new_fo = fo.model_copy(update={"service": qualify(fo.service, p) if fo.service else "",
                                           "fallback": qualify(fo.fallback, p) if fo.fallback else ""})
            return svc.model_copy(update={"failover": new_fo})
        return svc

    def _check_load_balancer(self, qname: str, config: Service, report: _Report,
                             middlewares: Mapping[str, MiddlewareInfo], transports: set[str]) -> tuple[str, ...]:
        lb = config.load_balancer
        assert lb is not None
        if not lb.servers:
            report.warn("the service has no servers: it answers 503 Service Unavailable "
                        "(fix: add loadBalancer.servers[].url)")
        for index, server in enumerate(lb.servers):
            problem = _check_server_url(server.url)
            if problem:
                report.error(f"loadBalancer.servers[{index}].url {server.url!r} is invalid: {problem} "
                             '(fix: write it as "http://host:port", "https://..." or "h2c://...")')
        if lb.servers_transport:
            self._use("transport", lb.servers_transport, qname)
            if lb.servers_transport not in transports:
                report.error(f'serversTransport "{lb.servers_transport}" does not exist '
                             f"({_known(lb.servers_transport, transports)})")
            elif self.transports[lb.servers_transport].config is None \
                    and self.transports[lb.servers_transport].rejected:
                report.error(f'serversTransport "{lb.servers_transport}" is invalid: '
                             f"{_first_line(self.transports[lb.servers_transport].rejected)}")
        return self._check_middlewares(lb.middlewares, qname, report, middlewares)

    # -- TLS ------------------------------------------------------------------------------------

    def _tls(self) -> tuple[TLSConfiguration, dict[str, str]]:
        """Merged TLS configuration and, per option name, why it cannot be used."""
        unusable: dict[str, str] = {}
        options: dict[str, TLSOptions] = {}
        default_providers = self.default_options_providers
        for key in sorted(self.tls_options):
            element = self.tls_options[key]
            if element.config is None:
                unusable[key] = _first_line(element.rejected)
                report = _Report()
                for message in element.rejected:
                    report.error(message)
                self._element_diagnostics("tls.options", key, report)
                continue
            options[key] = element.config
        if len(default_providers) > 1:
            options.pop(DEFAULT_TLS_OPTIONS, None)
            message = (f"the default TLS options are defined in several providers ({', '.join(default_providers)}),"
                       " so none is used and TLS routers that use them are disabled (fix: define "
                       "tls.options.default in one provider only)")
            unusable[DEFAULT_TLS_OPTIONS] = message
            self.diagnostics.append(Diagnostic("tls.options", DEFAULT_TLS_OPTIONS, "error", message))
        elif not default_providers:
            options[DEFAULT_TLS_OPTIONS] = TLSOptions(min_version="VersionTLS12",
                                                      alpn_protocols=("h2", "http/1.1", "acme-tls/1"))
        stores: dict[str, TLSStore] = {}
        store_providers = self.default_store_providers
        for key in sorted(self.tls_stores):
            element = self.tls_stores[key]
            if element.config is None:
                report = _Report()
                for message in element.rejected:
                    report.error(message)
                self._element_diagnostics("tls.stores", key, report)
                continue
            if key != DEFAULT_TLS_STORE:
                self.diagnostics.append(Diagnostic(
                    "tls.stores", key, "warning",
                    "only the TLS store named 'default' is used; this store is ignored"))
            stores[key] = element.config
        if len(store_providers) > 1:
            stores.pop(DEFAULT_TLS_STORE, None)
            self.diagnostics.append(Diagnostic(
                "tls.stores", DEFAULT_TLS_STORE, "error",
                f"the default TLS store is defined in several providers ({', '.join(store_providers)}), "
                "so none is used (fix: define tls.stores.default in one provider only)"))
        certificates: list[Certificate] = []
        for provider in self._provider_order():
            cfg = self.configs.get(provider)
            if cfg is None:
                continue
            for cert in cfg.tls.certificates:
                if "acme-tls/1" in cert.stores:
                    continue
                certificates.append(cert)
        tls = TLSConfiguration(certificates=tuple(certificates), options=options, stores=stores)
        return tls, unusable

    def _provider_order(self) -> list[str]:
        return sorted(self.configs, key=lambda p: (self.rank.get(p, len(self.rank)), p))

    # -- routers --------------------------------------------------------------------------------

    def _default_entry_points(self) -> tuple[str, ...]:
        candidates = [ep for ep in self.settings.entry_points
                      if ep.protocol != "udp" and ep.name != INTERNAL_ENTRY_POINT]
        flagged = [ep for ep in self.settings.entry_points if ep.as_default]
        if flagged:
            candidates = [ep for ep in candidates if ep.as_default]
        return tuple(sorted(ep.name for ep in candidates))

    def _has_model(self, ep_name: str) -> bool:
        ep = self.eps.get(ep_name)
        if ep is None:
            return False
        return bool(ep.middlewares or ep.tls_config is not None or ep.observability is not None or ep.model
                    or self.settings.core_rule_syntax)

    def _routers(self, middlewares: Mapping[str, MiddlewareInfo], services: Mapping[str, ServiceInfo],
                 tls: TLSConfiguration, tls_unusable: Mapping[str, str]) -> dict[str, RouterInfo]:
        out: dict[str, RouterInfo] = {}
        defaults = self._default_entry_points()
        for qname in sorted(self.routers):
            element = self.routers[qname]
            rank = self.rank.get(element.provider, len(self.rank))
            if element.config is None:
                report = _Report()
                for message in element.rejected or ["the router is invalid"]:
                    report.error(message)
                out[qname] = RouterInfo(
                    name=qname, provider=element.provider, config=None, entry_points=(), using=(), rule=None,
                    priority=0, provider_rank=rank, tls=False, tls_options=None, middleware_chain=(),
                    status="disabled", errors=tuple(report.errors), origin=qname)
                continue
            router: Router = element.config
            eps = _dedupe(router.entry_points) or defaults
            # Traefik's applyModel: one copy per entry point that has a model.
            variants: list[tuple[str, tuple[str, ...], EntryPointInfo | None]] = []
            plain = [ep for ep in eps if not self._has_model(ep)]
            for ep_name in eps:
                if self._has_model(ep_name):
                    name = f"{ep_name}-{qname}" if len(eps) > 1 else qname
                    variants.append((name, (ep_name,), self.eps[ep_name]))
            if plain or not eps:
                variants.append((qname, tuple(plain), None))
            compiled, rule_report = self._compile(router, element)
            for name, variant_eps, model in variants:
                out[name] = self._router(name, element, router, variant_eps, model, compiled, rule_report,
                                         rank, middlewares, services, tls, tls_unusable)
        return out

    def _compile(self, router: Router, element: _Element) -> tuple[CompiledRule | None, _Report]:
        report = _Report()
        if element.provider != INTERNAL and router.rule_syntax:
            report.warn("ruleSyntax is deprecated (fix: rewrite the rule in v3 syntax and remove ruleSyntax)")
        if router.parent_refs:
            report.error("parentRefs (multi-layer routing) is not implemented in ferryman yet")
        if not router.rule.strip():
            report.error('rule is missing (fix: add a rule such as "Host(`example.com`)")')
            return None, report
        syntax = router.rule_syntax or self.settings.default_rule_syntax
        try:
            return compile_rule(router.rule, syntax=syntax), report
        except RuleError as exc:
            report.error(f"rule is invalid: {exc.render()}")
            return None, report

    def _router(self, name: str, element: _Element, router: Router, eps: tuple[str, ...],
                model: EntryPointInfo | None, compiled: CompiledRule | None, rule_report: _Report, rank: int,
                middlewares: Mapping[str, MiddlewareInfo], services: Mapping[str, ServiceInfo],
                tls: TLSConfiguration, tls_unusable: Mapping[str, str]) -> RouterInfo:
        report = _Report()
        report.errors.extend(rule_report.errors)
        report.warnings.extend(rule_report.warnings)
        report.critical = rule_report.critical
        provider = element.provider

        # Entry points (runtime.GetRoutersByEntryPoints).
        using: list[str] = []
        for ep in eps:
            if ep in self.http_eps:
                using.append(ep)
            else:
                report.error(f'entryPoint "{ep}" doesn\'t exist ({_known(ep, self.http_eps)})', critical=False)
        if not using:
            report.error("no valid entryPoint for this router")

        # The entry point model: middlewares first, TLS and observability defaults.
        refs = list(router.middlewares)
        router_tls = router.tls
        observability = router.observability
        if model is not None:
            refs = [*model.middlewares, *refs]
            if router_tls is None:
                router_tls = model.tls_config
            if model.observability is not None:
                observability = _inherit_observability(observability, model.observability)
        qualified_refs = tuple(qualify(m, provider) for m in refs)

        # Priority.
        priority = router.priority or (compiled.priority if compiled is not None else len(router.rule.encode()))
        if priority > MAX_USER_PRIORITY and provider != INTERNAL:
            report.error(f"the router priority {priority} exceeds the max user-defined priority "
                         f"{MAX_USER_PRIORITY} (fix: use a lower priority)")

        # Service.
        service = qualify(router.service, provider) if router.service else ""
        if not service:
            report.error("the router has no service (fix: add service: <name>)")
        else:
            self._use("service", service, name)
            info = services.get(service)
            if info is None:
                report.error(f'service "{service}" does not exist ({_known(service, services)})')
            elif info.status == "disabled":
                report.error(f'service "{service}" is disabled: {_first_line(info.errors)}')

        chain = self._check_middlewares(qualified_refs, name, report, middlewares)

        # TLS options.
        tls_options: str | None = None
        if router_tls is not None:
            opt = router_tls.options
            tls_options = DEFAULT_TLS_OPTIONS if not opt or opt == DEFAULT_TLS_OPTIONS else qualify(opt, provider)
            if tls_options in tls_unusable:
                report.error(f'TLS options "{tls_options}" cannot be used: {tls_unusable[tls_options]}')
            elif tls_options not in tls.options:
                report.error(f"unknown TLS options: {tls_options} ({_known(tls_options, tls.options)})")

        update: dict[str, Any] = {"entry_points": eps, "middlewares": qualified_refs, "service": service,
                                  "tls": router_tls, "observability": observability}
        config = router.model_copy(update=update)
        return RouterInfo(
            name=name, provider=provider, config=config, entry_points=eps, using=tuple(sorted(set(using))),
            rule=compiled, priority=priority, provider_rank=rank, tls=router_tls is not None,
            tls_options=tls_options, middleware_chain=chain if not report.critical else (),
            status=report.status, errors=tuple(report.errors), warnings=tuple(report.warnings),
            origin=element.qname)

    def _tls_conflicts(self, routers: dict[str, RouterInfo]) -> None:
        """Traefik's ``resolveHTTPTLSOptions``: on one entry point, a host served by TLS routers
        with different TLS options falls back to the default options for those routers."""
        by_ep: dict[str, list[RouterInfo]] = {}
        for info in routers.values():
            if info.tls and info.serving and info.rule is not None:
                for ep in info.using:
                    by_ep.setdefault(ep, []).append(info)
        fallback: dict[str, list[str]] = {}
        for ep in sorted(by_ep):
            by_host: dict[str, dict[str, list[str]]] = {}
            for info in sorted(by_ep[ep], key=lambda r: r.name):
                assert info.rule is not None
                domains = info.rule.domains()
                option = info.tls_options or DEFAULT_TLS_OPTIONS
                if not domains and option != DEFAULT_TLS_OPTIONS:
                    fallback.setdefault(info.name, []).append(
                        f"on entry point {ep!r} the rule has no Host(), so TLS options {option!r} cannot be "
                        "selected by SNI; the default TLS options apply (fix: add Host() to the rule)")
                for domain in domains:
                    by_host.setdefault(domain, {}).setdefault(option, []).append(info.name)
            for host in sorted(by_host):
                groups = by_host[host]
                if len(groups) < 2:
                    continue
                names = sorted(n for group in groups.values() for n in group)
                for name in names:
                    fallback.setdefault(name, []).append(
                        f"on entry point {ep!r}, host {host!r} is served by routers with different TLS "
                        f"options ({', '.join(names)}); the default TLS options apply to them "
                        "(fix: use the same TLS options for every router of a host)")
        for name, messages in fallback.items():
            info = routers[name]
            warnings = tuple(dict.fromkeys([*info.warnings, *messages]))
            routers[name] = dataclasses.replace(info, tls_options=DEFAULT_TLS_OPTIONS, warnings=warnings,
                                                status=_status(info.errors, warnings, False))

    # -- output ---------------------------------------------------------------------------------

    def _element_diagnostics(self, kind: str, name: str, report: _Report) -> None:
        for message in report.errors:
            self.diagnostics.append(Diagnostic(kind, name, "error", message))
        for message in report.warnings:
            self.diagnostics.append(Diagnostic(kind, name, "warning", message))

    def _finish(self, routers: dict[str, RouterInfo], services: dict[str, ServiceInfo],
                middlewares: dict[str, MiddlewareInfo], tls: TLSConfiguration) -> Merged:
        used = self.used_by
        services = {k: _with_users(v, used["service"].get(k, [])) for k, v in sorted(services.items())}
        middlewares = {k: _with_users(v, used["middleware"].get(k, [])) for k, v in sorted(middlewares.items())}
        transports: dict[str, ServersTransportInfo] = {}
        for key in sorted(self.transports):
            element = self.transports[key]
            report = _Report()
            for message in element.rejected:
                report.error(message)
            transports[key] = ServersTransportInfo(
                name=key, provider=element.provider, config=element.config, status=report.status,
                errors=tuple(report.errors), used_by=tuple(sorted(used["transport"].get(key, []))))
        diagnostics: list[Diagnostic] = []
        for kind, table in (("router", routers), ("service", services), ("middleware", middlewares),
                            ("serversTransport", transports)):
            for key in sorted(table):
                item = table[key]
                diagnostics.extend(Diagnostic(kind, key, "error", m) for m in item.errors)
                diagnostics.extend(Diagnostic(kind, key, "warning", m) for m in getattr(item, "warnings", ()))
        diagnostics.extend(self.diagnostics)
        for ep in sorted(self.ep_reports):
            report = self.ep_reports[ep]
            diagnostics.extend(Diagnostic("entryPoint", ep, "error", m) for m in report.errors)
        return Merged(routers=dict(sorted(routers.items())), services=services, middlewares=middlewares,
                      servers_transports=transports, tls=tls, diagnostics=diagnostics)


def _tls_key(name: str, provider: str, default: str) -> str:
    """TLS options and stores are qualified, except the one named ``default`` (aggregator.go)."""
    return name if name == default else f"{name}@{provider}"


def _with_users(info: _T, users: Sequence[str]) -> _T:
    # ``info`` was built by this merge run and is not published yet: fill the field in place
    # (a ``dataclasses.replace`` per element cost ~80 ms for 10,000 services).
    object.__setattr__(info, "used_by", tuple(sorted(users)))
    return info


def _inherit_observability(own: RouterObservability | None, ep: RouterObservability) -> RouterObservability:
    if own is None:
        return ep
    update = {k: getattr(ep, k) for k in ("access_logs", "metrics", "tracing", "trace_verbosity")
              if getattr(own, k) is None}
    return own.model_copy(update=update)


@functools.lru_cache(maxsize=65536)
def _check_server_url(url: str) -> str | None:
    if not url:
        return "the URL is empty"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return str(exc)
    if parts.scheme.lower() not in ("http", "https", "h2c"):
        return f"unsupported scheme {parts.scheme!r}" if parts.scheme else "the URL has no scheme"
    if not parts.hostname:
        return "the URL has no host"
    if port == 0:
        return "port 0 is not a valid server port"
    return None
