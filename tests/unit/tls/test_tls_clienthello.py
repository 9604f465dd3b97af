"""The sans-I/O ClientHello peek against real ClientHellos produced by Python's ssl (memory BIOs)."""

from __future__ import annotations

import contextlib
import ssl

from hypothesis import given, settings
from hypothesis import strategies as st

from ferryman.tls.clienthello import NEED_MORE, NOT_TLS, ClientHello, peek_client_hello


def hello(sni: str | None, alpn: list[str] | None = None) -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def test_sni_and_alpn_are_read() -> None:
    result = peek_client_hello(hello("API.Example.com", ["h2", "http/1.1"]))
    assert result == ClientHello(sni="api.example.com", alpn=(b"h2", b"http/1.1"))


def test_no_sni() -> None:
    result = peek_client_hello(hello(None))
    assert isinstance(result, ClientHello) and result.sni is None and not result.malformed


def test_plain_http_is_not_tls() -> None:
    assert peek_client_hello(b"GET / HTTP/1.1\r\n") is NOT_TLS
    assert peek_client_hello(b"") is NEED_MORE


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_every_prefix_needs_more_and_the_whole_hello_parses(data: st.DataObject) -> None:
    raw = hello("a.example.com")
    cut = data.draw(st.integers(min_value=1, max_value=len(raw) - 1))
    assert peek_client_hello(raw[:cut]) is NEED_MORE
    assert peek_client_hello(raw) == ClientHello(sni="a.example.com", alpn=())


def test_hello_split_across_two_records() -> None:
    raw = hello("split.example.com")
    body = raw[5:]
    first, second = body[:40], body[40:]
    rec = bytes([0x16, 3, 1]) + len(first).to_bytes(2, "big") + first
    rec += bytes([0x16, 3, 1]) + len(second).to_bytes(2, "big") + second
    assert peek_client_hello(rec[:50]) is NEED_MORE
    result = peek_client_hello(rec)
    assert isinstance(result, ClientHello) and result.sni == "split.example.com"


@given(st.binary(min_size=1, max_size=300))
def test_garbage_after_the_record_header_never_raises(payload: bytes) -> None:
    raw = bytes([0x16, 3, 1]) + len(payload).to_bytes(2, "big") + payload
    result = peek_client_hello(raw)
    assert result is NEED_MORE or isinstance(result, ClientHello)
