"""Forwarding: what the backend receives (X-Forwarded-*, X-Real-Ip, hop-by-hop headers, Host, path).

Entry point ``web`` trusts nobody (incoming X-Forwarded-* are replaced); ``trusted`` sets
``forwardedHeaders.insecure: true`` (they are kept, X-Forwarded-For is appended to).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.oracle.harness import TRAEFIK, TRAEFIK_MISSING, Backends, Case, Pair, case, lb

pytestmark = [pytest.mark.oracle, pytest.mark.skipif(TRAEFIK is None, reason=TRAEFIK_MISSING)]

ENTRY_POINTS: dict[str, dict[str, Any]] = {
    "web": {},
    "trusted": {"forwardedHeaders": {"insecure": True}},
}


def dynamic(backends: Backends) -> dict[str, Any]:
    both = ["web", "trusted"]
    return {"http": {
        "routers": {
            "fwd": {"rule": "Host(`fwd.test`)", "service": "fwd", "entryPoints": both},
            "nopass": {"rule": "Host(`nopass.test`)", "service": "nopass", "entryPoints": both},
            "withpath": {"rule": "Host(`path.test`)", "service": "withpath", "entryPoints": both},
        },
        "services": {
            "fwd": lb(backends["fwd"]),
            "nopass": lb(backends["nopass"], passHostHeader=False),
            "withpath": lb(backends["withpath"].url + "/base"),
        },
    }}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, backends: Backends) -> Iterator[Pair]:
    with Pair(tmp_path_factory.mktemp("forwarding"), backends, ENTRY_POINTS, dynamic(backends)) as p:
        yield p


def req(path: str, host: str, *extra: str, method: str = "GET", body: str = "") -> str:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *extra]
    return "\r\n".join(lines) + "\r\n\r\n" + body


SPOOFED = (
    "X-Forwarded-For: 1.2.3.4, 5.6.7.8",
    "X-Forwarded-Proto: https",
    "X-Forwarded-Host: evil.test",
    "X-Forwarded-Port: 9999",
    "X-Forwarded-Server: evil",
    "X-Real-Ip: 6.6.6.6",
    "X-Forwarded-Uri: /evil",
    "X-Forwarded-Method: PUT",
    "X-Forwarded-Tls-Client-Cert: evil",
)

CASES = [
    case("x-forwarded-basic", req("/", "fwd.test", "User-Agent: oracle/1")),
    case("x-forwarded-host-port", req("/", "fwd.test:8443")),
    case("untrusted-strips-incoming", req("/", "fwd.test", *SPOOFED)),
    case("untrusted-strips-underscore-variants",
         req("/", "fwd.test", "X_Forwarded_For: 1.2.3.4", "X_Forwarded_Host: evil.test", "X_Real_Ip: 6.6.6.6")),
    case("insecure-keeps-and-appends", req("/", "fwd.test", *SPOOFED), entry_point="trusted"),
    case("insecure-repeated-xff",
         req("/", "fwd.test", "X-Forwarded-For: 1.1.1.1", "X-Forwarded-For: 2.2.2.2"), entry_point="trusted"),
    case("hop-by-hop-removed",
         req("/", "fwd.test", "Connection: keep-alive, X-Foo", "X-Foo: secret", "Keep-Alive: timeout=5",
             "TE: gzip", "Proxy-Connection: keep-alive", "Upgrade: h2c", "Proxy-Authorization: Basic eA==",
             "X-Bar: kept")),
    case("te-trailers-kept", req("/", "fwd.test", "TE: trailers")),
    case("connection-close", req("/", "fwd.test", "Connection: close")),
    case("pass-host-header-false", req("/x?y=1", "nopass.test")),
    case("server-url-with-path", req("/x/y?z=1", "path.test")),
    case("post-content-length", req("/submit", "fwd.test", "Content-Type: text/plain", "Content-Length: 5",
                                    method="POST", body="hello")),
    case("post-chunked", req("/submit", "fwd.test", "Transfer-Encoding: chunked", method="POST",
                             body="5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")),
    case("query-semicolon", req("/s?a=1;b=2", "fwd.test")),
    case("http10-with-host", "GET /old HTTP/1.0\r\nHost: fwd.test\r\n\r\n"),
    case("head", req("/h", "fwd.test", method="HEAD")),
]


@pytest.mark.parametrize("c", CASES)
def test_forwarding(pair: Pair, c: Case) -> None:
    pair.check(c)
