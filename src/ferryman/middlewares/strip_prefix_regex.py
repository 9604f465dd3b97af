"""``stripPrefixRegex``: remove a path prefix matched by a regexp, as Traefik's
``stripprefixregex/strip_prefix_regex.go``.

Each expression (Go RE2, trimmed of spaces, compiled at build time) is searched in the **decoded**
path; the first non-empty leftmost match that is also a prefix of the path is removed exactly like
``stripPrefix`` does (encoded path stripped consistently, leading ``/`` restored, ``400`` when
``URL.JoinPath()`` would change the result) and added as ``X-Forwarded-Prefix``. A match that does
not sit at the start of the path is skipped (the next expression is tried). Without a match the
request is left untouched. A full strip leaves the path ``b""`` as in ``stripPrefix``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ferryman.dynamic.models import StripPrefixRegex
from ferryman.http.exchange import Exchange, Handler
from ferryman.middlewares._go import (
    bad_request,
    compile_regex,
    is_plain,
    request_uri,
    to_bytes,
    to_str,
    url_state,
)
from ferryman.middlewares.strip_prefix import X_FORWARDED_PREFIX, strip_path

__all__ = ["StripPrefixRegexHandler", "build_strip_prefix_regex"]


class StripPrefixRegexHandler:
    """The built middleware (a :class:`~ferryman.http.exchange.Handler`)."""

    __slots__ = ("_expressions", "name", "next")

    def __init__(self, name: str, next_handler: Handler, expressions: Sequence[re.Pattern[str]]) -> None:
        self.name = name
        self.next = next_handler
        self._expressions = tuple(expressions)

    def handle(self, ex: Exchange) -> None:
        escaped = ex.path
        if is_plain(escaped):
            path, raw = escaped, b""
        else:
            path, raw = url_state(escaped)
        text = path.decode("ascii") if path.isascii() else to_str(path)
        for expression in self._expressions:
            match = expression.search(text)
            if match is None:
                continue
            found = match.group(0)
            if not found or not text.startswith(found):
                continue
            prefix = found.encode("ascii") if found.isascii() else to_bytes(found)
            new = strip_path(escaped, path, raw, len(prefix), False)
            if new is None:
                bad_request(ex)
                return
            ex.add_header(X_FORWARDED_PREFIX, prefix)
            ex.path = new
            ex.target = request_uri(new, ex.query)
            break
        self.next.handle(ex)


def build_strip_prefix_regex(name: str, config: StripPrefixRegex, next_handler: Handler) -> Handler:
    expressions = [compile_regex(exp.strip(), f"http.middlewares.{name}.stripPrefixRegex.regex[{i}]")
                   for i, exp in enumerate(config.regex)]
    return StripPrefixRegexHandler(name, next_handler, expressions)
