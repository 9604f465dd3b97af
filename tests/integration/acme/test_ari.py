"""ACME Renewal Information against a small real HTTP server (pebble 2.4 has no renewalInfo)."""

from __future__ import annotations

import datetime
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ferryman.acme.client import AcmeSettings, ari_renewal
from ferryman.acme.renewal import ari_cert_id

T0 = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)


class _CA(BaseHTTPRequestHandler):
    windows: dict[str, dict[str, str]] = {}
    with_ari = True

    def do_GET(self) -> None:
        port = self.server.server_address[1]  # type: ignore[index]
        if self.path == "/dir":
            body: dict[str, object] = {"newNonce": f"http://127.0.0.1:{port}/nonce"}
            if self.with_ari:
                body["renewalInfo"] = f"http://127.0.0.1:{port}/ari/"
        elif self.path.startswith("/ari/") and self.path[5:] in self.windows:
            body = {"suggestedWindow": self.windows[self.path[5:]]}
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def ca() -> Iterator[tuple[int, type[_CA]]]:
    handler = type("CA", (_CA,), {"windows": {}, "with_ari": True})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def _chain() -> tuple[bytes, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ari.example")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(T0)
            .not_valid_after(T0 + datetime.timedelta(days=90))
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM), cert


def _settings(port: int) -> AcmeSettings:
    return AcmeSettings(resolver="le", email="", ca_server=f"http://127.0.0.1:{port}/dir", key_type="EC256",
                        challenges=("http-01",), timeout=5)


def test_the_suggested_window_decides(ca: tuple[int, type[_CA]]) -> None:
    port, handler = ca
    pem, cert = _chain()
    handler.windows[ari_cert_id(cert)] = {"start": "2030-02-01T00:00:00Z", "end": "2030-02-03T00:00:00Z"}
    when, offered = ari_renewal(_settings(port), pem, "le:ari.example")
    assert offered and when is not None
    assert datetime.datetime(2030, 2, 1, tzinfo=datetime.UTC) <= when < datetime.datetime(2030, 2, 3,
                                                                                            tzinfo=datetime.UTC)
    assert ari_renewal(_settings(port), pem, "le:ari.example") == (when, True)  # stable per domain


def test_no_renewal_info_or_no_window_falls_back(ca: tuple[int, type[_CA]]) -> None:
    port, handler = ca
    pem, _cert = _chain()
    assert ari_renewal(_settings(port), pem, "k") == (None, True)  # 404 for this certificate
    handler.with_ari = False
    assert ari_renewal(_settings(port), pem, "k") == (None, False)  # directory without renewalInfo (pebble 2.4)
