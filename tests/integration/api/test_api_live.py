"""The API through a real ferryman process: ``api.insecure`` on the ``traefik`` entry point, and a
user router to ``api@internal`` on another entry point carrying a middleware; live reload shows in
the API."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.integration.conftest import StartFerryman
from tests.support.procs import http_request, poll_until


def get(port: int, path: str, host: str = "localhost") -> tuple[int, dict[str, str], bytes]:
    status, pairs, body = http_request("127.0.0.1", port, path, headers={"Host": host})
    return status, {k.lower(): v for k, v in pairs}, body


STATIC: dict[str, Any] = {
    "entryPoints": {"web": {"address": "127.0.0.1:0"}, "admin": {"address": "127.0.0.1:0"},
                    "traefik": {"address": "127.0.0.1:0"}},
    "api": {"insecure": True, "dashboard": False},
}

DYNAMIC: dict[str, Any] = {"http": {
    "routers": {
        "app": {"rule": "Host(`app.example`)", "entryPoints": ["web"], "service": "app"},
        "broken": {"rule": "Host(`b.example`", "entryPoints": ["web"], "service": "app"},
        "api-ok": {"rule": "Host(`api.local`)", "entryPoints": ["admin"], "service": "api@internal",
                   "middlewares": ["loopback-only"]},
        "api-denied": {"rule": "Host(`denied.local`)", "entryPoints": ["admin"], "service": "api@internal",
                       "middlewares": ["office-only"]},
    },
    "services": {"app": {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:1"}]}}},
    "middlewares": {"loopback-only": {"ipAllowList": {"sourceRange": ["127.0.0.1/32"]}},
                    "office-only": {"ipAllowList": {"sourceRange": ["10.0.0.0/8"]}}},
}}


def test_insecure_api_on_the_traefik_entry_point(ferryman: StartFerryman) -> None:
    fm = ferryman(STATIC, DYNAMIC)
    port = fm.ports["traefik"]
    status, headers, body = get(port, "/api/http/routers?status=disabled")
    assert status == 200 and headers["content-type"] == "application/json"
    assert headers["x-next-page"] == "1"
    routers = json.loads(body)
    assert [r["name"] for r in routers] == ["broken@file"]
    assert routers[0]["status"] == "disabled" and "rule is invalid" in routers[0]["error"][0]

    status, _, body = get(port, "/api/http/routers/api%40internal")
    assert status == 200
    api_router = json.loads(body)
    assert api_router["rule"] == "PathPrefix(`/api`)" and api_router["using"] == ["traefik"]

    status, headers, body = get(port, "/api/http/services/nope@file")
    assert (status, body) == (404, b'{"message":"service not found: nope@file"}\n')
    overview = json.loads(get(port, "/api/overview")[2])
    assert overview["http"]["routers"] == {"total": 5, "warnings": 0, "errors": 1}
    assert overview["providers"] == ["File"]
    # only /api is routed to the API on the traefik entry point, and the API is not on the others
    assert get(port, "/other")[0] == 404
    assert get(fm.ports["web"], "/api/overview")[0] == 404


def test_user_router_to_api_internal_with_a_middleware(ferryman: StartFerryman) -> None:
    fm = ferryman({**STATIC, "api": {"dashboard": False}}, DYNAMIC)
    admin = fm.ports["admin"]
    status, _, body = get(admin, "/api/entrypoints/admin", host="api.local")
    assert status == 200
    assert json.loads(body) == {
        "address": "127.0.0.1:0",
        "transport": {"lifeCycle": {"graceTimeOut": "10s"},
                      "respondingTimeouts": {"readTimeout": "1m0s", "idleTimeout": "3m0s"}},
        "forwardedHeaders": {}, "http": {"sanitizePath": True, "maxHeaderBytes": 1048576},
        "http2": {"maxConcurrentStreams": 250, "maxDecoderHeaderTableSize": 4096,
                  "maxEncoderHeaderTableSize": 4096},
        "udp": {"timeout": "3s"}, "name": "admin"}
    # the middleware on the user's router applies: 127.0.0.1 is not in 10.0.0.0/8
    assert get(admin, "/api/overview", host="denied.local")[0] == 403
    # without api.insecure there is no internal api router
    names = [r["name"] for r in json.loads(get(admin, "/api/http/routers", host="api.local")[2])]
    assert "api@internal" not in names and "api-ok@file" in names

    # a reload is visible on the next request (views are rebuilt for the new snapshot)
    mark = fm.mark()
    fm.write_dynamic("routes.yml", {"http": {**DYNAMIC["http"], "routers": {
        **DYNAMIC["http"]["routers"], "extra": {"rule": "Host(`x.example`)", "service": "app"}}}})
    fm.wait_for(lambda e: e.get("message") == "configuration applied", start=mark)
    assert poll_until(lambda: get(admin, "/api/http/routers/extra@file", host="api.local")[0] == 200, 5.0)


def test_debug_endpoints_on_the_traefik_entry_point(ferryman: StartFerryman) -> None:
    fm = ferryman({**STATIC, "api": {"insecure": True, "dashboard": False, "debug": True}}, DYNAMIC)
    port = fm.ports["traefik"]
    status, headers, body = get(port, "/debug/vars")
    assert status == 200 and headers["content-type"] == "application/json; charset=utf-8"
    assert json.loads(body)["tasks"] >= 1
    tasks = json.loads(get(port, "/debug/tasks")[2])
    assert "provider-file" in {t["name"] for t in tasks}
    # only the api and debug prefixes are routed to api@internal
    assert get(port, "/debug")[0] == 404
    assert get(fm.ports["web"], "/debug/vars")[0] == 404


def test_cpu_profile_while_serving(ferryman: StartFerryman, hello: Callable[[str], int]) -> None:
    """The profile samples from its own thread: requests keep being served at once meanwhile, and
    the answer shows where the loop spent its time (ferryman's HTTP/1.1 code under load)."""
    backend = hello("app")
    dynamic = {"http": {"routers": {"app": {"rule": "Host(`app.example`)", "entryPoints": ["web"], "service": "app"}},
                        "services": {"app": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{backend}"}]}}}}}
    fm = ferryman({**STATIC, "api": {"insecure": True, "dashboard": False, "debug": True}}, dynamic)
    result: list[tuple[int, dict[str, str], bytes]] = []
    profiler = threading.Thread(target=lambda: result.append(
        get(fm.ports["traefik"], "/debug/pprof/profile?seconds=1.5")))
    profiler.start()
    slowest = 0.0
    served = 0
    end = time.monotonic() + 1.2
    while time.monotonic() < end:
        started = time.monotonic()
        assert get(fm.ports["web"], "/", host="app.example")[0] == 200
        slowest = max(slowest, time.monotonic() - started)
        served += 1
    profiler.join(10.0)
    assert served > 20 and slowest < 0.5, (served, slowest)
    ((status, headers, body),) = result
    text = body.decode()
    assert status == 200 and headers["content-type"] == "text/plain; charset=utf-8"
    assert text.startswith("CPU profile of the event loop thread: ")
    assert "ferryman/server/h1.py" in text  # busy samples in the request path
    # bounded: at most 300 s
    assert get(fm.ports["traefik"], "/debug/pprof/profile?seconds=301")[0] == 400
