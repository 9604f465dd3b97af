"""``compress``: gzip, Brotli and Zstandard response compression, as Traefik v3's
``pkg/middlewares/compress``.

Build time (Traefik's ``New``): ``excludedContentTypes`` and ``includedContentTypes`` are mutually
exclusive; each entry must parse as a media type (Go's ``mime.ParseMediaType``; only the media type
is kept, parameters are ignored); ``application/grpc`` is always excluded; ``encodings`` (default
``gzip, br, zstd``, the server's priority order) must be non-empty and only those three;
``defaultEncoding`` must be one of them; ``minResponseBodyBytes`` <= 0 means 1024. Any error is a
:class:`~ferryman.errors.ConfigError`.

Per request (``ServeHTTP`` + ``getCompressionEncoding``): ``HEAD`` and requests whose own
``Content-Type`` is excluded pass through untouched; no ``Accept-Encoding`` at all means
``defaultEncoding`` (or nothing when unset); a single empty ``Accept-Encoding`` means identity.
Otherwise the codings the server knows (the configured ones, ``identity``, ``*``; names compared
exactly, spaces ignored) are kept unless ``q=0``, sorted by weight (default 1), ties broken by the
configured order (``*`` first, ``identity`` last); ``*`` on top means ``defaultEncoding`` or the first
configured encoding; ``identity``, or nothing acceptable, means the response is not compressed.
Upgrade requests are passed through as well (a tunnel is never compressed).

Per response, once an encoding is chosen, ``Vary: Accept-Encoding`` is added (Traefik adds it to
every response of that handler) and the body is compressed unless: the status has no body (1xx,
204, 304) or the body is empty, the response already has a non-empty ``Content-Encoding`` or a
``Content-Range``, its ``Content-Type`` does not parse, is excluded, or is not included, or it has a
known length below ``minResponseBodyBytes``. Traefik buffers the first ``minResponseBodyBytes`` to
decide; ferryman knows the length from the head, so a response of known length is decided at once
and nothing is buffered. A streamed response (unknown length) is compressed from its first non-empty
chunk: Go's reverse proxy flushes after every write of such a response and Traefik's writer starts
compressing on a flush, whatever the size. The head is held until that chunk (an empty streamed
body goes out uncompressed, with length 0).

When compressing, the length becomes unknown (``Content-Length`` is dropped, chunked on HTTP/1.1),
``Content-Encoding`` is set (and ``Accept-Ranges`` dropped for gzip, as ``gzhttp`` does). Each chunk
is compressed and flushed at once (ferryman flushes every response write), so the wrapper holds no
body bytes beyond the compressor's window: the producer's flow control (``ex.set_producer``) is
untouched and memory stays bounded for any body size.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Final, Protocol

import brotli  # type: ignore[import-untyped]
import zstandard

from ferryman.dynamic.models import Compress
from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange, Handler, Headers, ResponseSink

__all__ = [
    "DEFAULT_MIN_SIZE",
    "CompressHandler",
    "build_compress",
    "choose_encoding",
    "parse_media_type",
]

#: ``minResponseBodyBytes`` when not set (klauspost's gzhttp default, used by Traefik).
DEFAULT_MIN_SIZE: Final = 1024
SUPPORTED: Final = ("gzip", "br", "zstd")
IDENTITY: Final = "identity"
NOT_ACCEPTABLE: Final = "not_acceptable"

#: Moderate levels (Traefik uses the Go libraries' defaults: gzip 5-6, Brotli 6, zstd "default" = 3).
GZIP_LEVEL: Final = 5
BROTLI_QUALITY: Final = 5
ZSTD_LEVEL: Final = 3

_TSPECIALS: Final = frozenset('()<>@,;:\\"/[]?=')


def _is_token(s: str) -> bool:
    return bool(s) and all(0x20 < ord(c) < 0x7F and c not in _TSPECIALS for c in s)


def parse_media_type(value: str) -> tuple[str, dict[str, str]] | None:
    """Go's ``mime.ParseMediaType``: ``(lower-case media type, params)`` or ``None`` on error."""
    base, _, rest = value.partition(";")
    media = base.strip().lower()
    main, slash, sub = media.partition("/")
    if not _is_token(main) or (slash and not _is_token(sub)):
        return None
    params: dict[str, str] = {}
    while rest.strip():
        item, _, rest = _split_param(rest)
        if item is None:
            return None
        if not item:
            break
        key, eq, val = item.partition("=")
        key = key.strip().lower()
        val = val.strip()
        if not eq or not _is_token(key):
            return None
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1].replace('\\"', '"')
        elif not _is_token(val):
            return None
        if key in params:
            return None
        params[key] = val
    return media, params


