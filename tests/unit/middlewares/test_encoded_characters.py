"""encodedCharacters' scan (wire behaviour against Traefik: tests/oracle/test_oracle_encoded_characters.py)."""

from __future__ import annotations

import pytest

from ferryman.dynamic.models import EncodedCharacters
from ferryman.middlewares.encoded_characters import denied_escapes, rejects
from ferryman.static.models import EncodedCharacters as EntryPointEncodedCharacters


def test_defaults_differ_between_middleware_and_entry_point() -> None:
    assert len(denied_escapes(EncodedCharacters())) == 11  # the middleware denies all seven by default
    assert denied_escapes(EntryPointEncodedCharacters()) == frozenset()  # the entry point allows all


@pytest.mark.parametrize("path, expected", [
    (b"/a%2Fb", True), (b"/a%2fb", True), (b"/a%252Fb", False), (b"/a%41", False), (b"/a%2", True), (b"/", False),
])
def test_scan(path: bytes, expected: bool) -> None:
    assert rejects(path, frozenset({b"%2F", b"%2f"})) is expected
