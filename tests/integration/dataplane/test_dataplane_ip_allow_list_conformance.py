"""Traefik's ipAllowList vectors (shared conformance data), replayed over the wire.

Each request case goes to a real entry point whose only route is the middleware in front of a real
backend (a load balancer over a keep-alive HTTP/1.1 server). The case's ``remote_addr`` becomes the
client address through the PROXY protocol (the entry point trusts it), as a load balancer in front
of Traefik would do; the absolute-form ``http://10.10.10.10`` of the Go test is sent with its path, ``http://10.10.10.10/``.
"""

from __future__ import annotations

from typing import Any

import pytest

from ferryman.ipnet import split_host_port
from ferryman.middlewares import build_middleware
from ferryman.proto.proxy_protocol import build_v1
from ferryman.upstream import UpstreamPools
from tests.integration.dataplane.dp_support import exchange, http_backend, lb, proxy, settings
from tests.unit.middlewares.conformance_support import case_id, conformance_cases, mw

CASES = [c for c in conformance_cases("ipAllowList") if "request" in c]
pytestmark = pytest.mark.skipif(not CASES, reason="shared conformance data not found")


def _proxy_line(remote_addr: str) -> bytes:
    split = split_host_port(remote_addr)
    assert split is not None
    ip, port = split
    return build_v1(ip, int(port), "::1" if ":" in ip else "127.0.0.1", 80)


def _target(req: dict[str, Any]) -> str:
    """The Go test's request-URI; an absolute URL without a path gets its ``/`` on the wire."""
    target: str = req["request_uri"] or "/"
    if "://" in target and "/" not in target.partition("://")[2]:
        target += "/"
    return target


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_ip_allow_list_over_the_wire(case: dict[str, Any]) -> None:
    req = case["request"]
    pools = UpstreamPools()
    with http_backend() as backend:
        handler = build_middleware("conformance", mw("ipAllowList", case["config"]), lb(pools, backend.url))
        with proxy(handler, settings(proxy_protocol=True, proxy_protocol_insecure=True), pools=pools) as px:
            raw = (_proxy_line(req["remote_addr"])
                   + f"{req['method']} {_target(req)} HTTP/1.1\r\nHost: {req['host']}\r\n\r\n".encode())
            resp = exchange(px.port, raw)
        status = case["expected"]["status"]
        assert resp.status == status, case["source"]
        if status == 200:
            assert resp.body == b"hello from backend"
            assert len(backend.requests) == 1
            assert backend.requests[0].get("x-forwarded-for") == req["remote_addr"].rpartition(":")[0]
        else:
            assert backend.requests == []
            assert resp.get("content-type") is None
            assert resp.body == {403: b"Forbidden", 404: b"Not Found"}[status]


def test_ip_strategy_depth_over_the_wire() -> None:
    """``ipStrategy.depth`` reads X-Forwarded-For as the entry point hands it over: from a trusted
    peer only (forwardedHeaders.insecure here); from an untrusted one the header is dropped first."""
    pools = UpstreamPools()
    config = {"sourceRange": ["198.51.100.7"], "ipStrategy": {"depth": 2}}
    raw = b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 198.51.100.7, 10.0.0.1\r\n\r\n"
    with http_backend() as backend:
        handler = build_middleware("allow", mw("ipAllowList", config), lb(pools, backend.url))
        with proxy(handler, settings(forwarded_insecure=True), pools=pools) as px:
            assert exchange(px.port, raw).status == 200
        with proxy(handler, settings(), pools=pools) as px:
            assert exchange(px.port, raw).status == 403
        assert len(backend.requests) == 1
        assert backend.requests[0].get("x-forwarded-for") == "198.51.100.7, 10.0.0.1, 127.0.0.1"
