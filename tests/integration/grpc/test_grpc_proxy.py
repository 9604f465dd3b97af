"""gRPC through the real ferryman process with real grpcio clients and servers: h2c and TLS on the
client side, ``h2c://`` and ``https://`` (ALPN h2) backends; unary, server streaming, bidi
streaming, trailing metadata, a non-OK status, and multi-megabyte messages (flow control)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest

from tests.integration.conftest import StartFerryman
from tests.integration.tls.pki import CA
from tests.support.ferryman import Ferryman
from tests.support.grpc_echo import msg, start_server, stub

DEADLINE = 10.0


@pytest.fixture
def grpc_backend() -> Iterator[int]:
    server, port = start_server("h2c-backend")
    try:
        yield port
    finally:
        server.stop(None)


@pytest.fixture
def pki(tmp_path: Path) -> tuple[CA, Path, tuple[Path, Path]]:
    ca = CA()
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(ca.pem)
    server = ca.issue("proxy.test", dns=("proxy.test", "grpc.test")).write(tmp_path, "server")
    return ca, ca_file, server


def _start(ferryman: StartFerryman, url: str, cert: tuple[Path, Path], transport: dict[str, Any] | None = None
           ) -> Ferryman:
    service: dict[str, Any] = {"loadBalancer": {"servers": [{"url": url}]}}
    dynamic: dict[str, Any] = {
        "http": {
            "routers": {
                "grpc": {"rule": "PathPrefix(`/ferrytest.`)", "service": "echo"},
                "grpc-tls": {"rule": "PathPrefix(`/ferrytest.`)", "service": "echo", "tls": {}},
            },
            "services": {"echo": service},
        },
        "tls": {"certificates": [{"certFile": str(cert[0]), "keyFile": str(cert[1])}]},
    }
    if transport is not None:
        dynamic["http"]["serversTransports"] = {"backend": transport}
        service["loadBalancer"]["serversTransport"] = "backend"
    return ferryman({"entryPoints": {"web": {"address": "127.0.0.1:0"}}}, dynamic)


def _channels(fm: Ferryman, ca_pem: str) -> list[tuple[str, grpc.Channel]]:
    port = fm.ports["web"]
    creds = grpc.ssl_channel_credentials(root_certificates=ca_pem.encode())
    return [
        ("h2c", grpc.insecure_channel(f"127.0.0.1:{port}")),
        ("tls", grpc.secure_channel(f"127.0.0.1:{port}", creds,
                                    options=(("grpc.ssl_target_name_override", "proxy.test"),))),
    ]


def _exercise(channel: grpc.Channel, served_by: str) -> None:
    echo = stub(channel)
    # unary with trailing metadata
    reply, call = echo.Unary.with_call(msg("hello"), timeout=DEADLINE)
    assert reply.text == "hello"
    trailers = dict(call.trailing_metadata())
    assert trailers["x-served-by"] == served_by
    assert call.code() == grpc.StatusCode.OK
    # messages larger than every flow-control window, both ways
    blob = bytes(range(256)) * (3 * 1024 * 1024 // 256)
    reply = echo.Unary(msg("big", blob=blob), timeout=DEADLINE)
    assert reply.count == len(blob) and reply.blob == blob
    # a status error reaches the client with its message and trailing metadata
    with pytest.raises(grpc.RpcError) as info:
        echo.Unary(msg("fail"), timeout=DEADLINE)
    err: Any = info.value
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert err.details() == "denied by test"
    assert dict(err.trailing_metadata())["x-served-by"] == served_by
    # server streaming
    got = [m.text for m in echo.ServerStream(msg("tick", count=50), timeout=DEADLINE)]
    assert got == [f"tick {i}" for i in range(50)]
    # bidi streaming: each reply arrives before the next request is sent
    outbox: list[Any] = []
    import queue
    requests: queue.Queue[Any] = queue.Queue()

    def gen() -> Iterator[Any]:
        while True:
            item = requests.get(timeout=DEADLINE)
            if item is None:
                return
            yield item

    responses = echo.Bidi(gen(), timeout=DEADLINE)
    for word in ("one", "two", "three"):
        requests.put(msg(word))
        outbox.append(next(responses).text)
    requests.put(None)
    assert list(responses) == []
    assert outbox == ["ONE", "TWO", "THREE"]


def test_grpc_to_h2c_backend(ferryman: StartFerryman, grpc_backend: int,
                             pki: tuple[CA, Path, tuple[Path, Path]]) -> None:
    ca, _, cert = pki
    fm = _start(ferryman, f"h2c://127.0.0.1:{grpc_backend}", cert)
    for name, channel in _channels(fm, ca.pem):
        with channel:
            try:
                _exercise(channel, "h2c-backend")
            except AssertionError as exc:
                raise AssertionError(f"client over {name}: {exc}") from exc


def test_grpc_to_tls_backend_with_alpn_h2(ferryman: StartFerryman, tmp_path: Path,
                                          pki: tuple[CA, Path, tuple[Path, Path]]) -> None:
    ca, ca_file, cert = pki
    backend_pair = ca.issue("grpc.test", dns=("grpc.test",))
    server, port = start_server("tls-backend", cert=(backend_pair.cert_pem, backend_pair.key_pem))
    try:
        fm = _start(ferryman, f"https://127.0.0.1:{port}", cert,
                    {"serverName": "grpc.test", "rootCAs": [str(ca_file)]})
        for name, channel in _channels(fm, ca.pem):
            with channel:
                try:
                    _exercise(channel, "tls-backend")
                except AssertionError as exc:
                    raise AssertionError(f"client over {name}: {exc}") from exc
    finally:
        server.stop(None)


# --------------------------------------------------------------------------------------------
# grpcWeb middleware


def _web_frames(body: bytes) -> tuple[list[bytes], dict[str, str]]:
    """Split a gRPC-Web response body into message payloads and the trailer frame's fields."""
    messages: list[bytes] = []
    trailers: dict[str, str] = {}
    while body:
        flag, size = body[0], int.from_bytes(body[1:5], "big")
        payload, body = body[5:5 + size], body[5 + size:]
        if flag & 0x80:
            for line in payload.decode().split("\r\n"):
                if line:
                    name, _, value = line.partition(":")
                    trailers[name.strip()] = value.strip()
        else:
            messages.append(payload)
    return messages, trailers


