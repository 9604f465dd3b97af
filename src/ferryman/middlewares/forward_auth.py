"""``forwardAuth``: ask an authentication server about each request, as Traefik's
``pkg/middlewares/auth/forward.go``.

Build time: ``address`` must be an ``http://`` or ``https://`` URL; ``tls`` (``ca``, ``cert``,
``key`` -- each a file path or the PEM itself -- and ``insecureSkipVerify``) configures the client
side of an ``https`` address (cert and key go together); ``authResponseHeadersRegex`` is Go RE2.
A bad value is a :class:`~ferryman.errors.ConfigError` (the router is disabled with the reason).

The auth request (per client request, on a keep-alive connection of the middleware's own client,
:mod:`ferryman.upstream.client`; the event loop is never blocked and no task is made per request):

* ``GET`` (the client's method with ``preserveRequestMethod``) to ``address`` (its path and query),
  ``Host`` from ``address``; no body unless ``forwardBody`` (then the whole client body, read
  first -- more than ``maxBodySize`` bytes answers ``401`` -- and replayed to the backend after).
* Headers: the client's (as middlewares see them in Traefik: with the entry point's
  ``X-Forwarded-*``), hop-by-hop ones removed, kept only if named in ``authRequestHeaders`` (when
  set), then:

  - ``trustForwardHeader`` unset (Traefik's legacy mode): ``X-Forwarded-For`` = client IP,
    ``X-Forwarded-Proto`` = ``http``/``https``, ``X-Forwarded-Method``, ``X-Forwarded-Host`` (the
    Host), ``X-Forwarded-Uri`` (the request URI) are set; the other headers stay;
  - ``false``: every Traefik-managed ``X-Forwarded-*``/``X-Real-Ip`` is removed first, then the
    same five plus ``X-Forwarded-Port`` are set; no ``User-Agent`` is sent when the client sent none;
  - ``true``: incoming values are kept (they are what the entry point trusted), the client IP is
    appended to ``X-Forwarded-For``, the others are set only when absent; the managed names are
    added to ``authRequestHeaders`` when that list is set.

  Go's client adds ``User-Agent: Go-http-client/1.1`` (when the header is absent) and
  ``Accept-Encoding: gzip`` (decoding a gzip answer); so does this one.

The answer:

* ``2xx``: the request goes on, with the ``authResponseHeaders`` replaced by the auth server's
  values (removed when it sent none) and, with ``authResponseHeadersRegex``, every request header
  whose canonical name matches removed and the matching auth response headers copied. The auth
  server's cookies named in ``addAuthCookiesToResponse`` are added to the backend's response
  (backend cookies of the same names are dropped).
* anything else: returned to the client as is (status, headers minus hop-by-hop ones, body), with
  a relative ``Location`` made absolute against ``address`` unless ``preserveLocationHeader``. With
  ``authSigninURL``, a ``401`` becomes a ``302`` redirect there.
* the auth server unreachable, timed out (30 s) or answering garbage: ``500``; an answer longer than
  ``maxResponseBodySize``: ``401``. Both with an empty body, as Traefik.

``headerField`` names the auth response header whose (first) value is the access log's
``ClientUsername``.
"""

from __future__ import annotations

import os
import re
import ssl
import tempfile
from typing import Final
from urllib.parse import urljoin

from ferryman.dynamic.models import ClientTLS, ForwardAuth
from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange, Handler, Headers, ResponseHook
from ferryman.http.forwarded import MANAGED_X_HEADERS
from ferryman.middlewares._go import GoURLError, compile_regex, parse_url
from ferryman.proto.h1 import http_date, split_authority
from ferryman.upstream.client import ClientResponse, HTTPClient, ResponseTooLarge
from ferryman.upstream.forwarder import canonical_header_name

__all__ = ["ForwardAuthHandler", "build_forward_auth", "client_ssl_context"]

