"""The ``errors`` middleware through a real entry point with real backends (loopback sockets):
the error page replaces a caught response, everything else streams through untouched."""

from __future__ import annotations

from typing import Any

import pytest

from ferryman.errors import ConfigError
from ferryman.http.exchange import Handler
from ferryman.middlewares import MiddlewareContext, build_middleware
from ferryman.middlewares.errors import parse_code_ranges
from ferryman.upstream import UpstreamPools
from tests.integration.dataplane.dp_support import Message, exchange, http_backend, lb, proxy, response
from tests.unit.middlewares.conformance_support import mw


def _status(req: Message) -> bytes:
    code = int(req.target.rsplit("/", 1)[1])
    return response(code, b"backend %d" % code, {"X-Backend": "1"})


def _page(req: Message) -> bytes:
    return response(200, f"page {req.target}".encode(), {"Content-Type": "text/html"})


def _build(config: dict[str, Any], app: str, pages: Handler | None, pools: UpstreamPools) -> Handler:
    ctx = MiddlewareContext(service=lambda name: pages if name == "pages@file" else None)
    return build_middleware("err@file", mw("errors", config), lb(pools, app), ctx)


@pytest.mark.parametrize("target, status, body", [
    ("/s/200", 200, b"backend 200"),
    ("/s/404", 404, b"backend 404"),
    ("/s/500", 500, b"page /500.html?o=500"),
    ("/s/503", 500, b"page /500.html?o=503"),  # statusRewrites
])
def test_error_page_replaces_caught_statuses(target: str, status: int, body: bytes) -> None:
    pools = UpstreamPools()
    config = {"status": ["500-599"], "service": "pages", "query": "/{status}.html?o={originalStatus}",
              "statusRewrites": {"503": 500}}
    with http_backend(_status) as app, http_backend(_page) as pages:
        handler = _build(config, app.url, lb(pools, pages.url, name="pages"), pools)
        with proxy(handler, pools=pools) as px:
            got = exchange(px.port, f"GET {target} HTTP/1.1\r\nHost: h\r\nX-In: 1\r\n\r\n".encode())
    assert got.status == status and got.body == body
    caught = status >= 500
    assert (got.get("x-backend") is None) == caught
    if caught:
        [seen] = pages.requests
        assert seen.method == "GET" and seen.get("host") == "h" and seen.get("x-in") == "1"
        assert seen.get("x-forwarded-for") is None  # no peer address on the page request


def test_parse_code_ranges() -> None:
    assert parse_code_ranges(["404", "500-599"], "p") == ((404, 404), (500, 599))
    with pytest.raises(ConfigError, match="invalid status code range"):
        parse_code_ranges(["418,500"], "p")


def test_missing_service_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        _build({"status": ["500"], "service": "nope"}, "http://127.0.0.1:1", None, UpstreamPools())
