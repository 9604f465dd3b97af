"""HTTP/2 from clients: h2c prior knowledge, TLS with ALPN h2, streams, flow control both ways,
RST_STREAM, GOAWAY. Real sockets; curl, h2load and the ``h2`` library as clients."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest
import yaml
from h2.errors import ErrorCodes
from h2.events import DataReceived, StreamEnded

from ferryman.server.h2 import HIGH_WATER
from ferryman.upstream import UpstreamPools
from tests.integration.dataplane.dp_support import (
    DEADLINE,
    Message,
    Responder,
    Route,
    Routes,
    http_backend,
    lb,
    poll,
    proxy,
    response,
    settings,
)
from tests.integration.h2.h2_support import BodyCounter, Gate, Generator, H2Client
from tests.integration.tls.pki import CA
from tests.integration.tls.tls_harness import client_context, harness


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "--max-time", str(DEADLINE), *args],
                          capture_output=True, text=True, timeout=DEADLINE * 2, check=False)


def test_h2c_prior_knowledge_through_a_backend_with_curl() -> None:
    def answer(req: Message) -> bytes:
        seen = f"{req.method} {req.target} host={req.get('host')} xfp={req.get('x-forwarded-proto')} "
        seen += f"cookie={req.get('cookie')}"
        return response(body=seen.encode(), headers={"X-Backend": "yes", "Connection": "keep-alive"})

    with http_backend(answer) as backend:
        pools = UpstreamPools()
        with proxy(lb(pools, backend.url), pools=pools) as p:
            url = f"http://127.0.0.1:{p.port}/a/../b?q=1"
            r = curl("--http2-prior-knowledge", "--path-as-is", "-H", "Host: app.test", "-b", "a=1; b=2",
                     "-D", "-", "-w", "\n%{http_version}", url)
            assert r.returncode == 0, r.stderr
            head, _, rest = r.stdout.partition("\n\n")
            assert head.startswith("HTTP/2 200")
            assert "x-backend: yes" in head.lower() and "connection" not in head.lower()
            body, _, version = rest.rpartition("\n")
            assert version == "2", r.stdout
            assert body == "GET /b?q=1 host=app.test xfp=http cookie=a=1; b=2"
            # the same port still speaks HTTP/1.1
            r = curl("-w", "\n%{http_version}", f"http://127.0.0.1:{p.port}/")
            assert r.returncode == 0 and r.stdout.endswith("\n1.1"), r


def test_h2c_upgrade_with_curl() -> None:
    def answer(req: Message) -> bytes:
        seen = f"{req.method} {req.target} upgrade={req.get('upgrade')} settings={req.get('http2-settings')}"
        return response(body=seen.encode())

    with http_backend(answer) as backend:
        pools = UpstreamPools()
        with proxy(lb(pools, backend.url), pools=pools) as p:
            urls = [f"http://127.0.0.1:{p.port}/first", f"http://127.0.0.1:{p.port}/second"]
            r = curl("--http2", "-w", " %{http_version}\n", *urls)
            assert r.returncode == 0, r.stderr
            # the upgraded request is answered as stream 1, the next one on the same connection
            assert r.stdout.splitlines() == ["GET /first upgrade=None settings=None 2",
                                             "GET /second upgrade=None settings=None 2"]


def test_h2_over_tls_with_alpn_and_curl(tmp_path: Path) -> None:
    ca = CA()
    pair = ca.issue("a.example.com", dns=("a.example.com",))
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(ca.pem)
    config = yaml.safe_dump({
        "http": {"routers": {
            "secure": {"rule": "Host(`a.example.com`)", "service": "echo@internal", "tls": {}}}},
        "tls": {"certificates": [{"certFile": pair.cert_pem, "keyFile": pair.key_pem}]},
    })
    with harness(config) as h:
        base = ["--cacert", str(ca_file), "--resolve", f"a.example.com:{h.port}:127.0.0.1",
                f"https://a.example.com:{h.port}/"]
        r = curl("--http2", "-w", "\n%{http_version}", *base)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "router=secure@file tls=True scheme=https client=127.0.0.1\n2"
        r = curl("--http1.1", "-w", "\n%{http_version}", *base)
        assert r.returncode == 0 and r.stdout.endswith("\n1.1"), r
        # the h2 library over TLS: the unknown Host gets the 404 of the TLS table
        client = H2Client(h.port, tls=client_context(ca.pem), sni="a.example.com")
        try:
            assert client.sock.selected_alpn_protocol() == "h2"  # type: ignore[attr-defined]
            ok = client.request("/", authority="a.example.com")
            missing = client.request("/", authority="other.example.com")
            assert client.response(ok)[0] == 200
            assert client.response(missing)[:3:2] == (404, b"404 page not found\n")
        finally:
            client.close()


def test_concurrent_streams_interleave_slow_and_fast() -> None:
    gate = Gate(b"slow answer")
    routes = Routes(Route("slow", gate, prefix="/slow"), Route("fast", Responder(200, b"fast answer")))
    with proxy(routes) as p:
        client = H2Client(p.port)
        try:
            slow = client.request("/slow")
            fast = [client.request(f"/fast/{i}") for i in range(20)]
            for sid in fast:
                assert client.response(sid) [::2] == (200, b"fast answer")
            assert not client.ended(slow)
            assert p.lt.call(lambda: len(gate.waiting)) == 1
            p.lt.call(gate.release)
            assert client.response(slow)[::2] == (200, b"slow answer")
            ends = [e.stream_id for e in client.events if isinstance(e, StreamEnded)]
            assert ends[-1] == slow and sorted(ends[:-1]) == fast
        finally:
            client.close()


def test_max_concurrent_streams_is_announced() -> None:
    with proxy(Responder(), settings(http2_max_concurrent_streams=7)) as p:
        client = H2Client(p.port)
        try:
            client.until(lambda: client.conn.remote_settings.max_concurrent_streams == 7)
        finally:
            client.close()


def test_large_response_with_a_small_client_window_keeps_memory_bounded() -> None:
    total = 8 * 1024 * 1024
    gen = Generator(total)
    with proxy(gen) as p:
        client = H2Client(p.port, window=16384, auto_ack=False)
        try:
            sid = client.request("/big")
            # The client gives back no window: the server may send 16 KiB on the stream, 64 KiB on
            # the connection at most, and must pause the producer past its high-water mark.
            client.until(lambda: client.received(sid) >= 16384)
            assert poll(lambda: p.lt.call(lambda: gen.paused))
            produced = p.lt.call(lambda: gen.produced)
            assert produced <= 16384 + HIGH_WATER + gen.chunk
            assert client.received(sid) == 16384
            # now read everything, acknowledging as we go
            client.auto_ack = True
            for e in client.events:
                if isinstance(e, DataReceived):
                    client.conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
            client.flush()
            status, headers, body = client.response(sid)
            assert status == 200 and headers[b"content-length"] == str(total).encode()
            assert len(body) == total
            assert gen.pauses >= 1
        finally:
            client.close()


def test_large_request_body_through_a_backend() -> None:
    def answer(req: Message) -> bytes:
        return response(body=str(len(req.body)).encode())

    size = 5 * 1024 * 1024 + 123
    with http_backend(answer) as backend:
        pools = UpstreamPools()
        with proxy(lb(pools, backend.url), pools=pools) as p:
            client = H2Client(p.port)
            try:
                sid = client.request("/upload", method="POST", body=b"b" * size,
                                     headers=[("content-length", str(size))])
                assert client.response(sid)[::2] == (200, str(size).encode())
                # and without a content-length (chunked to the backend)
                sid = client.request("/upload", method="POST", body=b"c" * size)
                assert client.response(sid)[::2] == (200, str(size).encode())
            finally:
                client.close()


def test_request_body_backpressure_reaches_the_client() -> None:
    counter = BodyCounter()
    with proxy(counter) as p:
        client = H2Client(p.port)
        try:
            size = 3 * 1024 * 1024
            sid = client.request("/", method="POST", body=b"z" * size)
            assert client.response(sid)[::2] == (200, str(size).encode())
            assert counter.pauses > 0
        finally:
            client.close()


def test_client_reset_abandons_the_response_and_the_connection_keeps_serving() -> None:
    endless = Generator(-1)
    routes = Routes(Route("endless", endless, prefix="/endless"), Route("ok", Responder(200, b"still here")))
    with proxy(routes) as p:
        client = H2Client(p.port)
        try:
            sid = client.request("/endless")
            client.until(lambda: client.received(sid) > 0)
            client.conn.reset_stream(sid, ErrorCodes.CANCEL)
            client.flush()
            assert poll(lambda: p.lt.call(lambda: endless.lost))
            after = client.request("/ok")
            assert client.response(after)[::2] == (200, b"still here")
        finally:
            client.close()


def test_client_reset_abandons_the_upstream_request() -> None:
    closed = threading.Event()

    def serve(sock: socket.socket) -> None:
        sock.recv(65536)
        sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            while True:
                sock.sendall(b"4000\r\n" + b"y" * 0x4000 + b"\r\n")
        except OSError:
            closed.set()

    from tests.integration.dataplane.dp_support import Backend

    with Backend(serve) as backend:
        pools = UpstreamPools()
        routes = Routes(Route("stream", lb(pools, backend.url), prefix="/stream"),
                        Route("ok", Responder(200, b"still here")))
        with proxy(routes, pools=pools) as p:
            client = H2Client(p.port)
            try:
                sid = client.request("/stream")
                client.until(lambda: client.received(sid) > 0)
                client.conn.reset_stream(sid, ErrorCodes.CANCEL)
                client.flush()
                assert closed.wait(DEADLINE), "the upstream connection was not abandoned"
                after = client.request("/ok")
                assert client.response(after)[::2] == (200, b"still here")
            finally:
                client.close()


def test_goaway_on_shutdown_lets_open_streams_finish() -> None:
    gate = Gate(b"finished after goaway")
    with proxy(gate, settings(grace_timeout=DEADLINE)) as p:
        client = H2Client(p.port)
        try:
            sid = client.request("/")
            assert poll(lambda: p.lt.call(lambda: len(gate.waiting)) == 1)
            import asyncio

            done = asyncio.run_coroutine_threadsafe(p.ep.shutdown(), p.lt.loop)
            client.until(lambda: client.goaway() is not None)
            goaway = client.goaway()
            assert goaway == (sid, ErrorCodes.NO_ERROR)
            assert not client.ended(sid)
            p.lt.call(gate.release)
            assert client.response(sid)[::2] == (200, b"finished after goaway")
            done.result(DEADLINE)
            client.until(lambda: client.closed)
        finally:
            client.close()


def test_keep_alive_max_requests_sends_goaway() -> None:
    with proxy(Responder(200, b"ok"), settings(keep_alive_max_requests=3)) as p:
        client = H2Client(p.port)
        try:
            sids = [client.request("/") for _ in range(3)]
            for sid in sids:
                assert client.response(sid)[::2] == (200, b"ok")
            client.until(lambda: client.goaway() is not None)
            goaway = client.goaway()
            assert goaway == (sids[-1], ErrorCodes.NO_ERROR)
            client.until(lambda: client.closed)
        finally:
            client.close()


def test_idle_timeout_sends_goaway_and_closes() -> None:
    with proxy(Responder(), settings(idle_timeout=0.2)) as p:
        client = H2Client(p.port)
        try:
            assert client.response(client.request("/"))[0] == 200
            client.until(lambda: client.closed)
            assert client.goaway() is not None
        finally:
            client.close()


def test_malformed_requests() -> None:
    with proxy(Responder()) as p:
        client = H2Client(p.port)
        try:
            # a fragment in :path -> 400; the connection keeps serving
            bad = client.request("/a#frag")
            assert client.response(bad)[0] == 400
            assert client.response(client.request("/"))[0] == 200
        finally:
            client.close()
        # a connection-specific header: h2 refuses the whole connection (PROTOCOL_ERROR)
        client = H2Client(p.port)
        try:
            client.conn.config.validate_outbound_headers = False
            client.conn.config.normalize_outbound_headers = False
            client.request("/", headers=[("connection", "keep-alive")])
            client.until(lambda: client.goaway() is not None or client.closed)
            goaway = client.goaway()
            assert goaway is None or goaway[1] == ErrorCodes.PROTOCOL_ERROR
        finally:
            client.close()


@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load not installed")
def test_h2load_completes_without_errors() -> None:
    with proxy(Responder(200, b"hello h2load")) as p:
        r = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "10", f"http://127.0.0.1:{p.port}/"],
                           capture_output=True, text=True, timeout=60, check=False)
        assert r.returncode == 0, r.stderr
        m = re.search(r"requests: 2000 total, 2000 started, 2000 done, (\d+) succeeded, (\d+) failed, "
                      r"(\d+) errored", r.stdout)
        assert m is not None, r.stdout
        assert m.groups() == ("2000", "0", "0"), r.stdout
        assert "Application protocol: h2c" in r.stdout


@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load not installed")
def test_h2load_over_tls_completes_without_errors() -> None:
    ca = CA()
    pair = ca.issue("a.example.com", dns=("a.example.com",))
    config = yaml.safe_dump({
        "http": {"routers": {"secure": {"rule": "PathPrefix(`/`)", "service": "echo@internal", "tls": {}}}},
        "tls": {"certificates": [{"certFile": pair.cert_pem, "keyFile": pair.key_pem}]},
    })
    with harness(config) as h:
        r = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "10", f"https://127.0.0.1:{h.port}/"],
                           capture_output=True, text=True, timeout=60, check=False)
        assert r.returncode == 0, r.stderr
        assert "Application protocol: h2\n" in r.stdout, r.stdout
        assert "2000 succeeded, 0 failed, 0 errored" in r.stdout, r.stdout
