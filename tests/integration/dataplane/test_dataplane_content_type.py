"""contentType through a real entry point and backend: without it a typeless backend response stays
typeless (Traefik v3 never sniffs by default); with it the type is sniffed from the body."""

from __future__ import annotations

from ferryman.middlewares import build_middleware
from ferryman.upstream import UpstreamPools
from tests.integration.dataplane.dp_support import Message, exchange, http_backend, lb, proxy, response
from tests.unit.middlewares.conformance_support import mw

PAGE = b"<!DOCTYPE html><html><body>hello</body></html>"


def _answer(req: Message) -> bytes:
    if req.target == "/typed":
        return response(body=PAGE, headers={"Content-Type": "application/x-custom"})
    if req.target == "/chunked":
        return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                + b"%x\r\n" % len(PAGE) + PAGE + b"\r\n0\r\n\r\n")
    return response(body=PAGE)


def _get(port: int, path: str) -> Message:
    return exchange(port, f"GET {path} HTTP/1.1\r\nHost: h\r\n\r\n".encode())


def test_content_type_on_the_wire() -> None:
    pools = UpstreamPools()
    with http_backend(_answer) as backend:
        plain = lb(pools, backend.url)
        with proxy(plain, pools=pools) as px:
            resp = _get(px.port, "/page")
            assert resp.body == PAGE and resp.get("content-type") is None
        sniffing = build_middleware("ct", mw("contentType", {}), lb(pools, backend.url))
        with proxy(sniffing, pools=pools) as px:
            for path in ("/page", "/chunked"):
                resp = _get(px.port, path)
                assert resp.body == PAGE
                assert resp.get("content-type") == "text/html; charset=utf-8"
            assert _get(px.port, "/typed").get("content-type") == "application/x-custom"
