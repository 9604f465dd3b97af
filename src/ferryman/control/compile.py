"""Compile: a merged configuration becomes a :class:`Snapshot` the entry points serve from.

Every handler is built here, once: services (load balancers, weighted splits), each router's
middleware chain wrapped around its service, and per entry point a host-indexed routing table.
A builder that refuses its configuration (``ConfigError``) disables that element and everything
that depends on it, with the reason; the rest compiles. Pure CPU work, timed as ``seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

from ferryman.control.routing import RouteEntry, RoutingTable, build_routing_table
from ferryman.dynamic.merge import DEFAULT_TLS_OPTIONS, Diagnostic, Level, Merged
from ferryman.dynamic.models import LoadBalancer, Middleware, ServersTransport, Weighted
from ferryman.errors import ConfigError
from ferryman.http.exchange import Handler
from ferryman.tls.store import TLSServing, TLSStore, sni_host


@dataclass(frozen=True)
class MiddlewareEnv:
    """What a middleware builder may need from the configuration around it."""

    #: the router whose chain is being built
    router: str = ""
    #: built service handler by qualified name (``None``: missing or disabled), for ``errors``
    service: Callable[[str], Handler | None] = lambda name: None
    #: the router's effective TLS ``clientAuthType`` (``None``: not a TLS router)
    client_auth: str | None = None


@dataclass(frozen=True)
class Builders:
    """The data plane's factories (injected, so compile stays testable without sockets)."""

    load_balancer: Callable[[str, LoadBalancer, str, ServersTransport], Handler]
    weighted: Callable[[str, Weighted, Mapping[str, Handler]], Handler]
    middleware: Callable[[str, Middleware, Handler], Handler]
    internal: Mapping[str, Handler] = field(default_factory=dict)  # "noop@internal" -> handler
    #: ``middleware`` that also gets the router's :class:`MiddlewareEnv` (its name for per-router
    #: long-lived state, service lookup, TLS client auth); used when set
    router_middleware: Callable[[str, Middleware, Handler, MiddlewareEnv], Handler] | None = None


@dataclass(frozen=True)
class Snapshot:
    """What the entry points serve: immutable, swapped in one assignment per entry point."""

    merged: Merged
    #: entry point -> routing table of plain-HTTP routers
    tables: Mapping[str, RoutingTable[Handler]]
    #: entry point -> routing table of TLS routers (answered only on TLS connections)
    tls_tables: Mapping[str, RoutingTable[Handler]]
    #: element name -> why compile disabled it (on top of merge's own statuses)
    disabled: Mapping[str, str]
    diagnostics: tuple[Diagnostic, ...]
    seconds: float
    #: load-balancer handlers by service name with what they were built from, so the next compile
    #: reuses the ones whose configuration did not change (and keeps their round-robin state)
    built_services: Mapping[str, tuple[object, Handler]] = field(default_factory=dict)
    #: entry point -> its TLS view (certificates and options by SNI); absent = no TLS on it
    tls: Mapping[str, TLSServing] = field(default_factory=dict)
    #: certificates and contexts, reused by the next compile while ``merged.tls`` is unchanged
    tls_store: TLSStore | None = None

    def table(self, entry_point: str, *, tls: bool = False) -> RoutingTable[Handler]:
        tables = self.tls_tables if tls else self.tables
        found = tables.get(entry_point)
        return found if found is not None else EMPTY_TABLE


EMPTY_TABLE: RoutingTable[Handler] = build_routing_table([])


def _default_transport(merged: Merged, static_default: ServersTransport) -> ServersTransport:
    info = merged.servers_transports.get("default@internal")
    if info is not None and info.config is not None:
        return info.config
    return static_default


