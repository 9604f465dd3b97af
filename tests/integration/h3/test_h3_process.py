"""HTTP/3 through the real ferryman process: aioquic's client and curl_cffi (libcurl + ngtcp2) over
QUIC on the entry point's port; certificate chosen by SNI, only TLS routers, Alt-Svc on the TCP
side, streaming bodies, trailers, GOAWAY on shutdown."""

from __future__ import annotations

import signal
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import StartFerryman
from tests.integration.tls.pki import CA
from tests.support.h3client import H3Request, h3_requests


def _setup(tmp_path: Path, backend: int, http3: dict[str, Any]) -> tuple[CA, Path, dict[str, Any], dict[str, Any]]:
    ca = CA()
    certs = tmp_path / "certs"
    certs.mkdir()
    ca_file = certs / "ca.pem"
    ca_file.write_text(ca.pem)
    app = ca.issue("app.test", dns=("app.test",)).write(certs, "app")
    other = ca.issue("other.test", dns=("other.test",)).write(certs, "other")
    static = {"entryPoints": {"websecure": {"address": "127.0.0.1:0", "http3": http3}}}
    dynamic = {
        "http": {
            "routers": {
                "app": {"rule": "Host(`app.test`) || Host(`other.test`)", "service": "hello", "tls": {}},
                "plain": {"rule": "PathPrefix(`/plain`)", "service": "hello"},
            },
            "services": {"hello": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{backend}"}]}}},
        },
        "tls": {"certificates": [{"certFile": str(app[0]), "keyFile": str(app[1])},
                                 {"certFile": str(other[0]), "keyFile": str(other[1])}]},
    }
    return ca, ca_file, static, dynamic


def _peer_cn(port: int, sni: str, ca_pem: str) -> str:
    from tests.integration.tls.tls_harness import client_context, https_get

    return https_get(port, sni, client_context(ca_pem)).peer_cn


def test_http3_with_aioquic_client(ferryman: StartFerryman, hello: Callable[[str], int], tmp_path: Path) -> None:
    backend = hello("v1")
    ca, _, static, dynamic = _setup(tmp_path, backend, {})
    fm = ferryman(static, dynamic)
    port = fm.ports["websecure"]

    # Alt-Svc on TLS responses of the TCP side (not on plain HTTP), like Traefik
    import http.client
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=_ctx(ca.pem, "app.test"))
    conn.request("GET", "/", headers={"Host": "app.test"})
    resp = conn.getresponse()
    resp.read()
    assert resp.getheader("alt-svc") == f'h3=":{port}"; ma=2592000'
    conn.close()
    plain = http.client.HTTPConnection("127.0.0.1", port)
    plain.request("GET", "/plain")
    presp = plain.getresponse()
    presp.read()
    assert presp.status == 200 and presp.getheader("alt-svc") is None

    body = b"x" * 300_000
    responses = h3_requests(port, [
        H3Request("/", authority="app.test"),
        H3Request("/echo", method="POST", authority="app.test", body=body),
        H3Request("/plain", authority="plain.test"),  # only a plain router matches: not over HTTP/3
    ], server_name="app.test", ca_pem=ca.pem)
    assert responses[0].status == 200 and responses[0].body == b"Hello from v1\n"
    assert responses[1].status == 200
    assert responses[2].status == 404

    # the certificate follows the SNI
    other = h3_requests(port, [H3Request("/", authority="other.test")], server_name="other.test", ca_pem=ca.pem)
    assert other[0].status == 200


def _ctx(ca_pem: str, sni: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=ca_pem)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # an IP literal sends no SNI: the default certificate answers
    return ctx


def _curl(url: str, port: int, ca_file: Path, version: int) -> tuple[int, int, bytes, bytes]:
    """(status, HTTP version, headers, body) with libcurl (curl_cffi: BoringSSL, ngtcp2, nghttp3)."""
    from io import BytesIO

    from curl_cffi import Curl, CurlInfo, CurlOpt

    body, head = BytesIO(), BytesIO()
    c = Curl()
    try:
        c.setopt(CurlOpt.URL, url.encode())
        c.setopt(CurlOpt.RESOLVE, [f"app.test:{port}:127.0.0.1".encode()])
        c.setopt(CurlOpt.HTTP_VERSION, version)
        c.setopt(CurlOpt.CAINFO, str(ca_file).encode())
        c.setopt(CurlOpt.TIMEOUT_MS, 10_000)
        c.setopt(CurlOpt.WRITEDATA, body)
        c.setopt(CurlOpt.HEADERDATA, head)
        c.perform()
        status = c.getinfo(CurlInfo.RESPONSE_CODE)
        http_version = c.getinfo(CurlInfo.HTTP_VERSION)
        assert isinstance(status, int) and isinstance(http_version, int)
    finally:
        c.close()
    return status, http_version, head.getvalue(), body.getvalue()


