"""``redirectScheme``: redirect to another scheme (and port), as Traefik's ``redirect_scheme.go``.

The client URL is rebuilt from the request: scheme ``http`` (``https`` on TLS), host and port from
Host, overridden by an absolute-form request-URI; ``X-Forwarded-Proto`` (``http``/``ws`` -> http,
``https``/``wss`` -> https, anything else ignored) wins over both; ``:80`` on http and ``:443`` on
https are dropped. The target is ``<scheme>://<host>[:<port>]<uri>`` (the configured ``port``,
omitted when empty or the scheme's default; the request's own port is never carried over). When the
target equals the client URL the request goes on; otherwise ``302`` (``307`` for non-GET),
``301``/``308`` when ``permanent``, with ``Location`` and the status text as body (no Content-Type:
Traefik disables Go's content sniffing).

One deliberate difference: Go's ``net.SplitHostPort`` strips the brackets of an IPv6 Host with a
port (``[::1]:80``), which makes Traefik emit ``https://:8443::1/`` for an origin-form request; the
brackets are kept here (``https://[::1]:8443/``).
"""

from __future__ import annotations

import re
from typing import Final

from ferryman.dynamic.models import RedirectScheme
from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange, Handler
from ferryman.http.forwarded import effective_proto
from ferryman.proto.h1 import REASONS

__all__ = ["RedirectSchemeHandler", "build_redirect_scheme", "client_request_url", "url_parts"]

_URI: Final = re.compile(rb"^(https?)://(\[[\w:.]+\]|[\w._-]+)?(:\d+)?(.*)$", re.DOTALL)
_PATTERN: Final = re.compile(rb"^(https?://)?(\[[\w:.]+\]|[\w._-]+)?(:\d+)?(.*)$", re.DOTALL)


def _split_host_port(authority: bytes) -> tuple[bytes, bytes]:
    """Go's ``net.SplitHostPort`` on ``req.Host``, keeping IPv6 brackets: ``(host, ":port" | b"")``."""
    if authority.startswith(b"["):
        end = authority.find(b"]")
        if end > 0 and authority[end + 1:end + 2] == b":":
            return authority[:end + 1], authority[end + 1:]
        return authority, b""
    head, sep, port = authority.rpartition(b":")
    if not sep or b":" in head:
        return authority, b""
    return head, b":" + port


def url_parts(ex: Exchange, host: bytes, port: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """``(scheme, host, port, uri)`` of the request as Traefik's redirect middlewares see it: an
    absolute-form target's parts win over ``host``/``port`` (the Host header's), TLS means https."""
    scheme = b"http"
    uri = ex.target
    match = _URI.match(uri)
    if match is not None:
        scheme = match.group(1)
        if match.group(2):
            host = match.group(2)
        if match.group(3):
            port = match.group(3)
        uri = match.group(4)
    if ex.conn.tls:
        scheme = b"https"
    return scheme, host, port, uri


def client_request_url(ex: Exchange) -> bytes:
    """Traefik's ``clientRequestURL``: the URL the client used, as bytes."""
    scheme, host, port, uri = url_parts(ex, *_split_host_port(ex.authority))
    proto = effective_proto(ex).lower()
    if proto == b"http" or proto == b"ws":
        scheme = b"http"
    elif proto == b"https" or proto == b"wss":
        scheme = b"https"
    if (scheme == b"http" and port == b":80") or (scheme == b"https" and port == b":443"):
        port = b""
    return scheme + b"://" + host + port + uri


class RedirectSchemeHandler:
    """The built middleware (a :class:`~ferryman.http.exchange.Handler`)."""

    __slots__ = ("_force_308", "_permanent", "_prefix", "_suffix", "name", "next")

    def __init__(self, name: str, next_handler: Handler, scheme: str, port: str, permanent: bool,
                 force_permanent_redirect: bool = False) -> None:
        self.name = name
        self.next = next_handler
        self._prefix = scheme.encode() + b"://"
        if port and not ((scheme == "http" and port == "80") or (scheme == "https" and port == "443")):
            self._suffix = b":" + port.encode()
        else:
            self._suffix = b""
        self._permanent = permanent
        self._force_308 = force_permanent_redirect

    def target_url(self, old: bytes) -> bytes:
        match = _PATTERN.match(old)
        assert match is not None  # every group is optional: the pattern matches anything
        return self._prefix + (match.group(2) or b"") + self._suffix + match.group(4)

    def handle(self, ex: Exchange) -> None:
        old = client_request_url(ex)
        new = self.target_url(old)
        if new == old:
            self.next.handle(ex)
            return
        get = ex.method == b"GET"
        if self._force_308:
            status = 308
        elif self._permanent:
            status = 301 if get else 308
        else:
            status = 302 if get else 307
        ex.respond(status, ((b"Location", new),), REASONS[status].encode(), content_type=None)


def build_redirect_scheme(name: str, config: RedirectScheme, next_handler: Handler) -> Handler:
    if not config.scheme:
        raise ConfigError("you must provide a target scheme", path=f"http.middlewares.{name}.redirectScheme.scheme",
                          fix="set scheme, e.g. https")
    force = bool(getattr(config, "force_permanent_redirect", False))
    return RedirectSchemeHandler(name, next_handler, config.scheme, config.port, config.permanent, force)
