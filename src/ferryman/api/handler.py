"""``api@internal``: Traefik's read-only REST API (``pkg/api/handler.go``).

Routes (all ``GET``, under ``api.basePath``): ``/api/rawdata``, ``/api/overview``,
``/api/entrypoints[/{name}]``, ``/api/http/{routers,services,middlewares}[/{name}]``,
``/api/tcp/{routers,services,middlewares}[/{name}]`` and ``/api/udp/{routers,services}[/{name}]``
(empty: ferryman has no TCP/UDP routing yet), ``/api/certificates[/{id}]`` (the default store's
certificates, :mod:`ferryman.api.certificates`), ``/api/version``; ferryman's ``/api/traffic``
(request counters for the dashboard, :mod:`ferryman.api.traffic`) and the dashboard itself
(:mod:`ferryman.api.dashboard`). List endpoints take ``search``, ``status``, ``serviceName``,
``middlewareName``, ``sortBy``, ``direction``, ``page`` and ``per_page`` (100) and answer the
``X-Next-Page`` header. Names in the URL are qualified and percent-encoded (``web%40file`` works,
so does ``web@file``). Errors are Traefik's: ``{"message": "router not found: x@file"}`` as
``text/plain`` (Go's ``http.Error``), ``404 page not found`` for an unknown path, 405 with an empty
body for another method.

The views are built once per snapshot, on the first request that needs them
(:func:`~ferryman.api.views.build_views`); a request only filters, sorts when asked and slices.
"""

from __future__ import annotations

import re
import time
import urllib.parse
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ferryman import __version__
from ferryman.api.certificates import CertItem
from ferryman.api.dashboard import assets
from ferryman.api.debug import DEBUG_PATHS, handle_debug
from ferryman.api.gojson import encode, go_time
from ferryman.api.traffic import TrafficCounter
from ferryman.api.views import EMPTY, ApiViews, Item, Listing, StaticViews, build_static_views, build_views
from ferryman.control.compile import Snapshot
from ferryman.http.exchange import Exchange
from ferryman.static.models import Api, StaticConfig

__all__ = ["ApiService", "api_prefix", "debug_prefix"]

JSON = b"application/json"
TEXT = b"text/plain; charset=utf-8"
NOSNIFF = (b"X-Content-Type-Options", b"nosniff")
DEFAULT_PER_PAGE = 100

#: collection path -> (listing attribute or None for always-empty, item word for 404s, Go variable name)
_COLLECTIONS: dict[str, tuple[str | None, str, str]] = {
    "entrypoints": ("entry_points", "entry point", "entryPointID"),
    "http/routers": ("routers", "router", "routerID"),
    "http/services": ("services", "service", "serviceID"),
    "http/middlewares": ("middlewares", "middleware", "middlewareID"),
    "tcp/routers": (None, "router", "routerID"),
    "tcp/services": (None, "service", "serviceID"),
    "tcp/middlewares": (None, "middleware", "middlewareID"),
    "udp/routers": (None, "router", "routerID"),
    "udp/services": (None, "service", "serviceID"),
    "certificates": (None, "certificate", "certificateID"),
}
_ROUTER_KINDS = frozenset({"http/routers", "tcp/routers", "udp/routers"})
_SERVICE_KINDS = frozenset({"http/services", "tcp/services", "udp/services"})
_INT = re.compile(r"[+-]?[0-9]+")
_GO_MAX_INT = 2**63 - 1
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def api_prefix(api: Api) -> str:
    """The path every API route starts with: ``basePath`` (without its trailing ``/``) + ``/api``."""
    return api.base_path.rstrip("/") + "/api"


def debug_prefix(api: Api) -> str:
    """Where ``api.debug``'s routes start: ``basePath`` + ``/debug``."""
    return api.base_path.rstrip("/") + "/debug"


class _BadRequest(Exception):
    pass


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _path_unescape(raw: str) -> str:
    """Go's ``url.PathUnescape`` (``+`` stays ``+``); raises ``_BadRequest`` with Go's message."""
    bad = _BAD_ESCAPE.search(raw)
    if bad is not None:
        raise _BadRequest(f"invalid URL escape {_go_quote(raw[bad.start():bad.start() + 3])}")
    return urllib.parse.unquote(raw, errors="replace")


