"""The deployment files: ``Dockerfile`` (checked statically: no registry here to pull its base
image; tests/integration/docker/test_docker_image.py runs an equivalent image) and
``examples/docker-compose.yml`` (its ferryman flags load as ferryman's static configuration, its
labels translate into the expected routes). Also ``ferryman healthcheck`` reusing PID 1's flags."""

from __future__ import annotations

import json
import shlex
import tomllib
from pathlib import Path
from typing import Any

import yaml

from ferryman.cli import COMMANDS, _pid1_args
from ferryman.providers.docker_config import ContainerInfo, DockerSettings, build_configuration
from ferryman.static import load_static
from tests.support.procs import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
COMPOSE = REPO_ROOT / "examples" / "docker-compose.yml"


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continuation line"
    return out


def test_dockerfile_base_install_healthcheck_entrypoint() -> None:
    steps = instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    known = {"FROM", "ENV", "WORKDIR", "COPY", "RUN", "EXPOSE", "HEALTHCHECK", "STOPSIGNAL", "ENTRYPOINT", "CMD"}
    assert {word for word, _ in steps} <= known
    for word, args in steps:
        if word == "COPY":
            *sources, _dest = shlex.split(args)
            for src in sources:
                assert (REPO_ROOT / src).exists(), f"COPY {src}: not in the repository"
    runs = " ".join(args for word, args in steps if word == "RUN")
    assert "--constraint requirements.lock" in runs and "--no-deps ." in runs
    [health] = [args for word, args in steps if word == "HEALTHCHECK"]
    options, _, command = health.partition(" CMD ")
    assert json.loads(command) == ["ferryman", "healthcheck"]
    assert all(opt.startswith(("--interval=", "--timeout=", "--start-period=", "--retries=")) for opt in options.split())
    [entry] = [args for word, args in steps if word == "ENTRYPOINT"]
    assert json.loads(entry) == ["ferryman"]
    assert "ferryman" in tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def test_dockerignore_keeps_what_the_build_copies() -> None:
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    for needed in ("src", "pyproject.toml", "requirements.lock", "README.md"):
        assert needed not in ignored


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def test_compose_ferryman_flags_load_as_static_configuration() -> None:
    service = compose()["services"]["ferryman"]
    assert service["build"] == {"context": "..", "dockerfile": "Dockerfile"}
    assert "/var/run/docker.sock:/var/run/docker.sock:ro" in service["volumes"]
    loaded = load_static(service["command"], {})
    docker = loaded.config.providers.docker
    assert docker is not None and docker.exposed_by_default is False
    assert docker.endpoint == "unix:///var/run/docker.sock"
    assert loaded.config.ping is not None and loaded.config.api is not None
    assert {"web", "websecure", "traefik"} <= set(loaded.config.entry_points)
    assert not [w for w in loaded.warnings if "providers" in w], loaded.warnings


def test_compose_labels_become_the_hello_route() -> None:
    service = compose()["services"]["hello"]
    labels = dict(label.split("=", 1) for label in service["labels"])
    port = labels["traefik.http.services.hello.loadbalancer.server.port"]
    assert f"--port {port}" in " ".join(service["command"])
    info = ContainerInfo(id="c1", name="/examples-hello-1", labels={
        **labels, "com.docker.compose.project": "examples", "com.docker.compose.service": "hello"},
        network_mode="examples_default", networks={"examples_default": "172.18.0.3"}, ports=(f"{port}/tcp",))
    config, problems, _ = build_configuration([info], DockerSettings(exposed_by_default=False))
    assert problems == []
    router = config.http.routers["hello"]
    assert router.rule == "Host(`hello.localhost`)" and router.entry_points == ("web",) and router.service == "hello"
    lb = config.http.services["hello"].load_balancer
    assert lb is not None and [s.url for s in lb.servers] == [f"http://172.18.0.3:{port}"]


def test_healthcheck_takes_pid1_flags(tmp_path: Path) -> None:
    def cmdline(*argv: str) -> Path:
        path = tmp_path / "cmdline"
        path.write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
        return path

    flags = ("--ping=true", "--entryPoints.traefik.address=:8081")
    assert _pid1_args(cmdline("/usr/local/bin/python", "/usr/local/bin/ferryman", *flags)) == list(flags)
    assert _pid1_args(cmdline("/usr/local/bin/ferryman", "run", *flags)) == list(flags)
    assert _pid1_args(cmdline("python3", "-m", "ferryman", *flags)) == list(flags)
    assert _pid1_args(cmdline("/sbin/init")) == []
    assert _pid1_args(cmdline("/usr/local/bin/ferryman", "version")) == []
    assert "version" in COMMANDS
    assert _pid1_args(tmp_path / "missing") == []
