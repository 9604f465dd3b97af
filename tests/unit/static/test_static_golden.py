"""Golden files: realistic traefik.yml / traefik.toml -> the expected normalized model.

Each ``tests/golden/static/<name>.{yml,yaml,toml}`` is loaded with ``--configFile`` and compared
with ``<name>.expected.json`` (files with the same stem share one expectation, so YAML and TOML
must agree). Regenerate after a deliberate change with ``FERRYMAN_UPDATE_GOLDEN=1 pytest ...``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from ferryman.static import load_static

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "static"
INPUTS = sorted(p for p in GOLDEN.iterdir() if p.suffix in (".yml", ".yaml", ".toml"))


def _normalized(path: Path) -> dict[str, Any]:
    loaded = load_static([f"--configFile={path}"], {}, search=[])
    config = loaded.config
    return {
        "config": config.model_dump(mode="json", by_alias=True),
        "listen": {name: str(ep.listen) for name, ep in config.entry_points.items()},
        "defaultEntryPoints": list(config.default_entry_points()),
        "warnings": loaded.warnings,
    }


def test_there_are_golden_files() -> None:
    assert len(INPUTS) >= 3


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_golden(path: Path) -> None:
    expected_path = path.with_name(path.stem + ".expected.json")
    actual = _normalized(path)
    if os.environ.get("FERRYMAN_UPDATE_GOLDEN") == "1" and path.suffix != ".toml":
        expected_path.write_text(json.dumps(actual, indent=2) + "\n", encoding="utf-8")
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    assert actual == expected


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_dump_round_trips(path: Path) -> None:
    """What the model dumps (API, debug logs) reads back as the same model."""
    from ferryman.static import StaticConfig

    config = load_static([f"--configFile={path}"], {}, search=[]).config
    dumped = config.model_dump(mode="json", by_alias=True)
    assert StaticConfig.model_validate(dumped) == config
