"""A blocking HTTP/2 client on the ``h2`` library (plain h2c or TLS with ALPN h2), and in-process
handlers that produce responses under the exchange's flow control."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from typing import Any

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    DataReceived,
    Event,
    ResponseReceived,
    StreamEnded,
    StreamReset,
)
from h2.settings import SettingCodes

from ferryman.http.exchange import Exchange
from tests.integration.dataplane.dp_support import DEADLINE


class H2Client:
    """One HTTP/2 connection; ``events`` keeps everything received, per stream views below."""

    def __init__(self, port: int, *, tls: ssl.SSLContext | None = None, sni: str | None = None,
                 window: int | None = None, auto_ack: bool = True) -> None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        if tls is not None:
            tls.set_alpn_protocols(["h2"])
            self.sock: socket.socket = tls.wrap_socket(raw, server_hostname=sni)
        else:
            self.sock = raw
        self.conn = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        settings: dict[int, int] = {}
        if window is not None:
            settings[SettingCodes.INITIAL_WINDOW_SIZE] = window
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.auto_ack = auto_ack
        self.events: list[Event] = []
        self.goaways: list[tuple[int, int]] = []  # (last stream id, error code)
        self._raw = b""
        self.closed = False
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path: str = "/", *, method: str = "GET", authority: str = "example.test",
                headers: list[tuple[str, str]] | None = None, body: bytes | None = None,
                end: bool = True) -> int:
        sid: int = self.conn.get_next_available_stream_id()
        hdrs = [(b":method", method.encode()), (b":path", path.encode()), (b":scheme", b"http"),
                (b":authority", authority.encode())]
        hdrs += [(n.encode(), v.encode()) for n, v in headers or []]
        self.conn.send_headers(sid, hdrs, end_stream=end and body is None)
        self.flush()
        if body is not None:
            self.send_body(sid, body, end=end)
        return sid

    def send_body(self, sid: int, body: bytes, *, end: bool = True) -> None:
        """Send within the server's windows, reading WINDOW_UPDATEs as needed."""
        view = memoryview(body)
        while view:
            window = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if window <= 0:
                self.receive()
                continue
            self.conn.send_data(sid, bytes(view[:window]))
            view = view[window:]
            self.flush()
        if end:
            self.conn.end_stream(sid)
            self.flush()

    def receive(self) -> list[Event]:
        data = self.sock.recv(65536)
        if not data:
            self.closed = True
            return []
        # GOAWAY frames are taken out here: h2 as a client refuses every frame after one, while a
        # graceful GOAWAY lets the open streams finish.
        buf = self._raw + data
        feed = bytearray()
        while len(buf) >= 9:
            total = 9 + int.from_bytes(buf[:3], "big")
            if len(buf) < total:
                break
            if buf[3] == 7:
                self.goaways.append((int.from_bytes(buf[9:13], "big") & 0x7FFFFFFF,
                                     int.from_bytes(buf[13:17], "big")))
            else:
                feed += buf[:total]
            buf = buf[total:]
        self._raw = buf
        events = self.conn.receive_data(bytes(feed))
        for event in events:
            if isinstance(event, DataReceived) and self.auto_ack:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        self.flush()
        self.events.extend(events)
        return events

    def until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            if self.closed:
                raise AssertionError("connection closed before the condition held")
            self.receive()

    def ended(self, sid: int) -> bool:
        return any(isinstance(e, StreamEnded | StreamReset) and e.stream_id == sid for e in self.events)

    def response(self, sid: int) -> tuple[int, dict[bytes, bytes], bytes]:
        self.until(lambda: self.ended(sid))
        status = 0
        headers: dict[bytes, bytes] = {}
        body = b""
        for e in self.events:
            if isinstance(e, ResponseReceived) and e.stream_id == sid:
                headers = dict(e.headers)
                status = int(headers[b":status"])
            elif isinstance(e, DataReceived) and e.stream_id == sid:
                body += e.data
        return status, headers, body

    def received(self, sid: int) -> int:
        return sum(len(e.data) for e in self.events if isinstance(e, DataReceived) and e.stream_id == sid)

    def goaway(self) -> tuple[int, int] | None:
        """The first GOAWAY received: ``(last_stream_id, error_code)``."""
        return self.goaways[0] if self.goaways else None

    def close(self) -> None:
        self.sock.close()


class Gate:
    """Answers only when the test says so (``release``), to order responses without sleeping."""

    def __init__(self, body: bytes = b"slow") -> None:
        self.body = body
        self.waiting: list[Exchange] = []

    def handle(self, ex: Exchange) -> None:
        self.waiting.append(ex)

    def release(self) -> None:
        for ex in self.waiting:
            ex.respond(200, (), self.body)
        self.waiting.clear()


class Generator:
    """Streams ``total`` bytes in ``chunk`` pieces as fast as the downstream lets it (a producer)."""

    def __init__(self, total: int, chunk: int = 16384) -> None:
        self.total = total
        self.chunk = chunk
        self.produced = 0
        self.paused = False
        self.pauses = 0
        self.lost = False
        self.ex: Exchange | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def handle(self, ex: Exchange) -> None:
        self.ex = ex
        self._loop = asyncio.get_running_loop()
        ex.set_producer(self)
        ex.send_head(200, [(b"Content-Type", b"application/octet-stream")], self.total if self.total >= 0 else -1)
        self._loop.call_soon(self._step)

    def _step(self) -> None:
        ex = self.ex
        assert ex is not None and self._loop is not None
        while not self.paused and not self.lost and (self.total < 0 or self.produced < self.total):
            n = self.chunk if self.total < 0 else min(self.chunk, self.total - self.produced)
            self.produced += n
            ex.send_data(b"x" * n)
            if self.produced % (self.chunk * 8) == 0:
                self._loop.call_soon(self._step)  # yield to the loop now and then
                return
        if self.total >= 0 and self.produced >= self.total and not self.lost:
            ex.send_end()

    def pause_producing(self) -> None:
        self.paused = True
        self.pauses += 1

    def resume_producing(self) -> None:
        if self.paused:
            self.paused = False
            assert self._loop is not None
            self._loop.call_soon(self._step)

    def downstream_lost(self) -> None:
        self.lost = True


class BodyCounter:
    """Consumes the request body (pausing it every other chunk, resuming on the next loop turn)
    and answers with its length."""

    def __init__(self) -> None:
        self.pauses = 0

    def handle(self, ex: Exchange) -> None:
        counter = self
        loop = asyncio.get_running_loop()

        class Consumer:
            size = 0

            def body_data(self, data: bytes) -> None:
                self.size += len(data)
                counter.pauses += 1
                ex.pause_body()
                loop.call_soon(ex.resume_body)

            def body_end(self, trailers: Any) -> None:
                ex.respond(200, (), str(self.size).encode())

        ex.set_body_consumer(Consumer())
