"""ferryman as a user runs it: a real process, Traefik configuration files, real backends."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.conftest import StartFerryman
from tests.support.procs import free_port, http_request, poll_until


def lb(*ports: int) -> dict[str, Any]:
    return {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{p}"} for p in ports]}}


def get(port: int, path: str = "/", host: str = "localhost", headers: dict[str, str] | None = None
        ) -> tuple[int, dict[str, str], bytes]:
    h = {"Host": host, **(headers or {})}
    status, pairs, body = http_request("127.0.0.1", port, path, headers=h)
    return status, {k.lower(): v for k, v in pairs}, body


def raw(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes or ``timeout``."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except TimeoutError:
            pass
        return out


def test_routing_canary_weighted_and_404(ferryman: StartFerryman, hello: Callable[[str], int]) -> None:
    v1, v2 = hello("v1"), hello("v2")
    fm = ferryman(dynamic={"http": {
        "routers": {
            "app": {"rule": "Host(`localhost`)", "service": "v1"},
            "canary": {"rule": "Host(`localhost`) && (Header(`X-Release-Stage`, `canary`) || Query(`v`, `beta`))",
                       "service": "v2"},
            "split": {"rule": "Host(`localhost`) && PathPrefix(`/split`)", "service": "split"},
        },
        "services": {"v1": lb(v1), "v2": lb(v2),
                     "split": {"weighted": {"services": [{"name": "v1", "weight": 3}, {"name": "v2", "weight": 1}]}}},
    }})
    port = fm.ports["web"]
    assert get(port)[2] == b"Hello from v1\n"
    assert get(port, headers={"X-Release-Stage": "canary"})[2] == b"Hello from v2\n"
    assert get(port, "/?v=beta")[2] == b"Hello from v2\n"
    assert get(port, "/?v=alpha")[2] == b"Hello from v1\n"
    bodies = [get(port, "/split")[2] for _ in range(8)]
    assert bodies.count(b"Hello from v1\n") == 6 and bodies.count(b"Hello from v2\n") == 2
    status, _headers, body = get(port, host="unknown.example")
    assert status == 404 and body == b"404 page not found\n"


def test_priorities_longer_rule_wins_and_explicit_priority(ferryman: StartFerryman,
                                                            hello: Callable[[str], int]) -> None:
    a, b = hello("a"), hello("b")
    fm = ferryman(dynamic={"http": {
        "routers": {
            "short": {"rule": "PathPrefix(`/`)", "service": "a"},
            "long": {"rule": "PathPrefix(`/api`)", "service": "b"},
            # explicit priorities beat rule length: the shorter rule wins with the higher number
            "forced": {"rule": "Host(`p`) && PathPrefix(`/xyz`)", "service": "a", "priority": 100},
            "forced-b": {"rule": "Host(`p`) && PathPrefix(`/x`)", "service": "b", "priority": 200},
        },
        "services": {"a": lb(a), "b": lb(b)},
    }})
    port = fm.ports["web"]
    assert get(port, "/api/v1")[2] == b"Hello from b\n"
    assert get(port, "/other")[2] == b"Hello from a\n"
    assert get(port, "/xyz", host="p")[2] == b"Hello from b\n"
    assert get(port, "/xyz")[2] == b"Hello from a\n"  # other host: PathPrefix(`/`) (15) wins


def test_entry_point_redirect_to_https(ferryman: StartFerryman, hello: Callable[[str], int]) -> None:
    backend = hello("v1")
    fm = ferryman(static={"entryPoints": {
        "web": {"address": "127.0.0.1:0", "http": {"redirections": {"entryPoint": {"to": "websecure"}}}},
        "websecure": {"address": "127.0.0.1:0"},
    }}, dynamic={"http": {"routers": {"app": {"rule": "Host(`localhost`)", "service": "v1"}},
                          "services": {"v1": lb(backend)}}})
    status, headers, _ = get(fm.ports["web"], "/path?q=1", host="example.com")
    # Traefik: permanent by default (301 for GET), target port is the websecure entry point's port.
    assert status == 301
    assert headers["location"] == f"https://example.com:{fm.ports['websecure']}/path?q=1"
    post = raw(fm.ports["web"], b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n")
    assert post.startswith(b"HTTP/1.1 308")


def test_forwarded_headers_and_what_the_backend_sees(ferryman: StartFerryman, hello: Callable[[str], int]) -> None:
    backend = hello("v1")
    fm = ferryman(dynamic={"http": {"routers": {"app": {"rule": "PathPrefix(`/`)", "service": "v1"}},
                                    "services": {"v1": lb(backend)}}})
    status, _, body = get(fm.ports["web"], "/echo", host="app.example:8080",
                          headers={"X-Forwarded-For": "6.6.6.6", "X-Real-Ip": "6.6.6.6", "Connection": "close"})
    assert status == 200
    seen = json.loads(body)
    headers = {k.lower(): v for k, v in seen["headers"]}
    assert headers["host"] == "app.example:8080"  # passHostHeader defaults to true
    assert headers["x-forwarded-for"] == "127.0.0.1"  # untrusted client's value dropped
    assert headers["x-real-ip"] == "127.0.0.1"
    assert headers["x-forwarded-host"] == "app.example:8080"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-port"] == "8080"
    assert "x-forwarded-server" in headers


def test_backend_down_is_502_and_malformed_requests_are_400(ferryman: StartFerryman) -> None:
    dead = free_port()
    fm = ferryman(dynamic={"http": {"routers": {"app": {"rule": "PathPrefix(`/`)", "service": "dead"}},
                                    "services": {"dead": lb(dead)}}})
    port = fm.ports["web"]
    assert get(port)[0] == 502
    assert raw(port, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400")
    both = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    assert raw(port, both).startswith(b"HTTP/1.1 400")
    big = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * (1 << 21) + b"\r\n\r\n"
    assert raw(port, big).startswith(b"HTTP/1.1 431")


def test_broken_router_is_disabled_others_keep_serving(ferryman: StartFerryman, hello: Callable[[str], int]) -> None:
    backend = hello("v1")
    fm = ferryman(dynamic={"http": {
        "routers": {"good": {"rule": "Host(`good`)", "service": "v1"},
                    "bad": {"rule": "Host(`bad`) &&", "service": "v1"},
                    "orphan": {"rule": "Host(`orphan`)", "service": "missing"}},
        "services": {"v1": lb(backend)}}})
    assert get(fm.ports["web"], host="good")[0] == 200
    assert get(fm.ports["web"], host="orphan")[0] == 404
    text = "\n".join(fm.raw)
    assert "bad@file" in text and "orphan@file" in text and "missing" in text


def test_live_reload_under_load_fails_no_request(ferryman: StartFerryman, hello: Callable[[str], int]) -> None:
    v1, v2 = hello("v1"), hello("v2")
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}},
              "providers": {"providersThrottleDuration": "0.2s"}}
    fm = ferryman(static=static, start=False)
    fm.static["providers"]["file"] = {"directory": str(fm.dynamic_dir)}
    fm.config_file.write_text(json.dumps(fm.static))
    route = {"http": {"routers": {"app": {"rule": "PathPrefix(`/`)", "service": "s"}},
                      "services": {"s": lb(v1)}}}
    fm.write_dynamic("routes.yml", route)
    fm.start()
    port = fm.ports["web"]

    failures: list[str] = []
    seen: set[bytes] = set()
    stop = threading.Event()

    def load() -> None:
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        while not stop.is_set():
            try:
                conn.request("GET", "/", headers={"Host": "localhost"})
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    failures.append(f"status {resp.status}")
                seen.add(body)
            except Exception as exc:
                failures.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.close()

    workers = [threading.Thread(target=load) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        for i in range(6):
            target = v2 if i % 2 == 0 else v1
            mark = fm.mark()
            changed = time.monotonic()
            fm.write_dynamic("routes.yml", {"http": {"routers": {"app": {"rule": "PathPrefix(`/`)", "service": "s"}},
                                                      "services": {"s": lb(target)}}})
            fm.wait_for(lambda e: e.get("message") == "configuration applied", 5, start=mark)
            assert time.monotonic() - changed < 0.2 + 1.5
            expect = b"Hello from v2\n" if target == v2 else b"Hello from v1\n"
            poll_until(lambda exp=expect: get(port)[2] == exp, 3, what="new backend")  # type: ignore[misc]
    finally:
        stop.set()
        for w in workers:
            w.join()
    assert failures == []
    assert seen == {b"Hello from v1\n", b"Hello from v2\n"}


def test_unparsable_file_keeps_last_good_configuration(ferryman: StartFerryman, hello: Callable[[str], int]) -> None:
    backend = hello("v1")
    fm = ferryman(dynamic={"http": {"routers": {"app": {"rule": "PathPrefix(`/`)", "service": "v1"}},
                                    "services": {"v1": lb(backend)}}})
    mark = fm.mark()
    fm.write_dynamic("routes.yml", "http:\n  routers: [\n")
    ev = fm.wait_for(lambda e: "routes.yml" in str(e.get("message", "")), 5, start=mark)
    assert ev.get("level") in ("error", "ERROR", "ERR")
    assert get(fm.ports["web"])[0] == 200


def test_graceful_shutdown_finishes_in_flight_requests(ferryman: StartFerryman) -> None:
    # A backend that answers after a delay, so the request is in flight when SIGTERM arrives.
    listener = socket.create_server(("127.0.0.1", 0))
    bport = listener.getsockname()[1]
    accepted = threading.Event()

    def slow_backend() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        accepted.set()
        time.sleep(0.5)  # the backend is slow on purpose; the test itself waits on events
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")
        conn.close()

    threading.Thread(target=slow_backend, daemon=True).start()
    fm = ferryman(static={"entryPoints": {"web": {"address": "127.0.0.1:0",
                                                  "transport": {"lifeCycle": {"graceTimeOut": "5s"}}}}},
                  dynamic={"http": {"routers": {"app": {"rule": "PathPrefix(`/`)", "service": "slow"}},
                                    "services": {"slow": lb(bport)}}})
    result: dict[str, Any] = {}

    def client() -> None:
        result["r"] = get(fm.ports["web"])

    t = threading.Thread(target=client)
    t.start()
    assert accepted.wait(5)
    fm.signal(signal.SIGTERM)
    t.join(10)
    assert result["r"][0] == 200 and result["r"][2] == b"done"
    assert fm.wait_exit(15) == 0
    listener.close()


@pytest.mark.parametrize("slow", ["headers", "idle"])
def test_slow_clients_are_cut_off(ferryman: StartFerryman, hello: Callable[[str], int], slow: str) -> None:
    backend = hello("v1")
    fm = ferryman(static={"entryPoints": {"web": {"address": "127.0.0.1:0", "transport": {
        "respondingTimeouts": {"readTimeout": "1s", "idleTimeout": "1s"}}}}},
        dynamic={"http": {"routers": {"app": {"rule": "PathPrefix(`/`)", "service": "v1"}},
                          "services": {"v1": lb(backend)}}})
    with socket.create_connection(("127.0.0.1", fm.ports["web"]), timeout=10) as s:
        if slow == "headers":
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")  # never finishes the head
        started = time.monotonic()
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        assert time.monotonic() - started < 5  # closed by ferryman, not by our timeout


def test_files_added_and_removed_in_watched_directory(ferryman: StartFerryman, hello: Callable[[str], int]) -> None:
    a, b = hello("a"), hello("b")
    fm = ferryman(dynamic={"http": {"routers": {"a": {"rule": "Host(`a`)", "service": "a"}},
                                    "services": {"a": lb(a)}}})
    port = fm.ports["web"]
    assert get(port, host="b")[0] == 404
    extra = fm.write_dynamic("more.toml", '[http.routers.b]\nrule = "Host(`b`)"\nservice = "b"\n'
                                          f'[[http.services.b.loadBalancer.servers]]\nurl = "http://127.0.0.1:{b}"\n')
    poll_until(lambda: get(port, host="b")[2] == b"Hello from b\n", 5, what="file added")
    extra.unlink()
    poll_until(lambda: get(port, host="b")[0] == 404, 5, what="file removed")
    assert get(port, host="a")[2] == b"Hello from a\n"


def test_ping_and_healthcheck_command(ferryman: StartFerryman, hello: Callable[[str], int]) -> None:
    import subprocess

    from tests.support.procs import VENV_BIN

    backend = hello("v1")
    fm = ferryman(static={"entryPoints": {"web": {"address": "127.0.0.1:0"},
                                          "traefik": {"address": "127.0.0.1:0"}},
                          "ping": {}},
                  dynamic={"http": {"routers": {"app": {"rule": "PathPrefix(`/`)", "service": "v1"}},
                                    "services": {"v1": lb(backend)}}})
    status, _, body = get(fm.ports["traefik"], "/ping")
    assert (status, body) == (200, b"OK")
    # The ping router lives on the traefik entry point only.
    assert get(fm.ports["web"], "/ping")[2] == b"Hello from v1\n"
    cfg = fm.workdir / "hc.yml"
    cfg.write_text(f"entryPoints:\n  traefik:\n    address: 127.0.0.1:{fm.ports['traefik']}\nping: {{}}\n")
    ok = subprocess.run([str(VENV_BIN / "ferryman"), "healthcheck", f"--configFile={cfg}"],
                        capture_output=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    fm.stop()
    down = subprocess.run([str(VENV_BIN / "ferryman"), "healthcheck", f"--configFile={cfg}"],
                          capture_output=True, timeout=30)
    assert down.returncode == 1


def test_ping_is_503_until_a_configuration_is_applied(ferryman: StartFerryman) -> None:
    fm = ferryman(static={"entryPoints": {"traefik": {"address": "127.0.0.1:0"}}, "ping": {},
                          "providers": {"file": {"filename": "/nonexistent/ferryman/dynamic.yml"}}},
                  start=False)
    fm.start(wait_config=False)
    fm.wait_for(lambda e: "dynamic.yml" in str(e.get("message", "")), 10)
    assert get(fm.ports["traefik"], "/ping")[0] == 503
