"""``circuitBreaker``: stop calling a failing service for a while, as Traefik's
``pkg/middlewares/circuitbreaker`` (oxy's ``cbreaker`` and ``memmetrics``).

Build time: ``expression`` is parsed (:mod:`ferryman.middlewares.cb_expression`); an invalid one is a
:class:`~ferryman.errors.ConfigError` showing the expression with a caret under the problem, so the
router is disabled with that reason. ``checkPeriod`` (100ms), ``fallbackDuration`` (10s),
``recoveryDuration`` (10s): a value of 0 or less keeps the default, as Traefik. ``responseCode`` (503)
must be a final status (200-599).

States (oxy's semantics):

* **standby** -- requests go through; each completed one is recorded in rolling metrics (a 10-second
  window of 1-second buckets for totals, network errors -- a 502 or 504 answer -- and status codes;
  six 10-second sub-histograms of latencies in microseconds with two significant figures, HDR style).
  After a request completes, at most once per ``checkPeriod``, the expression is evaluated; when it
  holds the breaker **trips** and the metrics are reset.
* **tripped** -- every request gets ``responseCode`` with Go's status text as body (no sniffed
  ``Content-Type``) until ``fallbackDuration`` has passed; then **recovering**.
* **recovering** for ``recoveryDuration``: a request is let through when, counting it, the share of
  let-through requests stays below ``0.5 * elapsed / recoveryDuration`` (oxy's ratio controller), the
  others get the fallback; requests let through are recorded and the expression may trip the breaker
  again. After ``recoveryDuration`` the breaker is back in **standby**.

Latency is measured from the request entering the middleware to the end of the response (Go: the
return of ``ServeHTTP``). Status codes and latencies are recorded only when the expression uses
``ResponseCodeRatio``/``LatencyAtQuantileMS``.

As in Traefik every router using the middleware has its own breaker. Its state lives in the
:class:`~ferryman.state.StateRegistry` under ``(router, middleware, configuration)``: a reload that
leaves the middleware unchanged keeps a tripped breaker tripped and its metrics (Traefik starts
afresh on every reload).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from ferryman.dynamic.models import CircuitBreaker
from ferryman.errors import ConfigError, RuleError
from ferryman.http.exchange import Exchange, Handler, Headers, RelaySink, ResponseSink
from ferryman.middlewares.cb_expression import ExpressionError, Parsed, parse_expression
from ferryman.proto.h1 import REASONS
from ferryman.state import StateRegistry

__all__ = [
    "RECOVERING",
    "STANDBY",
    "TRIPPED",
    "Breaker",
    "CircuitBreakerHandler",
    "RollingMetrics",
    "build_circuit_breaker",
]

log = logging.getLogger("ferryman.middlewares.circuitbreaker")

STANDBY: Final = 0
TRIPPED: Final = 1
RECOVERING: Final = 2
STATE_NAMES: Final = ("standby", "tripped", "recovering")

_COUNTER_BUCKETS: Final = 10  # 1-second buckets
_HIST_BUCKETS: Final = 6
_HIST_PERIOD: Final = 10.0
_HIST_MAX_US: Final = 3_600_000_000


def _hdr_key(value: int) -> int:
    """Lowest value of ``value``'s HDR bucket (2 significant figures: 256 sub-buckets, exact below)."""
    shift = value.bit_length() - 8
    return value if shift <= 0 else (value >> shift) << shift


def _hdr_highest(key: int) -> int:
    shift = key.bit_length() - 8
    return key if shift <= 0 else key + (1 << shift) - 1


