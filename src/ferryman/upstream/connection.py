"""One keep-alive HTTP/1.1 connection to a backend (asyncio Protocol + httptools response parser).

An :class:`UpstreamConnection` serves one exchange at a time: :meth:`start` writes the request head
(one ``transport.write``), becomes the exchange's body consumer (request body streamed, chunked
when the client's was) and producer (paused when the client reads slowly). Response callbacks
go straight to ``ex.sink``; when the response completes the connection returns to its pool
(LIFO) if both sides allow keep-alive.

Go ReverseProxy semantics: hop-by-hop response headers and the ones named in ``Connection`` are
removed; 1xx responses are relayed (``100`` only when the client expected it); a ``101`` switches
both connections to a raw tunnel (the ``Upgrade`` types must agree, else 502); failures before the
response head answer ``502 Bad Gateway`` (``504 Gateway Timeout`` for responseHeaderTimeout), after
it abort the client connection; a request on a reused connection that dies before any response
byte is replayed once on a new connection when it has no body (Go's transport does the same).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Final

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

from ferryman.http.exchange import Exchange, Headers, ResponseSink
from ferryman.proto.h1 import LAST_CHUNK, connection_tokens, last_chunk_with_trailers

if TYPE_CHECKING:
    from ferryman.upstream.pool import Pool

log = logging.getLogger("ferryman.upstream")

__all__ = ["UpstreamConnection"]

R_CL: Final = 1
R_TE: Final = 2
R_CONN: Final = 3
R_DROP: Final = 4
R_UPGRADE: Final = 5

_RSPECIAL: Final[dict[bytes, int]] = {
    b"content-length": R_CL, b"transfer-encoding": R_TE, b"connection": R_CONN,
    b"keep-alive": R_DROP, b"proxy-connection": R_DROP, b"te": R_DROP, b"trailer": R_DROP,
    b"proxy-authenticate": R_DROP, b"proxy-authorization": R_DROP, b"upgrade": R_UPGRADE,
}
# Exact spellings seen on the hot path (saves a lower() per header); 0 = an ordinary header.
_RKNOWN: Final[dict[bytes, int]] = {
    b"Content-Length": R_CL, b"Transfer-Encoding": R_TE, b"Connection": R_CONN,
    b"Keep-Alive": R_DROP, b"Upgrade": R_UPGRADE, b"Trailer": R_DROP,
    **{name: 0 for name in (
        b"Server", b"Date", b"Content-Type", b"Cache-Control", b"ETag", b"Last-Modified", b"Expires",
        b"Vary", b"Set-Cookie", b"Location", b"Content-Encoding", b"Accept-Ranges", b"Age",
        b"Access-Control-Allow-Origin", b"X-Content-Type-Options", b"Strict-Transport-Security",
        b"server", b"date", b"content-type", b"cache-control", b"etag", b"last-modified", b"vary",
        b"set-cookie", b"location", b"content-encoding")},
    **{name: kind for name, kind in (
        (b"content-length", R_CL), (b"transfer-encoding", R_TE), (b"connection", R_CONN),
        (b"keep-alive", R_DROP), (b"upgrade", R_UPGRADE))},
}

F_CHUNKED: Final = 1
F_CLOSE: Final = 2
F_CONN_OTHER: Final = 4

_BAD_GATEWAY: Final = b"Bad Gateway"
_GATEWAY_TIMEOUT: Final = b"Gateway Timeout"
_REPLAYABLE: Final = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE"})


class UpstreamConnection(asyncio.Protocol):
    """A pooled backend connection. Implements BodyConsumer, Producer and TunnelPeer."""

    __slots__ = (
        "_clen", "_conn_vals", "_flags", "_got_bytes", "_head", "_headers", "_info",
        "_keep", "_parser", "_req_chunked", "_req_done", "_reset_parser", "_rpaused", "_started",
        "_tunnel", "_until_close", "_upgrade_val", "closed", "deadline", "ex", "idle_since",
        "pool", "reused", "sink", "transport",
    )

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self._parser = HttpResponseParser(self)
        self.transport: Any = None
        self.ex: Exchange | None = None
        self.sink: ResponseSink | None = None
        self._head = b""
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self.deadline = 0.0
        self._headers: Headers = []
        self._clen = -1
        self._flags = 0
        self._conn_vals: list[bytes] | None = None
        self._upgrade_val = b""
        self._started = False
        self._got_bytes = False
        self._info = False
        self._keep = False
        self._req_done = True
        self._req_chunked = False
        self._until_close = False
        self._reset_parser = False
        self._tunnel = False
        self._rpaused = False

    # ------------------------------------------------------------------ asyncio side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._tunnel:
            sink = self.sink
            if sink is not None:
                sink.send_data(data)
            return
        self._got_bytes = True
        try:
            self._parser.feed_data(data)
        except HttpParserUpgrade as upg:
            offset = upg.args[0] if upg.args else len(data)
            self._start_tunnel(data[offset:])
            return
        except HttpParserError as exc:
            if exc.__context__ is not None:
                log.error("upstream response callback failed", exc_info=exc.__context__)
            self._fail(502)
            return
        if self._reset_parser:
            self._reset_parser = False
            self._parser = HttpResponseParser(self)
        ex = self.ex
        if ex is not None and self._started:
            ex.downstream.flush()  # the head (held back for coalescing) goes out now

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.ex is None:
            self.pool.forget(self)
            return
        if self._tunnel:
            sink, self.sink = self.sink, None
            self.ex = None
            if sink is not None:
                sink.send_end(None)
            return
        if self._started and self._until_close:
            self._finish(None)
            return
        self._fail(502)

    def pause_writing(self) -> None:
        ex = self.ex
        if ex is not None:
            ex.downstream.pause_body()

    def resume_writing(self) -> None:
        ex = self.ex
        if ex is not None:
            ex.downstream.resume_body()

    # ------------------------------------------------------------------ request side

    def start(self, ex: Exchange, head: bytes, reused: bool) -> None:
        """Send ``ex`` (its serialized head is ``head``) on this connection.

        Per-response parse state (``_headers``, ``_flags``, ``_clen``) was reset when the previous
        response was read; a connection is only reused after a complete response."""
        self.ex = ex
        self.sink = ex.sink
        self._head = head
        self.reused = reused
        self._started = False
        self._got_bytes = False
        ex._producer = self
        if ex.downstream.write_paused:
            self.pause_producing()
        elif self._rpaused:
            # the previous exchange's client paused us while its response's last bytes arrived
            self.resume_producing()
        pool = self.pool
        if pool.rht > 0:
            self.deadline = pool.registry.now + pool.rht
            pool.registry.watch(self)
        self.transport.write(head)
        if ex.body_length == 0:
            self._req_done = True
        else:
            self._req_done = False
            self._req_chunked = ex.body_length < 0
            ex.set_body_consumer(self)

    def body_data(self, data: bytes) -> None:
        if self.closed or self._req_done:
            return
        if self._req_chunked:
            if data:
                self.transport.writelines([b"%x\r\n" % len(data), data, b"\r\n"])
        else:
            self.transport.write(data)

    def body_end(self, trailers: Headers | None) -> None:
        if self._req_done:
            return
        self._req_done = True
        if self.closed:
            return
        if self._req_chunked:
            self.transport.write(last_chunk_with_trailers(trailers) if trailers else LAST_CHUNK)

    # ------------------------------------------------------------------ producer / tunnel peer

    def pause_producing(self) -> None:
        if not self.closed:
            self._rpaused = True
            self.transport.pause_reading()

    def resume_producing(self) -> None:
        if not self.closed and self._rpaused:
            self._rpaused = False
            self.transport.resume_reading()

    def downstream_lost(self) -> None:
        """The client went away: this connection is mid-exchange and cannot be reused."""
        self.ex = None
        self.sink = None
        self.close()

    def tunnel_data(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)

    def tunnel_eof(self) -> None:
        self.close()

    # ------------------------------------------------------------------ response callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        kind = _RKNOWN.get(name)
        if kind is None:
            kind = _RSPECIAL.get(name.lower(), 0)
        if not kind:
            self._headers.append((name, value))
        elif kind == R_CONN:
            if value == b"keep-alive" or value == b"Keep-Alive":
                return
            for token in connection_tokens([value]):
                if token == b"close":
                    self._flags |= F_CLOSE
                elif token not in (b"keep-alive", b"upgrade"):
                    self._flags |= F_CONN_OTHER
                    if self._conn_vals is None:
                        self._conn_vals = [token]
                    else:
                        self._conn_vals.append(token)
        elif kind == R_CL:
            self._clen = int(value)
        elif kind == R_TE:
            if b"chunked" in value.lower():
                self._flags |= F_CHUNKED
        elif kind == R_UPGRADE:
            self._upgrade_val = value

    def on_headers_complete(self) -> None:
        ex = self.ex
        sink = self.sink
        if ex is None or sink is None:
            self._reset_parser = True
            self.close()
            return
        parser = self._parser
        status: int = parser.get_status_code()
        headers = self._headers
        self._headers = []  # trailers, if any, go here
        flags = self._flags
        clen = self._clen
        self._flags = 0
        self._clen = -1
        if flags & F_CONN_OTHER and self._conn_vals is not None:
            drop = set(self._conn_vals)
            self._conn_vals = None
            headers = [h for h in headers if h[0].lower() not in drop]
        if status < 200:
            if status == 101:
                self._switch(ex, sink, headers)
                return
            self._info = True
            if status != 100 or ex.expect_continue:
                sink.send_info(status, headers)
            return
        if self.deadline:
            self.deadline = 0.0
            self.pool.registry.unwatch(self)
        self._keep = parser.should_keep_alive() and not flags & F_CLOSE
        no_body = ex.method == b"HEAD"
        if flags & F_CHUNKED:
            length = -1
            self._until_close = False
        elif clen >= 0:
            length = clen
            self._until_close = False
        else:
            length = -1
            self._until_close = not (status == 204 or status == 304 or no_body)
            if self._until_close:
                self._keep = False
        self._started = True
        sink.send_head(status, headers, length)
        if no_body:
            # HEAD: llhttp cannot be told there is no body; finish here, new parser after this feed.
            self._reset_parser = True
            self._finish(None)

    def on_body(self, data: bytes) -> None:
        sink = self.sink
        if sink is not None:
            sink.send_data(data)

    def on_message_complete(self) -> None:
        if self._info:
            self._info = False
            return
        sink = self.sink
        ex = self.ex
        if sink is None or ex is None:
            return
        trailers = self._headers
        if trailers:
            self._headers = []
        self.ex = None
        self.sink = None
        ex._producer = None
        if ex._consumer is self:
            ex._consumer = None
        pool = self.pool
        if self._keep and self._req_done and not self.closed and len(pool.idle) < pool.max_idle:
            self.idle_since = pool.registry.now
            pool.idle.append(self)
        else:
            self.close()
        sink.send_end(trailers or None)

    def _finish(self, trailers: Headers | None) -> None:
        ex = self.ex
        sink = self.sink
        self.ex = None
        self.sink = None
        if ex is None or sink is None:
            return
        ex._producer = None
        if ex._consumer is self:
            ex._consumer = None
        if self._keep and self._req_done and not self.closed:
            self.pool.release(self)
        else:
            self.close()
        sink.send_end(trailers)

    def _fail(self, status: int) -> None:
        ex = self.ex
        sink = self.sink
        started = self._started
        self.ex = None
        self.sink = None
        if self.deadline:
            self.deadline = 0.0
            self.pool.registry.unwatch(self)
        self.close()
        if ex is None or sink is None or ex.done:
            return
        ex._producer = None
        if ex._consumer is self:
            ex._consumer = None
        if not started:
            if (status == 502 and self.reused and not self._got_bytes and ex.body_length == 0
                    and ex.method in _REPLAYABLE):
                self.pool.dial(ex, self._head)
                return
            ex.respond(status, (), _GATEWAY_TIMEOUT if status == 504 else _BAD_GATEWAY, content_type=None)
        else:
            sink.abort()

    def timed_out(self) -> None:
        """responseHeaderTimeout expired (called by the registry sweeper)."""
        self.deadline = 0.0
        if self.ex is not None and not self._started:
            self._fail(504)

    def _switch(self, ex: Exchange, sink: ResponseSink, headers: Headers) -> None:
        requested = ex.upgrade
        offered = self._upgrade_val
        if requested is None or requested.strip().lower() != offered.strip().lower():
            log.debug("backend tried to switch protocol %r when %r was requested", offered, requested)
            self._fail(502)
            return
        if self.deadline:
            self.deadline = 0.0
            self.pool.registry.unwatch(self)
        self._started = True
        self._info = True  # llhttp completes the 101 "message"; the tunnel starts after it
        headers.append((b"Connection", b"Upgrade"))
        headers.append((b"Upgrade", offered))
        sink.send_head(101, headers, -1)
        self._req_done = True

    def _start_tunnel(self, rest: bytes) -> None:
        ex = self.ex
        sink = self.sink
        if ex is None or sink is None:
            self.close()
            return
        self._tunnel = True
        self._info = False
        ex.downstream.start_tunnel(self)
        if rest and self.sink is not None:
            sink.send_data(rest)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            transport = self.transport
            if transport is not None:
                transport.close()
