"""The ACME protocol with certbot's ``acme`` library: blocking, run in a worker thread.

:func:`issue` registers (or reuses) the account, orders a certificate for a domain list, answers
HTTP-01 or TLS-ALPN-01 through a :class:`ChallengeSink` (the resolver publishes the answers to the
entry points), waits for validation, finalizes and returns the chain and key. Errors are
:class:`AcmeError` with a message for the operator (the CA's problem detail when there is one).
"""

from __future__ import annotations

import datetime
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID
from josepy.jwa import ES256, ES384, ES512, RS256, JWASignature
from josepy.jwk import JWK, JWKEC, JWKRSA

from ferryman import __version__
from ferryman.acme.renewal import ari_cert_id, ari_choice
from ferryman.acme.storage import StoredAccount
from ferryman.acme.tlsalpn import TLSALPN01Response, key_authorization, token_of

__all__ = ["AcmeError", "AcmeSettings", "ChallengeSink", "Issued", "ari_renewal", "ca_bundle",
           "generate_account", "issue", "new_private_key"]

HTTP01 = "http-01"
TLSALPN01 = "tls-alpn-01"

#: Traefik's keyType -> lego's certcrypto.KeyType (what acme.json stores as Account.KeyType)
LEGO_KEY_TYPES = {"EC256": "P256", "EC384": "P384", "RSA2048": "2048", "RSA4096": "4096", "RSA8192": "8192"}


class AcmeError(Exception):
    pass


class ChallengeSink(Protocol):
    def add_http(self, token: str, key_authz: str) -> None: ...
    def remove_http(self, token: str) -> None: ...
    def add_tls(self, domain: str, key_authz: str) -> None: ...
    def remove_tls(self, domain: str) -> None: ...


@dataclass(frozen=True)
class AcmeSettings:
    resolver: str
    email: str
    ca_server: str
    key_type: str
    challenges: tuple[str, ...]  # preference order: http-01, tls-alpn-01
    verify: str | bool = True     # requests' verify: a CA bundle path, or True (system)
    timeout: float = 30.0
    preferred_chain: str = ""
    eab_kid: str = ""
    eab_hmac: str = ""
    profile: str = ""


@dataclass(frozen=True)
class Issued:
    chain_pem: bytes
    key_pem: bytes
    account: StoredAccount


def new_private_key(key_type: str) -> PrivateKeyTypes:
    if key_type == "EC256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "EC384":
        return ec.generate_private_key(ec.SECP384R1())
    size = {"RSA2048": 2048, "RSA8192": 8192}.get(key_type, 4096)
    return rsa.generate_private_key(public_exponent=65537, key_size=size)