TIMEOUT: Final = 30.0
GO_USER_AGENT: Final = b"Go-http-client/1.1"
#: Removed from the auth request and from an auth answer relayed to the client (Traefik's ``hopHeaders``).
_HOP: Final = frozenset({b"connection", b"keep-alive", b"te", b"trailers", b"transfer-encoding", b"upgrade"})
#: Framing headers the client connection writes itself.
_FRAMING: Final = frozenset({b"content-length", b"transfer-encoding"})
_BODY_METHODS: Final = frozenset({b"POST", b"PUT", b"PATCH"})


def _managed(name: bytes) -> bool:
    """Traefik's ``isManagedXHeader`` (underscores count as dashes)."""
    return name.replace(b"_", b"-") in MANAGED_X_HEADERS


# ------------------------------------------------------------------------------------------- TLS


def _pem(value: str) -> bytes:
    """A path or the PEM itself (Traefik: a path if such a file exists)."""
    if os.path.exists(value):
        with open(value, "rb") as handle:
            return handle.read()
    return value.encode()


def client_ssl_context(config: ClientTLS | None, path: str) -> ssl.SSLContext:
    """Traefik's ``ClientTLS.CreateTLSConfig`` as an :class:`ssl.SSLContext` (system CAs when no ``ca``)."""
    ctx = ssl.create_default_context()
    if config is None:
        return ctx
    if config.ca:
        try:
            ctx = ssl.create_default_context(cadata=_pem(config.ca).decode("ascii", "replace"))
        except (ssl.SSLError, ValueError, OSError) as exc:
            raise ConfigError(f"failed to parse CA: {exc}", path=f"{path}.ca",
                              fix="give the path of a PEM CA bundle, or its PEM text") from None
    if bool(config.cert) != bool(config.key):
        raise ConfigError("both TLS cert and key must be defined", path=path, fix="set both cert and key, or neither")
    if config.cert:
        with tempfile.TemporaryDirectory(prefix="ferryman-fa-") as tmp:
            cert_file, key_file = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
            for target, value in ((cert_file, config.cert), (key_file, config.key)):
                try:
                    data = _pem(value)
                except OSError as exc:
                    raise ConfigError(f"cannot read {value!r}: {exc.strerror}", path=path,
                                      fix="give readable PEM files (or the PEM text)") from None
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
            try:
                ctx.load_cert_chain(cert_file, key_file)
            except (ssl.SSLError, OSError) as exc:
                raise ConfigError(f"cannot load the client certificate and key: {exc}", path=f"{path}.cert",
                                  fix="give a PEM certificate and its matching private key") from None
    if config.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


# ------------------------------------------------------------------------------------------- headers


class _GoHeader:
    """An ``http.Header``: canonical name -> values, insertion ordered."""

    __slots__ = ("h",)

    def __init__(self) -> None:
        self.h: dict[bytes, list[bytes]] = {}

    def add(self, name: bytes, value: bytes) -> None:
        self.h.setdefault(canonical_header_name(name.lower()), []).append(value)

    def set(self, name: bytes, value: bytes) -> None:
        self.h[canonical_header_name(name.lower())] = [value]

    def has(self, name: bytes) -> bool:
        return canonical_header_name(name.lower()) in self.h

    def values(self, name: bytes) -> list[bytes]:
        return self.h.get(canonical_header_name(name.lower()), [])

    def delete(self, name: bytes) -> None:
        self.h.pop(canonical_header_name(name.lower()), None)

    def get(self, name: bytes) -> bytes:
        values = self.values(name)
        return values[0] if values else b""


