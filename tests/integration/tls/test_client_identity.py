"""clientIdentity through the real ferryman process over mTLS: client certificates carrying SPIFFE
URI SANs, DNS SANs and subject OUs (curl and Python ``ssl`` clients); routers whose TLS options do
not verify client certificates are disabled with the reason."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import StartFerryman
from tests.integration.tls.pki import CA
from tests.integration.tls.tls_harness import client_context, https_get

MTLS = {"clientAuthType": "RequireAndVerifyClientCert"}


def dynamic(backend: int, server: tuple[Path, Path], ca_file: Path) -> dict[str, Any]:
    def router(host: str, mw: str, options: str | None = "mtls") -> dict[str, Any]:
        tls = {"options": options} if options else {}
        return {"rule": f"Host(`{host}`)", "service": "hello", "middlewares": [mw], "tls": tls}

    return {
        "http": {
            "routers": {
                "exact": router("exact.test", "web-only"),
                "prefix": router("prefix.test", "prod-ns"),
                "combo": router("combo.test", "combo"),
                "optional": router("optional.test", "web-only", "optional"),
                "weak": router("weak.test", "web-only", "weak"),
                "no-tls": {"rule": "Host(`plain.test`)", "service": "hello", "middlewares": ["web-only"]},
            },
            "middlewares": {
                "web-only": {"clientIdentity": {"allow": [{"spiffeID": "spiffe://example.org/ns/prod/sa/web"}]}},
                "prod-ns": {"clientIdentity": {"allow": [{"spiffeIDPrefix": "spiffe://Example.org/ns/prod/"},
                                                         {"trustDomain": "partner.example"}],
                                               "rejectStatusCode": 401}},
                "combo": {"clientIdentity": {"allow": [{"dnsName": "*.svc.internal",
                                                        "organizationalUnit": "payments"},
                                                       {"commonName": "batch-runner"}]}},
            },
            "services": {"hello": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{backend}"}]}}},
        },
        "tls": {
            "certificates": [{"certFile": str(server[0]), "keyFile": str(server[1])}],
            "options": {
                "mtls": {"clientAuth": {"caFiles": [str(ca_file)], **MTLS}},
                "optional": {"clientAuth": {"caFiles": [str(ca_file)], "clientAuthType": "VerifyClientCertIfGiven"}},
                "weak": {"clientAuth": {"caFiles": [str(ca_file)], "clientAuthType": "RequireAnyClientCert"}},
            },
        },
    }


@pytest.fixture
def setup(ferryman: StartFerryman, hello: Callable[[str], int], tmp_path: Path) -> tuple[int, CA, Path, Any]:
    ca = CA()
    certs = tmp_path / "certs"
    certs.mkdir()
    ca_file = certs / "ca.pem"
    ca_file.write_text(ca.pem)
    hosts = ("exact.test", "prefix.test", "combo.test", "optional.test", "weak.test")
    server = ca.issue("proxy", dns=hosts).write(certs, "server")
    fm = ferryman({"entryPoints": {"websecure": {"address": "127.0.0.1:0"}}},
                  dynamic(hello("v1"), server, ca_file))
    return fm.ports["websecure"], ca, certs, fm


def _client(ca: CA, certs: Path, name: str, **kw: Any) -> Any:
    cert, key = ca.issue(name, client=True, **kw).write(certs, name)
    ctx = client_context(ca.pem)
    ctx.load_cert_chain(cert, key)
    return ctx


CASES = [
    # host, client certificate (cn, uris, dns, ous), expected status
    ("exact.test", ("web", ("spiffe://example.org/ns/prod/sa/web",), (), ()), 200),
    ("exact.test", ("web2", ("spiffe://example.org/ns/prod/sa/web-admin",), (), ()), 403),
    ("exact.test", ("other-td", ("spiffe://evil.org/ns/prod/sa/web",), (), ()), 403),
    ("exact.test", ("two-ids", ("spiffe://example.org/ns/prod/sa/web", "spiffe://example.org/x"), (), ()), 403),
    ("exact.test", ("no-san", (), (), ()), 403),
    ("prefix.test", ("db", ("spiffe://EXAMPLE.org/ns/prod/sa/db",), (), ()), 200),
    ("prefix.test", ("staging", ("spiffe://example.org/ns/prodx/sa/db",), (), ()), 401),
    ("prefix.test", ("partner", ("spiffe://partner.example/anything",), (), ()), 200),
    ("combo.test", ("pay", (), ("api.svc.internal",), ("payments",)), 200),
    ("combo.test", ("pay2", (), ("api.svc.internal",), ("ops",)), 403),
    ("combo.test", ("deep", (), ("a.b.svc.internal",), ("payments",)), 403),
    ("combo.test", ("batch-runner", (), (), ()), 200),
    ("optional.test", ("web", ("spiffe://example.org/ns/prod/sa/web",), (), ()), 200),
]


def test_client_identity_rules(setup: tuple[int, CA, Path, Any]) -> None:
    port, ca, certs, _ = setup
    for i, (host, (cn, uris, dns, ous), status) in enumerate(CASES):
        ctx = _client(ca, certs, f"{cn}-{i}" if cn != "batch-runner" else cn, uris=uris, dns=dns, ous=ous)
        got = https_get(port, host, ctx, host=host)
        assert got.status == status, (host, cn, uris, dns, ous, got)
        if status == 403:
            assert got.body == "Forbidden\n"


def test_without_client_certificate_on_optional_verification(setup: tuple[int, CA, Path, Any]) -> None:
    port, ca, _, _ = setup
    got = https_get(port, "optional.test", client_context(ca.pem), host="optional.test")
    assert got.status == 403


def test_routers_without_verified_client_certificates_are_disabled(setup: tuple[int, CA, Path, Any]) -> None:
    port, ca, certs, fm = setup
    text = "\n".join(str(e.get("message", "")) for e in fm.lines if e.get("level") == "error")
    assert 'router "weak@file"' in text and "RequireAnyClientCert, which does not verify" in text
    assert 'router "no-tls@file" is not a TLS router' in text
    ctx = _client(ca, certs, "weak-client", uris=("spiffe://example.org/ns/prod/sa/web",))
    assert https_get(port, "weak.test", ctx, host="weak.test").status == 404


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_with_spiffe_certificate(setup: tuple[int, CA, Path, Any]) -> None:
    port, ca, certs, _ = setup
    cert, key = ca.issue("web", client=True, uris=("spiffe://example.org/ns/prod/sa/web",)).write(certs, "curl")
    (certs / "ca-curl.pem").write_text(ca.pem)
    out = subprocess.run(["curl", "-sS", "--max-time", "10", "--resolve", f"exact.test:{port}:127.0.0.1",
                          "--cacert", str(certs / "ca-curl.pem"), "--cert", str(cert), "--key", str(key),
                          "-o", "/dev/null", "-w", "%{http_code}", f"https://exact.test:{port}/"],
                         capture_output=True, text=True, timeout=20, check=False)
    assert out.stdout == "200", out.stderr
