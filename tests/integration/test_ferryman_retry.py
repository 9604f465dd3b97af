"""retry through a real ferryman: a dead server in a two-server service never reaches the client, a
backend answering 503 twice is retried on status, a backend that takes the request and hangs up is
not retried (bytes were sent, as Traefik), and timeout ends the retries."""

from __future__ import annotations

import http.client
import socket
import threading
from typing import Any

from tests.integration.conftest import StartFerryman
from tests.integration.dataplane.dp_support import (
    Backend,
    Message,
    Reader,
    http_backend,
    read_request,
    response,
)


def get(port: int, path: str = "/", method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"Host": "app"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def routes(retry: dict[str, Any], *urls: str) -> dict[str, Any]:
    return {"http": {
        "routers": {"app": {"rule": "Host(`app`)", "service": "s", "middlewares": ["retry"]}},
        "middlewares": {"retry": {"retry": retry}},
        "services": {"s": {"loadBalancer": {"servers": [{"url": u} for u in urls]}}}}}


def test_dead_server_in_a_two_server_service(ferryman: StartFerryman) -> None:
    with http_backend() as live:
        fm = ferryman(dynamic=routes({"attempts": 2}, dead_url(), live.url))
        results = [get(fm.ports["web"]) for _ in range(6)]
        assert results == [(200, b"hello from backend")] * 6
        results = [get(fm.ports["web"], method="POST", body=b"data") for _ in range(4)]
        assert [s for s, _ in results] == [200] * 4  # nothing was sent to the dead one: POST too
        assert [r.body for r in live.requests[-4:]] == [b"data"] * 4


def test_status_retries_and_timeout(ferryman: StartFerryman) -> None:
    count = 0
    lock = threading.Lock()

    def answer(req: Message) -> bytes:
        nonlocal count
        with lock:
            count += 1
            n = count
        if req.target.startswith("/always") or n <= 2:
            return response(503, b"busy %d" % n, reason="Service Unavailable")
        return response(200, b"ok %d" % n)

    with http_backend(answer) as backend:
        fm = ferryman(dynamic=routes({"attempts": 4, "status": ["500-599"], "initialInterval": "10ms",
                                      "timeout": "2s"}, backend.url))
        assert get(fm.ports["web"]) == (200, b"ok 3")
        assert get(fm.ports["web"], "/always") == (503, b"busy 7")  # 4 tries, the last one answers
        assert count == 7
        # POST is not retried on status without retryNonIdempotentMethod
        assert get(fm.ports["web"], "/always", method="POST", body=b"x") == (503, b"busy 8")


def test_a_backend_that_hangs_up_after_the_request_is_not_retried(ferryman: StartFerryman) -> None:
    seen = 0

    def hang_up(sock: socket.socket) -> None:
        nonlocal seen
        read_request(Reader(sock))
        seen += 1
        sock.close()

    with Backend(hang_up) as backend:
        fm = ferryman(dynamic=routes({"attempts": 3}, backend.url))
        assert get(fm.ports["web"])[0] == 502
        assert seen == 1


def test_request_bodies_are_replayed_on_status_retries(ferryman: StartFerryman) -> None:
    bodies: list[bytes] = []
    lock = threading.Lock()

    def answer(req: Message) -> bytes:
        with lock:
            bodies.append(req.body)
            n = len(bodies)
        return response(503, b"busy", reason="Service Unavailable") if n <= 2 else response(200, b"ok")

    with http_backend(answer) as backend:
        fm = ferryman(dynamic=routes({"attempts": 3, "status": ["503"], "retryNonIdempotentMethod": True,
                                      "maxRequestBodyBytes": 100_000}, backend.url))
        payload = b"0123456789" * 5000
        assert get(fm.ports["web"], method="POST", body=payload) == (200, b"ok")
        assert bodies == [payload] * 3
        bodies.clear()
        too_big = b"x" * 100_001  # over maxRequestBodyBytes: forwarded once, the 503 is the answer
        assert get(fm.ports["web"], method="POST", body=too_big) == (503, b"busy")
        assert bodies == [too_big]
