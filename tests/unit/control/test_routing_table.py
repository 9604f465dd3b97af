"""The routing table: Traefik's order, host index equivalent to a linear scan, build cost."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferryman.control.routing import PREMERGE_LIMIT, RouteEntry, RoutingTable, build_routing_table
from ferryman.dynamic.decode import decode_document
from ferryman.dynamic.merge import (
    MAX_INT,
    MAX_USER_PRIORITY,
    EntryPointInfo,
    MergeSettings,
    RouterInfo,
    merge,
)
from ferryman.dynamic.models import Configuration
from ferryman.rules import CompiledRule, HostConstraint, compile_rule

CONFORMANCE = Path("/work/shared/conformance/priority.json")
if not CONFORMANCE.exists():  # a checkout elsewhere: look next to the repository
    CONFORMANCE = Path(__file__).resolve().parents[4] / "shared" / "conformance" / "priority.json"


@dataclass
class Req:
    """A minimal MatchRequest."""

    host: str = ""
    path: str = "/"
    method: str = "GET"
    query: str = ""
    client_ip: str = "192.0.2.1"
    headers: dict[str, list[str]] = field(default_factory=dict)

    def header_values(self, name: str) -> Sequence[str]:
        return self.headers.get(name.lower(), [])


def table_for(routers: Sequence[RouterInfo]) -> RoutingTable[RouterInfo]:
    entries = []
    for r in routers:
        assert r.rule is not None
        entries.append(RouteEntry(r.name, r.rule, r.priority, r.provider_rank, r))
    return build_routing_table(entries)


# --------------------------------------------------------------------------------------------
# Conformance: Traefik's ordering cases through merge + routing


def _conformance() -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(CONFORMANCE.read_text()))


def _ordering_cases() -> list[dict[str, Any]]:
    if not CONFORMANCE.exists():
        return []
    return [c for c in _conformance()["ordering_cases"] if c["kind"] in ("http", "http-router-manager")]


def _provider_configs(case: dict[str, Any]) -> dict[str, Configuration]:
    raw: dict[str, dict[str, Any]] = {}
    for route in case["routes"]:
        name = route["name"]
        provider = route.get("provider") or "file"
        if "@" in name:
            name, provider = name.split("@", 1)
        router: dict[str, Any] = {"rule": route["rule"], "service": "svc", "entryPoints": ["web"]}
        if route.get("priority") is not None:
            router["priority"] = route["priority"]
        http = raw.setdefault(provider, {"http": {"routers": {}, "services": {
            "svc": {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:1"}]}}}}})["http"]
        http["routers"][name] = router
    out = {}
    for provider, doc in raw.items():
        decoded = decode_document(json.dumps(doc), source=f"{provider}.yml", fmt="yaml")
        assert decoded.errors == []
        out[provider] = decoded.config
    return out


@pytest.mark.parametrize("case", _ordering_cases(), ids=lambda c: c["source"].split(":", 1)[1])
def test_traefik_ordering_cases(case: dict[str, Any]) -> None:
    settings_ = MergeSettings(entry_points=(EntryPointInfo("web", port=80),),
                              precedence=tuple(case["providers_precedence"]))
    merged = merge(_provider_configs(case), settings_)
    for route in case["routes"]:
        if route.get("effective_priority") is not None:
            name = route["name"] if "@" in route["name"] else f"{route['name']}@{route.get('provider') or 'file'}"
            assert merged.routers[name].priority == route["effective_priority"]
    table = table_for(merged.routers_on("web", tls=False))
    assert len(table) == len(case["routes"])
    request = case["request"]
    winner = table.match(Req(host=request.get("host", ""), path=request["path"], method=request["method"]))
    assert winner is not None
    if "expected_winner" in case:
        provider = next((r.get("provider") or "file") for r in case["routes"] if r["name"] == case["expected_winner"])
        assert winner.name == f"{case['expected_winner']}@{provider}"
    else:
        assert winner.target.provider == case["expected_winner_provider"]


def test_there_are_conformance_cases() -> None:
    if not CONFORMANCE.exists():
        pytest.skip("conformance data not available")
    assert len(_ordering_cases()) == 16


def test_traefik_max_priority_case() -> None:
    if CONFORMANCE.exists():
        case = next(c for c in _conformance()["max_priority_cases"] if c["kind"] == "http")
        assert case["router"] == "bar" and case["rule"] == "Host(`foo.bar`)"
    doc = {"http": {"routers": {"bar": {"rule": "Host(`foo.bar`)", "service": "noop@internal",
                                        "priority": MAX_INT}}}}
    config = decode_document(json.dumps(doc), source="x.yml", fmt="yaml").config
    merged = merge({"file": config, "internal": config}, MergeSettings(entry_points=(EntryPointInfo("web"),)))
    bar = merged.routers["bar@file"]
    assert bar.status == "disabled"
    assert bar.errors == (f"the router priority {MAX_INT} exceeds the max user-defined priority "
                          f"{MAX_USER_PRIORITY} (fix: use a lower priority)",)
    # Not applied to routers named *@internal.
    assert merged.routers["bar@internal"].status == "enabled"
    table = table_for(merged.routers_on("web", tls=False))
    hit = table.match(Req(host="foo.bar"))
    assert hit is not None and hit.name == "bar@internal"


# --------------------------------------------------------------------------------------------
# Basic behaviour


def entry(name: str, rule: str, priority: int = 0, rank: int = 0) -> RouteEntry[str]:
    compiled = compile_rule(rule)
    return RouteEntry(name, compiled, priority or compiled.priority, rank, name)


def test_host_routes_wildcards_and_hostless_routes() -> None:
    table = build_routing_table([
        entry("exact", "Host(`a.example.com`)"),
        entry("wild", "Host(`*.example.com`)"),
        entry("api", "PathPrefix(`/api`)", priority=100),
        entry("fallback", "PathPrefix(`/`)", priority=1),
    ])
    def name(req: Req) -> str | None:
        hit = table.match(req)
        return hit.name if hit else None
    assert name(Req(host="a.example.com")) == "exact"
    assert name(Req(host="b.example.com")) == "wild"
    assert name(Req(host="a.example.com", path="/api/x")) == "api"
    assert name(Req(host="x.b.example.com")) == "fallback"  # a wildcard covers one label only
    assert name(Req(host="example.com")) == "fallback"
    assert name(Req(host="")) == "fallback"
    assert len(table) == 4
    assert [e.name for e in table.entries()] == ["api", "exact", "wild", "fallback"]


def test_no_match_is_none() -> None:
    table = build_routing_table([entry("a", "Host(`a.test`)")])
    assert table.match(Req(host="b.test")) is None
    assert build_routing_table([]).match(Req(host="a.test")) is None


def test_ties_break_on_provider_rank_then_name() -> None:
    table = build_routing_table([
        entry("b", "Host(`x.test`)", rank=1),
        entry("c", "Host(`x.test`)", rank=0),
        entry("a", "Host(`x.test`)", rank=1),
    ])
    assert [e.name for e in table.entries()] == ["c", "a", "b"]
    hit = table.match(Req(host="x.test"))
    assert hit is not None and hit.name == "c"


def test_route_listed_under_a_host_and_its_parent_is_tried_once() -> None:
    calls: list[str] = []

    @dataclass(frozen=True)
    class Counting:
        hosts: HostConstraint | None

        def match(self, req: Any) -> bool:
            calls.append(req.host)
            return False

    rule = cast(CompiledRule, Counting(HostConstraint(exact=frozenset({"a.x"}), wildcard_parents=frozenset({"x"}))))
    many = [RouteEntry(f"h{i}", cast(CompiledRule, Counting(None)), 1, 0, "") for i in range(PREMERGE_LIMIT + 5)]
    for extra in ([], many):
        calls.clear()
        table = build_routing_table([RouteEntry("both", rule, 50, 0, ""), *extra])
        assert table.match(Req(host="a.x")) is None
        assert len(calls) == 1 + len(extra)


def test_large_candidate_sets_walk_in_routing_order() -> None:
    # Host routes above all host-less ones (lists walked one after the other), and host-less
    # routes interleaved with host routes (merged while walking): both in exact routing order.
    n = PREMERGE_LIMIT * 2
    for hostless_priority in (1, 10):
        entries = [RouteEntry(f"h{i:03d}", cast(CompiledRule, FakeRule(HostConstraint(frozenset({"a.x"})),
                                                                          frozenset({"/"}))), 5 + i % 10, 0, i)
                   for i in range(n)]
        entries += [RouteEntry(f"n{i:03d}", cast(CompiledRule, FakeRule(None, frozenset({"/"}))),
                               hostless_priority, 0, n + i) for i in range(n)]
        table = build_routing_table(entries)
        walked = [e.name for e in table.candidates("a.x")]
        assert walked == [e.name for e in table.entries()]
        assert [e.name for e in table.candidates("b.x")] == [f"n{i:03d}" for i in range(n)]


# --------------------------------------------------------------------------------------------
# Property: the index gives the same winner as a linear scan over the sorted routes


HOSTS = ["a.example.com", "b.example.com", "example.com", "x.a.example.com", "other.org", "a.other.org", ""]
PARENTS = ["example.com", "a.example.com", "other.org", "org"]
PATHS = ["/", "/a", "/b"]


@dataclass(frozen=True)
class FakeRule:
    """A rule that honours the HostConstraint contract and adds a path condition."""

    hosts: HostConstraint | None
    paths: frozenset[str]
    text: str = ""

    def match(self, req: Any) -> bool:
        if self.hosts is not None:
            host: str = req.host
            dot = host.find(".")
            if host not in self.hosts.exact and not (dot >= 0 and host[dot + 1:] in self.hosts.wildcard_parents):
                return False
        return req.path in self.paths


route_specs = st.tuples(
    st.one_of(st.none(), st.tuples(st.frozensets(st.sampled_from(HOSTS[:-1]), max_size=2),
                                   st.frozensets(st.sampled_from(PARENTS), max_size=2))),
    st.frozensets(st.sampled_from(PATHS), min_size=1),
    st.integers(min_value=-2, max_value=6),
    st.integers(min_value=0, max_value=2),
)


def naive(entries: Sequence[RouteEntry[int]], req: Req) -> RouteEntry[int] | None:
    for e in sorted(entries, key=lambda e: (-e.priority, e.provider_rank, e.name)):
        if e.rule.match(req):
            return e
    return None


@settings(max_examples=300, deadline=None)
@given(st.lists(route_specs, max_size=80), st.lists(st.tuples(st.sampled_from(HOSTS), st.sampled_from(PATHS)),
                                                     min_size=1, max_size=10))
def test_index_agrees_with_linear_scan(specs: list[Any], requests: list[tuple[str, str]]) -> None:
    entries = []
    for i, (hosts, paths, priority, rank) in enumerate(specs):
        constraint = None if hosts is None else HostConstraint(exact=hosts[0], wildcard_parents=hosts[1])
        rule = cast(CompiledRule, FakeRule(constraint, paths))
        entries.append(RouteEntry(f"r{i:02d}", rule, priority, rank, i))
    table = build_routing_table(entries)
    assert [e.name for e in table.entries()] == [e.name for e in sorted(
        entries, key=lambda e: (-e.priority, e.provider_rank, e.name))]
    for host, path in requests:
        req = Req(host=host, path=path)
        assert table.match(req) is naive(entries, req)


# --------------------------------------------------------------------------------------------
# Cost


def test_build_time_for_ten_thousand_host_routers() -> None:
    hosts = [entry(f"r{i}", f"Host(`svc{i}.example.com`)") for i in range(10_000)]
    hostless = [entry(f"p{i}", f"PathPrefix(`/p{i}/`)") for i in range(1_000)]
    wild = [entry(f"w{i}", f"Host(`*.example.com`) && PathPrefix(`/w{i}/`)") for i in range(100)]
    for label, entries in (("10k Host", hosts), ("10k Host + 1k host-less + 100 wildcard", hosts + hostless + wild)):
        start = time.perf_counter()
        table = build_routing_table(entries)
        elapsed = time.perf_counter() - start
        print(f"build_routing_table({label}): {elapsed * 1000:.1f} ms")
        assert elapsed < 5.0  # sanity bound only; expect tens of milliseconds
        hit = table.match(Req(host="svc9999.example.com"))
        assert hit is not None and hit.name == "r9999"
    hit = table.match(Req(host="svc5.example.com", path="/w7/x"))
    # Wildcard rule is longer (higher default priority) than the plain Host rule.
    assert hit is not None and hit.name == "w7"
    hit = table.match(Req(host="unknown.test", path="/p999/"))
    assert hit is not None and hit.name == "p999"