def generate_account(email: str, key_type: str) -> StoredAccount:
    """Traefik's ``NewAccount``: an RSA 4096 key (PKCS#1 DER), whatever the certificates' key type."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    return StoredAccount(email=email, private_key=der, key_type=LEGO_KEY_TYPES.get(key_type, "4096"))


def ca_bundle(ca_certificates: Sequence[str], system_pool: bool, env: dict[str, str] | None = None) -> str | bool:
    """requests' ``verify`` from ``caCertificates`` and ``LEGO_CA_CERTIFICATES`` (paths separated by
    ``,`` or ``:``), as lego: custom CAs replace the system pool unless ``caSystemCertPool`` (or
    ``LEGO_CA_SYSTEM_CERT_POOL``) adds it."""
    environ = os.environ if env is None else env
    paths = [p for p in ca_certificates if p]
    extra = environ.get("LEGO_CA_CERTIFICATES", "")
    for part in extra.replace(",", ":").split(":"):
        if part.strip():
            paths.append(part.strip())
    if not paths:
        return True
    system = system_pool or environ.get("LEGO_CA_SYSTEM_CERT_POOL", "").lower() in ("1", "true")
    if len(paths) == 1 and not system:
        return paths[0]
    chunks: list[bytes] = []
    if system:
        import certifi

        chunks.append(open(certifi.where(), "rb").read())  # noqa: SIM115
    for path in paths:
        try:
            with open(path, "rb") as f:
                chunks.append(f.read())
        except OSError as exc:
            raise AcmeError(f"cannot read CA certificate {path}: {exc.strerror or exc}") from exc
    fd, bundle = tempfile.mkstemp(prefix="ferryman-acme-ca-", suffix=".pem")
    with os.fdopen(fd, "wb") as f:
        f.write(b"\n".join(chunks))
    return bundle


def _account_key(account: StoredAccount) -> JWK:
    try:
        key = serialization.load_der_private_key(account.private_key, password=None)
    except ValueError as exc:
        raise AcmeError(f"the stored account key cannot be read ({exc})") from exc
    if isinstance(key, rsa.RSAPrivateKey):
        return JWKRSA(key=key)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return JWKEC(key=key)
    raise AcmeError("the stored account key is neither RSA nor EC")


def _alg(key: JWK) -> JWASignature:
    if isinstance(key, JWKEC):
        return {256: ES256, 384: ES384}.get(key.key.curve.key_size, ES512)
    return RS256


def _problem(exc: BaseException) -> str:
    if isinstance(exc, errors.ValidationError):
        details: list[str] = []
        for authzr in exc.failed_authzrs:
            for chall in authzr.body.challenges:
                if chall.error is not None:
                    details.append(f"{authzr.body.identifier.value}: {chall.error.detail or chall.error.typ}")
        return "validation failed: " + "; ".join(details)
    if isinstance(exc, messages.Error):
        return f"{exc.typ}: {exc.detail}" if exc.detail else str(exc.typ)
    if isinstance(exc, requests.RequestException):
        return f"cannot reach the CA: {exc.__class__.__name__}: {exc}"
    if isinstance(exc, errors.TimeoutError):
        return "the CA did not validate the challenges in time"
    return f"{exc.__class__.__name__}: {exc}"


def connect(settings: AcmeSettings, account: StoredAccount | None) -> tuple[client.ClientV2, StoredAccount]:
    """A client with a registered account (registering one when ``account`` is None or not bound
    to this CA's ``Registration``)."""
    if account is None:
        account = generate_account(settings.email, settings.key_type)
    jwk = _account_key(account)
    net = client.ClientNetwork(jwk, alg=_alg(jwk), verify_ssl=settings.verify,  # type: ignore[arg-type]
                               user_agent=f"ferryman/{__version__}", timeout=int(settings.timeout))
    try:
        directory = client.ClientV2.get_directory(settings.ca_server, net)
    except Exception as exc:
        raise AcmeError(f"cannot get the ACME directory {settings.ca_server}: {_problem(exc)}") from exc
    acme = client.ClientV2(directory, net)
    uri = account.uri
    if uri and urlsplit(uri).netloc == urlsplit(settings.ca_server).netloc:  # Traefik: same CA host
        net.account = messages.RegistrationResource(uri=uri, body=messages.Registration())
        return acme, account
    try:
        eab = None
        if settings.eab_kid and settings.eab_hmac:
            eab = messages.ExternalAccountBinding.from_data(
                account_public_key=jwk.public_key(), kid=settings.eab_kid, hmac_key=settings.eab_hmac,
                directory=directory)
        new = messages.NewRegistration.from_data(email=settings.email or None, terms_of_service_agreed=True,
                                                 external_account_binding=eab)
        try:
            regr = acme.new_account(new)
        except errors.ConflictError as conflict:  # the key is already registered: reuse it
            regr = messages.RegistrationResource(uri=conflict.location, body=messages.Registration())
            net.account = regr
    except AcmeError:
        raise
    except Exception as exc:
        raise AcmeError(f"account registration failed: {_problem(exc)}") from exc
    body: dict[str, Any] = {}
    if regr.body is not None:  # what lego keeps (the EAB object the library echoes is not JSON)
        if regr.body.status:
            body["status"] = str(regr.body.status)
        if regr.body.contact:
            body["contact"] = list(regr.body.contact)
    account = StoredAccount(email=account.email, private_key=account.private_key, key_type=account.key_type,
                            registration={"body": body, "uri": regr.uri})
    return acme, account


def issue(settings: AcmeSettings, account: StoredAccount | None, domains: Sequence[str],
          sink: ChallengeSink, deadline_seconds: float = 90.0) -> Issued:
    acme, account = connect(settings, account)
    jwk = acme.net.key
    assert jwk is not None
    key = new_private_key(settings.key_type)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    csr = crypto_util.make_csr(key_pem, list(domains))
    http_tokens: list[str] = []
    tls_domains: list[str] = []
    try:
        orderr = acme.new_order(csr, profile=settings.profile or None)
        for authzr in orderr.authorizations:
            if authzr.body.status == messages.STATUS_VALID:
                continue  # authorization reused by the CA
            domain = authzr.body.identifier.value
            offered = {c.chall.typ if not isinstance(c.chall, challenges.UnrecognizedChallenge)
                       else c.chall.jobj.get("type"): c for c in authzr.body.challenges}
            chosen = next((t for t in settings.challenges if t in offered), None)
            if chosen is None:
                raise AcmeError(f"{domain}: the CA offers {', '.join(sorted(map(str, offered)))}, none of which "
                                f"is configured ({', '.join(settings.challenges)})")
            challb = offered[chosen]
            token = token_of(challb.chall)
            key_authz = key_authorization(token, jwk)
            response: challenges.ChallengeResponse
            if chosen == HTTP01:
                sink.add_http(token, key_authz)
                http_tokens.append(token)
                response = challenges.HTTP01Response(key_authorization=key_authz)
            else:
                sink.add_tls(domain, key_authz)
                tls_domains.append(domain)
                response = TLSALPN01Response(key_authorization=key_authz)
            acme.answer_challenge(challb, response)
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=deadline_seconds)
        orderr = acme.poll_authorizations(orderr, deadline)
        orderr = acme.finalize_order(orderr, deadline, fetch_alternative_chains=bool(settings.preferred_chain))
    except AcmeError:
        raise
    except Exception as exc:
        raise AcmeError(_problem(exc)) from exc
    finally:
        for token in http_tokens:
            sink.remove_http(token)
        for domain in tls_domains:
            sink.remove_tls(domain)
    chain = orderr.fullchain_pem
    if settings.preferred_chain:
        chain = _preferred(chain, orderr.alternative_fullchains_pem or [], settings.preferred_chain)
    return Issued(chain_pem=chain.encode(), key_pem=key_pem, account=account)


