"""passTLSClientCert against the real Traefik: a real client certificate over mTLS (many subject and
issuer attributes, every SAN type), and the X-Forwarded-Tls-Client-Cert(-Info) headers the backend
receives from each proxy."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.oracle.harness import (
    TRAEFIK,
    TRAEFIK_MISSING,
    Backends,
    Case,
    Normaliser,
    Pair,
    Proxy,
    Response,
    case,
    fail_diff,
    observe,
)

pytestmark = [pytest.mark.oracle, pytest.mark.skipif(TRAEFIK is None, reason=TRAEFIK_MISSING)]

ENTRY_POINTS: dict[str, dict[str, Any]] = {"web": {}, "secure": {}}
HOSTS = ("pem", "all", "some", "both")


def _name(*attrs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(oid, value)]) for oid, value in attrs])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class Pki:
    """A CA with a rich issuer name, a server certificate and a rich client certificate."""

    def __init__(self, directory: Path) -> None:
        now = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
        later = now + datetime.timedelta(days=3650)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name((NameOID.DOMAIN_COMPONENT, "org"), (NameOID.DOMAIN_COMPONENT, "example"),
                        (NameOID.COUNTRY_NAME, "FR"), (NameOID.STATE_OR_PROVINCE_NAME, "Occitanie"),
                        (NameOID.LOCALITY_NAME, "Lyon"), (NameOID.ORGANIZATION_NAME, "Ferry CA, Inc."),
                        (NameOID.SERIAL_NUMBER, "CA-1"), (NameOID.COMMON_NAME, "Ferry Root CA"))
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(1).not_valid_before(now).not_valid_after(later)
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(ca_key, hashes.SHA256()))

        def issue(subject: x509.Name, serial: int, sans: list[x509.GeneralName],
                  usage: x509.ObjectIdentifier) -> tuple[bytes, bytes]:
            key = ec.generate_private_key(ec.SECP256R1())
            cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name)
                    .public_key(key.public_key()).serial_number(serial)
                    .not_valid_before(now).not_valid_after(later)
                    .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                    .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                    .sign(ca_key, hashes.SHA256()))
            return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)

        server = issue(_name((NameOID.COMMON_NAME, "proxy")), 2,
                       [x509.DNSName(f"{h}.test") for h in HOSTS], ExtendedKeyUsageOID.SERVER_AUTH)
        client = issue(_name((NameOID.DOMAIN_COMPONENT, "com"), (NameOID.DOMAIN_COMPONENT, "acme"),
                             (NameOID.COUNTRY_NAME, "US"), (NameOID.COUNTRY_NAME, "CA"),
                             (NameOID.STATE_OR_PROVINCE_NAME, "Oregon"), (NameOID.LOCALITY_NAME, "Portland"),
                             (NameOID.ORGANIZATION_NAME, "Acme; \"Widgets\""),
                             (NameOID.ORGANIZATIONAL_UNIT_NAME, "Ops"), (NameOID.ORGANIZATIONAL_UNIT_NAME, "Dev"),
                             (NameOID.SERIAL_NUMBER, "42"), (NameOID.COMMON_NAME, "web client é")),
                       123456789012345678901234567890,
                       [x509.DNSName("client.acme.com"), x509.DNSName("alt.acme.com"),
                        x509.RFC822Name("ops@acme.com"),
                        x509.IPAddress(ipaddress.ip_address("10.1.2.3")),
                        x509.IPAddress(ipaddress.ip_address("2001:db8::1")),
                        x509.UniformResourceIdentifier("spiffe://acme.com/ns/prod/sa/web")],
                       ExtendedKeyUsageOID.CLIENT_AUTH)
        self.ca_file = directory / "ca.pem"
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self.server_cert, self.server_key = directory / "server.pem", directory / "server.key"
        self.server_cert.write_bytes(server[0])
        self.server_key.write_bytes(server[1])
        self.client_cert, self.client_key = directory / "client.pem", directory / "client.key"
        self.client_cert.write_bytes(client[0])
        self.client_key.write_bytes(client[1])


def dynamic(backends: Backends, pki: Pki) -> dict[str, Any]:
    every = {"country": True, "province": True, "locality": True, "organization": True, "commonName": True,
             "serialNumber": True, "domainComponent": True}
    middlewares = {
        "pem": {"passTLSClientCert": {"pem": True}},
        "all": {"passTLSClientCert": {"info": {
            "notAfter": True, "notBefore": True, "sans": True, "serialNumber": True,
            "subject": {**every, "organizationalUnit": True}, "issuer": every}}},
        "some": {"passTLSClientCert": {"info": {"subject": {"commonName": True, "organizationalUnit": True},
                                                "issuer": {"organization": True}, "sans": True}}},
        "both": {"passTLSClientCert": {"pem": True, "info": {"subject": {"commonName": True}}}},
    }
    routers = {h: {"rule": f"Host(`{h}.test`)", "service": "app", "entryPoints": ["secure"],
                   "tls": {"options": "mtls"}, "middlewares": [h]} for h in HOSTS}
    routers["plain"] = {"rule": "Host(`plain.test`)", "service": "app", "entryPoints": ["web"],
                        "middlewares": ["both"]}
    return {
        "http": {"routers": routers, "middlewares": middlewares,
                 "services": {"app": {"loadBalancer": {"servers": [{"url": backends["app"].url}]}}}},
        "tls": {"certificates": [{"certFile": str(pki.server_cert), "keyFile": str(pki.server_key)}],
                "options": {"mtls": {"clientAuth": {"caFiles": [str(pki.ca_file)],
                                                    "clientAuthType": "RequireAndVerifyClientCert"}}}},
    }


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pass-tls-pki"))


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, backends: Backends, pki: Pki) -> Iterator[Pair]:
    with Pair(tmp_path_factory.mktemp("pass-tls"), backends, ENTRY_POINTS, dynamic(backends, pki)) as p:
        yield p


def https_raw(port: int, host: str, pki: Pki, data: bytes) -> Response:
    ctx = ssl.create_default_context(cafile=str(pki.ca_file))
    ctx.load_cert_chain(pki.client_cert, pki.client_key)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=host) as sock:
        sock.sendall(data)
        buf = b""
        while chunk := sock.recv(65536):
            buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = tuple((k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:]))
    return Response(int(lines[0].split(" ")[1]), "", headers, body)


def run(pair: Pair, proxy: Proxy, c: Case, pki: Pki, host: str) -> list[str]:
    mark = pair.backends.recorder.mark()
    if c.entry_point == "secure":
        resp = https_raw(proxy.ports["secure"], f"{host}.test", pki, c.request)
    else:
        return pair.run(proxy, c).lines
    return observe(resp, pair.backends.recorder.since(mark), c, Normaliser(proxy.ports)).lines


def req(host: str, *lines: str) -> str:
    return "\r\n".join(["GET /x HTTP/1.1", f"Host: {host}.test", "Connection: close", *lines]) + "\r\n\r\n"


CASES = [
    *(case(f"mtls-{h}", req(h, "X-Forwarded-Tls-Client-Cert: forged"), entry_point="secure") for h in HOSTS),
    case("plain-http-no-cert", req("plain"), entry_point="web"),
]


@pytest.mark.parametrize("c", CASES)
def test_pass_tls_client_cert(pair: Pair, pki: Pki, c: Case) -> None:
    assert pair.traefik is not None and pair.ferryman is not None
    host = c.request.split(b"Host: ", 1)[1].split(b".", 1)[0].decode()
    fail_diff(c, run(pair, pair.traefik, c, pki, host), run(pair, pair.ferryman, c, pki, host),
              pair.logged_errors())