def _int_param(query: dict[str, list[str]], key: str, default: int) -> int:
    """Traefik's ``getIntParam``: a positive integer or ``invalid request: <key>: <value>``."""
    values = query.get(key)
    raw = values[0] if values else ""
    if raw == "":
        return default
    value = 0
    if _INT.fullmatch(raw):
        value = max(min(int(raw), _GO_MAX_INT), -_GO_MAX_INT - 1)
        if value > 0 and value != _GO_MAX_INT:
            return value
    raise _BadRequest(f"invalid request: {key}: {value}")


class ApiService:
    """The ``api@internal`` handler. ``current`` returns the snapshot being served."""

    def __init__(self, static: StaticConfig, current: Callable[[], Snapshot | None],
                 started: float | None = None, traffic: TrafficCounter | None = None,
                 router_problems: Callable[[], Mapping[str, Sequence[str]]] | None = None) -> None:
        api = static.api if static.api is not None else Api()
        self.prefix = api_prefix(api).encode()
        self.debug_prefix = debug_prefix(api).encode() + b"/" if api.debug else None
        self.root = api.base_path.rstrip("/").encode() + b"/"
        self.dashboard_prefix = self.root + b"dashboard/"
        self.dashboard = assets() if api.dashboard else None
        self.static_views: StaticViews = build_static_views(static)
        self.current = current
        self.traffic = traffic
        #: problems found outside the snapshot (certificate resolvers): router -> warnings
        self.router_problems = router_problems
        self._problems: Mapping[str, Sequence[str]] = {}
        version: dict[str, Any] = {"Version": __version__, "Codename": "ferryman",
                                   "startDate": go_time(time.time() if started is None else started)}
        if api.disable_dashboard_ad:
            version["disableDashboardAd"] = True
        if api.dashboard_name:
            version["dashboardName"] = api.dashboard_name
        self.version_body = encode(version, newline=False)
        # The snapshot the views were built from, weakly: a reload must not keep the old one alive.
        self._snapshot: weakref.ref[Snapshot] | None = None
        self._views: ApiViews | None = None
        self._hour = 0

    # -- views -------------------------------------------------------------------------------------

    def views(self) -> ApiViews:
        """This snapshot's views, built on first use and kept until the snapshot changes (or, when
        certificates are listed, the hour changes: their status follows the clock)."""
        snapshot = self.current()
        views = self._views
        built = self._snapshot() if self._snapshot is not None else None
        hour = int(time.time() // 3600)
        problems = self.router_problems() if self.router_problems is not None else self._problems
        if views is None or snapshot is not built or (views.certificates and hour != self._hour) \
                or problems != self._problems:
            views = self._views = build_views(snapshot, self.static_views, router_problems=problems)
            self._problems = problems
            self._snapshot = weakref.ref(snapshot) if snapshot is not None else None
            self._hour = hour
        return views

    def _listing(self, attr: str | None) -> Listing:
        if attr is None:
            return EMPTY
        if attr == "entry_points":
            return self.static_views.entry_points
        found: Listing = getattr(self.views(), attr)
        return found

    # -- requests ----------------------------------------------------------------------------------

    def handle(self, ex: Exchange) -> None:
        path = ex.path
        prefix = self.prefix
        if self.debug_prefix is not None and path.startswith(self.debug_prefix):
            return self._debug(ex, path[len(self.debug_prefix):].decode("utf-8", "replace"))
        if not path.startswith(prefix + b"/"):
            if self.dashboard is not None:
                return self._dashboard(ex, path)
            return self._not_found(ex)
        rest = path[len(prefix) + 1:].decode("utf-8", "replace")
        route = self._route(rest)
        if route is None:
            return self._not_found(ex)
        if ex.method != b"GET":
            ex.respond(405, (), b"", content_type=None)
            return None
        kind, ident = route
        query = urllib.parse.parse_qs((ex.query or b"").decode("utf-8", "replace"), keep_blank_values=True)
        try:
            if kind == "rawdata":
                ex.respond(200, (), self.views().rawdata, content_type=JSON)
            elif kind == "overview":
                ex.respond(200, (), self.views().overview, content_type=JSON)
            elif kind == "traffic":
                if self.traffic is None:
                    return self._not_found(ex)
                ex.respond(200, ((b"Cache-Control", b"no-store"),), self.traffic.read(), content_type=JSON)
            elif kind == "version":
                ex.respond(200, (), self.version_body, content_type=b"application/json; charset=UTF-8")
            elif ident is None:
                self._list(ex, kind, query)
            else:
                self._one(ex, kind, ident)
        except _BadRequest as exc:
            self._error(ex, 400, str(exc))
        return None

    def _dashboard(self, ex: Exchange, path: bytes) -> None:
        """Traefik's ``dashboard.Append``: ``<basePath>/`` redirects (302) to the dashboard, which is
        served under ``<basePath>/dashboard/``."""
        assert self.dashboard is not None
        if path == self.root and ex.method in (b"GET", b"HEAD"):
            ex.respond(302, ((b"Location", self.dashboard_prefix),), b"", content_type=None)
            return None
        if not path.startswith(self.dashboard_prefix):
            return self._not_found(ex)
        self.dashboard.serve(ex, path[len(self.dashboard_prefix):].decode("utf-8", "replace"))
        return None

    def _debug(self, ex: Exchange, rest: str) -> None:
        if rest not in DEBUG_PATHS and not rest.startswith("pprof/"):
            return self._not_found(ex)
        if ex.method != b"GET":
            ex.respond(405, (), b"", content_type=None)
            return None
        query = urllib.parse.parse_qs((ex.query or b"").decode("utf-8", "replace"), keep_blank_values=True)
        handle_debug(ex, rest, query)
        return None

    @staticmethod
    def _route(rest: str) -> tuple[str, str | None] | None:
        if rest in ("rawdata", "overview", "version", "traffic"):
            return rest, None
        if rest in _COLLECTIONS:
            return rest, None
        head, sep, ident = rest.rpartition("/")
        if sep and ident and head in _COLLECTIONS:
            return head, ident
        return None

    def _list(self, ex: Exchange, kind: str, query: dict[str, list[str]]) -> None:
        if kind == "certificates":
            certs = _sort_certificates(_filter_certificates(self.views().certificates, query), query)
            return self._page(ex, [c.body for c in certs], query)
        attr = _COLLECTIONS[kind][0]
        items: Sequence[Item] = self._listing(attr).items
        if attr != "entry_points":
            items = _filter(items, query, routers=kind in _ROUTER_KINDS)
            items = _sort(items, query, kind)
        return self._page(ex, [i.body for i in items], query)

    @staticmethod
    def _page(ex: Exchange, items: Sequence[bytes], query: dict[str, list[str]]) -> None:
        """Traefik's ``pagination``: ``page``/``per_page`` and ``X-Next-Page`` (1 on the last page)."""
        per_page = _int_param(query, "per_page", DEFAULT_PER_PAGE)
        page = _int_param(query, "page", 1)
        start = (page - 1) * per_page
        if start != 0 and start >= len(items):
            raise _BadRequest(f"invalid request: page: {page}, per_page: {per_page}")
        end = min(start + per_page, len(items))
        next_page = page + 1 if page * per_page < len(items) else 1
        body = b"[" + b",".join(items[start:end]) + b"]\n"
        ex.respond(200, ((b"X-Next-Page", str(next_page).encode()),), body, content_type=JSON)

    def _one(self, ex: Exchange, kind: str, raw_ident: str) -> None:
        attr, word, var = _COLLECTIONS[kind]
        if kind == "certificates":  # Traefik uses the id as it comes (a hex fingerprint)
            cert = self.views().cert_by_name.get(raw_ident)
            if cert is None:
                return self._error(ex, 404, f"certificate not found: {raw_ident}")
            ex.respond(200, (), cert.body + b"\n", content_type=JSON)
            return None
        try:
            ident = _path_unescape(raw_ident)
        except _BadRequest as exc:
            raise _BadRequest(f"unable to decode {var} {_go_quote(raw_ident)}: {exc}") from None
        item = self._listing(attr).by_name.get(ident)
        if item is None:
            return self._error(ex, 404, f"{word} not found: {ident}")
        ex.respond(200, (), item.body + b"\n", content_type=JSON)
        return None

    @staticmethod
    def _error(ex: Exchange, status: int, message: str) -> None:
        """Traefik's ``writeError``: the JSON message through Go's ``http.Error`` (text/plain)."""
        ex.respond(status, (NOSNIFF,), encode({"message": message}), content_type=TEXT)

    @staticmethod
    def _not_found(ex: Exchange) -> None:
        ex.respond(404, (NOSNIFF,), b"404 page not found\n", content_type=TEXT)


def _filter(items: Sequence[Item], query: dict[str, list[str]], *, routers: bool) -> Sequence[Item]:
    """Traefik's ``searchCriterion``: ``status`` (case-insensitive), ``search`` (name, and rule for
    routers, case-insensitive substring), ``serviceName`` and ``middlewareName`` (routers)."""

    def get(key: str) -> str:
        values = query.get(key)
        return values[0] if values else ""

    status, search = get("status").lower(), get("search").lower()
    service, middleware = (get("serviceName"), get("middlewareName")) if routers else ("", "")
    if not (status or search or service or middleware):
        return items

    def keep(item: Item) -> bool:
        if status and item.status.lower() != status:
            return False
        if search and search not in item.name.lower() and not (routers and search in item.rule.lower()):
            return False
        if service and service != item.service and ("@" in service or service != item.service.split("@")[0]):
            return False
        return not middleware or middleware in item.middlewares

    return [i for i in items if keep(i)]


_ROUTER_SORT: dict[str, Callable[[Item], Any]] = {
    "provider": lambda i: i.provider, "priority": lambda i: i.priority, "status": lambda i: i.status,
    "rule": lambda i: i.rule, "service": lambda i: i.service, "entryPoints": lambda i: i.entry_points,
}
_OTHER_SORT: dict[str, Callable[[Item], Any]] = {
    "type": lambda i: i.type, "servers": lambda i: i.servers, "provider": lambda i: i.provider,
    "status": lambda i: i.status,
}


def _filter_certificates(certs: Sequence[CertItem], query: dict[str, list[str]]) -> Sequence[CertItem]:
    """Traefik's ``keepCertificate``: ``status`` and ``search`` over common name, issuer and SANs."""
    status = (query.get("status") or [""])[0].lower()
    search = (query.get("search") or [""])[0].lower()
    if not (status or search):
        return certs
    return [c for c in certs if (not status or c.status == status)
            and (not search or any(search in v.lower() for v in c.search))]


_CERT_SORT: dict[str, Callable[[CertItem], Any]] = {
    "name": lambda c: c.common_name, "cn": lambda c: c.common_name, "status": lambda c: c.status,
    "issuer": lambda c: c.issuer, "validUntil": lambda c: c.not_after,
}


def _sort_certificates(certs: Sequence[CertItem], query: dict[str, list[str]]) -> Sequence[CertItem]:
    """Traefik's ``sortCertificates``: by common name unless ``sortBy`` says otherwise."""
    key = _CERT_SORT.get((query.get("sortBy") or ["name"])[0], _CERT_SORT["name"])
    descending = (query.get("direction") or ["asc"])[0] != "asc"
    return sorted(certs, key=lambda c: (key(c), c.common_name, c.name), reverse=descending)


def _sort(items: Sequence[Item], query: dict[str, list[str]], kind: str) -> Sequence[Item]:
    """Traefik's ``sortBy``/``direction`` (default: name, ascending -- the listing's own order)."""
    sort_by = (query.get("sortBy") or [""])[0]
    descending = (query.get("direction") or ["asc"])[0] != "asc"
    keys = _ROUTER_SORT if kind in _ROUTER_KINDS else _OTHER_SORT
    if kind not in _ROUTER_KINDS and kind not in _SERVICE_KINDS:
        keys = {k: v for k, v in _OTHER_SORT.items() if k != "servers"}
    key = keys.get(sort_by)
    if key is None:
        return list(reversed(items)) if descending else items
    return sorted(items, key=lambda i: (key(i), i.name), reverse=descending)