def _web_call(port: int, method: str, request: Any, *, text: bool, origin: str = "https://app.test"
              ) -> tuple[int, dict[str, str], list[Any], dict[str, str]]:
    import base64

    import httpx

    from tests.support.grpc_echo import modules
    pb2, _ = modules()
    raw = request.SerializeToString()
    frame = b"\x00" + len(raw).to_bytes(4, "big") + raw
    ctype = "application/grpc-web-text+proto" if text else "application/grpc-web+proto"
    resp = httpx.post(f"http://127.0.0.1:{port}/ferrytest.Echo/{method}", timeout=DEADLINE,
                      content=base64.b64encode(frame) if text else frame,
                      headers={"content-type": ctype, "x-grpc-web": "1", "origin": origin})
    body = resp.content
    if text:
        # one base64 segment per write: decode every padded 4-char group on its own
        body = b"".join(base64.b64decode(body[i:i + 4]) for i in range(0, len(body), 4))
    messages, trailers = _web_frames(body)
    headers = {k.lower(): v for k, v in resp.headers.items()}
    return resp.status_code, headers, [pb2.Msg.FromString(m) for m in messages], trailers


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
def test_grpc_web_to_h2c_backend(ferryman: StartFerryman, grpc_backend: int, text: bool) -> None:
    import httpx

    dynamic = {"http": {
        "routers": {"web": {"rule": "PathPrefix(`/ferrytest.`)", "service": "echo", "middlewares": ["gw"]}},
        "middlewares": {"gw": {"grpcWeb": {"allowOrigins": ["https://app.test"]}}},
        "services": {"echo": {"loadBalancer": {"servers": [{"url": f"h2c://127.0.0.1:{grpc_backend}"}]}}},
    }}
    fm = ferryman({"entryPoints": {"web": {"address": "127.0.0.1:0"}}}, dynamic)
    port = fm.ports["web"]
    # the backend's "application/grpc" becomes "application/grpc-web(-text)" (as Improbable's wrapper)
    ctype = "application/grpc-web-text" if text else "application/grpc-web"

    status, headers, replies, trailers = _web_call(port, "Unary", msg("hello", blob=b"\x00\xff" * 1000), text=text)
    assert status == 200 and headers["content-type"] == ctype
    assert [(r.text, r.count) for r in replies] == [("hello", 2000)]
    assert trailers["grpc-status"] == "0" and trailers["x-served-by"] == "h2c-backend"
    assert headers["access-control-allow-origin"] == "https://app.test"
    assert "grpc-status" in headers["access-control-expose-headers"]

    status, headers, replies, trailers = _web_call(port, "ServerStream", msg("tick", count=5), text=text)
    assert [r.text for r in replies] == [f"tick {i}" for i in range(5)] and trailers["grpc-status"] == "0"

    status, headers, replies, trailers = _web_call(port, "Unary", msg("fail"), text=text, origin="https://evil.test")
    fields = {**headers, **trailers}
    assert status == 200 and replies == []
    assert fields["grpc-status"] == "7" and fields["grpc-message"] == "denied by test"
    assert "access-control-allow-origin" not in headers  # origin not allowed: no CORS headers

    pre = httpx.options(f"http://127.0.0.1:{port}/ferrytest.Echo/Unary", timeout=DEADLINE, headers={
        "origin": "https://app.test", "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,x-grpc-web,x-user-agent"})
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "https://app.test"
    assert pre.headers["access-control-allow-headers"] == "content-type,x-grpc-web,x-user-agent"
    assert pre.headers["access-control-allow-methods"] == "POST"
