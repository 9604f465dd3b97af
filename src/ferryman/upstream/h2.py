"""HTTP/2 to backends: one multiplexed connection carries many exchanges (``h2c://`` prior
knowledge, or ``https://`` when ALPN chose ``h2``). An asyncio Protocol driving ``h2`` (client side,
bytes headers), no task per request.

* :meth:`H2Upstream.start` opens a stream for an exchange. The request head is the HTTP/1.1 head the
  forwarder built (one builder for both versions): :func:`h2_request_headers` turns it into
  pseudo-headers and lower-case fields (``Host`` -> ``:authority``, framing and connection headers
  dropped, ``te: trailers`` kept).
* Request bodies stream within the backend's flow-control windows; what does not fit is kept per
  stream and past :data:`HIGH_WATER` the client is paused (``ex.pause_body``) until WINDOW_UPDATEs
  drain it. Request trailers go out as a trailing HEADERS frame.
* Responses: 1xx -> ``send_info``, the head -> ``send_head`` (``content-length`` as the length),
  DATA -> ``send_data``, trailers -> ``send_end(trailers)`` (gRPC's ``grpc-status``). Received data
  is acknowledged (window given back) only while the exchange's client keeps up: a slow client
  stops the backend stream by stream (the producer's ``pause_producing``).
* A stream reset or a lost connection answers 502 before the response head and aborts the client's
  response after it. A graceful GOAWAY from the backend lets the open streams finish; streams it
  did not process (above its last stream id) are sent again on another connection.
* ``maxConcurrentStreams`` of the backend is honoured: the pool opens another connection when all
  are full (Go's transport does the same).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from h2.config import H2Configuration
from h2.connection import ConnectionState
from h2.connection import H2Connection as H2Core
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    InformationalResponseReceived,
    RemoteSettingsChanged,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from h2.exceptions import H2Error, ProtocolError
from h2.settings import SettingCodes

from ferryman.http.exchange import Exchange, Headers, ResponseSink
from ferryman.proto.h2flow import send_queued

if TYPE_CHECKING:
    from ferryman.upstream.pool import Pool

log = logging.getLogger("ferryman.upstream")

__all__ = ["HIGH_WATER", "H2Upstream", "h2_request_headers"]

#: Request body bytes queued per stream beyond the backend's window before the client is paused.
HIGH_WATER: Final = 256 * 1024
LOW_WATER: Final = 64 * 1024
STREAM_WINDOW: Final = 1024 * 1024
CONNECTION_WINDOW: Final = 16 * 1024 * 1024

_DROP: Final = frozenset((b"transfer-encoding", b"connection", b"upgrade", b"keep-alive", b"proxy-connection",
                          b"http2-settings"))
_BAD_GATEWAY: Final = b"Bad Gateway"
_GATEWAY_TIMEOUT: Final = b"Gateway Timeout"


def h2_request_headers(head: bytes, scheme: bytes) -> Headers:
    """The HTTP/2 header list for an HTTP/1.1 request head built by the forwarder."""
    lines = head.split(b"\r\n")
    method, target, _ = lines[0].split(b" ", 2)
    authority = b""
    fields: Headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(b":")
        lname = name.lower()
        value = value.strip()
        if lname == b"host":
            authority = value
        elif lname in _DROP:
            continue
        elif lname == b"te":
            if value.lower() == b"trailers":
                fields.append((b"te", b"trailers"))
        else:
            fields.append((lname, value))
    out: Headers = [(b":method", method), (b":scheme", scheme), (b":authority", authority), (b":path", target)]
    out.extend(fields)
    return out


class _Stream:
    """One exchange on an :class:`H2Upstream` (its BodyConsumer and Producer)."""

    __slots__ = ("_buf", "_buffered", "_end", "_unacked", "body_paused", "conn", "deadline", "ex", "head",
                 "paused", "sent_end", "sid", "sink", "started", "trailers")

    def __init__(self, conn: H2Upstream, sid: int, ex: Exchange, head: bytes) -> None:
        self.conn = conn
        self.sid = sid
        self.ex: Exchange | None = ex
        self.sink: ResponseSink | None = ex.sink
        self.head = head
        self.started = False
        self.paused = False
        self.body_paused = False
        self.sent_end = ex.body_length == 0
        self._buf: deque[bytes] = deque()
        self._buffered = 0
        self._end: tuple[Headers | None] | None = None
        self._unacked = 0
        self.trailers: Headers | None = None
        self.deadline = 0.0

    # BodyConsumer
    def body_data(self, data: bytes) -> None:
        if self.sent_end or not data:
            return
        self._buf.append(data)
        self._buffered += len(data)
        self.conn.pump(self)
        ex = self.ex
        if self._buffered > HIGH_WATER and not self.body_paused and ex is not None:
            self.body_paused = True
            ex.pause_body()

    def body_end(self, trailers: Headers | None) -> None:
        if self.sent_end or self._end is not None:
            return
        self._end = (trailers,)
        self.conn.pump(self)

    # Producer
    def pause_producing(self) -> None:
        self.paused = True

    def resume_producing(self) -> None:
        if self.paused:
            self.paused = False
            if self._unacked:
                n, self._unacked = self._unacked, 0
                self.conn.ack(self.sid, n)

    def downstream_lost(self) -> None:
        self.ex = None
        self.sink = None
        self.conn.cancel(self)

    def timed_out(self) -> None:
        """responseHeaderTimeout expired (the pools' sweeper)."""
        self.deadline = 0.0
        if not self.started and self.ex is not None:
            self.conn.fail(self, 504)
            self.conn.cancel(self)


class H2Upstream(asyncio.Protocol):
    """One HTTP/2 connection to a backend, shared by many exchanges."""

    def __init__(self, pool: Pool, scheme: bytes) -> None:
        self.pool = pool
        self.scheme = scheme
        self._h2 = H2Core(H2Configuration(client_side=True, header_encoding=None))
        self.transport: Any = None
        self.streams: dict[int, _Stream] = {}
        self.closed = False
        self.goaway = False
        self.idle_since = 0.0
        self._in_recv = False
        self._touched: list[_Stream] = []
        self._tx_paused = False
        self.on_lost: Callable[[H2Upstream], None] | None = None

    # ------------------------------------------------------------------ capacity

    @property
    def capacity(self) -> int:
        """How many more streams this connection can open now."""
        if self.closed or self.goaway:
            return 0
        h2 = self._h2
        return int(h2.remote_settings.max_concurrent_streams) - h2.open_outbound_streams

    # ------------------------------------------------------------------ asyncio side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        h2 = self._h2
        # The stream window is opened per stream with a WINDOW_UPDATE (see start): some servers
        # (grpc-core) keep 65,535 for streams whatever SETTINGS_INITIAL_WINDOW_SIZE says.
        h2.local_settings.update({SettingCodes.ENABLE_PUSH: 0})
        h2.initiate_connection()
        h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        self.idle_since = self.pool.registry.now
        self.flush()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self._in_recv = True
        try:
            events = self._h2.receive_data(data)
        except ProtocolError as exc:
            log.debug("HTTP/2 protocol error from backend %s:%d: %s", self.pool.host, self.pool.port, exc)
            self._in_recv = False
            self.flush()
            self.close()
            return
        try:
            for event in events:
                self._on_event(event)
        finally:
            self._in_recv = False
        self.flush()
        touched = self._touched
        if touched:
            self._touched = []
            for stream in touched:
                ex = stream.ex
                if ex is not None:
                    ex.downstream.flush()

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail_all()
        if self.on_lost is not None:
            self.on_lost(self)

    def pause_writing(self) -> None:
        self._tx_paused = True

    def resume_writing(self) -> None:
        self._tx_paused = False
        for stream in list(self.streams.values()):
            self.pump(stream, flush=False)
        self.flush()

    # ------------------------------------------------------------------ requests

    def start(self, ex: Exchange, head: bytes) -> None:
        """Open a stream for ``ex`` (the caller checked :attr:`capacity`)."""
        h2 = self._h2
        sid = h2.get_next_available_stream_id()
        stream = _Stream(self, sid, ex, head)
        self.streams[sid] = stream
        ex._producer = stream
        if ex.downstream.write_paused:
            stream.paused = True
        pool = self.pool
        if pool.rht > 0:
            stream.deadline = pool.registry.now + pool.rht
            pool.registry.watch(stream)
        try:
            h2.send_headers(sid, h2_request_headers(head, self.scheme), end_stream=stream.sent_end)
        except H2Error as exc:
            log.debug("HTTP/2: cannot open a stream to %s:%d: %r", pool.host, pool.port, exc)
            self.streams.pop(sid, None)
            self.fail(stream, 502)
            return
        with contextlib.suppress(H2Error):
            h2.increment_flow_control_window(STREAM_WINDOW - 65535, stream_id=sid)
        if not stream.sent_end:
            ex.set_body_consumer(stream)
        if not self._in_recv:
            self.flush()

    def pump(self, stream: _Stream, flush: bool = True) -> None:
        """Send queued request body bytes within the windows; then the end (or trailers)."""
        if self.closed or stream.sent_end or self.streams.get(stream.sid) is not stream:
            return
        h2 = self._h2
        sid = stream.sid
        buf = stream._buf
        try:
            if buf and not self._tx_paused:
                sent, ended = send_queued(h2, sid, buf, stream._end)
                stream._buffered -= sent
                if ended:
                    stream.sent_end = True
            if not buf and stream._end is not None and not stream.sent_end:
                stream.sent_end = True
                trailers = stream._end[0]
                if trailers:
                    h2.send_headers(sid, [(n.lower(), v) for n, v in trailers], end_stream=True)
                else:
                    h2.end_stream(sid)
        except H2Error as exc:
            log.debug("HTTP/2: request body on stream %d: %r", sid, exc)
            self.fail(stream, 502)
            return
        if stream.body_paused and stream._buffered <= LOW_WATER:
            stream.body_paused = False
            ex = stream.ex
            if ex is not None:
                ex.resume_body()
        if flush and not self._in_recv:
            self.flush()

    def ack(self, sid: int, n: int) -> None:
        if self.closed:
            return
        with contextlib.suppress(H2Error):
            self._h2.acknowledge_received_data(n, sid)
        if not self._in_recv:
            self.flush()

    def cancel(self, stream: _Stream) -> None:
        """The client went away (or the request timed out): reset the stream."""
        if self.streams.pop(stream.sid, None) is None or self.closed:
            return
        self._unwatch(stream)
        with contextlib.suppress(H2Error):
            self._h2.reset_stream(stream.sid, ErrorCodes.CANCEL)
        self._stream_gone()
        if not self._in_recv:
            self.flush()

    # ------------------------------------------------------------------ responses

    def _on_event(self, event: Any) -> None:
        if isinstance(event, DataReceived):
            stream = self.streams.get(event.stream_id)
            n = event.flow_controlled_length
            if stream is None or stream.sink is None:
                if n:
                    self._h2.acknowledge_received_data(n, event.stream_id)
                return
            stream.sink.send_data(event.data)
            if n:
                if stream.paused:
                    stream._unacked += n
                else:
                    self._h2.acknowledge_received_data(n, event.stream_id)
            self._touch(stream)
        elif isinstance(event, ResponseReceived):
            self._on_response(event)
        elif isinstance(event, TrailersReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.trailers = [(n, v) for n, v in event.headers if n[:1] != b":"]
        elif isinstance(event, StreamEnded):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                self._finish(stream)
        elif isinstance(event, WindowUpdated):
            if event.stream_id:
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    self.pump(stream, flush=False)
            else:
                for stream in list(self.streams.values()):
                    self.pump(stream, flush=False)
        elif isinstance(event, InformationalResponseReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None and stream.sink is not None and stream.ex is not None:
                status = int(dict(event.headers).get(b":status", b"100"))
                if status != 100 or stream.ex.expect_continue:
                    stream.sink.send_info(status, [(n, v) for n, v in event.headers if n[:1] != b":"])
                    self._touch(stream)
        elif isinstance(event, StreamReset):
            stream = self.streams.pop(event.stream_id, None)
            if stream is not None:
                self._unwatch(stream)
                if not stream.started and event.error_code == ErrorCodes.REFUSED_STREAM and stream.ex is not None:
                    self._retry(stream)
                else:
                    self.fail(stream, 502)
                self._stream_gone()
        elif isinstance(event, RemoteSettingsChanged):
            if SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
                for stream in list(self.streams.values()):
                    self.pump(stream, flush=False)
        elif isinstance(event, ConnectionTerminated):
            self._on_goaway(event)

    def _touch(self, stream: _Stream) -> None:
        if stream not in self._touched:
            self._touched.append(stream)

    def _on_response(self, event: ResponseReceived) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is None:
            return
        ex, sink = stream.ex, stream.sink
        if ex is None or sink is None:
            return
        status = 0
        length = -1
        headers: Headers = []
        for name, value in event.headers:
            if name[:1] == b":":
                if name == b":status":
                    status = int(value)
            elif name == b"content-length":
                with contextlib.suppress(ValueError):
                    length = int(value)
            elif name not in _DROP:
                headers.append((name, value))
        self._unwatch(stream)
        stream.started = True
        if event.stream_ended is not None and length < 0 and ex.version not in (b"2", b"3"):
            length = 0
        sink.send_head(status, headers, length)
        self._touch(stream)

    def _finish(self, stream: _Stream) -> None:
        self.streams.pop(stream.sid, None)
        ex, sink = stream.ex, stream.sink
        stream.ex = stream.sink = None
        if stream._unacked:
            # data held back from a slow client: give the connection window back
            n, stream._unacked = stream._unacked, 0
            with contextlib.suppress(H2Error):
                self._h2.acknowledge_received_data(n, stream.sid)
        if ex is not None and sink is not None:
            if ex._producer is stream:
                ex._producer = None
            if ex._consumer is stream:
                ex._consumer = None
            if not stream.started:
                ex.respond(502, (), _BAD_GATEWAY, content_type=None)
            else:
                sink.send_end(stream.trailers or None)
            if not ex.done:
                ex.downstream.flush()
        if not stream.sent_end and not self.closed:
            # The response is complete while the request body is still coming: stop it.
            with contextlib.suppress(H2Error):
                self._h2.reset_stream(stream.sid, ErrorCodes.NO_ERROR)
            stream.sent_end = True
        self._stream_gone()

    def fail(self, stream: _Stream, status: int) -> None:
        """Answer ``status`` before the head, abort the client's response after it."""
        self.streams.pop(stream.sid, None)
        self._unwatch(stream)
        ex, sink = stream.ex, stream.sink
        stream.ex = stream.sink = None
        stream.sent_end = True
        if ex is None or sink is None or ex.done:
            return
        if ex._producer is stream:
            ex._producer = None
        if ex._consumer is stream:
            ex._consumer = None
        if stream.started:
            sink.abort()
        else:
            ex.respond(status, (), _GATEWAY_TIMEOUT if status == 504 else _BAD_GATEWAY, content_type=None)
            ex.downstream.flush()

    def _retry(self, stream: _Stream) -> None:
        """The backend did not process the stream (REFUSED_STREAM, GOAWAY): send it again elsewhere,
        when no request body byte was consumed yet."""
        ex = stream.ex
        stream.ex = stream.sink = None
        if ex is None or ex.done:
            return
        if ex._producer is stream:
            ex._producer = None
        if ex.body_length != 0 and (stream._buf or stream.sent_end or ex._consumer is stream):
            # the body went (partly) to this stream: it cannot be replayed
            ex._consumer = None
            ex.respond(502, (), _BAD_GATEWAY, content_type=None)
            return
        self.pool.forward_h2(ex, stream.head)

    def _on_goaway(self, event: ConnectionTerminated) -> None:
        self.goaway = True
        last = event.last_stream_id if event.last_stream_id is not None else 0
        for sid, stream in list(self.streams.items()):
            if sid > last:
                self.streams.pop(sid, None)
                self._unwatch(stream)
                self._retry(stream)
        if event.error_code != ErrorCodes.NO_ERROR:
            for stream in list(self.streams.values()):
                self.fail(stream, 502)
        if self.streams:
            # h2 closes its state machine on GOAWAY; the streams it lets finish need it open.
            self._h2.state_machine.state = ConnectionState.CLIENT_OPEN
        else:
            self.close()

    def _stream_gone(self) -> None:
        if not self.streams:
            self.idle_since = self.pool.registry.now
            if self.goaway:
                self.close()
                return
        self.pool.h2_capacity(self)

    def _unwatch(self, stream: _Stream) -> None:
        if stream.deadline:
            stream.deadline = 0.0
            self.pool.registry.unwatch(stream)

    def _fail_all(self) -> None:
        streams = list(self.streams.values())
        self.streams.clear()
        for stream in streams:
            self.fail(stream, 502)

    # ------------------------------------------------------------------ output and closing

    def flush(self) -> None:
        if self.closed:
            return
        data = self._h2.data_to_send()
        if data:
            self.transport.write(data)

    def close(self) -> None:
        """Close now (GOAWAY first); open streams fail."""
        if self.closed:
            return
        with contextlib.suppress(H2Error):
            self._h2.close_connection()
        self.flush()
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self._fail_all()
        if self.on_lost is not None:
            self.on_lost(self)
            self.on_lost = None
