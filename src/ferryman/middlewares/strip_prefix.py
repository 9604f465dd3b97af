"""``stripPrefix``: remove a path prefix, as Traefik's ``stripprefix/strip_prefix.go``.

* Prefixes (trimmed of spaces) are tried in order; the first that is a plain string prefix of the
  **decoded** path (Go's ``URL.Path``) wins, so ``/stat`` strips ``/status`` to ``/us``.
* The remainder gets a leading ``/`` unless it is empty. The encoded path (``URL.RawPath``) is
  stripped consistently: the prefix's length is counted in decoded bytes (``%XX`` counts as one),
  so ``/ap%69/a%2Fb`` minus ``/api/`` is ``/a%2Fb``.
* If ``URL.JoinPath()`` (drop ``.``/``..`` segments and duplicate slashes) would change the result
  (``/api./foo`` minus ``/api``), the answer is ``400 Bad Request``.
* The prefix is **added** (``Header.Add``) as ``X-Forwarded-Prefix``; the request-URI is rebuilt.
* The deprecated ``forceSlash: true`` always leaves a leading ``/`` (``/stat`` minus ``/stat`` is
  ``/``).

When the whole path was the prefix the exchange's path is ``b""`` as Go's ``URL.Path`` (so a later
``addPrefix`` gives ``/prefix``, not ``/prefix/``); the request-URI is ``/`` and the forwarder sends
``/``, as Go's client does.
"""

from __future__ import annotations

from collections.abc import Sequence

from ferryman.dynamic.models import StripPrefix
from ferryman.http.exchange import Exchange, Handler
from ferryman.middlewares._go import (
    bad_request,
    escape,
    escaped_path,
    is_plain,
    join_path,
    request_uri,
    url_state,
)

__all__ = ["StripPrefixHandler", "build_strip_prefix", "encoded_prefix_len", "strip_path"]

X_FORWARDED_PREFIX = b"x-forwarded-prefix"


def encoded_prefix_len(raw_path: bytes, decoded_len: int) -> int:
    """Bytes of ``raw_path`` that encode its first ``decoded_len`` decoded bytes (Traefik's
    ``encodedPrefixLen``: 3 per ``%XX``, 1 otherwise)."""
    decoded = 0
    i = 0
    n = len(raw_path)
    while i < n and decoded < decoded_len:
        i += 3 if raw_path[i] == 0x25 and i + 2 < n else 1
        decoded += 1
    return i


def _ensure_slash(p: bytes) -> bytes:
    return p if not p or p[:1] == b"/" else b"/" + p


def strip_path(escaped: bytes, path: bytes, raw: bytes, decoded_len: int, force_slash: bool) -> bytes | None:
    """The escaped path once the first ``decoded_len`` bytes of the decoded ``path`` are removed
    (``raw`` is Go's ``RawPath``); ``None`` when ``JoinPath`` would change it (Traefik's 400).
    ``b""`` is Go's empty path."""
    if force_slash:
        new_path = b"/" + path[decoded_len:].removeprefix(b"/")
    else:
        new_path = _ensure_slash(path[decoded_len:])
    if not new_path:
        return new_path
    if raw:
        rest = raw[encoded_prefix_len(raw, decoded_len):]
        new_raw = b"/" + rest.removeprefix(b"/") if force_slash else _ensure_slash(rest)
        new = escaped_path(new_path, new_raw)
    elif escaped is path:
        new = new_path  # plain: every slice is its own encoding
    else:
        new = escape(new_path)
    if b"/." in new or b"//" in new:
        joined = join_path(new)
        if url_state(joined)[0] != new_path:
            return None
        new = joined
    return new


class StripPrefixHandler:
    """The built middleware (a :class:`~ferryman.http.exchange.Handler`)."""

    __slots__ = ("_force_slash", "_prefixes", "name", "next")

    def __init__(self, name: str, next_handler: Handler, prefixes: Sequence[bytes],
                 force_slash: bool = False) -> None:
        self.name = name
        self.next = next_handler
        self._prefixes = tuple(prefixes)
        self._force_slash = force_slash

    def handle(self, ex: Exchange) -> None:
        escaped = ex.path
        if is_plain(escaped):
            path, raw = escaped, b""
        else:
            path, raw = url_state(escaped)
        for prefix in self._prefixes:
            if path.startswith(prefix):
                new = strip_path(escaped, path, raw, len(prefix), self._force_slash)
                if new is None:
                    bad_request(ex)
                    return
                ex.add_header(X_FORWARDED_PREFIX, prefix)
                ex.path = new
                ex.target = request_uri(new, ex.query)
                break
        self.next.handle(ex)


def build_strip_prefix(name: str, config: StripPrefix, next_handler: Handler) -> Handler:
    prefixes = [p.strip().encode() for p in config.prefixes]
    return StripPrefixHandler(name, next_handler, prefixes, bool(config.force_slash))
