"""Certificates, TLS options and the ``SSLContext`` chosen for each handshake.

Built by compile from the merged ``tls`` section (Traefik semantics, ``pkg/tls``):

* ``tls.certificates``: ``certFile``/``keyFile`` are file paths or inline PEM; ``stores`` is ignored
  (every certificate goes to the ``default`` store, as Traefik forces). A certificate answers for
  its subject CN, SAN DNS names and SAN IPs (Traefik's ``AppendCertificate``); the first one
  configured wins a name. A certificate that cannot be read or does not match its key is a
  diagnostic naming the file; the others keep serving.
* selection by SNI: exact name, then a single-label wildcard (``*.example.com`` for
  ``a.example.com``), else ``tls.stores.default.defaultCertificate``, else a self-signed
  ``TRAEFIK DEFAULT CERT`` (EC P-256) generated once per process.
* TLS options (``tls.options.<name>``; ``default`` applies to hosts without their own): the option
  of a host is the one of the TLS routers whose ``Host()`` names it (merge already resolved
  conflicts to ``default``, with a warning). ``sniStrict`` on the chosen option refuses handshakes
  without SNI or with an SNI no certificate covers.

One ``SSLContext`` per (certificate, option) is built here, at compile time; a handshake only
picks one (:meth:`TLSServing.select`). The SNI is read from the ClientHello before the handshake
(:mod:`ferryman.tls.clienthello`), so every setting of the chosen context applies — versions,
ciphers, client authentication — not only its certificate, as switching ``SSLObject.context`` in an
``sni_callback`` would do (OpenSSL's ``SSL_set_SSL_CTX`` swaps the certificate, not the protocol
versions, cipher list or verify mode already copied to the connection).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ferryman.dynamic.models import Certificate, CertificatePair, TLSConfiguration, TLSOptions
from ferryman.tls.verify import make_permissive, set_client_ca_names

__all__ = [
    "CLIENT_AUTH_TYPES",
    "GO_CIPHER_SUITES",
    "CompiledOptions",
    "LoadedCert",
    "TLSProblem",
    "TLSServing",
    "TLSStore",
    "compile_options",
    "default_certificate",
    "load_into",
]

DEFAULT_OPTIONS = "default"
DEFAULT_CERT_CN = "TRAEFIK DEFAULT CERT"

VERSIONS: Mapping[str, ssl.TLSVersion] = {
    "VersionTLS10": ssl.TLSVersion.TLSv1,
    "VersionTLS11": ssl.TLSVersion.TLSv1_1,
    "VersionTLS12": ssl.TLSVersion.TLSv1_2,
    "VersionTLS13": ssl.TLSVersion.TLSv1_3,
}

#: Go's cipher suite names (crypto/tls) -> OpenSSL's. TLS 1.3 suites are accepted and ignored, as
#: in Go (not configurable for TLS 1.3).
GO_CIPHER_SUITES: Mapping[str, str] = {
    "TLS_RSA_WITH_RC4_128_SHA": "RC4-SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA": "DES-CBC3-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA": "ECDHE-ECDSA-RC4-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA": "ECDHE-RSA-RC4-SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA": "ECDHE-RSA-DES-CBC3-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
TLS13_SUITES = frozenset({"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
                          "TLS_FALLBACK_SCSV"})

#: Go's curve names and the RFC names Traefik also accepts -> OpenSSL group names.
CURVES: Mapping[str, str] = {
    "curvep256": "prime256v1", "secp256r1": "prime256v1",
    "curvep384": "secp384r1", "secp384r1": "secp384r1",
    "curvep521": "secp521r1", "secp521r1": "secp521r1",
    "x25519": "X25519",
}

CLIENT_AUTH_TYPES = ("NoClientCert", "RequestClientCert", "RequireAnyClientCert",
                     "VerifyClientCertIfGiven", "RequireAndVerifyClientCert")

#: ALPN: Traefik advertises h2, http/1.1 and acme-tls/1 by default. A ClientHello offering
#: acme-tls/1 for a name with a pending TLS-ALPN-01 challenge gets the challenge's own context
#: (ferryman.acme.tlsalpn); elsewhere acme-tls/1 is only advertised, as in Go.
SUPPORTED_ALPN = ("h2", "http/1.1", "acme-tls/1")


@dataclass(frozen=True)
class TLSProblem:
    """A diagnostic: ``kind`` ``tls.certificates``, ``tls.stores`` or ``tls.options``."""

    kind: str
    name: str
    level: str
    message: str


class PEMError(Exception):
    pass


def _read_pem(value: str, what: str) -> tuple[bytes, str]:
    """``value`` is inline PEM or a file path; returns (content, label for messages)."""
    if "-----BEGIN" in value:
        return value.encode(), f"inline {what}"
    if not value:
        raise PEMError(f"{what} is empty")
    try:
        return Path(value).read_bytes(), value
    except OSError as exc:
        raise PEMError(f"cannot read {what} {value}: {exc.strerror or exc}") from exc


# --------------------------------------------------------------------------------------------
# certificates


@dataclass(frozen=True, eq=False)
class LoadedCert:
    """A certificate with its key, ready to load into contexts."""

    label: str                 # the certFile path (or "inline certFile (certificates[i])")
    names: tuple[str, ...]     # lower-case CN, SAN DNS names, SAN IPs
    chain_pem: bytes
    key_pem: bytes
    not_after: datetime.datetime | None = None


def _cert_names(cert: x509.Certificate) -> tuple[str, ...]:
    names: list[str] = []
    for attr in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        value = attr.value if isinstance(attr.value, str) else attr.value.decode("utf-8", "replace")
        if value:
            names.append(value.lower())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        names.extend(n.lower() for n in san.get_values_for_type(x509.DNSName))
        names.extend(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    return tuple(dict.fromkeys(names))


def load_certificate(cert_value: str, key_value: str, label_hint: str) -> LoadedCert:
    """Read and check a certificate/key pair (raises :class:`PEMError` naming the file)."""
    chain, cert_label = _read_pem(cert_value, f"certFile ({label_hint})")
    key, key_label = _read_pem(key_value, f"keyFile ({label_hint})")
    try:
        certs = x509.load_pem_x509_certificates(chain)
    except ValueError as exc:
        raise PEMError(f"{cert_label}: not a PEM certificate ({exc})") from exc
    try:
        serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError) as exc:
        raise PEMError(f"{key_label}: not a PEM private key without password ({exc})") from exc
    leaf = certs[0]
    loaded = LoadedCert(label=cert_label, names=_cert_names(leaf), chain_pem=chain, key_pem=key,
                        not_after=leaf.not_valid_after_utc)
    # Loading into a context checks that the key matches the certificate.
    try:
        load_into(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), loaded)
    except ssl.SSLError as exc:
        raise PEMError(f"{cert_label}: certificate and key {key_label} do not match ({exc.reason or exc})") from exc
    return loaded


def _with_temp_file(content: bytes, use: Callable[[str], object]) -> None:
    """OpenSSL's loaders take paths: write ``content`` to a private temporary file (0600), use it,
    remove it."""
    fd, path = tempfile.mkstemp(prefix="ferryman-tls-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        use(path)
    finally:
        os.unlink(path)


def load_into(ctx: ssl.SSLContext, cert: LoadedCert) -> None:
    _with_temp_file(cert.key_pem.rstrip(b"\n") + b"\n" + cert.chain_pem, ctx.load_cert_chain)


_load_into = load_into  # the name ferryman.upstream.tls imports


@cache
def default_certificate() -> LoadedCert:
    """Traefik's self-signed ``TRAEFIK DEFAULT CERT`` (EC P-256), generated once per process."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DEFAULT_CERT_CN)])
    now = datetime.datetime.now(datetime.UTC)
    serial = x509.random_serial_number()
    fqdn = f"{serial % (1 << 64):x}.{(serial >> 64) % (1 << 64):x}.traefik.default"
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(serial).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(fqdn)]), critical=False)
            .sign(key, hashes.SHA256()))
    return LoadedCert(
        label="TRAEFIK DEFAULT CERT (generated)", names=(),
        chain_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()),
        not_after=cert.not_valid_after_utc)


