"""Golden files: dynamic configuration (YAML, TOML, a directory) → merged result as JSON.

Each case is ``NAME.yml`` / ``NAME.toml`` / a directory ``NAME/``, with optional static settings
in ``NAME.settings.json``, and the expected result in ``NAME.expected.json``.
Regenerate after an intended change with ``FERRYMAN_REGEN_GOLDEN=1 pytest tests/golden/dynamic``
and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from ferryman.dynamic.decode import Decoded, decode_document, decode_files, format_for
from ferryman.dynamic.merge import EntryPointInfo, Merged, MergeSettings, Redirect, merge
from ferryman.dynamic.models import RouterTLS

HERE = Path(__file__).parent
REGEN = os.environ.get("FERRYMAN_REGEN_GOLDEN") == "1"


def cases() -> list[str]:
    names = {p.name for p in HERE.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
    names |= {p.name for p in HERE.iterdir() if p.is_file() and format_for(p.name) is not None}
    return sorted(names)


def load_settings(case: str) -> MergeSettings:
    path = HERE / (case.rsplit(".", 1)[0] + ".settings.json")
    if not path.exists():
        return MergeSettings(entry_points=(EntryPointInfo("web", port=80), EntryPointInfo("websecure", port=443)))
    raw = json.loads(path.read_text())
    eps = []
    for ep in raw["entryPoints"]:
        redirect = Redirect(**ep["redirect"]) if "redirect" in ep else None
        tls: bool | RouterTLS = ep.get("tls", False)
        if isinstance(tls, dict):
            tls = RouterTLS.model_validate(tls)
        eps.append(EntryPointInfo(ep["name"], port=ep.get("port"), as_default=ep.get("asDefault", False),
                                  middlewares=tuple(ep.get("middlewares", ())), tls=tls, redirect=redirect))
    return MergeSettings(entry_points=tuple(eps))


def decode_case(case: str) -> Decoded:
    path = HERE / case
    if path.is_dir():
        files = sorted((p.relative_to(HERE).as_posix(), p.read_bytes()) for p in path.rglob("*") if p.is_file())
        return decode_files(files)
    fmt = format_for(case)
    assert fmt is not None
    return decode_document(path.read_bytes(), source=case, fmt=fmt)


def dump(model: Any) -> Any:
    return model.model_dump(mode="json", by_alias=True, exclude_defaults=True) if model is not None else None


def render(decoded: Decoded, merged: Merged) -> dict[str, Any]:
    def extra(item: Any, out: dict[str, Any]) -> dict[str, Any]:
        for key in ("errors", "warnings"):
            if getattr(item, key, ()):
                out[key] = list(getattr(item, key))
        return out

    routers = {}
    for name, r in merged.routers.items():
        routers[name] = extra(r, {
            "status": r.status, "provider": r.provider, "entryPoints": list(r.entry_points),
            "using": list(r.using), "rule": r.config.rule if r.config else None, "priority": r.priority,
            "tls": r.tls, "tlsOptions": r.tls_options, "service": r.service,
            "middlewares": list(r.config.middlewares) if r.config else [],
            "middlewareChain": list(r.middleware_chain),
        })
    services = {}
    for name, s in merged.services.items():
        out: dict[str, Any] = {"status": s.status, "kind": s.kind, "usedBy": list(s.used_by)}
        if s.children:
            out["children"] = list(s.children)
        if s.config is not None:
            out["config"] = dump(s.config)
        services[name] = extra(s, out)
    middlewares = {}
    for name, m in merged.middlewares.items():
        middlewares[name] = extra(m, {"status": m.status, "kind": m.kind, "expanded": list(m.expanded),
                                      "usedBy": list(m.used_by), "config": dump(m.config)})
    return {
        "decode": {"errors": [e.message for e in decoded.errors], "warnings": decoded.warnings},
        "routers": routers,
        "services": services,
        "middlewares": middlewares,
        "diagnostics": [f"{d.level}: {d.render()}" for d in merged.diagnostics],
    }


def result(case: str) -> dict[str, Any]:
    decoded = decode_case(case)
    merged = merge({"file": decoded.config}, load_settings(case), rejected={"file": decoded.errors})
    return render(decoded, merged)


def expected_path(case: str) -> Path:
    """``NAME.yml``, ``NAME.toml`` and ``NAME/`` all compare with ``NAME.expected.json`` (so a
    YAML file and its TOML twin share one expected result)."""
    stem = case.rsplit(".", 1)[0] if (HERE / case).is_file() else case
    return HERE / f"{stem}.expected.json"


@pytest.mark.parametrize("case", cases())
def test_golden(case: str) -> None:
    path = expected_path(case)
    got = result(case)
    if REGEN:
        path.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n")
    assert path.exists(), f"{path.name} is missing: run with FERRYMAN_REGEN_GOLDEN=1"
    assert json.loads(path.read_text()) == got


def test_toml_and_yaml_merge_to_the_same_result() -> None:
    assert result("simple.toml") == result("simple.yml")


def test_expected_files_have_inputs() -> None:
    expected = {expected_path(case).name for case in cases()}
    assert {p.name for p in HERE.glob("*.expected.json")} == expected
