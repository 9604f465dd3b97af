"""``rateLimit``: a token bucket per source, as Traefik's ``pkg/middlewares/ratelimiter`` (in memory).

Build time (``New``): ``rate = average / period`` (``period`` 0 or unset is 1s, negative is a
:class:`~ferryman.errors.ConfigError`; ``average`` 0 means no limit), ``burst`` at least 1,
``maxDelay`` = 500ms when the rate is below 1/s, else ``1s / (2 * int(rate))`` (Go's integer
``time.Duration`` division), and the bucket TTL (2s from 1/s up, ``1 + int(1/rate)`` seconds below).
The source comes from ``sourceCriterion`` (:mod:`ferryman.middlewares.source`; the client IP by
default). With a ``redis`` section the buckets live in redis, shared by every instance
(:mod:`ferryman.middlewares.rate_limit_redis`); the rest of this docstring is the in-memory limiter.

Per request, ``golang.org/x/time/rate``'s ``Reserve`` on the source's bucket (a new bucket starts
full): when the reservation's delay is at most ``maxDelay`` the request waits it out -- a
``loop.call_later`` continuation, no task (ADR 0001); a client that went away meanwhile is dropped --
and is forwarded; otherwise the reservation is cancelled (the token is given back) and the client
gets ``429`` with ``Retry-After: ceil(delay in seconds)``, ``X-Retry-In: <Go duration>`` and the body
``Too Many Requests`` (no sniffed ``Content-Type``).

As in Traefik's in-memory limiter, each router using the middleware has its own buckets. They are
long-lived state (:mod:`ferryman.state`, ADR 0007) keyed by router, middleware and configuration, so
a reload that leaves the middleware unchanged keeps them (Traefik starts afresh, which lets a
client get a new burst on every reload); without a registry they live in the handler. At most
:data:`MAX_SOURCES` sources are tracked; a source unseen for its TTL is forgotten (its bucket would be
full again anyway), and when the table is full the least recently seen source is dropped first (with
one TTL for all, that is the one expiring soonest, as ``ttlmap`` evicts).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final, Protocol

from ferryman.dynamic.models import RateLimit
from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange, Handler
from ferryman.middlewares.rate_limit_redis import RedisRateLimitHandler, redis_buckets
from ferryman.middlewares.source import SourceExtractor, compile_source
from ferryman.state import StateRegistry
from ferryman.types import go_duration_ns as go_duration

__all__ = ["MAX_SOURCES", "Clock", "RateLimitHandler", "TokenBucket", "build_rate_limit", "go_duration"]

#: Sources remembered per middleware (Traefik's ``maxSources``).
MAX_SOURCES: Final = 65536

_BODY: Final = b"Too Many Requests"
_SECOND_NS: Final = 1_000_000_000


class Clock(Protocol):
    """What the middleware needs from the event loop (a fake one in tests)."""

    def time(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Any: ...


class TokenBucket:
    """``rate.Limiter`` reduced to what the middleware uses: reserve one token, or give it back."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)  # Go's zero ``last`` makes a new limiter full
        self.last = now

    def reserve(self, now: float, max_delay_ns: int) -> int:
        """Take a token: ``delay`` in ns (``<= max_delay_ns``: reserved), else not taken (cancelled)."""
        last = self.last if now >= self.last else now
        tokens = self.tokens + (now - last) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        self.last = now
        tokens -= 1.0
        delay_ns = int(-tokens / self.rate * 1e9) if tokens < 0 else 0
        if delay_ns > max_delay_ns:
            self.tokens = tokens + 1.0  # Reservation.Cancel right away gives the token back
        else:
            self.tokens = tokens
        return delay_ns


