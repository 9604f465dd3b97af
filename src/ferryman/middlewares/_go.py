"""Go's ``net/url`` and ``regexp`` behaviour that Traefik's path middlewares rely on, on bytes.

The path middlewares edit Go's ``URL.Path`` (decoded) and ``URL.RawPath`` (the encoded form, ``""``
when it is the default encoding of ``Path``), then recompute ``RequestURI`` from
``URL.EscapedPath()``. An :class:`~ferryman.http.exchange.Exchange` carries one encoded path
(``ex.path``: what ``EscapedPath()`` returns), so the helpers here go back and forth:

* :func:`url_state` -- ``(Path, RawPath)`` of an escaped path, as Go's ``URL.setPath`` sets them;
* :func:`escaped_path` -- Go's ``URL.EscapedPath()`` for a ``(Path, RawPath)`` pair;
* :func:`join_path` -- the path of ``URL.JoinPath()`` (``path.Join``: drops ``.``/``..`` segments and
  duplicate slashes, keeps a trailing slash), which Traefik uses to reject ambiguous results;
* :func:`unescape` / :func:`escape` / :func:`valid_encoded` -- ``url.PathUnescape`` and friends;
* :func:`parse_url` / :class:`GoURL` -- ``url.Parse`` and ``URL.String()`` (redirect targets);
* :class:`GoTemplate` / :func:`replace_all` -- ``Regexp.ReplaceAllString`` with Go's ``$1``/``${1}``
  expansion (``$1x`` is the group named ``1x``, ``$$`` is ``$``; empty matches right after a match are
  skipped, unlike Python's ``re.sub``).

Everything that can be is computed at build time; the per-request functions have a fast path for
paths without ``%``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ferryman.errors import ConfigError
from ferryman.rules.re2 import RegexpError, compile_go

if TYPE_CHECKING:
    from ferryman.http.exchange import Exchange

__all__ = [
    "ENCODE_FRAGMENT",
    "ENCODE_HOST",
    "ENCODE_PATH",
    "ENCODE_USER",
    "GoTemplate",
    "GoURL",
    "GoURLError",
    "bad_request",
    "compile_regex",
    "compile_template",
    "escape",
    "escaped_path",
    "go_group_names",
    "http_error",
    "is_plain",
    "join_path",
    "parse_url",
    "replace_all",
    "request_uri",
    "to_bytes",
    "to_str",
    "unescape",
    "url_state",
    "valid_encoded",
]

# Go's url ``encoding`` modes (the ones used here).
ENCODE_PATH: Final = 1
ENCODE_PATH_SEGMENT: Final = 2
ENCODE_HOST: Final = 3
ENCODE_USER: Final = 5
ENCODE_FRAGMENT: Final = 7

_ALNUM: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_HEX: Final = frozenset(b"0123456789ABCDEFabcdef")


class GoURLError(ValueError):
    """What Go's ``url`` package returns as an error (message as Go spells it)."""


def _should_escape(c: int, mode: int) -> bool:
    """Go's ``shouldEscape``."""
    if c in _ALNUM:
        return False
    if mode == ENCODE_HOST and c in b"!$&'()*+,;=:[]<>\"":
        return False
    if c in b"-_.~":
        return False
    if c in b"$&+,/:;=?@":
        if mode == ENCODE_PATH:
            return c == 0x3F  # '?'
        if mode == ENCODE_PATH_SEGMENT:
            return c in b"/;,?"
        if mode == ENCODE_USER:
            return c in b"@/?:"
        if mode == ENCODE_FRAGMENT:
            return False
    return not (mode == ENCODE_FRAGMENT and c in b"!()*")


def _keep_table(mode: int) -> frozenset[int]:
    return frozenset(c for c in range(256) if not _should_escape(c, mode))


_KEEP: Final = {mode: _keep_table(mode) for mode in (ENCODE_PATH, ENCODE_PATH_SEGMENT, ENCODE_HOST, ENCODE_USER,
                                                      ENCODE_FRAGMENT)}
_VALID: Final = {mode: keep | frozenset(b"!$&'()*+,;=:@[]%") for mode, keep in _KEEP.items()}


