"""Pools of keep-alive backend connections, one per (scheme, host, port, transport name).

``UpstreamPools`` is long-lived: the app creates one and keeps it across configuration reloads;
services built from a new configuration get the same :class:`Pool` for the same key (its settings
are updated in place), so reloads keep warm connections.

* LIFO reuse (the most recently used connection is the likeliest to be alive and warm).
* ``maxIdleConnsPerHost`` idle connections kept (0 = Go's 2, negative = none).
* ``idleConnTimeout``: idle connections older than this are closed by the sweeper.
* ``dialTimeout``: a dial that takes longer answers ``504``; a refused/failed dial ``502``.
* ``responseHeaderTimeout``: no response head within it answers ``504``.

A failed dial has sent nothing to the backend. Before answering it, the pool offers the failure to
the exchange's producer if that is a :class:`DialFailureListener` (the ``retry`` middleware sets
itself as producer while a request waits for a connection; a started connection replaces it, so a
request that reached the backend is never offered): ``dial_failed(ex, status)`` returning ``True``
means it took charge of the exchange.

A dial is the only place a task is created on the request path.

Backends speaking HTTP/2 (``h2c://``, or ``https://`` when ALPN picks ``h2``) share a few multiplexed
:class:`~ferryman.upstream.h2.H2Upstream` connections per pool (``h2conns``): an exchange opens a
stream on one with room (:meth:`Pool.forward_h2`); while the first connection is being dialled,
exchanges wait for it (``h2_waiting``) instead of each dialling its own. Requests that upgrade
(WebSocket) always use HTTP/1.1, as Traefik's transports do. ``https://`` dials TLS with the
transport's client context (:mod:`ferryman.upstream.tls`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import deque
from collections.abc import Iterator
from typing import Final, Protocol, runtime_checkable

from ferryman.holding import Holding
from ferryman.http.exchange import Exchange
from ferryman.tasks import spawn
from ferryman.upstream.connection import UpstreamConnection
from ferryman.upstream.h2 import H2Upstream
from ferryman.upstream.settings import TransportSettings
from ferryman.upstream.tls import ALPN_H1, ALPN_H2, client_context, peer_uri_ok

log = logging.getLogger("ferryman.upstream")

__all__ = ["DialFailureListener", "Pool", "PoolKey", "UpstreamPools"]

PoolKey = tuple[str, str, int, str]

_BAD_GATEWAY: Final = b"Bad Gateway"
_GATEWAY_TIMEOUT: Final = b"Gateway Timeout"


@runtime_checkable
class DialFailureListener(Protocol):
    """A producer told when the connection for its exchange could not be made (nothing was sent)."""

    def dial_failed(self, ex: Exchange, status: int) -> bool: ...


class Deadline(Protocol):
    """Something the sweeper times out (a request waiting for its response head)."""

    deadline: float

    def timed_out(self) -> None: ...


def _taken_over(ex: Exchange, status: int) -> bool:
    listener = ex.producer
    return isinstance(listener, DialFailureListener) and listener.dial_failed(ex, status)


class Pool:
    """Connections to one backend address through one servers transport."""

    __slots__ = ("closed", "dials", "h2", "h2_dialing", "h2_waiting", "h2conns", "host", "idle", "key", "max_idle",
                 "port", "registry", "rht", "scheme", "settings")

    def __init__(self, registry: UpstreamPools, key: PoolKey, settings: TransportSettings) -> None:
        self.registry = registry
        self.key = key
        self.scheme, self.host, self.port, _ = key
        self.settings = settings
        #: Effective idle-pool size (0 once the pool is closed) and responseHeaderTimeout, read per request.
        self.max_idle = settings.idle_limit
        self.rht = settings.response_header_timeout
        self.idle: deque[UpstreamConnection] = deque()
        self.dials = 0
        self.closed = False
        #: Requests go over HTTP/2 (h2c, or https once ALPN chose h2); upgrades still use HTTP/1.1.
        self.h2 = self.scheme == "h2c"
        self.h2conns: list[H2Upstream] = []
        self.h2_waiting: deque[tuple[Exchange, bytes]] = deque()
        self.h2_dialing = 0

    def forward(self, ex: Exchange, head: bytes) -> None:
        """Send ``ex`` with request head ``head`` on an idle connection, or dial one."""
        if self.h2 and ex.upgrade is None:
            self.forward_h2(ex, head)
            return
        idle = self.idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                conn.start(ex, head, True)
                return
        self.dial(ex, head)

    def acquire(self) -> UpstreamConnection | None:
        idle = self.idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    def release(self, conn: UpstreamConnection) -> None:
        if self.closed or len(self.idle) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = self.registry.now
        self.idle.append(conn)

    def forget(self, conn: UpstreamConnection) -> None:
        """A connection closed: drop it from the idle list if it is there."""
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)

    def dial(self, ex: Exchange, head: bytes) -> None:
        self.registry.ensure_sweeper()
        self.dials += 1
        spawn(self._dial(ex, head), name=f"dial {self.host}:{self.port}")

    # ------------------------------------------------------------------ HTTP/2

    def forward_h2(self, ex: Exchange, head: bytes) -> None:
        """Send ``ex`` on a multiplexed connection with room, or wait for one being dialled."""
        for conn in self.h2conns:
            if conn.capacity > 0:
                conn.start(ex, head)
                return
        if self.h2_dialing:
            self.h2_waiting.append((ex, head))
            return
        self.registry.ensure_sweeper()
        self.dials += 1
        self.h2_dialing += 1
        spawn(self._dial(ex, head, True), name=f"dial {self.host}:{self.port}")

    def h2_capacity(self, conn: H2Upstream) -> None:
        """Streams were freed (or a connection came up): start waiting exchanges on ``conn``."""
        waiting = self.h2_waiting
        while waiting and conn.capacity > 0:
            ex, head = waiting.popleft()
            if not ex.done:
                conn.start(ex, head)
        if waiting and not self.h2_dialing and not self.closed:
            ex, head = waiting.popleft()
            self.forward_h2(ex, head)

    def _h2_lost(self, conn: H2Upstream) -> None:
        with contextlib.suppress(ValueError):
            self.h2conns.remove(conn)

    def _add_h2(self, conn: H2Upstream) -> None:
        conn.on_lost = self._h2_lost
        self.h2conns.append(conn)
        self.h2 = True

    def _dial_failed(self, ex: Exchange, status: int, h2: bool) -> None:
        waiting: list[tuple[Exchange, bytes]] = []
        if h2:
            self.h2_dialing -= 1
            if not self.h2_dialing:
                waiting = list(self.h2_waiting)
                self.h2_waiting.clear()
        for one, _ in [(ex, b""), *waiting]:
            if not one.done and not _taken_over(one, status):
                one.respond(status, (), _GATEWAY_TIMEOUT if status == 504 else _BAD_GATEWAY, content_type=None)

    async def _dial(self, ex: Exchange, head: bytes, want_h2: bool = False) -> None:
        """Connect, then start ``ex`` on the new connection. ``want_h2``: dialled by
        :meth:`forward_h2` (other exchanges may wait for this connection)."""
        loop = asyncio.get_running_loop()
        settings = self.settings
        timeout = settings.dial_timeout
        scheme = self.scheme
        tls = scheme == "https"
        proto: H2Upstream | UpstreamConnection
        try:
            async with asyncio.timeout(timeout if timeout > 0 else None):
                if tls:
                    h1_only = ex.upgrade is not None or settings.disable_http2
                    ctx = client_context(settings, ALPN_H1 if h1_only else ALPN_H2)
                    transport, dialing = await loop.create_connection(
                        Holding, self.host, self.port, ssl=ctx,
                        server_hostname=settings.server_name or self.host)
                elif want_h2:
                    transport, proto = await loop.create_connection(
                        lambda: H2Upstream(self, b"http"), self.host, self.port)
                else:
                    transport, proto = await loop.create_connection(
                        lambda: UpstreamConnection(self), self.host, self.port)
        except TimeoutError:
            log.debug("dial %s:%d timed out", self.host, self.port)
            self._dial_failed(ex, 504, want_h2)
            return
        except (OSError, ssl.SSLError) as exc:
            log.debug("dial %s:%d failed: %s", self.host, self.port, exc)
            self._dial_failed(ex, 502, want_h2)
            return
        if tls:
            ssl_object = transport.get_extra_info("ssl_object")
            if settings.peer_cert_uri and not peer_uri_ok(ssl_object, settings.peer_cert_uri):
                log.warning("backend %s:%d: certificate has no URI SAN %r (peerCertURI)", self.host, self.port,
                            settings.peer_cert_uri)
                transport.close()
                self._dial_failed(ex, 502, want_h2)
                return
            alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
            proto = H2Upstream(self, b"https") if alpn == "h2" else UpstreamConnection(self)
            dialing.hand_over(transport, proto)
        if isinstance(proto, H2Upstream):
            if want_h2:
                self.h2_dialing -= 1
            self._add_h2(proto)
            if not ex.done:
                proto.start(ex, head)
            self.h2_capacity(proto)
            return
        if want_h2:
            # an https backend that did not choose h2 after all: HTTP/1.1 from now on
            self.h2 = False
            self.h2_dialing -= 1
            waiting = list(self.h2_waiting)
            self.h2_waiting.clear()
            for other, other_head in waiting:
                if not other.done:
                    self.dial(other, other_head)
        if ex.done:
            self.release(proto)
            return
        proto.start(ex, head, False)

    def retire_h2(self) -> None:
        """No new streams on the current HTTP/2 connections (settings changed, shutdown): idle ones
        close now, busy ones when their last stream ends."""
        for conn in list(self.h2conns):
            conn.goaway = True
            if not conn.streams:
                conn.close()
        self.h2conns.clear()

    def close_idle(self, older_than: float | None = None) -> None:
        idle = self.idle
        if older_than is None:
            while idle:
                idle.popleft().close()
            return
        while idle and idle[0].idle_since <= older_than:
            idle.popleft().close()


class UpstreamPools:
    """The registry of pools (create one per process; keep it across reloads)."""

    def __init__(self) -> None:
        self._pools: dict[PoolKey, Pool] = {}
        self._watched: set[Deadline] = set()
        self.now = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.tick = 0.5

    def get(self, scheme: str, host: str, port: int, transport_name: str,
            settings: TransportSettings) -> Pool:
        key: PoolKey = (scheme, host.lower(), port, transport_name)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = Pool(self, key, settings)
        elif pool.settings != settings:
            pool.retire_h2()
            pool.h2 = scheme == "h2c"
            pool.settings = settings
            pool.max_idle = 0 if pool.closed else settings.idle_limit
            pool.rht = settings.response_header_timeout
            while len(pool.idle) > settings.idle_limit:
                pool.idle.popleft().close()
        if settings.response_header_timeout > 0:
            self.tick = min(self.tick, max(0.005, settings.response_header_timeout / 10))
        if settings.idle_conn_timeout > 0:
            self.tick = min(self.tick, max(0.005, settings.idle_conn_timeout / 10))
        return pool

    def __iter__(self) -> Iterator[Pool]:
        return iter(list(self._pools.values()))

    def __len__(self) -> int:
        return len(self._pools)

    # ------------------------------------------------------------------ timers

    def ensure_sweeper(self) -> None:
        if self._handle is None:
            loop = asyncio.get_running_loop()
            self._loop = loop
            self.now = loop.time()
            self._handle = loop.call_later(self.tick, self._sweep)

    def watch(self, conn: Deadline) -> None:
        self._watched.add(conn)

    def unwatch(self, conn: Deadline) -> None:
        self._watched.discard(conn)

    def _sweep(self) -> None:
        loop = self._loop
        assert loop is not None
        now = self.now = loop.time()
        for pool in self._pools.values():
            timeout = pool.settings.idle_conn_timeout
            if timeout > 0 and pool.idle:
                pool.close_idle(now - timeout)
            if timeout > 0 and pool.h2conns:
                for conn in [c for c in pool.h2conns if not c.streams and c.idle_since <= now - timeout]:
                    conn.close()
        if self._watched:
            for item in [c for c in self._watched if c.deadline and c.deadline <= now]:
                self._watched.discard(item)
                item.timed_out()
        self._handle = loop.call_later(self.tick, self._sweep)

    def close(self) -> None:
        """Close every idle connection and stop the sweeper (in-flight ones finish on their own)."""
        for pool in self._pools.values():
            pool.closed = True
            pool.max_idle = 0
            pool.close_idle()
            pool.retire_h2()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
