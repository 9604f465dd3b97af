"""HTTP/1.1 building blocks, sans-I/O: status lines, header classification, framing, Go-like errors.

Everything here is computed once at import time or is a pure function of bytes; the connection
pumps in :mod:`ferryman.server` and :mod:`ferryman.upstream` call these on the hot path.

* :func:`status_line` -- ``b"HTTP/1.1 200 OK\\r\\n"`` for any code (Go's reason phrases; an unknown
  code gets Go's ``"status code N"``).
* :data:`HOP_BY_HOP` -- the header names Go's ReverseProxy removes in both directions.
* :func:`connection_tokens` -- the lower-cased tokens of ``Connection`` values.
* :func:`chunk` / :data:`LAST_CHUNK` / :func:`last_chunk_with_trailers` -- chunked encoding.
* :func:`error_response` -- the bytes Go's ``net/http`` server writes for a request it cannot parse
  (``400 Bad Request``, ``431 ...``, ``501 ...``): ``text/plain``, ``Connection: close``, no length.
* :func:`http_date` -- the IMF-fixdate ``Date`` value, cached per second.
* :func:`split_authority` -- ``host[:port]`` / ``[v6]:port`` split into host and port bytes.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import Final

__all__ = [
    "HOP_BY_HOP",
    "LAST_CHUNK",
    "REASONS",
    "Headers",
    "chunk",
    "connection_tokens",
    "error_response",
    "http_date",
    "last_chunk_with_trailers",
    "serialize_headers",
    "split_authority",
    "status_line",
]

#: Header list as carried everywhere in the data plane: ``(name, value)`` byte pairs.
Headers = list[tuple[bytes, bytes]]

#: Go's ``http.StatusText`` (``net/http/status.go``).
REASONS: Final[dict[int, str]] = {
    100: "Continue", 101: "Switching Protocols", 102: "Processing", 103: "Early Hints",
    200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information",
    204: "No Content", 205: "Reset Content", 206: "Partial Content", 207: "Multi-Status",
    208: "Already Reported", 226: "IM Used",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other",
    304: "Not Modified", 305: "Use Proxy", 307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 409: "Conflict", 410: "Gone",
    411: "Length Required", 412: "Precondition Failed", 413: "Request Entity Too Large",
    414: "Request URI Too Long", 415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable", 417: "Expectation Failed", 418: "I'm a teapot",
    421: "Misdirected Request", 422: "Unprocessable Entity", 423: "Locked",
    424: "Failed Dependency", 425: "Too Early", 426: "Upgrade Required",
    428: "Precondition Required", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 451: "Unavailable For Legal Reasons",
    499: "Client Closed Request",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
    506: "Variant Also Negotiates", 507: "Insufficient Storage", 508: "Loop Detected",
    510: "Not Extended", 511: "Network Authentication Required",
}

STATUS_LINES: Final[dict[int, bytes]] = {
    code: f"HTTP/1.1 {code} {reason}\r\n".encode() for code, reason in REASONS.items()
}


def status_line(code: int) -> bytes:
    """``HTTP/1.1 <code> <reason>\\r\\n``; Go writes ``status code <code>`` for unknown codes."""
    line = STATUS_LINES.get(code)
    if line is None:
        line = f"HTTP/1.1 {code:03d} status code {code}\r\n".encode()
    return line


#: Hop-by-hop headers removed in both directions (Go's ``httputil.hopHeaders``), lower-case.
HOP_BY_HOP: Final = frozenset({
    b"connection", b"proxy-connection", b"keep-alive", b"proxy-authenticate",
    b"proxy-authorization", b"te", b"trailer", b"transfer-encoding", b"upgrade",
})


def connection_tokens(values: list[bytes]) -> list[bytes]:
    """Lower-cased, stripped, non-empty comma-separated tokens of ``Connection`` header values."""
    tokens: list[bytes] = []
    for value in values:
        for part in value.split(b","):
            part = part.strip(b" \t").lower()
            if part:
                tokens.append(part)
    return tokens


def serialize_headers(headers: Headers) -> bytes:
    """``name: value\\r\\n`` for each pair (empty bytes for an empty list)."""
    if not headers:
        return b""
    return b"\r\n".join(map(b": ".join, headers)) + b"\r\n"


LAST_CHUNK: Final = b"0\r\n\r\n"


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (copies ``data``; callers use writelines for big chunks)."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def chunk_prefix(size: int) -> bytes:
    return b"%x\r\n" % size


def last_chunk_with_trailers(trailers: Headers | None) -> bytes:
    if not trailers:
        return LAST_CHUNK
    return b"0\r\n" + serialize_headers(trailers) + b"\r\n"


_ERROR_HEADERS: Final = b"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"


def error_response(code: int, detail: str = "", body: str | None = None) -> bytes:
    """The exact shape of Go's ``net/http`` answer to an unparsable request, then close.

    ``HTTP/1.1 400 Bad Request`` + text/plain + ``Connection: close`` + body ``400 Bad Request``
    (``: detail`` appended to the body when Go gives one, e.g. ``missing required Host header``);
    ``body`` replaces the whole body (Go's 501 says ``Unsupported transfer encoding``).
    """
    public = f"{code} {REASONS.get(code, f'status code {code}')}"
    if body is None:
        body = public + (f": {detail}" if detail else "")
    return b"HTTP/1.1 " + public.encode() + _ERROR_HEADERS + body.encode("utf-8", "replace")


_date_cache: list[object] = [0, b""]


def http_date() -> bytes:
    """``Date`` header value (IMF-fixdate), recomputed at most once per second."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0] = now
        _date_cache[1] = formatdate(now, usegmt=True).encode()
    value = _date_cache[1]
    assert isinstance(value, bytes)
    return value


def split_authority(authority: bytes) -> tuple[bytes, bytes]:
    """``(host, port)`` of ``host[:port]`` or ``[v6]:port`` (port ``b""`` when absent).

    Like Go's ``net.SplitHostPort`` on ``req.Host`` but never failing: an unbracketed IPv6 literal
    or a trailing ``:`` yields no port (``forwardedPort`` then falls back to the scheme's port).
    """
    if authority.startswith(b"["):
        end = authority.find(b"]")
        if end < 0:
            return authority, b""
        host = authority[1:end]
        rest = authority[end + 1:]
        if rest.startswith(b":"):
            return host, rest[1:]
        return host, b""
    head, sep, port = authority.rpartition(b":")
    if not sep or b":" in head:
        return authority, b""
    return head, port
