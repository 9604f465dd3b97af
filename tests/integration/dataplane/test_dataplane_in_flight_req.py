"""inFlightReq through a real entry point and a slow backend: the 429 while a request is in flight,
the slot freed when the response ends, and freed when the in-flight client hangs up."""

from __future__ import annotations

import threading

from ferryman.middlewares import build_middleware
from ferryman.upstream import UpstreamPools
from tests.integration.dataplane.dp_support import (
    Message,
    Reader,
    exchange,
    http_backend,
    lb,
    poll,
    proxy,
    read_response,
    response,
)
from tests.unit.middlewares.conformance_support import mw

GET = b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n"
FAST = b"GET /fast HTTP/1.1\r\nHost: h\r\n\r\n"


def test_in_flight_req_on_the_wire() -> None:
    release = threading.Event()

    def answer(req: Message) -> bytes:
        if req.target == "/slow":
            release.wait(10)
        return response(body=b"done")

    pools = UpstreamPools()
    with http_backend(answer) as backend:
        handler = build_middleware("limit", mw("inFlightReq", {"amount": 1}), lb(pools, backend.url))
        with proxy(handler, pools=pools) as px:
            with px.connect() as held:
                held.sendall(GET)
                assert poll(lambda: len(backend.requests) == 1)
                denied = exchange(px.port, FAST)
                assert denied.status == 429
                assert denied.body == b"max connections reached: 1"
                assert denied.get("content-type") is None
                release.set()
                assert read_response(Reader(held)).body == b"done"
            assert exchange(px.port, FAST).status == 200

            release.clear()
            held = px.connect()
            held.sendall(GET)
            assert poll(lambda: len(backend.requests) == 3)
            assert exchange(px.port, FAST).status == 429
            held.close()  # the client goes away while its request is in flight

            def admitted() -> bool:
                return exchange(px.port, FAST).status == 200

            assert poll(admitted)
            release.set()
