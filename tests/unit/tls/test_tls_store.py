"""TLS store and options translation without sockets."""

from __future__ import annotations

import ssl

import pytest

from ferryman.dynamic.models import TLSConfiguration, TLSOptions
from ferryman.tls.store import (
    GO_CIPHER_SUITES,
    TLSStore,
    compile_options,
    default_certificate,
    sni_host,
)
from tests.integration.tls.pki import CA


def options(**kw: object) -> TLSOptions:
    return TLSOptions.model_validate(kw)


def test_versions_and_defaults() -> None:
    default = compile_options("default", options())
    assert (default.minimum, default.maximum) == (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
    assert default.alpn == ("h2", "http/1.1", "acme-tls/1")  # Traefik's default list
    o = compile_options("x", options(minVersion="VersionTLS13"))
    assert o.minimum == ssl.TLSVersion.TLSv1_3
    with pytest.raises(ValueError, match="unknown minVersion"):
        compile_options("x", options(minVersion="TLS1.3"))
    with pytest.raises(ValueError, match="above maxVersion"):
        compile_options("x", options(minVersion="VersionTLS13", maxVersion="VersionTLS12"))


def test_cipher_suites_map_to_openssl_and_every_mapping_is_known_to_openssl() -> None:
    o = compile_options("x", options(cipherSuites=["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                                                   "TLS_AES_128_GCM_SHA256"]))
    assert o.ciphers == "ECDHE-RSA-AES128-GCM-SHA256"  # TLS 1.3 suites are not configurable (Go)
    with pytest.raises(ValueError, match="unknown cipher suite 'NOPE'"):
        compile_options("x", options(cipherSuites=["NOPE"]))
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    probe.set_ciphers("ALL:@SECLEVEL=0")
    available = {c["name"] for c in probe.get_ciphers()}
    modern = [v for k, v in GO_CIPHER_SUITES.items() if "GCM" in k or "CHACHA" in k]
    assert set(modern) <= available


def test_curves_and_client_auth_validation() -> None:
    o = compile_options("x", options(curvePreferences=["secp384r1", "CurveP256"]))
    assert o.curve == "secp384r1" and o.warnings
    with pytest.raises(ValueError, match="unknown curve"):
        compile_options("x", options(curvePreferences=["CurveP999"]))
    with pytest.raises(ValueError, match="unknown clientAuthType"):
        compile_options("x", options(clientAuth={"clientAuthType": "Sometimes"}))
    with pytest.raises(ValueError, match="cannot read"):
        compile_options("x", options(clientAuth={"caFiles": ["/nonexistent/ca.pem"],
                                                 "clientAuthType": "RequireAndVerifyClientCert"}))


def test_lookup_exact_then_single_label_wildcard() -> None:
    ca = CA()
    exact = ca.issue("a.example.com", dns=("a.example.com",))
    wild = ca.issue("wild", dns=("*.example.com",))
    cn_only = ca.issue("legacy.test")
    store = TLSStore.build(TLSConfiguration.model_validate({"certificates": [
        {"certFile": c.cert_pem, "keyFile": c.key_pem} for c in (wild, exact, cn_only)]}))
    assert not [p for p in store.problems if p.level == "error"]
    assert store.lookup("a.example.com") is store.certs[1]
    assert store.lookup("b.example.com") is store.certs[0]
    assert store.lookup("x.b.example.com") is None
    assert store.lookup("legacy.test") is store.certs[2]  # CN, as Traefik
    serving = store.serving({"a.example.com": "default"})
    assert serving.select("a.example.com") is store.context(store.certs[1], "default")
    assert serving.select(None) is store.context(default_certificate(), "default")


def test_default_certificate_is_generated_once() -> None:
    assert default_certificate() is default_certificate()
    assert default_certificate().label.startswith("TRAEFIK DEFAULT CERT")


def test_sni_host() -> None:
    assert sni_host("Example.COM.") == "example.com"
    assert sni_host("[::1]") == "::1"
