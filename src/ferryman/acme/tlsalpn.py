"""TLS-ALPN-01 (RFC 8737), which certbot's ``acme`` 5.x no longer ships.

* :class:`TLSALPN01Response` registers the ``tls-alpn-01`` response type with the library (the
  challenge itself arrives as ``UnrecognizedChallenge``; its token is read from the JSON).
* :func:`challenge_context` builds the ``SSLContext`` served to the validator: a self-signed
  certificate for the domain with the critical ``id-pe-acmeIdentifier`` extension
  (1.3.6.1.5.5.7.1.31) holding DER OCTET STRING(SHA-256(key authorization)), ALPN ``acme-tls/1``
  only. The entry point picks it when a ClientHello offers ``acme-tls/1`` for a name with a
  pending challenge (:mod:`ferryman.server.h1`'s peek); every other handshake is unchanged.
"""

from __future__ import annotations

import datetime
import hashlib
import ssl
from typing import Any

from acme import challenges
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from josepy.b64 import b64encode
from josepy.jwk import JWK

__all__ = ["ACME_TLS_ALPN", "ACME_TLS_ALPN_BYTES", "ID_PE_ACME_IDENTIFIER", "TLSALPN01Response",
           "challenge_cert", "challenge_context", "key_authorization", "token_of"]

ACME_TLS_ALPN = "acme-tls/1"
ACME_TLS_ALPN_BYTES = ACME_TLS_ALPN.encode()
ID_PE_ACME_IDENTIFIER = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")


@challenges.ChallengeResponse.register
class TLSALPN01Response(challenges.KeyAuthorizationChallengeResponse):
    """The (empty, per RFC 8555) answer to a ``tls-alpn-01`` challenge."""

    typ = "tls-alpn-01"


def token_of(chall: Any) -> str:
    """The token of a challenge the library parsed (``token`` bytes) or left unrecognized (JSON)."""
    token = getattr(chall, "token", None)
    if isinstance(token, bytes):
        return b64encode(token).decode("ascii")
    jobj = getattr(chall, "jobj", None)
    if isinstance(jobj, dict) and isinstance(jobj.get("token"), str):
        return str(jobj["token"])
    raise ValueError("challenge has no token")


def key_authorization(token: str, account_key: JWK) -> str:
    thumbprint = b64encode(account_key.thumbprint(hash_function=hashes.SHA256)).decode("ascii")
    return f"{token}.{thumbprint}"


def challenge_cert(domain: str, key_authz: str) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) answering TLS-ALPN-01 for ``domain``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    digest = hashlib.sha256(key_authz.encode("ascii")).digest()
    der_octet_string = bytes([0x04, len(digest)]) + digest
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ACME challenge")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
            .add_extension(x509.UnrecognizedExtension(ID_PE_ACME_IDENTIFIER, der_octet_string), critical=True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def challenge_context(domain: str, key_authz: str) -> ssl.SSLContext:
    from ferryman.tls.store import LoadedCert, load_into

    cert_pem, key_pem = challenge_cert(domain, key_authz)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols([ACME_TLS_ALPN])
    load_into(ctx, LoadedCert(label=f"TLS-ALPN-01 challenge for {domain}", names=(domain,),
                              chain_pem=cert_pem, key_pem=key_pem))
    return ctx
