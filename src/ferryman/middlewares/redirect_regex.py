"""``redirectRegex``: redirect by rewriting the request URL with a regexp, as Traefik's
``redirect/redirect_regex.go`` and ``redirect/redirect.go``.

The URL is rebuilt from the request like Traefik's ``rawURL``: scheme ``http`` (``https`` on TLS),
the Host header **with its port as sent**, and the request-URI; an absolute-form request-URI
overrides scheme, host and port (TLS still forces ``https``). Unlike ``redirectScheme``,
``X-Forwarded-Proto`` is ignored and no default port is dropped.

The expression (Go RE2, compiled at build time, not trimmed) is searched in that URL:

* no match: the request goes on unchanged;
* otherwise every match is replaced as Go's ``ReplaceAllString`` does (``$1``/``${1}``/``${name}``)
  and the result is parsed as Go's ``url.Parse``; a result that does not parse is answered
  ``502 Bad Gateway`` (oxy's default error handler);
* a different URL: a redirect with ``Location`` = Go's ``URL.String()`` of the result, ``302``
  (``307`` for non-GET), ``301``/``308`` when ``permanent``, the status text as body and no
  Content-Type (Traefik disables content sniffing);
* the same URL: the request goes on with its path and query taken from the parsed URL.
"""

from __future__ import annotations

import re

from ferryman.dynamic.models import RedirectRegex
from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange, Handler
from ferryman.middlewares._go import (
    GoTemplate,
    GoURLError,
    compile_regex,
    compile_template,
    parse_url,
    replace_all,
    request_uri,
    to_bytes,
    to_str,
)
from ferryman.middlewares.redirect_scheme import url_parts
from ferryman.proto.h1 import REASONS

__all__ = ["RedirectRegexHandler", "build_redirect_regex", "raw_url"]

def raw_url(ex: Exchange) -> bytes:
    """Traefik's ``rawURL`` (redirect_regex.go): the URL the regexp is applied to."""
    scheme, host, port, uri = url_parts(ex, ex.authority, b"")
    return scheme + b"://" + host + port + uri


class RedirectRegexHandler:
    """The built middleware (a :class:`~ferryman.http.exchange.Handler`)."""

    __slots__ = ("_permanent", "_regexp", "_status", "_template", "name", "next")

    def __init__(self, name: str, next_handler: Handler, regexp: re.Pattern[str], template: GoTemplate,
                 permanent: bool, status_code: int | None = None) -> None:
        self.name = name
        self.next = next_handler
        self._regexp = regexp
        self._template = template
        self._permanent = permanent
        #: Traefik-internal ``StatusCode`` (not settable from configuration): forces the status.
        self._status = status_code

    def handle(self, ex: Exchange) -> None:
        old = raw_url(ex)
        text = old.decode("ascii") if old.isascii() else to_str(old)
        match = self._regexp.search(text)
        if match is None:
            self.next.handle(ex)
            return
        replaced = replace_all(self._regexp, text, self._template, match)
        new = replaced.encode("ascii") if replaced.isascii() else to_bytes(replaced)
        try:
            url = parse_url(new)
        except GoURLError:
            ex.respond(502, (), REASONS[502].encode(), content_type=None)
            return
        if new != old:
            get = ex.method == b"GET"
            if self._status is not None:
                status = self._status
            elif self._permanent:
                status = 301 if get else 308
            else:
                status = 302 if get else 307
            ex.respond(status, ((b"Location", url.string()),), REASONS.get(status, "").encode(),
                       content_type=None)
            return
        # Same URL: Traefik replaces req.URL with the parsed one and recomputes the request-URI.
        path = url.opaque or url.escaped_path()
        query = url.query()
        ex.path = path or b"/"
        ex.query = query
        ex.target = request_uri(path, query)
        self.next.handle(ex)


def build_redirect_regex(name: str, config: RedirectRegex, next_handler: Handler) -> Handler:
    if not config.regex:
        raise ConfigError("regex is required", path=f"http.middlewares.{name}.redirectRegex.regex",
                          fix="set regex, e.g. ^http://(.*)$")
    regexp = compile_regex(config.regex, f"http.middlewares.{name}.redirectRegex.regex")
    template = compile_template(config.replacement, regexp, config.regex)
    return RedirectRegexHandler(name, next_handler, regexp, template, config.permanent)
