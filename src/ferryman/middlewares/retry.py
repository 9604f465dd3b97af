"""``retry``: try the request again when the backend could not be reached or answered one of the
listed statuses, as Traefik's ``pkg/middlewares/retry`` (3.7).

Build time: ``attempts`` (total tries) must be positive (Traefik: ``incorrect (or empty) value for
attempt``); ``initialInterval`` > 0 gives Traefik's exponential backoff (cenkalti ``backoff``:
randomization 0.5, multiplier ``2 ** (1 / (attempts - 1))`` so the interval reaches at most twice
the initial one, 60s cap), otherwise tries follow each other at once. ``status`` is a list of codes
and ranges (``"503"``, ``"500-599"``, Traefik's ``HTTPCodeRanges``); ``disableRetryOnNetworkError``
without ``status`` is refused as in Traefik (``retry middleware requires at least HTTP status codes
or retry on TCP``). ``timeout`` (0 = none) bounds the time since the first try during which a
failure may still be retried; after it the failing answer goes to the client.

Per request, as Traefik 3.7:

* **network errors** (any method): a retry happens only while nothing was sent to a backend --
  Traefik stops once its transport wrote the request headers (``httptrace.WroteHeaders``). Here that
  is a failed or timed-out dial: the middleware registers as the exchange's producer, the upstream
  pool offers it the failure (:class:`~ferryman.upstream.pool.DialFailureListener`), and a started
  backend connection replaces it as producer. The last failure is answered by the pool as usual
  (502, or 504 for a dial timeout).
* **status codes**: only for idempotent methods (not ``POST``, ``PATCH``, ``LOCK``) unless
  ``retryNonIdempotentMethod``. A response whose status is in ``status`` is swallowed (its body is
  read and dropped) and the request tried again, except on the last try. A request body is read
  first, up to ``maxRequestBodyBytes`` (2 MiB by default, negative: no limit), and replayed on each
  try (Traefik's ``mirror.NewReusableRequest``); a larger body -- known from ``Content-Length``, or
  found while reading a chunked one, which is then handed on as it streams -- turns the status
  retries off for that request (network-error retries still apply).

The next try is scheduled with ``loop.call_later`` (no task, ADR 0001) and goes through the inner
chain again, so a load balancer picks its next server. A client that went away during the backoff
ends the retries.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any, Final, Protocol

from ferryman.dynamic.models import Retry
from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange, Handler, Headers, ResponseSink

__all__ = ["NON_IDEMPOTENT", "RetryHandler", "backoff_intervals", "build_retry", "parse_status_ranges"]

#: Methods retried only with ``retryNonIdempotentMethod``.
NON_IDEMPOTENT: Final = frozenset({b"POST", b"PATCH", b"LOCK"})

#: Traefik's ``RetryDefaultMaxRequestBodyBytes``: the most request body kept for status retries.
DEFAULT_MAX_BODY: Final = 2 * 1024 * 1024
_RANDOMIZATION: Final = 0.5
_MAX_INTERVAL: Final = 60.0


class Scheduler(Protocol):
    """``loop.call_later`` (and, when present, ``loop.time`` for ``timeout``)."""

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


def parse_status_ranges(blocks: tuple[str, ...], path: str) -> tuple[tuple[int, int], ...]:
    """Traefik's ``types.NewHTTPCodeRanges``: ``"503"`` or ``"500-599"`` (inclusive)."""
    ranges: list[tuple[int, int]] = []
    for block in blocks:
        parts = block.split("-")
        if len(parts) == 1:
            parts.append(parts[0])
        try:
            low, high = int(parts[0]), int(parts[1])
        except ValueError:
            raise ConfigError(f"creating HTTP code ranges: invalid status {block!r}", path=path,
                              fix='write codes or ranges such as "503" or "500-599"') from None
        ranges.append((low, high))
    return tuple(ranges)


