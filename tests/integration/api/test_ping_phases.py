"""``ping@internal`` through a real ferryman process, in its three phases:

1. before the first configuration is applied: 503 (unlike Traefik, which answers 200 at once, so a
   load balancer never sends traffic to a cold instance);
2. serving: ``200 OK`` (``GET`` and ``HEAD``);
3. draining after SIGTERM: ``terminatingStatusCode`` during ``lifeCycle.requestAcceptGraceTimeout``
   (the entry points still accept, the other routes still serve), then the process exits.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from tests.integration.conftest import StartFerryman
from tests.support.procs import http_request, poll_until

LIFECYCLE = {"lifeCycle": {"requestAcceptGraceTimeout": "3s", "graceTimeOut": "1s"}}


def static(providers: dict[str, Any], **ping: Any) -> dict[str, Any]:
    return {
        "entryPoints": {"web": {"address": "127.0.0.1:0", "transport": LIFECYCLE},
                        "traefik": {"address": "127.0.0.1:0", "transport": LIFECYCLE}},
        "ping": ping,
        "providers": providers,
    }


def directory(tmp_path: Path) -> dict[str, Any]:
    return {"file": {"directory": str(tmp_path / "dynamic"), "watch": True}}


DYNAMIC: dict[str, Any] = {"http": {
    "routers": {"noop": {"rule": "Path(`/noop`)", "entryPoints": ["web"], "service": "noop@internal"}},
}}


def status(port: int, path: str = "/ping", method: str = "GET") -> int:
    return http_request("127.0.0.1", port, path, method=method)[0]


def test_ping_before_config_serving_and_draining(ferryman: StartFerryman, tmp_path: Path) -> None:
    # a single file that does not exist yet: the provider has nothing to apply until it is written
    late = {"file": {"filename": str(tmp_path / "dynamic" / "late.yml"), "watch": True}}
    fm = ferryman(static(late, terminatingStatusCode=418), start=False).start(wait_config=False)
    port = fm.ports["traefik"]

    # 1. no configuration applied yet: 503 with a reason, and stays so
    fm.wait_for(lambda e: "file not found" in str(e.get("message", "")))
    code, _, body = http_request("127.0.0.1", port, "/ping")
    assert (code, body) == (503, b"not ready: no configuration applied yet")
    assert status(port, method="HEAD") == 503

    # 2. the first configuration arrives: 200 OK
    mark = fm.mark()
    fm.write_dynamic("late.yml", DYNAMIC)
    fm.wait_for(lambda e: e.get("message") == "configuration applied", start=mark)
    code, _, body = http_request("127.0.0.1", port, "/ping")
    assert (code, body) == (200, b"OK")
    assert status(port, method="HEAD") == 200
    assert status(fm.ports["web"], "/noop") == 200

    # 3. SIGTERM: terminatingStatusCode while the entry points keep accepting for
    # requestAcceptGraceTimeout; ordinary routes still answer meanwhile
    fm.signal(signal.SIGTERM)
    poll_until(lambda: status(port) == 418, 2.5, what="ping answering terminatingStatusCode")
    assert status(fm.ports["web"], "/noop") == 200
    assert fm.wait_exit(15.0) == 0


def test_terminating_status_defaults_to_503(ferryman: StartFerryman, tmp_path: Path) -> None:
    fm = ferryman(static(directory(tmp_path)), DYNAMIC)
    port = fm.ports["traefik"]
    assert status(port) == 200
    fm.signal(signal.SIGTERM)
    poll_until(lambda: status(port) == 503, 2.5, what="ping answering 503 while draining")
    assert fm.wait_exit(15.0) == 0


def test_ping_on_another_entry_point(ferryman: StartFerryman, tmp_path: Path) -> None:
    fm = ferryman(static(directory(tmp_path), entryPoint="web"), DYNAMIC)
    assert status(fm.ports["web"]) == 200
    assert status(fm.ports["traefik"]) == 404


def test_manual_routing_to_ping_internal(ferryman: StartFerryman, tmp_path: Path) -> None:
    fm = ferryman(static(directory(tmp_path), manualRouting=True), {"http": {"routers": {
        "health": {"rule": "Path(`/healthz`)", "entryPoints": ["web"], "service": "ping@internal"}}}})
    assert status(fm.ports["traefik"]) == 404  # no automatic /ping router
    assert status(fm.ports["web"], "/healthz") == 200
