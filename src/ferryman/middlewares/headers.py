"""``headers``: custom request/response headers, CORS and security headers, as Traefik's
``pkg/middlewares/headers`` (``header.go`` in front of ``secure.go``, i.e. unrolled/secure v1.0.9).

Order, as in Traefik (``Header -> secure -> next``):

1. **CORS preflight** (any CORS option set; ``OPTIONS`` with ``Origin`` and
   ``Access-Control-Request-Method``): answered here with 200, ``Content-Length: 0``,
   ``Access-Control-Allow-{Credentials,Headers,Methods,Origin}``, ``Access-Control-Max-Age`` (only when
   configured) and ``Access-Control-Expose-Headers``; lists joined with ``,``. A ``*`` in
   ``accessControlAllowHeaders``/``Methods`` with credentials echoes the request's value. The
   security part does not run for preflights (no ``allowedHosts`` check, no security headers).
2. **Custom request headers** in configuration order: an empty value deletes the header -- for
   the exact key ``X-Forwarded-For`` it also tells the proxy not to add the client
   (Go's ``Header["X-Forwarded-For"] = nil``); a key equal to ``Host`` (any case) rewrites the Host
   sent upstream (``req.Host``; ``X-Forwarded-Host`` keeps the client's); anything else is set.
3. **Security, request side**: the host is the (possibly rewritten) Host, or the first non-empty
   ``hostsProxyHeaders`` header; with ``allowedHosts`` (and not ``isDevelopment``) a host not in the
   list (case-insensitive, port included, as Traefik compares ``req.Host``) gets Go's
   ``http.Error(w, "Bad Host", 500)``. HTTPS is: TLS, an ``https`` absolute-form request-URI, or
   an ``sslProxyHeaders`` header equal to its value.
4. **Response** (a head hook, so it applies to whatever answers later -- backend or a 502): first
   the security headers, each *set* (``Strict-Transport-Security`` when ``stsSeconds`` is non-zero
   and the request was HTTPS or ``forceSTSHeader``, and not ``isDevelopment``;
   ``X-Frame-Options`` (custom value or ``DENY``); ``X-Content-Type-Options: nosniff``;
   ``X-XSS-Protection`` (custom value or ``1; mode=block``); ``Public-Key-Pins`` (HTTPS, not
   development); ``Content-Security-Policy(-Report-Only)``; ``Referrer-Policy``;
   ``Permissions-Policy``); then the custom response headers (empty value deletes), then
   ``Access-Control-Allow-Origin`` for a matching request ``Origin`` (``*`` in the list answers
   ``*``, or echoes the origin with credentials; regexes are unanchored searches and echo the
   origin), ``Access-Control-Allow-Credentials``, ``Access-Control-Expose-Headers`` and, with
   ``addVaryHeader``, ``Origin`` appended to the first ``Vary`` value unless it is ``Origin``.

The deprecated ``featurePolicy``, ``sslRedirect``, ``sslTemporaryRedirect``, ``sslHost`` and
``sslForceHost`` count as configuration but have no effect, as in Traefik v3.

Everything is prepared at build time: header names as lower-case bytes plus Go's canonical spelling
for the ones added, regexes compiled, both variants (HTTPS or not) of the security header list
and the response hooks bound once. A request that needs nothing pays a dict-free scan of its headers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from ferryman.dynamic.models import Headers as HeadersConfig
from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange, Handler, Headers

__all__ = ["HeadersHandler", "build_headers", "canonical_header", "has_any"]

_OPTIONS: Final = b"OPTIONS"
_BAD_HOST: Final = b"Bad Host\n"


def canonical_header(name: str) -> str:
    """Go's ``textproto.CanonicalMIMEHeaderKey`` for valid token names (others are kept as is)."""
    if not name or any(c in name for c in " \t\r\n:") or not name.isascii():
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _set(headers: Headers, lname: bytes, name: bytes, value: bytes) -> None:
    """``Header.Set`` on a response header list (names compared case-insensitively), in place."""
    for n, _ in headers:
        if n.lower() == lname:
            headers[:] = [h for h in headers if h[0].lower() != lname]
            break
    headers.append((name, value))


def _delete(headers: Headers, lname: bytes) -> None:
    headers[:] = [h for h in headers if h[0].lower() != lname]


