"""forwardAuth against the real Traefik: what the auth server receives, what the backend sees and
what the client gets, for the same requests, with one real auth server shared by both proxies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.dataplane.dp_support import Backend, Message, http_backend, response
from tests.oracle.harness import (
    TRAEFIK,
    TRAEFIK_MISSING,
    Backends,
    Case,
    Normaliser,
    Pair,
    Proxy,
    case,
    fail_diff,
    lb,
    request_lines,
)
from tests.support.procs import free_port

pytestmark = [pytest.mark.oracle, pytest.mark.skipif(TRAEFIK is None, reason=TRAEFIK_MISSING)]

ENTRY_POINTS: dict[str, dict[str, Any]] = {"web": {}}


def auth_answer(req: Message) -> bytes:
    path = req.target.split("?", 1)[0]
    if path == "/ok":
        return response(200, b"ok", {"X-User": "alice", "X-Auth-Role": "admin", "X-Other": "o"})
    if path == "/cookie":
        return (b"HTTP/1.1 200 OK\r\nSet-Cookie: session=abc; Path=/\r\nSet-Cookie: other=1\r\n"
                b"Content-Length: 0\r\n\r\n")
    if path == "/deny":
        return response(302, b"login first", {"Location": "/login?next=%2Fx", "Content-Type": "text/plain",
                                              "X-Reason": "nope"}, reason="Found")
    return response(401, b"unauthorized\n", {"Content-Type": "text/plain", "Www-Authenticate": "Bearer"},
                    reason="Unauthorized")


def dynamic(backends: Backends, auth: Backend) -> dict[str, Any]:
    def fa(path: str, **extra: Any) -> dict[str, Any]:
        return {"forwardAuth": {"address": f"{auth.url}{path}", **extra}}

    middlewares = {
        "legacy": fa("/ok?from=traefik", authResponseHeaders=["X-User"], authResponseHeadersRegex="^X-Auth-"),
        "trust-false": fa("/ok", trustForwardHeader=False, authResponseHeaders=["X-User"]),
        "trust-true": fa("/ok", trustForwardHeader=True, authRequestHeaders=["Cookie", "Accept"]),
        "filtered": fa("/ok", authRequestHeaders=["Cookie"]),
        "deny": fa("/deny"),
        "deny-preserve": fa("/deny", preserveLocationHeader=True),
        "unauthorized": fa("/401"),
        "body": fa("/ok", forwardBody=True, maxBodySize=16, preserveRequestMethod=True),
        "cookies": fa("/cookie", addAuthCookiesToResponse=["session"]),
        "signin": fa("/401", authSigninURL="https://sso.test/start?a=1&b=<2>"),
        "down": {"forwardAuth": {"address": f"http://127.0.0.1:{free_port()}/"}},
    }
    routers = {name: {"rule": f"Host(`{name}.test`)", "service": "app", "entryPoints": ["web"],
                      "middlewares": [name]} for name in middlewares}
    return {"http": {"routers": routers, "middlewares": middlewares, "services": {"app": lb(backends["app"])}}}


@pytest.fixture(scope="module")
def auth() -> Iterator[Backend]:
    with http_backend(auth_answer) as server:
        yield server


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, backends: Backends, auth: Backend) -> Iterator[Pair]:
    with Pair(tmp_path_factory.mktemp("forward-auth"), backends, ENTRY_POINTS, dynamic(backends, auth)) as p:
        yield p


def req(host: str, *lines: str, method: str = "GET /x?q=1", body: str = "") -> str:
    return "\r\n".join([f"{method} HTTP/1.1", f"Host: {host}.test", *lines]) + "\r\n\r\n" + body


SHOWN = ("location", "content-type", "content-length", "x-reason", "www-authenticate", "set-cookie")

CASES = [
    case("legacy-2xx", req("legacy", "User-Agent: curl/8", "X-User: forged", "X-Auth-Role: forged",
                           "X-Forwarded-Prefix: /p"), headers=SHOWN),
    case("legacy-no-user-agent", req("legacy"), headers=SHOWN),
    case("trust-false", req("trust-false", "X-Forwarded-For: 1.2.3.4", "User-Agent: ua"), headers=SHOWN),
    case("trust-false-no-ua", req("trust-false"), headers=SHOWN),
    case("trust-true", req("trust-true", "Cookie: s=1", "Accept: */*", "X-Dropped: d"), headers=SHOWN),
    case("filtered", req("filtered", "Cookie: s=1", "X-Dropped: d"), headers=SHOWN),
    case("deny-relative-location", req("deny"), headers=SHOWN),
    case("deny-preserve-location", req("deny-preserve"), headers=SHOWN),
    case("unauthorized-401", req("unauthorized"), headers=SHOWN),
    case("unauthorized-head", req("unauthorized", method="HEAD /x"), headers=SHOWN),
    case("forward-body", req("body", "Content-Length: 5", method="POST /submit", body="hello"), headers=SHOWN),
    case("forward-body-too-large", req("body", "Content-Length: 20", method="POST /submit", body="x" * 20),
         headers=SHOWN),
    case("forward-body-chunked", req("body", "Transfer-Encoding: chunked", method="POST /c",
                                     body="3\r\nabc\r\n0\r\n\r\n"), headers=SHOWN),
    case("cookies", req("cookies"), headers=SHOWN),
    case("signin-redirect", req("signin"), headers=SHOWN),
    case("signin-redirect-post", req("signin", "Content-Length: 0", method="POST /x"), headers=SHOWN),
    case("auth-server-down", req("down"), headers=SHOWN),
]


def _observe(pair: Pair, proxy: Proxy, c: Case, auth: Backend) -> list[str]:
    before = len(auth.requests)
    obs = pair.run(proxy, c)
    return obs.lines + request_lines("auth", auth.requests[before:], Normaliser(proxy.ports))


@pytest.mark.parametrize("c", CASES)
def test_forward_auth(pair: Pair, auth: Backend, c: Case) -> None:
    assert pair.traefik is not None and pair.ferryman is not None
    want = _observe(pair, pair.traefik, c, auth)
    got = _observe(pair, pair.ferryman, c, auth)
    fail_diff(c, want, got, pair.logged_errors())
