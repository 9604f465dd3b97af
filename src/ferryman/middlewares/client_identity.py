"""``clientIdentity`` (ferryman's own, not a Traefik type): authorize a request by *which* client
presented the verified TLS certificate, for zero-trust setups where mTLS alone only says "a client
our CA signed".

Configuration (the key ``clientIdentity`` does not exist in Traefik, so a Traefik configuration
never means anything else by it)::

    http:
      middlewares:
        prod-web-only:
          clientIdentity:
            allow:
              - spiffeID: spiffe://example.org/ns/prod/sa/web      # exactly this SPIFFE ID
              - spiffeIDPrefix: spiffe://example.org/ns/prod/       # any ID under this path
              - trustDomain: partner.example                        # any ID of this trust domain
              - dnsName: "*.svc.internal"                           # a DNS SAN ("*." = one label)
                organizationalUnit: payments                        # ... AND this subject OU
              - commonName: batch-runner                            # subject CN
            rejectStatusCode: 403                                   # default

A request is let through when at least one ``allow`` rule matches; a rule matches when *all* the
fields it sets match. The SPIFFE ID is the certificate's URI SAN with the ``spiffe`` scheme, taken
only when there is exactly one (the SPIFFE X.509-SVID rule); trust domains compare
case-insensitively, paths exactly; ``spiffeIDPrefix`` must end with ``/`` (so ``.../sa/web`` never
matches ``.../sa/web-admin``). Anything else gets ``rejectStatusCode`` with its status text.

The router must verify client certificates: the middleware refuses to build (the router is
disabled with the reason) unless the router is a TLS router whose TLS options use
``clientAuthType: RequireAndVerifyClientCert`` or ``VerifyClientCertIfGiven`` (with the latter a
request without a certificate is rejected). ``RequestClientCert`` and ``RequireAnyClientCert`` do
not verify the certificate, so an identity read from it would mean nothing. The decision is made
once per connection (the certificate cannot change on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Final

from cryptography import x509
from cryptography.x509.oid import NameOID

from ferryman.dynamic.models import ClientIdentity, ClientIdentityRule
from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange, Handler

__all__ = ["ClientIdentityHandler", "Identity", "build_client_identity", "identity_of"]

VERIFYING: Final = frozenset({"RequireAndVerifyClientCert", "VerifyClientCertIfGiven"})


@dataclass(frozen=True)
class Identity:
    """What the rules look at in a client certificate."""

    spiffe_id: str | None  # the single spiffe:// URI SAN, else None
    dns_names: tuple[str, ...]
    common_name: str | None
    organizational_units: tuple[str, ...]


def identity_of(der: bytes) -> Identity:
    cert = x509.load_der_x509_certificate(der)
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = sans.get_values_for_type(x509.UniformResourceIdentifier)
        dns = tuple(d.lower() for d in sans.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        uris, dns = [], ()
    spiffe = [u for u in uris if u[:9].lower() == "spiffe://"]
    cns = [str(a.value) for a in cert.subject if a.oid == NameOID.COMMON_NAME]
    ous = tuple(str(a.value) for a in cert.subject if a.oid == NameOID.ORGANIZATIONAL_UNIT_NAME)
    return Identity(spiffe[0] if len(spiffe) == 1 else None, dns, cns[-1] if cns else None, ous)


def _split_spiffe(spiffe_id: str) -> tuple[str, str]:
    """``(trust domain lower-cased, path)`` of a ``spiffe://`` ID."""
    rest = spiffe_id[9:]
    domain, slash, path = rest.partition("/")
    return domain.lower(), slash + path


def _dns_match(pattern: str, names: tuple[str, ...]) -> bool:
    if pattern.startswith("*."):
        suffix = pattern[1:]
        return any(n.endswith(suffix) and "." not in n[: -len(suffix)] and len(n) > len(suffix) for n in names)
    return pattern in names


