"""``errors``: serve an error page from another service when the response status is in a range,
as Traefik's ``pkg/middlewares/customerrors``.

Build time: ``status`` entries are Traefik's ``HTTPCodeRanges`` (``"500"``, ``"500,502"``,
``"500-599"``; a string value is split at commas, list items are not); ``statusRewrites`` keys are ranges too and values the status to send
instead; ``service`` is resolved like a router's (qualified with the middleware's provider) and
must exist; ``query`` is the error page's path (and query), with ``{status}`` (the status sent),
``{originalStatus}`` (the backend's) and ``{url}`` (the original URL, query-escaped).
``errorRequestHeaders`` (Traefik 3.5+): the request headers sent to the error page service (unset:
all of them; empty: none).

Per request: the response head is watched as it comes (nothing is buffered). A status outside the
ranges passes through untouched. A status inside them is swallowed with its body, and once the
backend's response has ended the middleware sends ``GET http://<Host><query>`` to the error page
service -- the client's ``Host``, the chosen headers, no body, no peer address (so no
``X-Forwarded-For`` is appended) -- and relays that service's answer with the original status
(or its rewrite), whatever status the page service itself answered.

Differences from Traefik: the first matching ``statusRewrites`` entry in configuration order wins
(Traefik iterates a Go map: overlapping keys pick one at random). A response hook that a middleware
*inside* ``errors`` registered also applies to the error page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from http import HTTPStatus
from typing import Final
from urllib.parse import quote_plus

from ferryman.dynamic.models import ErrorPage
from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange, Handler, Headers, RelaySink, ResponseSink
from ferryman.middlewares._go import GoURLError, parse_url
from ferryman.upstream.forwarder import canonical_header_name

__all__ = ["ErrorsHandler", "build_errors", "parse_code_ranges"]

CodeRanges = tuple[tuple[int, int], ...]

_TEXT: Final = b"text/plain; charset=utf-8"


def parse_code_ranges(entries: Sequence[str], path: str) -> CodeRanges:
    """Traefik's ``types.NewHTTPCodeRanges``: each entry ``"404"`` or ``"500-599"`` (a comma-separated
    *string* value was already split into entries by the decoder; a comma inside a list item is an
    error, as in Traefik 3.7)."""
    out: list[tuple[int, int]] = []
    for item in entries:
        codes = item.split("-")
        if len(codes) == 1:
            codes.append(codes[0])
        try:
            low, high = int(codes[0]), int(codes[1])
        except ValueError:
            raise ConfigError(f"invalid status code range {item!r}", path=path,
                              fix='write one code or range per list item: ["404", "500-599"] '
                                  '(or the string "404,500-599")') from None
        out.append((low, high))
    return tuple(out)


def _contains(ranges: CodeRanges, code: int) -> bool:
    return any(low <= code <= high for low, high in ranges)


class _Relay:
    """The original exchange's producer while the error page is served: flow control and
    client-gone notifications go to whoever produces the page."""

    __slots__ = ("page",)

    def __init__(self, page: Exchange) -> None:
        self.page = page

    def pause_producing(self) -> None:
        producer = self.page.producer
        if producer is not None:
            producer.pause_producing()

    def resume_producing(self) -> None:
        producer = self.page.producer
        if producer is not None:
            producer.resume_producing()

    def downstream_lost(self) -> None:
        page = self.page
        page.done = True
        producer = page.producer
        if producer is not None:
            producer.downstream_lost()


class _CodeModifier(RelaySink):
    """Relays the error page service's response with the enforced status."""

    __slots__ = ("_code",)

    def __init__(self, code: int, nxt: ResponseSink) -> None:
        super().__init__(nxt)
        self._code = code

    def send_head(self, status: int, headers: Headers, length: int) -> None:
        self._next.send_head(self._code, headers, length)


