"""``inFlightReq``: at most ``amount`` simultaneous requests per source, as Traefik's
``pkg/middlewares/inflightreq`` (oxy's ``connlimit``).

Build time: the source comes from ``sourceCriterion`` (:mod:`ferryman.middlewares.source`); without
one it is the request host (Go's ``req.Host``, port included), Traefik's default for this middleware.
Two criteria at once are a :class:`~ferryman.errors.ConfigError` (``error creating requests limiter:
...``). ``amount`` is taken as is: ``0`` (or less) refuses every request, as oxy does.

Per request: when ``count + 1 > amount`` for the source the client gets ``429`` with oxy's body
``max connections reached: <amount>`` (no sniffed ``Content-Type``); otherwise the request counts
until it is over. Traefik releases when ``next.ServeHTTP`` returns; here an exchange is over when its
response ends or is aborted (a wrapper around ``ex.sink`` sees ``send_end``/``abort``, whoever
answers: the backend, a middleware, a tunnel closing) or when the client went away -- the
connection then marks the exchange ``done`` and tells only the producer, so exchanges that are
``done`` are released lazily: the source's own before a request would be refused, and all of them in
a sweep every :data:`SWEEP_EVERY` admissions or so (amortized O(1), bounded memory).
"""

from __future__ import annotations

from typing import Final

from ferryman.dynamic.models import InFlightReq
from ferryman.http.exchange import Exchange, Handler, Headers, RelaySink, ResponseSink
from ferryman.middlewares.source import SourceExtractor, compile_source

__all__ = ["SWEEP_EVERY", "InFlightReqHandler", "build_in_flight_req"]

#: Admissions between two sweeps for exchanges whose client went away (at least; more when many
#: requests are in flight).
SWEEP_EVERY: Final = 1024


class InFlightReqHandler:
    """The built middleware (a :class:`~ferryman.http.exchange.Handler`)."""

    __slots__ = ("_admitted", "_amount", "_body", "_by_source", "_extract", "_inflight", "name", "next")

    def __init__(self, name: str, next_handler: Handler, amount: int, extract: SourceExtractor) -> None:
        self.name = name
        self.next = next_handler
        self._amount = amount
        self._extract = extract
        self._body = f"max connections reached: {amount}".encode()
        self._by_source: dict[str, set[Exchange]] = {}
        self._inflight: dict[Exchange, str] = {}
        self._admitted = 0

    def in_flight(self, source: str | None = None) -> int:
        """Requests counted now (for ``source``, or in total)."""
        if source is None:
            return len(self._inflight)
        return len(self._by_source.get(source, ()))

    def handle(self, ex: Exchange) -> None:
        source = self._extract(ex)
        group = self._by_source.get(source)
        if group is not None and len(group) >= self._amount:
            for other in [e for e in group if e.done]:  # clients gone meanwhile
                self.release(other)
            group = self._by_source.get(source)
        if (len(group) if group is not None else 0) >= self._amount:
            ex.respond(429, (), self._body, content_type=None)
            return
        if group is None:
            group = self._by_source[source] = set()
        group.add(ex)
        self._inflight[ex] = source
        self._admitted += 1
        if self._admitted >= SWEEP_EVERY and self._admitted >= len(self._inflight):
            self._sweep()
        ex.sink = _ReleasingSink(self, ex, ex.sink)
        self.next.handle(ex)

    def release(self, ex: Exchange) -> None:
        """``ex`` is over: stop counting it (idempotent)."""
        source = self._inflight.pop(ex, None)
        if source is None:
            return
        group = self._by_source[source]
        group.discard(ex)
        if not group:
            del self._by_source[source]

    def _sweep(self) -> None:
        self._admitted = 0
        for ex in [e for e in self._inflight if e.done]:
            self.release(ex)


class _ReleasingSink(RelaySink):
    """Passes the response through and releases the exchange when it ends or is aborted."""

    __slots__ = ("_ex", "_owner")

    def __init__(self, owner: InFlightReqHandler, ex: Exchange, nxt: ResponseSink) -> None:
        super().__init__(nxt)
        self._owner = owner
        self._ex = ex

    def send_end(self, trailers: Headers | None) -> None:
        self._next.send_end(trailers)
        self._owner.release(self._ex)

    def abort(self) -> None:
        self._next.abort()
        self._owner.release(self._ex)


def build_in_flight_req(name: str, config: InFlightReq, next_handler: Handler) -> Handler:
    path = f"http.middlewares.{name}.inFlightReq"
    extract = compile_source(config.source_criterion, f"{path}.sourceCriterion", default="host",
                             context="error creating requests limiter")
    return InFlightReqHandler(name, next_handler, config.amount, extract)