def _first(headers: Headers, lname: bytes) -> bytes | None:
    for name, value in headers:
        if name.lower() == lname:
            return value
    return None


def _request_value(headers: Headers, lname: bytes) -> bytes:
    """Go's ``req.Header.Get`` on the request headers (lower-case names): first value or ``b""``."""
    for name, value in headers:
        if name == lname:
            return value
    return b""


def has_secure(c: HeadersConfig) -> bool:
    """Traefik's ``HasSecureHeadersDefined``."""
    return bool(
        c.allowed_hosts or c.hosts_proxy_headers or c.ssl_redirect or c.ssl_temporary_redirect
        or c.ssl_force_host or c.ssl_host or c.ssl_proxy_headers or c.sts_seconds is not None
        or c.sts_include_subdomains or c.sts_preload or c.force_sts_header or c.frame_deny
        or c.custom_frame_options_value or c.content_type_nosniff or c.browser_xss_filter
        or c.custom_browser_xss_value or c.content_security_policy
        or c.content_security_policy_report_only or c.public_key or c.referrer_policy
        or c.feature_policy or c.permissions_policy or c.is_development)


def has_custom(c: HeadersConfig) -> bool:
    """Traefik's ``HasCustomHeadersDefined``."""
    return bool(c.custom_request_headers or c.custom_response_headers)


def has_cors(c: HeadersConfig) -> bool:
    """Traefik's ``HasCorsHeadersDefined``."""
    return bool(
        c.access_control_allow_credentials or c.access_control_allow_headers
        or c.access_control_allow_methods or c.access_control_allow_origin_list
        or c.access_control_allow_origin_list_regex or c.access_control_expose_headers
        or c.access_control_max_age is not None or c.add_vary_header)


def has_any(c: HeadersConfig) -> bool:
    return has_secure(c) or has_custom(c) or has_cors(c)


def _security_headers(c: HeadersConfig, ssl: bool) -> tuple[tuple[bytes, bytes, bytes], ...]:
    """unrolled/secure's response headers for an HTTPS (``ssl``) or plain request."""
    out: list[tuple[str, str]] = []
    if c.sts_seconds and (ssl or c.force_sts_header) and not c.is_development:
        value = f"max-age={c.sts_seconds}"
        if c.sts_include_subdomains:
            value += "; includeSubDomains"
        if c.sts_preload:
            value += "; preload"
        out.append(("Strict-Transport-Security", value))
    if c.custom_frame_options_value:
        out.append(("X-Frame-Options", c.custom_frame_options_value))
    elif c.frame_deny:
        out.append(("X-Frame-Options", "DENY"))
    if c.content_type_nosniff:
        out.append(("X-Content-Type-Options", "nosniff"))
    if c.custom_browser_xss_value:
        out.append(("X-Xss-Protection", c.custom_browser_xss_value))
    elif c.browser_xss_filter:
        out.append(("X-Xss-Protection", "1; mode=block"))
    if c.public_key and ssl and not c.is_development:
        out.append(("Public-Key-Pins", c.public_key))
    if c.content_security_policy:
        out.append(("Content-Security-Policy", c.content_security_policy))
    if c.content_security_policy_report_only:
        out.append(("Content-Security-Policy-Report-Only", c.content_security_policy_report_only))
    if c.referrer_policy:
        out.append(("Referrer-Policy", c.referrer_policy))
    if c.permissions_policy:
        out.append(("Permissions-Policy", c.permissions_policy))
    return tuple((n.lower().encode(), n.encode(), v.encode()) for n, v in out)


