"""``retry``: tries again on dial failures (nothing sent, any method) and on configured statuses (idempotent
methods unless told), with Traefik's backoff and timeout."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from typing import Any

import pytest

from ferryman.dynamic.models import Middleware
from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange, Handler
from ferryman.middlewares import build_middleware
from ferryman.middlewares.retry import RetryHandler, backoff_intervals, build_retry
from ferryman.upstream.pool import DialFailureListener
from tests.unit.middlewares.conformance_support import case_exchange, mw


class FakeLoop:
    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[tuple[float, int, Callable[[], object]]] = []
        self.waits: list[float] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], object], *args: Any) -> None:
        self.waits.append(delay)
        heapq.heappush(self.timers, (self.now + delay, len(self.waits), callback))

    def run(self) -> None:
        while self.timers:
            when, _, callback = heapq.heappop(self.timers)
            self.now = when
            callback()


class Flaky:
    """Stands for the load balancer + pool: the first ``failures`` tries fail to connect, then the
    backend answers the statuses of ``answers`` in turn (200 once they are used up)."""

    def __init__(self, failures: int, status: int = 502, answers: list[int] | None = None,
                 loop: FakeLoop | None = None, latency: float = 0.0) -> None:
        self.failures = failures
        self.status = status
        self.answers = list(answers or [])
        self.tries = 0
        self.loop = loop
        self.latency = latency

    def handle(self, ex: Exchange) -> None:
        self.tries += 1
        if self.loop is not None:
            self.loop.now += self.latency
        if self.tries <= self.failures:
            listener = ex.producer  # what the pool does on a failed dial
            if not (isinstance(listener, DialFailureListener) and listener.dial_failed(ex, self.status)):
                ex.respond(self.status, (), b"Bad Gateway", content_type=None)
            return
        ex.set_producer(None)  # a connection took over
        status = self.answers.pop(0) if self.answers else 200
        ex.respond(status, ((b"X-Try", str(self.tries).encode()),), b"answer %d" % self.tries)


def _build(config: dict[str, Any], nxt: Handler, loop: FakeLoop | None = None) -> Handler:
    model = Middleware.model_validate({"retry": config})
    assert model.retry is not None
    return build_retry("r", model.retry, nxt, loop, random.Random(1))


def _run(config: dict[str, Any], backend: Flaky, method: str = "GET",
         loop: FakeLoop | None = None, body: bool = False) -> int:
    loop = loop or FakeLoop()
    handler = _build(config, backend, loop)
    headers = {"Content-Length": ["4"]} if body else {}
    ex, down = case_exchange({"method": method, "url": "/", "host": "h", "headers": headers,
                              "remote_addr": "1.2.3.4:5"})
    if body:
        ex.body_length = 4
    handler.handle(ex)
    loop.run()
    heads = [v for k, v in down.calls if k == "head"]
    assert len(heads) == 1  # exactly one answer reaches the client
    return int(heads[0][0])


def test_retries_until_a_backend_is_reached() -> None:
    backend = Flaky(2)
    assert _run({"attempts": 3}, backend) == 200 and backend.tries == 3
    backend = Flaky(3)
    assert _run({"attempts": 3}, backend) == 502 and backend.tries == 3
    backend = Flaky(5, status=504)
    assert _run({"attempts": 2}, backend) == 504 and backend.tries == 2


def test_one_attempt_and_disabled_network_retries_pass_through() -> None:
    backend = Flaky(1)
    assert _run({"attempts": 1}, backend) == 502 and backend.tries == 1
    assert isinstance(build_middleware("r", mw("retry", {"attempts": 1}), backend), RetryHandler)
    backend = Flaky(1)
    assert _run({"attempts": 3, "disableRetryOnNetworkError": True, "status": ["500"]}, backend) == 502
    assert backend.tries == 1


@pytest.mark.parametrize("method", ["POST", "PATCH", "LOCK"])
def test_network_errors_are_retried_for_every_method(method: str) -> None:
    # Traefik 3.7: nothing reached the backend, so even a POST is safe to send again.
    backend = Flaky(1)
    assert _run({"attempts": 3}, backend, method, body=True) == 200 and backend.tries == 2


@pytest.mark.parametrize("method", ["POST", "PATCH", "LOCK"])
def test_status_retries_need_the_option_for_non_idempotent_methods(method: str) -> None:
    backend = Flaky(0, answers=[503, 200])
    assert _run({"attempts": 3, "status": ["503"]}, backend, method) == 503 and backend.tries == 1
    backend = Flaky(0, answers=[503, 200])
    assert _run({"attempts": 3, "status": ["503"], "retryNonIdempotentMethod": True}, backend, method) == 200
    assert backend.tries == 2
    backend = Flaky(0, answers=[503, 200])
    assert _run({"attempts": 3, "status": ["503"]}, backend, "PUT") == 200  # PUT and DELETE are idempotent


def test_status_ranges_retry_until_the_last_attempt() -> None:
    backend = Flaky(0, answers=[500, 404, 200])
    assert _run({"attempts": 4, "status": ["400-499", "500-599"]}, backend) == 200 and backend.tries == 3
    backend = Flaky(0, answers=[500, 502, 503, 504])
    assert _run({"attempts": 3, "status": ["500-599"]}, backend) == 503 and backend.tries == 3
    backend = Flaky(0, answers=[418])
    assert _run({"attempts": 3, "status": ["500-599"]}, backend) == 418 and backend.tries == 1
    backend = Flaky(1, answers=[503, 200])  # a dial failure, then a retried status, then success
    assert _run({"attempts": 3, "status": ["503"]}, backend) == 200 and backend.tries == 3
    backend = Flaky(1, answers=[200])  # status only: network errors are not retried
    assert _run({"attempts": 3, "status": ["503"], "disableRetryOnNetworkError": True}, backend) == 502


class BodyBackend:
    """Reads the whole request body, then answers the next status of ``answers`` (200 after)."""

    def __init__(self, answers: list[int]) -> None:
        self.answers = list(answers)
        self.bodies: list[bytes] = []

    def handle(self, ex: Exchange) -> None:
        ex.set_producer(None)
        backend = self
        chunks: list[bytes] = []

        class Reader:
            def body_data(self, data: bytes) -> None:
                chunks.append(data)

            def body_end(self, trailers: Any) -> None:
                backend.bodies.append(b"".join(chunks))
                status = backend.answers.pop(0) if backend.answers else 200
                ex.respond(status, (), b"answer")

        ex.set_body_consumer(Reader())


def _run_body(config: dict[str, Any], backend: BodyBackend, chunks: list[bytes], length: int) -> int:
    loop = FakeLoop()
    handler = _build(config, backend, loop)
    ex, down = case_exchange({"method": "PUT", "url": "/", "host": "h", "headers": {}, "remote_addr": "1.2.3.4:5"})
    ex.body_length = length
    ex._body_done = False  # built without a body: this one arrives after the head, as on the wire
    handler.handle(ex)
    for chunk in chunks:
        ex.feed_body(chunk)
    ex.end_body(None)
    loop.run()
    heads = [v for k, v in down.calls if k == "head"]
    assert len(heads) == 1
    return int(heads[0][0])


def test_a_request_body_is_replayed_on_status_retries() -> None:
    backend = BodyBackend([503, 502])
    assert _run_body({"attempts": 3, "status": ["500-599"]}, backend, [b"da", b"ta"], 4) == 200
    assert backend.bodies == [b"data"] * 3
    backend = BodyBackend([503])  # chunked (unknown length), unlimited
    assert _run_body({"attempts": 2, "status": ["503"], "maxRequestBodyBytes": -1}, backend,
                     [b"x" * 1000] * 5, -1) == 200
    assert backend.bodies == [b"x" * 5000] * 2


def test_a_body_over_max_request_body_bytes_turns_status_retries_off() -> None:
    backend = BodyBackend([503])
    assert _run_body({"attempts": 3, "status": ["503"], "maxRequestBodyBytes": 3}, backend, [b"data"], 4) == 503
    assert backend.bodies == [b"data"]
    backend = BodyBackend([503])  # found while reading a chunked body: handed on whole, as it streams
    assert _run_body({"attempts": 3, "status": ["503"], "maxRequestBodyBytes": 3}, backend,
                     [b"ab", b"cd", b"ef"], -1) == 503
    assert backend.bodies == [b"abcdef"]
    backend = BodyBackend([503])  # 0: any body is too large (Traefik reads maxRequestBodyBytes + 1)
    assert _run_body({"attempts": 3, "status": ["503"], "maxRequestBodyBytes": 0}, backend, [b"d"], 1) == 503


def test_timeout_stops_retrying() -> None:
    loop = FakeLoop()
    backend = Flaky(0, answers=[503] * 10, loop=loop, latency=0.4)
    assert _run({"attempts": 10, "status": ["503"], "timeout": "1s"}, backend, loop=loop) == 503
    assert backend.tries == 3  # tries at 0.4s and 0.8s are retried; the one at 1.2s is past the timeout
    loop = FakeLoop()
    backend = Flaky(10, loop=loop, latency=0.3)
    assert _run({"attempts": 10, "timeout": "1s"}, backend, loop=loop) == 502 and backend.tries == 4


def test_backoff_waits_grow_to_at_most_twice_the_initial_interval() -> None:
    loop = FakeLoop()
    backend = Flaky(3)
    assert _run({"attempts": 4, "initialInterval": "100ms"}, backend, loop=loop) == 200
    assert len(loop.waits) == 3
    bases = [0.1 * 2 ** (i / 3) for i in range(3)]
    for wait, base in zip(loop.waits, bases, strict=True):
        assert 0.5 * base <= wait <= 1.5 * base
    assert backoff_intervals(3, 0.0) == [0.0, 0.0]
    waits = backoff_intervals(5, 1.0, random.Random(3))
    assert all(0.5 <= w <= 3.0 for w in waits) and len(waits) == 4


def test_no_backoff_retries_at_once() -> None:
    loop = FakeLoop()
    assert _run({"attempts": 3}, Flaky(2), loop=loop) == 200
    assert loop.waits == []


def test_a_client_gone_during_the_backoff_stops_the_retries() -> None:
    loop = FakeLoop()
    backend = Flaky(5)
    handler = _build({"attempts": 5, "initialInterval": "1s"}, backend, loop)
    ex, down = case_exchange({"method": "GET", "url": "/", "host": "h", "headers": {}, "remote_addr": "1.2.3.4:5"})
    handler.handle(ex)
    ex.done = True
    loop.run()
    assert backend.tries == 1 and down.calls == []


def test_config_errors() -> None:
    for config, message in (({}, "incorrect (or empty) value for attempt (0)"),
                            ({"attempts": -1}, "incorrect (or empty) value for attempt (-1)"),
                            ({"attempts": 2, "disableRetryOnNetworkError": True},
                             "retry middleware requires at least HTTP status codes or retry on TCP"),
                            ({"attempts": 2, "status": ["5xx"]}, "invalid status '5xx'")):
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            _build(config, Flaky(0))
    _build({"attempts": 2, "maxRequestBodyBytes": 1024}, Flaky(0))
