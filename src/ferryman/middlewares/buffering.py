"""``buffering``: read the whole request before the backend sees it and the whole response before
the client does, as Traefik's ``pkg/middlewares/buffering`` (``vulcand/oxy/v2/buffer``).

Options and defaults: ``maxRequestBodyBytes`` (0 or less: no limit), ``memRequestBodyBytes``
(1 MiB: beyond it the body goes to an anonymous temporary file), ``maxResponseBodyBytes``,
``memResponseBodyBytes`` (same for the response), ``retryExpression``.

Request: a ``Content-Length`` over the limit is refused at once; a streamed body is refused as soon
as it passes the limit. The backend then gets the body with a ``Content-Length`` (a chunked body
is de-chunked, as oxy does). Response: status, headers and body are kept until the backend is
done, then sent with a ``Content-Length``. A request body over the limit answers ``413`` with the
body ``Request Entity Too Large``, a response body over it ``500`` with ``Internal Server Error``
(no ``Content-Type``; checked against Traefik 3.7).

``retryExpression`` (oxy's predicate language): ``IsNetworkError()`` (the answer was ``502`` or
``504``, which is how a dial failure or timeout shows), ``Attempts()`` (this try's number, from 1),
``ResponseCode()``, ``RequestMethod()``, compared with ``==``, ``!=``, ``<``, ``>``, ``<=``,
``>=`` to integer or string literals, combined with ``&&``, ``||`` and parentheses. When it holds
after a try (at most 10 tries in all), the buffered answer is dropped and the request, with its
buffered body, goes through the rest of the chain again (a load balancer picks its next server).

Memory: the part of a body beyond the ``mem*`` threshold is written to a temporary file (deleted
when closed) as it arrives, so slow uploads and large answers do not pile up in memory. The file is
read back in 64 KiB pieces when forwarded. A client that goes away drops everything.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Final

from ferryman.dynamic.models import Buffering
from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange, Handler, Headers

__all__ = ["BufferingHandler", "RetryContext", "build_buffering", "parse_retry_expression"]

DEFAULT_MEM: Final = 1048576
MAX_ATTEMPTS: Final = 10
CHUNK: Final = 65536
_TOO_LARGE: Final = b"Request Entity Too Large"
_FRAMING: Final = frozenset({b"content-length", b"transfer-encoding"})


# ------------------------------------------------------------------------------------------- retry


@dataclass(frozen=True, slots=True)
class RetryContext:
    method: str
    attempt: int
    code: int


Predicate = Callable[[RetryContext], bool]

_TOKEN: Final = re.compile(r'\s*(?:(&&|\|\||==|!=|<=|>=|<|>|\(|\))|([A-Za-z_][A-Za-z0-9_]*)|(-?\d+)|("(?:[^"\\]|\\.)*"|`[^`]*`))')
_FUNCS: Final[dict[str, tuple[str, Callable[[RetryContext], object]]]] = {
    "IsNetworkError": ("bool", lambda c: c.code in (502, 504)),
    "Attempts": ("int", lambda c: c.attempt),
    "ResponseCode": ("int", lambda c: c.code),
    "RequestMethod": ("str", lambda c: c.method),
}


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise ValueError(f"unexpected {text[pos:pos + 10]!r} at offset {pos}")
            op, name, num, string = m.groups()
            if op:
                self.tokens.append(("op", op))
            elif name:
                self.tokens.append(("name", name))
            elif num:
                self.tokens.append(("int", num))
            else:
                raw = string[1:-1]
                self.tokens.append(("str", raw if string[0] == "`" else bytes(raw, "utf-8").decode("unicode_escape")))
            pos = m.end()
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise ValueError("unexpected end of expression")
        self.i += 1
        return tok

    def parse(self) -> Predicate:
        pred = self.or_expr()
        if self.peek() is not None:
            raise ValueError(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return pred

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.peek() == ("op", "||"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda c: any(p(c) for p in parts))

    def and_expr(self) -> Predicate:
        parts = [self.atom()]
        while self.peek() == ("op", "&&"):
            self.take()
            parts.append(self.atom())
        return parts[0] if len(parts) == 1 else (lambda c: all(p(c) for p in parts))

    def atom(self) -> Predicate:
        kind, value = self.take()
        if (kind, value) == ("op", "("):
            inner = self.or_expr()
            if self.take() != ("op", ")"):
                raise ValueError("missing ')'")
            return inner
        if kind != "name" or value not in _FUNCS:
            raise ValueError(f"unknown function {value!r} (known: {', '.join(_FUNCS)})")
        if self.take() != ("op", "(") or self.take() != ("op", ")"):
            raise ValueError(f"{value} takes no arguments: write {value}()")
        vtype, fn = _FUNCS[value]
        tok = self.peek()
        if tok is None or tok[0] != "op" or tok[1] not in ("==", "!=", "<", ">", "<=", ">="):
            if vtype != "bool":
                raise ValueError(f"{value}() must be compared with a value")
            return lambda c: bool(fn(c))
        op = self.take()[1]
        lkind, literal = self.take()
        if vtype == "bool" or (vtype == "str" and (lkind != "str" or op not in ("==", "!="))) \
                or (vtype == "int" and lkind != "int"):
            raise ValueError(f"cannot compare {value}() {op} {literal!r}")
        target: object = int(literal) if lkind == "int" else literal
        compare: dict[str, Callable[[object, object], bool]] = {
            "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
            "<": lambda a, b: a < b, ">": lambda a, b: a > b,  # type: ignore[operator]
            "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,  # type: ignore[operator]
        }
        cmp = compare[op]
        return lambda c: cmp(fn(c), target)


def parse_retry_expression(text: str) -> Predicate:
    """oxy's ``buffer.Retry`` expression as a predicate; raises ``ValueError``."""
    return _Parser(text).parse()