class HeadersHandler:
    """The built middleware (a :class:`~ferryman.http.exchange.Handler`)."""

    __slots__ = (
        "_acah",
        "_acah_echo",
        "_acam",
        "_acam_echo",
        "_allowed",
        "_cors",
        "_credentials",
        "_custom",
        "_expose",
        "_hook_cors",
        "_hook_plain",
        "_hook_ssl",
        "_host_headers",
        "_max_age",
        "_origin_list",
        "_origin_regexes",
        "_req_ops",
        "_resp_ops",
        "_secure",
        "_secure_plain",
        "_secure_ssl",
        "_ssl_headers",
        "_vary",
        "name",
        "next",
    )

    def __init__(self, name: str, next_handler: Handler, config: HeadersConfig, *, path: str = "") -> None:
        self.name = name
        self.next = next_handler
        c = config
        self._cors = has_cors(c)
        self._custom = has_custom(c) or self._cors  # Traefik's Header layer exists
        self._secure = has_secure(c)
        # Custom request headers: (op, lower name, value); op 0 = set, 1 = delete, 2 = delete XFF and
        # do not add it, 3 = Host.
        ops: list[tuple[int, bytes, bytes]] = []
        for key, value in c.custom_request_headers.items():
            lname = key.lower().encode()
            if value == "" and key == "X-Forwarded-For":
                ops.append((2, lname, b""))
            elif value == "":
                ops.append((1, lname, b""))
            elif key.lower() == "host":
                ops.append((3, b"host", value.encode()))
            else:
                ops.append((0, lname, value.encode()))
        self._req_ops = tuple(ops)
        self._resp_ops = tuple(
            (k.lower().encode(), canonical_header(k).encode(), v.encode() if v else None)
            for k, v in c.custom_response_headers.items())
        regexes: list[re.Pattern[str]] = []
        for index, pattern in enumerate(c.access_control_allow_origin_list_regex):
            try:
                regexes.append(re.compile(pattern))
            except re.error as exc:
                raise ConfigError(f"error occurred during origin parsing: {pattern!r}: {exc}",
                                  path=f"{path}.accessControlAllowOriginListRegex[{index}]",
                                  fix="write a valid regular expression (RE2 syntax)") from exc
        self._origin_list = tuple(c.access_control_allow_origin_list)
        self._origin_regexes = tuple(regexes)
        self._credentials = c.access_control_allow_credentials
        self._acah = ",".join(c.access_control_allow_headers).encode()
        self._acah_echo = "*" in c.access_control_allow_headers and self._credentials
        self._acam = ",".join(c.access_control_allow_methods).encode()
        self._acam_echo = "*" in c.access_control_allow_methods and self._credentials
        self._max_age = None if c.access_control_max_age is None else str(c.access_control_max_age).encode()
        expose = ",".join(c.access_control_expose_headers).encode()
        hide = "*" in c.access_control_expose_headers and self._credentials
        self._expose = expose if expose and not hide else None
        self._vary = c.add_vary_header
        self._allowed = (tuple(h.lower() for h in c.allowed_hosts)
                         if c.allowed_hosts and not c.is_development else None)
        self._host_headers = tuple(h.lower().encode() for h in c.hosts_proxy_headers)
        self._ssl_headers = tuple((k.lower().encode(), v.encode()) for k, v in c.ssl_proxy_headers.items())
        self._secure_plain = _security_headers(c, False)
        self._secure_ssl = _security_headers(c, True)
        # Bound once: registering a hook allocates nothing per request.
        self._hook_cors = self._cors_hook
        self._hook_plain = self._plain_hook
        self._hook_ssl = self._ssl_hook

    # ------------------------------------------------------------------ request

    def handle(self, ex: Exchange) -> None:
        if self._cors and ex.method == _OPTIONS and self._preflight(ex):
            return
        if self._req_ops:
            self._modify_request(ex)
        if self._custom:
            if not self._secure:
                ex.add_response_hook(self._hook_cors)
                self.next.handle(ex)
                return
            if not self._host_allowed(ex):
                ex.add_response_hook(self._hook_cors)
                ex.respond(500, ((b"X-Content-Type-Options", b"nosniff"),), _BAD_HOST)
                return
        elif not self._host_allowed(ex):
            ex.respond(500, ((b"X-Content-Type-Options", b"nosniff"),), _BAD_HOST)
            return
        if self._secure_ssl or self._custom:
            ex.add_response_hook(self._hook_ssl if self._is_ssl(ex) else self._hook_plain)
        self.next.handle(ex)

    def _preflight(self, ex: Exchange) -> bool:
        headers = ex.headers
        method = _request_value(headers, b"access-control-request-method")
        origin = _request_value(headers, b"origin")
        if not method or not origin:
            return False
        out: list[tuple[bytes, bytes]] = []
        if self._credentials:
            out.append((b"Access-Control-Allow-Credentials", b"true"))
        if self._acah_echo:
            requested = _request_value(headers, b"access-control-request-headers")
            if requested:
                out.append((b"Access-Control-Allow-Headers", requested))
        elif self._acah:
            out.append((b"Access-Control-Allow-Headers", self._acah))
        if self._acam_echo:
            out.append((b"Access-Control-Allow-Methods", method))
        elif self._acam:
            out.append((b"Access-Control-Allow-Methods", self._acam))
        match = self.match_origin(origin)
        if match is not None:
            out.append((b"Access-Control-Allow-Origin", match))
        if self._max_age is not None:
            out.append((b"Access-Control-Max-Age", self._max_age))
        if self._expose is not None:
            out.append((b"Access-Control-Expose-Headers", self._expose))
        ex.respond(200, out, b"", content_type=None)
        return True

    def _modify_request(self, ex: Exchange) -> None:
        for op, lname, value in self._req_ops:
            if op == 0:
                ex.set_header(lname, value)
            elif op == 1:
                ex.remove_header(lname)
            elif op == 2:
                ex.remove_header(lname)
                ex.omit_xff = True
            else:
                ex.materialize_forwarded()  # X-Forwarded-Host keeps the client's Host
                ex.authority = value

    def _host_allowed(self, ex: Exchange) -> bool:
        allowed = self._allowed
        if allowed is None:
            return True
        host = ex.authority
        for lname in self._host_headers:
            value = ex.header(lname)
            if value:
                host = value
                break
        return host.decode("latin-1").lower() in allowed

    def _is_ssl(self, ex: Exchange) -> bool:
        if ex.conn.tls or ex.target[:8].lower() == b"https://":
            return True
        return any((ex.header(lname) or b"") == value for lname, value in self._ssl_headers)

    def match_origin(self, origin: bytes) -> bytes | None:
        """Traefik's ``matchOrigin``: the ``Access-Control-Allow-Origin`` value, or ``None``."""
        text = origin.decode("latin-1")
        for item in self._origin_list:
            if item == text:
                return origin
            if item == "*":
                return origin if self._credentials else b"*"
        for regex in self._origin_regexes:
            if regex.search(text):
                return origin
        return None

    # ------------------------------------------------------------------ response hooks

    def _plain_hook(self, ex: Exchange, status: int, headers: Headers) -> int:
        self._apply_secure(headers, self._secure_plain)
        return self._cors_hook(ex, status, headers) if self._custom else status

    def _ssl_hook(self, ex: Exchange, status: int, headers: Headers) -> int:
        self._apply_secure(headers, self._secure_ssl)
        return self._cors_hook(ex, status, headers) if self._custom else status

    @staticmethod
    def _apply_secure(headers: Headers, values: Sequence[tuple[bytes, bytes, bytes]]) -> None:
        for lname, name, value in values:
            _set(headers, lname, name, value)

    def _cors_hook(self, ex: Exchange, status: int, headers: Headers) -> int:
        for lname, name, value in self._resp_ops:
            if value is None:
                _delete(headers, lname)
            else:
                _set(headers, lname, name, value)
        if self._origin_list or self._origin_regexes:
            match = self.match_origin(_request_value(ex.headers, b"origin"))
            if match is not None:
                _set(headers, b"access-control-allow-origin", b"Access-Control-Allow-Origin", match)
        if self._credentials:
            _set(headers, b"access-control-allow-credentials", b"Access-Control-Allow-Credentials", b"true")
        if self._expose is not None:
            _set(headers, b"access-control-expose-headers", b"Access-Control-Expose-Headers", self._expose)
        if self._vary:
            vary = _first(headers, b"vary") or b""
            if vary != b"Origin":
                _set(headers, b"vary", b"Vary", vary + b",Origin" if vary else b"Origin")
        return status


def build_headers(name: str, config: HeadersConfig, next_handler: Handler, *,
                  allow_empty: bool = False) -> Handler:
    """Build the middleware; an empty configuration is an error (``allow_empty`` is for tests that
    exercise Traefik's inner ``NewHeader`` directly)."""
    path = f"http.middlewares.{name}.headers"
    if not allow_empty and not has_any(config):
        raise ConfigError("headers configuration not valid: no option is set", path=path,
                          fix="set at least one option, e.g. customRequestHeaders or stsSeconds")
    return HeadersHandler(name, next_handler, config, path=path)
