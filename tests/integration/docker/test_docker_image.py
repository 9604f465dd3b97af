"""ferryman as a container, deployed as examples/docker-compose.yml does it.

No registry here to pull the Dockerfile's ``python:3.11-slim``: the image is its equivalent built
from the host's Python (tests/support/dockerd.py) plus what the Dockerfile installs (ferryman and
its runtime dependencies), with the Dockerfile's ENTRYPOINT and HEALTHCHECK command. The compose
file's ferryman flags (entry point addresses moved to free 127.0.0.1 ports: ``--network host``)
and backend labels (its port likewise) are used as written; the test engine's socket is mounted
at ``/var/run/docker.sock``, so the provider's default endpoint is the one in use.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from tests.integration.docker.conftest import IMAGE, Containers
from tests.support.dockerd import EXAMPLES, Dockerd, ferryman_image_files, rootfs_tarball, wait_health
from tests.support.procs import free_port, http_request, poll_until
from tests.unit.test_deployment_files import instructions

FERRYMAN_IMAGE = "ferryman-test/ferryman:latest"


def test_compose_deployment_in_containers_with_the_dockerfile_healthcheck(
        engine: Dockerd, containers: Containers) -> None:
    steps = dict(instructions())
    entrypoint = steps["ENTRYPOINT"]
    tarball = rootfs_tarball(ferryman_image_files(), name="ferryman")
    engine.import_image(tarball, FERRYMAN_IMAGE, [f"ENTRYPOINT {entrypoint}"])
    health_cmd = json.loads(steps["HEALTHCHECK"].partition(" CMD ")[2])

    compose: dict[str, Any] = yaml.safe_load((EXAMPLES / "docker-compose.yml").read_text())
    web, websecure, admin = free_port(), free_port(), free_port()
    flags = [f.replace("=:80", f"=127.0.0.1:{web}").replace("=:443", f"=127.0.0.1:{websecure}")
             for f in compose["services"]["ferryman"]["command"]]
    flags += [f"--entryPoints.traefik.address=127.0.0.1:{admin}", "--log.format=json"]

    backend_port = free_port()
    hello = compose["services"]["hello"]
    labels = [label.replace("server.port=8000", f"server.port={backend_port}") for label in hello["labels"]]
    name = containers.name("hello")
    argv = ["run", "-d", "--name", name, "--network", "host", "-v", f"{EXAMPLES}:/app:ro"]
    for label in labels:
        argv += ["--label", label]
    ident = engine.run(*argv, IMAGE, "/usr/bin/python3", "/app/hello.py", "--host", "127.0.0.1",
                       "--port", str(backend_port), "--name", name).stdout.strip()
    containers.ids.append(ident)

    proxy = containers.name("ferryman")
    # The Dockerfile's HEALTHCHECK command; its 10 s interval shortened so the test is quick.
    proxy_id = engine.run("run", "-d", "--name", proxy, "--network", "host",
                          "-v", f"{engine.socket}:/var/run/docker.sock:ro",
                          "--health-cmd", " ".join(health_cmd), "--health-interval", "300ms",
                          "--health-retries", "3", "--health-timeout", "5s",
                          FERRYMAN_IMAGE, *flags).stdout.strip()
    containers.ids.append(proxy_id)
    try:
        wait_health(engine, proxy_id, "healthy", deadline=40)

        def served() -> bool:
            status, _, body = http_request("127.0.0.1", web, "/", headers={"Host": "hello.localhost"},
                                                 timeout=2)
            return status == 200 and body == f"Hello from {name}\n".encode()

        poll_until(served, 20, what="hello.localhost through the ferryman container")
        status, _, body = http_request("127.0.0.1", admin, "/api/http/routers/hello@docker")
        assert status == 200 and json.loads(body)["status"] == "enabled"
    except (TimeoutError, AssertionError):
        print(engine.run("logs", proxy_id, check=False).stdout[-4000:])
        raise
    engine.run("stop", "-t", "10", proxy_id)
    state = engine.inspect(proxy_id)["State"]
    assert state["ExitCode"] == 0, state  # SIGTERM: drained and stopped cleanly
