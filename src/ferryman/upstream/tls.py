"""TLS to backends: the client ``SSLContext`` of a servers transport (Traefik's ``serversTransports``).

Go semantics (``crypto/tls`` client config as Traefik builds it):

* the chain and the host name are verified against ``rootCAs`` (file paths or inline PEM) or,
  when none is given, the system roots; ``insecureSkipVerify`` verifies nothing;
* SNI and the name checked are ``serverName`` when set, else the server URL's host (an IP
  address is checked against the certificate's IP SANs and sent without SNI);
* ``certificates`` are client certificates (the first one is offered, as Go picks the first that
  suits the server's request);
* ``peerCertURI``: the backend certificate must carry this URI SAN (checked after the
  handshake, the connection fails with 502 otherwise);
* ``minVersion``/``maxVersion``/``cipherSuites`` use the names of TLS options;
* ALPN offers ``h2, http/1.1`` unless ``disableHTTP2`` (then only ``http/1.1``); requests that
  upgrade (WebSocket) use a context offering only ``http/1.1``, as Go's transport does.

Contexts are cached per (settings, ALPN) pair; they are built when a pool dials first, not per
connection.
"""

from __future__ import annotations

import ssl
from functools import lru_cache
from typing import Final

from cryptography import x509

from ferryman.errors import ConfigError
from ferryman.tls.store import GO_CIPHER_SUITES, VERSIONS, PEMError, _load_into, _read_pem, load_certificate
from ferryman.upstream.settings import TransportSettings

__all__ = ["ALPN_H1", "ALPN_H2", "client_context", "peer_uri_ok"]

ALPN_H2: Final = ("h2", "http/1.1")
ALPN_H1: Final = ("http/1.1",)


@lru_cache(maxsize=256)
def client_context(settings: TransportSettings, alpn: tuple[str, ...]) -> ssl.SSLContext:
    """The client context for ``settings`` offering ``alpn`` (raises :class:`ConfigError`)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if settings.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        if settings.root_cas:
            for index, value in enumerate(settings.root_cas):
                try:
                    pem, label = _read_pem(value, f"rootCAs[{index}]")
                except PEMError as exc:
                    raise ConfigError(str(exc), path=f"rootCAs[{index}]",
                                      fix="give a readable PEM file path or inline PEM") from exc
                try:
                    ctx.load_verify_locations(cadata=pem.decode("ascii", "replace"))
                except (ssl.SSLError, ValueError) as exc:
                    raise ConfigError(f"{label}: not a PEM CA certificate ({exc})", path=f"rootCAs[{index}]") from exc
        else:
            ctx.load_default_certs()
    if settings.certificates:
        cert, key = settings.certificates[0]
        try:
            loaded = load_certificate(cert, key, "certificates[0]")
        except PEMError as exc:
            raise ConfigError(str(exc), path="certificates[0]",
                              fix="give readable certFile/keyFile (paths or inline PEM)") from exc
        _load_into(ctx, loaded)
    try:
        if settings.min_version:
            ctx.minimum_version = VERSIONS[settings.min_version]
        if settings.max_version:
            ctx.maximum_version = VERSIONS[settings.max_version]
    except KeyError as exc:
        raise ConfigError(f"unknown TLS version {exc.args[0]!r}", path="minVersion/maxVersion",
                          fix=f"use one of {', '.join(VERSIONS)}") from exc
    if settings.cipher_suites:
        names = []
        for suite in settings.cipher_suites:
            openssl = GO_CIPHER_SUITES.get(suite)
            if openssl is None:
                raise ConfigError(f"unknown cipher suite {suite!r}", path="cipherSuites",
                                  fix="use Go's names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
            if openssl:
                names.append(openssl)
        if names:
            ctx.set_ciphers(":".join(names))
    ctx.set_alpn_protocols(list(alpn))
    return ctx


def peer_uri_ok(ssl_object: ssl.SSLObject | None, uri: str) -> bool:
    """The backend's certificate carries the URI SAN ``uri`` (``peerCertURI``)."""
    if ssl_object is None:
        return False
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return False
    try:
        cert = x509.load_der_x509_certificate(der)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    return uri in san.get_values_for_type(x509.UniformResourceIdentifier)
