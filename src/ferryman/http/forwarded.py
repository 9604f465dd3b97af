"""Traefik's ``forwardedheaders`` entry-point handler and ReverseProxy's ``X-Forwarded-For``.

Semantics (``pkg/middlewares/forwardedheaders/forwarded_header.go`` and ``pkg/proxy/httputil``):

* Unless the peer is trusted (``forwardedHeaders.trustedIPs``) or ``insecure`` is set, the incoming
  managed X-headers are dropped -- ``X-Forwarded-{Proto,For,Host,Port,Server,Uri,Method,Prefix,
  Tls-Client-Cert,Tls-Client-Cert-Info,Scheme}``, ``X-Scheme``, ``X-Real-Ip`` -- including their
  underscore spellings (``X_Forwarded_For``). The server connection does this while parsing.
* Then, each only when absent: ``X-Real-Ip`` = peer IP; ``X-Forwarded-Proto`` = ``ws``/``wss`` for
  a WebSocket upgrade, else ``http``/``https``; ``X-Forwarded-Port`` = the Host's port, else 443 when
  the proto is https/wss or the connection is TLS, else 80; ``X-Forwarded-Host`` = Host (if any).
  ``X-Forwarded-Server`` is always set to the hostname. With ``addXForwardedSchemeHeaders``,
  ``X-Forwarded-Scheme`` and ``X-Scheme`` are set to the proto.
* The proxy appends the peer IP to ``X-Forwarded-For`` (prior values joined with ``", "``) unless
  ``notAppendXForwardedFor``.
* Headers named in ``Connection`` are removed, except the managed X-headers and the
  ``forwardedHeaders.connection`` names.

The hot path never materializes these as header pairs: :func:`forwarded_block` returns the
serialized lines, cached per connection for an unchanged Host. :func:`materialize` puts them into
``ex.headers`` for middlewares that look at or edit headers.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from ferryman.ipnet import IPMatcher
from ferryman.proto.h1 import split_authority

if TYPE_CHECKING:
    from ferryman.http.exchange import Exchange

# Mirrors of ferryman.http.exchange's flag bits (that module imports this one).
X_WEBSOCKET: Final = 2
X_XF_MATERIALIZED: Final = 8
X_OMIT_XFF: Final = 16
X_XF_SHIFT: Final = 8
X_XF_SLOW: Final = X_WEBSOCKET | X_XF_MATERIALIZED | X_OMIT_XFF | (0xFF << X_XF_SHIFT)

__all__ = [
    "MANAGED_X_HEADERS",
    "XF_FOR",
    "XF_HOST",
    "XF_PORT",
    "XF_PROTO",
    "XF_REAL_IP",
    "ForwardingPolicy",
    "effective_port",
    "effective_proto",
    "finalize_xff",
    "forwarded_block",
    "materialize",
    "underscore_variants",
]

# X-Forwarded-* presence bits on ``Exchange.xf_present``: headers a trusted peer sent (kept as is).
XF_PROTO: Final = 1
XF_HOST: Final = 2
XF_PORT: Final = 4
XF_REAL_IP: Final = 8
XF_FOR: Final = 16

#: Traefik's ``XHeadersSet``, lower-case.
MANAGED_X_HEADERS: Final = frozenset({
    b"x-forwarded-proto", b"x-forwarded-scheme", b"x-forwarded-for", b"x-forwarded-host",
    b"x-forwarded-port", b"x-forwarded-server", b"x-forwarded-uri", b"x-forwarded-method",
    b"x-forwarded-prefix", b"x-forwarded-tls-client-cert", b"x-forwarded-tls-client-cert-info",
    b"x-scheme", b"x-real-ip",
})


def underscore_variants(name: bytes) -> set[bytes]:
    """Every spelling of ``name`` with any of its dashes replaced by underscores (name excluded)."""
    parts = name.split(b"-")
    out: set[bytes] = set()
    for seps in itertools.product((b"-", b"_"), repeat=len(parts) - 1):
        spelled = parts[0] + b"".join(sep + part for sep, part in zip(seps, parts[1:], strict=True))
        if spelled != name:
            out.add(spelled)
    return out


class ForwardingPolicy:
    """``forwardedHeaders.*`` of one entry point, prepared once."""

    __slots__ = ("add_scheme_headers", "connection_keep", "hostname", "insecure", "not_append_xff",
                 "server_line", "trusted")

    def __init__(self, *, insecure: bool = False, trusted_ips: Iterable[str] = (),
                 connection: Iterable[str] = (), not_append_xff: bool = False,
                 add_scheme_headers: bool = False, hostname: str | None = None) -> None:
        self.insecure = insecure
        ips = list(trusted_ips)
        self.trusted: IPMatcher | None = (
            IPMatcher.from_strings(ips, path="forwardedHeaders.trustedIPs") if ips else None)
        self.connection_keep = frozenset(c.strip().lower().encode() for c in connection if c.strip())
        self.not_append_xff = not_append_xff
        self.add_scheme_headers = add_scheme_headers
        if hostname is None:
            try:
                hostname = socket.gethostname()
            except OSError:  # pragma: no cover
                hostname = "localhost"
        self.hostname = hostname.encode()
        self.server_line = b"X-Forwarded-Server: " + self.hostname + b"\r\n" if self.hostname else b""

    def trusts(self, ip: str) -> bool:
        if self.insecure:
            return True
        matcher = self.trusted
        return matcher is not None and matcher.contains(ip)


def _present_value(ex: Exchange, name: bytes) -> bytes:
    for n, v in ex.headers:
        if n == name:
            return v
    return b""


def effective_proto(ex: Exchange) -> bytes:
    """``X-Forwarded-Proto`` as a middleware sees it in Traefik: the trusted incoming value, else
    what the entry point sets; ``b""`` when a middleware removed it."""
    if ex.xf_materialized or ex.xf_present & XF_PROTO:
        return _present_value(ex, b"x-forwarded-proto")
    if ex.websocket:
        return b"wss" if ex.conn.tls else b"ws"
    return ex.conn.scheme


def effective_port(ex: Exchange, proto: bytes) -> bytes:
    """Traefik's ``forwardedPort``: Host port, else 443 for https/wss or TLS, else 80."""
    port = split_authority(ex.authority)[1]
    if port:
        return port
    if proto == b"https" or proto == b"wss" or ex.conn.tls:
        return b"443"
    return b"80"


