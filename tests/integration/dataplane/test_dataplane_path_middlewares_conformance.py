"""Traefik's path middleware test vectors (shared conformance data), replayed over the wire.

Each request case becomes a real HTTP/1.1 request to an entry point whose only route is the
middleware in front of a load balancer with one real backend; the backend records what it
received. Over the wire (as with a real Traefik entry point):

* the backend sees the request-target Go would send, ``URL.RequestURI()``: where the Go test left
  ``RequestURI`` unset and the middleware did not rewrite it (``request_uri: ""``), that is the
  request's own path; an empty ``URL.Path`` is sent as ``/``;
* the entry point normalizes the path first (``%69`` becomes ``i``), which does not change any
  expected result;
* redirectRegex cases keep the Go test's absolute-form request-URI (``http://foo.com:80``), which
  the entry point turns into the request-URI ``/``: the rebuilt URL, and so the ``Location``, gains
  that ``/`` (as in the redirectScheme replay);
* the one case whose path has a raw space (``/t /test/a%2Fb``) cannot be sent (``/t%20/test/a%2Fb``
  covers it).
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit

import pytest

from ferryman.dynamic.models import Middleware
from ferryman.middlewares import build_middleware
from ferryman.upstream import UpstreamPools
from tests.integration.dataplane.dp_support import (
    Message,
    Proxy,
    exchange,
    http_backend,
    lb,
    proxy,
    self_signed_context,
    settings,
    tls_exchange,
)
from tests.unit.middlewares.test_path_middlewares_conformance import CASES, case_id, model


def _wire(case: dict[str, Any]) -> bool:
    req = case.get("request")
    return req is not None and " " not in req["path"]


WIRE_CASES = [c for c in CASES if _wire(c)]
pytestmark = pytest.mark.skipif(not WIRE_CASES, reason="shared conformance data not found")


def _wire_request(req: dict[str, Any]) -> bytes:
    url = urlsplit(req["url"])
    path = req["path"] or "/"
    target = req["request_uri"] or (path + (f"?{url.query}" if url.query else ""))
    lines = [f"{req['method']} {target} HTTP/1.1", f"Host: {req['host']}"]
    for name, values in (req.get("headers") or {}).items():
        lines.extend(f"{name}: {value}" for value in values)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _expected_location(case: dict[str, Any]) -> str:
    location: str = case["expected"]["location"]
    if not urlsplit(case["request"]["url"]).path and not urlsplit(location).path:
        location += "/"
    return location


@pytest.fixture(scope="module")
def tls_context(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    return self_signed_context(tmp_path_factory.mktemp("tls"))


def _send(px: Proxy, tls: bool, raw: bytes) -> Message:
    return tls_exchange(px.port, raw) if tls else exchange(px.port, raw)


@pytest.mark.parametrize("case", WIRE_CASES, ids=[case_id(c) for c in WIRE_CASES])
def test_path_middleware_over_the_wire(case: dict[str, Any], tls_context: ssl.SSLContext) -> None:
    req = case["request"]
    tls = bool(req.get("tls"))
    pools = UpstreamPools()
    extra: dict[str, Any] = {"ssl": tls_context} if tls else {}
    with http_backend() as be:
        handler = build_middleware("conformance", model(case), lb(pools, be.url))
        with proxy(handler, settings(), pools=pools, **extra) as px:
            resp = _send(px, tls, _wire_request(req))
    expected = case["expected"]
    assert resp.status == expected["status"], case["source"]
    forwarded = expected.get("forwarded")
    if not forwarded:
        assert be.requests == []
        if expected.get("location"):
            assert resp.get("location") == _expected_location(case), case["source"]
            assert resp.get("content-type") is None
        return
    assert resp.body == b"hello from backend"
    assert len(be.requests) == 1
    seen = be.requests[0]
    if forwarded is True:
        return
    path = req["path"] or "/"
    assert seen.target == (forwarded["request_uri"] or path), case["source"]
    for name, values in (forwarded.get("headers") or {}).items():
        assert seen.get_all(name) == values, name
    for name in forwarded.get("absent_headers") or ():
        assert seen.get(name) is None, name


def test_strip_and_add_prefix_chain_over_the_wire() -> None:
    """stripPrefix then addPrefix (a common pair): the backend sees the rewritten, still-encoded
    path, the query, and X-Forwarded-Prefix; a dot-segment result is refused with 400."""
    pools = UpstreamPools()
    with http_backend() as be:
        inner = build_middleware("add", Middleware.model_validate({"addPrefix": {"prefix": "/v2"}}),
                                 lb(pools, be.url))
        handler = build_middleware("strip", Middleware.model_validate({"stripPrefix": {"prefixes": ["/api"]}}),
                                   inner)
        with proxy(handler, settings(), pools=pools) as px:
            ok = exchange(px.port, b"GET /api/users%2f1?x=1 HTTP/1.1\r\nHost: a\r\n\r\n")
            bad = exchange(px.port, b"GET /api../etc HTTP/1.1\r\nHost: a\r\n\r\n")
    assert ok.status == 200 and bad.status == 400
    assert len(be.requests) == 1
    seen = be.requests[0]
    assert seen.target == "/v2/users%2F1?x=1"
    assert seen.get_all("x-forwarded-prefix") == ["/api"]
