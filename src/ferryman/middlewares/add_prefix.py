"""``addPrefix``: put a prefix in front of the path, as Traefik's ``addprefix/add_prefix.go``.

``URL.Path`` becomes ``prefix + Path`` (with a leading ``/`` added when the prefix has none),
``URL.RawPath`` (when the path has one, e.g. ``/b%2Fc``) gets the same prefix, and the request-URI
is rebuilt from ``URL.EscapedPath()``. The prefix is taken as configured, unescaped: a ``%`` in it is
a literal percent sign (sent as ``%25``). An empty prefix is a configuration error.
"""

from __future__ import annotations

from ferryman.dynamic.models import AddPrefix
from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange, Handler
from ferryman.middlewares._go import escape, escaped_path, is_plain, request_uri, url_state

__all__ = ["AddPrefixHandler", "build_add_prefix"]


class AddPrefixHandler:
    """The built middleware (a :class:`~ferryman.http.exchange.Handler`)."""

    __slots__ = ("_plain", "_prefix", "name", "next")

    def __init__(self, name: str, next_handler: Handler, prefix: bytes) -> None:
        self.name = name
        self.next = next_handler
        # ensureLeadingSlash(prefix + path): the prefix is not empty, so only its first byte counts.
        self._prefix = prefix if prefix[:1] == b"/" else b"/" + prefix
        #: The prefix is its own encoding: prepend it to the escaped path as is.
        self._plain = escape(self._prefix) == self._prefix

    def handle(self, ex: Exchange) -> None:
        prefix = self._prefix
        escaped = ex.path
        if self._plain and is_plain(escaped):
            new = prefix + escaped
        else:
            path, raw = url_state(escaped)
            new = escaped_path(prefix + path, prefix + raw if raw else b"")
        ex.path = new
        ex.target = request_uri(new, ex.query)
        self.next.handle(ex)


def build_add_prefix(name: str, config: AddPrefix, next_handler: Handler) -> Handler:
    if not config.prefix:
        raise ConfigError("prefix cannot be empty", path=f"http.middlewares.{name}.addPrefix.prefix",
                          fix="set prefix, e.g. /api")
    return AddPrefixHandler(name, next_handler, config.prefix.encode())
