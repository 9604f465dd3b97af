"""``circuitBreaker``: oxy's expression language, rolling metrics and standby/tripped/recovering."""

from __future__ import annotations

from typing import Any

import pytest

from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange
from ferryman.middlewares import MiddlewareContext, build_middleware
from ferryman.middlewares.cb_expression import ExpressionError, parse_expression
from ferryman.middlewares.circuit_breaker import (
    RECOVERING,
    STANDBY,
    TRIPPED,
    Breaker,
    CircuitBreakerHandler,
    RollingMetrics,
    build_circuit_breaker,
)
from ferryman.state import StateRegistry
from tests.unit.http.test_http_exchange import make
from tests.unit.middlewares.conformance_support import mw


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FixedMetrics:
    def __init__(self, net: float = 0.0, codes: float = 0.0, latency: int = 0, total: int = 0) -> None:
        self.net, self.codes, self.latency, self.total = net, codes, latency, total
        self.calls: list[tuple[Any, ...]] = []

    def network_error_ratio(self) -> float:
        return self.net

    def response_code_ratio(self, a: int, b: int, c: int, d: int) -> float:
        self.calls.append((a, b, c, d))
        return self.codes

    def latency_at_quantile_ms(self, q: float) -> int:
        self.calls.append((q,))
        return self.latency

    def total_count(self) -> int:
        return self.total


# ------------------------------------------------------------------ expression language

@pytest.mark.parametrize(("expression", "metrics", "want"), [
    ("NetworkErrorRatio() > 0.5", FixedMetrics(net=0.6), True),
    ("NetworkErrorRatio() > 0.5", FixedMetrics(net=0.5), False),
    ("NetworkErrorRatio() >= 0.5", FixedMetrics(net=0.5), True),
    ("NetworkErrorRatio() < 0.5", FixedMetrics(net=0.4), True),
    ("NetworkErrorRatio() <= 0.5", FixedMetrics(net=0.6), False),
    ("NetworkErrorRatio() == 0.25", FixedMetrics(net=0.25), True),
    ("NetworkErrorRatio() != 0.25", FixedMetrics(net=0.25), False),
    ("ResponseCodeRatio(500, 600, 0, 600) > 0.25", FixedMetrics(codes=0.3), True),
    ("LatencyAtQuantileMS(50.0) > 100", FixedMetrics(latency=101), True),
    ("LatencyAtQuantileMS(50.0) > 100", FixedMetrics(latency=100), False),
    ("RequestThreshold() >= 20", FixedMetrics(total=20), True),
    ("ResponseCodeRatio(500, 600, 0, 600) > 0.25 && RequestThreshold() >= 20", FixedMetrics(codes=0.3, total=5),
     False),
    ("ResponseCodeRatio(500, 600, 0, 600) > 0.30 || NetworkErrorRatio() > 0.10", FixedMetrics(net=0.2), True),
    ("NetworkErrorRatio() > 0.9 || NetworkErrorRatio() > 0.1 && RequestThreshold() > 3",
     FixedMetrics(net=0.2, total=1), False),  # && binds tighter than ||
    ("(NetworkErrorRatio() > 0.9 || NetworkErrorRatio() > 0.1) && RequestThreshold() > 3",
     FixedMetrics(net=0.95, total=1), False),
    ("((NetworkErrorRatio() > 0.1))", FixedMetrics(net=0.2), True),
    ("NetworkErrorRatio() > .5", FixedMetrics(net=0.6), True),
    ("NetworkErrorRatio() > 5e-1", FixedMetrics(net=0.6), True),
])
def test_expression_evaluates_like_oxy(expression: str, metrics: FixedMetrics, want: bool) -> None:
    assert parse_expression(expression).predicate(metrics) is want


def test_expression_passes_its_arguments() -> None:
    m = FixedMetrics()
    parse_expression("ResponseCodeRatio(400, 500, 0, 600) > 0.5 || LatencyAtQuantileMS(99.9) > 5").predicate(m)
    assert m.calls == [(400, 500, 0, 600), (99.9,)]


