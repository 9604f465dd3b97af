"""Weighted canary: the sequence of backend picks for a 3:1 split, request by request.

Both proxies start fresh, and nothing else reaches these services, so the sequences must match
from the first request (Traefik's weighted round robin is deterministic).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.oracle.harness import TRAEFIK, TRAEFIK_MISSING, Backends, Case, Pair, case, lb

pytestmark = [pytest.mark.oracle, pytest.mark.skipif(TRAEFIK is None, reason=TRAEFIK_MISSING)]


def dynamic(backends: Backends) -> dict[str, Any]:
    stable, canary = backends["stable"], backends["canary"]
    return {"http": {
        "routers": {
            "split": {"rule": "Host(`split.test`)", "service": "split", "entryPoints": ["web"]},
            "servers": {"rule": "Host(`servers.test`)", "service": "servers", "entryPoints": ["web"]},
        },
        "services": {
            "stable": lb(stable),
            "canary": lb(canary),
            "split": {"weighted": {"services": [{"name": "stable", "weight": 3}, {"name": "canary", "weight": 1}]}},
            # the same split between the servers of one load balancer
            "servers": {"loadBalancer": {"servers": [{"url": stable.url, "weight": 3},
                                                     {"url": canary.url, "weight": 1}]}},
        },
    }}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, backends: Backends) -> Iterator[Pair]:
    with Pair(tmp_path_factory.mktemp("weighted"), backends, {"web": {}}, dynamic(backends)) as p:
        yield p


def get(host: str) -> str:
    return f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n"


CASES = [
    case("weighted-service-3-to-1", get("split.test"), repeat=8),
    case("load-balancer-server-weights-3-to-1", get("servers.test"), repeat=8),
]


@pytest.mark.parametrize("c", CASES)
def test_weighted(pair: Pair, c: Case) -> None:
    pair.check(c)