# --------------------------------------------------------------------------------------------
# options


@dataclass(frozen=True)
class CompiledOptions:
    name: str
    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    maximum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
    ciphers: str | None = None
    curve: str | None = None
    no_tickets: bool = False
    sni_strict: bool = False
    client_auth: str = "NoClientCert"
    ca_pem: str = ""
    alpn: tuple[str, ...] = SUPPORTED_ALPN
    warnings: tuple[str, ...] = ()


def compile_options(name: str, opts: TLSOptions) -> CompiledOptions:
    """Translate Traefik's options; raises ``ValueError`` with the reason for unusable ones."""
    warnings: list[str] = []
    minimum = ssl.TLSVersion.TLSv1_2
    maximum = ssl.TLSVersion.TLSv1_3
    if opts.min_version:
        if opts.min_version not in VERSIONS:
            raise ValueError(f"unknown minVersion {opts.min_version!r} (known: {', '.join(VERSIONS)})")
        minimum = VERSIONS[opts.min_version]
    if opts.max_version:
        if opts.max_version not in VERSIONS:
            raise ValueError(f"unknown maxVersion {opts.max_version!r} (known: {', '.join(VERSIONS)})")
        maximum = VERSIONS[opts.max_version]
    if minimum > maximum:
        raise ValueError(f"minVersion {opts.min_version} is above maxVersion {opts.max_version}")
    ciphers: str | None = None
    if opts.cipher_suites:
        mapped: list[str] = []
        for suite in opts.cipher_suites:
            if suite in TLS13_SUITES:
                continue
            openssl = GO_CIPHER_SUITES.get(suite)
            if openssl is None:
                raise ValueError(f"unknown cipher suite {suite!r} (use Go's names, e.g. "
                                 "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)")
            mapped.append(openssl)
        if mapped:
            ciphers = ":".join(dict.fromkeys(mapped))
            if minimum < ssl.TLSVersion.TLSv1_2:
                ciphers += ":@SECLEVEL=0"
    elif minimum < ssl.TLSVersion.TLSv1_2:
        ciphers = "DEFAULT:@SECLEVEL=0"  # OpenSSL 3 refuses TLS 1.0/1.1 at its default level
    curve: str | None = None
    if opts.curve_preferences:
        first = opts.curve_preferences[0]
        curve = CURVES.get(first.lower())
        if curve is None:
            raise ValueError(f"unknown curve {first!r} (known: CurveP256, CurveP384, CurveP521, X25519)")
        for other in opts.curve_preferences[1:]:
            if other.lower() not in CURVES:
                raise ValueError(f"unknown curve {other!r} (known: CurveP256, CurveP384, CurveP521, X25519)")
        if len(opts.curve_preferences) > 1:
            warnings.append(f"curvePreferences: Python's ssl sets one curve; only {first} is offered "
                            f"({', '.join(opts.curve_preferences[1:])} ignored)")
    auth = "NoClientCert"
    ca_pem = ""
    if opts.client_auth is not None:
        auth = opts.client_auth.client_auth_type or "NoClientCert"
        if auth not in CLIENT_AUTH_TYPES:
            raise ValueError(f"unknown clientAuthType {auth!r} (known: {', '.join(CLIENT_AUTH_TYPES)})")
        parts: list[str] = []
        for value in opts.client_auth.ca_files:
            try:
                content, label = _read_pem(value, "clientAuth.caFiles")
            except PEMError as exc:
                raise ValueError(str(exc)) from exc
            try:
                if not x509.load_pem_x509_certificates(content):
                    raise ValueError("no certificate")
            except ValueError as exc:
                raise ValueError(f"clientAuth.caFiles: {label}: not a PEM certificate ({exc})") from exc
            parts.append(content.decode("ascii", "replace"))
        ca_pem = "\n".join(parts)
        if auth in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert") and not ca_pem:
            raise ValueError(f"clientAuthType {auth} needs clientAuth.caFiles")
    alpn: tuple[str, ...] = SUPPORTED_ALPN
    if opts.alpn_protocols:
        alpn = tuple(p for p in opts.alpn_protocols if p in SUPPORTED_ALPN)
    return CompiledOptions(name=name, minimum=minimum, maximum=maximum, ciphers=ciphers, curve=curve,
                           no_tickets=opts.disable_session_tickets, sni_strict=opts.sni_strict,
                           client_auth=auth, ca_pem=ca_pem, alpn=alpn, warnings=tuple(warnings))


