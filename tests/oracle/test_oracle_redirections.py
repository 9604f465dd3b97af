"""Redirections: entry point ``http.redirections.entryPoint`` and the ``redirectScheme`` middleware.

Locations embed each proxy's own port of the target entry point; the harness writes those as
``<port:NAME>`` on both sides before comparing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.oracle.harness import TRAEFIK, TRAEFIK_MISSING, Backends, Case, Pair, case, lb

pytestmark = [pytest.mark.oracle, pytest.mark.skipif(TRAEFIK is None, reason=TRAEFIK_MISSING)]

ENTRY_POINTS: dict[str, dict[str, Any]] = {
    "web": {},
    "perm": {"http": {"redirections": {"entryPoint": {"to": "web", "scheme": "http", "permanent": True}}}},
    "temp": {"http": {"redirections": {"entryPoint": {"to": "web", "scheme": "http", "permanent": False}}}},
    "defaults": {"http": {"redirections": {"entryPoint": {"to": "web"}}}},
}


def dynamic(backends: Backends) -> dict[str, Any]:
    every = list(ENTRY_POINTS)
    return {"http": {
        "routers": {
            "app": {"rule": "Host(`app.test`)", "service": "app", "entryPoints": every},
            "rs-port": {"rule": "Host(`rs.test`)", "service": "app", "entryPoints": ["web"],
                        "middlewares": ["to-https-port"]},
            "rs-temp": {"rule": "Host(`rs-temp.test`)", "service": "app", "entryPoints": ["web"],
                        "middlewares": ["to-https-temp"]},
        },
        "middlewares": {
            "to-https-port": {"redirectScheme": {"scheme": "https", "port": "8443", "permanent": True}},
            "to-https-temp": {"redirectScheme": {"scheme": "https"}},
        },
        "services": {"app": lb(backends["app"])},
    }}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, backends: Backends) -> Iterator[Pair]:
    with Pair(tmp_path_factory.mktemp("redirections"), backends, ENTRY_POINTS, dynamic(backends)) as p:
        yield p


def req(method: str, path: str, host: str, *extra: str) -> str:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *extra]
    if method in ("POST", "PUT"):
        lines.append("Content-Length: 0")
    return "\r\n".join(lines) + "\r\n\r\n"


#: Status, Location, Content-Length and body are compared on every redirect; Content-Type has its own
#: cases below (ferryman differs there).
NO_TYPE = ("location", "content-length")

CASES = [
    case("entrypoint-permanent-get", req("GET", "/a/b?q=1", "app.test"), entry_point="perm", headers=NO_TYPE),
    case("entrypoint-permanent-post", req("POST", "/form", "app.test"), entry_point="perm", headers=NO_TYPE),
    case("entrypoint-temporary-get", req("GET", "/a?q=1", "app.test"), entry_point="temp", headers=NO_TYPE),
    case("entrypoint-temporary-post", req("POST", "/form", "app.test"), entry_point="temp", headers=NO_TYPE),
    case("entrypoint-host-with-port", req("GET", "/p", "app.test:1234"), entry_point="perm", headers=NO_TYPE),
    # the client names the port it connected to; the Location names the target entry point's port
    case("entrypoint-host-with-own-port", req("GET", "/own", "app.test:{port:perm}"), entry_point="perm",
         headers=NO_TYPE),
    case("entrypoint-unrouted-host", req("GET", "/", "nowhere.test"), entry_point="perm", headers=NO_TYPE),
    case("entrypoint-defaults", req("GET", "/d", "app.test"), entry_point="defaults", headers=NO_TYPE),
    case("redirect-scheme-port-get", req("GET", "/x?y=1", "rs.test"), headers=NO_TYPE),
    case("redirect-scheme-port-put", req("PUT", "/x", "rs.test:8080"), headers=NO_TYPE),
    case("redirect-scheme-temporary", req("GET", "/t", "rs-temp.test"), headers=NO_TYPE),
    case("redirect-scheme-temporary-post", req("POST", "/t", "rs-temp.test"), headers=NO_TYPE),
    case("entrypoint-redirect-content-type", req("GET", "/ct", "app.test"), entry_point="perm",
         headers=("content-type",)),
    case("redirect-scheme-content-type", req("GET", "/ct", "rs.test"), headers=("content-type",)),
]


@pytest.mark.parametrize("c", CASES)
def test_redirections(pair: Pair, c: Case) -> None:
    pair.check(c)
