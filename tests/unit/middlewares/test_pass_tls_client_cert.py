"""passTLSClientCert's header formats (the wire behaviour is compared with Traefik in
tests/oracle/test_oracle_pass_tls_client_cert.py)."""

from __future__ import annotations

import base64
import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ferryman.dynamic.models import CertInfo
from ferryman.errors import ConfigError
from ferryman.middlewares import build_middleware
from ferryman.middlewares.pass_tls_client_cert import cert_info, cert_pem
from tests.integration.dataplane.dp_support import Responder
from tests.unit.middlewares.conformance_support import mw


def _cert() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "a"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "b"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "first"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "last")])
    start = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(77).not_valid_before(start).not_valid_after(start + datetime.timedelta(seconds=10))
            .add_extension(x509.SubjectAlternativeName([
                x509.UniformResourceIdentifier("spiffe://td/x"), x509.DNSName("d.test"),
                x509.IPAddress(ipaddress.ip_address("::ffff:1.2.3.4"))]), critical=False)
            .sign(key, hashes.SHA256()))


def test_info_format_order_and_values() -> None:
    info = CertInfo.model_validate({"notBefore": True, "notAfter": True, "sans": True, "serialNumber": True,
                                    "subject": {"commonName": True, "organizationalUnit": True, "country": True}})
    assert cert_info(_cert(), info) == (
        'Subject="C=US,OU=a,OU=b,CN=last";SerialNumber="77";NB="1893456000";NA="1893456010";'
        'SAN="d.test,1.2.3.4,spiffe://td/x"')


def test_pem_is_base64_der() -> None:
    der = _cert().public_bytes(serialization.Encoding.DER)
    assert base64.b64decode(cert_pem(der)) == der


def test_empty_info_is_refused() -> None:
    with pytest.raises(ConfigError, match="info cannot be empty"):
        build_middleware("p", mw("passTLSClientCert", {"info": {}}), Responder())
