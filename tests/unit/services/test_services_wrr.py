"""Weighted round robin (EDF) and the service builders' configuration errors."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from ferryman.dynamic.models import LoadBalancer, Server, Weighted, WeightedRef
from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange
from ferryman.services import WeightedRoundRobin, build_load_balancer, build_weighted
from ferryman.upstream import TransportSettings, UpstreamPools


class Named:
    def __init__(self, name: str) -> None:
        self.name = name

    def handle(self, ex: Exchange) -> None:  # pragma: no cover - never called here
        raise AssertionError


def picks(wrr: WeightedRoundRobin, n: int) -> str:
    return "".join(wrr.names[wrr.pick()] for _ in range(n))


def test_equal_weights_alternate() -> None:
    wrr = WeightedRoundRobin("s", [("a", Named("a"), None), ("b", Named("b"), None)])
    assert picks(wrr, 6) == "ababab"


def test_weights_interleave_smoothly() -> None:
    wrr = WeightedRoundRobin("s", [("a", Named("a"), 3), ("b", Named("b"), 1)])
    seq = picks(wrr, 40)
    assert Counter(seq) == {"a": 30, "b": 10}
    assert "bb" not in seq and "aaaaa" not in seq  # float deadlines: ties break like Go


def test_three_way_distribution_is_exact_over_a_period() -> None:
    wrr = WeightedRoundRobin("s", [("a", Named("a"), 5), ("b", Named("b"), 3), ("c", Named("c"), 2)])
    assert Counter(picks(wrr, 100)) == {"a": 50, "b": 30, "c": 20}


def test_non_positive_weights_are_ignored() -> None:
    wrr = WeightedRoundRobin("s", [("a", Named("a"), 0), ("b", Named("b"), -1), ("c", Named("c"), 2)])
    assert wrr.names == ["c"]


def test_load_balancer_builder() -> None:
    pools = UpstreamPools()
    model = LoadBalancer(servers=(Server(url="http://10.0.0.1:8080"), Server(url="http://10.0.0.2", weight=2)))
    lb = build_load_balancer("svc@file", model, TransportSettings(), pools, rng=random.Random(1))
    assert isinstance(lb, WeightedRoundRobin)
    assert sorted(lb.names) == ["http://10.0.0.1:8080", "http://10.0.0.2"]
    assert {p.key for p in pools} == {("http", "10.0.0.1", 8080, "default@internal"),
                                     ("http", "10.0.0.2", 80, "default@internal")}


@pytest.mark.parametrize(("model", "message"), [
    (LoadBalancer(strategy="p2c"), "strategy"),
    (LoadBalancer.model_validate({"sticky": {"cookie": {}}}), "sticky"),
    (LoadBalancer.model_validate({"healthCheck": {"path": "/h"}}), "healthCheck"),
    (LoadBalancer.model_validate({"passiveHealthCheck": {}}), "passiveHealthCheck"),
    (LoadBalancer(servers=(Server(url="ftp://x"),)), "unsupported scheme"),
    (LoadBalancer(servers=(Server(url=""),)), "no url"),
    (LoadBalancer(servers=(Server(url="http://x:notaport"),)), "invalid server URL"),
])
def test_load_balancer_config_errors(model: LoadBalancer, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_load_balancer("svc@file", model, TransportSettings(), UpstreamPools())


def test_https_server_with_unreadable_root_ca_names_the_transport() -> None:
    model = LoadBalancer(servers=(Server(url="https://x"),))
    with pytest.raises(ConfigError, match=r"serversTransport 'tls@file' rootCAs\[0\]: cannot read"):
        build_load_balancer("svc@file", model, TransportSettings(root_cas=("/nonexistent/ca.pem",)),
                            UpstreamPools(), transport_name="tls@file")


def test_weighted_builder_and_missing_child() -> None:
    children = {"a@file": Named("a"), "b@file": Named("b")}
    model = Weighted(services=(WeightedRef(name="a@file", weight=1), WeightedRef(name="b@file", weight=1)))
    w = build_weighted("w@file", model, children, rng=random.Random(0))
    assert isinstance(w, WeightedRoundRobin) and sorted(w.names) == ["a@file", "b@file"]
    bad = Weighted(services=(WeightedRef(name="nope@file"),))
    with pytest.raises(ConfigError, match="nope@file"):
        build_weighted("w@file", bad, children)
