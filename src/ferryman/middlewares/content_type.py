"""``contentType``: Content-Type sniffing for responses that have none, as Traefik v3's
``pkg/middlewares/contenttype``.

Traefik v3 never sniffs by default: its entry point marks every response "no Content-Type
detection" (``DisableAutoDetection``), so a backend response, a redirect or an error body without a
type is sent without one (ferryman does the same). ``contentType: {}`` lifts that mark for the
routers using it, and Go's server then sets ``Content-Type`` from the body with
``http.DetectContentType`` (the WHATWG MIME sniffing table, :func:`detect_content_type` here) when it
writes the head. ``autoDetect`` is deprecated: ``true`` is the same as ``{}``, ``false`` makes the
middleware a no-op.

Per response, as Go's ``chunkWriter.writeHeader``: no sniffing when the head already has a
``Content-Type`` (even empty), a non-empty ``Content-Encoding``, a status without a body (1xx, 204,
304) or an empty body. Otherwise the head is held back until the first body bytes: up to 512 bytes
(or the whole body if shorter) for a response of known length, the first chunk for a streamed one
(Go's reverse proxy flushes each write of those), then goes out with the detected type.

The wrapper sits where the middleware is in the chain, so a response hook registered by a middleware
*before* it (``headers`` editing ``Content-Type``) runs after the sniffing; one after it runs before.
"""

from __future__ import annotations

from typing import Final

from ferryman.dynamic.models import ContentType
from ferryman.http.exchange import Exchange, Handler, Headers, ResponseSink

__all__ = ["SNIFF_LEN", "ContentTypeHandler", "build_content_type", "detect_content_type"]

#: Bytes ``http.DetectContentType`` looks at.
SNIFF_LEN: Final = 512

_WS: Final = frozenset(b"\t\n\x0c\r ")
_TT: Final = frozenset(b" >")
_HTML: Final = "text/html; charset=utf-8"

_HTML_SIGS: Final = tuple(s.encode() for s in (
    "<!DOCTYPE HTML", "<HTML", "<HEAD", "<SCRIPT", "<IFRAME", "<H1", "<DIV", "<FONT", "<TABLE", "<A", "<STYLE",
    "<TITLE", "<B", "<BODY", "<BR", "<P", "<!--"))

# (kind, pattern, mask, content type) in Go's order after the HTML signatures; kind "x" = exact
# prefix, "m" = masked, "mw" = masked after leading whitespace, "mp4" = the MP4 box check.
_SIGS: Final[tuple[tuple[str, bytes, bytes, str], ...]] = (
    ("mw", b"<?xml", b"\xff" * 5, "text/xml; charset=utf-8"),
    ("x", b"%PDF-", b"", "application/pdf"),
    ("x", b"%!PS-Adobe-", b"", "application/postscript"),
    ("m", b"\xfe\xff\x00\x00", b"\xff\xff\x00\x00", "text/plain; charset=utf-16be"),
    ("m", b"\xff\xfe\x00\x00", b"\xff\xff\x00\x00", "text/plain; charset=utf-16le"),
    ("m", b"\xef\xbb\xbf\x00", b"\xff\xff\xff\x00", "text/plain; charset=utf-8"),
    ("x", b"\x00\x00\x01\x00", b"", "image/x-icon"),
    ("x", b"\x00\x00\x02\x00", b"", "image/x-icon"),
    ("x", b"BM", b"", "image/bmp"),
    ("x", b"GIF87a", b"", "image/gif"),
    ("x", b"GIF89a", b"", "image/gif"),
    ("m", b"RIFF\x00\x00\x00\x00WEBPVP", b"\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff", "image/webp"),
    ("x", b"\x89PNG\x0d\x0a\x1a\x0a", b"", "image/png"),
    ("x", b"\xff\xd8\xff", b"", "image/jpeg"),
    ("m", b".snd", b"\xff\xff\xff\xff", "audio/basic"),
    ("m", b"FORM\x00\x00\x00\x00AIFF", b"\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff", "audio/aiff"),
    ("m", b"ID3", b"\xff\xff\xff", "audio/mpeg"),
    ("m", b"OggS\x00", b"\xff\xff\xff\xff\xff", "application/ogg"),
    ("m", b"MThd\x00\x00\x00\x06", b"\xff" * 8, "audio/midi"),
    ("m", b"RIFF\x00\x00\x00\x00AVI ", b"\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff", "video/avi"),
    ("m", b"RIFF\x00\x00\x00\x00WAVE", b"\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff", "audio/wave"),
    ("mp4", b"", b"", "video/mp4"),
    ("x", b"\x1a\x45\xdf\xa3", b"", "video/webm"),
    ("m", b"\x00" * 34 + b"LP", b"\x00" * 34 + b"\xff\xff", "application/vnd.ms-fontobject"),
    ("x", b"\x00\x01\x00\x00", b"", "font/ttf"),
    ("x", b"OTTO", b"", "font/otf"),
    ("x", b"ttcf", b"", "font/collection"),
    ("x", b"wOFF", b"", "font/woff"),
    ("x", b"wOF2", b"", "font/woff2"),
    ("x", b"\x1f\x8b\x08", b"", "application/x-gzip"),
    ("x", b"PK\x03\x04", b"", "application/zip"),
    ("x", b"Rar!\x1a\x07\x00", b"", "application/x-rar-compressed"),
    ("x", b"Rar!\x1a\x07\x01\x00", b"", "application/x-rar-compressed"),
    ("x", b"\x00\x61\x73\x6d", b"", "application/wasm"),
)