def compile_snapshot(merged: Merged, entry_points: Sequence[str], builders: Builders, *,
                     static_transport: ServersTransport | None = None,
                     previous: Snapshot | None = None,
                     tls_entry_points: Collection[str] = (),
                     encoded_guard: Callable[[Sequence[str], Handler], Handler] | None = None) -> Snapshot:
    """``tls_entry_points``: entry points with ``http.tls`` (served with TLS even without routers).
    ``encoded_guard(entry_points, handler)`` wraps each router's chain (the entry points'
    ``http.encodedCharacters``, in front of the router's middlewares as in Traefik)."""
    started = time.perf_counter()
    default_transport = _default_transport(merged, static_transport or ServersTransport())
    disabled: dict[str, str] = {}
    diagnostics: list[Diagnostic] = list(merged.diagnostics)
    services: dict[str, Handler] = {}
    reused = previous.built_services if previous is not None else {}
    built_services: dict[str, tuple[object, Handler]] = {}

    def fail(kind: str, name: str, message: str) -> None:
        disabled[name] = message
        diagnostics.append(Diagnostic(kind=kind, name=name, level="error", message=message))

    def service(name: str, stack: tuple[str, ...] = ()) -> Handler | None:
        if name in services:
            return services[name]
        if name in disabled or name in stack:
            return None
        internal = builders.internal.get(name)
        if internal is not None:
            services[name] = internal
            return internal
        info = merged.services.get(name)
        if info is None or info.status == "disabled" or info.config is None:
            return None
        cfg = info.config
        try:
            handler: Handler | None
            if cfg.load_balancer is not None:
                tname = cfg.load_balancer.servers_transport or "default@internal"
                tinfo = merged.servers_transports.get(tname)
                transport = tinfo.config if tinfo is not None and tinfo.config is not None else default_transport
                key = (cfg.load_balancer, tname, transport)
                old = reused.get(name)
                handler = old[1] if old is not None and old[0] == key else \
                    builders.load_balancer(name, cfg.load_balancer, tname, transport)
                built_services[name] = (key, handler)
            elif cfg.weighted is not None:
                children: dict[str, Handler] = {}
                for ref in cfg.weighted.services:
                    child = service(ref.name, (*stack, name))
                    if child is None:
                        fail("http.services", name, f'child service "{ref.name}" is not available')
                        return None
                    children[ref.name] = child
                handler = builders.weighted(name, cfg.weighted, children)
            else:
                raise ConfigError(f"{info.kind} services are not implemented yet in ferryman 0.1")
        except ConfigError as exc:
            fail("http.services", name, exc.message if exc.message else str(exc))
            return None
        services[name] = handler
        return handler

    def router_handler(name: str, service_name: str, chain: Sequence[str],
                       client_auth: str | None = None, using: Sequence[str] = ()) -> Handler | None:
        handler = service(service_name)
        if handler is None:
            why = disabled.get(service_name)
            fail("http.routers", name, f'service "{service_name}" is not available'
                 + (f": {why}" if why else ""))
            return None
        env = MiddlewareEnv(router=name, service=service, client_auth=client_auth)
        for mw_name in reversed(chain):
            info = merged.middlewares.get(mw_name)
            if info is None or info.config is None or info.status == "disabled":
                fail("http.routers", name, f'middleware "{mw_name}" is not available')
                return None
            try:
                if builders.router_middleware is not None:
                    handler = builders.router_middleware(mw_name, info.config, handler, env)
                else:
                    handler = builders.middleware(mw_name, info.config, handler)
            except ConfigError as exc:
                fail("http.routers", name, f'middleware "{mw_name}": {exc.message or exc}')
                return None
        if encoded_guard is not None:
            handler = encoded_guard(using, handler)
        return handler

    # TLS: one store (certificates, options, contexts) for the merged tls section, one SNI view
    # per entry point that has TLS routers (or http.tls).
    tls_eps = {ep for info in merged.routers.values() if info.tls and info.serving for ep in info.using}
    tls_eps = (tls_eps | set(tls_entry_points)) & set(entry_points)
    tls_store: TLSStore | None = None
    servings: dict[str, TLSServing] = {}
    if tls_eps:
        old_store = previous.tls_store if previous is not None else None
        tls_store = old_store if old_store is not None and old_store.config == merged.tls \
            else TLSStore.build(merged.tls)
        for ep in sorted(tls_eps):
            host_options: dict[str, str] = {}
            for info in merged.routers_on(ep, tls=True):
                if info.rule is not None:
                    for domain in info.rule.domains():
                        host_options.setdefault(sni_host(domain), info.tls_options or DEFAULT_TLS_OPTIONS)
            servings[ep] = tls_store.serving(host_options)
        diagnostics.extend(Diagnostic(kind=p.kind, name=p.name, level=cast(Level, p.level), message=p.message)
                           for p in dict.fromkeys(tls_store.problems))
        _report_dropped_client_auth(merged, tls_store, diagnostics)
        for info in merged.routers.values():
            option = info.tls_options or DEFAULT_TLS_OPTIONS
            if info.tls and info.serving and option in tls_store.option_errors:
                fail("http.routers", info.name,
                     f'TLS options "{option}" cannot be used: {tls_store.option_errors[option]}')
    tables: dict[str, RoutingTable[Handler]] = {}
    tls_tables: dict[str, RoutingTable[Handler]] = {}
    built: dict[tuple[str, tuple[str, ...]], Handler | None] = {}
    for ep in entry_points:
        for tls, out in ((False, tables), (True, tls_tables)):
            entries: list[RouteEntry[Handler]] = []
            for info in merged.routers_on(ep, tls=tls):
                if info.rule is None or info.name in disabled:
                    continue
                key = (info.name, info.middleware_chain)
                if key not in built:
                    client_auth = None
                    if tls and tls_store is not None:
                        opts = tls_store.options.get(info.tls_options or DEFAULT_TLS_OPTIONS)
                        client_auth = opts.client_auth if opts is not None else None
                    built[key] = router_handler(info.name, info.service, info.middleware_chain, client_auth,
                                                tuple(info.using))
                handler = built[key]
                if handler is None:
                    continue
                entries.append(RouteEntry(info.name, info.rule, info.priority, info.provider_rank, handler))
            if entries:
                out[ep] = build_routing_table(entries)
    return Snapshot(merged=merged, tables=tables, tls_tables=tls_tables, disabled=disabled,
                    diagnostics=tuple(diagnostics), seconds=time.perf_counter() - started,
                    built_services=built_services, tls=servings, tls_store=tls_store)


