"""TLS termination on an entry point, through merge + compile + the real entry point (loopback,
Python ssl clients): SNI selection, default certificate, sniStrict, inline and file certificates,
HTTPS vs plain routers on one port, hot swap."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.tls.pki import CA, Pair
from tests.integration.tls.tls_harness import client_context, harness, http_get, https_get


@pytest.fixture(scope="module")
def ca() -> CA:
    return CA()


@pytest.fixture(scope="module")
def certs(ca: CA) -> dict[str, Pair]:
    return {
        "exact": ca.issue("a.example.com", dns=("a.example.com",)),
        "wild": ca.issue("wildcard", dns=("*.example.com",)),
        "other": ca.issue("other.test", dns=("other.test",)),
        "fallback": ca.issue("my default"),
    }


def dyn(certificates: list[dict[str, str]], *, options: Mapping[str, Any] | None = None,
        stores: Mapping[str, Any] | None = None, routers: Mapping[str, Any] | None = None) -> str:
    tls: dict[str, Any] = {"certificates": certificates}
    if options:
        tls["options"] = options
    if stores:
        tls["stores"] = stores
    doc = {
        "http": {"routers": routers or {
            "secure": {"rule": "Host(`a.example.com`) || Host(`b.example.com`) || Host(`other.test`)",
                       "service": "echo@internal", "tls": {}},
            "plain": {"rule": "Host(`a.example.com`)", "service": "echo@internal"},
        }},
        "tls": tls,
    }
    return yaml.safe_dump(doc)


def files(tmp_path: Path, certs: dict[str, Pair], *names: str) -> list[dict[str, str]]:
    out = []
    for name in names:
        cert, key = certs[name].write(tmp_path, name)
        out.append({"certFile": str(cert), "keyFile": str(key)})
    return out


def test_sni_selects_exact_then_wildcard_then_default(tmp_path: Path, ca: CA, certs: dict[str, Pair]) -> None:
    # exact from a file, wildcard and other inline (several certificates in one provider)
    config = dyn([*files(tmp_path, certs, "exact"),
                  {"certFile": certs["wild"].cert_pem, "keyFile": certs["wild"].key_pem},
                  {"certFile": certs["other"].cert_pem, "keyFile": certs["other"].key_pem}])
    with harness(config) as h:
        verified = client_context(ca.pem)
        assert https_get(h.port, "a.example.com", verified).peer_cn == "a.example.com"
        assert https_get(h.port, "b.example.com", verified).peer_cn == "wildcard"
        assert https_get(h.port, "other.test", verified).peer_cn == "other.test"
        # two labels below the wildcard: not covered -> Traefik's generated default certificate
        assert https_get(h.port, "x.y.example.com").peer_cn == "TRAEFIK DEFAULT CERT"
        assert https_get(h.port, None).peer_cn == "TRAEFIK DEFAULT CERT"
        # the generated default is not trusted by the test CA
        with pytest.raises(ssl.SSLCertVerificationError):
            https_get(h.port, "unknown.test", verified)


def test_https_router_answers_only_on_tls_and_plain_only_on_plain(tmp_path: Path, ca: CA,
                                                                   certs: dict[str, Pair]) -> None:
    routers = {
        "secure": {"rule": "Host(`a.example.com`)", "service": "echo@internal", "tls": {}},
        "plain": {"rule": "Host(`a.example.com`)", "service": "echo@internal"},
        "tls-only": {"rule": "Host(`other.test`)", "service": "echo@internal", "tls": {}},
    }
    with harness(dyn(files(tmp_path, certs, "exact", "other"), routers=routers)) as h:
        ctx = client_context(ca.pem)
        r = https_get(h.port, "a.example.com", ctx)
        assert r.status == 200 and "router=secure@file tls=True scheme=https" in r.body
        assert "client=127.0.0.1" in r.body
        status, body = http_get(h.port, "a.example.com")
        assert status == 200 and "router=plain@file tls=False scheme=http" in body
        # an HTTPS-only host is 404 on plain HTTP, a plain-only host 404 over TLS
        assert http_get(h.port, "other.test")[0] == 404
        assert https_get(h.port, "other.test", ctx).status == 200
        assert https_get(h.port, "other.test", ctx, host="b.example.com").status == 404
        # keep-alive over TLS: several requests on one connection
        r2 = https_get(h.port, "a.example.com", ctx, path="/again")
        assert r2.status == 200


def test_default_certificate_from_the_store_and_sni_strict(tmp_path: Path, ca: CA, certs: dict[str, Pair]) -> None:
    cert, key = certs["fallback"].write(tmp_path, "fallback")
    stores = {"default": {"defaultCertificate": {"certFile": str(cert), "keyFile": str(key)}}}
    config = dyn(files(tmp_path, certs, "exact"), stores=stores)
    with harness(config) as h:
        assert https_get(h.port, "nothing.test").peer_cn == "my default"
        assert https_get(h.port, None).peer_cn == "my default"
        strict = dyn(files(tmp_path, certs, "exact"), stores=stores, options={"default": {"sniStrict": True}})
        h.apply(strict)
        assert https_get(h.port, "a.example.com", client_context(ca.pem)).status == 200
        for sni in ("nothing.test", None):
            with pytest.raises((ssl.SSLError, ConnectionError)):
                https_get(h.port, sni)


def test_broken_certificate_file_is_reported_and_the_others_serve(tmp_path: Path, ca: CA,
                                                                  certs: dict[str, Pair]) -> None:
    broken = tmp_path / "broken.crt"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    mismatched_cert, _ = certs["wild"].write(tmp_path, "wild")
    _, other_key = certs["other"].write(tmp_path, "other")
    config = dyn([{"certFile": str(broken), "keyFile": str(tmp_path / "missing.key")},
                  {"certFile": str(mismatched_cert), "keyFile": str(other_key)},
                  *files(tmp_path, certs, "exact")])
    with harness(config) as h:
        snap = h.snapshot
        assert snap is not None
        messages = [d.render() for d in snap.diagnostics if d.kind == "tls.certificates"]
        assert any("missing.key" in m for m in messages), messages
        assert any(str(mismatched_cert) in m and "do not match" in m for m in messages), messages
        assert https_get(h.port, "a.example.com", client_context(ca.pem)).peer_cn == "a.example.com"
        assert https_get(h.port, "b.example.com").peer_cn == "TRAEFIK DEFAULT CERT"


def test_certificates_hot_swap_without_restart(tmp_path: Path, ca: CA, certs: dict[str, Pair]) -> None:
    import socket

    with harness(dyn(files(tmp_path, certs, "exact"))) as h:
        assert https_get(h.port, "b.example.com").peer_cn == "TRAEFIK DEFAULT CERT"
        # a keep-alive TLS connection opened before the swap
        raw = socket.create_connection(("127.0.0.1", h.port), timeout=10)
        with client_context().wrap_socket(raw, server_hostname="b.example.com") as open_conn:
            request = b"GET / HTTP/1.1\r\nHost: b.example.com\r\n\r\n"
            open_conn.sendall(request)
            assert open_conn.recv(65536).startswith(b"HTTP/1.1 200")
            h.apply(dyn(files(tmp_path, certs, "exact", "wild")))
            # new handshakes get the new certificate
            assert https_get(h.port, "b.example.com", client_context(ca.pem)).peer_cn == "wildcard"
            # the open connection keeps its handshake and still serves requests
            open_conn.sendall(request)
            assert open_conn.recv(65536).startswith(b"HTTP/1.1 200")
            der = open_conn.getpeercert(binary_form=True)
            assert der is not None and b"TRAEFIK DEFAULT CERT" in der


def test_entry_point_http_tls_serves_tls_without_routers() -> None:
    with harness(yaml.safe_dump({"http": {"routers": {}}}), ep_tls=True) as h:
        r = https_get(h.port, "x.test")
        assert r.status == 404 and r.peer_cn == "TRAEFIK DEFAULT CERT"


def test_plain_entry_point_does_not_peek() -> None:
    with harness(yaml.safe_dump({"http": {"routers": {
            "p": {"rule": "Host(`x.test`)", "service": "echo@internal"}}}})) as h:
        assert h.ep.tls is None
        assert http_get(h.port, "x.test")[0] == 200
        with pytest.raises((ssl.SSLError, ConnectionError)):
            https_get(h.port, "x.test")


def test_proxy_protocol_then_tls(tmp_path: Path, ca: CA, certs: dict[str, Pair]) -> None:
    import socket

    config = dyn(files(tmp_path, certs, "exact"))
    with harness(config, proxy_protocol=True, proxy_protocol_insecure=True) as h:
        ctx = client_context(ca.pem)
        with socket.create_connection(("127.0.0.1", h.port), timeout=10) as raw:
            raw.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 4000 443\r\n")
            with ctx.wrap_socket(raw, server_hostname="a.example.com") as tls:
                tls.sendall(b"GET / HTTP/1.1\r\nHost: a.example.com\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    try:
                        chunk = tls.recv(65536)
                    except ssl.SSLZeroReturnError:
                        break
                    if not chunk:
                        break
                    data += chunk
        assert b"tls=True" in data and b"client=203.0.113.7" in data


def test_client_hello_dribbled_byte_by_byte(tmp_path: Path, ca: CA, certs: dict[str, Pair]) -> None:
    """The ClientHello arrives in many small TCP segments: the peek waits for all of it."""
    import socket

    with harness(dyn(files(tmp_path, certs, "exact"))) as h:
        ctx = client_context(ca.pem)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(incoming, outgoing, server_hostname="a.example.com")
        with socket.create_connection(("127.0.0.1", h.port), timeout=10) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with pytest.raises(ssl.SSLWantReadError):
                tls.do_handshake()
            for byte in outgoing.read():
                sock.send(bytes([byte]))
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    if pending := outgoing.read():
                        sock.sendall(pending)
                    data = sock.recv(65536)
                    assert data, "server closed during the handshake"
                    incoming.write(data)
            tls.write(b"GET / HTTP/1.1\r\nHost: a.example.com\r\nConnection: close\r\n\r\n")
            sock.sendall(outgoing.read())
            received = b""
            while b"\r\n\r\n" not in received or b"router=" not in received:
                data = sock.recv(65536)
                if not data:
                    break
                incoming.write(data)
                try:
                    received += tls.read(65536)
                except ssl.SSLWantReadError:
                    continue
        assert received.startswith(b"HTTP/1.1 200") and b"router=secure@file tls=True" in received