def build_context(cert: LoadedCert, opts: CompiledOptions) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = opts.minimum
    ctx.maximum_version = opts.maximum
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE  # Go's servers prefer their own order
    if opts.ciphers is not None:
        ctx.set_ciphers(opts.ciphers)
    if opts.curve is not None:
        ctx.set_ecdh_curve(opts.curve)
    if opts.no_tickets:
        ctx.options |= ssl.OP_NO_TICKET
        ctx.num_tickets = 0
    if opts.alpn:
        ctx.set_alpn_protocols(list(opts.alpn))
    load_into(ctx, cert)
    if opts.ca_pem:
        ctx.load_verify_locations(cadata=opts.ca_pem)
        if opts.client_auth != "NoClientCert":
            _with_temp_file(opts.ca_pem.encode(), lambda path: set_client_ca_names(ctx, path))
    auth = opts.client_auth
    if auth == "VerifyClientCertIfGiven":
        ctx.verify_mode = ssl.CERT_OPTIONAL
    elif auth == "RequireAndVerifyClientCert":
        ctx.verify_mode = ssl.CERT_REQUIRED
    elif (auth in ("RequestClientCert", "RequireAnyClientCert")
          and not make_permissive(ctx, require=auth == "RequireAnyClientCert")):
        raise ValueError(f"clientAuthType {auth} needs OpenSSL's verify callback, which this Python "
                         "cannot reach (ctypes/libssl unavailable)")
    return ctx