def _split_param(rest: str) -> tuple[str | None, str, str]:
    """The next ``key=value`` of a parameter list (a quoted value may contain ``;``)."""
    text = rest.lstrip()
    if text.startswith(";"):  # a trailing or doubled ';' (Go accepts a trailing one)
        text = text[1:]
        if not text.strip():
            return "", "", ""
        return None, "", ""
    quoted = False
    escaped = False
    for i, c in enumerate(text):
        if escaped:
            escaped = False
        elif c == "\\" and quoted:
            escaped = True
        elif c == '"':
            quoted = not quoted
        elif c == ";" and not quoted:
            return text[:i], ";", text[i + 1:]
    if quoted:
        return None, "", ""
    return text, "", ""


def choose_encoding(accept: list[bytes] | None, encodings: tuple[str, ...], default: str = "") -> str:
    """The coding for a request's ``Accept-Encoding`` lines (``None``: no such header): one of
    ``encodings``, :data:`IDENTITY` or :data:`NOT_ACCEPTABLE` (both mean "do not compress")."""
    if accept is None:
        return default or IDENTITY
    if len(accept) == 1 and accept[0] == b"":
        return IDENTITY
    priority = {"*": -1, IDENTITY: len(encodings)}
    for i, enc in enumerate(encodings):
        priority[enc] = i
    found: list[tuple[float, int, str]] = []
    for line in accept:
        for item in line.decode("latin-1").replace(" ", "").split(","):
            name, sep, param = item.partition(";")
            rank = priority.get(name)
            if rank is None:
                continue
            weight = 1.0
            if sep and param.startswith("q="):
                try:
                    weight = float(param[2:])
                except ValueError:
                    weight = 0.0
                if weight == 0:
                    continue
            found.append((-weight, rank, name))
    if not found:
        return NOT_ACCEPTABLE
    best = min(found)[2]
    if best == "*":
        return default or encodings[0]
    return best


class _Coder(Protocol):
    def compress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...

    def finish(self) -> bytes: ...


class _Gzip:
    __slots__ = ("_z",)

    def __init__(self) -> None:
        self._z = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)

    def compress(self, data: bytes) -> bytes:
        return self._z.compress(data)

    def flush(self) -> bytes:
        return self._z.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._z.flush(zlib.Z_FINISH)


class _Brotli:
    __slots__ = ("_c",)

    def __init__(self) -> None:
        self._c = brotli.Compressor(quality=BROTLI_QUALITY)

    def compress(self, data: bytes) -> bytes:
        out: bytes = self._c.process(data)
        return out

    def flush(self) -> bytes:
        out: bytes = self._c.flush()
        return out

    def finish(self) -> bytes:
        out: bytes = self._c.finish()
        return out


_ZSTD = zstandard.ZstdCompressor(level=ZSTD_LEVEL)


class _Zstd:
    __slots__ = ("_c",)

    def __init__(self) -> None:
        self._c = _ZSTD.compressobj()

    def compress(self, data: bytes) -> bytes:
        return self._c.compress(data)

    def flush(self) -> bytes:
        return self._c.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)

    def finish(self) -> bytes:
        return self._c.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)


_CODERS: Final[dict[str, Callable[[], _Coder]]] = {"gzip": _Gzip, "br": _Brotli, "zstd": _Zstd}


class _Policy:
    """What the responses of one middleware are checked against (shared by its sinks)."""

    __slots__ = ("excludes", "includes", "min_size")

    def __init__(self, excludes: frozenset[str], includes: frozenset[str], min_size: int) -> None:
        self.excludes = excludes
        self.includes = includes
        self.min_size = min_size

    def compressible(self, status: int, headers: Headers, length: int) -> bool:
        if length == 0 or status < 200 or status in (204, 304):
            return False
        if 0 < length < self.min_size:
            return False
        for name, value in headers:
            lname = name.lower()
            if lname == b"content-encoding":
                if value:
                    return False
            elif lname == b"content-range":
                return False
            elif lname == b"content-type" and value:
                parsed = parse_media_type(value.decode("latin-1"))
                if parsed is None:
                    return False
                media = parsed[0]
                if self.includes:
                    if media not in self.includes:
                        return False
                elif media in self.excludes:
                    return False
        return True


_VARY_VALUE: Final = b"Accept-Encoding"


def _add_vary(headers: Headers) -> None:
    for name, value in headers:
        if name.lower() == b"vary" and any(v.strip().lower() == b"accept-encoding" for v in value.split(b",")):
            return
    headers.append((b"Vary", _VARY_VALUE))


