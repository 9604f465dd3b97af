"""ferryman watching a real Docker engine: labels become routes, and container events change them.

Backends are ``examples/hello.py`` in containers (``--network host``, each on its own 127.0.0.1
port); ferryman talks to the test's own ``dockerd`` over its unix socket (or TCP). Routes are
probed through ferryman's ``web`` entry point with a ``Host`` header.
"""

from __future__ import annotations

import datetime
import itertools
import json
import os
import shutil
import signal
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.docker.conftest import Containers, docker_static, import_test_image
from tests.integration.tls.pki import CA
from tests.support.acme import acme_resolver, served_chain, wait_https
from tests.support.dockerd import Dockerd, short_tmpdir, skip_reason, start_dockerd
from tests.support.ferryman import Ferryman
from tests.support.pebble import PebbleFactory
from tests.support.procs import ProcessGroup, free_port, http_request, poll_until

StartFerryman = Callable[..., Ferryman]


def get(fm: Ferryman, host: str, path: str = "/", timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    status, headers, body = http_request("127.0.0.1", fm.ports["web"], path, headers={"Host": host},
                                         timeout=timeout)
    return status, {k.lower(): v for k, v in headers}, body


def served_by(fm: Ferryman, host: str) -> str | None:
    status, headers, _ = get(fm, host)
    return headers.get("x-served-by") if status == 200 else None


def api(fm: Ferryman, path: str) -> tuple[int, Any]:
    status, _, body = http_request("127.0.0.1", fm.ports["traefik"], path, timeout=5)
    return status, json.loads(body) if body else None


def wait_served(fm: Ferryman, host: str, name: str, deadline: float = 15.0) -> None:
    poll_until(lambda: served_by(fm, host) == name, deadline, what=f"{host} served by {name}")


def wait_gone(fm: Ferryman, host: str, deadline: float = 15.0) -> float:
    """Poll until ``host`` is answered 404 (no route); returns the wall-clock time it was seen."""
    poll_until(lambda: get(fm, host, timeout=0.3)[0] == 404, deadline, interval=0.01, what=f"{host} to have no route")
    return time.time()


def finished_at(engine: Dockerd, ident: str) -> float:
    """When the container's process ended (``State.FinishedAt``, the ``die`` event's time)."""
    raw = str(engine.inspect(ident)["State"]["FinishedAt"])
    stamp, _, frac = raw.rstrip("Z").partition(".")
    whole = datetime.datetime.fromisoformat(stamp).replace(tzinfo=datetime.UTC).timestamp()
    return whole + float("0." + (frac or "0"))


def host_label(router: str, host: str) -> dict[str, str]:
    return {f"traefik.http.routers.{router}.rule": f"Host(`{host}`)"}


def port_label(service: str, port: int) -> dict[str, str]:
    return {f"traefik.http.services.{service}.loadbalancer.server.port": str(port)}


def test_stop_removes_the_route_within_2s_and_start_brings_it_back(
        engine: Dockerd, containers: Containers, start_ferryman: StartFerryman) -> None:
    name = containers.name("go")
    port = free_port()
    ident, _ = containers.run(name, {**host_label("go", "go.test"), **port_label("go", port),
                                      "traefik.http.routers.go.entrypoints": "web"}, port=port)
    fm = start_ferryman(docker_static(engine.endpoint))
    wait_served(fm, "go.test", name)

    engine.run("stop", "-t", "5", ident)
    seen = wait_gone(fm, "go.test")
    latency = seen - finished_at(engine, ident)
    print(f"route removed {latency:.3f}s after the container died")
    assert latency < 2.0, f"route removed {latency:.2f}s after the container died"

    engine.run("start", ident)
    wait_served(fm, "go.test", name)

    engine.run("pause", ident)
    wait_gone(fm, "go.test", deadline=5)
    engine.run("unpause", ident)
    wait_served(fm, "go.test", name, deadline=5)


def test_two_replicas_are_both_served_round_robin(
        engine: Dockerd, containers: Containers, start_ferryman: StartFerryman) -> None:
    names = [containers.name("rr"), containers.name("rr")]
    for name in names:
        port = free_port()
        containers.run(name, {**host_label("rr", "rr.test"), **port_label("rr", port)}, port=port)
    fm = start_ferryman(docker_static(engine.endpoint))
    poll_until(lambda: served_by(fm, "rr.test"), 15, what="rr.test served")
    seen = [served_by(fm, "rr.test") for _ in range(6)]
    assert set(seen) == set(names)
    assert all(a != b for a, b in itertools.pairwise(seen)), seen  # alternates
    status, service = api(fm, "/api/http/services/rr@docker")
    assert status == 200 and len(service["loadBalancer"]["servers"]) == 2


def test_default_rule_and_traefik_enable_false(
        engine: Dockerd, containers: Containers, start_ferryman: StartFerryman) -> None:
    shown = containers.name("shown")
    hidden = containers.name("hidden")
    p1, p2 = free_port(), free_port()
    containers.run(shown, port_label("x", p1), port=p1)
    containers.run(hidden, {**port_label("y", p2), **host_label("y", "hidden.test"), "traefik.enable": "false"},
                   port=p2)
    fm = start_ferryman(docker_static(engine.endpoint, docker={
        "defaultRule": 'Host(`{{ normalize .ContainerName }}.{{ index .Labels "zone" | default "docker" }}.test`)'}))
    wait_served(fm, f"{shown}.docker.test", shown)
    assert get(fm, "hidden.test")[0] == 404
    status, _ = api(fm, "/api/http/routers/y@docker")
    assert status == 404


def test_exposed_by_default_false_and_constraints(
        engine: Dockerd, containers: Containers, start_ferryman: StartFerryman) -> None:
    plain, blue, red = containers.name("plain"), containers.name("blue"), containers.name("red")
    pp, pb, pr = free_port(), free_port(), free_port()
    containers.run(plain, {**host_label("plain", "plain.test"), **port_label("plain", pp)}, port=pp)
    containers.run(blue, {**host_label("blue", "blue.test"), **port_label("blue", pb), "traefik.enable": "true",
                          "team": "blue"}, port=pb)
    containers.run(red, {**host_label("red", "red.test"), **port_label("red", pr), "traefik.enable": "true",
                         "team": "red"}, port=pr)
    fm = start_ferryman(docker_static(engine.endpoint, docker={
        "exposedByDefault": False, "constraints": 'Label(`team`, `blue`) || LabelRegex(`team`, `^gr.*`)'}))
    wait_served(fm, "blue.test", blue)
    assert get(fm, "plain.test")[0] == 404  # not enabled
    assert get(fm, "red.test")[0] == 404  # filtered by the constraints
    status, routers = api(fm, "/api/http/routers?search=test")
    assert status == 200 and [r["name"] for r in routers] == ["blue@docker"]


def test_a_bad_label_disables_only_its_element(
        engine: Dockerd, containers: Containers, start_ferryman: StartFerryman) -> None:
    bad, good = containers.name("bad"), containers.name("good")
    pb, pg = free_port(), free_port()
    containers.run(bad, {**host_label("bad", "bad.test"), **port_label("bad", pb),
                         "traefik.http.routers.bad.priority": "high",
                         "traefik.http.routers.fine.rule": "Host(`fine.test`)",
                         "traefik.http.routers.fine.service": "bad"}, port=pb)
    containers.run(good, {**host_label("good", "good.test"), **port_label("good", pg)}, port=pg)
    fm = start_ferryman(docker_static(engine.endpoint))
    wait_served(fm, "good.test", good)
    wait_served(fm, "fine.test", bad)  # the same container's other router still serves
    assert get(fm, "bad.test")[0] == 404
    status, router = api(fm, "/api/http/routers/bad@docker")
    assert status == 200 and router["status"] == "disabled"
    message = " ".join(router["error"])
    assert f"container '{bad}'" in message and "priority" in message, message
    ev = fm.wait_for(lambda e: e.get("level") == "error" and f"container '{bad}'" in str(e.get("message"))
                     and "priority" in str(e.get("message")), 5)
    assert "bad@docker" in str(ev.get("message"))


def test_health_status_events_are_honoured(
        engine: Dockerd, containers: Containers, start_ferryman: StartFerryman) -> None:
    name = containers.name("health")
    port = free_port()
    check = "import os, sys; sys.exit(0 if os.path.exists('/tmp/ok') else 1)"
    ident, _ = containers.run(name, {**host_label("h", "health.test"), **port_label("h", port)}, port=port,
                              options=["--health-cmd", f'/usr/bin/python3 -c "{check}"',
                                       "--health-interval", "300ms", "--health-retries", "1",
                                       "--health-start-period", "0s", "--health-timeout", "5s"])
    fm = start_ferryman(docker_static(engine.endpoint))
    assert get(fm, "health.test")[0] == 404  # starting/unhealthy: left out
    engine.run("exec", ident, "/usr/bin/python3", "-c", "open('/tmp/ok', 'w').close()")
    wait_served(fm, "health.test", name)
    engine.run("exec", ident, "/usr/bin/python3", "-c", "import os; os.remove('/tmp/ok')")
    wait_gone(fm, "health.test")


def test_tcp_endpoint(engine: Dockerd, containers: Containers, start_ferryman: StartFerryman) -> None:
    name = containers.name("tcp")
    port = free_port()
    containers.run(name, {**host_label("t", "tcp.test"), **port_label("t", port)}, port=port)
    fm = start_ferryman(docker_static(engine.tcp_endpoint, docker={"httpClientTimeout": "10s"}))
    wait_served(fm, "tcp.test", name)


def test_engine_restart_over_tls_does_not_crash_ferryman_and_routes_come_back(
        containers: Containers, start_ferryman: StartFerryman, tmp_path: Path) -> None:
    """A second engine whose TCP listener requires TLS with a client certificate; ferryman
    reaches it through ``tcp://`` + ``tls``; the engine is stopped and started again on the same
    data root while ferryman runs."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    ca = CA("docker engine test CA")
    server_cert, server_key = ca.issue("localhost", dns=("localhost",)).write(tmp_path, "server")
    client_cert, client_key = ca.issue("ferryman", client=True).write(tmp_path, "client")
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(ca.pem)
    root = short_tmpdir()
    with ProcessGroup() as group:
        engine = start_dockerd(root, group, tls=(ca_file, server_cert, server_key))
        try:
            import_test_image(engine)
            box = Containers(engine)
            name = box.name("phoenix")
            port = free_port()
            box.run(name, {**host_label("p", "phoenix.test"), **port_label("p", port)}, port=port,
                    options=["--restart", "always"])
            fm = start_ferryman(docker_static(engine.tcp_endpoint, docker={
                "tls": {"ca": str(ca_file), "cert": str(client_cert), "key": str(client_key)}}))
            wait_served(fm, "phoenix.test", name)
            fm.wait_for(lambda e: e.get("message") == "provider docker: connected"
                        and str(e.get("endpoint", "")).startswith("tcp://localhost:"), 5)

            mark = fm.mark()
            engine.kill()
            fm.wait_for(lambda e: e.get("level") == "error" and "provider docker" in str(e.get("message"))
                        and "retrying" in str(e.get("message")), 20, start=mark)
            assert fm.proc is not None and fm.proc.poll() is None
            assert api(fm, "/api/overview")[0] == 200  # still serving

            mark = fm.mark()
            engine.start()
            fm.wait_for(lambda e: e.get("message") == "provider docker: connected", 30, start=mark)
            wait_served(fm, "phoenix.test", name, deadline=30)  # restarted by its policy
            box.cleanup()
        finally:
            engine.stop()
            shutil.rmtree(root, ignore_errors=True)


def test_https_with_a_pebble_certificate_and_http_redirect(
        engine: Dockerd, containers: Containers, start_ferryman: StartFerryman, pebble: PebbleFactory,
        tmp_path: Path) -> None:
    """The labels a Traefik user writes for HTTPS with Let's Encrypt, against pebble."""
    web, websecure = free_port(), free_port()
    ca = pebble.start(http_port=web, tls_port=websecure)
    storage = tmp_path / "acme.json"
    name = containers.name("blog")
    port = free_port()
    containers.run(name, {"traefik.http.routers.go.rule": "Host(`example.com`)",
                          "traefik.http.routers.go.entrypoints": "websecure",
                          "traefik.http.routers.go.tls.certresolver": "le",
                          **port_label("go", port)}, port=port)
    static = docker_static(engine.endpoint, extra={
        "entryPoints": {"web": {"address": f"127.0.0.1:{web}",
                                "http": {"redirections": {"entryPoint": {"to": "websecure", "scheme": "https"}}}},
                        "websecure": {"address": f"127.0.0.1:{websecure}"},
                        "traefik": {"address": "127.0.0.1:0"}},
        "certificatesResolvers": {"le": acme_resolver(ca.directory, storage)}})
    start_ferryman(static, env=ca.env)
    wait_https("example.com", websecure, ca.root_file, expect=f"Hello from {name}")
    ca.verify_chain(served_chain(websecure, "example.com"), "example.com")
    assert stat.S_IMODE(os.stat(storage).st_mode) == 0o600
    status, headers, _ = http_request("127.0.0.1", web, "/some/path?q=1", headers={"Host": "example.com"})
    assert status in (301, 308)
    assert dict((k.lower(), v) for k, v in headers)["location"] == f"https://example.com:{websecure}/some/path?q=1"


def test_http_client_timeout_with_a_hung_engine(
        engine: Dockerd, containers: Containers, start_ferryman: StartFerryman) -> None:
    """The engine process is stopped (SIGSTOP: its sockets still accept, nothing answers);
    ``httpClientTimeout`` ends each attempt, and once the engine runs again the routes come."""
    name = containers.name("hung")
    port = free_port()
    containers.run(name, {**host_label("h", "hung.test"), **port_label("h", port)}, port=port)
    assert engine.proc is not None
    os.kill(engine.proc.pid, signal.SIGSTOP)
    try:
        fm = start_ferryman(docker_static(engine.endpoint, docker={"httpClientTimeout": "500ms"}), wait_config=False)
        ev = fm.wait_for(lambda e: "httpClientTimeout" in str(e.get("message")), 10)
        assert ev["level"] == "error" and "retrying" in str(ev["message"])
        assert get(fm, "hung.test")[0] == 404
    finally:
        os.kill(engine.proc.pid, signal.SIGCONT)
    wait_served(fm, "hung.test", name, deadline=20)


def test_watch_false_lists_once(engine: Dockerd, containers: Containers, start_ferryman: StartFerryman) -> None:
    """``watch: false``: the containers are read once at startup; later events change nothing."""
    name = containers.name("once")
    port = free_port()
    ident, _ = containers.run(name, {**host_label("o", "once.test"), **port_label("o", port)}, port=port)
    fm = start_ferryman(docker_static(engine.endpoint, docker={"watch": False}))
    wait_served(fm, "once.test", name)
    engine.run("stop", "-t", "5", ident)
    later = containers.name("later")
    lport = free_port()
    containers.run(later, {**host_label("l", "later.test"), **port_label("l", lport)}, port=lport)
    assert get(fm, "later.test")[0] == 404
    status, router = api(fm, "/api/http/routers/o@docker")
    assert status == 200 and router["status"] == "enabled"  # the stopped container's route stays