class _Rule:
    __slots__ = ("cn", "dns", "ou", "spiffe", "spiffe_prefix", "trust_domain")

    def __init__(self, rule: ClientIdentityRule, path: str) -> None:
        self.spiffe = _spiffe(rule.spiffe_id, f"{path}.spiffeID") if rule.spiffe_id else None
        prefix = _spiffe(rule.spiffe_id_prefix, f"{path}.spiffeIDPrefix") if rule.spiffe_id_prefix else None
        if prefix is not None and not prefix[1].endswith("/"):
            raise ConfigError(f"spiffeIDPrefix {rule.spiffe_id_prefix!r} must end with '/'",
                              path=f"{path}.spiffeIDPrefix",
                              fix="end it with / (a prefix matches whole path segments), or use spiffeID")
        self.spiffe_prefix = prefix
        self.trust_domain = rule.trust_domain.lower() or None
        self.dns = rule.dns_name.lower() or None
        self.cn = rule.common_name or None
        self.ou = rule.organizational_unit or None
        if not any((self.spiffe, self.spiffe_prefix, self.trust_domain, self.dns, self.cn, self.ou)):
            raise ConfigError("an allow rule sets nothing to match", path=path,
                              fix="set spiffeID, spiffeIDPrefix, trustDomain, dnsName, commonName "
                                  "or organizationalUnit")

    def matches(self, ident: Identity) -> bool:
        parts = _split_spiffe(ident.spiffe_id) if ident.spiffe_id is not None else None
        if self.spiffe is not None and parts != self.spiffe:
            return False
        if self.spiffe_prefix is not None and (
                parts is None or parts[0] != self.spiffe_prefix[0] or not parts[1].startswith(self.spiffe_prefix[1])):
            return False
        if self.trust_domain is not None and (parts is None or parts[0] != self.trust_domain):
            return False
        if self.dns is not None and not _dns_match(self.dns, ident.dns_names):
            return False
        if self.cn is not None and ident.common_name != self.cn:
            return False
        return self.ou is None or self.ou in ident.organizational_units


def _spiffe(value: str, path: str) -> tuple[str, str]:
    if value[:9].lower() != "spiffe://" or not value[9:].partition("/")[0]:
        raise ConfigError(f"{value!r} is not a SPIFFE ID", path=path,
                          fix="write it as spiffe://<trust domain>/<path>")
    return _split_spiffe(value)


class ClientIdentityHandler:
    """The built middleware (a :class:`~ferryman.http.exchange.Handler`)."""

    __slots__ = ("_body", "_rules", "_status", "name", "next")

    def __init__(self, name: str, next_handler: Handler, rules: list[_Rule], status: int) -> None:
        self.name = name
        self.next = next_handler
        self._rules = rules
        self._status = status
        try:
            text = HTTPStatus(status).phrase
        except ValueError:
            text = ""
        self._body = text.encode() + b"\n"

    def allowed(self, der: bytes | None) -> bool:
        if der is None:
            return False
        ident = identity_of(der)
        return any(rule.matches(ident) for rule in self._rules)

    def handle(self, ex: Exchange) -> None:
        conn = ex.conn
        cache = conn.tls_cache
        ok = cache.get(self) if cache is not None else None
        if ok is None:
            ok = self.allowed(conn.peer_certificate()) if conn.tls else False
            if cache is None:
                cache = conn.tls_cache = {}
            cache[self] = ok
        if ok:
            self.next.handle(ex)
        else:
            ex.respond(self._status, ((b"X-Content-Type-Options", b"nosniff"),), self._body)


def build_client_identity(name: str, config: ClientIdentity, next_handler: Handler, router: str,
                          client_auth: str | None) -> Handler:
    path = f"http.middlewares.{name}.clientIdentity"
    if client_auth not in VERIFYING:
        where = f'router "{router}"' if router else "this router"
        why = ("is not a TLS router" if client_auth is None
               else f"uses TLS options with clientAuthType {client_auth}, which does not verify client certificates")
        raise ConfigError(f"clientIdentity needs verified client certificates, but {where} {why}", path=path,
                          fix="serve the router with TLS options whose clientAuth.clientAuthType is "
                              "RequireAndVerifyClientCert (or VerifyClientCertIfGiven) and caFiles set")
    if not config.allow:
        raise ConfigError("clientIdentity needs at least one allow rule", path=f"{path}.allow",
                          fix="add rules such as - spiffeID: spiffe://example.org/ns/prod/sa/web")
    if not 100 <= config.reject_status_code <= 599:
        raise ConfigError(f"invalid rejectStatusCode {config.reject_status_code}", path=f"{path}.rejectStatusCode",
                          fix="use an HTTP status such as 403")
    rules = [_Rule(rule, f"{path}.allow[{i}]") for i, rule in enumerate(config.allow)]
    return ClientIdentityHandler(name, next_handler, rules, config.reject_status_code)