# ------------------------------------------------------------------------------------------- storage


class _Spool:
    """Bytes in memory up to ``mem`` then in an anonymous temporary file."""

    __slots__ = ("chunks", "file", "mem", "size")

    def __init__(self, mem: int) -> None:
        self.mem = mem
        self.chunks: list[bytes] = []
        self.file: IO[bytes] | None = None
        self.size = 0

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.file is not None:
            self.file.write(data)
            return
        self.chunks.append(data)
        if self.size > self.mem:
            self.file = tempfile.TemporaryFile(prefix="ferryman-buffer-")  # noqa: SIM115 - closed in close()
            for chunk in self.chunks:
                self.file.write(chunk)
            self.chunks = []

    def read(self) -> Iterator[bytes]:
        if self.file is None:
            yield from self.chunks
            return
        self.file.flush()
        self.file.seek(0)
        while chunk := self.file.read(CHUNK):
            yield chunk

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        self.chunks = []


# ------------------------------------------------------------------------------------------- handler


def _too_large(ex: Exchange) -> None:
    ex.respond(413, (), _TOO_LARGE, content_type=None)


def _internal_error(ex: Exchange) -> None:
    ex.respond(500, (), b"Internal Server Error", content_type=None)


class _RequestReader:
    __slots__ = ("_ex", "_over", "_owner", "spool")

    def __init__(self, owner: BufferingHandler, ex: Exchange) -> None:
        self._owner = owner
        self._ex = ex
        self.spool = _Spool(owner.mem_request)
        self._over = False

    def body_data(self, data: bytes) -> None:
        if self._over:
            return
        self.spool.write(data)
        limit = self._owner.max_request
        if 0 < limit < self.spool.size:
            self._over = True
            self.spool.close()
            _too_large(self._ex)

    def body_end(self, trailers: Headers | None) -> None:
        if self._over or self._ex.done:
            self.spool.close()
            return
        _Attempt(self._owner, self._ex, self.spool).start()