class RollingMetrics:
    """oxy's ``RTMetrics``: what the expression functions read. ``now`` is a monotonic clock in s."""

    __slots__ = ("_codes", "_hist", "_hist_idx", "_hist_roll", "_net", "_secs", "_total", "clock",
                 "record_codes", "record_latency")

    def __init__(self, clock: Callable[[], float], record_codes: bool = True, record_latency: bool = True) -> None:
        self.clock = clock
        self.record_codes = record_codes
        self.record_latency = record_latency
        self._hist: list[dict[int, int]] = [{} for _ in range(_HIST_BUCKETS)]
        self._hist_idx = 0
        self._hist_roll = 0.0
        self.reset()

    def reset(self) -> None:
        self._secs = [-1] * _COUNTER_BUCKETS
        self._total = [0] * _COUNTER_BUCKETS
        self._net = [0] * _COUNTER_BUCKETS
        self._codes: list[dict[int, int]] = [{} for _ in range(_COUNTER_BUCKETS)]
        for h in self._hist:
            h.clear()

    def record(self, status: int, latency: float) -> None:
        sec = int(self.clock())
        i = sec % _COUNTER_BUCKETS
        if self._secs[i] != sec:
            self._secs[i] = sec
            self._total[i] = 0
            self._net[i] = 0
            self._codes[i] = {}
        self._total[i] += 1
        if status == 502 or status == 504:
            self._net[i] += 1
        if self.record_codes:
            codes = self._codes[i]
            codes[status] = codes.get(status, 0) + 1
        if self.record_latency:
            now = self.clock()
            if now - self._hist_roll >= _HIST_PERIOD:
                self._hist_idx = (self._hist_idx + 1) % _HIST_BUCKETS
                self._hist[self._hist_idx].clear()
                self._hist_roll = now
            us = min(max(int(latency * 1e6), 1), _HIST_MAX_US)
            key = _hdr_key(us)
            h = self._hist[self._hist_idx]
            h[key] = h.get(key, 0) + 1

    def _live(self) -> list[int]:
        first = int(self.clock()) - _COUNTER_BUCKETS + 1
        return [i for i, s in enumerate(self._secs) if s >= first]

    # -- what the expression reads --------------------------------------------------------------

    def total_count(self) -> int:
        return sum(self._total[i] for i in self._live())

    def network_error_count(self) -> int:
        return sum(self._net[i] for i in self._live())

    def network_error_ratio(self) -> float:
        live = self._live()
        total = sum(self._total[i] for i in live)
        return sum(self._net[i] for i in live) / total if total else 0.0

    def response_code_ratio(self, start_a: int, end_a: int, start_b: int, end_b: int) -> float:
        a = b = 0
        for i in self._live():
            for code, count in self._codes[i].items():
                if start_a <= code < end_a:
                    a += count
                if start_b <= code < end_b:
                    b += count
        return a / b if b else 0.0

    def latency_at_quantile_ms(self, quantile: float) -> int:
        merged: dict[int, int] = {}
        for h in self._hist:
            for key, count in h.items():
                merged[key] = merged.get(key, 0) + count
        total = sum(merged.values())
        q = min(quantile, 100.0)
        wanted = int(q / 100 * total + 0.5)
        seen = 0
        value = 0
        for key in sorted(merged):
            seen += merged[key]
            if seen >= wanted:
                value = key if q == 0.0 else _hdr_highest(key)
                break
        return value // 1000  # microseconds -> whole milliseconds


class Breaker:
    """One router's breaker: state, rolling metrics, recovery ratio (the long-lived part)."""

    __slots__ = ("_allowed", "_denied", "_rc_start", "check_period", "clock", "fallback_duration", "last_check",
                 "metrics", "name", "predicate", "recovery_duration", "state", "until")

    def __init__(self, name: str, parsed: Parsed, check_period: float, fallback_duration: float,
                 recovery_duration: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.predicate = parsed.predicate
        self.check_period = check_period
        self.fallback_duration = fallback_duration
        self.recovery_duration = recovery_duration
        self.clock = clock
        self.metrics = RollingMetrics(clock, parsed.uses_codes, parsed.uses_latency)
        self.state = STANDBY
        self.until = 0.0
        self.last_check = 0.0
        self._rc_start = 0.0
        self._allowed = 0
        self._denied = 0

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self.state]

    def _set(self, state: int, until: float) -> None:
        if state != self.state:
            level = logging.WARNING if state == TRIPPED else logging.INFO
            log.log(level, "circuit breaker %s: %s -> %s", self.name, STATE_NAMES[self.state], STATE_NAMES[state],
                    extra={"fields": {"middlewareName": self.name, "state": STATE_NAMES[state]}})
        self.state = state
        self.until = until

    def fallback(self) -> bool:
        """oxy's ``activateFallback``: whether this request gets the fallback answer."""
        if self.state == STANDBY:
            return False
        now = self.clock()
        if self.state == TRIPPED:
            if now < self.until:
                return True
            self._set(RECOVERING, now + self.recovery_duration)
            self._rc_start = now
            self._allowed = self._denied = 0
        if now > self.until:
            self._set(STANDBY, now)
            return False
        target = 0.5 / self.recovery_duration * (now - self._rc_start)
        if (self._allowed + 1) / (self._allowed + 1 + self._denied) < target:
            self._allowed += 1
            return False
        self._denied += 1
        return True

    def completed(self, status: int, latency: float) -> None:
        """Record one request that went through, then maybe evaluate the expression (``checkAndSet``)."""
        self.metrics.record(status, latency)
        now = self.clock()
        if now <= self.last_check:
            return
        self.last_check = now + self.check_period
        if self.state == TRIPPED:
            return
        if self.predicate(self.metrics):
            self._set(TRIPPED, now + self.fallback_duration)
            self.metrics.reset()


