"""compile_snapshot as a pure function: fake builders, no sockets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ferryman.control.compile import Builders, Snapshot, compile_snapshot
from ferryman.dynamic.decode import decode_document
from ferryman.dynamic.merge import EntryPointInfo, MergeSettings, merge
from ferryman.dynamic.models import LoadBalancer, Middleware, ServersTransport, Weighted
from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange


@dataclass
class Fake:
    label: str
    children: list[Any] = field(default_factory=list)

    def handle(self, ex: Exchange) -> None:  # pragma: no cover - never called here
        raise AssertionError


class Counting:
    def __init__(self) -> None:
        self.lb_builds = 0

    def builders(self) -> Builders:
        def lb(name: str, model: LoadBalancer, tname: str, transport: ServersTransport) -> Fake:
            self.lb_builds += 1
            if any("refuse" in s.url for s in model.servers):
                raise ConfigError("https servers are not implemented yet")
            return Fake(f"lb:{name}:{tname}")

        def weighted(name: str, model: Weighted, children: Mapping[str, Any]) -> Fake:
            return Fake(f"w:{name}", list(children.values()))

        def middleware(name: str, model: Middleware, nxt: Any) -> Fake:
            return Fake(f"mw:{name}", [nxt])

        return Builders(load_balancer=lb, weighted=weighted, middleware=middleware,
                        internal={"noop@internal": Fake("noop")})


def compile_yaml(text: str, counting: Counting, previous: Snapshot | None = None) -> Snapshot:
    decoded = decode_document(text, source="dyn.yml", fmt="yaml")
    settings = MergeSettings(entry_points=(EntryPointInfo(name="web", port=80),))
    merged = merge({"file": decoded.config}, settings)
    return compile_snapshot(merged, ["web"], counting.builders(), previous=previous)


class Req:
    method = "GET"
    path = "/"
    query = ""
    client_ip = "127.0.0.1"

    def __init__(self, host: str) -> None:
        self.host = host

    def header_values(self, name: str) -> list[str]:
        return []


DYN = """
http:
  routers:
    app: {rule: "Host(`a`)", service: split, middlewares: [to-https]}
    broken: {rule: "Host(`b`)", service: refused}
  middlewares:
    to-https: {redirectScheme: {scheme: https}}
  services:
    v1: {loadBalancer: {servers: [{url: "http://127.0.0.1:1"}]}}
    v2: {loadBalancer: {servers: [{url: "http://127.0.0.1:2"}]}}
    split: {weighted: {services: [{name: v1, weight: 3}, {name: v2, weight: 1}]}}
    refused: {loadBalancer: {servers: [{url: "http://refuse:1"}]}}
"""


def test_chains_wrap_services_and_a_refused_service_disables_only_its_router() -> None:
    snap = compile_yaml(DYN, Counting())
    entry = snap.table("web").match(Req("a"))
    assert entry is not None and entry.name == "app@file"
    handler = entry.target
    assert isinstance(handler, Fake) and handler.label == "mw:to-https@file"
    split = handler.children[0]
    assert split.label == "w:split@file"
    assert [c.label for c in split.children] == ["lb:v1@file:default@internal", "lb:v2@file:default@internal"]
    assert snap.table("web").match(Req("b")) is None
    assert "refused@file" in snap.disabled and "broken@file" in snap.disabled
    assert "https servers are not implemented yet" in snap.disabled["refused@file"]
    assert any(d.name == "broken@file" and d.level == "error" for d in snap.diagnostics)


def test_unchanged_load_balancers_are_reused_across_compiles() -> None:
    counting = Counting()
    first = compile_yaml(DYN, counting)
    builds = counting.lb_builds
    second = compile_yaml(DYN.replace("http://127.0.0.1:2", "http://127.0.0.1:3"), counting, previous=first)
    assert counting.lb_builds == builds + 2  # v2 changed, refused is retried; v1 reused
    e1, e2 = first.table("web").match(Req("a")), second.table("web").match(Req("a"))
    assert e1 is not None and e2 is not None
    t1, t2 = e1.target, e2.target
    assert isinstance(t1, Fake) and isinstance(t2, Fake)
    assert t1.children[0].children[0] is t2.children[0].children[0]  # v1: the very same handler
    assert t1.children[0].children[1] is not t2.children[0].children[1]  # v2 was rebuilt


def test_https_routers_are_served_on_the_tls_side_only() -> None:
    snap = compile_yaml(DYN.replace('service: split, middlewares', 'tls: {}, service: split, middlewares'),
                        Counting())
    assert snap.table("web").match(Req("a")) is None
    entry = snap.table("web", tls=True).match(Req("a"))
    assert entry is not None and entry.name == "app@file"
    assert "web" in snap.tls  # the entry point peeks ClientHellos and terminates TLS