def _preferred(default: str, alternatives: Sequence[str], issuer_cn: str) -> str:
    """lego's preferredChain: the first chain whose top certificate is issued by ``issuer_cn``."""
    for chain in (default, *alternatives):
        certs = x509.load_pem_x509_certificates(chain.encode())
        top = certs[-1]
        names = [a.value for a in top.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if issuer_cn in names:
            return chain
    return default


def ari_renewal(settings: AcmeSettings, chain_pem: bytes, key: str) -> tuple[datetime.datetime | None, bool]:
    """(the renewal moment from the CA's ACME Renewal Information, whether the CA offers ARI).
    The moment is None when the directory has no ``renewalInfo`` (pebble 2.4), the CA cannot be
    reached, or it has no window for this certificate."""
    session = requests.Session()
    try:
        resp = session.get(settings.ca_server, verify=settings.verify, timeout=settings.timeout)
        base = resp.json().get("renewalInfo")
    except (requests.RequestException, ValueError, AttributeError):
        return None, False
    if not isinstance(base, str) or not base:
        return None, False
    try:
        cert = x509.load_pem_x509_certificates(chain_pem)[0]
        info = session.get(f"{base.rstrip('/')}/{ari_cert_id(cert)}", verify=settings.verify,
                           timeout=settings.timeout)
        info.raise_for_status()
        window: dict[str, Any] = info.json()["suggestedWindow"]
        start = _rfc3339(window["start"])
        end = _rfc3339(window["end"])
    except (requests.RequestException, ValueError, KeyError, TypeError, x509.ExtensionNotFound):
        return None, True
    return ari_choice(start, end, key), True


def _rfc3339(value: str) -> datetime.datetime:
    stamp = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.UTC)
    return stamp
