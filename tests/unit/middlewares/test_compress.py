"""``compress``: Accept-Encoding negotiation (Traefik's acceptencoding_test.go cases and more), which
responses are compressed, and the three codings decoded by Python's own decoders."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import brotli  # type: ignore[import-untyped]
import pytest
import zstandard

from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange, Headers
from ferryman.middlewares import build_middleware
from ferryman.middlewares.compress import (
    IDENTITY,
    NOT_ACCEPTABLE,
    CompressHandler,
    choose_encoding,
    parse_media_type,
)
from tests.unit.middlewares.conformance_support import case_exchange, final_head, mw

ALL = ("gzip", "br", "zstd")
TEXT = b"The quick brown fox jumps over the lazy dog. " * 100  # 4500 bytes


@pytest.mark.parametrize(("accept", "encodings", "default", "expected"), [
    (None, ALL, "", IDENTITY),  # no header, no defaultEncoding: not compressed
    (None, ALL, "zstd", "zstd"),  # no header: defaultEncoding
    ([""], ALL, "gzip", IDENTITY),  # empty header: identity
    (["gzip"], ALL, "", "gzip"),
    (["br"], ALL, "", "br"),
    (["zstd"], ALL, "", "zstd"),
    (["gzip, br, zstd"], ALL, "", "gzip"),  # same weight: server priority order
    (["zstd, br, gzip"], ALL, "", "gzip"),
    (["zstd, br"], ALL, "", "br"),
    (["gzip, br, zstd"], ("zstd", "br", "gzip"), "", "zstd"),
    (["gzip;q=0.5, br;q=0.8, zstd;q=0.7"], ALL, "", "br"),
    (["gzip;q=1.0, br;q=0.8"], ALL, "", "gzip"),
    (["gzip;q=0, br"], ALL, "", "br"),
    (["gzip;q=0"], ALL, "", NOT_ACCEPTABLE),
    (["*"], ALL, "", "gzip"),  # wildcard: first configured encoding
    (["*"], ALL, "br", "br"),  # ... or defaultEncoding
    (["*;q=0"], ALL, "", NOT_ACCEPTABLE),
    (["*, gzip"], ALL, "", "gzip"),  # at the same weight, '*' ranks first
    (["gzip;q=0.5, *"], ALL, "", "gzip"),  # '*' wins on weight, defaults to gzip
    (["identity"], ALL, "", IDENTITY),
    (["identity, gzip"], ALL, "", "gzip"),  # identity ranks last at equal weight
    (["identity;q=1, gzip;q=0.5"], ALL, "", IDENTITY),
    (["deflate"], ALL, "", NOT_ACCEPTABLE),  # unsupported only
    (["deflate, br"], ALL, "", "br"),
    (["br"], ("gzip",), "", NOT_ACCEPTABLE),  # not configured
    (["GZIP"], ALL, "", NOT_ACCEPTABLE),  # names compared exactly, as Traefik
    (["gzip;q=abc, br;q=0.1"], ALL, "", "br"),  # unparsable q = 0
    (["gzip", "br;q=1.1"], ALL, "", "br"),  # several header lines
    ([" gzip ; q=0.2 , zstd ; q=0.3 "], ALL, "", "zstd"),
])
def test_negotiation(accept: list[str] | None, encodings: tuple[str, ...], default: str, expected: str) -> None:
    lines = None if accept is None else [a.encode() for a in accept]
    assert choose_encoding(lines, encodings, default) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("text/html", ("text/html", {})),
    ("Text/HTML; Charset=utf-8", ("text/html", {"charset": "utf-8"})),
    ('text/plain; a="b;c"; d=e;', ("text/plain", {"a": "b;c", "d": "e"})),
    ("attachment", ("attachment", {})),
    ("text/", None),
    ("te xt/html", None),
    ("text/html; a", None),
    ("text/html; a=b; a=c", None),
    ("", None),
])
def test_parse_media_type(value: str, expected: tuple[str, dict[str, str]] | None) -> None:
    assert parse_media_type(value) == expected


class Backend:
    """Answers through ``ex.sink`` with the given head and body chunks."""

    def __init__(self, status: int = 200, headers: Headers | None = None, chunks: list[bytes] | None = None,
                 length: int | None = None, trailers: Headers | None = None) -> None:
        self.status = status
        self.headers = [(b"Content-Type", b"text/plain")] if headers is None else headers
        self.chunks = [TEXT] if chunks is None else chunks
        self.length = sum(map(len, self.chunks)) if length is None else length
        self.trailers = trailers

    def handle(self, ex: Exchange) -> None:
        ex.send_head(self.status, list(self.headers), self.length)
        for chunk in self.chunks:
            ex.send_data(chunk)
        ex.send_end(self.trailers)


def _run(config: Any, backend: Any, accept: str | None = "gzip", method: str = "GET",
         req_headers: dict[str, list[str]] | None = None) -> tuple[int, dict[str, list[str]], int, bytes, list[Any]]:
    handler = build_middleware("cz", mw("compress", config), backend)
    headers = dict(req_headers or {})
    if accept is not None:
        headers["Accept-Encoding"] = [accept]
    ex, down = case_exchange({"method": method, "url": "/", "host": "h", "headers": headers,
                              "remote_addr": "1.2.3.4:5"})
    handler.handle(ex)
    status, head, length = final_head(down)
    body = b"".join(v for k, v in down.calls if k == "data")
    return status, head, length, body, down.calls


def _decode(encoding: str, data: bytes) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(data)
    if encoding == "br":
        out: bytes = brotli.decompress(data)
        return out
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
@pytest.mark.parametrize("streamed", [False, True])
def test_each_encoding_round_trips(encoding: str, streamed: bool) -> None:
    chunks = [TEXT[:1000], TEXT[1000:3000], TEXT[3000:]]
    backend = Backend(chunks=chunks, length=-1 if streamed else None)
    status, head, length, body, calls = _run({}, backend, accept=encoding)
    assert status == 200 and length == -1
    assert head["Content-Encoding"] == [encoding] and head["Vary"] == ["Accept-Encoding"]
    assert len(body) < len(TEXT) // 5
    assert _decode(encoding, body) == TEXT
    assert calls[-1][0] == "end"
    # every chunk goes out at once (flushed): the decoder sees the first chunk before the end
    first = next(v for k, v in calls if k == "data")
    if encoding == "gzip":
        assert zlib.decompressobj(31).decompress(first) == chunks[0]
    elif encoding == "zstd":
        assert zstandard.ZstdDecompressor().decompressobj().decompress(first) == chunks[0]
    else:
        assert brotli.Decompressor().process(first) == chunks[0]


def test_small_known_length_bodies_are_left_alone() -> None:
    small = TEXT[:1023]
    _status, head, length, body, _ = _run({}, Backend(chunks=[small]))
    assert "Content-Encoding" not in head and length == 1023 and body == small
    assert head["Vary"] == ["Accept-Encoding"]
    _status, head, length, body, _ = _run({}, Backend(chunks=[TEXT[:1024]]))
    assert head["Content-Encoding"] == ["gzip"] and gzip.decompress(body) == TEXT[:1024]
    # minResponseBodyBytes
    _status, head, length, body, _ = _run({"minResponseBodyBytes": 5000}, Backend())
    assert "Content-Encoding" not in head and body == TEXT
    _status, head, length, body, _ = _run({"minResponseBodyBytes": 10}, Backend(chunks=[b"x" * 20]))
    assert head["Content-Encoding"] == ["gzip"] and gzip.decompress(body) == b"x" * 20


def test_a_streamed_body_is_compressed_from_its_first_chunk_an_empty_one_is_not() -> None:
    # Go's reverse proxy flushes each write of a streamed response; Traefik then starts compressing.
    _status, head, _length, body, _ = _run({}, Backend(chunks=[b"", b"tiny"], length=-1))
    assert head["Content-Encoding"] == ["gzip"] and gzip.decompress(body) == b"tiny"
    _status, head, length, body, calls = _run({}, Backend(chunks=[b""], length=-1, trailers=[(b"x-t", b"1")]))
    assert "Content-Encoding" not in head and length == 0 and body == b""
    assert calls[-1] == ("end", [(b"x-t", b"1")])


def test_already_encoded_responses_are_untouched() -> None:
    payload = gzip.compress(TEXT)
    for value in (b"gzip", b"br", b"custom"):
        _status, head, length, body, _ = _run({}, Backend(headers=[(b"Content-Encoding", value)], chunks=[payload]))
        assert head["Content-Encoding"] == [value.decode()] and body == payload and length == len(payload)
    # an empty Content-Encoding does not count (Go's Header.Get(...) != "")
    _status, head, _length, body, _ = _run({}, Backend(headers=[(b"content-encoding", b"")]))
    assert head["Content-Encoding"] == ["gzip"] and gzip.decompress(body) == TEXT


def test_partial_content_is_untouched() -> None:
    _status, head, length, body, _ = _run({}, Backend(206, [(b"Content-Range", b"bytes 0-4499/9000")]))
    assert "Content-Encoding" not in head and body == TEXT and length == len(TEXT)


def test_accept_ranges_dropped_for_gzip_only() -> None:
    headers: Headers = [(b"Accept-Ranges", b"bytes"), (b"Content-Type", b"text/plain")]
    assert "Accept-Ranges" not in _run({}, Backend(headers=headers), accept="gzip")[1]
    assert _run({}, Backend(headers=headers), accept="br")[1]["Accept-Ranges"] == ["bytes"]


@pytest.mark.parametrize(("config", "ctype", "compressed"), [
    ({}, b"text/plain", True),
    ({}, b"application/grpc", False),  # always excluded
    ({}, b"application/grpc+proto", True),
    ({"excludedContentTypes": ["text/event-stream"]}, b"text/event-stream", False),
    ({"excludedContentTypes": ["text/event-stream"]}, b"Text/Event-Stream; charset=utf-8", False),
    ({"excludedContentTypes": ["text/event-stream; charset=utf-8"]}, b"text/event-stream", False),
    ({"excludedContentTypes": ["text/event-stream"]}, b"text/html", True),
    ({"includedContentTypes": ["text/html", "application/json"]}, b"application/json", True),
    ({"includedContentTypes": ["text/html"]}, b"text/html; charset=utf-8", True),
    ({"includedContentTypes": ["text/html"]}, b"text/plain", False),
    ({"includedContentTypes": ["text/html"]}, None, True),  # no Content-Type: compressed
    ({}, b"bad type/", False),  # unparsable: not compressed
])
def test_content_types(config: dict[str, Any], ctype: bytes | None, compressed: bool) -> None:
    headers: Headers = [] if ctype is None else [(b"Content-Type", ctype)]
    for accept in ("gzip", "br", "zstd"):
        head = _run(config, Backend(headers=headers), accept=accept)[1]
        assert ("Content-Encoding" in head) is compressed


def test_request_content_type_excluded_skips_the_middleware() -> None:
    head = _run({}, Backend(), req_headers={"Content-Type": ["application/grpc"]})[1]
    assert "Content-Encoding" not in head and "Vary" not in head
    head = _run({"excludedContentTypes": ["text/event-stream"]}, Backend(),
                req_headers={"Content-Type": ["text/event-stream"]})[1]
    assert "Content-Encoding" not in head


def test_vary_is_added_once_and_only_when_an_encoding_was_chosen() -> None:
    head = _run({}, Backend(headers=[(b"Vary", b"Origin")]))[1]
    assert head["Vary"] == ["Origin", "Accept-Encoding"]
    head = _run({}, Backend(headers=[(b"vary", b"origin, accept-encoding")]))[1]
    assert head["Vary"] == ["origin, accept-encoding"]  # canonical names here: not added twice
    assert "Vary" not in _run({}, Backend(), accept=None)[1]
    assert "Vary" not in _run({}, Backend(), accept="deflate")[1]
    assert "Vary" not in _run({}, Backend(), accept="identity")[1]


@pytest.mark.parametrize("status", [204, 304])
def test_bodyless_statuses(status: int) -> None:
    _s, head, _length, body, _ = _run({}, Backend(status, [(b"Content-Type", b"text/plain")], [], length=0))
    assert "Content-Encoding" not in head and body == b"" and head["Vary"] == ["Accept-Encoding"]
    _s, head, _length, body, _ = _run({}, Backend(status, [], [], length=-1))
    assert "Content-Encoding" not in head and body == b""


def test_head_and_upgrade_pass_through() -> None:
    head = _run({}, Backend(), method="HEAD")[1]
    assert "Content-Encoding" not in head and "Vary" not in head
    handler = build_middleware("cz", mw("compress", {}), Backend())
    ex, down = case_exchange({"method": "GET", "url": "/", "host": "h", "remote_addr": "1.2.3.4:5",
                              "headers": {"Accept-Encoding": ["gzip"]}})
    ex.upgrade = b"websocket"
    handler.handle(ex)
    assert "Content-Encoding" not in final_head(down)[1]


def test_default_encoding_without_accept_encoding() -> None:
    _s, head, _l, body, _ = _run({"defaultEncoding": "zstd"}, Backend(), accept=None)
    assert head["Content-Encoding"] == ["zstd"] and _decode("zstd", body) == TEXT
    assert "Content-Encoding" not in _run({"defaultEncoding": "zstd"}, Backend(), accept="")[1]


def test_a_local_answer_and_trailers_and_abort() -> None:
    class Local:
        def handle(self, ex: Exchange) -> None:
            ex.respond(200, (), TEXT)

    _s, head, _l, body, _ = _run({}, Local(), accept="br")
    assert head["Content-Encoding"] == ["br"] and _decode("br", body) == TEXT
    _s, head, _l, body, calls = _run({}, Backend(length=-1, trailers=[(b"x-sum", b"1")]))
    assert gzip.decompress(body) == TEXT and calls[-1] == ("end", [(b"x-sum", b"1")])

    class Aborting:
        def handle(self, ex: Exchange) -> None:
            ex.send_head(200, [], -1)
            ex.abort()

    handler = build_middleware("cz", mw("compress", {}), Aborting())
    ex, down = case_exchange({"method": "GET", "url": "/", "host": "h", "remote_addr": "1.2.3.4:5",
                              "headers": {"Accept-Encoding": ["gzip"]}})
    handler.handle(ex)
    assert [k for k, _ in down.calls] == ["abort"]


def test_config() -> None:
    assert isinstance(build_middleware("cz", mw("compress", True), Backend()), CompressHandler)  # label form
    assert isinstance(build_middleware("cz", mw("compress", {}), Backend()), CompressHandler)
    for bad, message in [
        ({"excludedContentTypes": ["a/b"], "includedContentTypes": ["c/d"]}, "mutually exclusive"),
        ({"excludedContentTypes": ["bad type"]}, "parsing excluded media type"),
        ({"includedContentTypes": ["a/"]}, "parsing included media type"),
        ({"encodings": []}, "at least one encoding"),
        ({"encodings": ["gzip", "deflate"]}, "unsupported encoding: deflate"),
        ({"encodings": ["gzip"], "defaultEncoding": "br"}, "unsupported default encoding: br"),
    ]:
        with pytest.raises(ConfigError, match=message):
            build_middleware("cz", mw("compress", bad), Backend())
    # encodings order is the server's priority
    _s, head, _l, _b, _c = _run({"encodings": ["zstd", "gzip"]}, Backend(), accept="gzip, br, zstd")
    assert head["Content-Encoding"] == ["zstd"]