class RetryHandler:
    """The built middleware (a :class:`~ferryman.http.exchange.Handler`)."""

    __slots__ = ("_attempts", "_initial", "_max_body", "_multiplier", "_network", "_non_idempotent", "_status",
                 "_timeout", "clock", "name", "next", "rng")

    def __init__(self, name: str, next_handler: Handler, attempts: int, initial_interval: float,
                 retry_non_idempotent: bool, clock: Scheduler | None = None,
                 rng: random.Random | None = None, *, status: tuple[tuple[int, int], ...] = (),
                 network: bool = True, timeout: float = 0.0, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.name = name
        self.next = next_handler
        self._attempts = attempts
        self._initial = initial_interval
        self._multiplier = 2 ** (1 / (attempts - 1)) if attempts > 1 else 1.0
        self._non_idempotent = retry_non_idempotent
        self._status = status
        self._network = network
        self._timeout = timeout
        self._max_body = max_body
        #: ``call_later`` provider (``None``: the running loop); random source for the jitter.
        self.clock = clock
        self.rng = rng or random.Random()

    def handle(self, ex: Exchange) -> None:
        status = self._status
        if status and (ex.upgrade is not None or (ex.method in NON_IDEMPOTENT and not self._non_idempotent)):
            status = ()
        if status and ex.body_length > 0 and 0 <= self._max_body < ex.body_length:
            status = ()  # Traefik's ErrBodyTooLarge: no retry on status for this request
        if self._attempts < 2 or not (status or self._network):
            self.next.handle(ex)
            return
        backoff = _Backoff(self._initial, self._multiplier, self.rng) if self._initial > 0 else None
        if status and ex.body_length != 0:
            ex.set_body_consumer(_BodyReader(self, ex, backoff, status))
            return
        _Attempts(self, ex, backoff, status).start()

    def _scheduler(self) -> Scheduler | None:
        if self.clock is not None:
            return self.clock
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None

    def _now(self) -> float:
        clock = self.clock
        time_fn = getattr(clock, "time", None) if clock is not None else None
        return float(time_fn()) if callable(time_fn) else time.monotonic()


class _BodyReader:
    """Reads the request body (bounded) so that each try can replay it, then starts the tries."""

    __slots__ = ("_backoff", "_chunks", "_ex", "_owner", "_size", "_status")

    def __init__(self, owner: RetryHandler, ex: Exchange, backoff: _Backoff | None,
                 status: tuple[tuple[int, int], ...]) -> None:
        self._owner = owner
        self._ex = ex
        self._backoff = backoff
        self._status = status
        self._chunks: list[bytes] = []
        self._size = 0

    def body_data(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        if 0 <= self._owner._max_body < self._size:
            # Too large to keep: give back what was read, the rest streams; network retries only.
            ex = self._ex
            ex.unread_body(self._chunks)
            _Attempts(self._owner, ex, self._backoff, ()).start()

    def body_end(self, trailers: Headers | None) -> None:
        ex = self._ex
        if ex.done:
            return
        ex.body_length = self._size
        _Attempts(self._owner, ex, self._backoff, self._status, self._chunks).start()


class _Attempts:
    """One request's tries; the exchange's producer until a backend connection takes over."""

    __slots__ = ("_backoff", "_body", "_ex", "_owner", "_sink", "_started", "_status", "tries")

    def __init__(self, owner: RetryHandler, ex: Exchange, backoff: _Backoff | None,
                 status: tuple[tuple[int, int], ...], body: list[bytes] | None = None) -> None:
        self._owner = owner
        self._body = body
        self._ex = ex
        self._backoff = backoff
        self._status = status
        self._sink = ex.sink
        self._started = owner._now() if owner._timeout > 0 else 0.0
        self.tries = 0

    def timed_out(self) -> bool:
        timeout = self._owner._timeout
        return timeout > 0 and self._owner._now() - self._started >= timeout

    def start(self) -> None:
        ex = self._ex
        if ex.done:
            return  # the client went away during the backoff
        self.tries += 1
        last = self.tries >= self._owner._attempts
        if self._owner._network and not last:
            ex.set_producer(self)
        else:
            ex.set_producer(None)
        ex.sink = _StatusSink(self, self._sink) if self._status and not last else self._sink
        if self._body is not None:
            ex.replay_body(list(self._body))  # read whole before the first try
        self._owner.next.handle(ex)

    def again(self) -> None:
        """This try failed and may be retried: schedule the next one."""
        ex = self._ex
        if ex.obs is not None:
            ex.obs_retries += 1  # access log RetryAttempts, traefik_service_retries_total
        delay = self._backoff.next() if self._backoff is not None else 0.0
        scheduler = self._owner._scheduler()
        if delay > 0 and scheduler is not None:
            scheduler.call_later(delay, self.start)
        else:
            self.start()

    def retry_status(self, status: int) -> bool:
        if self._ex.done or self.timed_out():
            return False
        return any(low <= status <= high for low, high in self._status)

    # DialFailureListener
    def dial_failed(self, ex: Exchange, status: int) -> bool:
        if ex.done or ex.producer is not self:
            return False
        if self.tries >= self._owner._attempts or self.timed_out():
            ex.set_producer(None)
            ex.sink = self._sink
            return False  # the last try: the pool answers
        self.again()
        return True

    # Producer (nothing to produce before a connection exists)
    def pause_producing(self) -> None:
        pass

    def resume_producing(self) -> None:
        pass

    def downstream_lost(self) -> None:
        pass


class _StatusSink:
    """Passes a response through unless its status is retried: then drops it and tries again."""

    __slots__ = ("_attempts", "_next", "_swallow")

    def __init__(self, attempts: _Attempts, nxt: ResponseSink) -> None:
        self._attempts = attempts
        self._next = nxt
        self._swallow = False

    def send_info(self, status: int, headers: Headers) -> None:
        self._next.send_info(status, headers)

    def send_head(self, status: int, headers: Headers, length: int) -> None:
        if self._attempts.retry_status(status):
            self._swallow = True
            return
        self._attempts._ex.sink = self._next  # answered for good: out of the way
        self._next.send_head(status, headers, length)

    def send_data(self, data: bytes) -> None:
        if not self._swallow:
            self._next.send_data(data)

    def send_end(self, trailers: Headers | None) -> None:
        if self._swallow:
            self._retry()
        else:
            self._next.send_end(trailers)

    def abort(self) -> None:
        if self._swallow:
            self._retry()
        else:
            self._next.abort()

    def _retry(self) -> None:
        self._swallow = False
        attempts = self._attempts
        ex = attempts._ex
        ex.sink = attempts._sink
        if ex.done:
            return
        # The backend connection finishes its own bookkeeping before the next try starts.
        scheduler = attempts._owner._scheduler()
        if scheduler is not None and attempts._backoff is None:
            scheduler.call_later(0, attempts.again)
        else:
            attempts.again()


def build_retry(name: str, config: Retry, next_handler: Handler, clock: Scheduler | None = None,
                rng: random.Random | None = None) -> Handler:
    path = f"http.middlewares.{name}.retry"
    if config.attempts <= 0:
        raise ConfigError(f"incorrect (or empty) value for attempt ({config.attempts})", path=f"{path}.attempts",
                          fix="set attempts to the number of tries, e.g. attempts: 3")
    if not config.status and config.disable_retry_on_network_error:
        raise ConfigError("retry middleware requires at least HTTP status codes or retry on TCP", path=path,
                          fix="set status (e.g. ['500-599']) or remove disableRetryOnNetworkError")
    status = parse_status_ranges(config.status, f"{path}.status")
    return RetryHandler(name, next_handler, config.attempts, config.initial_interval,
                        config.retry_non_idempotent_method, clock, rng, status=status,
                        network=not config.disable_retry_on_network_error, timeout=config.timeout,
                        max_body=DEFAULT_MAX_BODY if config.max_request_body_bytes is None
                        else config.max_request_body_bytes)