# --------------------------------------------------------------------------------------------
# the store


@dataclass(eq=False)
class TLSStore:
    """Certificates and compiled options of one merged ``tls`` section (rebuilt only when it changes)."""

    config: TLSConfiguration
    certs: list[LoadedCert] = field(default_factory=list)
    exact: dict[str, LoadedCert] = field(default_factory=dict)
    default: LoadedCert = field(default_factory=default_certificate)
    options: dict[str, CompiledOptions] = field(default_factory=dict)
    option_errors: dict[str, str] = field(default_factory=dict)
    problems: list[TLSProblem] = field(default_factory=list)
    _contexts: dict[tuple[int, str], ssl.SSLContext] = field(default_factory=dict)

    @classmethod
    def build(cls, config: TLSConfiguration) -> TLSStore:
        store = cls(config=config)
        store._load_certificates(config.certificates)
        store._load_default(config)
        for name, opts in config.options.items():
            try:
                compiled = compile_options(name, opts)
            except ValueError as exc:
                store.option_errors[name] = str(exc)
                store.problems.append(TLSProblem("tls.options", name, "error", str(exc)))
                continue
            store.options[name] = compiled
            store.problems.extend(TLSProblem("tls.options", name, "warning", w) for w in compiled.warnings)
        if DEFAULT_OPTIONS not in store.options:
            store.options[DEFAULT_OPTIONS] = CompiledOptions(name=DEFAULT_OPTIONS)
        return store

    def _load_certificates(self, certificates: Sequence[Certificate]) -> None:
        for index, cert in enumerate(certificates):
            try:
                loaded = load_certificate(cert.cert_file, cert.key_file, f"tls.certificates[{index}]")
            except PEMError as exc:
                self.problems.append(TLSProblem("tls.certificates", f"certificates[{index}]", "error",
                                                f"{exc}; this certificate is not served"))
                continue
            if not loaded.names:
                self.problems.append(TLSProblem("tls.certificates", loaded.label, "warning",
                                                "certificate has no CN or SAN names; never selected by SNI"))
            self.certs.append(loaded)
            for name in loaded.names:
                self.exact.setdefault(name, loaded)  # the first certificate for a name wins

    def _load_default(self, config: TLSConfiguration) -> None:
        store = config.stores.get("default")
        pair: CertificatePair | None = store.default_certificate if store is not None else None
        if store is not None and store.default_generated_cert is not None:
            self.problems.append(TLSProblem("tls.stores", "default", "warning",
                                            "defaultGeneratedCert needs ACME, not implemented yet; "
                                            "not used"))
        if pair is None:
            return
        try:
            self.default = load_certificate(pair.cert_file, pair.key_file,
                                            "tls.stores.default.defaultCertificate")
        except PEMError as exc:
            self.problems.append(TLSProblem("tls.stores", "default", "error",
                                            f"defaultCertificate: {exc}; the generated default certificate "
                                            "is served instead"))

    def lookup(self, sni: str) -> LoadedCert | None:
        """Exact name, then single-label wildcard; ``None`` when no certificate covers ``sni``."""
        found = self.exact.get(sni)
        if found is not None:
            return found
        dot = sni.find(".")
        if dot > 0:
            return self.exact.get("*" + sni[dot:])
        return None

    def context(self, cert: LoadedCert, option: str) -> ssl.SSLContext:
        key = (id(cert), option)
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = self._contexts[key] = build_context(cert, self.options[option])
        return ctx

    def serving(self, host_options: Mapping[str, str]) -> TLSServing:
        """What one entry point serves: ``host_options`` maps SNI host names to option names."""
        usable = {h: o for h, o in host_options.items() if o in self.options}
        names = {DEFAULT_OPTIONS, *usable.values()}
        failed: dict[str, str] = {}
        for option in sorted(names):
            for cert in (*self.certs, self.default):
                try:
                    self.context(cert, option)
                except (ValueError, ssl.SSLError) as exc:
                    failed[option] = f"{cert.label}: {exc}"
                    break
        for option, why in failed.items():
            if option not in self.option_errors:
                self.option_errors[option] = why
                self.problems.append(TLSProblem("tls.options", option, "error", why))
        if DEFAULT_OPTIONS in failed:
            # Never leave the unknown-host path without a context: Traefik's defaults.
            self.options[DEFAULT_OPTIONS] = CompiledOptions(name=DEFAULT_OPTIONS)
            for cert in (*self.certs, self.default):
                self._contexts.pop((id(cert), DEFAULT_OPTIONS), None)
                self.context(cert, DEFAULT_OPTIONS)
        usable = {h: o for h, o in usable.items() if o not in failed}
        return TLSServing(self, usable)


