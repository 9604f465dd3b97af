"""Golden JSON for every API endpoint against one known configuration (``traefik.yml`` +
``dynamic.yml``): routers that serve, warn (unknown entry point), fail (rule error, missing service,
a service compile refuses), weighted and load-balancer services, the internal redirect, ping and api
routers, a chain middleware, a user router to ``api@internal``.

The expected files are the responses pretty-printed with their key order kept, so a change of shape
(a key renamed, moved or dropped) shows in the diff. Regenerate after an intended change with
``FERRYMAN_REGEN_GOLDEN=1 pytest tests/golden/api`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.unit.api.api_support import ask, build_snapshot, golden_inputs, service_for

HERE = Path(__file__).parent
EXPECTED = HERE / "expected"
REGEN = os.environ.get("FERRYMAN_REGEN_GOLDEN") == "1"

ENDPOINTS = [
    "overview", "entrypoints", "entrypoints/admin", "http/routers", "http/routers/app@file",
    "http/routers/mirror%40file", "http/services", "http/services/split@file", "http/services/app@file",
    "http/middlewares", "http/middlewares/secured@file", "tcp/routers", "tcp/services", "tcp/middlewares",
    "udp/routers", "udp/services", "certificates", "rawdata", "version",
]


def file_for(endpoint: str) -> Path:
    return EXPECTED / (endpoint.replace("/", "_").replace("%40", "@") + ".json")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_endpoint_matches_golden(endpoint: str) -> None:
    static, dynamic = golden_inputs()
    _app, snapshot = build_snapshot(static, dynamic)
    answer = ask(service_for(static, snapshot), f"/api/{endpoint}")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("application/json")
    text = json.dumps(answer.json(), indent=2, ensure_ascii=False) + "\n"
    path = file_for(endpoint)
    if REGEN:
        path.write_text(text)
    assert text == path.read_text(), f"{endpoint}: differs from {path.name}"


def test_every_golden_file_is_checked() -> None:
    assert {p.name for p in EXPECTED.glob("*.json")} == {file_for(e).name for e in ENDPOINTS}
