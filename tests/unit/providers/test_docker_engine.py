"""The Docker provider's pure pieces: endpoints, TLS files, backoff, and the check that a listing
reflects an event (the engine behaviour itself is tested against a real dockerd in
tests/integration/docker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferryman.errors import ConfigError
from ferryman.providers.docker import Backoff, DockerProvider, docker_provider
from ferryman.providers.docker_engine import parse_endpoint, tls_context
from ferryman.static import load_static


def test_endpoints() -> None:
    unix = parse_endpoint("unix:///var/run/docker.sock")
    assert (unix.kind, unix.path) == ("unix", "/var/run/docker.sock")
    tcp = parse_endpoint("tcp://127.0.0.1:2375")
    assert (tcp.kind, tcp.host, tcp.port, tcp.tls) == ("tcp", "127.0.0.1", 2375, None)
    ctx = tls_context()
    assert parse_endpoint("tcp://docker.example", ctx).port == 2376  # TLS: Docker's TLS port
    assert parse_endpoint("https://docker.example").tls is not None
    for bad, why in (("unix://", "no socket path"), ("tcp://:2375", "no host"), ("ssh://host", "unsupported"),
                     ("tcp://h:99999", "bad port")):
        with pytest.raises(ValueError, match=why):
            parse_endpoint(bad)


def test_tls_files_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"missing\.pem"):
        tls_context(ca=str(tmp_path / "missing.pem"))
    with pytest.raises(ValueError, match="must be set together"):
        tls_context(cert=str(tmp_path / "c.pem"))
    insecure = tls_context(insecure_skip_verify=True)
    assert not insecure.check_hostname


def test_static_configuration_to_provider(tmp_path: Path) -> None:
    docker = load_static(["--providers.docker.exposedByDefault=false", "--providers.docker.network=web",
                          "--providers.docker.constraints=Label(`a`,`b`)", "--providers.docker.watch=false"],
                         {}).config.providers.docker
    assert docker is not None
    provider = docker_provider(docker)
    assert provider.settings.exposed_by_default is False and provider.settings.network == "web"
    assert provider.settings.constraints == "Label(`a`,`b`)" and provider.watch is False
    bad = load_static([f"--providers.docker.tls.ca={tmp_path / 'nope.pem'}"], {}).config.providers.docker
    assert bad is not None
    with pytest.raises(ConfigError, match=r"nope\.pem"):
        docker_provider(bad)


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    b = Backoff(0.25, 5.0)
    assert [b.next() for _ in range(7)] == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    b.reset()
    assert b.next() == 0.25


@pytest.mark.parametrize(("action", "state", "reflected"), [
    ("start", ("running", ""), True), ("start", ("created", ""), False),
    ("unpause", ("paused", ""), False), ("unpause", ("running", ""), True),
    ("pause", ("running", ""), False), ("pause", ("paused", ""), True),
    ("die", ("running", ""), False), ("die", ("exited", ""), True), ("stop", ("exited", ""), True),
    ("health_status: healthy", ("running", "starting"), False),
    ("health_status: healthy", ("running", "healthy"), True),
    ("health_status: unhealthy", ("exited", ""), True),
    ("rename", ("running", ""), True),
])
def test_a_listing_reflects_an_event(action: str, state: tuple[str, str], reflected: bool) -> None:
    p = DockerProvider()
    p.states = {"c1": state}
    assert p._reflects("c1", action) is reflected
    p.states = {}
    assert p._reflects("c1", "destroy") is True


@pytest.mark.parametrize(("flag", "path"), [
    ("--providers.docker.constraints=Label(`a`", "providers.docker.constraints"),
    ("--providers.docker.constraints=Host(`a`)", "providers.docker.constraints"),
    ("--providers.docker.defaultRule=Host(`{{ nope .Name }}`)", "providers.docker.defaultRule"),
])
def test_bad_constraints_or_default_rule_fail_at_startup(flag: str, path: str) -> None:
    docker = load_static([flag], {}).config.providers.docker
    assert docker is not None
    with pytest.raises(ConfigError) as info:
        docker_provider(docker)
    assert info.value.path == path
