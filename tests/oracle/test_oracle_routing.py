"""Routing: the same rules and the same requests through Traefik and ferryman pick the same router.

Each router sends to its own recording backend (named after the router), so the comparison shows
which router matched, and what reached it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.oracle.harness import TRAEFIK, TRAEFIK_MISSING, Backends, Case, Pair, case, lb

pytestmark = [pytest.mark.oracle, pytest.mark.skipif(TRAEFIK is None, reason=TRAEFIK_MISSING)]

RULES: dict[str, dict[str, Any]] = {
    "host": {"rule": "Host(`example.com`)"},
    "prefix": {"rule": "Host(`r.test`) && PathPrefix(`/api`)"},
    "path": {"rule": "Host(`r.test`) && Path(`/exact`)"},
    "header": {"rule": "Host(`r.test`) && Header(`X-Canary`, `yes`)"},
    "query": {"rule": "Host(`r.test`) && Query(`v`, `beta`)"},
    "pathregexp": {"rule": "Host(`r.test`) && PathRegexp(`^/items/[0-9]+$`)"},
    "method": {"rule": "Host(`r.test`) && Method(`DELETE`)"},
    "hostregexp": {"rule": "HostRegexp(`^[a-z]+\\.regex\\.test$`)"},
    "clientip": {"rule": "Host(`ip.test`) && ClientIP(`127.0.0.0/8`)"},
    "clientip-other": {"rule": "Host(`ip2.test`) && ClientIP(`10.0.0.0/8`)"},
    "not": {"rule": "Host(`not.test`) && !PathPrefix(`/admin`)"},
    "or": {"rule": "Host(`or1.test`) || Host(`or2.test`)"},
    # priority ties are broken by rule length: the longer rule wins
    "short": {"rule": "Host(`len.test`) && PathPrefix(`/`)"},
    "long": {"rule": "Host(`len.test`) && PathPrefix(`/deep`)"},
    # an explicit priority beats rule length
    "prio-low": {"rule": "Host(`prio.test`) && PathPrefix(`/deep/path`)", "priority": 1},
    "prio-high": {"rule": "Host(`prio.test`)", "priority": 100},
    # encoded paths: matching sees the decoded path
    "enc-slash": {"rule": "Host(`enc.test`) && Path(`/a/b`)"},
    "enc-abc": {"rule": "Host(`enc.test`) && Path(`/abc`)"},
    "enc-any": {"rule": "Host(`enc.test`) && PathPrefix(`/`)"},
}


def dynamic(backends: Backends) -> dict[str, Any]:
    routers = {name: {**spec, "service": name, "entryPoints": ["web"]} for name, spec in RULES.items()}
    services = {name: lb(backends[name]) for name in RULES}
    return {"http": {"routers": routers, "services": services}}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, backends: Backends) -> Iterator[Pair]:
    with Pair(tmp_path_factory.mktemp("routing"), backends, {"web": {}}, dynamic(backends)) as p:
        yield p


def get(path: str, host: str, *extra: str, method: str = "GET") -> str:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *extra]
    return "\r\n".join(lines) + "\r\n\r\n"


CASES = [
    case("host", get("/", "example.com")),
    case("host-with-port", get("/p", "example.com:8080")),
    case("host-trailing-dot", get("/", "example.com.")),
    case("host-case-insensitive", get("/", "EXAMPLE.Com")),
    case("path-prefix", get("/api/users?id=1", "r.test")),
    case("path-prefix-not-segment", get("/apiary", "r.test")),
    case("path-exact", get("/exact", "r.test")),
    case("path-exact-longer", get("/exact/more", "r.test")),
    case("header", get("/", "r.test", "X-Canary: yes")),
    case("header-other-value", get("/", "r.test", "X-Canary: no")),
    case("query", get("/?v=beta&x=1", "r.test")),
    case("path-regexp", get("/items/42", "r.test")),
    case("path-regexp-no-match", get("/items/4x", "r.test")),
    case("method", get("/", "r.test", "Content-Length: 0", method="DELETE")),
    case("host-regexp", get("/", "foo.regex.test")),
    case("host-regexp-no-match", get("/", "foo.bar.regex.test")),
    case("client-ip", get("/", "ip.test")),
    case("client-ip-no-match", get("/", "ip2.test")),
    case("not", get("/public", "not.test")),
    case("not-excluded", get("/admin/x", "not.test")),
    case("or", get("/", "or2.test")),
    case("priority-by-length", get("/deep/x", "len.test")),
    case("priority-by-length-short", get("/other", "len.test")),
    case("priority-explicit", get("/deep/path", "prio.test")),
    case("no-match-404", get("/", "nowhere.test")),
    case("encoded-slash", get("/a%2Fb", "enc.test")),
    case("encoded-unreserved", get("/%61bc", "enc.test")),
    case("absolute-form", "GET http://example.com/abs?q=1 HTTP/1.1\r\nHost: other.test\r\n\r\n"),
    case("absolute-form-https", "GET https://example.com/abs HTTP/1.1\r\nHost: example.com\r\n\r\n"),
    case("dot-segments", get("/api/../exact", "r.test")),
    case("double-slash", get("//api/x", "r.test")),
    case("query-repeated-key", get("/?v=alpha&v=beta", "r.test")),
    case("query-encoded-value", get("/?v=b%65ta", "r.test")),
    case("host-regexp-upper-case", get("/", "FOO.Regex.Test")),
    case("empty-host", get("/", "")),
    case("path-regexp-encoded", get("/items/%34%32", "r.test")),
]


@pytest.mark.parametrize("c", CASES)
def test_routing(pair: Pair, c: Case) -> None:
    pair.check(c)
