from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.ferryman import Ferryman
from tests.support.pebble import pebble, pebble_session  # noqa: F401  (a real ACME CA: pebble)
from tests.support.procs import ProcessGroup, start_hello

StartFerryman = Callable[..., Ferryman]


@pytest.fixture
def procs() -> Iterator[ProcessGroup]:
    with ProcessGroup() as group:
        yield group


@pytest.fixture
def hello(procs: ProcessGroup) -> Callable[[str], int]:
    """Start an example hello backend named ``name``; returns its port."""

    def start(name: str) -> int:
        _proc, port = start_hello(name, group=procs)
        return port

    return start


@pytest.fixture
def ferryman(tmp_path: Path, procs: ProcessGroup) -> StartFerryman:
    """Start ferryman with a static config (dict) and an optional dynamic file (dict)."""

    def start(static: Mapping[str, Any] | None = None, dynamic: Mapping[str, Any] | None = None,
              *, start: bool = True, **kw: Any) -> Ferryman:
        static = dict(static or {"entryPoints": {"web": {"address": "127.0.0.1:0"}}})
        fm = Ferryman(tmp_path, static, dynamic, group=procs, **kw)
        return fm.start() if start else fm

    return start
