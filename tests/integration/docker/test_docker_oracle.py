"""The real Traefik 3.7 and ferryman watching the same Docker engine: the same routers and services.

Containers carry the labels users write (Compose replicas, a default rule on an exposed port,
``traefik.enable=false``, a middleware, TLS on an entry point, a definition two containers make
differently); both proxies read them from the test engine's socket and their APIs'
``/api/http/routers`` and ``/api/http/services`` are compared after the documented normalisation
(tests/integration/api/test_api_oracle.py: error texts, qualified service names). Labels that do
not parse are left out: Traefik skips the whole container, ferryman only the element (README).
"""

from __future__ import annotations

import difflib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.api.test_api_oracle import normalise
from tests.integration.docker.conftest import IMAGE, Containers, docker_static
from tests.oracle.harness import TRAEFIK, TRAEFIK_MISSING
from tests.support.dockerd import Dockerd
from tests.support.ferryman import Ferryman
from tests.support.procs import ProcessGroup, free_port, http_request, poll_until

pytestmark = [pytest.mark.oracle, pytest.mark.skipif(TRAEFIK is None, reason=TRAEFIK_MISSING)]

SLEEP = ["/usr/bin/python3", "-c", "import time; time.sleep(3600)"]
BLOG = {"com.docker.compose.project": "blog", "com.docker.compose.service": "web",
        "traefik.http.routers.blog.rule": "Host(`blog.example`) && PathPrefix(`/api`)",
        "traefik.http.routers.blog.entrypoints": "web",
        "traefik.http.routers.blog.middlewares": "strip",
        "traefik.http.middlewares.strip.stripprefix.prefixes": "/api",
        "traefik.http.services.blog.loadbalancer.server.port": "8080"}


def api_get(port: int, path: str) -> Any:
    status, _, body = http_request("127.0.0.1", port, path, timeout=5)
    assert status == 200, (path, status, body[:200])
    return json.loads(body)


def docker_items(port: int, kind: str) -> list[Any]:
    items = api_get(port, f"/api/http/{kind}")
    return sorted((normalise(i) for i in items if i.get("provider") == "docker"), key=lambda i: i["name"])