def escape(s: bytes, mode: int = ENCODE_PATH) -> bytes:
    """Go's ``escape(s, mode)`` (upper-case hex)."""
    keep = _KEEP[mode]
    for c in s:
        if c not in keep:
            break
    else:
        return s
    out = bytearray()
    for c in s:
        if c in keep:
            out.append(c)
        else:
            out += b"%%%02X" % c
    return bytes(out)


def valid_encoded(s: bytes, mode: int = ENCODE_PATH) -> bool:
    """Go's ``validEncoded``: ``s`` only has bytes that may appear in its encoded form."""
    valid = _VALID[mode]
    return all(c in valid for c in s)


def _escape_error(s: bytes) -> GoURLError:
    text = s.decode("utf-8", "backslashreplace")
    return GoURLError(f'invalid URL escape "{text}"')


def unescape(s: bytes, mode: int = ENCODE_PATH) -> bytes:
    """Go's ``unescape`` (``url.PathUnescape`` for the path modes); raises :class:`GoURLError`."""
    if b"%" not in s:
        if mode == ENCODE_HOST:
            for c in s:
                if c < 0x80 and _should_escape(c, ENCODE_HOST):
                    raise GoURLError(f'invalid character "{chr(c)}" in host name')
        return s
    out = bytearray()
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == 0x25:  # '%'
            if i + 2 >= n or s[i + 1] not in _HEX or s[i + 2] not in _HEX:
                raise _escape_error(s[i:i + 3])
            if mode == ENCODE_HOST and int(s[i + 1:i + 2], 16) < 8 and s[i:i + 3] != b"%25":
                raise _escape_error(s[i:i + 3])
            out.append(int(s[i + 1:i + 3], 16))
            i += 3
            continue
        if mode == ENCODE_HOST and c < 0x80 and _should_escape(c, ENCODE_HOST):
            raise GoURLError(f'invalid character "{chr(c)}" in host name')
        out.append(c)
        i += 1
    return bytes(out)


_NOT_PLAIN: Final = re.compile(rb"[^A-Za-z0-9\-._~!$&'()*+,;=:@/\[\]]")


def is_plain(escaped: bytes) -> bool:
    """No ``%`` and nothing Go would escape: ``Path`` is ``escaped`` and so is ``EscapedPath()``,
    and any slice of it keeps that property (the per-request fast path)."""
    return _NOT_PLAIN.search(escaped) is None


def url_state(escaped: bytes) -> tuple[bytes, bytes]:
    """``(Path, RawPath)`` as Go's ``URL.setPath(escaped)`` leaves them."""
    if b"%" not in escaped:
        path = escaped
    else:
        try:
            path = unescape(escaped)
        except GoURLError:
            return escaped, b""
    return path, (b"" if escape(path) == escaped else escaped)


def escaped_path(path: bytes, raw_path: bytes) -> bytes:
    """Go's ``URL.EscapedPath()``: ``RawPath`` when it is a valid encoding of ``Path``."""
    if raw_path and valid_encoded(raw_path):
        try:
            if unescape(raw_path) == path:
                return raw_path
        except GoURLError:
            pass
    if path == b"*":
        return path
    return escape(path)


def request_uri(escaped: bytes, query: bytes | None) -> bytes:
    """Go's ``URL.RequestURI()`` (``/`` for an empty path; ``?`` kept when the query was present)."""
    target = escaped or b"/"
    return target if query is None else target + b"?" + query


def _clean(p: bytes) -> bytes:
    """Go's ``path.Clean``."""
    if not p:
        return b"."
    rooted = p[:1] == b"/"
    out: list[bytes] = []
    for seg in p.split(b"/"):
        if not seg or seg == b".":
            continue
        if seg == b"..":
            if out and out[-1] != b"..":
                out.pop()
            elif not rooted:
                out.append(seg)
            continue
        out.append(seg)
    cleaned = b"/".join(out)
    if rooted:
        cleaned = b"/" + cleaned
    return cleaned or b"."


