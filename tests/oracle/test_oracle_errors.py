"""Errors: unreachable backend, malformed requests, framing conflicts, oversized heads, odd methods."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.oracle.harness import TRAEFIK, TRAEFIK_MISSING, Backends, Case, Pair, case, lb
from tests.support.procs import free_port

pytestmark = [pytest.mark.oracle, pytest.mark.skipif(TRAEFIK is None, reason=TRAEFIK_MISSING)]

MAX_HEADER_BYTES = 1024
ENTRY_POINTS: dict[str, dict[str, Any]] = {
    "web": {"http": {"maxHeaderBytes": MAX_HEADER_BYTES}},
}


def dynamic(backends: Backends) -> dict[str, Any]:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    return {"http": {
        "routers": {
            "app": {"rule": "Host(`app.test`)", "service": "app", "entryPoints": ["web"]},
            "down": {"rule": "Host(`down.test`)", "service": "down", "entryPoints": ["web"]},
            "get-only": {"rule": "Host(`m.test`) && Method(`GET`)", "service": "get-only", "entryPoints": ["web"]},
        },
        "services": {"app": lb(backends["app"]), "down": lb(down), "get-only": lb(backends["get-only"])},
    }}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, backends: Backends) -> Iterator[Pair]:
    with Pair(tmp_path_factory.mktemp("errors"), backends, ENTRY_POINTS, dynamic(backends)) as p:
        yield p


def req(*lines: str, body: str = "") -> str:
    return "\r\n".join(lines) + "\r\n\r\n" + body


BIG = "X-Big: " + "a" * (MAX_HEADER_BYTES + 4096 + 100)

CASES = [
    # Status and body match; Content-Type is checked by the next case.
    case("backend-down-502", req("GET / HTTP/1.1", "Host: down.test"), headers=("location", "content-length")),
    case("backend-down-502-content-type", req("GET / HTTP/1.1", "Host: down.test"), headers=("content-type",)),
    case("malformed-request-line", req("GARBAGE", "Host: app.test")),
    case("malformed-version", req("GET / HTTP/9.9", "Host: app.test")),
    case("malformed-header-line", req("GET / HTTP/1.1", "Host: app.test", "NoColonHere")),
    case("missing-host", req("GET / HTTP/1.1", "User-Agent: x")),
    case("duplicate-host", req("GET / HTTP/1.1", "Host: app.test", "Host: app.test")),
    case("http10-without-host", req("GET / HTTP/1.0")),
    case("content-length-and-chunked",
         req("POST / HTTP/1.1", "Host: app.test", "Content-Length: 5", "Transfer-Encoding: chunked",
             body="0\r\n\r\n"),
         xfail="by design, ferryman is stricter: a request with both Content-Length and "
               "Transfer-Encoding: chunked gets 400 and Connection: close (RFC 9112 6.3 allows rejecting; "
               "request smuggling defence); Traefik (Go) drops Content-Length, forwards the chunked body "
               "and answers the backend's 200"),
    case("bad-content-length", req("POST / HTTP/1.1", "Host: app.test", "Content-Length: abc", body="abc")),
    case("conflicting-content-lengths",
         req("POST / HTTP/1.1", "Host: app.test", "Content-Length: 3", "Content-Length: 4", body="abcd")),
    case("unsupported-transfer-coding",
         req("POST / HTTP/1.1", "Host: app.test", "Transfer-Encoding: gzip", body="abc")),
    case("header-too-large-431", req("GET / HTTP/1.1", "Host: app.test", BIG)),
    case("header-just-fits", req("GET / HTTP/1.1", "Host: app.test", "X-Big: " + "a" * MAX_HEADER_BYTES)),
    case("fragment-in-target", req("GET /a#frag HTTP/1.1", "Host: app.test")),
    case("lowercase-method-forwarded", req("get /x HTTP/1.1", "Host: app.test")),
    case("lowercase-method-vs-method-rule", req("get /x HTTP/1.1", "Host: m.test")),
    case("known-extension-method-forwarded", req("PURGE /x HTTP/1.1", "Host: app.test")),
    case("custom-method-forwarded", req("FROB /x HTTP/1.1", "Host: app.test")),
]


@pytest.mark.parametrize("c", CASES)
def test_errors(pair: Pair, c: Case) -> None:
    pair.check(c)