def test_same_routers_and_services_as_traefik(engine: Dockerd, containers: Containers, tmp_path: Path) -> None:
    def start(name: str, labels: dict[str, str], *options: str) -> None:
        argv = ["run", "-d", "--name", name, "--network", "host", *options]
        for key, value in labels.items():
            argv += ["--label", f"{key}={value}"]
        containers.ids.append(engine.run(*argv, IMAGE, *SLEEP).stdout.strip())

    start(containers.name("blog-web-1"), {**BLOG, "com.docker.compose.container-number": "1"})
    start(containers.name("blog-web-2"), {**BLOG, "com.docker.compose.container-number": "2"})
    # No port label: its --expose'd ports do not count with host networking (both skip it).
    start("oracle-whoami", {}, "--expose", "9000", "--expose", "80")
    start("oracle-default", {"traefik.http.services.d.loadbalancer.server.port": "9001"})
    start(containers.name("hidden"), {"traefik.enable": "false", "traefik.http.routers.h.rule": "Host(`h`)"})
    start(containers.name("secure"), {"traefik.http.routers.sec.rule": "Host(`secure.example`)",
                                      "traefik.http.routers.sec.entrypoints": "websecure",
                                      "traefik.http.routers.sec.tls": "true",
                                      "traefik.http.services.sec.loadbalancer.server.port": "8443",
                                      "traefik.http.services.sec.loadbalancer.server.scheme": "https"})
    for i, value in enumerate(("/a", "/b")):  # the same middleware defined differently: dropped
        start(containers.name(f"clash{i}"), {"traefik.http.middlewares.clash.stripprefix.prefixes": value,
                                             f"traefik.http.routers.clash{i}.rule": f"Host(`clash{i}.example`)",
                                             f"traefik.http.routers.clash{i}.middlewares": "clash",
                                             f"traefik.http.services.clash{i}.loadbalancer.server.port": "81"})

    start(containers.name("starting"), {"traefik.http.services.st.loadbalancer.server.port": "82"},
          "--health-cmd", "/usr/bin/python3 -c 'import sys; sys.exit(1)'", "--health-interval", "1h",
          "--health-start-period", "1h")
    stopped = containers.name("stopped")
    start(stopped, {"traefik.docker.allownonrunning": "true", "traefik.http.routers.off.rule": "Host(`off.example`)",
                    "traefik.http.services.off.loadbalancer.server.port": "83"})
    engine.run("stop", "-t", "0", stopped)
    entry_points = ("web", "websecure", "traefik")
    with ProcessGroup() as group:
        t_ports = {name: free_port() for name in entry_points}
        t_static = docker_static(engine.endpoint, extra={
            "entryPoints": {n: {"address": f"127.0.0.1:{p}"} for n, p in t_ports.items()},
            "log": {"level": "ERROR", "format": "json"}})
        t_dir = tmp_path / "traefik"
        t_dir.mkdir()
        (t_dir / "traefik.yml").write_text(yaml.safe_dump(t_static))
        with (t_dir / "traefik.log").open("wb") as log:
            group.spawn([str(TRAEFIK), f"--configFile={t_dir / 'traefik.yml'}"], cwd=t_dir, stdout=log,
                        stderr=subprocess.STDOUT)
        f_static = docker_static(engine.endpoint, extra={
            "entryPoints": {n: {"address": "127.0.0.1:0"} for n in entry_points}})
        fm = Ferryman(tmp_path / "ferryman", f_static, group=group).start(deadline=30)

        def settled(port: int) -> list[Any] | None:
            routers = docker_items(port, "routers")
            return routers if len(routers) >= 5 else None

        poll_until(lambda: settled(t_ports["traefik"]), 30, interval=0.2, what="Traefik's docker routers")
        poll_until(lambda: settled(fm.ports["traefik"]), 30, interval=0.2, what="ferryman's docker routers")
        for kind in ("routers", "services", "middlewares"):
            theirs = docker_items(t_ports["traefik"], kind)
            ours = docker_items(fm.ports["traefik"], kind)
            if kind == "services":
                # Known difference outside the Docker provider: Traefik builds a service (and
                # shows serverStatus UP) even when its only router fails on a middleware; ferryman
                # builds nothing for a disabled router.
                disabled = {r["name"] for r in docker_items(fm.ports["traefik"], "routers")
                            if r["status"] == "disabled"}
                for item in theirs:
                    if set(item.get("usedBy", ())) <= disabled:
                        item.pop("serverStatus", None)
                    if item.get("serverStatus") == {"": "UP"}:
                        # traefik.docker.allownonrunning: Traefik lists one server without a URL,
                        # ferryman none, with a warning; both answer 503.
                        del item["serverStatus"], item["loadBalancer"]["servers"]
                        item.update({"error": ["<error>"], "status": "warning"})
            if kind == "middlewares":
                # ferryman lists an element dropped for conflicting definitions, disabled, with the
                # containers and labels named; Traefik only logs it.
                names = {m["name"] for m in theirs}
                extra = [m for m in ours if m["name"] not in names]
                assert [m["name"] for m in extra] == ["clash@docker"] and extra[0]["status"] == "disabled"
                [raw] = [m for m in api_get(fm.ports["traefik"], "/api/http/middlewares") if m["name"] == "clash@docker"]
                assert "defined multiple times" in raw["error"][0] and "clash0" in raw["error"][0]
                ours = [m for m in ours if m["name"] in names]
            if ours != theirs:  # a readable diff in the failure output
                print("\n".join(difflib.unified_diff(json.dumps(theirs, indent=1, sort_keys=True).splitlines(),
                                                    json.dumps(ours, indent=1, sort_keys=True).splitlines(),
                                                    "traefik", "ferryman", lineterm="")))
            assert json.dumps(ours, indent=1, sort_keys=True) == json.dumps(theirs, indent=1, sort_keys=True), kind
        statuses = [http_request("127.0.0.1", port, "/", headers={"Host": "off.example"})[0]
                    for port in (t_ports["web"], fm.ports["web"])]
        # allownonrunning: a route without a server. Traefik's documentation promises 503; Traefik
        # 3.7 answers 500 (its server without a URL fails to proxy). ferryman answers 503.
        assert statuses[1] == 503 and statuses[0] in (500, 503), statuses
