"""Broken middleware references through the real ferryman process: an unknown middleware type, a
reference to a middleware that does not exist and a chain cycle each disable the routers using
them, with an error naming the problem, while the other routers serve."""

from __future__ import annotations

from collections.abc import Callable

from tests.integration.conftest import StartFerryman
from tests.support.procs import http_request


def test_broken_middlewares_disable_only_their_routers(ferryman: StartFerryman, hello: Callable[[str], int]) -> None:
    backend = hello("ok")
    dynamic = {"http": {
        "routers": {
            "good": {"rule": "Host(`good.test`)", "service": "app", "middlewares": ["prefix"]},
            "unknown": {"rule": "Host(`unknown.test`)", "service": "app", "middlewares": ["weird"]},
            "missing": {"rule": "Host(`missing.test`)", "service": "app", "middlewares": ["nope"]},
            "cycle": {"rule": "Host(`cycle.test`)", "service": "app", "middlewares": ["loop-a"]},
        },
        "middlewares": {
            "prefix": {"addPrefix": {"prefix": "/p"}},
            "weird": {"fooBar": {"x": 1}},
            "loop-a": {"chain": {"middlewares": ["loop-b"]}},
            "loop-b": {"chain": {"middlewares": ["loop-a"]}},
        },
        "services": {"app": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{backend}"}]}}},
    }}
    fm = ferryman(None, dynamic)
    port = fm.ports["web"]
    assert http_request("127.0.0.1", port, headers={"Host": "good.test"})[0] == 200
    for host in ("unknown.test", "missing.test", "cycle.test"):
        assert http_request("127.0.0.1", port, headers={"Host": host})[0] == 404, host
    errors = "\n".join(str(e.get("message", "")) + " " + str(e.get("error", "")) for e in fm.lines
                       if str(e.get("level", "")).lower() in ("error", "warning", "warn"))
    assert "fooBar" in errors
    assert "nope" in errors
    assert "cycle" in errors.lower() and "loop-a" in errors
    for router in ("unknown", "missing", "cycle"):
        assert f"{router}@file" in errors, router
