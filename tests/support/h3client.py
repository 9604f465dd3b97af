"""A small real HTTP/3 client for tests: aioquic's ``connect`` + ``H3Connection``.

``h3_requests(port, requests, server_name=..., ca_pem=...)`` opens one QUIC connection, sends the
requests concurrently and returns one :class:`H3Response` each (status, headers, body, trailers),
plus the GOAWAY frames seen on the server's control stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, FrameType, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import QuicEvent, StreamDataReceived, StreamReset


@dataclass
class H3Response:
    status: int = 0
    headers: dict[bytes, bytes] = field(default_factory=dict)
    body: bytes = b""
    trailers: dict[bytes, bytes] = field(default_factory=dict)
    reset: bool = False
    chunks: int = 0


@dataclass(frozen=True)
class H3Request:
    path: str = "/"
    method: str = "GET"
    authority: str = "app.test"
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""


def _varint_at(data: bytearray, pos: int) -> tuple[int, int]:
    """A QUIC variable-length integer (RFC 9000 §16) at ``pos``: (value, its size)."""
    size = 1 << (data[pos] >> 6)
    if pos + size > len(data):
        raise IndexError(pos)
    return int.from_bytes(bytes([data[pos] & 0x3F]) + data[pos + 1:pos + size], "big"), size


class H3Client(QuicConnectionProtocol):
    """``create_protocol`` for aioquic's ``connect``; ``goaways`` lists the stream ids of the
    server's GOAWAY frames (aioquic's H3Connection reads and drops them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.responses: dict[int, H3Response] = {}
        self.done: dict[int, asyncio.Future[H3Response]] = {}
        self.goaways: list[int] = []
        self._control = bytearray()  # the server's control stream, read alongside aioquic
        self._control_id: int | None = None

    def _scan_control(self, data: bytes) -> None:
        """Find GOAWAY frames on the server's control stream (type 0x00)."""
        buf = self._control
        buf.extend(data)
        pos = 0
        if buf[:1] != b"\x00":
            return
        pos = 1
        while pos < len(buf):
            try:
                ftype, n1 = _varint_at(buf, pos)
                flen, n2 = _varint_at(buf, pos + n1)
            except IndexError:
                return
            start = pos + n1 + n2
            if start + flen > len(buf):
                return
            if ftype == FrameType.GOAWAY:
                self.goaways.append(_varint_at(buf, start)[0])
            pos = start + flen
        del buf[1:pos]

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamDataReceived) and event.stream_id % 4 == 3:
            if self._control_id is None and event.data[:1] == b"\x00":
                self._control_id = event.stream_id
            if event.stream_id == self._control_id:
                self._scan_control(event.data)
        if isinstance(event, StreamReset) and event.stream_id in self.done:
            resp = self.responses[event.stream_id]
            resp.reset = True
            fut = self.done[event.stream_id]
            if not fut.done():
                fut.set_result(resp)
        for ev in self.h3.handle_event(event):
            sid = getattr(ev, "stream_id", None)
            if sid not in self.responses:
                continue
            resp = self.responses[sid]
            if isinstance(ev, HeadersReceived):
                fields = dict(ev.headers)
                if resp.status == 0 and b":status" in fields and int(fields[b":status"]) >= 200:
                    resp.status = int(fields[b":status"])
                    resp.headers = {k: v for k, v in fields.items() if not k.startswith(b":")}
                elif resp.status:
                    resp.trailers = fields
            elif isinstance(ev, DataReceived):
                resp.body += ev.data
                resp.chunks += 1 if ev.data else 0
            if getattr(ev, "stream_ended", False):
                fut = self.done[sid]
                if not fut.done():
                    fut.set_result(resp)

    async def request(self, req: H3Request) -> H3Response:
        sid = self._quic.get_next_available_stream_id()
        self.responses[sid] = H3Response()
        fut: asyncio.Future[H3Response] = asyncio.get_running_loop().create_future()
        self.done[sid] = fut
        headers = [(b":method", req.method.encode()), (b":scheme", b"https"),
                   (b":authority", req.authority.encode()), (b":path", req.path.encode())]
        headers += [(k.encode(), v.encode()) for k, v in req.headers]
        self.h3.send_headers(sid, headers, end_stream=not req.body)
        if req.body:
            self.h3.send_data(sid, req.body, end_stream=True)
        self.transmit()
        return await fut


def client_config(server_name: str, ca_pem: str) -> QuicConfiguration:
    config = QuicConfiguration(is_client=True, alpn_protocols=list(H3_ALPN), server_name=server_name)
    config.load_verify_locations(cadata=ca_pem.encode())
    return config


async def h3_requests_async(port: int, requests: Sequence[H3Request], *, server_name: str, ca_pem: str,
                            timeout: float = 10.0) -> list[H3Response]:
    config = client_config(server_name, ca_pem)
    async with asyncio.timeout(timeout), connect("127.0.0.1", port, configuration=config,
                                                 create_protocol=H3Client) as client:
        assert isinstance(client, H3Client)
        return list(await asyncio.gather(*(client.request(r) for r in requests)))


def h3_requests(port: int, requests: Sequence[H3Request], *, server_name: str, ca_pem: str,
                timeout: float = 10.0) -> list[H3Response]:
    """Blocking wrapper (runs its own event loop)."""
    return asyncio.run(h3_requests_async(port, requests, server_name=server_name, ca_pem=ca_pem,
                                         timeout=timeout))
