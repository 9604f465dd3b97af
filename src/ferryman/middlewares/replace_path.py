"""``replacePath``: replace the whole path, as Traefik's ``replacepath/replace_path.go``.

The original escaped path (``URL.RawPath``, else ``URL.EscapedPath()``) goes in ``X-Replaced-Path``
(``Header.Add``). The configured value becomes ``URL.RawPath`` and its unescaped form ``URL.Path``,
so ``/foo%2Fbar`` is forwarded as ``/foo%2Fbar`` (path ``/foo/bar``); the request-URI is rebuilt
from ``URL.EscapedPath()``. All of this is computed once, at build time. A value Go cannot unescape
(``/a%zz``) is accepted by Traefik, which then answers every request with ``500`` and the error text:
so does this middleware. An empty value gives Go's empty path (sent as ``/``).
"""

from __future__ import annotations

from ferryman.dynamic.models import ReplacePath
from ferryman.http.exchange import Exchange, Handler
from ferryman.middlewares._go import GoURLError, escaped_path, http_error, request_uri, unescape

__all__ = ["X_REPLACED_PATH", "ReplacePathHandler", "build_replace_path"]

X_REPLACED_PATH = b"x-replaced-path"


class ReplacePathHandler:
    """The built middleware (a :class:`~ferryman.http.exchange.Handler`)."""

    __slots__ = ("_error", "_path", "name", "next")

    def __init__(self, name: str, next_handler: Handler, path: bytes) -> None:
        self.name = name
        self.next = next_handler
        self._error: str | None = None
        try:
            self._path = escaped_path(unescape(path), path)
        except GoURLError as exc:
            self._path = b""
            self._error = str(exc)

    def handle(self, ex: Exchange) -> None:
        ex.add_header(X_REPLACED_PATH, ex.path)
        if self._error is not None:
            http_error(ex, 500, self._error)
            return
        new = self._path
        ex.path = new or b"/"
        ex.target = request_uri(new, ex.query)
        self.next.handle(ex)


def build_replace_path(name: str, config: ReplacePath, next_handler: Handler) -> Handler:
    return ReplacePathHandler(name, next_handler, config.path.encode())
