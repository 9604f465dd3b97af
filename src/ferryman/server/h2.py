"""The client side of HTTP/2: one asyncio Protocol per connection driving ``h2`` (sans-I/O), no tasks.

A :class:`H2Connection` feeds what arrives to ``h2.connection.H2Connection`` (server side, bytes
headers) and turns every stream into an :class:`~ferryman.http.exchange.Exchange` whose
:class:`~ferryman.http.exchange.Downstream` is an :class:`H2Stream`, so routing, middlewares and
the upstream forwarder see the same vocabulary as on HTTP/1.1.

* Requests: ``:method``, ``:path`` (split into path and query, normalized like HTTP/1.1),
  ``:authority`` (else ``Host``) become the exchange's fields; the regular headers get the same
  treatment as on HTTP/1.1 (hop-by-hop dropped, untrusted ``X-Forwarded-*`` removed, ``TE:
  trailers``). ``h2`` itself rejects malformed pseudo-headers and connection-specific headers.
* Request bodies: ``DataReceived`` goes to :meth:`Exchange.feed_body`; the flow-control window is
  given back (``acknowledge_received_data``) only while the consumer is not paused, so a slow
  upstream slows the client down (backpressure), stream by stream.
* Responses: ``send_head`` -> HEADERS, ``send_data`` -> DATA within the peer's flow-control
  windows (the rest is buffered per stream; past :data:`HIGH_WATER` the exchange's producer is
  paused, resumed below :data:`LOW_WATER` as WINDOW_UPDATEs arrive), ``send_end`` -> END_STREAM or
  trailers, ``abort`` -> RST_STREAM. A client RST_STREAM tells the producer ``downstream_lost``.
* ``http2.maxConcurrentStreams`` is announced in SETTINGS; ``idleTimeout`` closes a connection
  without streams (GOAWAY first); graceful shutdown and ``keepAliveMaxRequests`` send GOAWAY and
  let the open streams finish (up to ``graceTimeOut``, the entry point's force-close).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from h2.config import H2Configuration
from h2.connection import H2Connection as H2Core
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    RequestReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from h2.exceptions import H2Error, ProtocolError
from h2.settings import SettingCodes, Settings
from hyperframe.frame import GoAwayFrame

from ferryman.http.exchange import (
    X_EXPECT,
    X_TE_TRAILERS,
    X_XF_SHIFT,
    ConnInfo,
    Downstream,
    Exchange,
    Headers,
    ResponseSink,
    TunnelPeer,
)
from ferryman.http.forwarded import XF_FOR
from ferryman.http.paths import BadTarget, needs_normalization, normalize_path, plain_path
from ferryman.proto.h1 import connection_tokens
from ferryman.proto.h2flow import send_queued
from ferryman.server.h1 import (
    _MISDIRECTED_BODY,
    _NOT_FOUND_BODY,
    _NOT_FOUND_HEADERS,
    _SPECIAL,
    _XF_FLAGS,
    S_CL,
    S_EXPECT,
    S_HOST,
    S_TEHDR,
    S_XFF,
    S_XFP,
    S_XSCHEME,
    S_XSERVER,
    XF_SHIFT,
    _valid_host,
)
from ferryman.server.h1 import (
    _lose as lose_exchange,
)

if TYPE_CHECKING:
    from ferryman.server.entrypoint import EntryPoint

log = logging.getLogger("ferryman.server")

__all__ = ["HIGH_WATER", "LOW_WATER", "PREFACE", "H2Connection", "H2Stream"]

#: The client connection preface (RFC 9113 §3.4); h2c "prior knowledge" starts with it.
PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: Response bytes buffered per stream (beyond the peer's window) before the producer is paused.
HIGH_WATER: Final = 256 * 1024
LOW_WATER: Final = 64 * 1024
#: Go's ``rstAvoidanceDelay``: how long a closing connection reads and discards before closing.
_LINGER: Final = 0.5
#: Our receive windows: per stream (SETTINGS_INITIAL_WINDOW_SIZE) and for the connection.
STREAM_WINDOW: Final = 1024 * 1024
CONNECTION_WINDOW: Final = 16 * 1024 * 1024

#: Response headers that must not appear on HTTP/2 (connection-specific, RFC 9113 §8.2.2).
_HOP: Final = frozenset((b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
                         b"upgrade", b"content-length", b"te"))
_BODYLESS: Final = frozenset((204, 304))
_STATUS: dict[int, bytes] = {}


def status_bytes(status: int) -> bytes:
    value = _STATUS.get(status)
    if value is None:
        value = _STATUS[status] = b"%d" % status
    return value


class Reject(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class H2Stream:
    """One stream: the :class:`~ferryman.http.exchange.Downstream` of its exchange."""

    __slots__ = ("_buf", "_buffered", "_conn", "_end", "_ended", "_head", "_head_sent", "_unacked", "body_paused",
                 "ex", "sid", "write_paused")

    def __init__(self, conn: H2Connection, sid: int) -> None:
        self._conn = conn
        self.sid = sid
        self.ex: Exchange | None = None
        self.write_paused = False
        self.body_paused = False
        self._buf: deque[bytes] = deque()
        self._buffered = 0
        self._end: tuple[Headers | None] | None = None  # send_end was called (with these trailers)
        self._ended = False  # END_STREAM (or RST_STREAM) went out
        self._head_sent = False
        self._head: Headers | None = None  # the response head, held until data, the end or flush()
        self._unacked = 0

    # ------------------------------------------------------------------ ResponseSink

    def send_info(self, status: int, headers: Headers) -> None:
        if self._ended or self._head_sent or status == 101:
            return
        self._conn.send_headers(self, [(b":status", status_bytes(status)), *clean_response_headers(headers)], False)

    def send_head(self, status: int, headers: Headers, length: int) -> None:
        ex = self.ex
        if self._ended or self._head_sent or ex is None:
            return
        ex.status = status
        if ex.obs is not None:
            ex.resp_headers = headers
            ex.resp_length = length
        self._head_sent = True
        out: Headers = [(b":status", status_bytes(status))]
        out.extend(clean_response_headers(headers))
        if length >= 0 and status not in _BODYLESS:
            out.append((b"content-length", b"%d" % length))
        alt = self._conn._ep.alt_svc_value
        if alt is not None and ex.conn.tls:
            out.append((b"alt-svc", alt))
        # Held back: a response that ends at once (gRPC's trailers-only) goes out as one HEADERS
        # frame with END_STREAM; otherwise the head leaves with the first data or at flush().
        self._head = out
        self._conn.head_ready(self)

    def send_data(self, data: bytes) -> None:
        if self._ended or not data or self._end is not None:
            return
        ex = self.ex
        if ex is not None:
            if ex.method == b"HEAD" or ex.status in _BODYLESS:
                return
            ex.sent += len(data)
        self._buf.append(data)
        self._buffered += len(data)
        self._conn.data_ready(self)
        if self._buffered > HIGH_WATER and not self.write_paused:
            self.write_paused = True
            producer = ex.producer if ex is not None else None
            if producer is not None:
                producer.pause_producing()

    def send_end(self, trailers: Headers | None) -> None:
        if self._ended or self._end is not None:
            return
        ex = self.ex
        if ex is not None and not self._head_sent:
            ex.respond(502, (), b"", content_type=None)  # ended without a head: never valid
            return
        self._end = (trailers if trailers and ex is not None and ex.flags & X_TE_TRAILERS else None,)
        self._conn.data_ready(self)
        if ex is not None and ex.obs is not None:
            ex.obs.finish(ex, trailers)

    def abort(self) -> None:
        if self._ended:
            return
        self._conn.reset(self, ErrorCodes.INTERNAL_ERROR)

    # ------------------------------------------------------------------ Downstream

    def pause_body(self) -> None:
        self.body_paused = True

    def resume_body(self) -> None:
        if not self.body_paused:
            return
        self.body_paused = False
        unacked = self._unacked
        if unacked:
            self._unacked = 0
            self._conn.acknowledge(self, unacked)

    def start_tunnel(self, peer: TunnelPeer) -> None:
        peer.downstream_lost()  # no extended CONNECT on HTTP/2 (yet)
        self.abort()

    def flush(self) -> None:
        if self._head is not None:
            self._conn.pump(self)
        else:
            self._conn.flush()

    # ------------------------------------------------------------------ internals

    def _lost(self) -> None:
        """The stream is gone (client reset, connection closed): stop the producer."""
        self._ended = True
        self._buf.clear()
        self._buffered = 0
        if self.ex is not None:
            lose_exchange(self.ex)


def clean_response_headers(headers: Headers) -> Headers:
    """Response headers as HTTP/2 wants them: lower-case names, no connection-specific ones."""
    out: Headers = []
    for name, value in headers:
        lname = name.lower()
        if lname not in _HOP:
            out.append((lname, value))
    return out


def build_exchange(ep: EntryPoint, stream: Downstream, raw: Sequence[tuple[bytes, bytes]], info: ConnInfo, ended: bool,
                   version: bytes) -> Exchange:
    """An exchange from an HTTP/2 or HTTP/3 header list (pseudo-headers first); raises
