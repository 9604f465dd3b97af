"""``replacePathRegex``: rewrite the path with a regexp, as Traefik's
``replacepathregex/replace_path_regex.go``.

The expression (Go RE2, trimmed of spaces) runs against the **escaped** path (``URL.RawPath``, else
``URL.EscapedPath()``). When it matches anywhere: the escaped path goes in ``X-Replaced-Path``, every
match is replaced as Go's ``ReplaceAllString`` does (``$1``/``${1}``/``${name}`` expansion; the
replacement is trimmed of spaces, so a spaces-only replacement deletes the matches), the result
becomes ``URL.RawPath`` and its unescaped form ``URL.Path`` (``500`` with Go's error text when it
does not unescape), and the request-URI is rebuilt. A result that ``URL.JoinPath()`` would change
(``.``/``..`` segments, duplicate slashes) is answered ``400``. Without a match nothing changes.
An empty result is Go's empty path (sent as ``/``, see ``stripPrefix``).
"""

from __future__ import annotations

import re

from ferryman.dynamic.models import ReplacePathRegex
from ferryman.http.exchange import Exchange, Handler
from ferryman.middlewares._go import (
    GoTemplate,
    GoURLError,
    bad_request,
    compile_regex,
    compile_template,
    escaped_path,
    http_error,
    join_path,
    replace_all,
    request_uri,
    to_bytes,
    to_str,
    unescape,
    url_state,
)
from ferryman.middlewares.replace_path import X_REPLACED_PATH

__all__ = ["ReplacePathRegexHandler", "build_replace_path_regex"]


class ReplacePathRegexHandler:
    """The built middleware (a :class:`~ferryman.http.exchange.Handler`)."""

    __slots__ = ("_regexp", "_template", "name", "next")

    def __init__(self, name: str, next_handler: Handler, regexp: re.Pattern[str], template: GoTemplate) -> None:
        self.name = name
        self.next = next_handler
        self._regexp = regexp
        self._template = template

    def handle(self, ex: Exchange) -> None:
        current = ex.path
        text = current.decode("ascii") if current.isascii() else to_str(current)
        match = self._regexp.search(text)
        if match is None:
            self.next.handle(ex)
            return
        ex.add_header(X_REPLACED_PATH, current)
        replaced = replace_all(self._regexp, text, self._template, match)
        raw = replaced.encode("ascii") if replaced.isascii() else to_bytes(replaced)
        try:
            path = unescape(raw)
        except GoURLError as exc:
            http_error(ex, 500, str(exc))
            return
        new = escaped_path(path, raw)
        if path and (b"/." in new or b"//" in new or new[:1] != b"/"):
            joined = join_path(new)
            if url_state(joined)[0] != path:
                bad_request(ex)
                return
            new = joined
        ex.path = new or b"/"
        ex.target = request_uri(new, ex.query)
        self.next.handle(ex)


def build_replace_path_regex(name: str, config: ReplacePathRegex, next_handler: Handler) -> Handler:
    pattern = config.regex.strip()
    regexp = compile_regex(pattern, f"http.middlewares.{name}.replacePathRegex.regex")
    template = compile_template(config.replacement.strip(), regexp, pattern)
    return ReplacePathRegexHandler(name, next_handler, regexp, template)
