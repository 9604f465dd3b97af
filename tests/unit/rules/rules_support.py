"""Helpers for the rules tests: locating the shared conformance data, building requests."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ferryman.rules import canonical_host, client_host


def shared_dir() -> Path:
    """``$FERRYMAN_SHARED_DIR``, else ``../shared`` next to the checkout."""
    env = os.environ.get("FERRYMAN_SHARED_DIR")
    if env:
        return Path(env)
    return (Path(__file__).resolve().parents[3] / ".." / "shared").resolve()


def load_conformance(name: str) -> dict[str, Any]:
    """The parsed conformance file, or an empty dict when the shared directory is absent."""
    path = shared_dir() / "conformance" / name
    if not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def require(data: Mapping[str, Any], name: str) -> None:
    if not data:
        pytest.skip(f"conformance file {name} not found under {shared_dir()} "
                    "(set FERRYMAN_SHARED_DIR to the shared directory)")


@dataclass(frozen=True)
class Req:
    """A :class:`ferryman.rules.MatchRequest` for tests."""

    method: str = "GET"
    host: str = ""
    path: str = "/"
    query: str = ""
    client_ip: str = ""
    headers: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def header_values(self, name: str) -> Sequence[str]:
        return self.headers.get(name.lower(), ())


def req(*, method: str = "GET", host: str = "example.com", path: str = "/", query: str = "",
        client_ip: str = "192.0.2.1", headers: Mapping[str, Sequence[str]] | None = None) -> Req:
    """Build a request the way the data plane would: canonical host, lower-cased header names."""
    merged: dict[str, list[str]] = {}
    for name, values in (headers or {}).items():
        merged.setdefault(name.lower(), []).extend(values)
    return Req(method, canonical_host(host), path, query, client_ip, merged)


def request_from_case(request: Mapping[str, Any]) -> Req:
    """A conformance ``request`` as it would arrive over the wire.

    Header names are case-insensitive there (the Go tests that build a header map by hand with a
    non-canonical key are flagged ``go_test_artifact``; we use ``match_over_the_wire`` for them).
    """
    return req(method=request["method"], host=request["host"], path=request["routing_path"],
               query=request.get("query", ""), client_ip=client_host(request.get("remote_addr", "")),
               headers=request.get("headers", {}))
