"""Composition root: static configuration → entry points, providers, watcher → merge → compile → swap.

The only module that wires everything together; nothing imports it (except the CLI).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from ferryman.acme.manager import Resolvers
from ferryman.api.dashboard import DashboardService
from ferryman.api.handler import ApiService, api_prefix, debug_prefix
from ferryman.api.traffic import TrafficCounter
from ferryman.control.compile import Builders, Snapshot, compile_snapshot
from ferryman.control.watcher import Watcher
from ferryman.dynamic.merge import MAX_INT, EntryPointInfo, MergeSettings, Redirect, merge
from ferryman.dynamic.models import (
    Configuration,
    Domain,
    HTTPConfiguration,
    Middleware,
    Router,
    RouterTLS,
    ServersTransport,
)
from ferryman.errors import ConfigError
from ferryman.gcpause import gc_paused
from ferryman.http.exchange import Exchange, Handler
from ferryman.middlewares import MiddlewareContext, build_middleware
from ferryman.middlewares.encoded_characters import EntryPointEncodedCharacters, denied_escapes
from ferryman.observability import events
from ferryman.observability.recorder import Observer
from ferryman.observability.setup import Observability
from ferryman.providers.base import Provider, ProviderMessage
from ferryman.providers.docker import docker_provider
from ferryman.providers.file import FileProvider
from ferryman.server.entrypoint import EntryPoint, EntryPointSettings
from ferryman.services import build_load_balancer, build_weighted
from ferryman.state import StateRegistry
from ferryman.static import LoadedStatic, StaticConfig
from ferryman.static.models import Api
from ferryman.tasks import spawn
from ferryman.upstream.pool import UpstreamPools
from ferryman.upstream.settings import TransportSettings

log = logging.getLogger("ferryman")


def _release(_snapshot: Snapshot) -> None:
    """Drops the last reference to a replaced snapshot (scheduled after the swap)."""


def _fields(**kw: Any) -> dict[str, Any]:
    return {"fields": kw}


class NoopService:
    """``noop@internal``: answers 200 with an empty body (it sits behind redirect middlewares)."""

    def handle(self, ex: Exchange) -> None:
        ex.respond(200, (), b"", content_type=None)


class PingService:
    """``ping@internal``: 200 ``OK`` while serving; 503 until the first configuration is applied
    (unlike Traefik, so a load balancer never sends traffic to a cold instance), and
    ``terminatingStatusCode`` while draining."""

    def __init__(self, app: App, terminating_status: int) -> None:
        self.app = app
        self.terminating_status = terminating_status

    def handle(self, ex: Exchange) -> None:
        if self.app.terminating:
            status, body = self.terminating_status, b""
        elif not self.app.ready:
            status, body = 503, b"not ready: no configuration applied yet"
        else:
            status, body = 200, b"OK"
        ex.respond(status, (), b"" if ex.method == b"HEAD" else body)


def merge_settings(static: StaticConfig, bound: Mapping[str, int] | None = None) -> MergeSettings:
    """Merge settings from the static configuration; ``bound`` gives the real ports of entry points
    bound to port 0 (redirections then point at the port actually served)."""
    infos: list[EntryPointInfo] = []
    for name, ep in static.entry_points.items():
        http = ep.http
        tls: bool | RouterTLS = False
        if http.tls is not None:
            tls = RouterTLS(options=http.tls.options, cert_resolver=http.tls.cert_resolver,
                            domains=tuple(Domain(main=d.main, sans=tuple(d.sans)) for d in http.tls.domains))
        redirect = None
        if http.redirections is not None and http.redirections.entry_point is not None:
            r = http.redirections.entry_point
            redirect = Redirect(to=r.to, scheme=r.scheme, permanent=r.permanent, priority=r.priority)
        infos.append(EntryPointInfo(
            name=name, port=(bound or {}).get(name, ep.listen.port), protocol=ep.listen.protocol, as_default=ep.as_default,
            middlewares=tuple(http.middlewares), tls=tls, redirect=redirect,
            allow_acme_bypass=ep.allow_acme_by_pass))
    return MergeSettings(entry_points=tuple(infos), default_rule_syntax=static.core.default_rule_syntax,
                         precedence=tuple(static.providers.precedence),
                         internal_services=("noop",) + (("ping",) if static.ping is not None else ())
                         + (("api",) if static.api is not None else ())
                         + (("prometheus",) if static.metrics is not None and static.metrics.prometheus is not None
                            else ())
                         + (("acme-http",) if _http_challenge_entry_points(static) else ())
                         + (("dashboard",) if static.api is not None and static.api.dashboard else ()))


def _http_challenge_entry_points(static: StaticConfig) -> tuple[str, ...]:
    eps = [r.acme.http_challenge.entry_point for r in static.certificates_resolvers.values()
           if r.acme is not None and r.acme.http_challenge is not None and r.acme.http_challenge.entry_point
           and r.acme.http_challenge.entry_point in static.entry_points]
    return tuple(dict.fromkeys(eps))


def static_transport(static: StaticConfig) -> ServersTransport:
    st = static.servers_transport
    ft = st.forwarding_timeouts
    return ServersTransport.model_validate({
        "insecureSkipVerify": st.insecure_skip_verify,
        "rootCAs": list(st.root_cas),
        "maxIdleConnsPerHost": st.max_idle_conns_per_host,
        "forwardingTimeouts": {"dialTimeout": ft.dial_timeout,
                               "responseHeaderTimeout": ft.response_header_timeout,
                               "idleConnTimeout": ft.idle_conn_timeout},
    })


def internal_configuration(static: StaticConfig) -> Configuration:
    """What Traefik's internal provider adds (redirect routers come from merge settings)."""
    routers: dict[str, Router] = {}
    middlewares: dict[str, Middleware] = {}
    if static.ping is not None and not static.ping.manual_routing:
        routers["ping"] = Router(rule="PathPrefix(`/ping`)", entry_points=(static.ping.entry_point,),
                                 service="ping@internal", priority=MAX_INT)
    if static.api is not None and static.api.insecure:
        # Traefik: PathPrefix(`/api`) on the traefik entry point at MaxInt-1; ferryman puts basePath
        # in the rule too, so api.insecure and basePath work together (Traefik's do not).
        routers["api"] = Router(rule=f"PathPrefix(`{api_prefix(static.api)}`)", entry_points=("traefik",),
                                service="api@internal", priority=MAX_INT - 1)
        if static.api.dashboard:
            routers["dashboard"], middlewares = dashboard_routing(static.api)
        if static.api.debug:
            routers["debug"] = Router(rule=f"PathPrefix(`{debug_prefix(static.api)}`)",
                                      entry_points=("traefik",), service="api@internal", priority=MAX_INT - 1)
    challenge_eps = _http_challenge_entry_points(static)
    if challenge_eps:
        # Traefik's acme-http@internal: above everything, the entry point redirection included.
        routers["acme-http"] = Router(rule="PathPrefix(`/.well-known/acme-challenge/`)", entry_points=challenge_eps,
                                      service="acme-http@internal", priority=MAX_INT)
    return Configuration(http=HTTPConfiguration(routers=routers, middlewares=middlewares))


