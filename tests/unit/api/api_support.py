"""Build a real snapshot from Traefik files in memory and ask ``api@internal`` for a path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ferryman.api.handler import ApiService
from ferryman.app import App, internal_configuration, merge_settings, static_transport
from ferryman.control.compile import Snapshot, compile_snapshot
from ferryman.dynamic.decode import decode_document
from ferryman.dynamic.merge import merge
from ferryman.http.exchange import ConnInfo, Exchange
from ferryman.http.forwarded import ForwardingPolicy
from ferryman.static import LoadedStatic, StaticConfig
from tests.unit.http.test_http_exchange import FakeDownstream

#: 2026-01-02T03:04:05.5Z, so /api/version is reproducible.
STARTED = 1767323045.5


def load_static(data: dict[str, Any]) -> StaticConfig:
    return StaticConfig.model_validate(data).with_implicit_entry_points()


def build_snapshot(static: StaticConfig, dynamic_yaml: str) -> tuple[App, Snapshot]:
    """Decode, merge and compile as the app does (real builders, no sockets)."""
    app = App(LoadedStatic(config=static, source="test", warnings=[]))
    decoded = decode_document(dynamic_yaml.encode(), source="dynamic.yml", fmt="yaml")
    configs = {"file": decoded.config, "internal": internal_configuration(static)}
    merged = merge(configs, merge_settings(static), rejected={"file": list(decoded.errors)} if decoded.errors else None)
    snapshot = compile_snapshot(merged, list(static.entry_points), app.builders,
                                static_transport=static_transport(static))
    app.snapshot = snapshot
    return app, snapshot


def service_for(static: StaticConfig, snapshot: Snapshot | None) -> ApiService:
    return ApiService(static, lambda: snapshot, started=STARTED)


class Answer:
    def __init__(self, down: FakeDownstream) -> None:
        heads = [c[1] for c in down.calls if c[0] == "head"]
        assert len(heads) == 1, down.calls
        self.status: int = heads[0][0]
        self.headers: dict[str, str] = {n.decode().lower(): v.decode() for n, v in heads[0][1]}
        self.body = b"".join(c[1] for c in down.calls if c[0] == "data")
        assert down.calls[-1][0] == "end"

    def json(self) -> Any:
        import json

        return json.loads(self.body)


def ask(service: ApiService, target: str, method: bytes = b"GET",
        headers: list[tuple[bytes, bytes]] | None = None) -> Answer:
    path, _, query = target.partition("?")
    info = ConnInfo("traefik", "127.0.0.1", 4242, False, ForwardingPolicy(hostname="h"))
    down = FakeDownstream()
    ex = Exchange(info, down, method, target.encode(), path.encode(), query.encode() if "?" in target else None,
                  b"1.1", list(headers or []), b"localhost", 0)
    service.handle(ex)
    return Answer(down)


GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "api"


def golden_inputs() -> tuple[StaticConfig, str]:
    static = load_static(yaml.safe_load((GOLDEN / "traefik.yml").read_text()))
    return static, (GOLDEN / "dynamic.yml").read_text()
