"""Traefik's Docker provider test vectors (shared ``docker_labels.json``), replayed through
:func:`ferryman.providers.docker_config.build_configuration`.

Each case's containers become :class:`ContainerInfo` values and the produced configuration is
compared with ``expected`` (Traefik JSON keys). ``expected``'s HTTP and TLS parts are read through
ferryman's own models (``validate_elements``), so both sides are compared as ferryman values dumped
by alias — Traefik's explicit defaults (``strategy: wrr``, ``passHostHeader: true``,
``flushInterval: 100ms``) and ferryman's model defaults meet. ``_defaultRule`` is a Go-internal flag
and is ignored. TCP/UDP are raw mappings in ferryman (not routed yet) and are compared as mappings,
empty maps counting as missing (``meta.expected_format``). The helper cases test the address and
port choice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from ferryman.dynamic.decode import validate_elements
from ferryman.dynamic.models import Configuration
from ferryman.providers.docker_config import (
    ContainerInfo,
    DockerSettings,
    build_configuration,
    container_ip,
    container_port,
)


def shared_dir() -> Path:
    env = os.environ.get("FERRYMAN_SHARED_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[4] / "shared"


def load() -> dict[str, Any]:
    path = shared_dir() / "conformance" / "docker_labels.json"
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text())
    return data


DATA = load()
CASES: list[dict[str, Any]] = DATA.get("cases", [])
HELPERS: dict[str, Any] = DATA.get("helper_cases", {})
pytestmark = pytest.mark.skipif(not CASES, reason="shared conformance data not found")

#: Cases ferryman cannot match, with the exact difference (strict xfail).
XFAIL: dict[str, str] = {}


def container_info(c: Mapping[str, Any]) -> ContainerInfo:
    ns = c.get("network_settings") or {}
    labels = dict(c.get("labels") or {})
    extra = c.get("extra_conf") or {}
    if extra.get("allowNonRunning"):
        labels["traefik.docker.allownonrunning"] = "true"
    if extra and not extra.get("enable", True):
        labels["traefik.enable"] = "false"
    networks = {name: (n.get("addr") or n.get("ipv4") or n.get("ipv6") or "")
                for name, n in (ns.get("networks") or {}).items()}
    bindings = {port: tuple((b.get("hostIP", ""), b.get("hostPort", "")) for b in (binds or ()))
                for port, binds in (ns.get("ports") or {}).items()}
    return ContainerInfo(
        id=str(c.get("id", "")),
        name=c["name"],
        labels=labels,
        state=c.get("status", ""),
        health=c.get("health", ""),
        network_mode=ns.get("networkMode", ""),
        networks=networks,
        ports=tuple(c.get("ports") or ()),
        port_bindings=bindings,
        node_ip=c.get("nodeIP", ""),
        service=c["service_name"] if c.get("service_name", c["name"]) != c["name"] else "",
    )


def settings(options: Mapping[str, Any]) -> DockerSettings:
    return DockerSettings(
        exposed_by_default=options.get("exposedByDefault", True),
        default_rule=options.get("defaultRule", "Host(`{{ normalize .Name }}`)"),
        network=options.get("network", ""),
        constraints=options.get("constraints", ""),
        allow_empty_services=options.get("allowEmptyServices", False),
        use_bind_port_ip=options.get("useBindPortIP", False),
    )


def strip_empty(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: strip_empty(v) for k, v in value.items() if not k.startswith("_")}
        return {k: v for k, v in out.items() if v not in ({}, None, [])}
    if isinstance(value, list):
        return [strip_empty(v) for v in value]
    return value


#: TCP/UDP list fields: ferryman keeps TCP/UDP sections raw (not routed yet), so the labels'
#: comma lists and key spellings are still as written; compared with these fields split.
L4_LISTS = frozenset({"entrypoints", "middlewares", "sourcerange", "sans"})


def l4(value: Any, key: str = "") -> Any:
    """A raw TCP/UDP section in comparable form: keys lower-cased (element names too: the cases
    use distinct names), comma lists split, empty maps dropped."""
    if isinstance(value, dict):
        out = {str(k).lower(): l4(v, str(k).lower()) for k, v in value.items() if not str(k).startswith("_")}
        return {k: v for k, v in out.items() if v not in ({}, None, [])}
    if isinstance(value, list):
        return [l4(v) for v in value]
    if key in L4_LISTS and isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def dump(config: Configuration) -> dict[str, Any]:
    http = config.http.model_dump(by_alias=True, mode="json")
    stores = config.tls.model_dump(by_alias=True, mode="json")["stores"]
    return {
        "http": http,
        "tls": {"stores": stores},
        "tcp": l4(config.tcp or {}),
        "udp": l4(config.udp or {}),
    }


def expected_config(expected: Mapping[str, Any]) -> dict[str, Any]:
    raw = {"http": strip_empty(expected.get("http") or {}), "tls": strip_empty(expected.get("tls") or {})}
    decoded = validate_elements(raw, "expected")
    assert not decoded.errors, decoded.errors
    out = dump(decoded.config)
    out["tcp"] = l4(expected.get("tcp") or {})
    out["udp"] = l4(expected.get("udp") or {})
    return out


def run_case(case: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    containers = [container_info(c) for c in case["containers"]]
    config, _problems, _warnings = build_configuration(containers, settings(case["provider_options"]))
    return dump(config), expected_config(case["expected"])


def param(case: dict[str, Any]) -> Any:
    marks = []
    if case["desc"] in XFAIL:
        marks.append(pytest.mark.xfail(strict=True, reason=XFAIL[case["desc"]]))
    return pytest.param(case, id=case["desc"], marks=marks)


@pytest.mark.parametrize("case", [param(c) for c in CASES])
def test_case(case: dict[str, Any]) -> None:
    got, want = run_case(case)
    assert got == want


def test_counts() -> None:
    assert len(CASES) == DATA["meta"]["counts"]["cases"] == 66
    assert len(HELPERS["get_ip_port"]) == 8
    assert len(HELPERS["get_ip_address"]) == 10
    assert len(HELPERS["get_port"]) == 6


@pytest.mark.parametrize("case", HELPERS.get("get_ip_address", []), ids=lambda c: c["desc"])
def test_get_ip_address(case: dict[str, Any]) -> None:
    c = container_info(case["container"])
    s = DockerSettings(network=case["effective_network"])
    assert container_ip(c, s) == case["expected_ip"]


@pytest.mark.parametrize("case", HELPERS.get("get_port", []), ids=lambda c: c["desc"])
def test_get_port(case: dict[str, Any]) -> None:
    c = container_info(case["container"])
    assert container_port(c, case["server_port_label"]) == case["expected_port"]


@pytest.mark.parametrize("case", HELPERS.get("get_ip_port", []), ids=lambda c: c["desc"])
def test_get_ip_port(case: dict[str, Any]) -> None:
    from ferryman.providers.docker_config import _ip_port

    c = container_info(case["container"])
    s = settings(case["provider_options"])
    want = case["expected"]
    if want["error"]:
        with pytest.raises(ValueError):
            _ip_port(c, s, case["server_port_label"])
    else:
        assert _ip_port(c, s, case["server_port_label"]) == (want["ip"], want["port"])
