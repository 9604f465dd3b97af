"""Fixtures for the differential tests: recording backends shared by the two proxies of a module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.oracle.harness import Backends


@pytest.fixture(scope="module")
def backends() -> Iterator[Backends]:
    """Recording backends for one module (one scenario group), created on first use."""
    group = Backends()
    try:
        yield group
    finally:
        group.close()
