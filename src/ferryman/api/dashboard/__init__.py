"""The dashboard: ferryman's own single-page UI, shipped as package data next to this module
(plain HTML, CSS and ES modules: no build step, no CDN, nothing fetched from outside).

Served two ways, as in Traefik 3.7:

* by ``api@internal`` under ``<basePath>/dashboard/`` (a user router with
  ``PathPrefix(`/api`) || PathPrefix(`/dashboard`)``), where ``<basePath>/`` answers
  ``302`` to ``<basePath>/dashboard/``;
* by ``dashboard@internal`` at the root of whatever path reaches it (``api.insecure``'s internal
  ``dashboard`` router strips ``/dashboard`` first and redirects ``/`` to ``/dashboard/``).

The page finds the API relative to itself (``../api/``), so it works under ``api.basePath`` and
behind a user's ``stripPrefix``. Assets are read once at startup; responses carry an ``ETag``
(``304`` on ``If-None-Match``), ``Cache-Control: no-cache`` and a strict
``Content-Security-Policy`` (only ``'self'``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from ferryman.http.exchange import Exchange

__all__ = ["DashboardAssets", "DashboardService", "assets"]

_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
}
CSP = (b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'")
NOSNIFF = (b"X-Content-Type-Options", b"nosniff")


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: bytes
    etag: bytes


class DashboardAssets:
    """The dashboard's files by name (``index.html``, ``app.js``...), loaded once."""

    def __init__(self) -> None:
        self.files: dict[str, Asset] = {}
        root = resources.files(__name__)
        for entry in root.iterdir():
            suffix = "." + entry.name.rpartition(".")[2]
            content_type = _TYPES.get(suffix)
            if content_type is None or not entry.is_file():
                continue
            body = entry.read_bytes()
            etag = b'"' + hashlib.sha256(body).hexdigest()[:20].encode() + b'"'
            self.files[entry.name] = Asset(body, content_type, etag)

    def serve(self, ex: Exchange, name: str) -> None:
        """Answer ``name`` (``""`` is the page itself); 404 like Go for anything else."""
        if ex.method not in (b"GET", b"HEAD"):
            ex.respond(405, (), b"", content_type=None)
            return
        if name == "index.html":  # Go's FileServer: the index has one URL, the directory
            ex.respond(301, ((b"Location", b"./"),), b"", content_type=None)
            return
        asset = self.files.get(name or "index.html")
        if asset is None or "/" in name:
            ex.respond(404, (NOSNIFF,), b"404 page not found\n")
            return
        headers = [(b"Content-Type", asset.content_type), (b"Cache-Control", b"no-cache"), (b"ETag", asset.etag),
                   NOSNIFF, (b"Content-Security-Policy", CSP), (b"Referrer-Policy", b"same-origin")]
        if asset.etag in (ex.header(b"if-none-match") or b"").split(b", "):
            ex.respond(304, headers[1:3], b"", content_type=None)
            return
        ex.respond(200, headers, asset.body, content_type=None)  # the sink drops it for HEAD


_ASSETS: DashboardAssets | None = None


def assets() -> DashboardAssets:
    """The shared, lazily loaded assets (read only when the dashboard is enabled)."""
    global _ASSETS
    if _ASSETS is None:
        _ASSETS = DashboardAssets()
    return _ASSETS


class DashboardService:
    """``dashboard@internal``: the dashboard at the root of the (stripped) path."""

    def __init__(self) -> None:
        self.assets = assets()

    def handle(self, ex: Exchange) -> None:
        self.assets.serve(ex, ex.path.decode("utf-8", "replace").lstrip("/"))
