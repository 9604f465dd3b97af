"""``inFlightReq``: counting per source until the response ends, is aborted, or the client goes away."""

from __future__ import annotations

from typing import Any

import pytest

from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange
from ferryman.middlewares import build_middleware
from ferryman.middlewares.in_flight_req import SWEEP_EVERY, InFlightReqHandler
from tests.unit.middlewares.conformance_support import Upstream, case_exchange, final_head, mw


class Holding:
    """The next handler: keeps every exchange without answering (a slow backend)."""

    def __init__(self) -> None:
        self.seen: list[Exchange] = []

    def handle(self, ex: Exchange) -> None:
        self.seen.append(ex)

    def finish(self, index: int = 0) -> None:
        ex = self.seen[index]
        ex.send_head(200, [], 2)
        ex.send_data(b"ok")
        ex.send_end(None)


def _build(config: dict[str, Any], nxt: Any) -> InFlightReqHandler:
    handler = build_middleware("limit", mw("inFlightReq", config), nxt)
    assert isinstance(handler, InFlightReqHandler)
    return handler


def _request(host: str = "a.example", remote: str = "192.0.2.1:1",
             headers: dict[str, list[str]] | None = None) -> tuple[Exchange, Any]:
    return case_exchange({"method": "GET", "url": "/", "host": host, "headers": headers or {},
                          "remote_addr": remote})


def _status(down: Any) -> int:
    for kind, value in down.calls:
        if kind == "head":
            return int(value[0])
    return 0


def test_amount_per_host_then_429_until_a_response_ends() -> None:
    backend = Holding()
    handler = _build({"amount": 2}, backend)
    for _ in range(2):
        handler.handle(_request()[0])
    ex, down = _request()
    handler.handle(ex)
    status, headers, _ = final_head(down)
    assert status == 429 and "Content-Type" not in headers
    assert b"".join(v for k, v in down.calls if k == "data") == b"max connections reached: 2"
    assert len(backend.seen) == 2
    handler.handle(_request("b.example")[0])  # another host is another source
    assert len(backend.seen) == 3
    backend.finish(0)
    assert handler.in_flight("a.example") == 1
    ex, down = _request()
    handler.handle(ex)
    assert len(backend.seen) == 4 and _status(down) == 0


def test_a_local_answer_and_an_abort_release() -> None:
    handler = _build({"amount": 1}, Upstream())  # answers at once
    for _ in range(3):
        ex, down = _request()
        handler.handle(ex)
        assert _status(down) == 200
    assert handler.in_flight() == 0
    backend = Holding()
    handler = _build({"amount": 1}, backend)
    handler.handle(_request()[0])
    backend.seen[0].abort()
    handler.handle(_request()[0])
    assert len(backend.seen) == 2


def test_a_client_gone_is_released() -> None:
    backend = Holding()
    handler = _build({"amount": 1}, backend)
    handler.handle(_request()[0])
    backend.seen[0].done = True  # what the connection does when the client goes away
    ex, down = _request()
    handler.handle(ex)
    assert len(backend.seen) == 2 and _status(down) == 0
    assert handler.in_flight() == 1


def test_clients_gone_from_many_sources_are_swept() -> None:
    backend = Holding()
    handler = _build({"amount": 1, "sourceCriterion": {"ipStrategy": {}}}, backend)
    for i in range(SWEEP_EVERY + 1):
        ex, _ = _request(remote=f"10.0.{i >> 8}.{i & 255}:1")
        handler.handle(ex)
        ex.done = True
    assert handler.in_flight() < SWEEP_EVERY


def test_amount_zero_refuses_everything() -> None:
    backend = Holding()
    handler = _build({}, backend)
    ex, down = _request()
    handler.handle(ex)
    assert _status(down) == 429 and backend.seen == []


def test_source_criteria() -> None:
    backend = Holding()
    by_header = _build({"amount": 1, "sourceCriterion": {"requestHeaderName": "X-Tenant"}}, backend)
    by_header.handle(_request(headers={"X-Tenant": ["t1"]})[0])
    by_header.handle(_request(headers={"X-Tenant": ["t2"]})[0])
    ex, down = _request(headers={"X-Tenant": ["t1"]})
    by_header.handle(ex)
    assert len(backend.seen) == 2 and _status(down) == 429
    by_ip = _build({"amount": 1, "sourceCriterion": {"ipStrategy": {"depth": 1}}}, backend)
    by_ip.handle(_request(remote="10.0.0.1:1", headers={"X-Forwarded-For": ["1.1.1.1"]})[0])
    ex, down = _request(remote="10.0.0.2:1", headers={"X-Forwarded-For": ["1.1.1.1"]})
    by_ip.handle(ex)
    assert _status(down) == 429
    by_host = _build({"amount": 1, "sourceCriterion": {"requestHost": True}}, backend)
    by_host.handle(_request("h:8080")[0])
    assert by_host.in_flight("h:8080") == 1


@pytest.mark.parametrize(("criterion", "message"), [
    ({"ipStrategy": {}, "requestHeaderName": "A"}, "iPStrategy and RequestHeaderName are mutually exclusive"),
    ({"ipStrategy": {}, "requestHost": True}, "iPStrategy and RequestHost are mutually exclusive"),
    ({"requestHeaderName": "A", "requestHost": True}, "requestHost and RequestHeaderName are mutually exclusive"),
])
def test_criteria_are_mutually_exclusive(criterion: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _build({"amount": 1, "sourceCriterion": criterion}, Holding())
    assert str(info.value).count(f"error creating requests limiter: {message}") == 1
