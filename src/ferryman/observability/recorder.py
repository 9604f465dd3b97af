"""The one recording seam: every exchange an entry point serves ends here (metrics, access log).

Contract (others may code against it):

* ``EntryPoint.observer`` is ``None`` when neither metrics nor access logs are configured for that
  entry point: the connections then pay one attribute test per request and nothing else.
* Otherwise it is an :class:`Observer`. Connections call ``observer.begin(ex)`` once per request,
  right after building the :class:`~ferryman.http.exchange.Exchange` and before routing (HTTP/1.1,
  HTTP/2 -- and HTTP/3 later -- the same way). ``begin`` wraps ``ex.sink`` in a :class:`Tap`, the
  innermost sink, so it sees the status, headers and body bytes the client really gets.
* When the response ends (``send_end``), fails (``abort``) or the client goes away
  (``Tap.lost()``, called by the connection's "client gone" path), the tap calls every consumer
  once with the finished tap: ``consumer(tap)``. ``tap.ex`` carries ``router``/``service``/
  ``conn.entrypoint``; ``tap.status``, ``tap.size`` (response body bytes), ``tap.duration_ns``,
  ``tap.headers`` (response head) and ``tap.retries`` are filled in.
* Requests served by ``*@internal`` routers (API, ping, metrics, dashboard) are skipped unless
  the consumer asked for internals (``metrics.addInternals`` / ``accessLog.addInternals``).
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter_ns, time_ns
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ferryman.http.exchange import Exchange, Headers, ResponseSink

__all__ = ["Consumer", "Observer", "Tap", "lost"]

#: ``consumer(tap)``: called once per finished exchange.
Consumer = Callable[["Tap"], None]


class Observer:
    """Per entry point: who wants finished exchanges. ``internal``: consumers that also want
    the requests of ``*@internal`` routers; ``external``: those that do not."""

    __slots__ = ("all", "every", "external_only")

    def __init__(self, all_requests: tuple[Consumer, ...] = (), external_only: tuple[Consumer, ...] = ()) -> None:
        #: consumers called for every exchange (addInternals)
        self.all = all_requests
        #: consumers skipped for ``*@internal`` routers
        self.external_only = external_only
        self.every = all_requests + external_only

    def begin(self, ex: Exchange) -> None:
        ex.sink = ex.tap = Tap(ex, ex.sink, self)


class Tap:
    """Innermost response sink of an observed exchange: counts, then passes everything on."""

    __slots__ = ("_next", "_observer", "duration_ns", "ex", "headers", "length", "retries", "size", "start_ns",
                 "status", "target", "trailers", "upstream", "username")

    def __init__(self, ex: Exchange, nxt: ResponseSink, observer: Observer) -> None:
        self.ex = ex
        self._next = nxt
        self._observer: Observer | None = observer
        self.start_ns = perf_counter_ns()
        self.status = 0
        self.size = 0
        self.duration_ns = 0  # set when the exchange ends
        self.retries = 0
        self.headers: Headers | None = None
        #: the response body length announced with the head (``-1``: unknown)
        self.length = -1
        self.trailers: Headers | None = None
        #: set by basicAuth (access log ``ClientUsername``)
        self.username = ""
        #: the server URL that served it (set by the forwarder)
        self.upstream = ""
        #: the request target as received (middlewares may rewrite ``ex.target``)
        self.target = ex.target

    # ------------------------------------------------------------------ ResponseSink

    def send_info(self, status: int, headers: Headers) -> None:
        self._next.send_info(status, headers)

    def send_head(self, status: int, headers: Headers, length: int) -> None:
        self.status = status
        self.headers = headers
        self.length = length
        self._next.send_head(status, headers, length)

    def send_data(self, data: bytes) -> None:
        self.size += len(data)
        self._next.send_data(data)

    def send_end(self, trailers: Headers | None) -> None:
        self._next.send_end(trailers)
        if trailers:
            self.trailers = trailers
        self._finish()

    def abort(self) -> None:
        self._next.abort()
        self._finish()

    # ------------------------------------------------------------------ completion

    def lost(self) -> None:
        """The client went away before the response ended (Traefik logs 499 then)."""
        if self._observer is not None and not self.status:
            self.status = 499
        self._finish()

    def _finish(self) -> None:
        observer = self._observer
        if observer is None:
            return
        self._observer = None
        self.duration_ns = perf_counter_ns() - self.start_ns
        # Break the exchange <-> tap cycle so both are freed by reference counting, not by the
        # cyclic GC (which would otherwise find thousands of them per second).
        ex = self.ex
        ex.tap = None
        if ex.sink is self:
            ex.sink = self._next
        router = ex.router
        for consumer in observer.all if router is not None and router[-9:] == "@internal" else observer.every:
            consumer(self)

    @property
    def start_unix_ns(self) -> int:
        """Wall-clock start (derived at log time: one monotonic clock read per request)."""
        return time_ns() - (perf_counter_ns() - self.start_ns)


def lost(ex: Exchange) -> None:
    """The connection's "client gone" path: finish the exchange's tap if it has one."""
    tap = ex.tap
    if tap is not None:
        tap.lost()
