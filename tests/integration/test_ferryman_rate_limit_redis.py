"""rateLimit with redis against a real redis-server (started by the test, own port and directory):

* Traefik's redis load vectors replayed through the handler and a real redis, on a simulated clock
  (the bucket script takes the caller's time, so the counts are exact, not timing dependent);
* the limit is shared by two ferryman processes;
* redis down: 500 ``Could not insert/update bucket`` and an error log line, no crash; redis back:
  requests pass again.
"""

from __future__ import annotations

import asyncio
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ferryman.dynamic.models import Middleware
from ferryman.middlewares.rate_limit import build_rate_limit
from ferryman.middlewares.rate_limit_redis import RedisRateLimitHandler
from ferryman.types import parse_duration
from tests.integration.conftest import StartFerryman
from tests.support.ferryman import Ferryman
from tests.support.pebble import write_listener_pki
from tests.support.procs import ProcessGroup, poll_until
from tests.support.redis import RedisServer
from tests.unit.middlewares.conformance_support import Upstream, shared_dir
from tests.unit.middlewares.test_rate_limit import FakeLoop, drive_load


@pytest.fixture
def redis_server(tmp_path: Path, procs: ProcessGroup) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", group=procs).start()
    yield server
    server.stop()


def load_cases() -> list[dict[str, Any]]:
    path = shared_dir() / "conformance" / "middlewares.json"
    if not path.exists():
        return []
    cases = json.loads(path.read_text())["rateLimit"]["load_cases"]
    return [c for c in cases if c["backend"] == "redis"]


REDIS_LOAD = load_cases()


@pytest.mark.skipif(not REDIS_LOAD, reason="shared conformance data not found")
@pytest.mark.parametrize("case", REDIS_LOAD, ids=[c["source"].split(":", 1)[1].split("/", 1)[1] for c in REDIS_LOAD])
def test_redis_load_vectors(case: dict[str, Any], redis_server: RedisServer) -> None:
    config = {**case["config"], "redis": {"endpoints": [redis_server.endpoint]}}
    model = Middleware.model_validate({"rateLimit": config})
    assert model.rate_limit is not None
    upstream = Upstream()
    handler = build_rate_limit(f"load-{abs(hash(case['source']))}", model.rate_limit, upstream)
    assert isinstance(handler, RedisRateLimitHandler)
    load = case["load"]

    loop = FakeLoop()
    loop.now = 1_000.0  # the script takes the caller's wall clock: a new bucket is full only from t > 0
    handler.clock = loop
    handler.wall_us = lambda: int(loop.now * 1e6)
    aio = asyncio.new_event_loop()  # each request's redis call runs to completion, on simulated time
    try:
        count = drive_load(loop, upstream, lambda ex: aio.run_until_complete(handler.check(ex)),
                           parse_duration(load["duration"]), load["requests_per_second"],
                           load["initial_burst_requests"])
    finally:
        aio.run_until_complete(handler.buckets.client.aclose())
        aio.close()
    expected = case["expected"]
    assert expected["min_forwarded_count"] <= count <= expected["max_forwarded_count"], count
    keys = redis_server.cli("KEYS", "rate:*")
    assert keys == [f"rate:{handler.name}:127.0.0.1".encode()]
    ttl = 2 if handler.rate >= 1 else 1 + int(1 / handler.rate)  # Traefik's bucket TTL
    assert 0 < redis_server.cli("TTL", keys[0]) <= ttl


def get(fm: Ferryman) -> tuple[int, bytes, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", fm.ports["web"], timeout=15)
    try:
        conn.request("GET", "/", headers={"Host": "app"})
        resp = conn.getresponse()
        return resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def routes(endpoint: str, backend: int, **redis: Any) -> dict[str, Any]:
    # 5 per minute (1 token every 12 s: no refill during the test, maxDelay 500 ms), burst 6.
    return {"http": {
        "routers": {"app": {"rule": "Host(`app`)", "service": "s", "middlewares": ["shared"]}},
        "middlewares": {"shared": {"rateLimit": {"average": 5, "period": "1m", "burst": 6, "redis": {
            "endpoints": [endpoint], "dialTimeout": "1s", **redis}}}},
        "services": {"s": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{backend}"}]}}}}}


def test_limit_shared_by_two_ferryman_processes(tmp_path: Path, procs: ProcessGroup,
                                                redis_server: RedisServer, hello: Any) -> None:
    backend = hello("v1")
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    instances = [Ferryman(tmp_path / f"fm{i}", static, routes(redis_server.endpoint, backend), group=procs).start()
                 for i in range(2)]
    statuses = [get(instances[i % 2])[0] for i in range(12)]
    assert statuses.count(200) == 6, statuses  # one bucket for both: burst 6, not 6 each
    assert statuses[:6] == [200] * 6
    status, body, headers = get(instances[0])
    assert status == 429 and body == b"Too Many Requests"
    assert int(headers["retry-after"]) >= 1 and "x-retry-in" in headers
    assert redis_server.cli("KEYS", "rate:*") == [b"rate:shared@file:127.0.0.1"]


def test_redis_down_answers_500_then_recovers(ferryman: StartFerryman, redis_server: RedisServer,
                                              hello: Any) -> None:
    backend = hello("v1")
    fm = ferryman(dynamic=routes(redis_server.endpoint, backend))
    assert get(fm)[0] == 200
    redis_server.stop()
    mark = fm.mark()
    status, body, headers = get(fm)
    assert (status, body) == (500, b"Could not insert/update bucket\n")
    assert headers["content-type"] == "text/plain; charset=utf-8"
    event = fm.wait_for(lambda e: "could not insert/update bucket" in str(e.get("message", "")), 5, start=mark)
    assert event.get("level") in ("error", "ERROR")
    assert fm.proc is not None and fm.proc.poll() is None
    redis_server.start()  # same port, empty: the bucket starts full again
    poll_until(lambda: get(fm)[0] == 200, 10, what="requests passing once redis is back")


def test_redis_over_tls(ferryman: StartFerryman, tmp_path: Path, procs: ProcessGroup, hello: Any) -> None:
    server = RedisServer(tmp_path / "redis-tls", group=procs, tls=True).start()
    assert server.pki is not None
    backend = hello("v1")
    fm = ferryman(dynamic=routes(server.endpoint, backend, tls={"ca": str(server.pki[0])}, db=3,
                                 poolSize=4, minIdleConns=2, readTimeout="2s", writeTimeout="2s"))
    statuses = [get(fm)[0] for _ in range(8)]
    assert statuses == [200] * 6 + [429] * 2
    with server.client() as c:
        assert c.execute_command("KEYS", "*") == []  # nothing in db 0
        c.execute_command("SELECT", 3)
        assert c.execute_command("KEYS", "rate:*") == [b"rate:shared@file:127.0.0.1"]
    # a CA that did not sign the server's certificate: the handshake fails, Traefik's 500
    other_ca, _, _ = write_listener_pki(tmp_path / "other-pki")
    mark = fm.mark()
    fm.write_dynamic("routes.yml", routes(server.endpoint, backend, tls={"ca": str(other_ca)}))
    fm.wait_for(lambda e: e.get("message") == "configuration applied", 10, start=mark)
    assert get(fm)[:2] == (500, b"Could not insert/update bucket\n")
    server.stop()
