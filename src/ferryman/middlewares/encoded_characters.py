"""Rejecting requests whose path contains chosen percent-encoded characters, as Traefik 3.6+:

* the ``encodedCharacters`` middleware (``pkg/middlewares/encodedcharacters``): each
  ``allowEncoded{Slash,BackSlash,NullCharacter,Semicolon,Percent,QuestionMark,Hash}`` is **false by
  default** there, so ``encodedCharacters: {}`` denies all seven;
* the entry point option ``entryPoints.<n>.http.encodedCharacters`` (``pkg/server/router/deny.go``),
  whose fields default to **true** (nothing denied unless a field is set to false); it applies to
  every router of the entry point, before the router's middlewares.

Denied escapes: ``%2F``/``%2f`` (slash), ``%5C``/``%5c`` (backslash), ``%00``, ``%3B``/``%3b``,
``%25``, ``%3F``/``%3f``, ``%23``. The escaped path is scanned escape by escape (``%25`` is one
escape, so ``%252F`` is a percent followed by ``2F``); a denied one -- or a ``%`` without two
characters after it -- answers ``400`` with an empty body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ferryman.dynamic.models import EncodedCharacters
from ferryman.http.exchange import Exchange, Handler

__all__ = ["EncodedCharactersHandler", "EntryPointEncodedCharacters", "build_encoded_characters", "denied_escapes"]

_ESCAPES: Final = (
    ("allow_encoded_slash", (b"%2F", b"%2f")),
    ("allow_encoded_back_slash", (b"%5C", b"%5c")),
    ("allow_encoded_null_character", (b"%00",)),
    ("allow_encoded_semicolon", (b"%3B", b"%3b")),
    ("allow_encoded_percent", (b"%25",)),
    ("allow_encoded_question_mark", (b"%3F", b"%3f")),
    ("allow_encoded_hash", (b"%23",)),
)


def denied_escapes(config: Any) -> frozenset[bytes]:
    """The escapes a config denies (any object with the seven ``allow_encoded_*`` booleans)."""
    return frozenset(esc for field, escapes in _ESCAPES if not getattr(config, field) for esc in escapes)


def rejects(path: bytes, denied: frozenset[bytes]) -> bool:
    """Traefik's scan of ``URL.EscapedPath()``."""
    i = path.find(b"%")
    n = len(path)
    while i >= 0:
        if i + 2 >= n:
            return True
        if path[i:i + 3] in denied:
            return True
        i = path.find(b"%", i + 3)
    return False


def _bad_request(ex: Exchange) -> None:
    ex.respond(400, (), b"", content_type=None)


class EncodedCharactersHandler:
    """The ``encodedCharacters`` middleware."""

    __slots__ = ("denied", "name", "next")

    def __init__(self, name: str, next_handler: Handler, denied: frozenset[bytes]) -> None:
        self.name = name
        self.next = next_handler
        self.denied = denied

    def handle(self, ex: Exchange) -> None:
        if b"%" in ex.path and rejects(ex.path, self.denied):
            _bad_request(ex)
            return
        self.next.handle(ex)


class EntryPointEncodedCharacters:
    """The entry point option, in front of a router's chain: the set of the entry point the
    request came in on (a router may serve several entry points)."""

    __slots__ = ("by_entry_point", "next")

    def __init__(self, by_entry_point: Mapping[str, frozenset[bytes]], next_handler: Handler) -> None:
        self.by_entry_point = dict(by_entry_point)
        self.next = next_handler

    def handle(self, ex: Exchange) -> None:
        if b"%" in ex.path:
            denied = self.by_entry_point.get(ex.conn.entrypoint)
            if denied and rejects(ex.path, denied):
                _bad_request(ex)
                return
        self.next.handle(ex)


def build_encoded_characters(name: str, config: EncodedCharacters, next_handler: Handler) -> Handler:
    denied = denied_escapes(config)
    if not denied:
        return next_handler
    return EncodedCharactersHandler(name, next_handler, denied)