def test_http3_with_curl_cffi(ferryman: StartFerryman, hello: Callable[[str], int], tmp_path: Path) -> None:
    from curl_cffi.const import CurlHttpVersion

    backend = hello("v1")
    _, ca_file, static, dynamic = _setup(tmp_path, backend, {"advertisedPort": 8443})
    fm = ferryman(static, dynamic)
    port = fm.ports["websecure"]
    status, version, _, body = _curl(f"https://app.test:{port}/", port, ca_file, CurlHttpVersion.V3ONLY)
    assert (status, body) == (200, b"Hello from v1\n")
    assert version == 30  # CURL_HTTP_VERSION_3
    # advertisedPort goes into Alt-Svc (TCP side, HTTP/2 here)
    status, version, head, _ = _curl(f"https://app.test:{port}/", port, ca_file, CurlHttpVersion.V2TLS)
    assert status == 200 and version == 3  # CURL_HTTP_VERSION_2
    assert b'alt-svc: h3=":8443"; ma=2592000' in head.lower()
    fm.signal(signal.SIGTERM)
    assert fm.wait_exit() == 0


def test_http3_streams_a_large_response_and_drains_on_shutdown(ferryman: StartFerryman, tmp_path: Path) -> None:
    """A 1 MiB response streams through HTTP/3 under flow control; on SIGTERM the in-flight request
    finishes after a GOAWAY, and the process exits cleanly."""
    import asyncio
    import threading

    from aioquic.asyncio.client import connect

    from tests.integration.dataplane.dp_support import Backend, Reader, read_request
    from tests.support.h3client import H3Client, client_config
    from tests.support.procs import poll_until

    big = b"0123456789abcdef" * (64 * 1024)  # 1 MiB: several times the per-stream high-water mark
    release = threading.Event()
    seen = threading.Event()

    def serve(sock: Any) -> None:
        while True:
            req = read_request(Reader(sock))
            if req.target == "/slow":
                seen.set()
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n")
                release.wait(10)
                sock.sendall(b"done")
            else:
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(big) + big)

    with Backend(serve) as be:
        ca, _, static, dynamic = _setup(tmp_path, 1, {})
        dynamic["http"]["services"]["hello"]["loadBalancer"]["servers"] = [{"url": be.url}]
        fm = ferryman(static, dynamic)
        port = fm.ports["websecure"]

        async def scenario() -> tuple[bytes, int, bytes, list[int]]:
            async with asyncio.timeout(40), connect("127.0.0.1", port, configuration=client_config("app.test", ca.pem),
                                                    create_protocol=H3Client) as client:
                assert isinstance(client, H3Client)
                large = await client.request(H3Request("/big", authority="app.test"))
                slow = asyncio.ensure_future(client.request(H3Request("/slow", authority="app.test")))
                await asyncio.to_thread(seen.wait, 10)
                fm.signal(signal.SIGTERM)
                await asyncio.to_thread(poll_until, lambda: bool(client.goaways), 10, what="GOAWAY")
                release.set()
                done = await slow
                return large.body, done.status, done.body, client.goaways

        body, status, slow_body, goaways = asyncio.run(scenario())
        assert body == big
        assert (status, slow_body) == (200, b"done")
        assert goaways and goaways[0] > 0  # the open request's stream is below the GOAWAY id
        assert fm.wait_exit() == 0


def test_http3_refuses_hosts_whose_tls_options_require_client_certificates(
        ferryman: StartFerryman, hello: Callable[[str], int], tmp_path: Path) -> None:
    import asyncio

    backend = hello("v1")
    ca, ca_file, static, dynamic = _setup(tmp_path, backend, {})
    dynamic["http"]["routers"]["mtls"] = {"rule": "Host(`other.test`)", "service": "hello",
                                          "tls": {"options": "mtls"}}
    dynamic["http"]["routers"]["app"]["rule"] = "Host(`app.test`)"
    dynamic["tls"]["options"] = {"mtls": {"clientAuth": {"caFiles": [str(ca_file)],
                                                         "clientAuthType": "RequireAndVerifyClientCert"}}}
    fm = ferryman(static, dynamic)
    port = fm.ports["websecure"]
    assert h3_requests(port, [H3Request("/", authority="app.test")], server_name="app.test",
                       ca_pem=ca.pem)[0].status == 200
    from aioquic.quic.connection import QuicConnectionError

    with pytest.raises((ConnectionError, QuicConnectionError, TimeoutError, asyncio.TimeoutError)):
        h3_requests(port, [H3Request("/", authority="other.test")], server_name="other.test", ca_pem=ca.pem,
                    timeout=5)
