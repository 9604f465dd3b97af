"""An HTTP entry point: a listening socket, its connections, timeouts and graceful shutdown.

Contract::

    ep = EntryPoint(EntryPointSettings(name="web", port=0), routes=table)
    await ep.start()            # binds; ep.bound_port is the real port (port 0 binds)
    ep.routes = new_table       # swap in one assignment; in-flight requests keep the table they matched
    ep.tls_routes = tls_table   # HTTPS routers: answered only on TLS connections
    ep.tls = serving            # TLSServing: TLS and plain on the same port (ClientHello peek);
                                # new handshakes use the new certificates/options, open ones keep theirs
    await ep.shutdown()         # requestAcceptGraceTimeout, then graceTimeOut, then force-close

``routes`` is any object with ``match(req: MatchRequest) -> entry | None`` where ``entry.target`` is
a :class:`~ferryman.http.exchange.Handler` and ``entry.name`` the router name (the
``RoutingTable[Handler]`` of :mod:`ferryman.control.routing`); ``None`` answers 404 to everything.

Timeouts are enforced by one sweeper per entry point (a ``call_later`` chain, no task): each
connection keeps its deadlines as numbers and the sweeper checks them every ``tick`` seconds
(a tenth of the shortest timeout, between 5 ms and 1 s). ``ep.now`` is the sweeper's clock, read
by connections instead of calling ``loop.time()`` per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as ssl_module
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ferryman.http.exchange import Handler
from ferryman.http.forwarded import ForwardingPolicy
from ferryman.ipnet import IPMatcher
from ferryman.server.h1 import H1Connection
from ferryman.server.tls import start_tls

if TYPE_CHECKING:
    from ferryman.http.match import MatchView
    from ferryman.observability.recorder import Observer
    from ferryman.tls.store import TLSServing

log = logging.getLogger("ferryman.server")

__all__ = ["EntryPoint", "EntryPointSettings", "RouteEntryLike", "RoutesLike", "ServedConnection"]


class RouteEntryLike(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def target(self) -> Handler: ...


class ServedConnection(Protocol):
    """What the entry point needs from a client connection (HTTP/1.1 or HTTP/2)."""

    def check_deadlines(self, now: float) -> None: ...

    def close_if_idle(self) -> bool: ...

    def force_close(self) -> None: ...


class RoutesLike(Protocol):
    def match(self, req: MatchView, /) -> RouteEntryLike | None: ...


@dataclass(frozen=True, slots=True)
class EntryPointSettings:
    """What an HTTP entry point needs from ``entryPoints.<name>`` (Traefik's defaults).

    Durations are seconds; 0 means "no timeout" (``idle_timeout`` 0 falls back to
    ``read_timeout``, as Go does).
    """

    name: str
    host: str = ""                              # "" = all interfaces
    port: int = 80
    read_timeout: float = 60.0                  # transport.respondingTimeouts.readTimeout
    write_timeout: float = 0.0                  # ...writeTimeout
    idle_timeout: float = 180.0                 # ...idleTimeout
    request_accept_grace_timeout: float = 0.0   # transport.lifeCycle.requestAcceptGraceTimeout
    grace_timeout: float = 10.0                 # transport.lifeCycle.graceTimeOut
    keep_alive_max_requests: int = 0            # transport.keepAliveMaxRequests
    keep_alive_max_time: float = 0.0            # transport.keepAliveMaxTime
    max_header_bytes: int = 1048576             # http.maxHeaderBytes
    forwarded_trusted_ips: tuple[str, ...] = ()  # forwardedHeaders.trustedIPs
    forwarded_insecure: bool = False            # forwardedHeaders.insecure
    forwarded_connection: tuple[str, ...] = ()  # forwardedHeaders.connection
    forwarded_not_append_xff: bool = False      # forwardedHeaders.notAppendXForwardedFor
    forwarded_add_scheme_headers: bool = False  # forwardedHeaders.addXForwardedSchemeHeaders
    proxy_protocol: bool = False                # a proxyProtocol section is present
    proxy_protocol_trusted_ips: tuple[str, ...] = ()  # proxyProtocol.trustedIPs
    proxy_protocol_insecure: bool = False       # proxyProtocol.insecure
    reuse_port: bool = False                    # reusePort
    sanitize_path: bool = True                  # http.sanitizePath
    encode_query_semicolons: bool = False       # http.encodeQuerySemicolons
    http2_max_concurrent_streams: int = 250     # http2.maxConcurrentStreams
    http3: bool = False                         # an http3 section is present
    http3_advertised_port: int = 0              # http3.advertisedPort (0: the bound port)
    backlog: int = 4096

    @classmethod
    def from_static(cls, name: str, ep: Any, **overrides: Any) -> EntryPointSettings:
        """Build from a :class:`ferryman.static.models.EntryPoint` (duck-typed)."""
        transport = ep.transport
        timeouts = transport.responding_timeouts
        fwd = ep.forwarded_headers
        pp = ep.proxy_protocol
        listen = ep.listen
        values: dict[str, Any] = {
            "name": name,
            "host": listen.host,
            "port": listen.port,
            "read_timeout": float(timeouts.read_timeout),
            "write_timeout": float(timeouts.write_timeout),
            "idle_timeout": float(timeouts.idle_timeout),
            "request_accept_grace_timeout": float(transport.life_cycle.request_accept_grace_timeout),
            "grace_timeout": float(transport.life_cycle.grace_time_out),
            "keep_alive_max_requests": int(transport.keep_alive_max_requests),
            "keep_alive_max_time": float(transport.keep_alive_max_time),
            "max_header_bytes": int(ep.http.max_header_bytes),
            "forwarded_trusted_ips": tuple(fwd.trusted_ips),
            "forwarded_insecure": bool(fwd.insecure),
            "forwarded_connection": tuple(fwd.connection),
            "forwarded_not_append_xff": bool(fwd.not_append_x_forwarded_for),
            "forwarded_add_scheme_headers": bool(fwd.add_x_forwarded_scheme_headers),
            "proxy_protocol": pp is not None,
            "proxy_protocol_trusted_ips": tuple(pp.trusted_ips) if pp is not None else (),
            "proxy_protocol_insecure": bool(pp.insecure) if pp is not None else False,
            "reuse_port": bool(ep.reuse_port),
            "sanitize_path": bool(ep.http.sanitize_path),
            "encode_query_semicolons": bool(ep.http.encode_query_semicolons),
            "http2_max_concurrent_streams": int(ep.http2.max_concurrent_streams),
            "http3": ep.http3 is not None,
            "http3_advertised_port": int(ep.http3.advertised_port) if ep.http3 is not None else 0,
        }
        values.update(overrides)
        return cls(**values)


def _tick(settings: EntryPointSettings) -> float:
    timeouts = [t for t in (settings.read_timeout, settings.write_timeout, settings.idle_timeout)
                if t > 0]
    if not timeouts:
        return 1.0
    return min(1.0, max(0.005, min(timeouts) / 10))


class EntryPoint:
    """One listening HTTP/1.1 + HTTP/2 entry point (plain TCP, or TLS with ``ssl``)."""

    def __init__(self, settings: EntryPointSettings, routes: RoutesLike | None = None, *,
                 ssl: ssl_module.SSLContext | None = None, hostname: str | None = None) -> None:
        self.settings = settings
        self.routes: RoutesLike | None = routes
        # With a fixed ``ssl`` context every connection is TLS and routes with ``tls_routes``.
        self.tls_routes: RoutesLike | None = routes if ssl is not None else None
        self.tls: TLSServing | None = None
        #: pending TLS-ALPN-01 answers by SNI (ferryman.acme), None without tlsChallenge
        self.acme_alpn: Mapping[str, ssl_module.SSLContext] | None = None
        self.forwarding = ForwardingPolicy(
            insecure=settings.forwarded_insecure, trusted_ips=settings.forwarded_trusted_ips,
            connection=settings.forwarded_connection,
            not_append_xff=settings.forwarded_not_append_xff,
            add_scheme_headers=settings.forwarded_add_scheme_headers, hostname=hostname)
        self._proxy_trusted: IPMatcher | None = (
            IPMatcher.from_strings(settings.proxy_protocol_trusted_ips, path="proxyProtocol.trustedIPs")
            if settings.proxy_protocol_trusted_ips else None)
        self._ssl = ssl
        self.connections: set[ServedConnection] = set()
        self.shutting_down = False
        self.now = 0.0
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # set by start()
        self.bound_port = 0
        self._server: asyncio.base_events.Server | None = None
        self._sweep_handle: asyncio.TimerHandle | None = None
        self._tick = _tick(settings)
        self._drained: asyncio.Event | None = None
        #: HTTP/3: the ``Alt-Svc`` value and line added to TLS responses on TCP (``None``: no HTTP/3).
        self.alt_svc_value: bytes | None = None
        self.alt_svc: bytes | None = None
        self._quic: Any = None
        #: Metrics / access-log recording (:mod:`ferryman.observability.recorder`); ``None`` = off.
        self.observer: Observer | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.now = loop.time()
        settings = self.settings
        self._server = await loop.create_server(
            lambda: H1Connection(self), host=settings.host or None, port=settings.port,
            reuse_port=settings.reuse_port or None, backlog=settings.backlog, ssl=self._ssl)
        sockets = self._server.sockets
        self.bound_port = sockets[0].getsockname()[1] if sockets else settings.port
        if settings.http3:
            from ferryman.server.h3 import alt_svc, start_http3

            transport, _ = await start_http3(self, loop)
            self._quic = transport
            self.alt_svc_value = alt_svc(settings.http3_advertised_port or self.bound_port)
            self.alt_svc = b"Alt-Svc: " + self.alt_svc_value + b"\r\n"
        self._sweep_handle = loop.call_later(self._tick, self._sweep)
        log.debug("entry point %s listening on %s:%d", settings.name, settings.host or "*", self.bound_port)

    async def shutdown(self) -> None:
        """Traefik's life cycle: keep accepting for ``requestAcceptGraceTimeout``, then stop accepting,
        close idle connections, let in-flight requests finish for up to ``graceTimeOut``, then
        force-close what is left."""
        settings = self.settings
        if settings.request_accept_grace_timeout > 0:
            await asyncio.sleep(settings.request_accept_grace_timeout)
        self.shutting_down = True
        server = self._server
        if server is not None:
            server.close()
        self.alt_svc = self.alt_svc_value = None
        self._drained = asyncio.Event()
        for conn in list(self.connections):
            conn.close_if_idle()
        if self.connections and settings.grace_timeout > 0:
            try:
                await asyncio.wait_for(self._drained.wait(), settings.grace_timeout)
            except TimeoutError:
                log.debug("entry point %s: grace period over, closing %d connections",
                          settings.name, len(self.connections))
        for conn in list(self.connections):
            conn.force_close()
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
            self._sweep_handle = None
        if self._quic is not None:
            self._quic.close()
            self._quic = None
        if server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        # Let the transports run their connection_lost callbacks.
        await asyncio.sleep(0)

    # ------------------------------------------------------------------ used by connections

    def proxy_trusts(self, ip: str) -> bool:
        if self.settings.proxy_protocol_insecure:
            return True
        matcher = self._proxy_trusted
        return matcher is not None and matcher.contains(ip)

    def start_tls(self, transport: asyncio.BaseTransport, hello: bytes, ctx: ssl_module.SSLContext,
                  client: tuple[str, int], sni: str | None = None) -> None:
        """A connection peeked a ClientHello: terminate TLS on it (see :mod:`ferryman.server.tls`)."""
        start_tls(self, transport, hello, ctx, client, sni)

    def connection_closed(self) -> None:
        drained = self._drained
        if drained is not None and not self.connections:
            drained.set()

    def _sweep(self) -> None:
        loop = self.loop
        now = self.now = loop.time()
        if self.connections:
            for conn in list(self.connections):
                conn.check_deadlines(now)
        if self.shutting_down:
            for conn in list(self.connections):
                conn.close_if_idle()
        self._sweep_handle = loop.call_later(self._tick, self._sweep)

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    def close_connections(self, conns: Iterable[ServedConnection]) -> None:
        for conn in conns:
            conn.force_close()
