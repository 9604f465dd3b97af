"""Core proxying over real sockets: forwarding, headers, keep-alive, pipelining, framing."""

from __future__ import annotations

import socket
import threading

from ferryman.upstream import TransportSettings, UpstreamPools
from tests.integration.dataplane.dp_support import (
    Backend,
    Message,
    Reader,
    Responder,
    Route,
    Routes,
    exchange,
    http_backend,
    lb,
    poll,
    proxy,
    read_request,
    read_response,
    response,
    settings,
)


def test_get_is_proxied_with_forwarded_headers() -> None:
    pools = UpstreamPools()
    with http_backend() as be, proxy(lb(pools, be.url), pools=pools) as px:
        resp = exchange(px.port, b"GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n"
                                 b"X-Forwarded-For: 6.6.6.6\r\nX-Real-Ip: 6.6.6.6\r\nX_Forwarded_Host: evil\r\n\r\n")
        assert resp.status == 200
        assert resp.body == b"hello from backend"
        req = be.requests[0]
        assert req.start == "GET /a/b?x=1 HTTP/1.1"
        assert req.get("host") == "example.com"
        assert req.get("user-agent") == "t"
        # untrusted peer: incoming X-Forwarded-* (and underscore spellings) are replaced
        assert req.get_all("x-forwarded-for") == ["127.0.0.1"]
        assert req.get("x-real-ip") == "127.0.0.1"
        assert req.get("x-forwarded-proto") == "http"
        assert req.get("x-forwarded-host") == "example.com"
        assert req.get("x-forwarded-port") == "80"
        assert req.get("x-forwarded-server") == "ferryman-test"
        assert "x_forwarded_host" not in req.names()


def test_trusted_peer_keeps_forwarded_headers_and_appends() -> None:
    pools = UpstreamPools()
    st = settings(forwarded_trusted_ips=("127.0.0.1/32",))
    with http_backend() as be, proxy(lb(pools, be.url), st, pools=pools) as px:
        exchange(px.port, b"GET / HTTP/1.1\r\nHost: example.com:8443\r\nX-Forwarded-For: 1.1.1.1\r\n"
                          b"X-Forwarded-For: 2.2.2.2\r\nX-Forwarded-Proto: https\r\n"
                          b"X-Real-Ip: 1.1.1.1\r\nX-Forwarded-Server: other\r\n\r\n")
        req = be.requests[0]
        assert req.get_all("x-forwarded-for") == ["1.1.1.1, 2.2.2.2, 127.0.0.1"]
        assert req.get("x-forwarded-proto") == "https"
        assert req.get("x-real-ip") == "1.1.1.1"
        assert req.get("x-forwarded-port") == "8443"          # from the Host header
        assert req.get("x-forwarded-host") == "example.com:8443"
        assert req.get_all("x-forwarded-server") == ["ferryman-test"]  # always ours