class _Catcher:
    """Watches the response head; swallows a response whose status is in the ranges."""

    __slots__ = ("_caught", "_ex", "_next", "_owner", "_started")

    def __init__(self, owner: ErrorsHandler, ex: Exchange, nxt: ResponseSink) -> None:
        self._owner = owner
        self._ex = ex
        self._next = nxt
        self._caught = 0
        self._started = False

    def send_info(self, status: int, headers: Headers) -> None:
        if not self._caught:
            self._next.send_info(status, headers)

    def send_head(self, status: int, headers: Headers, length: int) -> None:
        if self._caught:
            return
        if _contains(self._owner.ranges, status):
            self._caught = status
            return
        self._next.send_head(status, headers, length)

    def send_data(self, data: bytes) -> None:
        if not self._caught:
            self._next.send_data(data)

    def send_end(self, trailers: Headers | None) -> None:
        if self._caught:
            self._page()
        else:
            self._next.send_end(trailers)

    def abort(self) -> None:
        if self._caught:
            self._page()  # Traefik ignores what the backend failed to write once the code is caught
        else:
            self._next.abort()

    def _page(self) -> None:
        if self._started:
            return
        self._started = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._owner.serve_page(self._ex, self._caught, self._next)
            return
        # Let the backend connection finish its own bookkeeping for this exchange first.
        loop.call_soon(self._owner.serve_page, self._ex, self._caught, self._next)


class ErrorsHandler:
    """The built middleware (a :class:`~ferryman.http.exchange.Handler`)."""

    __slots__ = ("name", "next", "query", "ranges", "request_headers", "rewrites", "service")

    def __init__(self, name: str, next_handler: Handler, ranges: CodeRanges, service: Handler, query: str,
                 request_headers: tuple[bytes, ...] | None, rewrites: Sequence[tuple[CodeRanges, int]]) -> None:
        self.name = name
        self.next = next_handler
        self.ranges = ranges
        self.service = service
        self.query = query
        self.request_headers = request_headers
        self.rewrites = tuple(rewrites)

    def handle(self, ex: Exchange) -> None:
        ex.sink = _Catcher(self, ex, ex.sink)
        self.next.handle(ex)

    def page_target(self, ex: Exchange, code: int, original: int) -> tuple[bytes, bytes | None]:
        """The error page request's path and query (Go's ``url.Parse("http://" + Host + query)``)."""
        if not self.query:
            return b"/", None
        query = "/" + self.query.removeprefix("/")
        scheme = b"https" if ex.conn.tls else b"http"
        orig = scheme + b"://" + ex.authority + ex.path + (b"?" + ex.query if ex.query else b"")
        query = query.replace("{status}", str(code)).replace("{originalStatus}", str(original))
        query = query.replace("{url}", quote_plus(orig.decode("latin-1"), safe="-_.~"))
        url = parse_url(b"http://" + ex.authority + query.encode("utf-8", "surrogateescape"))
        return url.escaped_path() or b"/", url.query()

    def serve_page(self, ex: Exchange, original: int, sink: ResponseSink) -> None:
        if ex.done:
            return
        code = original
        for ranges, to in self.rewrites:
            if _contains(ranges, code):
                code = to
                break
        try:
            path, query = self.page_target(ex, code, original)
        except GoURLError:
            sink.send_head(code, [(b"Content-Type", _TEXT), (b"X-Content-Type-Options", b"nosniff")], -1)
            sink.send_data(_status_text(code).encode() + b"\n")
            sink.send_end(None)
            return
        ex.materialize_forwarded()
        if self.request_headers is None:
            headers = list(ex.headers)
        else:
            headers = [(n, v) for name in self.request_headers for n, v in ex.headers if n == name]
        page = Exchange(ex.conn, ex.downstream, b"GET", path if query is None else path + b"?" + query, path, query,
                        b"1.1", headers, ex.authority, 0)
        page.xf_materialized = True
        page.omit_xff = True  # the page request has no peer address: nothing is appended
        page.router = ex.router
        page.sink = _CodeModifier(code, sink)
        ex.set_producer(_Relay(page))
        self.service.handle(page)


def _status_text(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""


def build_errors(name: str, config: ErrorPage, next_handler: Handler, service: Handler | None,
                 service_name: str) -> Handler:
    path = f"http.middlewares.{name}.errors"
    ranges = parse_code_ranges(config.status, f"{path}.status")
    rewrites = []
    for key, to in config.status_rewrites.items():
        rewrites.append((parse_code_ranges([key], f"{path}.statusRewrites.{key}"), to))
    if not config.service:
        raise ConfigError("errors needs a service", path=f"{path}.service",
                          fix="set service to the service that serves the error pages")
    if service is None:
        raise ConfigError(f'error page service "{service_name}" does not exist or is disabled',
                          path=f"{path}.service", fix="define the service or fix its name")
    request_headers = None if config.error_request_headers is None else tuple(
        canonical_header_name(h.lower().encode()).lower() for h in config.error_request_headers)
    return ErrorsHandler(name, next_handler, ranges, service, config.query, request_headers, rewrites)