def auth_request_headers(ex: Exchange, trust: bool | None, allowed: tuple[bytes, ...]) -> _GoHeader:
    """The headers Traefik puts on the auth request (before Go's transport adds its own)."""
    ex.materialize_forwarded()
    h = _GoHeader()
    for name, value in ex.headers:
        if name not in _HOP:
            h.add(name, value)
    if trust is False:
        for key in [k for k in h.h if _managed(k.lower())]:
            del h.h[key]
    if trust is not None and not any(n == b"user-agent" for n, _ in ex.headers):
        h.set(b"User-Agent", b"")  # don't let Go's client add its own
    if allowed:
        filtered = _GoHeader()
        for name in allowed:
            values = h.values(name)
            if values:
                filtered.h[canonical_header_name(name.lower())] = list(values)
        h = filtered
    ip = ex.conn.client_ip_b
    proto = b"https" if ex.conn.tls else b"http"
    uri = ex.path if ex.query is None else ex.path + b"?" + ex.query
    if trust is None:
        h.set(b"X-Forwarded-For", ip)
        h.set(b"X-Forwarded-Proto", proto)
        h.set(b"X-Forwarded-Method", ex.method)
        h.set(b"X-Forwarded-Host", ex.authority)
        h.set(b"X-Forwarded-Uri", uri)
        return h
    prior = h.values(b"X-Forwarded-For")
    h.set(b"X-Forwarded-For", b", ".join([*prior, ip]) if prior else ip)
    if not h.has(b"X-Forwarded-Method"):
        h.set(b"X-Forwarded-Method", ex.method)
    if not h.has(b"X-Forwarded-Proto"):
        h.set(b"X-Forwarded-Proto", proto)
    if not h.has(b"X-Forwarded-Port"):
        port = split_authority(ex.authority)[1]
        if not port:
            xfp = h.get(b"X-Forwarded-Proto")
            port = b"443" if xfp in (b"https", b"wss") or ex.conn.tls else b"80"
        h.set(b"X-Forwarded-Port", port)
    if not h.has(b"X-Forwarded-Host"):
        h.set(b"X-Forwarded-Host", ex.authority)
    if not h.has(b"X-Forwarded-Uri"):
        h.set(b"X-Forwarded-Uri", uri)
    return h