def test_forwarded_port_from_proto_when_host_has_no_port() -> None:
    pools = UpstreamPools()
    st = settings(forwarded_insecure=True)
    with http_backend() as be, proxy(lb(pools, be.url), st, pools=pools) as px:
        exchange(px.port, b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-Proto: https\r\n\r\n")
        assert be.requests[0].get("x-forwarded-port") == "443"


def test_hop_by_hop_headers_removed_both_ways() -> None:
    def answer(req: Message) -> bytes:
        return response(body=b"x", headers={"Connection": "keep-alive, X-Backend-Hop", "X-Backend-Hop": "1",
                                            "Keep-Alive": "timeout=5", "Proxy-Connection": "x",
                                            "X-End": "2", "Content-Length": "1"})
    pools = UpstreamPools()
    with http_backend(answer) as be, proxy(lb(pools, be.url), pools=pools) as px:
        resp = exchange(px.port, b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Client-Hop\r\n"
                                 b"X-Client-Hop: 1\r\nKeep-Alive: 300\r\nProxy-Connection: keep-alive\r\n"
                                 b"TE: gzip\r\nProxy-Authorization: Basic x\r\nX-Keep: yes\r\n\r\n")
        req = be.requests[0]
        for name in ("connection", "x-client-hop", "keep-alive", "proxy-connection", "te",
                     "proxy-authorization", "upgrade", "trailer"):
            assert name not in req.names(), name
        assert req.get("x-keep") == "yes"
        for name in ("x-backend-hop", "keep-alive", "proxy-connection"):
            assert name not in resp.names(), name
        assert resp.get("x-end") == "2"


def test_keep_alive_reuses_one_upstream_connection() -> None:
    pools = UpstreamPools()
    with http_backend() as be, proxy(lb(pools, be.url), pools=pools) as px, px.connect() as sock:
        r = Reader(sock)
        for i in range(5):
            sock.sendall(f"GET /{i} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
            assert read_response(r).status == 200
        assert [q.target for q in be.requests] == [f"/{i}" for i in range(5)]
        assert be.connections == 1


def test_pipelined_requests_are_answered_in_order() -> None:
    def answer(req: Message) -> bytes:
        return response(body=req.target.encode())
    pools = UpstreamPools()
    with http_backend(answer) as be, proxy(lb(pools, be.url), pools=pools) as px, px.connect() as sock:
        sock.sendall(b"GET /one HTTP/1.1\r\nHost: h\r\n\r\n"
                     b"POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
                     b"GET /three HTTP/1.1\r\nHost: h\r\n\r\n")
        r = Reader(sock)
        bodies = [read_response(r).body for _ in range(3)]
        assert bodies == [b"/one", b"/two", b"/three"]
        assert be.requests[1].body == b"abc"


def test_pipelined_local_answers_in_order() -> None:
    with proxy(Responder(200, b"local")) as px, px.connect() as sock:
        sock.sendall(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n" * 3)
        r = Reader(sock)
        assert [read_response(r).body for _ in range(3)] == [b"local"] * 3


def test_chunked_request_and_response_bodies() -> None:
    def answer(req: Message) -> bytes:
        body = req.body[::-1]
        return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                + b"%x\r\n%s\r\n" % (len(body), body) + b"0\r\n\r\n")
    pools = UpstreamPools()
    with http_backend(answer) as be, proxy(lb(pools, be.url), pools=pools) as px:
        resp = exchange(px.port, b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\n\r\n")
        assert be.requests[0].chunked and be.requests[0].body == b"abcdefg"
        assert resp.chunked and resp.body == b"gfedcba"


def test_close_delimited_backend_response_becomes_chunked() -> None:
    def serve(sock: socket.socket) -> None:
        read_request(Reader(sock))
        sock.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
        sock.close()
    pools = UpstreamPools()
    with Backend(serve) as be, proxy(lb(pools, be.url), pools=pools) as px, px.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        r = Reader(sock)
        resp = read_response(r)
        assert resp.chunked and resp.body == b"until the end"
        # the client connection stays usable
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert read_response(r).body == b"until the end"


def test_http10_client_gets_close_delimited_body() -> None:
    def answer(req: Message) -> bytes:
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    pools = UpstreamPools()
    with http_backend(answer) as be, proxy(lb(pools, be.url), pools=pools) as px:
        with px.connect() as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            r = Reader(sock)
            resp = read_response(r)
            assert resp.body == b"hello" and not resp.chunked
            assert r.at_eof()
        assert be.requests[0].get("host") == f"127.0.0.1:{be.port}"  # no Host: the server's


def test_head_204_304_have_no_body_and_connection_stays_usable() -> None:
    def answer(req: Message) -> bytes:
        if req.target == "/204":
            return b"HTTP/1.1 204 No Content\r\n\r\n"
        if req.target == "/304":
            return b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n"
        if req.method == "HEAD":
            return b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
        return response(body=b"full")
    pools = UpstreamPools()
    with http_backend(answer) as be, proxy(lb(pools, be.url), pools=pools) as px, px.connect() as sock:
        r = Reader(sock)
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
        head = read_response(r, head=True)
        assert head.status == 200 and head.get("content-length") == "1234"
        for path, status in (("/204", 204), ("/304", 304), ("/", 200), ("/", 200)):
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
            resp = read_response(r)
            assert resp.status == status
        assert resp.body == b"full"
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert read_response(r, head=True).status == 200
        assert read_response(r).body == b"full"


def test_absolute_form_target_uses_url_authority() -> None:
    pools = UpstreamPools()
    with http_backend() as be, proxy(Routes(Route("r", lb(pools, be.url), host="inner.example")),
                                     pools=pools) as px:
        resp = exchange(px.port, b"GET http://Inner.Example:81/p?q=1 HTTP/1.1\r\nHost: outer\r\n\r\n")
        assert resp.status == 200
        req = be.requests[0]
        assert req.start == "GET /p?q=1 HTTP/1.1"
        assert req.get("host") == "Inner.Example:81"
        assert req.get("x-forwarded-host") == "Inner.Example:81"


def test_path_is_normalized_and_sanitized_like_traefik() -> None:
    pools = UpstreamPools()
    with http_backend() as be, proxy(lb(pools, be.url), pools=pools) as px:
        exchange(px.port, b"GET /a/./b/../c//d%2fe%41%7e?x=1;y=2 HTTP/1.1\r\nHost: h\r\n\r\n")
        assert be.requests[0].target == "/a/c/d%2FeA~?x=1&y=2"


def test_not_found_body_is_traefiks() -> None:
    with proxy(Routes()) as px:
        resp = exchange(px.port, b"GET /nothing HTTP/1.1\r\nHost: h\r\n\r\n")
        assert resp.status == 404
        assert resp.body == b"404 page not found\n"
        assert resp.get("content-type") == "text/plain; charset=utf-8"
        assert resp.get("x-content-type-options") == "nosniff"
        assert resp.get("date")


def test_routes_swap_in_one_assignment() -> None:
    with proxy(Responder(200, b"one")) as px:
        assert exchange(px.port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").body == b"one"
        px.set_routes(Routes(Route("two", Responder(200, b"two"))))
        assert exchange(px.port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").body == b"two"


def test_pass_host_header_false_and_preserve_path() -> None:
    pools = UpstreamPools()
    with http_backend() as be:
        handler = lb(pools, be.url + "/base/", pass_host_header=False)
        from ferryman.dynamic.models import LoadBalancer, Server
        from ferryman.services import build_load_balancer
        from ferryman.upstream import TransportSettings
        preserve = build_load_balancer("p", LoadBalancer(servers=(Server(url=be.url + "/base", preserve_path=True),)),
                                       TransportSettings(), pools)
        routes = Routes(Route("p", preserve, prefix="/keep"), Route("h", handler))
        with proxy(routes, pools=pools) as px:
            exchange(px.port, b"GET /x HTTP/1.1\r\nHost: client.example\r\n\r\n")
            exchange(px.port, b"GET /keep/y HTTP/1.1\r\nHost: client.example\r\n\r\n")
        first, second = be.requests
        assert first.target == "/x"  # the server URL path is ignored without preservePath
        assert first.get("host") == f"127.0.0.1:{be.port}"
        assert first.get("x-forwarded-host") == "client.example"
        assert second.target == "/base/keep/y"
        assert second.get("host") == "client.example"


def test_request_trailers_and_response_trailers_with_te_trailers() -> None:
    def answer(req: Message) -> bytes:
        return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
                b"2\r\nok\r\n0\r\nX-Checksum: abc\r\n\r\n")
    pools = UpstreamPools()
    with http_backend(answer) as be, proxy(lb(pools, be.url), pools=pools) as px:
        with_te = exchange(px.port, b"POST / HTTP/1.1\r\nHost: h\r\nTE: trailers\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    b"1\r\na\r\n0\r\nX-Req-Trailer: 1\r\n\r\n")
        assert with_te.body == b"ok" and with_te.trailers == [("X-Checksum", "abc")]
        assert be.requests[0].get("te") == "trailers"
        assert be.requests[0].trailers == [("x-req-trailer", "1")]
        without = exchange(px.port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert without.body == b"ok" and without.trailers == []


def test_reused_connection_closed_by_backend_is_retried() -> None:
    """A backend that silently closes idle keep-alive connections (Node's 5s default, say)."""
    def serve(sock: socket.socket) -> None:
        r = Reader(sock)
        read_request(r)
        sock.sendall(response(body=b"once"))  # keep-alive advertised, then closed
    pools = UpstreamPools()
    with Backend(serve) as be, proxy(lb(pools, be.url), pools=pools) as px:
        assert exchange(px.port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").body == b"once"
        assert poll(lambda: be.connections == 1)
        # the pooled connection is dead by now (or dies while we send): GET is replayed
        assert exchange(px.port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").body == b"once"
        assert be.connections == 2


def test_informational_responses_are_relayed() -> None:
    def answer(req: Message) -> bytes:
        return b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" + response(body=b"final")
    pools = UpstreamPools()
    with http_backend(answer) as be, proxy(lb(pools, be.url), pools=pools) as px, px.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        r = Reader(sock)
        early = read_response(r)
        assert early.status == 103 and early.get("link") == "</style.css>; rel=preload"
        assert read_response(r).body == b"final"


def test_idle_upstream_connections_expire_after_idle_conn_timeout() -> None:
    closed = threading.Event()

    def serve(sock: socket.socket) -> None:
        r = Reader(sock)
        read_request(r)
        sock.sendall(response(body=b"x"))
        assert r.at_eof(timeout=10)
        closed.set()
    pools = UpstreamPools()
    transport = TransportSettings(idle_conn_timeout=0.2)
    with Backend(serve) as be, proxy(lb(pools, be.url, transport=transport), pools=pools) as px:
        assert exchange(px.port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").body == b"x"
        assert closed.wait(5)


def test_negative_max_idle_conns_keeps_no_idle_connection() -> None:
    pools = UpstreamPools()
    transport = TransportSettings(max_idle_conns_per_host=-1)
    with http_backend() as be, proxy(lb(pools, be.url, transport=transport), pools=pools) as px, \
            px.connect() as sock:
        r = Reader(sock)
        for _ in range(3):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            assert read_response(r).status == 200
        assert be.connections == 3


def test_request_keeps_the_table_it_started_with() -> None:
    release = threading.Event()

    def answer(req: Message) -> bytes:
        assert release.wait(10)
        return response(body=b"old table")
    pools = UpstreamPools()
    with http_backend(answer) as be, proxy(lb(pools, be.url), pools=pools) as px, px.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert poll(lambda: len(be.requests) == 1)
        px.set_routes(Routes(Route("new", Responder(200, b"new table"))))
        release.set()
        r = Reader(sock)
        assert read_response(r).body == b"old table"
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert read_response(r).body == b"new table"