class RateLimitHandler:
    """The built middleware (a :class:`~ferryman.http.exchange.Handler`)."""

    __slots__ = ("_buckets", "_burst", "_extract", "_max_delay_ns", "_rate", "_ttl", "clock", "name", "next")

    def __init__(self, name: str, next_handler: Handler, rate: float, burst: int, max_delay_ns: int, ttl: float,
                 extract: SourceExtractor, clock: Clock | None = None) -> None:
        self.name = name
        self.next = next_handler
        self._rate = rate
        self._burst = burst
        self._max_delay_ns = max_delay_ns
        self._ttl = ttl
        self._extract = extract
        #: The loop (its ``time``/``call_later``); ``None``: the running loop, looked up per request.
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[TokenBucket, float]] = OrderedDict()

    @property
    def max_delay(self) -> float:
        return self._max_delay_ns / 1e9

    @property
    def rate(self) -> float:
        return self._rate

    def sources(self) -> int:
        return len(self._buckets)

    def _clock(self) -> Clock | None:
        clock = self.clock
        if clock is not None:
            return clock
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None

    def handle(self, ex: Exchange) -> None:
        if self._rate == math.inf:
            self.next.handle(ex)
            return
        clock = self._clock()
        now = clock.time() if clock is not None else time.monotonic()
        source = self._extract(ex)
        buckets = self._buckets
        entry = buckets.get(source)
        if entry is None or entry[1] <= now:
            bucket = TokenBucket(self._rate, self._burst, now)
            if entry is None:
                self._make_room(now)
        else:
            bucket = entry[0]
            buckets.move_to_end(source)
        buckets[source] = (bucket, now + self._ttl)
        delay_ns = bucket.reserve(now, self._max_delay_ns)
        if delay_ns > self._max_delay_ns:
            ex.respond(429, ((b"Retry-After", b"%d" % math.ceil(delay_ns / 1e9)),
                             (b"X-Retry-In", go_duration(delay_ns).encode())), _BODY, content_type=None)
        elif delay_ns > 0 and clock is not None:
            clock.call_later(delay_ns / 1e9, self._resume, ex)
        else:
            self.next.handle(ex)

    def _resume(self, ex: Exchange) -> None:
        if not ex.done:  # the client may have gone away while the request waited
            self.next.handle(ex)

    def _make_room(self, now: float) -> None:
        buckets = self._buckets
        # Forget a few expired sources (oldest first), then the least recently seen one if still full.
        for _ in range(2):
            if not buckets:
                return
            source, (_, expires) = next(iter(buckets.items()))
            if expires > now:
                break
            del buckets[source]
        if len(buckets) >= MAX_SOURCES:
            buckets.popitem(last=False)


def build_rate_limit(name: str, config: RateLimit, next_handler: Handler, clock: Clock | None = None,
                     states: StateRegistry | None = None, router: str = "") -> Handler:
    path = f"http.middlewares.{name}.rateLimit"
    extract = compile_source(config.source_criterion, f"{path}.sourceCriterion", default="ip")
    if config.period < 0:
        raise ConfigError(f"negative value not valid for period: {config.period:g}s", path=f"{path}.period",
                          fix="use a positive duration such as 1s or 1m")
    period_ns = round(config.period * 1e9) or _SECOND_NS
    burst = max(config.burst, 1)
    rate = math.inf
    max_delay_ns = 0
    if config.average > 0:
        rate = config.average * _SECOND_NS / period_ns
        max_delay_ns = 500_000_000 if rate < 1 else _SECOND_NS // (int(rate) * 2)
    ttl = 1
    if rate >= 1:
        ttl += 1
    elif rate > 0:
        ttl += int(1 / rate)
    if config.redis is not None:
        if rate == math.inf:
            return next_handler  # Traefik's redis limiter allows everything without asking redis
        buckets = redis_buckets(config.redis, f"{path}.redis", states)
        return RedisRateLimitHandler(name, next_handler, rate, burst, max_delay_ns, ttl, extract, buckets)
    handler = RateLimitHandler(name, next_handler, rate, burst, max_delay_ns, float(ttl), extract, clock)
    if states is not None and rate != math.inf:
        handler._buckets = states.get(("rateLimit", router, name, config), OrderedDict)
    return handler
