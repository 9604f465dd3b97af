"""``/api/certificates``: the default store's certificates as Traefik 3.7 shows them
(``pkg/api/certificate.go``): SHA-256 fingerprint as ``name``, SANs, validity, issuer and subject,
key type and size, Go's signature algorithm name, fingerprints and a ``status`` from the expiry
(``expired``; ``warning`` under 30 days; else ``enabled``). The generated ``TRAEFIK DEFAULT CERT`` is
left out, as in Traefik. Certificates are loaded by compile once an entry point serves TLS.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ferryman.api.gojson import encode
from ferryman.tls.store import LoadedCert, TLSStore

__all__ = ["CertItem", "certificate_items"]

DEFAULT_CERT_CN = "TRAEFIK DEFAULT CERT"
WARN_BEFORE = datetime.timedelta(days=30)

#: Go's ``x509.SignatureAlgorithm.String()`` by OID.
_SIGNATURES = {
    "1.2.840.113549.1.1.4": "MD5-RSA", "1.2.840.113549.1.1.5": "SHA1-RSA",
    "1.2.840.113549.1.1.11": "SHA256-RSA", "1.2.840.113549.1.1.12": "SHA384-RSA",
    "1.2.840.113549.1.1.13": "SHA512-RSA", "1.2.840.113549.1.1.10": "SHA256-RSAPSS",
    "1.2.840.10045.4.1": "ECDSA-SHA1", "1.2.840.10045.4.3.2": "ECDSA-SHA256",
    "1.2.840.10045.4.3.3": "ECDSA-SHA384", "1.2.840.10045.4.3.4": "ECDSA-SHA512", "1.3.101.112": "Ed25519",
}


@dataclass(frozen=True, slots=True)
class CertItem:
    """One certificate: its encoded JSON and what filters and sorting look at."""

    name: str  # fingerprint (the URL id)
    body: bytes
    status: str
    common_name: str
    issuer: str
    not_after: datetime.datetime
    search: tuple[str, ...]


def _first(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    for attr in name.get_attributes_for_oid(oid):
        value = attr.value
        return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return ""


def _go_time(value: datetime.datetime) -> str:
    stamp = value.astimezone(datetime.UTC)
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S")
    if stamp.microsecond:
        text += f".{stamp.microsecond:06d}".rstrip("0")
    return text + "Z"


def status_for(not_after: datetime.datetime, now: datetime.datetime) -> str:
    remaining = not_after - now
    if remaining < datetime.timedelta(0):
        return "expired"
    return "warning" if remaining < WARN_BEFORE else "enabled"


def _representation(cert: x509.Certificate, now: datetime.datetime) -> tuple[dict[str, Any], CertItem]:
    der = cert.public_bytes(serialization.Encoding.DER)
    fingerprint = hashlib.sha256(der).hexdigest()
    key = cert.public_key()
    key_type, key_size = "Unknown", 0
    if isinstance(key, rsa.RSAPublicKey):
        key_type, key_size = "RSA", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key_type, key_size = "ECDSA", key.curve.key_size
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    sans: list[str] = []
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [*ext.get_values_for_type(x509.DNSName), *(str(ip) for ip in ext.get_values_for_type(x509.IPAddress))]
    except x509.ExtensionNotFound:
        pass
    sans.sort()
    not_after, not_before = cert.not_valid_after_utc, cert.not_valid_before_utc
    issuer_org = _first(cert.issuer, NameOID.ORGANIZATION_NAME)
    issuer_cn = _first(cert.issuer, NameOID.COMMON_NAME)
    common_name = _first(cert.subject, NameOID.COMMON_NAME)
    status = status_for(not_after, now)
    out: dict[str, Any] = {
        "name": fingerprint, "sans": sans, "notAfter": _go_time(not_after), "notBefore": _go_time(not_before),
        "serialNumber": str(cert.serial_number), "commonName": common_name,
    }
    for key_name, value in (("issuerOrg", issuer_org), ("issuerCN", issuer_cn),
                            ("issuerCountry", _first(cert.issuer, NameOID.COUNTRY_NAME)),
                            ("organization", _first(cert.subject, NameOID.ORGANIZATION_NAME)),
                            ("country", _first(cert.subject, NameOID.COUNTRY_NAME))):
        if value:
            out[key_name] = value
    out["version"] = f"v{cert.version.value + 1}"
    out["keyType"] = key_type
    if key_size:
        out["keySize"] = key_size
    oid = cert.signature_algorithm_oid.dotted_string
    out["signatureAlgorithm"] = _SIGNATURES.get(oid, oid)
    out["certFingerprint"] = fingerprint
    out["publicKeyFingerprint"] = hashlib.sha256(spki).hexdigest()
    out["status"] = status
    item = CertItem(name=fingerprint, body=encode(out, newline=False), status=status, common_name=common_name,
                    issuer=issuer_org or issuer_cn, not_after=not_after,
                    search=(common_name, issuer_org, issuer_cn, *sans))
    return out, item


def _leaves(store: TLSStore) -> Iterable[LoadedCert]:
    yield from store.certs
    yield store.default


def certificate_items(store: TLSStore | None, now: datetime.datetime) -> list[CertItem]:
    """The store's certificates (the generated default one excluded), one per fingerprint,
    sorted by common name as Traefik's default order."""
    if store is None:
        return []
    found: dict[str, CertItem] = {}
    for loaded in _leaves(store):
        try:
            leaf = x509.load_pem_x509_certificates(loaded.chain_pem)[0]
        except ValueError:
            continue
        if _first(leaf.subject, NameOID.COMMON_NAME) == DEFAULT_CERT_CN:
            continue
        _, item = _representation(leaf, now)
        found.setdefault(item.name, item)
    return sorted(found.values(), key=lambda i: (i.common_name, i.name))
