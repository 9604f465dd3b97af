"""``contentType``: Go's ``http.DetectContentType`` table and when a response gets sniffed."""

from __future__ import annotations

from typing import Any

import pytest

from ferryman.http.exchange import Exchange, Headers
from ferryman.middlewares import build_middleware
from ferryman.middlewares.content_type import ContentTypeHandler, detect_content_type
from tests.unit.middlewares.conformance_support import case_exchange, final_head, mw

HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
BIN = "application/octet-stream"


# Go's net/http sniff_test.go cases (name, data, type).
@pytest.mark.parametrize(("data", "ctype"), [
    (b"", TEXT),
    (b"\x01\x02\x03", BIN),
    (b"<HtMl><bOdY>blah blah blah</body></html>", HTML),
    (b"<HTML></HTML>", HTML),
    (b"   <!DOCTYPE HTML>...", HTML),
    (b"\r\n<html>...", HTML),
    (b"<!-- comment -->", HTML),
    (b"<a href=x>", HTML),
    (b"<ab>", TEXT),  # "<A" must be followed by a space or '>'
    ("This is not HTML. It has ☃ though.".encode(), TEXT),
    (b"\n<?xml!", "text/xml; charset=utf-8"),
    (b"\x00\x00\x01\x00", "image/x-icon"),
    (b"\x00\x00\x02\x00", "image/x-icon"),
    (b"BMfoo", "image/bmp"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a...", "image/gif"),
    (b"RIFF\x00\x00\x00\x00WEBPVP", "image/webp"),
    (b"\x89PNG\x0d\x0a\x1a\x0a", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"FORM\x00\x00\x00\x00AIFF", "audio/aiff"),
    (b"ID3\x03\x00", "audio/mpeg"),
    (b"OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x7e\x46\x00\x00", "application/ogg"),
    (b"owow\x00", BIN),
    (b"MThd\x00\x00\x00\x06\x00\x01", "audio/midi"),
    (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom<\x06t\xbfmdat", "video/mp4"),
    (b"RIFF,O\n\x00AVI LISTX", "video/avi"),
    (b"RIFF,\x00\x00\x00WAVEfmt ", "audio/wave"),
    (b"\x1a\x45\xdf\xa3\x01\x00", "video/webm"),
    (b"\x00\x01\x00\x00\x00\x17\x01\x00\x00\x04\x01\x60\x4f", "font/ttf"),
    (b"OTTO\x00", "font/otf"),
    (b"wOFF\x00\x01\x00\x00", "font/woff"),
    (b"wOF2\x00\x01\x00\x00", "font/woff2"),
    (b"\x1f\x8b\x08", "application/x-gzip"),
    (b"PK\x03\x04", "application/zip"),
    (b"Rar!\x1a\x07\x00", "application/x-rar-compressed"),
    (b"Rar!\x1a\x07\x01\x00", "application/x-rar-compressed"),
    (b"Rar \x1a\x07\x00", BIN),
    (b"\x00asm\x01\x00", "application/wasm"),
    (b"%PDF-1.7", "application/pdf"),
    (b"\xef\xbb\xbfhello", "text/plain; charset=utf-8"),
    (b"\xfe\xff\x00h", "text/plain; charset=utf-16be"),
    (b"\x00" * 34 + b"LP", "application/vnd.ms-fontobject"),
    (b"a" * 600 + b"\x00", TEXT),  # only the first 512 bytes count
])
def test_detect_content_type(data: bytes, ctype: str) -> None:
    assert detect_content_type(data) == ctype


class Backend:
    """Answers with the given head and body chunks through ``ex.sink``."""

    def __init__(self, status: int, headers: Headers, chunks: list[bytes], length: int | None = None) -> None:
        self.status = status
        self.headers = headers
        self.chunks = chunks
        self.length = sum(map(len, chunks)) if length is None else length

    def handle(self, ex: Exchange) -> None:
        ex.send_head(self.status, list(self.headers), self.length)
        for chunk in self.chunks:
            ex.send_data(chunk)
        ex.send_end(None)


def _run(config: Any, backend: Backend) -> tuple[int, dict[str, list[str]], bytes]:
    handler = build_middleware("ct", mw("contentType", config), backend)
    ex, down = case_exchange({"method": "GET", "url": "/", "host": "h", "headers": {}, "remote_addr": "1.2.3.4:5"})
    handler.handle(ex)
    status, headers, _ = final_head(down)
    body = b"".join(v for k, v in down.calls if k == "data")
    assert down.calls[-1][0] == "end"
    return status, headers, body


def test_a_response_without_type_is_sniffed() -> None:
    _status, headers, body = _run({}, Backend(200, [], [b"<html><body>x</body></html>"]))
    assert headers["Content-Type"] == [HTML] and body == b"<html><body>x</body></html>"
    assert _run(True, Backend(200, [], [b"plain"]))[1]["Content-Type"] == [TEXT]  # label form "contenttype=true"
    assert _run({"autoDetect": True}, Backend(200, [], [b"\x89PNG\r\n\x1a\n"]))[1]["Content-Type"] == ["image/png"]


def test_what_is_not_sniffed() -> None:
    assert _run({}, Backend(200, [(b"content-type", b"")], [b"<html>"]))[1]["Content-Type"] == [""]
    assert "Content-Type" not in _run({}, Backend(200, [(b"Content-Encoding", b"gzip")], [b"\x1f\x8b\x08"]))[1]
    assert "Content-Type" not in _run({}, Backend(204, [], []))[1]
    assert "Content-Type" not in _run({}, Backend(200, [], []))[1]  # empty body
    assert "Content-Type" not in _run({}, Backend(200, [], [b""], length=-1))[1]
    handler = build_middleware("ct", mw("contentType", {"autoDetect": False}), Backend(200, [], [b"x"]))
    assert isinstance(handler, Backend)  # deprecated autoDetect: false leaves detection off


def test_known_length_is_sniffed_on_up_to_512_bytes_streamed_on_the_first_chunk() -> None:
    chunks = [b"    ", b"<html>" + b"x" * 600]
    assert _run({}, Backend(200, [], chunks))[1]["Content-Type"] == [HTML]
    assert _run({}, Backend(200, [], chunks, length=-1))[1]["Content-Type"] == [TEXT]  # only "    " was seen
    _status, headers, body = _run({}, Backend(200, [], [b"\x00", b"abc"]))
    assert headers["Content-Type"] == [BIN] and body == b"\x00abc"


def test_a_local_answer_behind_it_is_sniffed_too() -> None:
    class Local:
        def handle(self, ex: Exchange) -> None:
            ex.respond(429, (), b"Too Many Requests", content_type=None)

    handler = build_middleware("ct", mw("contentType", {}), Local())
    assert isinstance(handler, ContentTypeHandler)
    ex, down = case_exchange({"method": "GET", "url": "/", "host": "h", "headers": {}, "remote_addr": "1.2.3.4:5"})
    handler.handle(ex)
    assert final_head(down)[1]["Content-Type"] == [TEXT]


def test_abort_drops_the_held_head() -> None:
    class Aborting:
        def handle(self, ex: Exchange) -> None:
            ex.send_head(200, [], 100)
            ex.send_data(b"abc")
            ex.abort()

    handler = build_middleware("ct", mw("contentType", {}), Aborting())
    ex, down = case_exchange({"method": "GET", "url": "/", "host": "h", "headers": {}, "remote_addr": "1.2.3.4:5"})
    handler.handle(ex)
    assert [k for k, _ in down.calls] == ["abort"]
