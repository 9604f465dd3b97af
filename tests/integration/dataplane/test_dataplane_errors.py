"""Malformed requests, backend failures and timeouts, over real sockets."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

from ferryman.upstream import TransportSettings, UpstreamPools
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
    read_request,
    read_response,
    response,
    settings,
)

GO_400 = b"400 Bad Request"


def _raw_answer(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        return Reader(sock).read_until_close()


@pytest.mark.parametrize("raw", [
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3x\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: bad host\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
    b"GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n",
    b"NOT HTTP AT ALL\r\n\r\n",
])
def test_malformed_requests_get_400_and_close(raw: bytes) -> None:
    responder = Responder()
    with proxy(responder) as px:
        answer = _raw_answer(px.port, raw)
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
        assert b"Connection: close\r\n" in answer
        assert GO_400 in answer
        assert responder.seen == []


def test_bad_chunk_size_while_forwarding_is_400_and_the_upstream_is_dropped() -> None:
    def serve(sock: socket.socket) -> None:
        r = Reader(sock)
        r.readline()
        sock.recv(65536)  # head and whatever body arrived; never answers
        sock.recv(1)
    pools = UpstreamPools()
    with Backend(serve) as be, proxy(lb(pools, be.url), pools=pools) as px, px.connect() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        assert poll(lambda: be.connections == 1)
        sock.sendall(b"zz\r\n")
        answer = Reader(sock).read_until_close()
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer


def test_bad_body_after_a_local_answer_just_closes() -> None:
    with proxy(Responder()) as px, px.connect() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        r = Reader(sock)
        assert read_response(r).status == 200
        assert r.at_eof()


def test_missing_host_on_http11_is_400_with_gos_reason() -> None:
    with proxy(Responder()) as px:
        answer = _raw_answer(px.port, b"GET / HTTP/1.1\r\n\r\n")
        assert answer.endswith(b"400 Bad Request: missing required Host header")
        ok = exchange(px.port, b"GET / HTTP/1.0\r\n\r\n")  # HTTP/1.0 needs no Host
        assert ok.status == 200


def test_unsupported_transfer_coding_is_501() -> None:
    with proxy(Responder()) as px:
        answer = _raw_answer(px.port, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                                      b"3\r\nabc\r\n0\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 501 Not Implemented\r\n"), answer
        assert answer.endswith(b"\r\n\r\nUnsupported transfer encoding")


def test_duplicate_host_is_a_plain_400() -> None:
    with proxy(Responder()) as px:
        answer = _raw_answer(px.port, b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n")
        assert answer.endswith(b"\r\n\r\n400 Bad Request")


@pytest.mark.parametrize("version", [b"HTTP/9.9", b"HTTP/2.0", b"HTTP/0.9"])
def test_unsupported_versions_get_505(version: bytes) -> None:
    with proxy(Responder()) as px:
        answer = _raw_answer(px.port, b"GET / " + version + b"\r\nHost: h\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 505 HTTP Version Not Supported\r\n"), answer
        assert answer.endswith(b"505 HTTP Version Not Supported: unsupported protocol version")


def test_fragment_is_a_400_from_the_handler_chain_keeping_the_connection() -> None:
    responder = Responder()
    with proxy(responder) as px, px.connect() as sock:
        r = Reader(sock)
        sock.sendall(b"GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n")
        resp = read_response(r)
        assert (resp.status, resp.body, resp.get("content-length")) == (400, b"", "0")
        assert resp.get("content-type") is None and resp.get("connection") is None
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert read_response(r).status == 200
        assert len(responder.seen) == 1


@pytest.mark.parametrize("method", [b"get", b"FROB", b"PURGE", b"M-SEARCH"])
def test_any_token_method_is_accepted_and_forwarded(method: bytes) -> None:
    pools = UpstreamPools()
    with http_backend() as be, proxy(lb(pools, be.url), pools=pools) as px, px.connect() as sock:
        r = Reader(sock)
        sock.sendall(method + b" /x HTTP/1.1\r\nHost: h\r\n\r\n")
        assert read_response(r).status == 200
        sock.sendall(method + b" /y HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi")
        assert read_response(r).status == 200
        assert [q.start for q in be.requests] == [f"{method.decode()} /x HTTP/1.1", f"{method.decode()} /y HTTP/1.1"]
        assert be.requests[1].body == b"hi"


def test_invalid_method_token_is_400() -> None:
    with proxy(Responder()) as px:
        answer = _raw_answer(px.port, b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_header_bytes_over_max_get_431() -> None:
    with proxy(Responder(), settings(max_header_bytes=1024)) as px:
        small = exchange(px.port, b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 1000 + b"\r\n\r\n")
        assert small.status == 200  # Go allows maxHeaderBytes + 4096
        answer = _raw_answer(px.port, b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 6000 + b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), answer[:80]


def test_huge_header_streamed_in_pieces_gets_431_before_it_ends() -> None:
    with proxy(Responder(), settings(max_header_bytes=1024)) as px, px.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: ")
        for _ in range(20):
            try:
                sock.sendall(b"a" * 1024)
            except OSError:
                break
        answer = Reader(sock).read_until_close()
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]


def test_default_max_header_bytes_is_one_mebibyte() -> None:
    with proxy(Responder()) as px:
        ok = exchange(px.port, b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 900_000 + b"\r\n\r\n")
        assert ok.status == 200
        answer = _raw_answer(px.port, b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 1_100_000 + b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 431 ")


def test_backend_refusing_gives_502_bad_gateway() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    pools = UpstreamPools()
    with proxy(lb(pools, f"http://127.0.0.1:{port}"), pools=pools) as px:
        resp = exchange(px.port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert resp.status == 502
        assert resp.body == b"Bad Gateway"
        assert resp.get("content-type") is None  # Traefik disables Go's content sniffing


def test_backend_reset_before_response_gives_502() -> None:
    def serve(sock: socket.socket) -> None:
        read_request(Reader(sock))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()  # RST
    pools = UpstreamPools()
    with Backend(serve) as be, proxy(lb(pools, be.url), pools=pools) as px:
        resp = exchange(px.port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert resp.status == 502


def test_backend_dying_mid_body_aborts_the_client_connection() -> None:
    def serve(sock: socket.socket) -> None:
        read_request(Reader(sock))
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        sock.close()
    pools = UpstreamPools()
    with Backend(serve) as be, proxy(lb(pools, be.url), pools=pools) as px, px.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        r = Reader(sock)
        with pytest.raises(EOFError):
            read_response(r)


def test_response_header_timeout_gives_504() -> None:
    def serve(sock: socket.socket) -> None:
        read_request(Reader(sock))
        sock.recv(1)  # never answers; returns when the proxy closes
    pools = UpstreamPools()
    transport = TransportSettings(response_header_timeout=0.3)
    with Backend(serve) as be, proxy(lb(pools, be.url, transport=transport), pools=pools) as px:
        started = time.monotonic()
        resp = exchange(px.port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert resp.status == 504
        assert resp.body == b"Gateway Timeout"
        assert 0.25 <= time.monotonic() - started < 5


def test_dial_timeout_gives_504() -> None:
    # A listener whose accept queue is full: further SYNs are dropped, connect() hangs.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(8):
        s = socket.socket()
        s.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            s.connect(("127.0.0.1", port))
        fillers.append(s)
    pools = UpstreamPools()
    transport = TransportSettings(dial_timeout=0.3)
    try:
        with proxy(lb(pools, f"http://127.0.0.1:{port}", transport=transport), pools=pools) as px:
            resp = exchange(px.port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            assert resp.status == 504
    finally:
        for s in fillers:
            s.close()
        listener.close()


def test_empty_load_balancer_answers_503() -> None:
    pools = UpstreamPools()
    with proxy(lb(pools), pools=pools) as px:
        resp = exchange(px.port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert resp.status == 503
        assert resp.body == b"no available server\n"


def test_read_timeout_closes_a_slowloris_head() -> None:
    with proxy(Responder(), settings(read_timeout=0.3, idle_timeout=5)) as px, px.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n")
        started = time.monotonic()
        r = Reader(sock)
        assert r.at_eof(timeout=5)
        assert 0.2 <= time.monotonic() - started < 3


def test_read_timeout_covers_the_body_and_drops_the_upstream_request() -> None:
    upstream_closed = threading.Event()

    def serve(sock: socket.socket) -> None:
        r = Reader(sock)
        r.readline()
        with contextlib.suppress(OSError):
            while sock.recv(65536):
                pass
        upstream_closed.set()

    pools = UpstreamPools()
    with Backend(serve) as be, proxy(lb(pools, be.url), settings(read_timeout=0.4), pools=pools) as px, \
            px.connect() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc")
        assert Reader(sock).at_eof(timeout=5)
        assert upstream_closed.wait(5)


def test_idle_timeout_closes_idle_keep_alive_connections() -> None:
    with proxy(Responder(), settings(idle_timeout=0.3, read_timeout=5)) as px, px.connect() as sock:
        r = Reader(sock)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert read_response(r).status == 200
        started = time.monotonic()
        assert r.at_eof(timeout=5)
        assert 0.2 <= time.monotonic() - started < 3


def test_first_request_must_arrive_within_read_timeout() -> None:
    with proxy(Responder(), settings(read_timeout=0.3, idle_timeout=30)) as px, px.connect() as sock:
        assert Reader(sock).at_eof(timeout=5)


def test_write_timeout_closes_a_never_finishing_response() -> None:
    def serve(sock: socket.socket) -> None:
        read_request(Reader(sock))
        sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n")
        sock.recv(1)
    pools = UpstreamPools()
    with Backend(serve) as be, proxy(lb(pools, be.url), settings(write_timeout=0.4), pools=pools) as px, \
            px.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        r = Reader(sock)
        with pytest.raises(EOFError):
            read_response(r)


def test_keep_alive_max_requests_sends_connection_close() -> None:
    with proxy(Responder(), settings(keep_alive_max_requests=3)) as px, px.connect() as sock:
        r = Reader(sock)
        for i in range(3):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            resp = read_response(r)
            assert (resp.get("connection") == "close") == (i == 2)
        assert r.at_eof()


def test_keep_alive_max_time_sends_connection_close() -> None:
    with proxy(Responder(), settings(keep_alive_max_time=0.2)) as px, px.connect() as sock:
        r = Reader(sock)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert read_response(r).get("connection") is None

        def closes() -> bool:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            return read_response(r).get("connection") == "close"
        assert poll(closes, interval=0.05)


def test_connection_close_from_client_is_honoured() -> None:
    with proxy(Responder()) as px, px.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        r = Reader(sock)
        assert read_response(r).get("connection") == "close"
        assert r.at_eof()


def test_local_answer_discards_an_unread_body_and_keeps_the_connection() -> None:
    with proxy(Responder(404, b"nope")) as px, px.connect() as sock:
        r = Reader(sock)
        sock.sendall(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n")
        assert read_response(r).status == 404
        sock.sendall(b"hello")  # the body arrives after the answer: discarded
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert read_response(r).status == 404


def test_backend_answering_before_the_body_ends() -> None:
    def answer(req: Message) -> bytes:
        return response(413, b"too big", reason="Request Entity Too Large")
    pools = UpstreamPools()
    with http_backend(answer) as be, proxy(lb(pools, be.url), pools=pools) as px:
        resp = exchange(px.port, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")
        assert resp.status == 413
