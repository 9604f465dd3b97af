"""TLS options on a real entry point with Python ssl clients: versions, cipher suites, each client
auth type with and without a client certificate, options bound to SNI hosts, conflicts."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.tls.pki import CA, Pair
from tests.integration.tls.tls_harness import client_context, harness, https_get

Refused = (ssl.SSLError, ConnectionError)
pytestmark = pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def ca() -> CA:
    return CA()


@pytest.fixture(scope="module")
def server(ca: CA) -> Pair:
    return ca.issue("server", dns=("a.example.com", "b.example.com", "mtls.example.com"))


def config(server: Pair, options: Mapping[str, Any], routers: Mapping[str, Any] | None = None) -> str:
    return yaml.safe_dump({
        "http": {"routers": routers or {
            "a": {"rule": "Host(`a.example.com`)", "service": "echo@internal", "tls": {"options": "custom"}},
            "b": {"rule": "Host(`b.example.com`)", "service": "echo@internal", "tls": {}},
        }},
        "tls": {"certificates": [{"certFile": server.cert_pem, "keyFile": server.key_pem}], "options": options},
    })


V = ssl.TLSVersion


def test_default_options_refuse_tls11_and_accept_12_and_13(ca: CA, server: Pair) -> None:
    with harness(config(server, {"custom": {}})) as h:
        with pytest.raises(Refused):
            https_get(h.port, "b.example.com", client_context(ca.pem, minimum=V.TLSv1_1, maximum=V.TLSv1_1))
        assert https_get(h.port, "b.example.com", client_context(ca.pem, maximum=V.TLSv1_2)).version == "TLSv1.2"
        assert https_get(h.port, "b.example.com", client_context(ca.pem)).version == "TLSv1.3"
        # h2 and http/1.1 are advertised (acme-tls/1 only once ACME exists)
        import socket
        for offered, chosen in ((["h2", "http/1.1"], "h2"), (["http/1.1"], "http/1.1")):
            ctx = client_context(ca.pem)
            ctx.set_alpn_protocols(offered)
            with socket.create_connection(("127.0.0.1", h.port)) as raw, \
                    ctx.wrap_socket(raw, server_hostname="b.example.com") as tls:
                assert tls.selected_alpn_protocol() == chosen


def test_min_and_max_version_per_host(ca: CA, server: Pair) -> None:
    options = {"custom": {"minVersion": "VersionTLS13"}, "default": {"maxVersion": "VersionTLS12"}}
    with harness(config(server, options)) as h:
        # a.example.com uses "custom": TLS 1.3 only
        with pytest.raises(Refused):
            https_get(h.port, "a.example.com", client_context(ca.pem, maximum=V.TLSv1_2))
        assert https_get(h.port, "a.example.com", client_context(ca.pem)).version == "TLSv1.3"
        # b.example.com and unknown names use "default": at most TLS 1.2
        with pytest.raises(Refused):
            https_get(h.port, "b.example.com", client_context(ca.pem, minimum=V.TLSv1_3))
        assert https_get(h.port, "b.example.com", client_context(ca.pem)).version == "TLSv1.2"
        assert https_get(h.port, "c.example.com").version == "TLSv1.2"


def test_cipher_suites_go_names(ca: CA, server: Pair) -> None:
    options = {"custom": {"maxVersion": "VersionTLS12",
                          "cipherSuites": ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]}}
    with harness(config(server, options)) as h:
        r = https_get(h.port, "a.example.com", client_context(ca.pem))
        assert r.cipher == "ECDHE-ECDSA-AES128-GCM-SHA256"
        with pytest.raises(Refused):
            https_get(h.port, "a.example.com", client_context(ca.pem, ciphers="ECDHE-ECDSA-AES256-GCM-SHA384"))


def test_unknown_cipher_suite_disables_the_routers_using_the_option(ca: CA, server: Pair) -> None:
    with harness(config(server, {"custom": {"cipherSuites": ["TLS_BOGUS"]}})) as h:
        snap = h.snapshot
        assert snap is not None
        assert "a@file" in snap.disabled and "TLS_BOGUS" in snap.disabled["a@file"]
        assert any(d.kind == "tls.options" and d.name == "custom@file" and "TLS_BOGUS" in d.message
                   for d in snap.diagnostics)
        assert https_get(h.port, "b.example.com", client_context(ca.pem)).status == 200
        assert https_get(h.port, "a.example.com", client_context(ca.pem)).status == 404


def test_session_tickets_and_curves_options_apply(ca: CA, server: Pair) -> None:
    options = {"custom": {"disableSessionTickets": True, "curvePreferences": ["CurveP384", "X25519"]}}
    with harness(config(server, options)) as h:
        snap = h.snapshot
        assert snap is not None
        assert any("only CurveP384 is offered" in d.message for d in snap.diagnostics)
        serving = snap.tls["web"]
        ctx = serving.select("a.example.com")
        assert ctx is not None and ctx.options & ssl.OP_NO_TICKET and ctx.num_tickets == 0
        assert https_get(h.port, "a.example.com", client_context(ca.pem)).status == 200
        p256_only = client_context(ca.pem)
        p256_only.set_ecdh_curve("prime256v1")
        with pytest.raises(Refused):
            https_get(h.port, "a.example.com", p256_only)


# --------------------------------------------------------------------------------------------
# client authentication: the five types x {no cert, cert from the CA, cert from another CA}


@pytest.fixture(scope="module")
def client_certs(tmp_path_factory: pytest.TempPathFactory, ca: CA) -> dict[str, tuple[str, str]]:
    d = tmp_path_factory.mktemp("clients")
    good = ca.issue("good client", client=True)
    stranger = CA("stranger CA").issue("stranger", client=True)
    good_cert, good_key = good.write(d, "good")
    other_cert, other_key = stranger.write(d, "stranger")
    return {"good": (str(good_cert), str(good_key)), "stranger": (str(other_cert), str(other_key))}


# expected outcome per type: (no certificate, certificate from the CA, certificate from another CA)
CLIENT_AUTH = {
    "NoClientCert": (True, True, True),
    "RequestClientCert": (True, True, True),
    "RequireAnyClientCert": (False, True, True),
    "VerifyClientCertIfGiven": (True, True, False),
    "RequireAndVerifyClientCert": (False, True, False),
}


@pytest.mark.parametrize("auth_type", list(CLIENT_AUTH))
def test_client_auth_types(auth_type: str, ca: CA, server: Pair, client_certs: dict[str, tuple[str, str]],
                           tmp_path: Path) -> None:
    ca_file = tmp_path / "clients-ca.pem"
    ca_file.write_text(ca.pem)
    options = {"custom": {"clientAuth": {"caFiles": [str(ca_file)], "clientAuthType": auth_type}}}
    with harness(config(server, options)) as h:
        for expected, cert in zip(CLIENT_AUTH[auth_type], (None, client_certs["good"], client_certs["stranger"]),
                                  strict=True):
            for version in (V.TLSv1_2, V.TLSv1_3):
                ctx = client_context(ca.pem, maximum=version, cert=cert)
                if expected:
                    r = https_get(h.port, "a.example.com", ctx)
                    assert r.status == 200, (auth_type, cert, version)
                else:
                    with pytest.raises(Refused):
                        https_get(h.port, "a.example.com", ctx)
        # the other host (default options) never asks for a certificate
        assert https_get(h.port, "b.example.com", client_context(ca.pem)).status == 200


def test_client_auth_without_ca_files_for_verify_types_is_an_option_error(server: Pair) -> None:
    options = {"custom": {"clientAuth": {"clientAuthType": "RequireAndVerifyClientCert"}}}
    with harness(config(server, options)) as h:
        snap = h.snapshot
        assert snap is not None and "a@file" in snap.disabled
        assert "needs clientAuth.caFiles" in snap.disabled["a@file"]


def test_two_routers_on_one_host_with_different_options_are_reported(ca: CA, server: Pair,
                                                                    tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(ca.pem)
    routers = {
        "api": {"rule": "Host(`mtls.example.com`) && PathPrefix(`/api`)", "service": "echo@internal",
                "tls": {"options": "custom"}},
        "web": {"rule": "Host(`mtls.example.com`)", "service": "echo@internal", "tls": {}},
    }
    options = {"custom": {"clientAuth": {"caFiles": [str(ca_file)],
                                         "clientAuthType": "RequireAndVerifyClientCert"}}}
    with harness(config(server, options, routers)) as h:
        snap = h.snapshot
        assert snap is not None
        for name in ("api@file", "web@file"):
            info = snap.merged.routers[name]
            assert info.status == "warning" and info.tls_options == "default"
            assert any("different TLS options" in w for w in info.warnings)
        assert any(d.level == "warning" and "different TLS options" in d.message for d in snap.diagnostics)
        # and the dropped client authentication is an error naming the router and the host
        dropped = [d for d in snap.diagnostics if d.level == "error" and "NOT applied" in d.message]
        assert [d.name for d in dropped] == ["api@file"]
        assert "mtls.example.com" in dropped[0].message and "RequireAndVerifyClientCert" in dropped[0].message
        # Traefik's behaviour: the default options apply, so mTLS is NOT enforced on that host
        assert https_get(h.port, "mtls.example.com", client_context(ca.pem), path="/api").status == 200


def test_host_with_other_tls_options_than_the_sni_gets_421(ca: CA, server: Pair, tmp_path: Path,
                                                           client_certs: dict[str, tuple[str, str]]) -> None:
    """Traefik's SNI check: SNI of a host without mTLS, Host header of the mTLS one -> 421, so the
    client certificate requirement cannot be bypassed by domain fronting."""
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(ca.pem)
    options = {"custom": {"clientAuth": {"caFiles": [str(ca_file)], "clientAuthType": "RequireAndVerifyClientCert"}}}
    with harness(config(server, options)) as h:
        ctx = client_context(ca.pem)
        fronted = https_get(h.port, "b.example.com", ctx, host="a.example.com")
        assert fronted.status == 421 and fronted.body == "Misdirected Request\n"
        assert https_get(h.port, "b.example.com", ctx).status == 200
        with_cert = client_context(ca.pem, cert=client_certs["good"])
        assert https_get(h.port, "a.example.com", with_cert).status == 200
        # from the mTLS host to a host with the default options: also 421 (Traefik compares both ways)
        assert https_get(h.port, "a.example.com", with_cert, host="b.example.com").status == 421
        # same options on both sides: routed normally (404: no router for that host)
        assert https_get(h.port, "b.example.com", ctx, host="c.example.com").status == 404


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_certificate_request_names_the_client_cas(ca: CA, server: Pair, tmp_path: Path) -> None:
    """Like Go's ClientCAs: the CertificateRequest lists the CAs of clientAuth.caFiles."""
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(ca.pem)
    options = {"custom": {"clientAuth": {"caFiles": [str(ca_file)], "clientAuthType": "VerifyClientCertIfGiven"}}}
    with harness(config(server, options)) as h:
        out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{h.port}", "-servername",
                              "a.example.com", "-tls1_2"], input=b"", capture_output=True, timeout=20, check=False)
        text = out.stdout.decode("utf-8", "replace")
        assert "Acceptable client certificate CA names" in text, text
        assert "CN = ferryman test CA" in text.split("Acceptable client certificate CA names", 1)[1], text