def dashboard_routing(api: Api) -> tuple[Router, dict[str, Middleware]]:
    """Traefik's internal ``dashboard`` router on the ``traefik`` entry point (``api.insecure``):
    everything else than the API goes to ``dashboard@internal``, ``/`` redirected (301) to
    ``/dashboard/`` and ``/dashboard`` stripped. With a ``basePath`` the redirect and the prefix
    include it (Traefik's do not: there the two options are documented as incompatible)."""
    base = api.base_path.rstrip("/")
    router = Router(rule="PathPrefix(`/`)", entry_points=("traefik",), service="dashboard@internal",
                    middlewares=("dashboard_redirect@internal", "dashboard_stripprefix@internal"),
                    priority=MAX_INT - 2)
    middlewares = {
        "dashboard_redirect": Middleware.model_validate({"redirectRegex": {
            "regex": r"^(http:\/\/(\[[\w:.]+\]|[\w\._-]+)(:\d+)?)\/$",
            "replacement": "${1}" + base + "/dashboard/", "permanent": True}}),
        "dashboard_stripprefix": Middleware.model_validate({"stripPrefix": {
            "prefixes": [f"{base}/dashboard/", f"{base}/dashboard"]}}),
    }
    return router, middlewares


class App:
    def __init__(self, loaded: LoadedStatic) -> None:
        self.loaded = loaded
        self.static = loaded.config
        self.ready = False
        self.terminating = False
        self.entry_points: dict[str, EntryPoint] = {}
        self.snapshot: Snapshot | None = None
        self.settings = merge_settings(self.static)
        self.observability = Observability(self.static)
        self.internal = internal_configuration(self.static)
        if self.observability.internal_routers():
            http = self.internal.http
            self.internal = self.internal.model_copy(update={"http": http.model_copy(
                update={"routers": {**http.routers, **self.observability.internal_routers()}})})
        self.transport = static_transport(self.static)
        #: entry point -> escapes its ``http.encodedCharacters`` denies (only entry points denying any)
        self.denied_escapes = {name: denied for name, ep in self.static.entry_points.items()
                               if (denied := denied_escapes(ep.http.encoded_characters))}
        self.pools = UpstreamPools()
        self.states = StateRegistry()
        internal: dict[str, Handler] = {"noop@internal": NoopService()}
        self.resolvers = Resolvers(self.static)
        if _http_challenge_entry_points(self.static):
            internal["acme-http@internal"] = self.resolvers.http_service
        if self.static.ping is not None:
            internal["ping@internal"] = PingService(self, self.static.ping.terminating_status_code)
        self._traffic_bit = 0
        if self.static.api is not None:
            # the dashboard's request rates: counted only while someone polls /api/traffic
            traffic = None
            if self.static.api.dashboard:
                traffic = TrafficCounter(self._watch_traffic, flush=self.observability.recording.flush)
                traffic.bit = self._traffic_bit = self.observability.register(traffic)
            internal["api@internal"] = ApiService(self.static, lambda: self.snapshot, traffic=traffic,
                                                   router_problems=self.resolvers.router_problems)
            if self.static.api.dashboard:
                internal["dashboard@internal"] = DashboardService()
        internal.update(self.observability.internal_services())
        self.builders = Builders(
            load_balancer=lambda name, model, tname, transport: build_load_balancer(
                name, model, TransportSettings.from_model(transport), self.pools, transport_name=tname),
            weighted=lambda name, model, children: build_weighted(name, model, children),
            middleware=lambda name, model, nxt: build_middleware(name, model, nxt),
            router_middleware=lambda name, model, nxt, env: build_middleware(
                name, model, nxt, MiddlewareContext(router=env.router, states=self.states, service=env.service,
                                                    client_auth=env.client_auth)),
            internal=internal,
        )
        self._reported: set[str] = set()
        self._unwatched: dict[str, Observer | None] = {}
        self._frozen = False

    # -- configuration ---------------------------------------------------------------------------

    def providers(self) -> list[Provider]:
        found: list[Provider] = []
        file = self.static.providers.file
        if file is not None:
            found.append(FileProvider(filename=file.filename, directory=file.directory, watch=file.watch))
        if self.static.providers.docker is not None:
            found.append(docker_provider(self.static.providers.docker))
        return found

    def apply(self, configs: Mapping[str, Configuration], messages: Mapping[str, ProviderMessage]) -> None:
        with gc_paused():
            self._apply(configs, messages)
        if messages and not self._frozen:
            # Startup objects (modules, the first configuration) never become garbage: keep the
            # collector from walking them on every full pass.
            self._frozen = True
            gc.freeze()

    def _encoded_guard(self, using: Sequence[str], handler: Handler) -> Handler:
        """``entryPoints.<n>.http.encodedCharacters`` in front of a router's chain (costs nothing
        when no entry point of the router denies anything)."""
        denied = {ep: self.denied_escapes[ep] for ep in using if ep in self.denied_escapes}
        return EntryPointEncodedCharacters(denied, handler) if denied else handler

    def _apply(self, configs: Mapping[str, Configuration], messages: Mapping[str, ProviderMessage]) -> None:
        all_configs = {**configs, "internal": self.internal}
        rejected = {name: msg.problems for name, msg in messages.items() if msg.problems}
        merged = merge(all_configs, self.settings, rejected=rejected)
        snapshot = compile_snapshot(merged, list(self.entry_points), self.builders,
                                    static_transport=self.transport, previous=self.snapshot,
                                    tls_entry_points=[n for n, e in self.static.entry_points.items()
                                                      if e.http.tls is not None],
                                    encoded_guard=self._encoded_guard if self.denied_escapes else None)
        for name, ep in self.entry_points.items():
            ep.routes = snapshot.table(name)
            ep.tls_routes = snapshot.table(name, tls=True)
            ep.tls = snapshot.tls.get(name)
        previous, self.snapshot = self.snapshot, snapshot
        self.observability.applied(snapshot, reload=True)
        self.resolvers.routers_changed(snapshot.merged, snapshot.tls_store)
        self.states.sweep()
        if any(name not in self.resolvers.provider_names for name in messages):
            self.ready = True  # certificates alone do not make the first configuration
        self._report(snapshot, messages)
        if previous is not None:
            # Freeing a large previous snapshot (10,000 routers) takes a noticeable fraction of a
            # second: do it just after the new one starts serving, not before.
            asyncio.get_running_loop().call_later(0.05, _release, previous)

    def _report(self, snapshot: Snapshot, messages: Mapping[str, ProviderMessage]) -> None:
        # One structured event per new problem (router/service/middleware name, provider, error).
        current: dict[str, Callable[[], None]] = {}
        for msg in messages.values():
            for warning in msg.warnings:
                key = f"W provider {msg.provider}: {warning}"
                current[key] = partial(events.emit, logging.WARNING, key[2:], "provider.warning",
                                       providerName=msg.provider, error=warning)
        for diag in snapshot.diagnostics:
            key = ("E " if diag.level == "error" else "W ") + diag.render()
            current[key] = partial(events.element_problem, diag.kind, diag.name, diag.level, diag.message,
                                   rendered=diag.render())
        for key in sorted(current.keys() - self._reported):
            current[key]()
        self._reported = set(current)
        routers = sum(len(t) for t in snapshot.tables.values())
        if messages:
            merged = snapshot.merged
            events.config_applied(
                routers=routers, disabled=len([r for r in merged.routers.values()
                                               if not r.serving]) + len(snapshot.disabled),
                services=len(merged.services), middlewares=len(merged.middlewares),
                seconds=snapshot.seconds, providers=messages)

    def _watch_traffic(self, on: bool) -> None:
        """Adds the dashboard's request counter to every entry point's observer, next to what
        metrics and access logs record there (``False``: put the observers back as they were)."""
        if not on:
            for name, observer in self._unwatched.items():
                self.entry_points[name].observer = observer
            self._unwatched = {}
            return
        for name, ep in self.entry_points.items():
            observer = self._unwatched.setdefault(name, ep.observer)
            ep.observer = observer.with_mask(self._traffic_bit) if observer is not None else \
                self.observability.observer(self._traffic_bit)

    # -- lifecycle -------------------------------------------------------------------------------

    async def main(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            providers = self.providers()
        except ConfigError as exc:
            log.error("%s", exc)
            return 1

        for name, ep in self.static.entry_points.items():
            if ep.listen.protocol != "tcp":
                log.warning("entry point %s: UDP entry points are not implemented yet; ignored", name)
                continue
            server = EntryPoint(EntryPointSettings.from_static(name, ep))
            if self.resolvers.uses_tls_challenge:
                server.acme_alpn = self.resolvers.challenges.alpn
            try:
                await server.start()
            except OSError as exc:
                log.error("%s", ConfigError(f"cannot listen on {ep.address}: {exc.strerror or exc}",
                                            source="static configuration", path=f"entryPoints.{name}.address",
                                            fix="free the port or choose another address"))
                await self._close()
                return 1
            self.entry_points[name] = server
            host = ep.listen.host or "0.0.0.0"
            log.info("entry point listening", extra=_fields(
                entryPointName=name, address=f"{host}:{server.bound_port}"))

        self.observability.attach(self.entry_points)
        self.observability.start(loop)
        loop.add_signal_handler(signal.SIGUSR1, self.observability.reopen)
        self.settings = merge_settings(self.static, {n: ep.bound_port for n, ep in self.entry_points.items()})
        # Serve the internal routes (ping) before any provider speaks.
        self.apply({}, {})
        watcher = Watcher(self.static.providers.providers_throttle_duration, self.apply)
        self.watcher = watcher
        tasks = [spawn(p.run(watcher.submit), name=f"provider-{p.name}") for p in providers]
        self.resolvers.start(watcher.submit)
        if not tasks:
            self.ready = True
            log.info("configuration applied", extra=_fields(routers=0, providers=0))

        await stop.wait()
        log.info("shutting down: draining entry points", extra=_fields(
            graceTimeOut={n: ep.settings.grace_timeout for n, ep in self.entry_points.items()}))
        self.terminating = True
        watcher.close()
        self.resolvers.close()
        for task in tasks:
            task.cancel()
        await self._close()
        self.observability.close()
        log.info("stopped")
        return 0

    async def _close(self) -> None:
        await asyncio.gather(*(ep.shutdown() for ep in self.entry_points.values()),
                             return_exceptions=True)
        self.pools.close()


def run(loaded: LoadedStatic) -> int:
    import uvloop

    return uvloop.run(App(loaded).main())