class _Attempt:
    """One buffered exchange with its tries; the response sink of the inner chain."""

    __slots__ = ("_code", "_ex", "_headers", "_over", "_owner", "_request", "_response", "_sink", "_tries")

    def __init__(self, owner: BufferingHandler, ex: Exchange, request: _Spool | None) -> None:
        self._owner = owner
        self._ex = ex
        self._request = request
        self._sink = ex.sink
        self._tries = 0
        self._code = 0
        self._headers: Headers = []
        self._response = _Spool(owner.mem_response)
        self._over = False

    def start(self) -> None:
        ex = self._ex
        if ex.done:
            self._close()
            return
        self._tries += 1
        self._code = 0
        self._headers = []
        self._response.close()
        self._response = _Spool(self._owner.mem_response)
        self._over = False
        request = self._request
        if request is not None:
            ex.body_length = request.size
            ex.replay_body(request.read())
        ex.sink = self
        self._owner.next.handle(ex)

    # ResponseSink
    def send_info(self, status: int, headers: Headers) -> None:
        pass  # interim answers are not relayed through a buffer

    def send_head(self, status: int, headers: Headers, length: int) -> None:
        self._code = status
        self._headers = [(n, v) for n, v in headers if n.lower() not in _FRAMING]

    def send_data(self, data: bytes) -> None:
        if self._over:
            return
        self._response.write(data)
        limit = self._owner.max_response
        if 0 < limit < self._response.size:
            self._over = True
            self._response.close()

    def send_end(self, trailers: Headers | None) -> None:
        ex = self._ex
        ex.sink = self._sink
        if ex.done:
            self._close()
            return
        if self._over:
            self._close()
            _internal_error(ex)
            return
        retry = self._owner.retry
        if retry is not None and self._tries < MAX_ATTEMPTS and retry(
                RetryContext(ex.method.decode("latin-1"), self._tries, self._code)):
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.start()
                return
            loop.call_soon(self.start)  # after the backend connection finished with this try
            return
        sink = self._sink
        body = self._response
        sink.send_head(self._code, self._headers, body.size)
        for chunk in body.read():
            sink.send_data(chunk)
        sink.send_end(None)
        self._close()

    def abort(self) -> None:
        self._ex.sink = self._sink
        self._close()
        self._sink.abort()

    def _close(self) -> None:
        self._response.close()
        if self._request is not None:
            self._request.close()


class BufferingHandler:
    """The built middleware (a :class:`~ferryman.http.exchange.Handler`)."""

    __slots__ = ("max_request", "max_response", "mem_request", "mem_response", "name", "next", "retry")

    def __init__(self, name: str, next_handler: Handler, config: Buffering, retry: Predicate | None) -> None:
        self.name = name
        self.next = next_handler
        self.max_request = config.max_request_body_bytes
        self.mem_request = config.mem_request_body_bytes if config.mem_request_body_bytes > 0 else DEFAULT_MEM
        self.max_response = config.max_response_body_bytes
        self.mem_response = config.mem_response_body_bytes if config.mem_response_body_bytes > 0 else DEFAULT_MEM
        self.retry = retry

    def handle(self, ex: Exchange) -> None:
        if 0 < self.max_request < ex.body_length:
            _too_large(ex)
            return
        if ex.body_length != 0:
            ex.set_body_consumer(_RequestReader(self, ex))
            return
        _Attempt(self, ex, None).start()


def build_buffering(name: str, config: Buffering, next_handler: Handler) -> Handler:
    retry = None
    if config.retry_expression:
        try:
            retry = parse_retry_expression(config.retry_expression)
        except ValueError as exc:
            raise ConfigError(f"invalid retryExpression {config.retry_expression!r}: {exc}",
                              path=f"http.middlewares.{name}.buffering.retryExpression",
                              fix="e.g. IsNetworkError() && Attempts() < 2") from None
    return BufferingHandler(name, next_handler, config, retry)