def test_expression_records_only_what_it_reads() -> None:
    plain = parse_expression("NetworkErrorRatio() > 0.5")
    assert (plain.uses_codes, plain.uses_latency) == (False, False)
    both = parse_expression("ResponseCodeRatio(500, 600, 0, 600) > 0.5 && LatencyAtQuantileMS(50.0) > 1")
    assert (both.uses_codes, both.uses_latency) == (True, True)


@pytest.mark.parametrize(("expression", "column", "words"), [
    ("", 0, "empty"),
    ("NetworkErrorRatio()", 0, "expected predicate"),
    ("NetworkErrorRatio() > 1", 22, "float literal"),  # oxy: float metrics need 1.0
    ("LatencyAtQuantileMS(50) > 100", 20, "float literal"),  # quantile needs the trailing .0
    ("LatencyAtQuantileMS(50.0) > 100.0", 28, "integer literal"),
    ("RequestThreshold() > 2.5", 21, "integer literal"),
    ("ResponseCodeRatio(500, 600) > 0.5", 0, "takes 4 arguments"),
    ("Unknown() > 1", 0, "unsupported function: Unknown"),
    ("NetworkErrorRatio > 0.5", 0, "not defined"),
    ("0.5 < NetworkErrorRatio()", 0, "lt: unsupported argument: float64"),
    ("NetworkErrorRatio() > 0.5 &&", 28, "expected operand"),
    ("NetworkErrorRatio() > 0.5 && RequestThreshold()", 29, "needs a comparison"),
    ("!(NetworkErrorRatio() > 0.5)", 0, "! is not supported"),
    ("NetworkErrorRatio() > -0.5", 22, "- is not supported"),
    ("NetworkErrorRatio() + 1 > 0.5", 20, "+ is not supported"),
    ("(NetworkErrorRatio() > 0.5", 26, "expected ')'"),
    ("NetworkErrorRatio() > 0.5)", 25, "unexpected ')'"),
    ("NetworkErrorRatio() > 0.5 > 0.1", 0, "gt: unsupported argument"),
    ("NetworkErrorRatio() > 0x10", 22, "failed to parse"),
    ("NetworkErrorRatio() > 0.5 $", 26, "illegal character"),
    ('NetworkErrorRatio() > "x"', 22, "float literal"),
])
def test_expression_errors_point_at_the_column(expression: str, column: int, words: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(expression)
    assert words in info.value.message
    assert info.value.column == column


def test_invalid_expression_is_a_config_error_with_a_caret() -> None:
    with pytest.raises(ConfigError) as info:
        build_middleware("cb@file", mw("circuitBreaker", {"expression": "NetworkErrorRatio() > 1"}), _Backend())
    text = str(info.value)
    assert "http.middlewares.cb@file.circuitBreaker.expression" in text
    assert "    NetworkErrorRatio() > 1\n" + " " * 26 + "^" in text


@pytest.mark.parametrize("code", [0, 99, 600, 1000])
def test_response_code_must_be_a_final_status(code: int) -> None:
    with pytest.raises(ConfigError, match="responseCode"):
        build_middleware("cb", mw("circuitBreaker", {"expression": "NetworkErrorRatio() > 0.5",
                                                     "responseCode": code}), _Backend())


# ------------------------------------------------------------------ rolling metrics

def test_counters_roll_over_ten_seconds() -> None:
    clock = Clock(100.0)
    m = RollingMetrics(clock)
    for status in (200, 502, 504, 500):
        m.record(status, 0.001)
    assert m.total_count() == 4 and m.network_error_ratio() == 0.5
    assert m.response_code_ratio(500, 600, 0, 600) == 0.75
    assert m.response_code_ratio(500, 501, 0, 600) == 0.25  # ``to`` is exclusive
    assert m.response_code_ratio(500, 600, 700, 800) == 0.0  # empty denominator
    clock.now = 105.5
    m.record(200, 0.001)
    assert m.total_count() == 5
    clock.now = 109.9  # second 100 is still in the window (100..109)
    assert m.total_count() == 5
    clock.now = 110.0
    assert m.total_count() == 1 and m.network_error_ratio() == 0.0
    clock.now = 200.0
    assert m.total_count() == 0 and m.network_error_ratio() == 0.0


def test_latency_quantiles_in_whole_milliseconds() -> None:
    m = RollingMetrics(Clock())
    assert m.latency_at_quantile_ms(50.0) == 0
    for ms in (10, 20, 30, 40, 1000):
        m.record(200, ms / 1000)
    assert m.latency_at_quantile_ms(50.0) == 30
    assert m.latency_at_quantile_ms(100.0) == 1003  # HDR: highest value equivalent to 1s at 2 digits
    assert m.latency_at_quantile_ms(20.0) == 10
    m.reset()
    assert m.latency_at_quantile_ms(50.0) == 0 and m.total_count() == 0


def test_latency_histograms_rotate_every_ten_seconds_keeping_a_minute() -> None:
    clock = Clock(0.0)
    m = RollingMetrics(clock)
    m.record(200, 0.5)
    for step in range(1, 6):
        clock.now = step * 10.0
        m.record(200, 0.001)
    assert m.latency_at_quantile_ms(100.0) >= 500  # still within the six sub-histograms
    clock.now = 60.0
    m.record(200, 0.001)  # the seventh period overwrites the first
    assert m.latency_at_quantile_ms(100.0) == 1


# ------------------------------------------------------------------ states

class _Backend:
    """Answers each request with the next status of ``statuses`` (200 when exhausted)."""

    def __init__(self, statuses: list[int] | None = None, clock: Clock | None = None, latency: float = 0.0) -> None:
        self.statuses = list(statuses or [])
        self.seen = 0
        self.clock = clock
        self.latency = latency

    def handle(self, ex: Exchange) -> None:
        self.seen += 1
        status = self.statuses.pop(0) if self.statuses else 200
        if self.clock is not None:
            self.clock.now += self.latency
        ex.respond(status, (), b"x")


def _breaker(expression: str, backend: _Backend, clock: Clock, **config: Any) -> CircuitBreakerHandler:
    model = mw("circuitBreaker", {"expression": expression, **config}).circuit_breaker
    assert model is not None
    handler = build_circuit_breaker("cb", model, backend, clock=clock)
    assert isinstance(handler, CircuitBreakerHandler)
    return handler


def _get(handler: CircuitBreakerHandler) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    ex, down = make()
    handler.handle(ex)
    head = next(v for k, v in down.calls if k == "head")
    body = b"".join(v for k, v in down.calls if k == "data")
    return head[0], body, head[1]


def test_trips_on_network_errors_then_answers_the_fallback() -> None:
    clock = Clock()
    backend = _Backend([502, 502, 200, 502], clock)
    handler = _breaker("NetworkErrorRatio() > 0.5", backend, clock)
    breaker = handler.breaker
    assert _get(handler)[0] == 502  # first completed request: checked, ratio 1.0 -> trips
    assert breaker.state == TRIPPED
    assert breaker.metrics.total_count() == 0  # reset on tripping
    status, body, headers = _get(handler)
    assert (status, body) == (503, b"Service Unavailable")
    assert not any(n.lower() == b"content-type" for n, _ in headers)
    assert backend.seen == 1


def test_check_period_spaces_the_evaluations() -> None:
    clock = Clock()
    backend = _Backend([200, 502, 502, 502], clock)
    handler = _breaker("NetworkErrorRatio() > 0.5", backend, clock, checkPeriod="1s")
    for _ in range(4):
        _get(handler)
    assert handler.breaker.state == STANDBY  # only the first request was checked (ratio 0)
    clock.now += 1.01
    _get(handler)  # a 200: 4 errors out of 5
    assert handler.breaker.state == TRIPPED


def test_fallback_recovery_ratio_and_back_to_standby() -> None:
    clock = Clock()
    backend = _Backend([504], clock)
    handler = _breaker("NetworkErrorRatio() > 0.5", backend, clock, fallbackDuration="10s",
                       recoveryDuration="10s", responseCode=429)
    _get(handler)
    breaker = handler.breaker
    assert breaker.state == TRIPPED
    clock.now += 9.9
    assert _get(handler)[:2] == (429, b"Too Many Requests")
    clock.now += 0.2  # fallback over: recovering, ramping up to half of the traffic
    results = []
    for _ in range(100):
        results.append(_get(handler)[0])
        clock.now += 0.05  # 5 s of the 10 s recovery: the target ratio reaches 0.25
    assert breaker.state == RECOVERING
    through = results.count(200)
    assert 15 <= through <= 30, through
    assert results[0] == 429  # the target starts at 0
    clock.now += 5.1
    assert _get(handler)[0] == 200
    assert breaker.state == STANDBY


def test_a_failure_during_recovery_trips_again() -> None:
    clock = Clock()
    backend = _Backend([502], clock)
    handler = _breaker("NetworkErrorRatio() > 0.5", backend, clock, fallbackDuration="1s", recoveryDuration="2s")
    _get(handler)
    clock.now += 1.5  # recovering, target 0.125 at 0.5 s
    backend.statuses = [502] * 50
    statuses = [_get(handler)[0]]
    assert handler.breaker.state == RECOVERING
    while handler.breaker.state != TRIPPED and len(statuses) < 50:
        clock.now += 0.1
        statuses.append(_get(handler)[0])
    assert handler.breaker.state == TRIPPED and 502 in statuses


def test_latency_and_status_expressions_trip() -> None:
    clock = Clock()
    slow = _Backend([], clock, latency=0.25)
    handler = _breaker("LatencyAtQuantileMS(50.0) > 100", slow, clock)
    _get(handler)
    assert handler.breaker.state == TRIPPED
    clock2 = Clock()
    errors = _Backend([500, 200, 500, 500], clock2)
    handler2 = _breaker("ResponseCodeRatio(500, 600, 0, 600) > 0.5 && RequestThreshold() >= 4", errors, clock2)
    for _ in range(4):
        _get(handler2)
        clock2.now += 0.2
    assert handler2.breaker.state == TRIPPED


def test_client_gone_without_answer_counts_as_network_error_on_abort() -> None:
    clock = Clock()

    class Aborting:
        def handle(self, ex: Exchange) -> None:
            ex.abort()

    handler = _breaker("NetworkErrorRatio() > 0.5", _Backend(), clock)
    handler.next = Aborting()
    ex, _ = make()
    handler.handle(ex)
    assert handler.breaker.state == TRIPPED


def test_state_survives_a_rebuild_with_the_same_config_only() -> None:
    states = StateRegistry()
    model = mw("circuitBreaker", {"expression": "NetworkErrorRatio() > 0.5"})
    ctx = MiddlewareContext(router="r@file", states=states)
    first = build_middleware("cb@file", model, _Backend([502]), ctx)
    assert isinstance(first, CircuitBreakerHandler)
    _get(first)
    assert first.breaker.state == TRIPPED
    states.sweep()
    again = build_middleware("cb@file", model, _Backend(), ctx)
    assert isinstance(again, CircuitBreakerHandler) and again.breaker is first.breaker
    other_router = build_middleware("cb@file", model, _Backend(), MiddlewareContext(router="s@file", states=states))
    assert isinstance(other_router, CircuitBreakerHandler) and other_router.breaker is not first.breaker
    states.sweep()
    changed = build_middleware("cb@file", mw("circuitBreaker", {"expression": "NetworkErrorRatio() > 0.6"}),
                               _Backend(), ctx)
    assert isinstance(changed, CircuitBreakerHandler) and changed.breaker.state == STANDBY
    states.sweep()
    assert len(states) == 1  # the unused breakers were dropped


def test_defaults() -> None:
    handler = build_middleware("cb", mw("circuitBreaker", {"expression": "NetworkErrorRatio() > 0.5",
                                                           "checkPeriod": 0, "fallbackDuration": "0s"}), _Backend())
    assert isinstance(handler, CircuitBreakerHandler)
    b: Breaker = handler.breaker
    assert (b.check_period, b.fallback_duration, b.recovery_duration) == (0.1, 10.0, 10.0)
