"""Streaming with backpressure, 100-continue and WebSocket tunnelling, over real sockets."""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator

import pytest

from ferryman.upstream import UpstreamPools
from tests.integration.dataplane.dp_support import (
    Backend,
    Message,
    Reader,
    exchange,
    lb,
    poll,
    proxy,
    read_request,
    read_response,
    response,
)

SIZE = 10 * 1024 * 1024
CHUNK = bytes(range(256)) * 256  # 64 KiB, reused: the test side allocates nothing per chunk
MEMORY_BOUND = 3 * 1024 * 1024


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def _wait_until_stalled(progress: list[int], total: int) -> None:
    """Poll until the sender finished or made no progress for a while (bounded by a deadline)."""
    deadline = time.monotonic() + 15
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline and progress[0] < total:
        if progress[0] != last:
            last, since = progress[0], time.monotonic()
        elif time.monotonic() - since > 0.5:
            return
        time.sleep(0.02)


def _small_buffers(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)


@pytest.mark.usefixtures("traced")
def test_10mb_download_to_a_slow_reader_stays_bounded() -> None:
    sent = [0]

    def serve(sock: socket.socket) -> None:
        _small_buffers(sock)
        read_request(Reader(sock))
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % SIZE)
        while sent[0] < SIZE:
            sock.sendall(CHUNK)
            sent[0] += len(CHUNK)
        sock.recv(1)

    pools = UpstreamPools()
    with Backend(serve) as be, proxy(lb(pools, be.url), pools=pools) as px:
        sock = socket.socket()
        _small_buffers(sock)
        sock.settimeout(20)
        sock.connect(("127.0.0.1", px.port))
        with sock:
            tracemalloc.reset_peak()
            sock.sendall(b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
            _wait_until_stalled(sent, SIZE)  # the client reads nothing meanwhile
            _, peak = tracemalloc.get_traced_memory()
            assert peak < MEMORY_BOUND, f"proxy buffered {peak} bytes for a slow reader"
            resp = read_response(Reader(sock))
            assert resp.status == 200
            assert len(resp.body) == SIZE
            assert hashlib.sha256(resp.body).digest() == hashlib.sha256(CHUNK * (SIZE // len(CHUNK))).digest()


@pytest.mark.usefixtures("traced")
def test_10mb_upload_to_a_slow_backend_stays_bounded() -> None:
    received = threading.Event()
    reading = threading.Event()
    digest: list[bytes] = []

    def serve(sock: socket.socket) -> None:
        _small_buffers(sock)
        r = Reader(sock)
        start = r.readline()
        assert start.startswith(b"PUT")
        received.set()
        assert reading.wait(20)  # slow backend: reads nothing until told to
        while r.readline() not in (b"\r\n", b"\n"):
            pass
        h = hashlib.sha256()
        left = SIZE
        while left:
            data = r.readexact(min(left, 65536))
            h.update(data)
            left -= len(data)
        digest.append(h.digest())
        sock.sendall(response(body=h.hexdigest().encode()))

    pools = UpstreamPools()
    with Backend(serve) as be, proxy(lb(pools, be.url), pools=pools) as px:
        sock = socket.socket()
        _small_buffers(sock)
        sock.settimeout(20)
        sock.connect(("127.0.0.1", px.port))
        sent = [0]

        def upload() -> None:
            sock.sendall(b"PUT /up HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % SIZE)
            while sent[0] < SIZE:
                sock.sendall(CHUNK)
                sent[0] += len(CHUNK)

        with sock:
            tracemalloc.reset_peak()
            uploader = threading.Thread(target=upload, daemon=True)
            uploader.start()
            assert received.wait(10)
            _wait_until_stalled(sent, SIZE)
            _, peak = tracemalloc.get_traced_memory()
            assert peak < MEMORY_BOUND, f"proxy buffered {peak} bytes for a slow backend"
            reading.set()
            uploader.join(20)
            resp = read_response(Reader(sock))
            expected = hashlib.sha256(CHUNK * (SIZE // len(CHUNK))).hexdigest().encode()
            assert resp.body == expected


def test_expect_100_continue_is_forwarded() -> None:
    def serve(sock: socket.socket) -> None:
        r = Reader(sock)
        start = r.readline()
        headers = []
        while (line := r.readline()) not in (b"\r\n", b"\n"):
            headers.append(line.lower())
        assert start.startswith(b"POST")
        assert b"expect: 100-continue\r\n" in headers
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = r.readexact(5)
        sock.sendall(response(body=b"got " + body))

    pools = UpstreamPools()
    with Backend(serve) as be, proxy(lb(pools, be.url), pools=pools) as px, px.connect() as sock:
        r = Reader(sock)
        sock.sendall(b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        interim = read_response(r)
        assert interim.status == 100
        sock.sendall(b"hello")
        final = read_response(r)
        assert final.status == 200 and final.body == b"got hello"
        # and the connection is reusable
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert poll(lambda: be.connections >= 1)


def test_expect_100_continue_refused_by_backend_closes_after_answer() -> None:
    def answer(req: Message) -> bytes:
        return response(401, b"no", reason="Unauthorized")

    def serve(sock: socket.socket) -> None:
        r = Reader(sock)
        while r.readline() not in (b"\r\n", b"\n"):
            pass
        sock.sendall(answer(Message("", [])))
        sock.recv(1)

    pools = UpstreamPools()
    with Backend(serve) as be, proxy(lb(pools, be.url), pools=pools) as px, px.connect() as sock:
        r = Reader(sock)
        sock.sendall(b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        final = read_response(r)
        assert final.status == 401
        assert final.get("connection") == "close"
        assert r.at_eof()


# --------------------------------------------------------------------------------------------
# WebSocket

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _ws_backend(log: list[Message]) -> Backend:
    def serve(sock: socket.socket) -> None:
        r = Reader(sock)
        req = read_request(r)
        log.append(req)
        if req.target == "/refuse":
            sock.sendall(response(400, b"no upgrade", reason="Bad Request"))
            return
        key = (req.get("sec-websocket-key") or "").encode()
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
        proto = b"h2c" if req.target == "/wrong" else b"websocket"
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + proto + b"\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + b"server-hello")
        if r.buf:
            sock.sendall(r.buf)
        while True:
            data = sock.recv(65536)
            if not data:
                return
            sock.sendall(data)  # echo
    return Backend(serve)


UPGRADE = (b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def test_websocket_echo_through_the_proxy() -> None:
    log: list[Message] = []
    pools = UpstreamPools()
    with _ws_backend(log) as be, proxy(lb(pools, be.url), pools=pools) as px, px.connect() as sock:
        frame = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"  # masked "Hello"
        sock.sendall(UPGRADE + frame)  # early data right after the request
        r = Reader(sock)
        head = read_response(r)
        assert head.status == 101
        assert head.get("upgrade") == "websocket"
        assert head.get("connection") == "Upgrade"
        assert head.get("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        assert r.readexact(len(b"server-hello")) == b"server-hello"
        assert r.readexact(len(frame)) == frame
        big = CHUNK * 16
        sock.sendall(big)
        assert r.readexact(len(big)) == big
        req = log[0]
        raw_names = {n for n, _ in req.headers}
        assert "Sec-WebSocket-Key" in raw_names  # Go/Traefik casing for picky servers
        assert req.get("x-forwarded-proto") == "ws"
        assert req.get("connection") == "Upgrade" and req.get("upgrade") == "websocket"
        sock.shutdown(socket.SHUT_WR)
        assert r.at_eof()


def test_upgrade_refused_by_backend_is_a_normal_response_then_close() -> None:
    log: list[Message] = []
    pools = UpstreamPools()
    with _ws_backend(log) as be, proxy(lb(pools, be.url), pools=pools) as px, px.connect() as sock:
        sock.sendall(UPGRADE.replace(b"/ws", b"/refuse"))
        r = Reader(sock)
        resp = read_response(r)
        assert resp.status == 400 and resp.body == b"no upgrade"
        assert r.at_eof()


def test_backend_switching_to_another_protocol_is_502() -> None:
    log: list[Message] = []
    pools = UpstreamPools()
    with _ws_backend(log) as be, proxy(lb(pools, be.url), pools=pools) as px:
        resp = exchange(px.port, UPGRADE.replace(b"/ws", b"/wrong"))
        assert resp.status == 502


def test_streamed_response_chunks_reach_the_client_before_the_end() -> None:
    release = threading.Event()

    def serve(sock: socket.socket) -> None:
        read_request(Reader(sock))
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"6\r\nevent1\r\n")
        assert release.wait(10)
        sock.sendall(b"6\r\nevent2\r\n0\r\n\r\n")

    pools = UpstreamPools()
    with Backend(serve) as be, proxy(lb(pools, be.url), pools=pools) as px, px.connect() as sock:
        sock.sendall(b"GET /events HTTP/1.1\r\nHost: h\r\n\r\n")
        r = Reader(sock)
        assert r.readline() == b"HTTP/1.1 200 OK\r\n"
        while r.readline() != b"\r\n":
            pass
        assert r.readline() == b"6\r\n" and r.readline() == b"event1\r\n"  # before the backend ends
        release.set()
        assert r.readline() == b"6\r\n" and r.readline() == b"event2\r\n"
        assert r.readline() == b"0\r\n" and r.readline() == b"\r\n"


def test_client_disconnect_mid_response_drops_the_upstream_connection() -> None:
    closed = threading.Event()

    def serve(sock: socket.socket) -> None:
        read_request(Reader(sock))
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\npartial")
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass
        closed.set()

    pools = UpstreamPools()
    with Backend(serve) as be, proxy(lb(pools, be.url), pools=pools) as px:
        with px.connect() as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            Reader(sock).readline()
        assert closed.wait(10)


UPGRADE_WITH_BODY = (b"POST /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                     b"Content-Length: 5\r\n\r\nhello")


def test_upgrade_request_with_a_body_switches_after_the_body() -> None:
    log: list[Message] = []
    pools = UpstreamPools()
    with _ws_backend(log) as be, proxy(lb(pools, be.url), pools=pools) as px, px.connect() as sock:
        sock.sendall(UPGRADE_WITH_BODY + b"tunnel-bytes")
        r = Reader(sock)
        head = read_response(r)
        assert head.status == 101
        assert r.readexact(len(b"server-hello")) == b"server-hello"
        assert r.readexact(len(b"tunnel-bytes")) == b"tunnel-bytes"  # echoed through the tunnel
        assert log[0].body == b"hello" and log[0].get("content-length") == "5"
        sock.sendall(b"more")
        assert r.readexact(4) == b"more"
        sock.shutdown(socket.SHUT_WR)
        assert r.at_eof()


def test_upgrade_request_with_a_body_refused_by_backend() -> None:
    log: list[Message] = []
    pools = UpstreamPools()
    with _ws_backend(log) as be, proxy(lb(pools, be.url), pools=pools) as px, px.connect() as sock:
        sock.sendall(UPGRADE_WITH_BODY.replace(b"/ws", b"/refuse"))
        r = Reader(sock)
        resp = read_response(r)
        assert resp.status == 400 and resp.body == b"no upgrade"
        assert log[0].body == b"hello"
        assert r.at_eof()


def test_chunked_upgrade_request_is_refused_not_hung() -> None:
    log: list[Message] = []
    pools = UpstreamPools()
    raw = UPGRADE_WITH_BODY.replace(b"Content-Length: 5\r\n\r\nhello", b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    with _ws_backend(log) as be, proxy(lb(pools, be.url), pools=pools) as px:
        resp = exchange(px.port, raw)
        assert resp.status in (400, 502)