def join_path(escaped: bytes) -> bytes:
    """The escaped path of Go's ``URL.JoinPath()`` (no elements) for a URL whose ``EscapedPath()``
    is ``escaped`` (non-empty)."""
    if escaped[:1] != b"/":
        elem = b"/" + escaped
        p = _clean(elem)[1:]
    else:
        elem = escaped
        p = _clean(elem)
    if elem.endswith(b"/") and not p.endswith(b"/"):
        p += b"/"
    return p


def to_str(b: bytes) -> str:
    """Bytes as text for Go-style regexps (invalid UTF-8 bytes survive the round trip)."""
    return b.decode("utf-8", "surrogateescape")


def to_bytes(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


# --------------------------------------------------------------------------------------------
# url.Parse / URL.String


@dataclass(slots=True)
class GoURL:
    """The parts of Go's ``url.URL`` that ``String()`` and ``RequestURI()`` use."""

    scheme: bytes = b""
    opaque: bytes = b""
    user: tuple[bytes, bytes | None] | None = None
    host: bytes = b""
    path: bytes = b""
    raw_path: bytes = b""
    omit_host: bool = False
    force_query: bool = False
    raw_query: bytes = b""
    fragment: bytes = b""
    raw_fragment: bytes = b""

    def escaped_path(self) -> bytes:
        return escaped_path(self.path, self.raw_path)

    def escaped_fragment(self) -> bytes:
        raw = self.raw_fragment
        if raw and valid_encoded(raw, ENCODE_FRAGMENT):
            try:
                if unescape(raw, ENCODE_FRAGMENT) == self.fragment:
                    return raw
            except GoURLError:
                pass
        return escape(self.fragment, ENCODE_FRAGMENT)

    def query(self) -> bytes | None:
        """The raw query as an :class:`Exchange` carries it (``None`` = no ``?``)."""
        return self.raw_query if self.raw_query or self.force_query else None

    def string(self) -> bytes:
        """Go's ``URL.String()``."""
        out = bytearray()
        if self.scheme:
            out += self.scheme + b":"
        if self.opaque:
            out += self.opaque
        else:
            authority = self.scheme or self.host or self.user is not None
            if authority and not (self.omit_host and not self.host and self.user is None):
                if self.host or self.path or self.user is not None:
                    out += b"//"
                if self.user is not None:
                    name, password = self.user
                    out += escape(name, ENCODE_USER)
                    if password is not None:
                        out += b":" + escape(password, ENCODE_USER)
                    out += b"@"
                if self.host:
                    out += escape(self.host, ENCODE_HOST)
            path = self.escaped_path()
            if path and path[:1] != b"/" and self.host:
                out += b"/"
            if not out and b":" in path.partition(b"/")[0]:
                out += b"./"
            out += path
        if self.force_query or self.raw_query:
            out += b"?" + self.raw_query
        if self.fragment:
            out += b"#" + self.escaped_fragment()
        return bytes(out)


def _get_scheme(raw: bytes) -> tuple[bytes, bytes]:
    for i, c in enumerate(raw):
        if 0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A:
            continue
        if 0x30 <= c <= 0x39 or c in b"+-.":
            if i == 0:
                return b"", raw
            continue
        if c == 0x3A:  # ':'
            if i == 0:
                raise GoURLError("missing protocol scheme")
            return raw[:i], raw[i + 1:]
        return b"", raw
    return b"", raw


def _valid_optional_port(port: bytes) -> bool:
    if not port:
        return True
    return port[:1] == b":" and all(0x30 <= c <= 0x39 for c in port[1:])


def _parse_host(host: bytes) -> bytes:
    if host[:1] == b"[":
        i = host.rfind(b"]")
        if i < 0:
            raise GoURLError("missing ']' in host")
        port = host[i + 1:]
        if not _valid_optional_port(port):
            raise GoURLError(f'invalid port "{to_str(port)}" after host')
        zone = host[:i].find(b"%25")
        if zone >= 0:
            return (unescape(host[:zone], ENCODE_HOST) + unescape(host[zone:i], ENCODE_PATH_SEGMENT)
                    + unescape(host[i:], ENCODE_HOST))
    else:
        i = host.rfind(b":")
        if i >= 0 and not _valid_optional_port(host[i:]):
            raise GoURLError(f'invalid port "{to_str(host[i:])}" after host')
    return unescape(host, ENCODE_HOST)


_USERINFO: Final = _ALNUM | frozenset(b"-._:~!$&'()*+,;=%@")


def _parse_authority(authority: bytes) -> tuple[tuple[bytes, bytes | None] | None, bytes]:
    i = authority.rfind(b"@")
    host = _parse_host(authority if i < 0 else authority[i + 1:])
    if i < 0:
        return None, host
    userinfo = authority[:i]
    if not all(c in _USERINFO for c in userinfo):
        raise GoURLError("net/url: invalid userinfo")
    if b":" not in userinfo:
        return (unescape(userinfo, ENCODE_USER), None), host
    name, _, password = userinfo.partition(b":")
    return (unescape(name, ENCODE_USER), unescape(password, ENCODE_USER)), host


def parse_url(raw: bytes) -> GoURL:
    """Go's ``url.Parse``; raises :class:`GoURLError` where Go returns an error."""
    main, sep, frag = raw.partition(b"#")
    if any(c < 0x20 or c == 0x7F for c in main):
        raise GoURLError("net/url: invalid control character in URL")
    url = GoURL()
    if main == b"*":
        url.path = main
    else:
        scheme, rest = _get_scheme(main)
        url.scheme = scheme.lower()
        if rest.endswith(b"?") and rest.count(b"?") == 1:
            url.force_query = True
            rest = rest[:-1]
        else:
            rest, _, url.raw_query = rest.partition(b"?")
        if rest[:1] != b"/":
            if url.scheme:
                url.opaque = rest
                rest = b""
            elif b":" in rest.partition(b"/")[0]:
                raise GoURLError("first path segment in URL cannot contain colon")
        if not url.opaque:
            if (url.scheme or not rest.startswith(b"///")) and rest.startswith(b"//"):
                authority, slash, tail = rest[2:].partition(b"/")
                rest = slash + tail
                url.user, url.host = _parse_authority(authority)
            elif url.scheme and rest[:1] == b"/":
                url.omit_host = True
            url.path = unescape(rest)
            url.raw_path = b"" if escape(url.path) == rest else rest
    if sep and frag:
        if any(c < 0x20 or c == 0x7F for c in frag):
            raise GoURLError("net/url: invalid control character in URL")
        url.fragment = unescape(frag, ENCODE_FRAGMENT)
        url.raw_fragment = b"" if escape(url.fragment, ENCODE_FRAGMENT) == frag else frag
    return url


# --------------------------------------------------------------------------------------------
# Regexp.ReplaceAllString


def _is_name_char(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or ch.isdecimal()


class GoTemplate:
    """A replacement template in Go's ``Regexp.Expand`` syntax, resolved against ``pattern``."""

    __slots__ = ("_names", "literal", "parts")

    def __init__(self, template: str, pattern: re.Pattern[str], names: dict[str, int] | None = None) -> None:
        #: Go group name -> number (the translated Python pattern has no names).
        self._names = names if names is not None else dict(pattern.groupindex)
        parts: list[str | int] = []
        text: list[str] = []
        rest = template
        while True:
            before, dollar, after = rest.partition("$")
            if not dollar:
                break
            text.append(before)
            rest = after
            if rest[:1] == "$":
                text.append("$")
                rest = rest[1:]
                continue
            brace = rest[:1] == "{"
            body = rest[1:] if brace else rest
            i = 0
            while i < len(body) and _is_name_char(body[i]):
                i += 1
            if i == 0 or (brace and body[i:i + 1] != "}"):
                text.append("$")  # malformed: the $ is literal
                continue
            name = body[:i]
            rest = body[i + 1:] if brace else body[i:]
            if text:
                parts.append("".join(text))
                text = []
            parts.append(self._group(name, pattern))
        text.append(rest)
        literal = "".join(text)
        if literal:
            parts.append(literal)
        self.parts = tuple(parts)
        #: The whole template when it has no group reference.
        self.literal: str | None = "".join(p for p in parts if isinstance(p, str)) \
            if all(isinstance(p, str) for p in parts) else None

    def _group(self, name: str, pattern: re.Pattern[str]) -> int:
        """Group number for ``name``; -1 expands to nothing."""
        if name.isascii() and name.isdigit() and not (len(name) > 1 and name[0] == "0"):
            num = int(name) if len(name) < 10 else -1
            return num if 0 <= num <= pattern.groups else -1
        return self._names.get(name, -1)

    def expand(self, m: re.Match[str]) -> str:
        if self.literal is not None:
            return self.literal
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            elif part >= 0:
                out.append(m.group(part) or "")
        return "".join(out)


def replace_all(pattern: re.Pattern[str], src: str, template: GoTemplate,
                first: re.Match[str] | None = None) -> str:
    """Go's ``Regexp.ReplaceAllString(src, template)`` (``first``: the first match, if known)."""
    out: list[str] = []
    last_end = 0
    search_pos = 0
    end = len(src)
    m = first if first is not None else pattern.search(src)
    while m is not None:
        start, stop = m.span()
        out.append(src[last_end:start])
        if stop > last_end or start == 0:
            out.append(template.expand(m))
        last_end = stop
        if search_pos + 1 > stop:
            search_pos += 1
        else:
            search_pos = stop
        if search_pos > end:
            break
        m = pattern.search(src, search_pos)
    out.append(src[last_end:])
    return "".join(out)


# --------------------------------------------------------------------------------------------
# Shared by the middlewares


_NAMED: Final = re.compile(r"\?P?<(\w+)>")


def go_group_names(pattern: str, groups: int) -> dict[str, int]:
    """Go's capture-group names of ``pattern`` -> group number (first wins); ``{}`` if the count of
    capturing groups found does not match ``groups`` (the compiled pattern's)."""
    names: dict[str, int] = {}
    group = 0
    i = 0
    n = len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            if pattern[i + 1:i + 2] == "Q":
                end = pattern.find("\\E", i + 2)
                i = n if end < 0 else end + 2
            else:
                i += 2
            continue
        if in_class:
            if pattern.startswith("[:", i):
                end = pattern.find(":]", i + 2)
                i = n if end < 0 else end + 2
                continue
            if c == "]":
                in_class = False
            i += 1
            continue
        if c == "[":
            in_class = True
            i += 1
            if pattern[i:i + 1] == "^":
                i += 1
            if pattern[i:i + 1] == "]":
                i += 1
            continue
        if c == "(":
            if pattern[i + 1:i + 2] != "?":
                group += 1
            else:
                named = _NAMED.match(pattern, i + 1)
                if named is not None:
                    group += 1
                    names.setdefault(named.group(1), group)
        i += 1
    return names if group == groups else {}


def compile_template(template: str, regexp: re.Pattern[str], pattern: str) -> GoTemplate:
    """A :class:`GoTemplate` for ``regexp`` compiled from the Go ``pattern`` (names resolved)."""
    return GoTemplate(template, regexp, go_group_names(pattern, regexp.groups))


def compile_regex(pattern: str, path: str) -> re.Pattern[str]:
    """Compile a Go RE2 ``pattern`` from configuration key ``path``; raises ``ConfigError``."""
    try:
        return compile_go(pattern)
    except RegexpError as exc:
        raise ConfigError(f"invalid regular expression {pattern!r}: {exc.message} (at offset {exc.pos})",
                          path=path, fix=exc.fix or "write the expression in Go RE2 syntax") from None


_ERROR_HEADERS: Final = ((b"X-Content-Type-Options", b"nosniff"),)


def http_error(ex: Exchange, status: int, message: str) -> None:
    """Go's ``http.Error(rw, message, status)``: text/plain, nosniff, message and a newline."""
    ex.respond(status, _ERROR_HEADERS, message.encode() + b"\n")


def bad_request(ex: Exchange) -> None:
    http_error(ex, 400, "Bad Request")
