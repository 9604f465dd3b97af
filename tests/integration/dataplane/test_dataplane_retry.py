"""retry through a real entry point: a load balancer over a dead address and a live backend answers
every request when retry tries again (the next try goes to the next server), and some requests get
502 without it; a dead-only service is dialled ``attempts`` times, then 502."""

from __future__ import annotations

import socket

from ferryman.middlewares import build_middleware
from ferryman.upstream import UpstreamPools
from tests.integration.dataplane.dp_support import exchange, http_backend, lb, proxy
from tests.unit.middlewares.conformance_support import mw

GET = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_retry_on_the_wire() -> None:
    dead = _dead_url()
    with http_backend() as backend:
        pools = UpstreamPools()
        plain = lb(pools, dead, backend.url)
        with proxy(plain, pools=pools) as px:
            assert 502 in [exchange(px.port, GET).status for _ in range(4)]
        pools = UpstreamPools()
        retried = build_middleware("r", mw("retry", {"attempts": 2}), lb(pools, dead, backend.url))
        with proxy(retried, pools=pools) as px:
            statuses = [exchange(px.port, GET).status for _ in range(4)]
        assert statuses == [200] * 4

    pools = UpstreamPools()
    only_dead = build_middleware("r", mw("retry", {"attempts": 3, "initialInterval": "10ms"}), lb(pools, dead))
    with proxy(only_dead, pools=pools) as px:
        assert exchange(px.port, GET).status == 502
    assert sum(pool.dials for pool in pools) == 3
