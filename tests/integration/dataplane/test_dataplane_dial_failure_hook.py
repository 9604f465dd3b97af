"""The upstream pool offers a failed dial (nothing sent to the backend) to the exchange's producer
when it is a ``DialFailureListener`` -- the hook the retry middleware uses -- and answers 502 itself
when the listener declines; a request that reached a backend is never offered."""

from __future__ import annotations

import socket

from ferryman.http.exchange import Exchange, Handler
from ferryman.upstream import UpstreamPools
from ferryman.upstream.pool import DialFailureListener
from tests.integration.dataplane.dp_support import exchange, http_backend, lb, proxy

GET = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Listener:
    def __init__(self, take: bool) -> None:
        self.take = take
        self.failures: list[int] = []

    def pause_producing(self) -> None: ...

    def resume_producing(self) -> None: ...

    def downstream_lost(self) -> None: ...

    def dial_failed(self, ex: Exchange, status: int) -> bool:
        self.failures.append(status)
        if self.take:
            ex.respond(503, (), b"taken over")
        return self.take


class Listening:
    def __init__(self, listener: Listener, nxt: Handler) -> None:
        self.listener = listener
        self.next = nxt

    def handle(self, ex: Exchange) -> None:
        ex.set_producer(self.listener)
        self.next.handle(ex)


def test_dial_failure_is_offered_to_the_producer() -> None:
    assert isinstance(Listener(True), DialFailureListener)
    pools = UpstreamPools()
    url = f"http://127.0.0.1:{_closed_port()}"
    for take, status in ((True, 503), (False, 502)):
        listener = Listener(take)
        with proxy(Listening(listener, lb(pools, url)), pools=pools) as px:
            assert exchange(px.port, GET).status == status
        assert listener.failures == [502]


def test_a_request_that_reached_the_backend_is_not_offered() -> None:
    pools = UpstreamPools()
    listener = Listener(True)
    with http_backend() as backend, proxy(Listening(listener, lb(pools, backend.url)), pools=pools) as px:
        assert exchange(px.port, GET).status == 200
    assert listener.failures == []
