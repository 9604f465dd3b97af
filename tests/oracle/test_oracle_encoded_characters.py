"""encodedCharacters against the real Traefik: the middleware (everything denied unless allowed) and
the entry point option (everything allowed unless denied), for paths with each escape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.oracle.harness import TRAEFIK, TRAEFIK_MISSING, Backends, Case, Pair, case, lb

pytestmark = [pytest.mark.oracle, pytest.mark.skipif(TRAEFIK is None, reason=TRAEFIK_MISSING)]

ENTRY_POINTS: dict[str, dict[str, Any]] = {
    "web": {},
    "strict": {"http": {"encodedCharacters": {"allowEncodedSlash": False, "allowEncodedHash": False}}},
}


def dynamic(backends: Backends) -> dict[str, Any]:
    middlewares = {
        "deny-all": {"encodedCharacters": {"allowEncodedSemicolon": False}},
        "some": {"encodedCharacters": {"allowEncodedSlash": True, "allowEncodedPercent": True,
                                       "allowEncodedQuestionMark": True}},
    }
    routers: dict[str, Any] = {name: {"rule": f"Host(`{name}.test`)", "service": "app", "entryPoints": ["web"],
                                      "middlewares": [name]} for name in middlewares}
    routers["ep"] = {"rule": "Host(`ep.test`)", "service": "app", "entryPoints": ["strict", "web"]}
    return {"http": {"routers": routers, "middlewares": middlewares, "services": {"app": lb(backends["app"])}}}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, backends: Backends) -> Iterator[Pair]:
    with Pair(tmp_path_factory.mktemp("encoded"), backends, ENTRY_POINTS, dynamic(backends)) as p:
        yield p


PATHS = ["/plain", "/a%2Fb", "/a%2fb", "/a%5Cb", "/a%00b", "/a%3Bb", "/a%25b", "/a%252Fb", "/a%3Fb", "/a%23b",
         "/a%41b"]
CASES = [
    *(case(f"{host}-{path}", f"GET {path} HTTP/1.1\r\nHost: {host}.test\r\n\r\n")
      for host in ("deny-all", "some") for path in PATHS),
    *(case(f"ep-strict-{path}", f"GET {path} HTTP/1.1\r\nHost: ep.test\r\n\r\n", entry_point="strict")
      for path in PATHS),
    *(case(f"ep-web-{path}", f"GET {path} HTTP/1.1\r\nHost: ep.test\r\n\r\n") for path in ("/a%2Fb", "/a%23b")),
    case("ep-strict-no-router", "GET /a%2Fb HTTP/1.1\r\nHost: nowhere.test\r\n\r\n", entry_point="strict"),
]


@pytest.mark.parametrize("c", CASES)
def test_encoded_characters(pair: Pair, c: Case) -> None:
    pair.check(c)
