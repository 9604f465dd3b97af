"""``rateLimit``: Traefik's derived and load vectors (shared conformance data) on a fake clock, plus details.

The load cases replay Traefik's ``TestInMemoryRateLimit`` loop with simulated time: one client sends
``initial_burst_requests`` back to back, then one request per ``1/requests_per_second`` tick (a Go
ticker: a late reader finds one pending tick), each request waiting for its response -- a delayed
request holds the client until the middleware's ``call_later`` continuation fires. The forwarded
count must fall in the case's window.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any

import pytest

from ferryman.dynamic.models import Middleware
from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange
from ferryman.middlewares import build_middleware
from ferryman.middlewares.rate_limit import MAX_SOURCES, RateLimitHandler, build_rate_limit, go_duration
from ferryman.middlewares.rate_limit_redis import RedisRateLimitHandler
from ferryman.types import parse_duration
from tests.unit.middlewares.conformance_support import (
    Upstream,
    case_exchange,
    case_id,
    final_head,
    mw,
    shared_dir,
)

_DATA_PATH = shared_dir() / "conformance" / "middlewares.json"


def _data() -> dict[str, Any]:
    import json

    if not _DATA_PATH.exists():
        return {"derived_cases": [], "load_cases": []}
    data: dict[str, Any] = json.loads(_DATA_PATH.read_text())["rateLimit"]
    return data


DATA = _data()
DERIVED = DATA["derived_cases"]
LOAD = DATA["load_cases"]


class FakeLoop:
    """``time()`` and ``call_later`` on simulated time; :meth:`run_until` fires due callbacks."""

    def __init__(self) -> None:
        self.now = 0.0
        self._seq = 0
        self._timers: list[tuple[float, int, Callable[..., object], tuple[Any, ...]]] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (self.now + delay, self._seq, callback, args))

    def pending(self) -> int:
        return len(self._timers)

    def run_next(self) -> None:
        when, _, callback, args = heapq.heappop(self._timers)
        self.now = max(self.now, when)
        callback(*args)

    def advance(self, seconds: float) -> None:
        target = self.now + seconds
        while self._timers and self._timers[0][0] <= target:
            self.run_next()
        self.now = target


def _build(config: dict[str, Any], upstream: Upstream, clock: FakeLoop | None = None) -> RateLimitHandler:
    model = Middleware.model_validate({"rateLimit": config})
    assert model.rate_limit is not None
    handler = build_rate_limit("rl", model.rate_limit, upstream, clock)
    assert isinstance(handler, RateLimitHandler)
    return handler


def _status(down: Any) -> int:
    """The status the client got (0: no response yet)."""
    for kind, value in down.calls:
        if kind == "head":
            return int(value[0])
    return 0


def _request(remote: str = "127.0.0.1:1234", headers: dict[str, list[str]] | None = None,
             host: str = "localhost") -> tuple[Exchange, Any]:
    return case_exchange({"method": "GET", "url": "/", "host": host, "headers": headers or {},
                          "remote_addr": remote})


# ------------------------------------------------------------------------------------ derived cases


@pytest.mark.skipif(not DERIVED, reason="shared conformance data not found")
@pytest.mark.parametrize("case", DERIVED, ids=[case_id(c) for c in DERIVED])
def test_rate_limit_derived(case: dict[str, Any]) -> None:
    config = case["config"]
    if case["config_error"]:
        with pytest.raises(ConfigError) as info:
            _build(config, Upstream())
        assert case["error_message"] in str(info.value)
        return
    if "redis" in config:
        # construction only (no redis contacted), as the Go test; the load cases run against a real
        # redis-server in tests/integration/test_ferryman_rate_limit_redis.py
        model = Middleware.model_validate({"rateLimit": config})
        assert model.rate_limit is not None
        assert isinstance(build_rate_limit("rl", model.rate_limit, Upstream()), RedisRateLimitHandler)
        return
    handler = _build(config, Upstream())
    if case.get("expected_rate_per_second") == "Inf":
        assert handler.rate == math.inf
    if "expected_max_delay" in case:
        assert handler.max_delay == pytest.approx(parse_duration(case["expected_max_delay"]))
    if "source_extraction" in case:
        req = case["source_extraction"]["request"]
        loop = FakeLoop()
        upstream = Upstream()
        handler = _build(config, upstream, loop)
        ex, _ = _request(req.get("remote_addr", "192.0.2.1:1"), req.get("headers"))
        handler.handle(ex)
        assert list(handler._buckets) == [case["source_extraction"]["expected_source"]]


# ------------------------------------------------------------------------------------ load cases


#: Simulated time one request takes on the client side (Go's test loop is not instantaneous either).
REQUEST_COST = 50e-6


def drive_load(loop: FakeLoop, upstream: Upstream, send: Callable[[Exchange], None], duration: float, rps: int,
               initial: int) -> int:
    """Traefik's load test on simulated time from ``loop.now``: requests at ``rps`` (after ``initial``
    forwarded ones sent as fast as possible); ``send(ex)`` hands one to the middleware and a delayed
    request holds the client until it is forwarded (Go's ``time.Sleep``). Returns how many were forwarded."""
    start = loop.now
    period = 1.0 / rps
    next_tick = start + period
    while loop.now - start <= duration:
        ex, down = _request()
        send(ex)
        while not _status(down) and loop.pending():
            loop.run_next()
        assert _status(down) in (200, 429), down.calls
        loop.advance(REQUEST_COST)
        if len(upstream.seen) < initial:
            continue  # hammer as fast as possible first
        if next_tick <= loop.now:  # a Go ticker keeps one pending tick for a late reader
            while next_tick <= loop.now:
                next_tick += period
        else:
            loop.advance(next_tick - loop.now)
            next_tick += period
    return len(upstream.seen)


def _simulate(config: dict[str, Any], duration: float, rps: int, initial: int) -> int:
    loop = FakeLoop()
    upstream = Upstream()
    handler = _build(config, upstream, loop)
    return drive_load(loop, upstream, handler.handle, duration, rps, initial)


MEMORY_LOAD = [c for c in LOAD if c["backend"] == "in-memory"]


@pytest.mark.skipif(not MEMORY_LOAD, reason="shared conformance data not found")
@pytest.mark.parametrize("case", MEMORY_LOAD, ids=[case_id(c) for c in MEMORY_LOAD])
def test_rate_limit_load_in_memory(case: dict[str, Any]) -> None:
    load = case["load"]
    count = _simulate(case["config"], parse_duration(load["duration"]), load["requests_per_second"],
                      load["initial_burst_requests"])
    expected = case["expected"]
    assert expected["min_forwarded_count"] <= count <= expected["max_forwarded_count"], count


# ------------------------------------------------------------------------------------ details


def test_rejection_has_retry_after_and_x_retry_in_and_no_content_type() -> None:
    loop = FakeLoop()
    upstream = Upstream()
    handler = _build({"average": 1, "period": "10s"}, upstream, loop)  # 0.1/s, maxDelay 500ms
    ex, down = _request()
    handler.handle(ex)
    assert _status(down) == 200
    loop.advance(3.0)
    ex, down = _request()
    handler.handle(ex)
    status, headers, _ = final_head(down)
    assert status == 429
    assert headers["Retry-After"] == ["7"]
    retry_in = headers["X-Retry-In"][0]  # Go's Duration.String() of the float reservation delay
    assert retry_in.endswith("s") and parse_duration(retry_in) == pytest.approx(7.0)
    assert "Content-Type" not in headers
    assert b"".join(v for k, v in down.calls if k == "data") == b"Too Many Requests"
    assert len(upstream.seen) == 1
    # The refused request did not take the token: 7s later the next one passes.
    loop.advance(7.0)
    ex, down = _request()
    handler.handle(ex)
    assert _status(down) == 200


def test_a_short_wait_is_delayed_then_forwarded() -> None:
    loop = FakeLoop()
    upstream = Upstream()
    handler = _build({"average": 4}, upstream, loop)  # a token each 250ms, maxDelay 125ms
    assert handler.max_delay == pytest.approx(0.125)
    first, _ = _request()
    handler.handle(first)
    loop.advance(0.2)
    ex, down = _request()
    handler.handle(ex)
    assert _status(down) == 0 and len(upstream.seen) == 1 and loop.pending() == 1
    loop.advance(0.049)
    assert len(upstream.seen) == 1
    loop.advance(0.002)
    assert _status(down) == 200 and len(upstream.seen) == 2


def test_a_client_gone_while_delayed_is_not_forwarded() -> None:
    loop = FakeLoop()
    upstream = Upstream()
    handler = _build({"average": 4}, upstream, loop)
    handler.handle(_request()[0])
    loop.advance(0.2)
    ex, _ = _request()
    handler.handle(ex)
    ex.done = True
    loop.advance(1.0)
    assert len(upstream.seen) == 1


def test_burst_and_sources_are_separate() -> None:
    loop = FakeLoop()
    upstream = Upstream()
    handler = _build({"average": 1, "period": "1m", "burst": 3}, upstream, loop)
    statuses = []
    for _ in range(4):
        ex, down = _request("10.0.0.1:1")
        handler.handle(ex)
        statuses.append(_status(down))
    assert statuses == [200, 200, 200, 429]
    ex, down = _request("10.0.0.2:1")
    handler.handle(ex)
    assert _status(down) == 200


def test_average_zero_never_limits() -> None:
    upstream = Upstream()
    handler = _build({"average": 0, "burst": 1}, upstream, FakeLoop())
    for _ in range(100):
        handler.handle(_request()[0])
    assert len(upstream.seen) == 100 and handler.sources() == 0


def test_source_criteria() -> None:
    loop = FakeLoop()
    by_host = _build({"average": 1, "period": "1m", "sourceCriterion": {"requestHost": True}}, Upstream(), loop)
    by_host.handle(_request(host="a.example:8080")[0])
    assert list(by_host._buckets) == ["a.example:8080"]
    by_header = _build({"average": 1, "period": "1m", "sourceCriterion": {"requestHeaderName": "X-Key"}},
                       Upstream(), loop)
    by_header.handle(_request(headers={"X-Key": ["k1"]})[0])
    by_header.handle(_request()[0])
    assert list(by_header._buckets) == ["k1", ""]
    depth = _build({"average": 1, "period": "1m", "sourceCriterion": {"ipStrategy": {"depth": 1}}}, Upstream(), loop)
    depth.handle(_request("10.0.0.9:1", {"X-Forwarded-For": ["1.1.1.1, 2.2.2.2"]})[0])
    assert list(depth._buckets) == ["2.2.2.2"]
    subnet = _build({"average": 1, "sourceCriterion": {"ipStrategy": {"ipv6Subnet": 64}}}, Upstream(), loop)
    subnet.handle(_request("[2001:db8::1:2]:1")[0])
    assert list(subnet._buckets) == ["2001:db8::"]
    for bad in ({"ipStrategy": {}, "requestHost": True}, {"requestHeaderName": "A", "requestHost": True}):
        with pytest.raises(ConfigError, match="mutually exclusive"):
            _build({"average": 1, "sourceCriterion": bad}, Upstream())


def test_negative_period_is_an_error_and_zero_period_is_one_second() -> None:
    with pytest.raises(ConfigError, match="negative value not valid for period"):
        _build({"average": 1, "period": "-1s"}, Upstream())
    assert _build({"average": 10, "period": 0}, Upstream()).rate == 10
    assert _build({"average": 50, "period": "500ms"}, Upstream()).rate == 100


def test_sources_expire_and_are_capped() -> None:
    loop = FakeLoop()
    handler = _build({"average": 100}, Upstream(), loop)  # TTL 2s
    handler.handle(_request("10.0.0.1:1")[0])
    loop.advance(2.5)
    handler.handle(_request("10.0.0.2:1")[0])
    assert list(handler._buckets) == ["10.0.0.2"]
    for i in range(MAX_SOURCES + 10):
        handler.handle(_request(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}:1")[0])
    assert handler.sources() == MAX_SOURCES


def test_registered_and_built_through_the_registry() -> None:
    upstream = Upstream()
    handler = build_middleware("rl@file", mw("rateLimit", {"average": 100, "burst": 50}), upstream)
    assert isinstance(handler, RateLimitHandler)
    assert isinstance(build_middleware("rl@file", mw("rateLimit", {"average": 1, "redis": {}}), upstream),
                      RedisRateLimitHandler)
    # no limit: Traefik's redis limiter lets everything through without asking redis
    assert build_middleware("rl@file", mw("rateLimit", {"redis": {}}), upstream) is upstream
    with pytest.raises(ConfigError) as info:
        build_middleware("rl@file", mw("rateLimit", {"average": 1, "redis": {"endpoints": ["nohost"]}}), upstream)
    assert info.value.path == "http.middlewares.rl@file.rateLimit.redis.endpoints"


@pytest.mark.parametrize(("ns", "text"), [
    (0, "0s"), (2_500_000, "2.5ms"), (999, "999ns"), (1500, "1.5µs"), (1_000_000_000, "1s"),
    (1_234_567_891, "1.234567891s"), (60_000_000_000, "1m0s"), (3_725_000_000_000, "1h2m5s"),
])
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text


def test_buckets_survive_a_reload_that_keeps_the_middleware() -> None:
    from ferryman.middlewares import MiddlewareContext
    from ferryman.state import StateRegistry

    states = StateRegistry()
    model = mw("rateLimit", {"average": 1, "period": "1m", "burst": 2})
    loop = FakeLoop()

    def build(router: str, config: Middleware = model) -> RateLimitHandler:
        handler = build_middleware("rl@file", config, Upstream(), MiddlewareContext(router=router, states=states))
        assert isinstance(handler, RateLimitHandler)
        handler.clock = loop
        return handler

    def statuses(handler: RateLimitHandler, n: int) -> list[int]:
        out = []
        for _ in range(n):
            ex, down = _request()
            handler.handle(ex)
            out.append(_status(down))
        return out

    assert statuses(build("a@file"), 3) == [200, 200, 429]
    states.sweep()
    assert statuses(build("a@file"), 1) == [429]  # same router and middleware: the burst is spent
    assert statuses(build("b@file"), 2) == [200, 200]  # another router: its own buckets
    states.sweep()
    changed = mw("rateLimit", {"average": 1, "period": "1m", "burst": 3})
    assert statuses(build("a@file", changed), 3) == [200, 200, 200]  # changed: afresh
