"""Property: what the handlers see does not depend on how TCP split the client's bytes."""

from __future__ import annotations

import asyncio
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from ferryman.http.exchange import Exchange, Headers
from tests.unit.server.test_server_h1 import connect

BODY = b"x" * 300 + b"\r\n0\r\n" + b"y" * 50  # bytes that look like framing must stay body
STREAM = (
    b"GET /a?q=1 HTTP/1.1\r\nHost: one.example\r\nX-A: 1\r\n\r\n"
    b"POST /b HTTP/1.1\r\nHost: two.example\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (BODY[:100], BODY[100:]))
    + b"0\r\n\r\n"
    b"PUT /c HTTP/1.1\r\nHost: three.example\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY
)
EXPECTED = [
    (b"GET", b"/a", b"one.example", b""),
    (b"POST", b"/b", b"two.example", BODY),
    (b"PUT", b"/c", b"three.example", BODY),
]


class Echo:
    """Collects each request's body and answers when it is complete."""

    def __init__(self) -> None:
        self.seen: list[tuple[bytes, bytes, bytes, bytes]] = []

    def handle(self, ex: Exchange) -> None:
        chunks: list[bytes] = []
        seen = self.seen

        class Consumer:
            def body_data(self, data: bytes) -> None:
                chunks.append(data)

            def body_end(self, trailers: Headers | None) -> None:
                seen.append((ex.method, ex.path, ex.authority, b"".join(chunks)))
                ex.respond(200, (), b"ok")

        ex.set_body_consumer(Consumer())


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), max_size=25))
def test_pipelined_requests_split_anywhere(cuts: list[int]) -> None:
    loop = asyncio.new_event_loop()
    try:
        handler = Echo()
        conn, transport = connect(loop, handler)
        points = [0, *sorted(set(cuts)), len(STREAM)]
        for start, end in itertools.pairwise(points):
            if transport.reading:
                conn.data_received(STREAM[start:end])
            else:  # pipelined request queued: let the loop dispatch it, then feed the rest
                while not transport.reading:
                    loop.run_until_complete(asyncio.sleep(0))
                conn.data_received(STREAM[start:end])
        for _ in range(10):
            if len(handler.seen) == len(EXPECTED):
                break
            loop.run_until_complete(asyncio.sleep(0))
        assert handler.seen == EXPECTED
        assert transport.text.count(b"HTTP/1.1 200 OK\r\n") == 3
        assert not transport.closed
    finally:
        loop.close()
