"""The ``errors`` middleware against the real Traefik: what the error page service receives and what
the client gets (status, headers, body), with real backends shared by both proxies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.dataplane.dp_support import Backend, Message, http_backend, response
from tests.oracle.harness import (
    TRAEFIK,
    TRAEFIK_MISSING,
    Backends,
    Case,
    Normaliser,
    Pair,
    Proxy,
    case,
    fail_diff,
    lb,
    request_lines,
)
from tests.support.procs import free_port

pytestmark = [pytest.mark.oracle, pytest.mark.skipif(TRAEFIK is None, reason=TRAEFIK_MISSING)]

ENTRY_POINTS: dict[str, dict[str, Any]] = {"web": {}}


def app_answer(req: Message) -> bytes:
    """``/status/NNN`` answers NNN with a body and a header the error page must not leak."""
    parts = req.target.split("?", 1)[0].split("/")
    code = int(parts[2]) if len(parts) > 2 and parts[1] == "status" else 200
    return response(code, f"backend says {code}\n".encode(), {"X-Backend": "1", "Content-Type": "text/plain"},
                    reason="Whatever")


def page_answer(req: Message) -> bytes:
    if req.target.startswith("/missing"):
        return response(404, b"no such page\n", {"Content-Type": "text/plain"}, reason="Not Found")
    return response(200, f"<h1>page {req.target}</h1>\n".encode(), {"Content-Type": "text/html", "X-Page": "1"})


def dynamic(app: Backend, pages: Backend) -> dict[str, Any]:
    middlewares = {
        "basic": {"errors": {"status": ["500-599"], "service": "pages", "query": "/{status}.html"}},
        "placeholders": {"errors": {"status": ["404", "418", "500-502"], "service": "pages",
                                    "query": "err?s={status}&o={originalStatus}&u={url}"}},
        "rewrite": {"errors": {"status": ["500-599"], "service": "pages", "query": "/{status}-{originalStatus}",
                               "statusRewrites": {"502-504": 500, "418": 404}}},
        "headers": {"errors": {"status": ["500"], "service": "pages", "query": "/h",
                               "errorRequestHeaders": ["X-Keep", "Accept"]}},
        "no-query": {"errors": {"status": "500,501", "service": "pages"}},
        "comma-in-item": {"errors": {"status": ["418,500"], "service": "pages"}},
        "page-404": {"errors": {"status": ["500"], "service": "pages", "query": "/missing"}},
    }
    routers = {name: {"rule": f"Host(`{name}.test`)", "service": "app", "entryPoints": ["web"],
                      "middlewares": [name]} for name in middlewares}
    routers["down"] = {"rule": "Host(`down.test`)", "service": "down", "entryPoints": ["web"],
                       "middlewares": ["basic"]}
    return {"http": {"routers": routers, "middlewares": middlewares, "services": {
        "app": lb(app.url), "pages": lb(pages.url), "down": lb(f"http://127.0.0.1:{free_port()}")}}}


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Backend, Backend]]:
    with http_backend(app_answer) as app, http_backend(page_answer) as pages:
        yield app, pages


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, backends: Backends,
         servers: tuple[Backend, Backend]) -> Iterator[Pair]:
    app, pages = servers
    with Pair(tmp_path_factory.mktemp("errors-mw"), backends, ENTRY_POINTS, dynamic(app, pages)) as p:
        yield p


def req(host: str, target: str, *lines: str, method: str = "GET") -> str:
    return "\r\n".join([f"{method} {target} HTTP/1.1", f"Host: {host}.test", *lines]) + "\r\n\r\n"


SHOWN = ("content-type", "content-length", "x-backend", "x-page")

CASES = [
    case("ok-passes", req("basic", "/status/200"), headers=SHOWN),
    case("404-not-in-range", req("basic", "/status/404"), headers=SHOWN),
    case("500-caught", req("basic", "/status/500", "User-Agent: ua", "X-Custom: c"), headers=SHOWN),
    case("503-caught-head", req("basic", "/status/503", method="HEAD"), headers=SHOWN),
    case("backend-down-502", req("down", "/x"), headers=SHOWN),
    case("placeholders-404", req("placeholders", "/status/404?a=1&b=x%20y"), headers=SHOWN),
    case("placeholders-418", req("placeholders", "/status/418"), headers=SHOWN),
    case("placeholders-503-not-listed", req("placeholders", "/status/503"), headers=SHOWN),
    case("rewrite-503-to-500", req("rewrite", "/status/503"), headers=SHOWN),
    case("rewrite-599-kept", req("rewrite", "/status/599"), headers=SHOWN),
    case("error-request-headers", req("headers", "/status/500", "X-Keep: k", "X-Drop: d", "Accept: text/html"),
         headers=SHOWN),
    case("no-query", req("no-query", "/status/500?z=1"), headers=SHOWN),
    case("comma-in-list-item-disables-router", req("comma-in-item", "/status/500"), headers=SHOWN),
    case("page-service-404-keeps-500", req("page-404", "/status/500"), headers=SHOWN),
]


def _observe(pair: Pair, proxy: Proxy, c: Case, pages: Backend) -> list[str]:
    before = len(pages.requests)
    obs = pair.run(proxy, c)
    return obs.lines + request_lines("page", pages.requests[before:], Normaliser(proxy.ports), c.request)


@pytest.mark.parametrize("c", CASES)
def test_errors_middleware(pair: Pair, servers: tuple[Backend, Backend], c: Case) -> None:
    assert pair.traefik is not None and pair.ferryman is not None
    _, pages = servers
    fail_diff(c, _observe(pair, pair.traefik, c, pages), _observe(pair, pair.ferryman, c, pages),
              pair.logged_errors())
