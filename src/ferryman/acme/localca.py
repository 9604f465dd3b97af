"""A local certificate authority for HTTPS without internet (``certificatesResolvers.<n>.localCA``).

Like Caddy's internal issuer: on first use ferryman creates a root (EC P-256, 10 years) in the
resolver's ``storage`` directory -- ``root.pem`` (the certificate users trust, e.g.
``curl --cacert``; 0644) and ``root.key`` (0600, refused when more open) -- both written
atomically, and reuses them on every start. Leaf certificates (EC P-256, ``certificatesDuration``,
12 h by default) are signed directly by the root for the routers' domains, kept in memory and
renewed by the resolver when a third of their lifetime is left.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ferryman.acme.storage import StorageError, atomic_write, check_private_file

__all__ = ["LocalAuthority"]

ROOT_LIFETIME = datetime.timedelta(days=3650)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass
class LocalAuthority:
    directory: Path
    root: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def root_file(self) -> Path:
        return self.directory / "root.pem"

    @classmethod
    def open(cls, directory: str | Path, name: str) -> LocalAuthority:
        """Load the CA kept in ``directory``, creating it the first time."""
        base = Path(directory)
        cert_path, key_path = base / "root.pem", base / "root.key"
        try:
            base.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the local CA directory {base}: {exc.strerror or exc}") from exc
        if key_path.exists() and cert_path.exists():
            check_private_file(key_path)
            try:
                key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
                root = x509.load_pem_x509_certificate(cert_path.read_bytes())
            except (OSError, ValueError) as exc:
                raise StorageError(f"cannot read the local CA in {base}: {exc} (fix: repair or remove "
                                   "root.pem and root.key; a new root must then be trusted again)") from exc
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise StorageError(f"{key_path}: expected an EC private key")
            return cls(base, root, key)
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ferryman"),
                             x509.NameAttribute(NameOID.COMMON_NAME, f"{name} - {now:%Y %m %d}")])
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        root = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + ROOT_LIFETIME)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False, key_agreement=False,
                                             key_cert_sign=True, crl_sign=True, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(ski, critical=False)
                .sign(key, hashes.SHA256()))
        atomic_write(key_path, _pem_key(key), 0o600)  # the key first: a root without its key is useless
        atomic_write(cert_path, root.public_bytes(serialization.Encoding.PEM), 0o644)
        return cls(base, root, key)

    def issue(self, domains: Sequence[str], lifetime: float) -> tuple[bytes, bytes]:
        """(chain PEM: leaf then root, key PEM) for ``domains`` valid ``lifetime`` seconds."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        sans: list[x509.GeneralName] = []
        for name in domains:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        not_after = min(now + datetime.timedelta(seconds=lifetime), self.root.not_valid_after_utc)
        leaf = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domains[0])]))
                .issuer_name(self.root.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(not_after)
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False, key_agreement=False,
                                             key_cert_sign=False, crl_sign=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                               critical=False)
                .sign(self.key, hashes.SHA256()))
        chain = leaf.public_bytes(serialization.Encoding.PEM) + self.root.public_bytes(serialization.Encoding.PEM)
        return chain, _pem_key(key)