class _CompressingSink:
    """Compresses the final response with one coding when :class:`_Policy` allows it."""

    __slots__ = ("_coder", "_encoding", "_head", "_mode", "_next", "_policy")

    # _mode: 0 pass through, 1 head held (streamed body, waiting for data), 2 compressing.

    def __init__(self, nxt: ResponseSink, encoding: str, policy: _Policy) -> None:
        self._next = nxt
        self._encoding = encoding
        self._policy = policy
        self._mode = 0
        self._head: tuple[int, Headers] | None = None
        self._coder: _Coder | None = None

    def send_info(self, status: int, headers: Headers) -> None:
        self._next.send_info(status, headers)

    def send_head(self, status: int, headers: Headers, length: int) -> None:
        _add_vary(headers)
        if not self._policy.compressible(status, headers, length):
            self._next.send_head(status, headers, length)
            return
        if length < 0:
            self._mode = 1
            self._head = (status, headers)
            return
        self._start(status, headers)

    def _start(self, status: int, headers: Headers) -> None:
        encoding = self._encoding
        out: Headers = [h for h in headers if h[0].lower() not in (b"content-encoding", b"content-length")
                        and (encoding != "gzip" or h[0].lower() != b"accept-ranges")]
        out.append((b"Content-Encoding", encoding.encode()))
        self._coder = _CODERS[encoding]()
        self._mode = 2
        self._next.send_head(status, out, -1)

    def send_data(self, data: bytes) -> None:
        mode = self._mode
        if mode == 0:
            self._next.send_data(data)
            return
        if not data:
            return
        if mode == 1:
            head = self._head
            assert head is not None
            self._head = None
            self._start(*head)
        coder = self._coder
        assert coder is not None
        out = coder.compress(data) + coder.flush()
        if out:
            self._next.send_data(out)

    def send_end(self, trailers: Headers | None) -> None:
        mode = self._mode
        if mode == 1:  # a streamed response without body bytes: sent as is
            head = self._head
            assert head is not None
            self._head = None
            self._mode = 0
            self._next.send_head(head[0], head[1], 0)
        elif mode == 2:
            coder = self._coder
            assert coder is not None
            self._coder = None
            self._mode = 0
            tail = coder.finish()
            if tail:
                self._next.send_data(tail)
        self._next.send_end(trailers)

    def abort(self) -> None:
        self._head = None
        self._coder = None
        self._mode = 0
        self._next.abort()


class CompressHandler:
    """The built middleware (a :class:`~ferryman.http.exchange.Handler`)."""

    __slots__ = ("_default", "_encodings", "_excludes", "_policy", "name", "next")

    def __init__(self, name: str, next_handler: Handler, encodings: tuple[str, ...], default: str,
                 excludes: frozenset[str], includes: frozenset[str], min_size: int) -> None:
        self.name = name
        self.next = next_handler
        self._encodings = encodings
        self._default = default
        self._excludes = excludes
        self._policy = _Policy(excludes, includes, min_size)

    def encoding_for(self, ex: Exchange) -> str | None:
        """The coding ``ex``'s response would get (``None``: the middleware stays out of the way)."""
        if ex.method == b"HEAD" or ex.upgrade is not None:
            return None
        accept: list[bytes] | None = None
        ctype: bytes | None = None
        for name, value in ex.headers:
            if name == b"accept-encoding":
                if accept is None:
                    accept = [value]
                else:
                    accept.append(value)
            elif name == b"content-type" and ctype is None:
                ctype = value
        if ctype is not None:
            parsed = parse_media_type(ctype.decode("latin-1"))
            if parsed is not None and parsed[0] in self._excludes:
                return None
        chosen = choose_encoding(accept, self._encodings, self._default)
        return chosen if chosen in _CODERS else None

    def handle(self, ex: Exchange) -> None:
        encoding = self.encoding_for(ex)
        if encoding is not None:
            ex.sink = _CompressingSink(ex.sink, encoding, self._policy)
        self.next.handle(ex)


def _media_types(values: tuple[str, ...], path: str, what: str) -> list[str]:
    out = []
    for value in values:
        parsed = parse_media_type(value)
        if parsed is None:
            raise ConfigError(f"parsing {what} media type: {value!r}: mime: invalid media type", path=path,
                              fix="use a media type such as text/event-stream")
        out.append(parsed[0])
    return out


def build_compress(name: str, config: Compress, next_handler: Handler) -> Handler:
    path = f"http.middlewares.{name}.compress"
    if config.excluded_content_types and config.included_content_types:
        raise ConfigError("excludedContentTypes and includedContentTypes options are mutually exclusive", path=path,
                          fix="keep only one of the two lists")
    excludes = ["application/grpc", *_media_types(config.excluded_content_types, f"{path}.excludedContentTypes",
                                                  "excluded")]
    includes = _media_types(config.included_content_types, f"{path}.includedContentTypes", "included")
    min_size = config.min_response_body_bytes if config.min_response_body_bytes > 0 else DEFAULT_MIN_SIZE
    encodings = SUPPORTED if config.encodings is None else config.encodings
    if not encodings:
        raise ConfigError("at least one encoding must be specified", path=f"{path}.encodings",
                          fix="list some of gzip, br, zstd (or remove encodings for all three)")
    for encoding in encodings:
        if encoding not in SUPPORTED:
            raise ConfigError(f"unsupported encoding: {encoding}", path=f"{path}.encodings",
                              fix="use gzip, br and/or zstd")
    if config.default_encoding and config.default_encoding not in encodings:
        raise ConfigError(f"unsupported default encoding: {config.default_encoding}", path=f"{path}.defaultEncoding",
                          fix="use one of the configured encodings")
    return CompressHandler(name, next_handler, tuple(encodings), config.default_encoding,
                           frozenset(excludes), frozenset(includes), min_size)