:class:`Reject` with the status for malformed requests."""
    method = url = authority = b""
    host: bytes | None = None
    headers: Headers = []
    cookies: list[bytes] | None = None
    flags = 0
    xff: list[bytes] | None = None
    length = -1
    for name, value in raw:
        if name[:1] == b":":
            if name == b":method":
                method = value
            elif name == b":path":
                url = value
            elif name == b":authority":
                authority = value
            continue
        if name == b"cookie":
            if cookies is None:
                cookies = [value]
            else:
                cookies.append(value)
            continue
        kind = _SPECIAL.get(name)
        if kind is None:
            headers.append((name, value))
        elif kind == S_HOST:
            if host is None:
                host = value
        elif kind == S_CL:
            try:
                length = int(value)
            except ValueError as exc:
                raise Reject(400) from exc
        elif kind == S_TEHDR:
            if b"trailers" in connection_tokens([value]):
                flags |= X_TE_TRAILERS
        elif kind == S_EXPECT:
            if value.strip().lower() == b"100-continue":
                flags |= X_EXPECT
            headers.append((name, value))
        elif kind < S_XFP:
            continue  # Transfer-Encoding, Connection, Upgrade (h2 rejects them), hop-by-hop
        else:
            if not info.trusted:
                continue
            if kind == S_XFF:
                if xff is None:
                    xff = [value]
                else:
                    xff.append(value)
                continue
            if kind == S_XSERVER or (kind == S_XSCHEME and info.forwarding.add_scheme_headers):
                continue
            flags |= (_XF_FLAGS.get(kind, 0) >> XF_SHIFT) << X_XF_SHIFT
            headers.append((name, value))
    if cookies is not None:
        headers.append((b"cookie", b"; ".join(cookies)))
    if not authority:
        authority = host or b""
    if authority and not _valid_host(authority):
        raise Reject(400)
    if method == b"CONNECT" or not url:
        raise Reject(400 if method != b"CONNECT" else 405)
    target = url
    query: bytes | None
    if url[:1] != b"/":
        if url == b"*" and method == b"OPTIONS":
            path, query = url, None
        else:
            raise Reject(400)
    else:
        path, sep, q = url.partition(b"?")
        query = q if sep else None
    if plain_path(path) is None:  # one C call for the common case (see ferryman.http.paths)
        if b"#" in path:
            raise Reject(400)
        if needs_normalization(path):
            try:
                new_path = normalize_path(path, sanitize=ep.settings.sanitize_path)
            except BadTarget as exc:
                raise Reject(400) from exc
            if new_path != path:
                path = new_path
                target = path if query is None else path + b"?" + query
    if query is not None and query.find(b";") >= 0:
        query = query.replace(b";", b"%3B" if ep.settings.encode_query_semicolons else b"&")
        target = path + b"?" + query
    if ended:
        length = 0
    ex = Exchange(info, stream, method, target, path, query, version, headers, authority, length)
    if xff is not None:
        ex.xff_prior = b", ".join(xff)
        flags |= XF_FOR << X_XF_SHIFT
    ex.flags = flags
    return ex


def dispatch(ep: EntryPoint, stream: ResponseSink, ex: Exchange, sni: str | None) -> None:
    """Route a stream's exchange (HTTP/2 and HTTP/3): TLS routes on TLS connections, 421 when the
    Host selects other TLS options than the SNI, 404 when nothing matches, 500/abort if a handler
    raises."""
    info = ex.conn
    observer = ep.observer
    if observer is not None:
        observer.begin(ex)
    try:
        routes = ep.tls_routes if info.tls else ep.routes
        if routes is None:
            entry = None
        else:
            view = ex.match_request()
            serving = ep.tls
            if info.tls and serving is not None and serving.misdirected(sni, view.host):
                ex.respond(421, _NOT_FOUND_HEADERS, _MISDIRECTED_BODY)
                return
            entry = routes.match(view)
        if entry is None:
            ex.respond(404, _NOT_FOUND_HEADERS, _NOT_FOUND_BODY)
        else:
            ex.router = entry.name
            entry.target.handle(ex)
    except Exception:
        log.exception("handler failed for %r %r", ex.method, ex.target)
        if not ex.done:
            if ex.status == 0:
                ex.respond(500, (), b"Internal Server Error", content_type=None)
            else:
                stream.abort()


class H2Connection(asyncio.Protocol):
    """One HTTP/2 client connection (TLS with ALPN ``h2``, or h2c)."""

    def __init__(self, ep: EntryPoint, handoff: tuple[str, int] | None = None, sni: str | None = None,
                 info: ConnInfo | None = None, upgrade: bytes | None = None) -> None:
        """``upgrade``: the ``HTTP2-Settings`` of an ``Upgrade: h2c`` request (101 already sent)."""
        self._ep = ep
        self._upgrade = upgrade
        self._handoff = handoff
        self._sni = sni
        self.info: ConnInfo | None = info
        settings = ep.settings
        self._h2 = H2Core(H2Configuration(client_side=False, header_encoding=None))
        self._max_streams = settings.http2_max_concurrent_streams
        self._transport: Any = None
        self._streams: dict[int, H2Stream] = {}
        self._closed = False
        self._goaway = False
        self._goaway_last = 0
        self._lingering = False
        self._dirty: list[H2Stream] = []
        self._in_recv = False
        self._tx_paused = False
        self._requests = 0
        self._started = 0.0
        self._deadline_idle = 0.0
        self._idle_timeout = settings.idle_timeout or settings.read_timeout
        self._blocked: set[H2Stream] = set()
        self.write_paused = False
        self.idle_since = 0.0

    # =========================================================================== asyncio side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        ep = self._ep
        if self.info is None:
            peer = transport.get_extra_info("peername")
            sock = transport.get_extra_info("sockname")
            ip, port = (peer[0], peer[1]) if isinstance(peer, tuple) else ("", 0)
            if self._handoff is not None:
                ip, port = self._handoff
            tls = transport.get_extra_info("sslcontext") is not None
            self.info = ConnInfo(ep.settings.name, ip, port, tls, ep.forwarding,
                                 sock[1] if isinstance(sock, tuple) else 0)
            if tls:
                self.info.ssl_object = transport.get_extra_info("ssl_object")
        self._started = ep.now
        self._go_idle()
        h2 = self._h2
        h2.local_settings = Settings(
            client=False,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: self._max_streams,
                SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                SettingCodes.MAX_HEADER_LIST_SIZE: ep.settings.max_header_bytes + 4096,
            },
        )
        if self._upgrade is not None:
            h2.initiate_upgrade_connection(self._upgrade)
        else:
            h2.initiate_connection()
        h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        ep.connections.add(self)
        self.flush()

    def data_received(self, data: bytes) -> None:
        if self._closed or self._lingering:
            return
        self._in_recv = True
        try:
            events = self._h2.receive_data(data)
        except ProtocolError as exc:
            log.debug("HTTP/2 protocol error from %s: %s", self.info.client_ip if self.info else "?", exc)
            self._in_recv = False
            self.flush()  # the GOAWAY h2 queued
            self._close()
            return
        try:
            for event in events:
                self._on_event(event)
        finally:
            self._in_recv = False
        dirty = self._dirty
        if dirty:
            self._dirty = []
            for stream in dirty:
                self.pump(stream, False)
        self.flush()

    def eof_received(self) -> bool | None:
        if self._lingering:
            self._transport.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._lingering = False
        ep = self._ep
        ep.connections.discard(self)
        streams = list(self._streams.values())
        self._streams.clear()
        for stream in streams:
            stream._lost()
        ep.connection_closed()

    def pause_writing(self) -> None:
        self._tx_paused = True

    def resume_writing(self) -> None:
        self._tx_paused = False
        for stream in list(self._streams.values()):
            if stream._buf or stream._end is not None:
                self.pump(stream)
        self.flush()

    # =========================================================================== events

    def _on_event(self, event: Any) -> None:
        if isinstance(event, DataReceived):
            self._on_data(event)
        elif isinstance(event, RequestReceived):
            self._on_request(event)
        elif isinstance(event, StreamEnded):
            stream = self._streams.get(event.stream_id)
            if stream is not None and stream.ex is not None:
                ex = stream.ex
                if not ex.body_complete:
                    ex.end_body(None)
                self._maybe_finish(stream)
        elif isinstance(event, WindowUpdated):
            if event.stream_id:
                stream = self._streams.get(event.stream_id)
                if stream is not None:
                    self.pump(stream)
            else:
                self._pump_all()
        elif isinstance(event, TrailersReceived):
            stream = self._streams.get(event.stream_id)
            if stream is not None and stream.ex is not None:
                trailers = [(n, v) for n, v in event.headers if n[:1] != b":"]
                stream.ex.end_body(trailers or None)
        elif isinstance(event, StreamReset):
            stream = self._streams.pop(event.stream_id, None)
            if stream is not None:
                stream._lost()
                self._after_stream()
        elif isinstance(event, RemoteSettingsChanged):
            self._pump_all()
        elif isinstance(event, ConnectionTerminated):
            self._goaway = True
            if not self._streams:
                self._close()

    def _on_data(self, event: DataReceived) -> None:
        sid = event.stream_id
        length = event.flow_controlled_length
        stream = self._streams.get(sid)
        ex = stream.ex if stream is not None else None
        if stream is None or ex is None or ex.done:
            # Nobody wants it (answered already): give the window back at once.
            self._ack(sid, length)
            return
        ex.feed_body(event.data)
        if stream.body_paused:
            stream._unacked += length
        else:
            self._ack(sid, length)

    def _ack(self, sid: int, length: int) -> None:
        if not length:
            return
        try:
            self._h2.acknowledge_received_data(length, sid)
        except H2Error:
            # The stream is closed: give back the connection window only.
            with contextlib.suppress(H2Error):
                self._h2.increment_flow_control_window(length)

    def acknowledge(self, stream: H2Stream, length: int) -> None:
        if self._closed:
            return
        self._ack(stream.sid, length)
        self.flush()

    def _on_request(self, event: RequestReceived) -> None:
        sid = event.stream_id
        if self._goaway and sid > self._goaway_last:
            with contextlib.suppress(H2Error):
                self._h2.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
            return
        stream = H2Stream(self, sid)
        self._streams[sid] = stream
        self._requests += 1
        self._deadline_idle = 0.0
        ep = self._ep
        settings = ep.settings
        if settings.keep_alive_max_requests > 0 and self._requests >= settings.keep_alive_max_requests:
            self._send_goaway()
        info = self.info
        assert info is not None
        try:
            ex = self._build(stream, event.headers, info, event.stream_ended is not None)
        except Reject as rej:
            ex = Exchange(info, stream, b"GET", b"/", b"/", None, b"2", [], b"", 0)
            stream.ex = ex
            ex.respond(rej.status, (), b"", content_type=None)
            return
        stream.ex = ex
        if event.stream_ended is not None:
            ex._body_done = True
        self._dispatch(stream, ex)

    def upgraded_request(self, ex: Exchange) -> None:
        """The HTTP/1.1 request of an ``Upgrade: h2c`` becomes stream 1 (half-closed by the client)."""
        stream = H2Stream(self, 1)
        self._streams[1] = stream
        self._requests += 1
        self._deadline_idle = 0.0
        stream.ex = ex
        ex.downstream = ex.sink = stream
        ex.version = b"2"
        ex.upgrade = None
        self._in_recv = True
        try:
            self._dispatch(stream, ex)
        finally:
            self._in_recv = False
        dirty = self._dirty
        if dirty:
            self._dirty = []
            for s in dirty:
                self.pump(s, False)
        self.flush()

    def _dispatch(self, stream: H2Stream, ex: Exchange) -> None:
        dispatch(self._ep, stream, ex, self._sni)

    def _build(self, stream: H2Stream, raw: list[tuple[bytes, bytes]], info: ConnInfo, ended: bool) -> Exchange:
        return build_exchange(self._ep, stream, raw, info, ended, b"2")

    # =========================================================================== output

    def send_headers(self, stream: H2Stream, headers: Headers, end: bool) -> None:
        if self._closed:
            return
        try:
            self._h2.send_headers(stream.sid, headers, end_stream=end)
        except H2Error as exc:
            log.debug("HTTP/2: cannot send headers on stream %d: %r", stream.sid, exc)
            self._drop(stream)
            return
        if not self._in_recv:
            self.flush()

    def head_ready(self, stream: H2Stream) -> None:
        """A response head is held on ``stream``: inside ``data_received`` it goes out with what
        follows; outside, with the next data, the end or ``flush()``."""
        if self._in_recv and stream not in self._dirty:
            self._dirty.append(stream)

    def data_ready(self, stream: H2Stream) -> None:
        """Response bytes or the end were queued on ``stream``: inside ``data_received`` they are
        sent once all events are handled (a head, its body and END_STREAM coalesce), else now."""
        if self._in_recv:
            if stream not in self._dirty:
                self._dirty.append(stream)
        else:
            self.pump(stream)

    def pump(self, stream: H2Stream, flush: bool = True) -> None:
        """Send what the peer's windows allow; finish the stream when all is out."""
        if self._closed or stream._ended:
            return
        h2 = self._h2
        sid = stream.sid
        buf = stream._buf
        try:
            head = stream._head
            if head is not None:
                stream._head = None
                end = stream._end
                if not buf and end is not None and not end[0]:
                    h2.send_headers(sid, head, end_stream=True)
                    self._finish(stream)
                    if flush and not self._in_recv:
                        self.flush()
                    return
                h2.send_headers(sid, head, end_stream=False)
            if buf and not self._tx_paused:
                sent, ended = send_queued(h2, sid, buf, stream._end)
                stream._buffered -= sent
                if ended:  # the last bytes carried END_STREAM (no empty DATA frame)
                    self._finish(stream)
                if stream.write_paused and stream._buffered <= LOW_WATER:
                    stream.write_paused = False
                    ex = stream.ex
                    producer = ex.producer if ex is not None else None
                    if producer is not None:
                        producer.resume_producing()
            if not buf and stream._end is not None and not stream._ended:
                trailers = stream._end[0]
                stream._ended = True
                if trailers:
                    h2.send_headers(sid, clean_response_headers(trailers), end_stream=True)
                else:
                    h2.end_stream(sid)
                self._finish(stream)
        except H2Error as exc:
            log.debug("HTTP/2: stream %d: %r", sid, exc)
            self._drop(stream)
        if flush and not self._in_recv:
            self.flush()

    def _finish(self, stream: H2Stream) -> None:
        stream._ended = True
        ex = stream.ex
        if ex is not None:
            ex.done = True
        self._maybe_finish(stream)

    def _pump_all(self) -> None:
        for stream in list(self._streams.values()):
            if stream._buf or stream._end is not None:
                self.pump(stream)

    def _maybe_finish(self, stream: H2Stream) -> None:
        """Forget a stream once its response is out; a request body still coming is refused."""
        if not stream._ended:
            return
        ex = stream.ex
        if ex is not None and not ex.body_complete:
            # Answered before the request body ended: RST_STREAM(NO_ERROR) (RFC 9113 §8.1).
            with contextlib.suppress(H2Error):
                self._h2.reset_stream(stream.sid, ErrorCodes.NO_ERROR)
            if stream._unacked:
                self._ack(stream.sid, stream._unacked)
                stream._unacked = 0
        if self._streams.pop(stream.sid, None) is not None:
            self._after_stream()

    def _after_stream(self) -> None:
        if self._streams:
            return
        if self._goaway or self._ep.shutting_down:
            self._close()
            return
        self._go_idle()

    def reset(self, stream: H2Stream, code: ErrorCodes) -> None:
        if self._closed:
            return
        with contextlib.suppress(H2Error):
            self._h2.reset_stream(stream.sid, code)
        self._drop(stream)
        if not self._in_recv:
            self.flush()

    def _drop(self, stream: H2Stream) -> None:
        stream._lost()
        if stream._unacked:
            self._ack(stream.sid, stream._unacked)
            stream._unacked = 0
        if self._streams.pop(stream.sid, None) is not None:
            self._after_stream()

    def flush(self) -> None:
        if self._closed:
            return
        data = self._h2.data_to_send()
        if data:
            self._transport.write(data)

    def _send_goaway(self) -> None:
        """A graceful GOAWAY: no new streams, open ones finish. Written by hand: ``h2``'s
        ``close_connection`` would refuse to send anything afterwards."""
        if self._goaway or self._closed:
            return
        self._goaway = True
        last = self._goaway_last = self._h2.highest_inbound_stream_id
        self.flush()
        self._transport.write(GoAwayFrame(0, last_stream_id=last, error_code=ErrorCodes.NO_ERROR).serialize())

    def _go_idle(self) -> None:
        now = self.idle_since = self._ep.now
        idle = self._idle_timeout
        self._deadline_idle = now + idle if idle > 0 else 0.0

    def _close(self) -> None:
        """Close after what is written; shut the write side first and read until the client closes
        (briefly) so a late WINDOW_UPDATE from it cannot turn into a TCP reset that loses the end."""
        if self._closed:
            return
        self.flush()
        self._closed = True
        transport = self._transport
        if transport is not None:
            if transport.can_write_eof():
                self._lingering = True
                transport.write_eof()
                self._deadline_idle = self._ep.now + _LINGER
            else:
                transport.close()
        streams = list(self._streams.values())
        self._streams.clear()
        for stream in streams:
            stream._lost()

    # =========================================================================== entry point hooks

    def check_deadlines(self, now: float) -> None:
        d = self._deadline_idle
        if self._lingering:
            if d and now >= d:
                self._transport.close()
            return
        if d and now >= d and not self._streams:
            self._deadline_idle = 0.0
            self._send_goaway()
            self._close()
            return
        settings = self._ep.settings
        if (settings.keep_alive_max_time > 0 and not self._goaway
                and now - self._started > settings.keep_alive_max_time):
            self._send_goaway()
            if not self._streams:
                self._close()

    def close_if_idle(self) -> bool:
        """Shutdown: GOAWAY now; close at once when no stream is open, else when the last ends."""
        if self._closed:
            return not self._lingering
        self._send_goaway()
        if not self._streams:
            self._close()
            return True
        return False

    def force_close(self) -> None:
        if self._closed:
            if self._lingering:
                self._transport.abort()
            return
        self._closed = True
        streams = list(self._streams.values())
        self._streams.clear()
        for stream in streams:
            stream._lost()
        if self._transport is not None:
            self._transport.abort()

    @property
    def busy(self) -> bool:
        return bool(self._streams)
