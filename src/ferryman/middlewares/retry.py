"""``retry``: try the request again when the backend could not be reached, as Traefik's
``pkg/middlewares/retry``.

Build time: ``attempts`` (total tries) must be positive (Traefik: ``incorrect (or empty) value for
attempt``); ``initialInterval`` > 0 gives Traefik's exponential backoff (cenkalti ``backoff``:
randomization 0.5, multiplier ``2 ** (1 / (attempts - 1))`` so the interval reaches at most twice
the initial one, 60s cap), otherwise tries follow each other at once. Traefik 3.7's ``status`` and
``timeout`` are refused for now (a router using them is disabled with that reason rather than
retrying less than configured); ``maxRequestBodyBytes`` is accepted (nothing of the body has been
sent when ferryman retries, so nothing needs replaying).

Per request: as in Traefik, a retry happens only while nothing was sent to a backend -- Traefik
stops retrying once its transport wrote the request headers (``httptrace.WroteHeaders``). Here
that is a failed or timed-out dial: the middleware registers as the exchange's producer, the
upstream pool offers it the failure (:class:`~ferryman.upstream.pool.DialFailureListener`), and a
started backend connection replaces it as producer. The next try is scheduled with
``loop.call_later`` (no task, ADR 0001) and goes through the inner chain again, so a load balancer
picks its next server. The last failure is answered by the pool as usual (502, or 504 for a dial
timeout). ``POST``, ``PATCH`` and ``LOCK`` are not retried unless ``retryNonIdempotentMethod``;
``disableRetryOnNetworkError`` turns the middleware into a pass-through (the network errors are the
only ones it retries for now). A client that went away during the backoff ends the retries.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any, Final, Protocol

from ferryman.dynamic.models import Retry
from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange, Handler

__all__ = ["NON_IDEMPOTENT", "RetryHandler", "backoff_intervals", "build_retry"]

#: Methods retried only with ``retryNonIdempotentMethod``.
NON_IDEMPOTENT: Final = frozenset({b"POST", b"PATCH", b"LOCK"})

_RANDOMIZATION: Final = 0.5
_MAX_INTERVAL: Final = 60.0


class Scheduler(Protocol):
    def call_later(self, delay: float, callback: Any, *args: Any) -> Any: ...


class _Backoff:
    """cenkalti/backoff's ``ExponentialBackOff`` (``NextBackOff`` only; no elapsed-time stop)."""

    __slots__ = ("_current", "_multiplier", "_rng")

    def __init__(self, initial: float, multiplier: float, rng: random.Random) -> None:
        self._current = initial
        self._multiplier = multiplier
        self._rng = rng

    def next(self) -> float:
        current = self._current
        delta = _RANDOMIZATION * current
        low = current - delta
        value = low + self._rng.random() * (current + delta - low)
        if current >= _MAX_INTERVAL / self._multiplier:
            self._current = _MAX_INTERVAL
        else:
            self._current = current * self._multiplier
        return value


def backoff_intervals(attempts: int, initial: float, rng: random.Random | None = None) -> list[float]:
    """The waits before tries 2..``attempts`` (``0.0`` each without ``initialInterval``)."""
    if attempts < 2 or initial <= 0:
        return [0.0] * max(attempts - 1, 0)
    b = _Backoff(initial, 2 ** (1 / (attempts - 1)), rng or random.Random())
    return [b.next() for _ in range(attempts - 1)]


class RetryHandler:
    """The built middleware (a :class:`~ferryman.http.exchange.Handler`)."""

    __slots__ = ("_attempts", "_initial", "_multiplier", "_non_idempotent", "clock", "name", "next", "rng")

    def __init__(self, name: str, next_handler: Handler, attempts: int, initial_interval: float,
                 retry_non_idempotent: bool, clock: Scheduler | None = None,
                 rng: random.Random | None = None) -> None:
        self.name = name
        self.next = next_handler
        self._attempts = attempts
        self._initial = initial_interval
        self._multiplier = 2 ** (1 / (attempts - 1)) if attempts > 1 else 1.0
        self._non_idempotent = retry_non_idempotent
        #: ``call_later`` provider (``None``: the running loop); random source for the jitter.
        self.clock = clock
        self.rng = rng or random.Random()

    def handle(self, ex: Exchange) -> None:
        if self._attempts < 2 or (ex.method in NON_IDEMPOTENT and not self._non_idempotent):
            self.next.handle(ex)
            return
        backoff = _Backoff(self._initial, self._multiplier, self.rng) if self._initial > 0 else None
        _Attempts(self, ex, backoff).start()

    def _scheduler(self) -> Scheduler | None:
        if self.clock is not None:
            return self.clock
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None


class _Attempts:
    """One request's tries; the exchange's producer until a backend connection takes over."""

    __slots__ = ("_backoff", "_ex", "_owner", "tries")

    def __init__(self, owner: RetryHandler, ex: Exchange, backoff: _Backoff | None) -> None:
        self._owner = owner
        self._ex = ex
        self._backoff = backoff
        self.tries = 0

    def start(self) -> None:
        ex = self._ex
        if ex.done:
            return  # the client went away during the backoff
        self.tries += 1
        ex.set_producer(self)
        self._owner.next.handle(ex)

    # DialFailureListener
    def dial_failed(self, ex: Exchange, status: int) -> bool:
        if ex.done or ex.producer is not self:
            return False
        if self.tries >= self._owner._attempts:
            ex.set_producer(None)
            return False  # the last try: the pool answers
        tap = ex.tap
        if tap is not None:
            tap.retries += 1  # access log RetryAttempts, traefik_service_retries_total
        delay = self._backoff.next() if self._backoff is not None else 0.0
        scheduler = self._owner._scheduler()
        if delay > 0 and scheduler is not None:
            scheduler.call_later(delay, self.start)
        else:
            self.start()
        return True

    # Producer (nothing to produce before a connection exists)
    def pause_producing(self) -> None:
        pass

    def resume_producing(self) -> None:
        pass

    def downstream_lost(self) -> None:
        pass


def build_retry(name: str, config: Retry, next_handler: Handler, clock: Scheduler | None = None,
                rng: random.Random | None = None) -> Handler:
    path = f"http.middlewares.{name}.retry"
    if config.attempts <= 0:
        raise ConfigError(f"incorrect (or empty) value for attempt ({config.attempts})", path=f"{path}.attempts",
                          fix="set attempts to the number of tries, e.g. attempts: 3")
    if config.status:
        raise ConfigError("retrying on response status is not implemented yet", path=f"{path}.status",
                          fix="remove status (network errors are retried)")
    if config.timeout > 0:
        raise ConfigError("retry timeout is not implemented yet", path=f"{path}.timeout", fix="remove timeout")
    if config.disable_retry_on_network_error:
        return next_handler  # network errors are the only retried ones for now
    return RetryHandler(name, next_handler, config.attempts, config.initial_interval,
                        config.retry_non_idempotent_method, clock, rng)
