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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterator
from typing import Final, Protocol, runtime_checkable

from ferryman.http.exchange import Exchange
from ferryman.tasks import spawn
from ferryman.upstream.connection import UpstreamConnection
from ferryman.upstream.settings import TransportSettings

log = logging.getLogger("ferryman.upstream")

__all__ = ["DialFailureListener", "Pool", "PoolKey", "UpstreamPools"]

PoolKey = tuple[str, str, int, str]

_BAD_GATEWAY: Final = b"Bad Gateway"
_GATEWAY_TIMEOUT: Final = b"Gateway Timeout"


@runtime_checkable
class DialFailureListener(Protocol):
    """A producer told when the connection for its exchange could not be made (nothing was sent)."""

    def dial_failed(self, ex: Exchange, status: int) -> bool: ...


def _taken_over(ex: Exchange, status: int) -> bool:
    listener = ex.producer
    return isinstance(listener, DialFailureListener) and listener.dial_failed(ex, status)


class Pool:
    """Connections to one backend address through one servers transport."""

    __slots__ = ("closed", "dials", "host", "idle", "key", "max_idle", "port", "registry", "rht", "scheme",
                 "settings")

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

    def forward(self, ex: Exchange, head: bytes) -> None:
        """Send ``ex`` with request head ``head`` on an idle connection, or dial one."""
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

    async def _dial(self, ex: Exchange, head: bytes) -> None:
        loop = asyncio.get_running_loop()
        timeout = self.settings.dial_timeout
        try:
            async with asyncio.timeout(timeout if timeout > 0 else None):
                _, conn = await loop.create_connection(lambda: UpstreamConnection(self), self.host, self.port)
        except TimeoutError:
            log.debug("dial %s:%d timed out", self.host, self.port)
            if not ex.done and not _taken_over(ex, 504):
                ex.respond(504, (), _GATEWAY_TIMEOUT, content_type=None)
            return
        except OSError as exc:
            log.debug("dial %s:%d failed: %s", self.host, self.port, exc)
            if not ex.done and not _taken_over(ex, 502):
                ex.respond(502, (), _BAD_GATEWAY, content_type=None)
            return
        if ex.done:
            self.release(conn)
            return
        conn.start(ex, head, False)

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
        self._watched: set[UpstreamConnection] = set()
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

    def watch(self, conn: UpstreamConnection) -> None:
        self._watched.add(conn)

    def unwatch(self, conn: UpstreamConnection) -> None:
        self._watched.discard(conn)

    def _sweep(self) -> None:
        loop = self._loop
        assert loop is not None
        now = self.now = loop.time()
        for pool in self._pools.values():
            timeout = pool.settings.idle_conn_timeout
            if timeout > 0 and pool.idle:
                pool.close_idle(now - timeout)
        if self._watched:
            for conn in [c for c in self._watched if c.deadline and c.deadline <= now]:
                self._watched.discard(conn)
                conn.timed_out()
        self._handle = loop.call_later(self.tick, self._sweep)

    def close(self) -> None:
        """Close every idle connection and stop the sweeper (in-flight ones finish on their own)."""
        for pool in self._pools.values():
            pool.closed = True
            pool.max_idle = 0
            pool.close_idle()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
