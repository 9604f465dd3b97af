"""The reverse proxy for one server URL: builds the upstream request head, hands it to the pool.

Request rewriting as Traefik's ``httputil`` proxy does it (``rewriteRequestBuilder``):

* the path is the client's (normalized) path; the server URL's path is ignored unless
  ``preservePath``, then joined with one slash (``JoinURLPath``);
* ``Host``: the client's authority with ``passHostHeader`` (default), else the server URL's host;
* the entry point's ``X-Forwarded-*`` lines and ``X-Forwarded-For`` append (see
  :mod:`ferryman.http.forwarded`);
* hop-by-hop headers are gone already; ``Te: trailers`` is kept when the client sent it;
  ``Connection: Upgrade`` + ``Upgrade`` for upgrade requests (with Go's header-name casing,
  ``Sec-WebSocket-Key`` etc., which some WebSocket servers require);
* the body is framed like the client's (Content-Length, or chunked); POST/PUT/PATCH without a body
  get ``Content-Length: 0`` (Go's transport).

Header names of ordinary request headers are sent lower-case (HTTP/1.1 names are
case-insensitive; this is what HTTP/2 and HTTP/3 backends get too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from ferryman.errors import ConfigError
from ferryman.http.exchange import X_TE_TRAILERS, X_XF_MATERIALIZED, Exchange
from ferryman.http.forwarded import finalize_xff, forwarded_block
from ferryman.upstream.pool import Pool, UpstreamPools
from ferryman.upstream.settings import TransportSettings
from ferryman.upstream.tls import ALPN_H2, client_context

__all__ = ["ServerForwarder", "ServerURL", "canonical_header_name", "parse_server_url"]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "h2c": 80}
_EMPTY_BODY_METHODS: Final = frozenset({b"POST", b"PUT", b"PATCH"})
_CL0: Final = b"Content-Length: 0\r\n"
_CHUNKED: Final = b"Transfer-Encoding: chunked\r\n"
_WS_NAMES: Final = {
    b"sec-websocket-key": b"Sec-WebSocket-Key",
    b"sec-websocket-extensions": b"Sec-WebSocket-Extensions",
    b"sec-websocket-accept": b"Sec-WebSocket-Accept",
    b"sec-websocket-protocol": b"Sec-WebSocket-Protocol",
    b"sec-websocket-version": b"Sec-WebSocket-Version",
}


def canonical_header_name(name: bytes) -> bytes:
    """Go's ``CanonicalHeaderKey`` (``x-foo-bar`` -> ``X-Foo-Bar``), WebSocket names as Traefik sends them."""
    special = _WS_NAMES.get(name)
    if special is not None:
        return special
    return b"-".join(part[:1].upper() + part[1:] for part in name.split(b"-"))


@dataclass(frozen=True, slots=True)
class ServerURL:
    scheme: str
    host: str          # to connect to (no brackets)
    port: int
    authority: bytes   # Go's URL.Host as written (Host header when passHostHeader is false)
    path: bytes        # raw path ("" when none)


