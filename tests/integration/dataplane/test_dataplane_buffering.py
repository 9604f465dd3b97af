"""buffering through a real entry point and real backends (loopback sockets): limits (413), the
backend sees a de-chunked body with Content-Length, the client a complete response, bodies beyond
the memory thresholds spill to temporary files, and retryExpression replays the buffered request."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from ferryman.errors import ConfigError
from ferryman.middlewares import build_middleware
from ferryman.middlewares.buffering import RetryContext, parse_retry_expression
from ferryman.upstream import UpstreamPools
from tests.integration.dataplane.dp_support import Message, exchange, http_backend, lb, proxy, response
from tests.support.procs import free_port
from tests.unit.middlewares.conformance_support import mw


def _run(config: dict[str, Any], raw: bytes, answer: Any = None, *urls: str) -> tuple[Message, list[Message]]:
    pools = UpstreamPools()
    with http_backend(answer) as backend:
        handler = build_middleware("buf", mw("buffering", config), lb(pools, *urls, backend.url))
        with proxy(handler, pools=pools) as px:
            got = exchange(px.port, raw)
    return got, list(backend.requests)


CHUNKED = b"POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"


def test_chunked_request_reaches_backend_with_content_length() -> None:
    got, [seen] = _run({}, CHUNKED)
    assert got.status == 200
    assert seen.body == b"hello world" and seen.get("content-length") == "11" and not seen.chunked


def test_request_over_limit_by_content_length_and_by_stream() -> None:
    raw = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world"
    for data in (raw, CHUNKED):
        got, seen = _run({"maxRequestBodyBytes": 10}, data)
        assert got.status == 413 and got.body == b"Request Entity Too Large" and seen == []


def test_response_over_limit() -> None:
    got, _ = _run({"maxResponseBodyBytes": 5}, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
                  lambda req: response(200, b"0123456789"))
    assert got.status == 500 and got.body == b"Internal Server Error"


def test_chunked_response_is_sent_with_content_length() -> None:
    def chunked(req: Message) -> bytes:
        return b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nX-B: 1\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    got, _ = _run({}, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", chunked)
    assert got.status == 201 and got.body == b"abcde" and got.get("content-length") == "5"
    assert got.get("x-b") == "1" and not got.chunked


def test_spill_to_disk_both_ways(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    big = bytes(range(256)) * 1024  # 256 KiB
    raw = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % len(big) + big
    got, [seen] = _run({"memRequestBodyBytes": 1000, "memResponseBodyBytes": 1000}, raw,
                       lambda req: response(200, req.body[::-1]))
    assert seen.body == big
    assert got.status == 200 and got.body == big[::-1]
    assert list(tmp_path.iterdir()) == []  # anonymous temporary files, gone once closed


def test_retry_expression_replays_the_buffered_body() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    raw = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody"
    got, [seen] = _run({"retryExpression": "IsNetworkError() && Attempts() < 2"}, raw, None, dead)
    assert got.status == 200 and seen.body == b"body"  # the first try hit the dead server (502)


def test_retry_on_response_code() -> None:
    calls: list[int] = []

    def flaky(req: Message) -> bytes:
        calls.append(1)
        return response(503 if len(calls) < 3 else 200, b"try %d" % len(calls))
    got, _ = _run({"retryExpression": "ResponseCode() == 503 && Attempts() <= 5"},
                  b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", flaky)
    assert got.status == 200 and got.body == b"try 3" and len(calls) == 3


@pytest.mark.parametrize("text, ctx, expected", [
    ("IsNetworkError()", RetryContext("GET", 1, 502), True),
    ("IsNetworkError()", RetryContext("GET", 1, 500), False),
    ("IsNetworkError() && Attempts() <= 2", RetryContext("GET", 3, 504), False),
    ('RequestMethod() == "GET" || ResponseCode() >= 500', RetryContext("POST", 1, 503), True),
    ('(RequestMethod() != "POST") && ResponseCode() > 499', RetryContext("POST", 1, 503), False),
])
def test_retry_expression_language(text: str, ctx: RetryContext, expected: bool) -> None:
    assert parse_retry_expression(text)(ctx) is expected


@pytest.mark.parametrize("text", ["Attempts()", "Nope()", "Attempts() < \"x\"", "IsNetworkError() &&", "Attempts < 2"])
def test_bad_retry_expression(text: str) -> None:
    with pytest.raises(ConfigError, match="retryExpression"):
        build_middleware("b", mw("buffering", {"retryExpression": text}), lb(UpstreamPools(), "http://127.0.0.1:1"))




def test_spool_moves_to_a_file_past_the_threshold() -> None:
    from ferryman.middlewares.buffering import _Spool
    spool = _Spool(10)
    spool.write(b"0123456789")
    assert spool.file is None
    spool.write(b"abc")
    assert spool.file is not None and spool.chunks == []
    assert b"".join(spool.read()) == b"0123456789abc" == b"".join(spool.read())  # re-readable for retries
    spool.close()
