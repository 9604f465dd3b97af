"""The HTTP/2 connection driven in memory (fake transport, the ``h2`` library as the client): the
request as the exchange sees it, response headers, h2c prior knowledge from an HTTP/1.1 connection,
settings from the static model."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection as H2Client
from h2.events import DataReceived, Event, ResponseReceived, StreamEnded

from ferryman.http.exchange import Exchange
from ferryman.server import EntryPoint, EntryPointSettings
from ferryman.server.h1 import H1Connection
from ferryman.server.h2 import H2Connection
from ferryman.static.models import EntryPoint as StaticEntryPoint


class FakeTransport:
    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.closed = False
        self.protocol: Any = None

    def write(self, data: bytes) -> None:
        self.out.append(data)

    def writelines(self, data: list[bytes]) -> None:
        self.out.extend(data)

    def get_extra_info(self, key: str, default: Any = None) -> Any:
        return {"peername": ("192.0.2.50", 40000), "sockname": ("127.0.0.1", 8080)}.get(key, default)

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.out)
        self.out.clear()
        return data


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Exchange] = []

    def handle(self, ex: Exchange) -> None:
        self.seen.append(ex)
        ex.respond(200, [(b"X-Test", b"1"), (b"Connection", b"keep-alive"), (b"Transfer-Encoding", b"chunked")],
                   b"hello")


class Entry:
    name = "r"

    def __init__(self, target: Any) -> None:
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


def new_client() -> H2Client:
    client = H2Client(H2Configuration(client_side=True, header_encoding=None))
    client.initiate_connection()
    return client


def exchange_bytes(client: H2Client, transport: FakeTransport, feed: Any) -> list[Event]:
    feed(client.data_to_send())
    return list(client.receive_data(transport.take()))


def test_request_fields_and_response_headers(loop: asyncio.AbstractEventLoop) -> None:
    rec = Recorder()
    ep = EntryPoint(EntryPointSettings(name="web", port=0), Table(rec), hostname="h")
    ep.loop = loop
    conn = H2Connection(ep)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    client = new_client()
    client.send_headers(1, [(b":method", b"GET"), (b":path", b"/a/./b?x=1;y=2"), (b":scheme", b"http"),
                            (b":authority", b"App.Test:8080"), (b"cookie", b"a=1"), (b"cookie", b"b=2"),
                            (b"x-forwarded-for", b"6.6.6.6"), (b"te", b"trailers"), (b"x-other", b"v")],
                        end_stream=True)
    events = exchange_bytes(client, transport, conn.data_received)
    (ex,) = rec.seen
    assert (ex.method, ex.path, ex.query, ex.target, ex.version) == (b"GET", b"/a/b", b"x=1&y=2",
                                                                     b"/a/b?x=1&y=2", b"2")
    assert ex.authority == b"App.Test:8080" and ex.match_request().host == "app.test"
    assert ex.body_length == 0 and ex.te_trailers and ex.conn.client_ip == "192.0.2.50"
    # untrusted peer: its X-Forwarded-For is dropped; cookies joined for HTTP/1.1 upstreams
    assert ex.xff_prior is None
    assert (b"cookie", b"a=1; b=2") in ex.headers and (b"x-other", b"v") in ex.headers
    assert ex.header(b"x-forwarded-proto") == b"http"
    response = next(e for e in events if isinstance(e, ResponseReceived))
    headers = dict(response.headers)
    assert headers[b":status"] == b"200" and headers[b"x-test"] == b"1" and headers[b"content-length"] == b"5"
    assert b"connection" not in headers and b"transfer-encoding" not in headers
    body = b"".join(e.data for e in events if isinstance(e, DataReceived))
    assert body == b"hello"
    # head, body and END_STREAM were coalesced: the body's DATA frame carries END_STREAM
    data_frames = [e for e in events if isinstance(e, DataReceived)]
    assert len(data_frames) == 1 and data_frames[0].stream_ended is not None
    assert any(isinstance(e, StreamEnded) for e in events)


def test_h2c_prior_knowledge_hands_the_connection_over(loop: asyncio.AbstractEventLoop) -> None:
    rec = Recorder()
    ep = EntryPoint(EntryPointSettings(name="web", port=0), Table(rec), hostname="h")
    ep.loop = loop
    h1 = H1Connection(ep)
    transport = FakeTransport()
    h1.connection_made(transport)  # type: ignore[arg-type]
    client = new_client()
    client.send_headers(1, [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"),
                            (b":authority", b"x.test")], end_stream=True)
    h1.data_received(client.data_to_send())
    assert isinstance(transport.protocol, H2Connection)
    assert transport.protocol in ep.connections and h1 not in ep.connections
    events = client.receive_data(transport.take())
    assert any(isinstance(e, ResponseReceived) for e in events)
    assert len(rec.seen) == 1


def test_pri_later_in_an_http11_connection_is_a_bad_request(loop: asyncio.AbstractEventLoop) -> None:
    rec = Recorder()
    ep = EntryPoint(EntryPointSettings(name="web", port=0), Table(rec), hostname="h")
    ep.loop = loop
    h1 = H1Connection(ep)
    transport = FakeTransport()
    h1.connection_made(transport)  # type: ignore[arg-type]
    h1.data_received(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    h1.data_received(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    assert transport.protocol is None
    assert transport.take().count(b"HTTP/1.1 ") == 2  # the 200, then Go's 400


def test_max_concurrent_streams_from_static_model() -> None:
    model = StaticEntryPoint.model_validate({"address": ":443", "http2": {"maxConcurrentStreams": 42}})
    assert EntryPointSettings.from_static("websecure", model).http2_max_concurrent_streams == 42
    default = StaticEntryPoint.model_validate({"address": ":443"})
    assert EntryPointSettings.from_static("websecure", default).http2_max_concurrent_streams == 250
