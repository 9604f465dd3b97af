"""``passTLSClientCert``: pass the client certificate (or parts of it) to the backend in headers,
as Traefik's ``pkg/middlewares/passtlsclientcert``.

* ``pem: true`` -- ``X-Forwarded-Tls-Client-Cert``: the certificate's DER in standard base64
  without line breaks (Traefik's PEM with the BEGIN/END lines and newlines removed).
* ``info`` -- ``X-Forwarded-Tls-Client-Cert-Info``: ``url.QueryEscape`` of
  ``Subject="...";Issuer="...";SerialNumber="...";NB="...";NA="...";SAN="..."`` (fields in that
  order, empty ones left out). Subject and issuer list the chosen parts as ``DC=`` (every
  domainComponent in certificate order), then ``C=``, ``ST=``, ``L=``, ``O=``, ``OU=`` (subject
  only; every value), ``SN=``, ``CN=`` (the last value), comma-separated. ``NB``/``NA`` are Unix
  seconds, ``SerialNumber`` decimal, ``SAN`` the DNS names, e-mail addresses, IP addresses and URIs
  in that order, comma-separated. An empty ``info: {}`` is refused (Traefik's file provider
  rejects it too: "info cannot be a standalone element").

Both headers replace whatever the request carried; without a client certificate they are left
alone (the entry point already removed untrusted incoming ones). Every certificate the client sent
is listed, its own first, comma-separated (Go's ``PeerCertificates``; see
:func:`ferryman.tls.verify.peer_chain`). The values are computed once per connection.
"""

from __future__ import annotations

import base64
import ipaddress
from urllib.parse import quote_plus

from cryptography import x509
from cryptography.x509.oid import NameOID

from ferryman.dynamic.models import CertInfo, CertIssuerInfo, CertSubjectInfo, PassTLSClientCert
from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange, Handler
from ferryman.middlewares._go import GoURLError, parse_url

__all__ = ["PassTLSClientCertHandler", "build_pass_tls_client_cert", "cert_info", "cert_pem"]

_PEM_HEADER = b"x-forwarded-tls-client-cert"
_INFO_HEADER = b"x-forwarded-tls-client-cert-info"


def cert_pem(der: bytes) -> bytes:
    """The ``X-Forwarded-Tls-Client-Cert`` value of one certificate."""
    return base64.b64encode(der)


def _values(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(attr.value) for attr in name if attr.oid == oid]


def _dn(name: x509.Name, opts: CertIssuerInfo) -> str:
    """Traefik's ``getSubjectDNInfo``/``getIssuerDNInfo``, trailing comma removed."""
    parts: list[str] = []
    if opts.domain_component:
        parts.extend(f"DC={v}" for v in _values(name, NameOID.DOMAIN_COMPONENT))

    def every(flag: bool, oid: x509.ObjectIdentifier, label: str) -> None:
        if flag:
            parts.extend(f"{label}={v}" for v in _values(name, oid) if v)

    def last(flag: bool, oid: x509.ObjectIdentifier, label: str) -> None:
        if flag:
            values = _values(name, oid)
            if values and values[-1]:
                parts.append(f"{label}={values[-1]}")

    every(opts.country, NameOID.COUNTRY_NAME, "C")
    every(opts.province, NameOID.STATE_OR_PROVINCE_NAME, "ST")
    every(opts.locality, NameOID.LOCALITY_NAME, "L")
    every(opts.organization, NameOID.ORGANIZATION_NAME, "O")
    if isinstance(opts, CertSubjectInfo):
        every(opts.organizational_unit, NameOID.ORGANIZATIONAL_UNIT_NAME, "OU")
    last(opts.serial_number, NameOID.SERIAL_NUMBER, "SN")
    last(opts.common_name, NameOID.COMMON_NAME, "CN")
    return ",".join(parts)


def _ip(value: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """Go's ``net.IP.String``: an IPv4-mapped IPv6 address prints as IPv4."""
    if isinstance(value, ipaddress.IPv6Address) and value.ipv4_mapped is not None:
        return str(value.ipv4_mapped)
    return str(value)


def _uri(value: str) -> str:
    try:
        return parse_url(value.encode()).string().decode("utf-8", "replace")
    except GoURLError:
        return value


def sans(cert: x509.Certificate) -> list[str]:
    """Traefik's ``getSANs``: DNS names, e-mail addresses, IPs, URIs."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    out: list[str] = list(ext.get_values_for_type(x509.DNSName))
    out.extend(ext.get_values_for_type(x509.RFC822Name))
    out.extend(_ip(ip) for ip in ext.get_values_for_type(x509.IPAddress)
               if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address))
    out.extend(_uri(u) for u in ext.get_values_for_type(x509.UniformResourceIdentifier))
    return out


def cert_info(cert: x509.Certificate, info: CertInfo) -> str:
    """The unescaped ``X-Forwarded-Tls-Client-Cert-Info`` content of one certificate."""
    values: list[str] = []
    if info.subject is not None:
        subject = _dn(cert.subject, info.subject)
        if subject:
            values.append(f'Subject="{subject}"')
    if info.issuer is not None:
        issuer = _dn(cert.issuer, info.issuer)
        if issuer:
            values.append(f'Issuer="{issuer}"')
    if info.serial_number:
        values.append(f'SerialNumber="{cert.serial_number}"')
    if info.not_before:
        values.append(f'NB="{int(cert.not_valid_before_utc.timestamp())}"')
    if info.not_after:
        values.append(f'NA="{int(cert.not_valid_after_utc.timestamp())}"')
    if info.sans:
        names = sans(cert)
        if names:
            values.append(f'SAN="{",".join(names)}"')
    return ";".join(values)


class PassTLSClientCertHandler:
    """The built middleware (a :class:`~ferryman.http.exchange.Handler`)."""

    __slots__ = ("info", "name", "next", "pem")

    def __init__(self, name: str, next_handler: Handler, pem: bool, info: CertInfo | None) -> None:
        self.name = name
        self.next = next_handler
        self.pem = pem
        self.info = info

    def _headers(self, chain: list[bytes]) -> tuple[bytes | None, bytes | None]:
        pem = b",".join(cert_pem(der) for der in chain) if self.pem else None
        info = None
        if self.info is not None:
            content = ",".join(cert_info(x509.load_der_x509_certificate(der), self.info) for der in chain)
            info = quote_plus(content, safe="").encode()
        return pem, info

    def handle(self, ex: Exchange) -> None:
        conn = ex.conn
        if conn.tls:
            cache = conn.tls_cache
            found = cache.get(self) if cache is not None else None
            if found is None:
                chain = conn.peer_certificates()
                found = self._headers(chain) if chain else (None, None)
                if cache is None:
                    cache = conn.tls_cache = {}
                cache[self] = found
            pem, info = found
            if pem is not None:
                ex.set_header(_PEM_HEADER, pem)
            if info is not None:
                ex.set_header(_INFO_HEADER, info)
        self.next.handle(ex)


def build_pass_tls_client_cert(name: str, config: PassTLSClientCert, next_handler: Handler) -> Handler:
    info = config.info
    if info is not None and info == CertInfo():
        raise ConfigError("info cannot be empty", path=f"http.middlewares.{name}.passTLSClientCert.info",
                          fix="choose what to pass (e.g. info: {subject: {commonName: true}}) or remove info")
    if not config.pem and info is None:
        return next_handler  # nothing to pass
    return PassTLSClientCertHandler(name, next_handler, config.pem, config.info)
