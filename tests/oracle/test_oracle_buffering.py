"""buffering against the real Traefik: request and response limits, a chunked request reaching the
backend, and retryExpression over a dead server, for the same requests and backends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.oracle.harness import TRAEFIK, TRAEFIK_MISSING, Backends, Case, Pair, case, lb
from tests.support.procs import free_port

pytestmark = [pytest.mark.oracle, pytest.mark.skipif(TRAEFIK is None, reason=TRAEFIK_MISSING)]

ENTRY_POINTS: dict[str, dict[str, Any]] = {"web": {}}


def dynamic(backends: Backends) -> dict[str, Any]:
    dead = f"http://127.0.0.1:{free_port()}"
    middlewares = {
        "limits": {"buffering": {"maxRequestBodyBytes": 10, "maxResponseBodyBytes": 100}},
        "small-response": {"buffering": {"maxResponseBodyBytes": 5}},
        "retry": {"buffering": {"retryExpression": "IsNetworkError() && Attempts() < 3"}},
    }
    routers = {name: {"rule": f"Host(`{name}.test`)", "service": "app", "entryPoints": ["web"],
                      "middlewares": [name]} for name in middlewares}
    routers["retry"]["service"] = "flaky"
    return {"http": {"routers": routers, "middlewares": middlewares, "services": {
        "app": lb(backends["app"]),
        "flaky": {"loadBalancer": {"servers": [{"url": dead}, {"url": backends["app"].url}]}},
    }}}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, backends: Backends) -> Iterator[Pair]:
    with Pair(tmp_path_factory.mktemp("buffering"), backends, ENTRY_POINTS, dynamic(backends)) as p:
        yield p


def req(host: str, *lines: str, method: str = "GET /x", body: str = "") -> str:
    return "\r\n".join([f"{method} HTTP/1.1", f"Host: {host}.test", *lines]) + "\r\n\r\n" + body


CASES = [
    case("small-get", req("limits")),
    case("body-within-limit", req("limits", "Content-Length: 5", method="POST /p", body="hello")),
    case("body-over-limit-content-length", req("limits", "Content-Length: 11", method="POST /p",
                                               body="hello world")),
    case("chunked-body-dechunked", req("limits", "Transfer-Encoding: chunked", method="POST /p",
                                       body="3\r\nabc\r\n0\r\n\r\n")),
    case("chunked-body-over-limit", req("limits", "Transfer-Encoding: chunked", method="POST /p",
                                        body="b\r\nhello world\r\n0\r\n\r\n")),
    case("response-over-limit", req("small-response")),
    # the dead server comes first in the round robin: one network error, then the live one
    case("retry-after-network-error", req("retry", "Content-Length: 4", method="POST /r", body="data"), repeat=2),
]


@pytest.mark.parametrize("c", CASES)
def test_buffering(pair: Pair, c: Case) -> None:
    pair.check(c)
