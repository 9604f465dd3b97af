"""/api/certificates: the default store's certificates in Traefik 3.7's shape, with status from the
expiry, search/status/sort, and the overview's certificate counts."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ferryman.api.certificates import status_for
from tests.unit.api.api_support import ask, build_snapshot, load_static, service_for

NOW = datetime.datetime.now(datetime.UTC)


def write_cert(directory: Path, stem: str, cn: str, *, days_left: float, rsa_key: bool = False,
               issuer_org: str = "", sans: tuple[str, ...] = (), ips: tuple[str, ...] = ()) -> tuple[Path, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if rsa_key \
        else ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer_attrs = [x509.NameAttribute(NameOID.COMMON_NAME, f"{cn} issuer")]
    if issuer_org:
        issuer_attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, issuer_org))
    names: list[x509.GeneralName] = [x509.DNSName(s) for s in sans]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(x509.Name(issuer_attrs))
               .public_key(key.public_key()).serial_number(4242)
               .not_valid_before(NOW - datetime.timedelta(days=400))
               .not_valid_after(NOW + datetime.timedelta(days=days_left)))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, cert.public_bytes(serialization.Encoding.DER)


def test_certificates_in_traefiks_shape(tmp_path: Path) -> None:
    good, good_der = write_cert(tmp_path, "good", "app.example", days_left=200, issuer_org="Example CA",
                                sans=("www.example", "app.example"), ips=("10.0.0.1",))
    soon, _ = write_cert(tmp_path, "soon", "soon.example", days_left=10, rsa_key=True, sans=("soon.example",))
    old, _ = write_cert(tmp_path, "old", "old.example", days_left=-1, sans=("old.example",))
    static = load_static({"entryPoints": {"websecure": {"address": ":443"}}, "api": {}})
    _app, snapshot = build_snapshot(static, f"""
http:
  routers:
    secure: {{rule: "Host(`app.example`)", service: s, tls: {{}}}}
  services:
    s: {{loadBalancer: {{servers: [{{url: "http://127.0.0.1:1"}}]}}}}
tls:
  certificates:
    - {{certFile: {good}, keyFile: {good.with_suffix(".key")}}}
    - {{certFile: {soon}, keyFile: {soon.with_suffix(".key")}}}
    - {{certFile: {old}, keyFile: {old.with_suffix(".key")}}}
""")
    api = service_for(static, snapshot)
    answer = ask(api, "/api/certificates")
    assert answer.status == 200 and answer.headers["x-next-page"] == "1"
    certs = answer.json()
    # sorted by common name; the generated TRAEFIK DEFAULT CERT is not listed
    assert [c["commonName"] for c in certs] == ["app.example", "old.example", "soon.example"]
    first = certs[0]
    fingerprint = hashlib.sha256(good_der).hexdigest()
    assert list(first) == ["name", "sans", "notAfter", "notBefore", "serialNumber", "commonName", "issuerOrg",
                           "issuerCN", "version", "keyType", "keySize", "signatureAlgorithm",
                           "certFingerprint", "publicKeyFingerprint", "status"]
    assert first["name"] == first["certFingerprint"] == fingerprint
    assert first["sans"] == ["10.0.0.1", "app.example", "www.example"]
    assert first["serialNumber"] == "4242" and first["version"] == "v3"
    assert (first["keyType"], first["keySize"], first["signatureAlgorithm"]) == ("ECDSA", 256, "ECDSA-SHA256")
    assert (first["issuerOrg"], first["issuerCN"], first["status"]) == ("Example CA", "app.example issuer", "enabled")
    assert first["notAfter"].endswith("Z") and len(first["publicKeyFingerprint"]) == 64
    rsa_cert = certs[2]
    assert (rsa_cert["keyType"], rsa_cert["keySize"], rsa_cert["signatureAlgorithm"]) == ("RSA", 2048, "SHA256-RSA")
    assert [c["status"] for c in certs] == ["enabled", "expired", "warning"]

    one = ask(api, f"/api/certificates/{fingerprint}")
    assert one.status == 200 and one.json() == first
    missing = ask(api, "/api/certificates/00ff")
    assert (missing.status, missing.body) == (404, b'{"message":"certificate not found: 00ff"}\n')

    def names(query: str) -> list[str]:
        return [c["commonName"] for c in ask(api, f"/api/certificates?{query}").json()]

    assert names("status=warning") == ["soon.example"]
    assert names("search=example%20CA") == ["app.example"]  # the issuer
    assert names("search=WWW") == ["app.example"]  # a SAN
    assert names("sortBy=validUntil") == ["old.example", "soon.example", "app.example"]
    assert names("sortBy=validUntil&direction=desc") == ["app.example", "soon.example", "old.example"]
    assert ask(api, "/api/overview").json()["certificates"] == {"total": 3, "warnings": 1, "errors": 1}


def test_status_thresholds() -> None:
    assert status_for(NOW + datetime.timedelta(days=31), NOW) == "enabled"
    assert status_for(NOW + datetime.timedelta(days=29), NOW) == "warning"
    assert status_for(NOW - datetime.timedelta(seconds=1), NOW) == "expired"
