"""rateLimit through a real entry point and backend: the 429 on the wire, and Traefik's
"Average is respected" load case (shared conformance data) replayed on one keep-alive connection
in real time, checked against the case's tolerant window."""

from __future__ import annotations

import json
import time

import pytest

from ferryman.middlewares import build_middleware
from ferryman.types import parse_duration
from ferryman.upstream import UpstreamPools
from tests.integration.dataplane.dp_support import Reader, http_backend, lb, proxy, read_response
from tests.unit.middlewares.conformance_support import mw, shared_dir

GET = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"


def test_rate_limit_429_on_the_wire() -> None:
    pools = UpstreamPools()
    with http_backend() as backend:
        handler = build_middleware("rl", mw("rateLimit", {"average": 1, "period": "10s"}), lb(pools, backend.url))
        with proxy(handler, pools=pools) as px, px.connect() as sock:
            reader = Reader(sock)
            sock.sendall(GET)
            assert read_response(reader).body == b"hello from backend"
            sock.sendall(GET)
            denied = read_response(reader)
            assert denied.status == 429
            assert denied.get("retry-after") in ("10", "9")
            retry_in = denied.get("x-retry-in")
            assert retry_in is not None and 9.0 < parse_duration(retry_in) <= 10.0
            assert denied.get("content-type") is None
            assert denied.body == b"Too Many Requests"
    assert len(backend.requests) == 1


def _load_case(name: str) -> dict[str, object] | None:
    path = shared_dir() / "conformance" / "middlewares.json"
    if not path.exists():
        return None
    for case in json.loads(path.read_text())["rateLimit"]["load_cases"]:
        if case["backend"] == "in-memory" and case["source"].endswith(name):
            return dict(case)
    return None


AVERAGE = _load_case("TestInMemoryRateLimit/Average is respected")


@pytest.mark.skipif(AVERAGE is None, reason="shared conformance data not found")
def test_rate_limit_average_is_respected_in_real_time() -> None:
    assert AVERAGE is not None
    config = AVERAGE["config"]
    load = AVERAGE["load"]
    expected = AVERAGE["expected"]
    assert isinstance(load, dict) and isinstance(expected, dict)
    duration = parse_duration(load["duration"])
    tick = 1.0 / load["requests_per_second"]
    pools = UpstreamPools()
    with http_backend() as backend:
        handler = build_middleware("rl", mw("rateLimit", config), lb(pools, backend.url))
        with proxy(handler, pools=pools) as px, px.connect() as sock:
            reader = Reader(sock)
            start = time.monotonic()
            next_tick = start
            while time.monotonic() - start < duration:
                sock.sendall(GET)
                assert read_response(reader).status in (200, 429)
                next_tick += tick
                pause = next_tick - time.monotonic()
                if pause > 0:
                    time.sleep(pause)  # the client's request pace, as the Go test's ticker
    forwarded = len(backend.requests)
    assert expected["min_forwarded_count_on_ci"] <= forwarded <= expected["max_forwarded_count"], forwarded