def _cookie_name(set_cookie: bytes) -> bytes | None:
    """The name of a ``Set-Cookie`` value (``None`` when Go's ``readSetCookies`` would drop it)."""
    first = set_cookie.split(b";", 1)[0].strip()
    name, sep, _ = first.partition(b"=")
    name = name.strip()
    if not sep or not name or not re.fullmatch(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", name):
        return None
    return name


# ------------------------------------------------------------------------------------------- handler


class _BodyReader:
    """Collects the whole request body before the auth call (``forwardBody``)."""

    __slots__ = ("_chunks", "_ex", "_over", "_owner", "_size")

    def __init__(self, owner: ForwardAuthHandler, ex: Exchange) -> None:
        self._owner = owner
        self._ex = ex
        self._chunks: list[bytes] = []
        self._size = 0
        self._over = False

    def body_data(self, data: bytes) -> None:
        if self._over:
            return
        self._size += len(data)
        limit = self._owner.max_body
        if 0 <= limit < self._size:
            self._over = True
            self._chunks = []
            _empty(self._ex, 401)
            return
        self._chunks.append(data)

    def body_end(self, trailers: Headers | None) -> None:
        if not self._over and not self._ex.done:
            self._owner._call(self._ex, self._chunks)


def _empty(ex: Exchange, status: int) -> None:
    """``rw.WriteHeader(status)`` with no body (no Content-Type)."""
    ex.respond(status, (), b"", content_type=None)


class ForwardAuthHandler:
    """The built middleware (a :class:`~ferryman.http.exchange.Handler`)."""

    def __init__(self, name: str, next_handler: Handler, config: ForwardAuth, client: HTTPClient,
                 host: bytes, target: bytes, base_url: bytes, regex: re.Pattern[str] | None) -> None:
        self.name = name
        self.next = next_handler
        self.client = client
        self.host = host
        self.target = target
        self.base_url = base_url
        self.trust = config.trust_forward_header
        allowed = tuple(h.encode() for h in config.auth_request_headers)
        if allowed and self.trust:
            allowed += tuple(canonical_header_name(n) for n in sorted(MANAGED_X_HEADERS))
        self.allowed = allowed
        self.response_headers = tuple(canonical_header_name(h.lower().encode()) for h in config.auth_response_headers)
        self.regex = regex
        self.auth_cookies = frozenset(c.encode() for c in config.add_auth_cookies_to_response)
        self.forward_body = config.forward_body
        self.max_body = config.max_body_size if config.max_body_size is not None else -1
        self.max_response_body = config.max_response_body_size if config.max_response_body_size is not None else -1
        self.preserve_location = config.preserve_location_header
        self.preserve_method = config.preserve_request_method
        self.signin_url = config.auth_signin_url.encode()
        self.header_field = config.header_field.encode()

    def handle(self, ex: Exchange) -> None:
        if self.forward_body and ex.body_length != 0 and not (ex.method == b"CONNECT" and ex.body_length < 0):
            ex.set_body_consumer(_BodyReader(self, ex))
            return
        self._call(ex, None)

    def _call(self, ex: Exchange, body: list[bytes] | None) -> None:
        method = ex.method if self.preserve_method else b"GET"
        h = auth_request_headers(ex, self.trust, self.allowed)
        lines = [method + b" " + self.target + b" HTTP/1.1\r\nHost: " + self.host + b"\r\n"]
        ua = h.h.pop(b"User-Agent", None)
        if ua is None:
            lines.append(b"User-Agent: " + GO_USER_AGENT + b"\r\n")
        elif ua and ua[0]:
            lines.append(b"User-Agent: " + ua[0] + b"\r\n")
        for name, values in h.h.items():
            for value in values:
                lines.append(name + b": " + value + b"\r\n")
        gzip = not h.get(b"Accept-Encoding") and not h.get(b"Range") and method != b"HEAD"
        if gzip:
            lines.append(b"Accept-Encoding: gzip\r\n")
        payload = b""
        if body is not None:
            payload = b"".join(body)
            if ex.body_length < 0:
                lines.append(b"Transfer-Encoding: chunked\r\n")
                payload = (b"%x\r\n%b\r\n0\r\n\r\n" % (len(payload), payload)) if payload else b"0\r\n\r\n"
            else:
                lines.append(b"Content-Length: %d\r\n" % len(payload))
        elif method in _BODY_METHODS:
            lines.append(b"Content-Length: 0\r\n")
        lines.append(b"\r\n")

        def done(response: ClientResponse | None, error: BaseException | None) -> None:
            if ex.done:
                return
            if response is None:
                _empty(ex, 401 if isinstance(error, ResponseTooLarge) else 500)
                return
            self._answer(ex, response, body)

        self.client.request(b"".join(lines), payload, done, head_only=method == b"HEAD",
                            max_body=self.max_response_body, gzip=gzip)

    def _answer(self, ex: Exchange, res: ClientResponse, body: list[bytes] | None) -> None:
        status = res.status
        if self.header_field:
            users = res.values(self.header_field)
            if users and ex.obs is not None:
                ex.obs_user = users[0].decode("utf-8", "replace")  # access log ClientUsername
        if self.signin_url and status == 401:
            _redirect(ex, self.signin_url)
            return
        if not 200 <= status < 300:
            self._relay(ex, res)
            return
        for name in self.response_headers:
            low = name.lower()
            ex.remove_header(low)
            for value in res.values(name):
                ex.add_header(low, value)
        regex = self.regex
        if regex is not None:
            ex.materialize_forwarded()
            ex.headers = [(n, v) for n, v in ex.headers
                          if not regex.search(canonical_header_name(n).decode("latin-1"))]
            for n, v in res.headers:
                if regex.search(canonical_header_name(n.lower()).decode("latin-1")):
                    ex.headers.append((n.lower(), v))
        if self.auth_cookies:
            cookies = [v for n, v in res.headers if n.lower() == b"set-cookie" and _cookie_name(v) is not None]
            if cookies:
                ex.add_response_hook(self._cookie_hook(cookies))
        if body is not None:
            ex.replay_body(body)
        self.next.handle(ex)

    def _cookie_hook(self, auth_cookies: list[bytes]) -> ResponseHook:
        names = self.auth_cookies

        def hook(ex: Exchange, status: int, headers: Headers) -> int:
            kept = [(n, v) for n, v in headers
                    if n.lower() != b"set-cookie" or (_cookie_name(v) is not None and _cookie_name(v) not in names)]
            kept.extend((b"Set-Cookie", c) for c in auth_cookies if _cookie_name(c) in names)
            headers[:] = kept
            return status

        return hook

    def _relay(self, ex: Exchange, res: ClientResponse) -> None:
        out: Headers = [(n, v) for n, v in res.headers if n.lower() not in _HOP and n.lower() not in _FRAMING]
        locations = res.values(b"Location")
        if locations and locations[0]:
            location = locations[0]
            if not self.preserve_location:
                try:
                    location = _resolve(self.base_url, location)
                except GoURLError:
                    _empty(ex, 500)
                    return
            out = [(n, v) for n, v in out if n.lower() != b"location"]
            out.append((b"Location", location))
        if not any(n.lower() == b"date" for n, _ in out):
            out.append((b"Date", http_date()))
        if ex.done or ex.status:
            return
        sink = ex.sink
        sink.send_head(res.status, out, len(res.body))
        if res.body:
            sink.send_data(res.body)
        sink.send_end(None)


def _resolve(base: bytes, ref: bytes) -> bytes:
    """Go's ``URL.Parse(ref)`` relative to ``base``, as ``String()``."""
    parse_url(ref)  # raises GoURLError like Go's url.Parse
    return urljoin(base.decode("latin-1"), ref.decode("latin-1")).encode("latin-1")


def _redirect(ex: Exchange, url: bytes) -> None:
    """Traefik's answer for ``authSigninURL``: ``302`` with ``Location`` and no body (checked
    against Traefik 3.7: unlike a plain ``http.Redirect``, no HTML body is written)."""
    ex.respond(302, ((b"Location", url),), b"", content_type=None)


def build_forward_auth(name: str, config: ForwardAuth, next_handler: Handler) -> Handler:
    path = f"http.middlewares.{name}.forwardAuth"
    if not config.address:
        raise ConfigError("forwardAuth needs an address", path=f"{path}.address",
                          fix="set address to the authentication server's URL, e.g. http://auth:9000/verify")
    try:
        url = parse_url(config.address.encode())
    except GoURLError as exc:
        raise ConfigError(f"invalid address {config.address!r}: {exc}", path=f"{path}.address",
                          fix="write it as http(s)://host[:port]/path") from None
    scheme = url.scheme.lower()
    if scheme not in (b"http", b"https") or not url.host:
        raise ConfigError(f"address {config.address!r} is not an http:// or https:// URL", path=f"{path}.address",
                          fix="write it as http(s)://host[:port]/path")
    host_s, port_s = split_authority(url.host)
    host = host_s.decode("idna" if not host_s.isascii() else "ascii").strip("[]")
    port = int(port_s) if port_s else (443 if scheme == b"https" else 80)
    ctx = client_ssl_context(config.tls, f"{path}.tls") if scheme == b"https" else None
    regex = compile_regex(config.auth_response_headers_regex, f"{path}.authResponseHeadersRegex") \
        if config.auth_response_headers_regex else None
    target = url.escaped_path() or b"/"
    query = url.query()
    if query is not None:
        target += b"?" + query
    client = HTTPClient(host, port, ctx, server_hostname=host, timeout=TIMEOUT)
    base = url.string()
    return ForwardAuthHandler(name, next_handler, config, client, url.host, target, base, regex)