#: Bytes that make a body binary for the final text/plain check.
_BINARY: Final = frozenset([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20)])


def _html(data: bytes, sig: bytes) -> bool:
    if len(data) < len(sig) + 1:
        return False
    for i, b in enumerate(sig):
        db = data[i]
        if 0x41 <= b <= 0x5A:
            db &= 0xDF
        if b != db:
            return False
    return data[len(sig)] in _TT


def _masked(data: bytes, pat: bytes, mask: bytes) -> bool:
    if len(data) < len(pat):
        return False
    return all(data[i] & m == p for i, (p, m) in enumerate(zip(pat, mask, strict=True)))


def _mp4(data: bytes) -> bool:
    if len(data) < 12:
        return False
    box = int.from_bytes(data[:4], "big")
    if len(data) < box or box % 4 or data[4:8] != b"ftyp":
        return False
    # Compatible brands from byte 8 on; bytes 12..15 are the major brand's version.
    return any(st != 12 and data[st:st + 3] == b"mp4" for st in range(8, box, 4))


def detect_content_type(data: bytes) -> str:
    """Go's ``http.DetectContentType``: always a type, ``application/octet-stream`` at worst."""
    data = data[:SNIFF_LEN]
    first = 0
    while first < len(data) and data[first] in _WS:
        first += 1
    trimmed = data[first:]
    for sig in _HTML_SIGS:
        if _html(trimmed, sig):
            return _HTML
    for kind, pat, mask, ctype in _SIGS:
        if kind == "x":
            if data.startswith(pat):
                return ctype
        elif kind == "m":
            if _masked(data, pat, mask):
                return ctype
        elif kind == "mw":
            if _masked(trimmed, pat, mask):
                return ctype
        elif _mp4(data):
            return ctype
    if any(b in _BINARY for b in trimmed):
        return "application/octet-stream"
    return "text/plain; charset=utf-8"


def _needs_sniffing(status: int, headers: Headers, length: int) -> bool:
    if length == 0 or status < 200 or status in (204, 304):
        return False
    for name, value in headers:
        lname = name.lower()
        if lname == b"content-type" or (lname == b"content-encoding" and value):
            return False
    return True


class _SniffingSink:
    """Holds the head back until the first body bytes, then adds the detected Content-Type."""

    __slots__ = ("_buf", "_buffered", "_head", "_next")

    def __init__(self, nxt: ResponseSink) -> None:
        self._next = nxt
        self._head: tuple[int, Headers, int] | None = None
        self._buf: list[bytes] = []
        self._buffered = 0

    def send_info(self, status: int, headers: Headers) -> None:
        self._next.send_info(status, headers)

    def send_head(self, status: int, headers: Headers, length: int) -> None:
        if _needs_sniffing(status, headers, length):
            self._head = (status, headers, length)
        else:
            self._next.send_head(status, headers, length)

    def send_data(self, data: bytes) -> None:
        head = self._head
        if head is None:
            self._next.send_data(data)
            return
        if not data:
            return
        self._buf.append(data)
        self._buffered += len(data)
        length = head[2]
        if length < 0 or self._buffered >= SNIFF_LEN or self._buffered >= length:
            self._release()

    def _release(self) -> None:
        head = self._head
        assert head is not None
        self._head = None
        status, headers, length = head
        body = b"".join(self._buf)
        self._buf = []
        if body:
            headers.append((b"Content-Type", detect_content_type(body).encode()))
        self._next.send_head(status, headers, length)
        if body:
            self._next.send_data(body)

    def send_end(self, trailers: Headers | None) -> None:
        if self._head is not None:
            self._release()
        self._next.send_end(trailers)

    def abort(self) -> None:
        self._head = None
        self._buf = []
        self._next.abort()


class ContentTypeHandler:
    """The built middleware (a :class:`~ferryman.http.exchange.Handler`)."""

    __slots__ = ("name", "next")

    def __init__(self, name: str, next_handler: Handler) -> None:
        self.name = name
        self.next = next_handler

    def handle(self, ex: Exchange) -> None:
        ex.sink = _SniffingSink(ex.sink)
        self.next.handle(ex)


def build_content_type(name: str, config: ContentType, next_handler: Handler) -> Handler:
    if config.auto_detect is False:  # deprecated "autoDetect: false": detection stays off
        return next_handler
    return ContentTypeHandler(name, next_handler)