def forwarded_block(ex: Exchange) -> bytes:
    """Serialized ``X-Forwarded-*`` lines to append to the upstream request (not materialized)."""
    conn = ex.conn
    present = ex.xf_present
    authority = ex.authority
    if not ex.flags & X_XF_SLOW and ex.xff_prior is None:
        if conn.xf_key == authority:
            return conn.xf_block
        block = _compute_block(ex, 0, authority)
        conn.xf_key = authority
        conn.xf_block = block
        return block
    return _compute_block(ex, present, authority)


def _compute_block(ex: Exchange, present: int, authority: bytes) -> bytes:
    conn = ex.conn
    policy = conn.forwarding
    ip = conn.client_ip_b
    parts: list[bytes] = []
    if present & XF_PROTO:
        proto = _present_value(ex, b"x-forwarded-proto")
    else:
        proto = (b"wss" if conn.tls else b"ws") if ex.websocket else conn.scheme
        parts.append(b"X-Forwarded-Proto: " + proto + b"\r\n")
    if not present & XF_PORT:
        parts.append(b"X-Forwarded-Port: " + effective_port(ex, proto) + b"\r\n")
    if policy.add_scheme_headers:
        parts.append(b"X-Forwarded-Scheme: " + proto + b"\r\nX-Scheme: " + proto + b"\r\n")
    if not present & XF_HOST and authority:
        parts.append(b"X-Forwarded-Host: " + authority + b"\r\n")
    prior = ex.xff_prior
    if policy.not_append_xff or ex.omit_xff:
        if prior is not None:
            parts.append(b"X-Forwarded-For: " + prior + b"\r\n")
    elif prior is not None:
        parts.append(b"X-Forwarded-For: " + prior + b", " + ip + b"\r\n")
    else:
        parts.append(b"X-Forwarded-For: " + ip + b"\r\n")
    parts.append(policy.server_line)
    if not present & XF_REAL_IP:
        parts.append(b"X-Real-Ip: " + ip + b"\r\n")
    return b"".join(parts)


def materialize(ex: Exchange) -> None:
    """Add the entry point's X-Forwarded-* to ``ex.headers`` (as Traefik has them before routing)."""
    if ex.xf_materialized:
        return
    conn = ex.conn
    policy = conn.forwarding
    present = ex.xf_present
    headers = ex.headers
    if present & XF_PROTO:
        proto = _present_value(ex, b"x-forwarded-proto")
    else:
        proto = (b"wss" if conn.tls else b"ws") if ex.websocket else conn.scheme
        headers.append((b"x-forwarded-proto", proto))
    if not present & XF_PORT:
        headers.append((b"x-forwarded-port", effective_port(ex, proto)))
    if policy.add_scheme_headers:
        headers.append((b"x-forwarded-scheme", proto))
        headers.append((b"x-scheme", proto))
    if not present & XF_HOST and ex.authority:
        headers.append((b"x-forwarded-host", ex.authority))
    if ex.xff_prior is not None:
        headers.append((b"x-forwarded-for", ex.xff_prior))
    if policy.hostname:
        headers.append((b"x-forwarded-server", policy.hostname))
    if not present & XF_REAL_IP:
        headers.append((b"x-real-ip", conn.client_ip_b))
    ex.xf_materialized = True


def finalize_xff(ex: Exchange) -> None:
    """The proxy's ``X-Forwarded-For`` step for a materialized exchange: prior values joined with
    ``", "`` and the peer appended (unless ``notAppendXForwardedFor`` or a middleware said so)."""
    headers = ex.headers
    prior = [v for n, v in headers if n == b"x-forwarded-for"]
    if ex.conn.forwarding.not_append_xff or ex.omit_xff:
        if len(prior) > 1:
            ex.headers = [h for h in headers if h[0] != b"x-forwarded-for"]
            ex.headers.append((b"x-forwarded-for", b", ".join(prior)))
        return
    value = b", ".join([*prior, ex.conn.client_ip_b])
    if prior:
        ex.headers = [h for h in headers if h[0] != b"x-forwarded-for"]
    ex.headers.append((b"x-forwarded-for", value))
