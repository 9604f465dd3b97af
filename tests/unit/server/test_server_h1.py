"""The HTTP/1.1 connection driven in memory (fake transport): split reads, pipelining, PROXY, settings."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from ferryman.http.exchange import Exchange
from ferryman.proto.proxy_protocol import build_v1
from ferryman.server import EntryPoint, EntryPointSettings
from ferryman.server.h1 import H1Connection
from ferryman.static.models import EntryPoint as StaticEntryPoint


class FakeTransport:
    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.closed = False
        self.reading = True

    def write(self, data: bytes) -> None:
        self.out.append(data)

    def writelines(self, data: list[bytes]) -> None:
        self.out.extend(data)

    def get_extra_info(self, key: str, default: Any = None) -> Any:
        return {"peername": ("192.0.2.50", 40000), "sockname": ("127.0.0.1", 8080)}.get(key, default)

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass

    @property
    def text(self) -> bytes:
        return b"".join(self.out)


class Deferred:
    """Answers only when told to (keeps exchanges in flight)."""

    def __init__(self) -> None:
        self.pending: list[Exchange] = []

    def handle(self, ex: Exchange) -> None:
        self.pending.append(ex)

    def answer(self, body: bytes = b"ok") -> None:
        self.pending.pop(0).respond(200, (), body)


class Entry:
    def __init__(self, target: Any) -> None:
        self.name = "r"
        self.target = target


class Table:
    def __init__(self, target: Any) -> None:
        self.entry = Entry(target)

    def match(self, req: Any) -> Entry:
        return self.entry


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


def connect(loop: asyncio.AbstractEventLoop, target: Any, **kw: Any) -> tuple[H1Connection, FakeTransport]:
    ep = EntryPoint(EntryPointSettings(name="web", port=0, **kw), Table(target), hostname="h")
    ep.loop = loop
    conn = H1Connection(ep)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport


def test_request_split_byte_by_byte(loop: asyncio.AbstractEventLoop) -> None:
    handler = Deferred()
    conn, transport = connect(loop, handler)
    raw = b"GET /some/path?x=1 HTTP/1.1\r\nHost: example.com\r\nX-Long: " + b"v" * 100 + b"\r\n\r\n"
    for i in range(len(raw)):
        conn.data_received(raw[i:i + 1])
    ex = handler.pending[0]
    assert (ex.method, ex.path, ex.query, ex.authority) == (b"GET", b"/some/path", b"x=1", b"example.com")
    assert ex.headers == [(b"x-long", b"v" * 100)]
    handler.answer(b"fine")
    assert transport.text.startswith(b"HTTP/1.1 200 OK\r\n") and transport.text.endswith(b"fine")


def test_pipelining_pauses_reading_and_answers_in_order(loop: asyncio.AbstractEventLoop) -> None:
    handler = Deferred()
    conn, transport = connect(loop, handler)
    conn.data_received(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
    assert len(handler.pending) == 1 and not transport.reading
    handler.answer(b"one")
    loop.run_until_complete(asyncio.sleep(0))  # the queued request is dispatched on the next turn
    assert len(handler.pending) == 1 and handler.pending[0].path == b"/2"
    assert transport.reading
    handler.answer(b"two")
    assert transport.text.index(b"one") < transport.text.index(b"two")


def test_proxy_header_split_across_reads(loop: asyncio.AbstractEventLoop) -> None:
    handler = Deferred()
    conn, _ = connect(loop, handler, proxy_protocol=True, proxy_protocol_trusted_ips=("192.0.2.0/24",))
    data = build_v1("203.0.113.9", 1111, "198.51.100.1", 80) + b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
    for i in range(0, len(data), 7):
        conn.data_received(data[i:i + 7])
    ex = handler.pending[0]
    assert ex.client_ip == "203.0.113.9" and ex.client_port == 1111


def test_client_gone_notifies_the_producer(loop: asyncio.AbstractEventLoop) -> None:
    handler = Deferred()
    conn, _ = connect(loop, handler)
    conn.data_received(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    lost: list[bool] = []

    class Producer:
        def pause_producing(self) -> None:
            pass

        def resume_producing(self) -> None:
            pass

        def downstream_lost(self) -> None:
            lost.append(True)

    handler.pending[0].set_producer(Producer())
    conn.connection_lost(None)
    assert lost == [True]


def test_write_backpressure_reaches_the_producer(loop: asyncio.AbstractEventLoop) -> None:
    handler = Deferred()
    conn, _ = connect(loop, handler)
    conn.data_received(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    events: list[str] = []

    class Producer:
        def pause_producing(self) -> None:
            events.append("pause")

        def resume_producing(self) -> None:
            events.append("resume")

        def downstream_lost(self) -> None:
            events.append("lost")

    handler.pending[0].set_producer(Producer())
    conn.pause_writing()
    conn.resume_writing()
    assert events == ["pause", "resume"]


def test_settings_from_static_model() -> None:
    model = StaticEntryPoint.model_validate({
        "address": "127.0.0.1:8080",
        "transport": {"respondingTimeouts": {"readTimeout": "5s", "idleTimeout": 0},
                      "lifeCycle": {"graceTimeOut": "2s"}, "keepAliveMaxRequests": 3},
        "forwardedHeaders": {"trustedIPs": ["10.0.0.0/8"], "insecure": False},
        "proxyProtocol": {"trustedIPs": ["10.0.0.1"]},
        "http": {"maxHeaderBytes": 4096, "sanitizePath": False},
        "reusePort": True,
    })
    st = EntryPointSettings.from_static("web", model)
    assert (st.host, st.port, st.read_timeout, st.idle_timeout, st.grace_timeout) == ("127.0.0.1", 8080, 5.0, 0.0, 2.0)
    assert st.keep_alive_max_requests == 3 and st.max_header_bytes == 4096 and not st.sanitize_path
    assert st.forwarded_trusted_ips == ("10.0.0.0/8",) and st.proxy_protocol
    assert st.proxy_protocol_trusted_ips == ("10.0.0.1",) and st.reuse_port
    defaults = EntryPointSettings(name="x")
    assert (defaults.read_timeout, defaults.write_timeout, defaults.idle_timeout) == (60.0, 0.0, 180.0)
    assert (defaults.grace_timeout, defaults.request_accept_grace_timeout) == (10.0, 0.0)
    assert defaults.max_header_bytes == 1048576