def _report_dropped_client_auth(merged: Merged, store: TLSStore, diagnostics: list[Diagnostic]) -> None:
    """Traefik's mTLS trap, said loudly: when merge fell back to the default options for a router
    (two routers of one host asking for different options) and the options it asked for require or
    verify client certificates that the default options do not, that host is served without the
    client authentication the configuration asks for — an error, not a warning."""
    default_auth = store.options[DEFAULT_TLS_OPTIONS].client_auth
    for info in merged.routers.values():
        cfg = info.config
        if not info.tls or not info.serving or cfg is None or cfg.tls is None:
            continue
        asked = cfg.tls.options
        if not asked or asked == DEFAULT_TLS_OPTIONS or info.tls_options != DEFAULT_TLS_OPTIONS:
            continue
        qualified = asked if "@" in asked else f"{asked}@{info.provider}"
        opts = store.options.get(qualified)
        if opts is None or opts.client_auth in ("NoClientCert", default_auth):
            continue
        hosts = ", ".join(info.rule.domains()) if info.rule is not None else ""
        diagnostics.append(Diagnostic(
            kind="http.routers", name=info.name, level="error",
            message=f'TLS options "{qualified}" ({opts.client_auth}) are NOT applied to {hosts or "its hosts"}: '
                    f"another router of the same host uses other TLS options, so the default options "
                    f"({default_auth}) apply and client certificates are not enforced (fix: use the same "
                    "TLS options for every router of a host)"))
