"""compress through a real entry point and backend: curl ``--compressed`` decodes what ferryman sends
(gzip, br and zstd when this curl has them), Python's decoders too, small and already encoded
responses pass untouched, HEAD/204/304 carry no body, and a 10 MB streamed response to a slow
reader is compressed chunk by chunk with the backend held back (bounded memory)."""

from __future__ import annotations

import gzip
import hashlib
import random
import shutil
import socket
import subprocess
import tracemalloc
from collections.abc import Iterator

import brotli  # type: ignore[import-untyped]
import pytest
import zstandard

from ferryman.middlewares import build_middleware
from ferryman.upstream import UpstreamPools
from tests.integration.dataplane.dp_support import (
    Backend,
    Message,
    Proxy,
    Reader,
    exchange,
    http_backend,
    lb,
    proxy,
    read_request,
    read_response,
    response,
)
from tests.unit.middlewares.conformance_support import mw

PAGE = b"<!DOCTYPE html><html><body>" + b"<p>hello compressed world</p>" * 200 + b"</body></html>"
SMALL = b"<p>small</p>"


def _answer(req: Message) -> bytes:
    if req.target == "/small":
        return response(body=SMALL, headers={"Content-Type": "text/html"})
    if req.target == "/encoded":
        return response(body=gzip.compress(PAGE), headers={"Content-Type": "text/html", "Content-Encoding": "gzip"})
    if req.target == "/chunked":
        half = len(PAGE) // 2
        return (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
                + b"%x\r\n" % half + PAGE[:half] + b"\r\n"
                + b"%x\r\n" % (len(PAGE) - half) + PAGE[half:] + b"\r\n0\r\n\r\n")
    if req.target == "/204":
        return b"HTTP/1.1 204 No Content\r\n\r\n"
    if req.target == "/304":
        return b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"
    return response(body=PAGE, headers={"Content-Type": "text/html", "ETag": '"v1"'})


@pytest.fixture
def compressing() -> Iterator[Proxy]:
    pools = UpstreamPools()
    with http_backend(_answer) as backend:
        handler = build_middleware("cz", mw("compress", {}), lb(pools, backend.url))
        with proxy(handler, pools=pools) as px:
            yield px


def _get(port: int, path: str, accept: str | None, method: str = "GET") -> Message:
    extra = f"Accept-Encoding: {accept}\r\n" if accept is not None else ""
    return exchange(port, f"{method} {path} HTTP/1.1\r\nHost: h\r\n{extra}\r\n".encode(), head=method == "HEAD")


def _curl_features() -> str:
    curl = shutil.which("curl")
    if curl is None:
        return ""
    return subprocess.run([curl, "-V"], capture_output=True, text=True, check=False).stdout


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
def test_curl_compressed_decodes_each_encoding(compressing: Proxy, encoding: str) -> None:
    features = _curl_features()
    lib = {"gzip": "libz", "br": "brotli", "zstd": "zstd"}[encoding]
    if lib not in features.lower():
        pytest.skip(f"curl without {encoding} support")
    out = subprocess.run(
        ["curl", "-sS", "--compressed", "-H", f"Accept-Encoding: {encoding}", "-D", "-", "-o", "-",
         f"http://127.0.0.1:{compressing.port}/page"],
        capture_output=True, check=True, timeout=10).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    assert body == PAGE
    lower = head.lower()
    assert f"content-encoding: {encoding}".encode() in lower
    assert b"vary: accept-encoding" in lower and b"content-length" not in lower


def test_python_decoders_and_wire_framing(compressing: Proxy) -> None:
    resp = _get(compressing.port, "/page", "gzip, deflate, br, zstd")  # gzip first by server priority
    assert resp.get("content-encoding") == "gzip" and resp.chunked and resp.get("content-length") is None
    assert gzip.decompress(resp.body) == PAGE and resp.get("etag") == '"v1"'
    resp = _get(compressing.port, "/page", "gzip;q=0.5, br;q=0.9")
    assert resp.get("content-encoding") == "br" and brotli.decompress(resp.body) == PAGE
    resp = _get(compressing.port, "/chunked", "zstd")
    assert resp.get("content-encoding") == "zstd"
    assert zstandard.ZstdDecompressor().decompressobj().decompress(resp.body) == PAGE


def test_what_is_left_alone(compressing: Proxy) -> None:
    resp = _get(compressing.port, "/small", "gzip")
    assert resp.get("content-encoding") is None and resp.body == SMALL
    assert resp.get("content-length") == str(len(SMALL)) and resp.get("vary") == "Accept-Encoding"
    resp = _get(compressing.port, "/encoded", "br")
    assert resp.get("content-encoding") == "gzip" and gzip.decompress(resp.body) == PAGE
    resp = _get(compressing.port, "/page", None)
    assert resp.get("content-encoding") is None and resp.body == PAGE and resp.get("vary") is None
    resp = _get(compressing.port, "/page", "identity")
    assert resp.get("content-encoding") is None and resp.body == PAGE
    resp = _get(compressing.port, "/page", "gzip", method="HEAD")
    assert resp.status == 200 and resp.get("content-encoding") is None
    assert resp.get("content-length") == str(len(PAGE))
    for path, status in (("/204", 204), ("/304", 304)):
        resp = _get(compressing.port, path, "gzip")
        assert resp.status == status and resp.get("content-encoding") is None and resp.body == b""


SIZE = 10 * 1024 * 1024
MEMORY_BOUND = 3 * 1024 * 1024
# Random 64 KiB repeated: gzip's 32 KiB window cannot see the repetition, so the output is as large
# as the input and the slow client really pushes back.
CHUNK = random.Random(7).randbytes(64 * 1024)


def _small_buffers(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)


def test_10mb_streamed_response_compressed_for_a_slow_reader_stays_bounded() -> None:
    import time

    sent = [0]

    def serve(sock: socket.socket) -> None:
        _small_buffers(sock)
        read_request(Reader(sock))
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        while sent[0] < SIZE:
            sock.sendall(b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n")
            sent[0] += len(CHUNK)
        sock.sendall(b"0\r\n\r\n")
        sock.recv(1)

    pools = UpstreamPools()
    tracemalloc.start()
    try:
        with Backend(serve) as be, \
                proxy(build_middleware("cz", mw("compress", {}), lb(pools, be.url)), pools=pools) as px:
            sock = socket.socket()
            _small_buffers(sock)
            sock.settimeout(20)
            sock.connect(("127.0.0.1", px.port))
            with sock:
                tracemalloc.reset_peak()
                sock.sendall(b"GET /big HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\n\r\n")
                deadline = time.monotonic() + 15
                last, since = -1, time.monotonic()
                while time.monotonic() < deadline and sent[0] < SIZE:  # the client reads nothing meanwhile
                    if sent[0] != last:
                        last, since = sent[0], time.monotonic()
                    elif time.monotonic() - since > 0.5:
                        break
                    time.sleep(0.02)
                assert sent[0] < SIZE, "the backend was never held back"
                _, peak = tracemalloc.get_traced_memory()
                assert peak < MEMORY_BOUND, f"proxy buffered {peak} bytes for a slow reader"
                resp = read_response(Reader(sock))
                assert resp.status == 200 and resp.get("content-encoding") == "gzip"
                body = gzip.decompress(resp.body)
                assert len(body) == SIZE
                assert hashlib.sha256(body).digest() == hashlib.sha256(CHUNK * (SIZE // len(CHUNK))).digest()
    finally:
        tracemalloc.stop()
