"""Fixtures for tests against a real Docker engine (see tests/support/dockerd.py).

``engine`` is one ``dockerd`` per test session with the test image imported; ``containers``
starts example backends (``examples/hello.py``) in containers with ``--network host``, each on
its own 127.0.0.1 port, and removes them after the test. Everything skips with the reason when
no engine can run here (no dockerd, not root).
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support.dockerd import EXAMPLES, Dockerd, rootfs_tarball, short_tmpdir, skip_reason, start_dockerd
from tests.support.ferryman import Ferryman
from tests.support.procs import ProcessGroup, free_port, wait_port

IMAGE = "ferryman-test/py:latest"
_names = itertools.count(1)


def import_test_image(engine: Dockerd) -> str:
    return engine.import_image(rootfs_tarball(), IMAGE, ['CMD ["/usr/bin/python3"]'])


@pytest.fixture(scope="session")
def engine() -> Iterator[Dockerd]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    root = short_tmpdir()
    with ProcessGroup() as group:
        dockerd = start_dockerd(root, group)
        try:
            import_test_image(dockerd)
            yield dockerd
        finally:
            dockerd.stop()
            shutil.rmtree(root, ignore_errors=True)


class Containers:
    """Backends started in containers by one test (removed at the end)."""

    def __init__(self, engine: Dockerd) -> None:
        self.engine = engine
        self.ids: list[str] = []
        self.tag = f"t{os.getpid()}"

    def name(self, stem: str) -> str:
        return f"{stem}-{self.tag}-{next(_names)}"

    def run(self, name: str, labels: Mapping[str, str], *, port: int | None = None,
            options: Sequence[str] = (), wait: bool = True) -> tuple[str, int]:
        """Start ``examples/hello.py`` as container ``name`` on 127.0.0.1:``port`` (a free one
        by default); returns (container id, port)."""
        port = port or free_port()
        argv = ["run", "-d", "--name", name, "--network", "host", "-v", f"{EXAMPLES}:/app:ro", *options]
        for key, value in labels.items():
            argv += ["--label", f"{key}={value}"]
        argv += [IMAGE, "/usr/bin/python3", "/app/hello.py", "--host", "127.0.0.1", "--port", str(port),
                 "--name", name]
        ident = self.engine.run(*argv).stdout.strip()
        self.ids.append(ident)
        if wait:
            wait_port("127.0.0.1", port, deadline=20)
        return ident, port

    def cleanup(self) -> None:
        if self.ids and self.engine.proc is not None:
            self.engine.run("rm", "-f", *self.ids, check=False, timeout=60)
        self.ids.clear()


@pytest.fixture
def containers(engine: Dockerd) -> Iterator[Containers]:
    box = Containers(engine)
    try:
        yield box
    finally:
        box.cleanup()


def docker_static(endpoint: str, *, docker: Mapping[str, Any] | None = None,
                  extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """ferryman's static configuration: web + traefik (API) entry points on port 0, the Docker
    provider on ``endpoint``, a short throttle window so consecutive changes are not held."""
    static: dict[str, Any] = {
        "entryPoints": {"web": {"address": "127.0.0.1:0"}, "traefik": {"address": "127.0.0.1:0"}},
        "api": {"insecure": True},
        "providers": {"providersThrottleDuration": "200ms",
                      "docker": {"endpoint": endpoint, **(docker or {})}},
        "log": {"level": "INFO", "format": "json"},
    }
    static.update(extra or {})
    return static


@pytest.fixture
def start_ferryman(tmp_path: Path) -> Iterator[Any]:
    """Start ferryman with a static configuration (no file provider); stopped after the test."""
    with ProcessGroup() as group:
        def start(static: Mapping[str, Any], *, wait_config: bool = True,
                  env: Mapping[str, str] | None = None) -> Ferryman:
            return Ferryman(tmp_path, static, group=group, env=env).start(wait_config=wait_config, deadline=30)

        yield start