class _RecordingSink(RelaySink):
    """Sees the response of a request that went through, records it when it is over."""

    __slots__ = ("_breaker", "_start", "_status")

    def __init__(self, breaker: Breaker, nxt: ResponseSink, start: float) -> None:
        super().__init__(nxt)
        self._breaker: Breaker | None = breaker
        self._start = start
        self._status = 0

    def send_head(self, status: int, headers: Headers, length: int) -> None:
        self._status = status
        self._next.send_head(status, headers, length)

    def send_end(self, trailers: Headers | None) -> None:
        self._next.send_end(trailers)
        self._done()

    def abort(self) -> None:
        self._next.abort()
        self._done()

    def _done(self) -> None:
        breaker = self._breaker
        if breaker is not None:
            self._breaker = None
            breaker.completed(self._status or 502, breaker.clock() - self._start)


class CircuitBreakerHandler:
    """The built middleware (a :class:`~ferryman.http.exchange.Handler`)."""

    __slots__ = ("_body", "_code", "breaker", "name", "next")

    def __init__(self, name: str, next_handler: Handler, breaker: Breaker, response_code: int) -> None:
        self.name = name
        self.next = next_handler
        self.breaker = breaker
        self._code = response_code
        self._body = REASONS.get(response_code, "").encode()

    def handle(self, ex: Exchange) -> None:
        breaker = self.breaker
        if breaker.state != STANDBY and breaker.fallback():
            ex.respond(self._code, (), self._body, content_type=None)
            return
        ex.sink = _RecordingSink(breaker, ex.sink, breaker.clock())
        self.next.handle(ex)


def compile_expression(name: str, expression: str) -> Parsed:
    path = f"http.middlewares.{name}.circuitBreaker.expression"
    try:
        return parse_expression(expression)
    except ExpressionError as exc:
        where = RuleError(exc.message, rule=expression, column=exc.column).render()
        raise ConfigError(f"invalid expression: {where}", path=path,
                          fix=exc.fix or "see Traefik's circuitBreaker expression syntax") from None


def build_circuit_breaker(name: str, config: CircuitBreaker, next_handler: Handler,
                          states: StateRegistry | None = None, router: str = "",
                          clock: Callable[[], float] = time.monotonic) -> Handler:
    parsed = compile_expression(name, config.expression)
    code = config.response_code
    if not 200 <= code <= 599:
        raise ConfigError(f"responseCode {code} is not a final HTTP status",
                          path=f"http.middlewares.{name}.circuitBreaker.responseCode",
                          fix="use a status between 200 and 599, e.g. 503")
    check = config.check_period if config.check_period > 0 else 0.1
    fallback = config.fallback_duration if config.fallback_duration > 0 else 10.0
    recovery = config.recovery_duration if config.recovery_duration > 0 else 10.0

    def make() -> Breaker:
        return Breaker(name, parsed, check, fallback, recovery, clock)

    breaker = states.get(("circuitBreaker", router, name, config), make) if states is not None else make()
    return CircuitBreakerHandler(name, next_handler, breaker, code)
