"""Container descriptions from the real engine → the Docker provider's configuration.

Starts containers the way users do (Compose labels and replicas, a container exposed by default
on an ``EXPOSE``d port, a stopped one kept by ``traefik.docker.allownonrunning``, one whose health
check has not passed, one with a bad label), inspects them through the engine's API and checks
that the translation equals ``tests/golden/docker/real-engine.expected.json`` — the golden case
whose ``real-engine.containers.json`` holds these inspect answers as captured. Re-capture with
``FERRYMAN_CAPTURE_DOCKER_GOLDEN=1`` (then regenerate the expected file with
``FERRYMAN_REGEN_GOLDEN=1 pytest tests/golden/docker`` and review the diff).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.golden.docker.test_golden_docker import run_data
from tests.integration.docker.conftest import IMAGE, Containers
from tests.support.dockerd import Dockerd

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "docker"
CASE = "real-engine"
SETTINGS = {"exposedByDefault": True, "defaultRule": "Host(`{{ normalize .Name }}.docker.localhost`)"}
SLEEP = ["/usr/bin/python3", "-c", "import time; time.sleep(3600)"]
COMPOSE_GO = {"com.docker.compose.project": "blog", "com.docker.compose.service": "go",
              "traefik.http.routers.go.rule": "Host(`example.com`)",
              "traefik.http.routers.go.entrypoints": "websecure",
              "traefik.http.routers.go.tls.certresolver": "le",
              "traefik.http.services.go.loadbalancer.server.port": "8080"}


def start(engine: Dockerd, box: Containers, name: str, labels: dict[str, str], *options: str) -> str:
    argv = ["run", "-d", "--name", name, *options]
    for key, value in labels.items():
        argv += ["--label", f"{key}={value}"]
    ident = engine.run(*argv, IMAGE, *SLEEP).stdout.strip()
    box.ids.append(ident)
    return ident


def test_real_inspect_answers_translate_like_the_golden_case(engine: Dockerd, containers: Containers) -> None:
    ids = [
        start(engine, containers, "gold-blog-go-1", {**COMPOSE_GO, "com.docker.compose.container-number": "1"},
              "--network", "host"),
        start(engine, containers, "gold-blog-go-2", {**COMPOSE_GO, "com.docker.compose.container-number": "2"},
              "--network", "host"),
        start(engine, containers, "gold-whoami", {}, "--network", "host", "--expose", "9000", "--expose", "80"),
        start(engine, containers, "gold-hidden", {"traefik.enable": "false"}, "--network", "host"),
        start(engine, containers, "gold-starting", {"traefik.http.services.s.loadbalancer.server.port": "81"},
              "--network", "host", "--health-cmd", "/usr/bin/python3 -c 'import sys; sys.exit(1)'",
              "--health-interval", "1h", "--health-start-period", "1h"),
        start(engine, containers, "gold-bad", {"traefik.http.routers.bad.rule": "Host(`bad.localhost`)",
                                               "traefik.http.routers.bad.priority": "high",
                                               "traefik.http.services.bad.loadbalancer.server.port": "82",
                                               "traefik.http.middlewares.auth.basicauth.users": "a:b",
                                               "traefik.http.routers.ok.rule": "Host(`ok.localhost`)",
                                               "traefik.http.routers.ok.middlewares": "auth",
                                               "traefik.http.routers.ok.service": "bad"},
              "--network", "host"),
    ]
    stopped = start(engine, containers, "gold-stopped", {"traefik.docker.allownonrunning": "true",
                                                          "traefik.http.services.st.loadbalancer.server.port": "83"},
                    "--network", "host")
    engine.run("stop", "-t", "0", stopped)
    inspected: list[dict[str, Any]] = [engine.inspect(i) for i in [*ids, stopped]]

    if os.environ.get("FERRYMAN_CAPTURE_DOCKER_GOLDEN") == "1":
        path = GOLDEN / f"{CASE}.containers.json"
        path.write_text(json.dumps({"settings": SETTINGS, "containers": inspected}, indent=1) + "\n")

    expected = json.loads((GOLDEN / f"{CASE}.expected.json").read_text())
    assert run_data({"settings": SETTINGS, "containers": inspected}) == expected