class TLSServing:
    """One entry point's TLS view: pick the context for a ClientHello's SNI."""

    __slots__ = ("_default_options", "_sni_cache", "host_options", "store")

    def __init__(self, store: TLSStore, host_options: Mapping[str, str]) -> None:
        self.store = store
        self.host_options = dict(host_options)
        self._default_options = store.options[DEFAULT_OPTIONS]
        self._sni_cache: dict[str | None, ssl.SSLContext | None] = {}

    def select(self, sni: str | None) -> ssl.SSLContext | None:
        """The context for a handshake, or ``None`` to refuse it (``sniStrict``)."""
        cache_ = self._sni_cache
        if sni in cache_:
            return cache_[sni]
        store = self.store
        option = self.host_options.get(sni, DEFAULT_OPTIONS) if sni else DEFAULT_OPTIONS
        opts = store.options.get(option, self._default_options)
        cert = store.lookup(sni) if sni else None
        ctx: ssl.SSLContext | None
        if cert is None and opts.sni_strict:
            ctx = None
        else:
            ctx = store.context(cert if cert is not None else store.default, opts.name)
        if len(cache_) < 4096:
            cache_[sni] = ctx
        return ctx

    def misdirected(self, sni: str | None, host: str) -> bool:
        """Traefik's ``snicheck``: the request's Host (canonical) and the connection's SNI select
        different TLS options. Hosts without options of their own use ``default``."""
        if host == sni:
            return False
        options = self.host_options
        if not options:
            return False
        return options.get(host, DEFAULT_OPTIONS) != (options.get(sni, DEFAULT_OPTIONS) if sni else DEFAULT_OPTIONS)

    def names(self) -> Iterable[str]:
        return self.store.exact


def sni_host(value: str) -> str:
    """Normalize a Host() value as an SNI name (lower case, no trailing dot; IPs as written)."""
    host = value.strip().lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return host


_OPENSSL_TO_GO: dict[str, str] = {}


def go_cipher_name(openssl_name: str) -> str:
    """Go's name of a negotiated cipher suite (TLS 1.3 suites are named the same in both)."""
    if not _OPENSSL_TO_GO:
        for go, ossl in GO_CIPHER_SUITES.items():
            # Go names the ChaCha20 suites "..._POLY1305_SHA256" (the longer alias).
            if len(go) > len(_OPENSSL_TO_GO.get(ossl, "")):
                _OPENSSL_TO_GO[ossl] = go
    return _OPENSSL_TO_GO.get(openssl_name, openssl_name)
