"""Graceful shutdown, PROXY protocol, load balancing and TLS on the entry point, over real sockets."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections import Counter

import pytest

from ferryman.dynamic.models import Weighted, WeightedRef
from ferryman.proto.proxy_protocol import build_v1, build_v2
from ferryman.services import build_weighted
from ferryman.upstream import UpstreamPools
from tests.integration.dataplane.dp_support import (
    Backend,
    Message,
    Reader,
    Responder,
    exchange,
    http_backend,
    lb,
    poll,
    proxy,
    read_response,
    response,
    self_signed_context,
    settings,
    tls_exchange,
)


def _slow_backend(release: threading.Event) -> Backend:
    def answer(req: Message) -> bytes:
        if req.target == "/slow":
            assert release.wait(20)
        return response(body=b"done " + req.target.encode())
    return http_backend(answer)


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def test_shutdown_lets_in_flight_requests_finish_and_closes_idle_ones() -> None:
    release = threading.Event()
    pools = UpstreamPools()
    with _slow_backend(release) as be, proxy(lb(pools, be.url), settings(grace_timeout=10), pools=pools) as px:
        idle = px.connect()
        idle_reader = Reader(idle)
        idle.sendall(b"GET /fast HTTP/1.1\r\nHost: h\r\n\r\n")
        assert read_response(idle_reader).body == b"done /fast"

        busy = px.connect()
        busy.sendall(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
        assert poll(lambda: len(be.requests) >= 2)

        done = asyncio.run_coroutine_threadsafe(px.ep.shutdown(), px.lt.loop)
        assert idle_reader.at_eof(timeout=5)             # idle keep-alive connection closed
        assert poll(lambda: _refused(px.port))            # no longer accepting
        assert not done.done()                            # still waiting for /slow
        release.set()
        resp = read_response(Reader(busy))
        assert resp.body == b"done /slow"
        assert resp.get("connection") == "close"
        done.result(10)
        assert px.ep.connections == set()
        busy.close()
        idle.close()


def test_grace_timeout_force_closes_what_is_left() -> None:
    release = threading.Event()
    pools = UpstreamPools()
    with _slow_backend(release) as be, proxy(lb(pools, be.url), settings(grace_timeout=0.3), pools=pools) as px:
        busy = px.connect()
        busy.sendall(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
        assert poll(lambda: len(be.requests) >= 1)
        started = time.monotonic()
        px.lt.run(px.ep.shutdown())
        assert time.monotonic() - started < 3
        assert Reader(busy).at_eof(timeout=5)
        release.set()
        busy.close()


def test_request_accept_grace_timeout_keeps_serving_first() -> None:
    with proxy(Responder(200, b"still here"), settings(request_accept_grace_timeout=0.5)) as px:
        done = asyncio.run_coroutine_threadsafe(px.ep.shutdown(), px.lt.loop)
        # during requestAcceptGraceTimeout new connections are accepted and served
        assert exchange(px.port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").body == b"still here"
        done.result(10)
        assert _refused(px.port)


# --------------------------------------------------------------------------------------------
# PROXY protocol


def test_proxy_protocol_from_trusted_peer_sets_the_client_address() -> None:
    pools = UpstreamPools()
    st = settings(proxy_protocol=True, proxy_protocol_trusted_ips=("127.0.0.1",))
    with http_backend() as be, proxy(lb(pools, be.url), st, pools=pools) as px:
        v1 = build_v1("203.0.113.7", 51000, "198.51.100.1", 80)
        assert exchange(px.port, v1 + b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").status == 200
        v2 = build_v2("2001:db8::5", 4000, "2001:db8::1", 443)
        assert exchange(px.port, v2 + b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").status == 200
        plain = exchange(px.port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")  # the header is optional
        assert plain.status == 200
        first, second, third = be.requests
        assert first.get("x-forwarded-for") == "203.0.113.7"
        assert first.get("x-real-ip") == "203.0.113.7"
        assert second.get("x-forwarded-for") == "2001:db8::5"
        assert third.get("x-forwarded-for") == "127.0.0.1"


def test_proxy_protocol_from_untrusted_peer_is_stripped_and_ignored() -> None:
    pools = UpstreamPools()
    st = settings(proxy_protocol=True, proxy_protocol_trusted_ips=("10.0.0.0/8",))
    with http_backend() as be, proxy(lb(pools, be.url), st, pools=pools) as px:
        v1 = build_v1("203.0.113.7", 51000, "198.51.100.1", 80)
        with px.connect() as sock:  # header split across writes
            sock.sendall(v1[:10])
            sock.sendall(v1[10:] + b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            assert read_response(Reader(sock)).status == 200
        assert be.requests[0].get("x-forwarded-for") == "127.0.0.1"


def test_malformed_proxy_header_closes_the_connection() -> None:
    st = settings(proxy_protocol=True, proxy_protocol_insecure=True)
    with proxy(Responder(), st) as px, px.connect() as sock:
        sock.sendall(b"PROXY TCP4 not-an-ip 1.2.3.4 1 2\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert Reader(sock).at_eof()


# --------------------------------------------------------------------------------------------
# Load balancing


def _named_backend(name: str) -> Backend:
    def answer(req: Message) -> bytes:
        return response(body=name.encode())
    return http_backend(answer)


def test_wrr_spreads_by_weight_over_the_wire() -> None:
    from ferryman.dynamic.models import LoadBalancer, Server
    from ferryman.services import build_load_balancer
    from ferryman.upstream import TransportSettings
    pools = UpstreamPools()
    with _named_backend("a") as a, _named_backend("b") as b:
        model = LoadBalancer(servers=(Server(url=a.url, weight=3), Server(url=b.url, weight=1)))
        handler = build_load_balancer("svc", model, TransportSettings(), pools)
        with proxy(handler, pools=pools) as px, px.connect() as sock:
            r = Reader(sock)
            seen = []
            for _ in range(8):
                sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
                seen.append(read_response(r).body.decode())
            assert Counter(seen) == {"a": 6, "b": 2}
            # smooth interleaving: never three b's... and b never twice in a row
            assert "bb" not in "".join(seen)


def test_weighted_service_canary() -> None:
    pools = UpstreamPools()
    with _named_backend("stable") as s, _named_backend("canary") as c:
        children = {"stable@file": lb(pools, s.url, name="stable@file"),
                    "canary@file": lb(pools, c.url, name="canary@file")}
        model = Weighted(services=(WeightedRef(name="stable@file", weight=9),
                                   WeightedRef(name="canary@file", weight=1)))
        handler = build_weighted("app@file", model, children)
        with proxy(handler, pools=pools) as px, px.connect() as sock:
            r = Reader(sock)
            bodies = []
            for _ in range(20):
                sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
                bodies.append(read_response(r).body)
            assert Counter(bodies) == {b"stable": 18, b"canary": 2}


# --------------------------------------------------------------------------------------------
# TLS on the entry point (the hook the TLS package builds on)


@pytest.fixture(scope="module")
def tls_context(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    return self_signed_context(tmp_path_factory.mktemp("tls"))


def test_tls_entry_point_sets_https_forwarded_headers(tls_context: ssl.SSLContext) -> None:
    pools = UpstreamPools()
    with http_backend() as be, proxy(lb(pools, be.url), pools=pools, ssl=tls_context) as px:
        resp = tls_exchange(px.port, b"GET / HTTP/1.1\r\nHost: secure.example\r\n\r\n")
        assert resp.status == 200
        req = be.requests[0]
        assert req.get("x-forwarded-proto") == "https"
        assert req.get("x-forwarded-port") == "443"