def parse_server_url(url: str) -> ServerURL:
    """Parse a ``servers[].url``; raises :class:`ConfigError` with the fix when unusable."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"invalid server URL {url!r}: {exc}", fix="write it as http://host:port") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ConfigError(f"server URL {url!r}: unsupported scheme {parts.scheme!r}",
                          fix="use http://, https:// or h2c://")
    host = parts.hostname
    if not host:
        raise ConfigError(f"server URL {url!r} has no host", fix="write it as http://host:port")
    netloc = parts.netloc.rpartition("@")[2]
    return ServerURL(scheme, host, port or _DEFAULT_PORTS[scheme], netloc.encode("idna") if not netloc.isascii()
                     else netloc.encode(), parts.path.encode())


def _join_path(base: bytes, path: bytes) -> bytes:
    if base.endswith(b"/") and path.startswith(b"/"):
        return base + path[1:]
    if not base.endswith(b"/") and not path.startswith(b"/"):
        return base + b"/" + path
    return base + path


class ServerForwarder:
    """Handler that proxies to one server (``loadBalancer.servers[i]``)."""

    __slots__ = ("host_header", "pass_host_header", "pool", "preserve_path", "server_path", "service", "url")

    def __init__(self, url: str, pool: Pool, *, pass_host_header: bool = True,
                 preserve_path: bool = False, service: str | None = None) -> None:
        self.url = url
        #: The loadBalancer service this server belongs to (``ex.service`` for logs).
        self.service = service
        parsed = parse_server_url(url)
        self.pool = pool
        self.host_header = parsed.authority
        self.server_path = parsed.path
        self.preserve_path = preserve_path and bool(parsed.path)
        self.pass_host_header = pass_host_header

    @classmethod
    def build(cls, url: str, pools: UpstreamPools, transport_name: str, settings: TransportSettings,
              *, pass_host_header: bool = True, preserve_path: bool = False,
              service: str | None = None) -> ServerForwarder:
        parsed = parse_server_url(url)
        if parsed.scheme == "https":
            try:
                client_context(settings, ALPN_H2)  # a bad rootCAs/certificates entry fails here, not per dial
            except ConfigError as exc:
                raise ConfigError(f"serversTransport {transport_name!r} {exc.path}: {exc.message}",
                                  fix=exc.fix) from exc
        pool = pools.get(parsed.scheme, parsed.host, parsed.port, transport_name, settings)
        return cls(url, pool, pass_host_header=pass_host_header, preserve_path=preserve_path, service=service)

    def handle(self, ex: Exchange) -> None:
        ex.service = self.service
        if ex.obs is not None:
            ex.obs_upstream = self.url  # access log ServiceURL / ServiceAddr
        flags = ex.flags
        if flags or ex.upgrade is not None or ex.xff_prior is not None or self.preserve_path:
            head = self._slow_head(ex, flags)
        else:
            conn = ex.conn
            authority = ex.authority
            xf = conn.xf_block if conn.xf_key == authority else forwarded_block(ex)
            query = ex.query
            path = ex.path or b"/"  # a full stripPrefix leaves Go's empty URL.Path; the wire has "/"
            target = path if query is None else path + b"?" + query
            host = authority if self.pass_host_header and authority else self.host_header
            length = ex.body_length
            if length == 0:
                framing = _CL0 if ex.method in _EMPTY_BODY_METHODS else b""
            elif length > 0:
                framing = b"Content-Length: %d\r\n" % length
            else:
                framing = _CHUNKED
            headers = ex.headers
            if headers:
                head = b"%b %b HTTP/1.1\r\nHost: %b\r\n%b\r\n%b%b\r\n" % (
                    ex.method, target, host, b"\r\n".join(map(b": ".join, headers)), xf, framing)
            else:
                head = b"%b %b HTTP/1.1\r\nHost: %b\r\n%b%b\r\n" % (ex.method, target, host, xf, framing)
        pool = self.pool
        if pool.h2 and ex.upgrade is None:
            pool.forward_h2(ex, head)
            return
        idle = pool.idle
        while idle:
            upstream = idle.pop()
            if not upstream.closed:
                upstream.start(ex, head, True)
                return
        pool.dial(ex, head)

    def _slow_head(self, ex: Exchange, flags: int) -> bytes:
        """The request head when anything unusual is involved (materialized or trusted forwarded
        headers, upgrade, TE: trailers, preservePath)."""
        if flags & X_XF_MATERIALIZED:
            finalize_xff(ex)
            xf = b""
        else:
            xf = forwarded_block(ex)
        path = ex.path or b"/"
        if self.preserve_path:
            path = _join_path(self.server_path, path)
        query = ex.query
        target = path if query is None else path + b"?" + query
        host = ex.authority if self.pass_host_header and ex.authority else self.host_header
        headers = ex.headers
        upgrade = ex.upgrade
        parts = [ex.method, b" ", target, b" HTTP/1.1\r\nHost: ", host, b"\r\n"]
        if headers:
            if upgrade is not None:
                headers = [(canonical_header_name(n), v) for n, v in headers]
            parts.append(b"\r\n".join(map(b": ".join, headers)))
            parts.append(b"\r\n")
        parts.append(xf)
        length = ex.body_length
        if length > 0:
            parts.append(b"Content-Length: %d\r\n" % length)
        elif length < 0:
            parts.append(_CHUNKED)
        elif ex.method in _EMPTY_BODY_METHODS:
            parts.append(_CL0)
        if upgrade is not None:
            parts.append(b"Connection: Upgrade\r\nUpgrade: " + upgrade + b"\r\n")
        if flags & X_TE_TRAILERS:
            parts.append(b"Te: trailers\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)
