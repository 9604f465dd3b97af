"""Request-target handling as Traefik's entry point does it, on raw bytes.

Traefik wraps every entry point handler in ``normalizePath`` (decode percent-encoded unreserved
characters, upper-case the hex of the others) and, unless ``http.sanitizePath`` is false,
``sanitizePath`` (``URL.JoinPath()``: remove ``.``/``..`` segments and duplicate slashes, keep a
trailing slash). Go then forwards ``URL.EscapedPath()``, which percent-encodes bytes that may not
appear raw in a path (non-ASCII, space, ``"``...). :func:`plain_path` is the cheap test the hot path
runs (:func:`needs_normalization` without the fragment); only paths that fail it pay for
:func:`normalize_path`.

:func:`split_target` turns a request-target into ``(path, query, authority, scheme)``:
origin-form ``/p?q``, absolute-form ``http://host:port/p?q`` (whose authority replaces the Host
header, as Go does), ``*`` and authority-form (CONNECT).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["BadTarget", "needs_normalization", "normalize_path", "plain_path", "split_target"]


class BadTarget(ValueError):
    """The request-target cannot be used (answer 400)."""


_SCHEME_CHARS: Final = b"abcdefghijklmnopqrstuvwxyz0123456789+-."
_HEX: Final = b"0123456789ABCDEFabcdef"
_UNRESERVED: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Bytes Go keeps raw in a path (``shouldEscape(c, encodePath)`` is false, plus ``%`` of escapes).
_PATH_SAFE: Final = _UNRESERVED | frozenset(b"/;,:@&=+$!'()*")


#: ``plain_path(path)`` matches (not ``None``) when ``path`` has no ``%``, ``#`` or non-ASCII byte and
#: no ``/.`` or ``//``: nothing normalization could change and no fragment. One C call: in CPython
#: 3.11 each ``b"%" in path`` first tries the operand as an int and catches the TypeError (~2,000
#: instructions, 5 per request in the h1 hot path before this).
plain_path: Final = re.compile(rb"[^%#/\x80-\xff]*(?:/[^%#./\x80-\xff][^%#/\x80-\xff]*)*/?").fullmatch
_NORMALIZED: Final = re.compile(rb"[^%/\x80-\xff]*(?:/[^%./\x80-\xff][^%/\x80-\xff]*)*/?").fullmatch


def needs_normalization(path: bytes) -> bool:
    """Whether ``path`` may change under normalization/sanitization (false for the common case):
    a ``%``, a non-ASCII byte, ``/.`` or ``//`` in it."""
    return _NORMALIZED(path) is None


def _clean(path: bytes) -> bytes:
    """Go's ``path.Clean`` for a rooted path, keeping one trailing slash if there was one."""
    trailing = path.endswith(b"/")
    out: list[bytes] = []
    for seg in path.split(b"/"):
        if not seg or seg == b".":
            continue
        if seg == b"..":
            if out:
                out.pop()
            continue
        out.append(seg)
    cleaned = b"/" + b"/".join(out)
    if trailing and not cleaned.endswith(b"/"):
        cleaned += b"/"
    return cleaned


def normalize_path(path: bytes, *, sanitize: bool = True) -> bytes:
    """Normalize percent-encoding (and clean segments when ``sanitize``); raises :class:`BadTarget`.

    ``%41`` becomes ``A`` (unreserved), ``%2f`` becomes ``%2F``; bytes Go would escape become
    ``%XX``; a ``%`` without two hex digits is an error (Go: "invalid URL escape").
    """
    out = bytearray()
    i = 0
    n = len(path)
    while i < n:
        c = path[i]
        if c == 0x25:  # '%'
            if i + 2 >= n:
                raise BadTarget("invalid URL escape")
            h1, h2 = path[i + 1], path[i + 2]
            if h1 not in _HEX or h2 not in _HEX:
                raise BadTarget("invalid URL escape")
            value = int(path[i + 1:i + 3], 16)
            if value in _UNRESERVED:
                out.append(value)
            else:
                out += b"%%%02X" % value
            i += 3
            continue
        if c in _PATH_SAFE:
            out.append(c)
        else:
            out += b"%%%02X" % c
        i += 1
    result = bytes(out)
    if sanitize and result.startswith(b"/") and (b"/." in result or b"//" in result):
        result = _clean(result)
    return result


def split_target(target: bytes) -> tuple[bytes, bytes | None, bytes | None, bytes | None]:
    """``(path, query, authority, scheme)`` of a request-target.

    ``query`` is ``None`` without ``?``; ``authority``/``scheme`` are ``None`` except for
    absolute-form (``scheme`` lower-cased). An absolute-form URL with no path gets ``/``.
    Raises :class:`BadTarget` for a target Go's ``ParseRequestURI`` rejects.
    """
    if target[:1] == b"/":
        path, sep, query = target.partition(b"?")
        return path, (query if sep else None), None, None
    if target == b"*":
        return target, None, None, None
    colon = target.find(b"://")
    if colon > 0:
        scheme = target[:colon].lower()
        if not scheme[:1].isalpha() or scheme.strip(_SCHEME_CHARS):
            raise BadTarget("invalid scheme")
        rest = target[colon + 3:]
        end = len(rest)
        for stop in (b"/", b"?"):
            pos = rest.find(stop)
            if 0 <= pos < end:
                end = pos
        authority = rest[:end]
        if b"@" in authority:
            authority = authority.rpartition(b"@")[2]
        remainder = rest[end:]
        path, sep, query = remainder.partition(b"?")
        if not path:
            path = b"/"
        return path, (query if sep else None), (authority or None), scheme
    # authority-form (CONNECT host:port) or garbage: keep as the path, the handler decides.
    if b" " in target or not target:
        raise BadTarget("invalid request-target")
    return target, None, None, None
