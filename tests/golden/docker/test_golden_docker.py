"""Golden files: Docker containers (the engine's ``/containers/{id}/json`` answers) → the Docker
provider's configuration, problems and warnings.

Each case is ``NAME.containers.json`` (``settings`` with Traefik's ``providers.docker`` option
names, ``containers`` as the engine returns them) and ``NAME.expected.json``. Regenerate after an
intended change with ``FERRYMAN_REGEN_GOLDEN=1 pytest tests/golden/docker`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from ferryman.providers.docker_config import DockerSettings, build_configuration, container_from_inspect

HERE = Path(__file__).parent
REGEN = os.environ.get("FERRYMAN_REGEN_GOLDEN") == "1"
SUFFIX = ".containers.json"


def cases() -> list[str]:
    return sorted(p.name.removesuffix(SUFFIX) for p in HERE.glob("*" + SUFFIX))


def settings(raw: dict[str, Any]) -> DockerSettings:
    defaults = DockerSettings()
    return DockerSettings(
        exposed_by_default=raw.get("exposedByDefault", defaults.exposed_by_default),
        default_rule=raw.get("defaultRule", defaults.default_rule),
        network=raw.get("network", defaults.network),
        constraints=raw.get("constraints", defaults.constraints),
        allow_empty_services=raw.get("allowEmptyServices", defaults.allow_empty_services),
        use_bind_port_ip=raw.get("useBindPortIP", defaults.use_bind_port_ip),
    )


def run(case: str) -> dict[str, Any]:
    return run_data(json.loads((HERE / (case + SUFFIX)).read_text()))


def run_data(data: dict[str, Any]) -> dict[str, Any]:
    """One case's ``{"settings", "containers"}`` → configuration, problems, warnings."""
    containers = [container_from_inspect(c) for c in data["containers"]]
    config, problems, warnings = build_configuration(containers, settings(data.get("settings", {})))
    return {
        "configuration": config.model_dump(mode="json", by_alias=True, exclude_defaults=True),
        "problems": [{"kind": p.kind, "name": p.name, "message": p.message} for p in problems],
        "warnings": warnings,
    }


def test_cases_exist() -> None:
    assert len(cases()) >= 4


@pytest.mark.parametrize("case", cases())
def test_golden(case: str) -> None:
    got = run(case)
    path = HERE / (case + ".expected.json")
    if REGEN or not path.exists():
        path.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n")
        if not REGEN:
            pytest.fail(f"{path.name} was missing; written, review it")
    assert got == json.loads(path.read_text())
