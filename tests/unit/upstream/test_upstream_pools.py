"""Transport settings, server URLs, pool identity and the upstream request head (no sockets)."""

from __future__ import annotations

import pytest

from ferryman.dynamic.models import ServersTransport
from ferryman.errors import ConfigError
from ferryman.http.exchange import ConnInfo, Exchange, Headers
from ferryman.http.forwarded import ForwardingPolicy
from ferryman.static.models import ServersTransport as StaticServersTransport
from ferryman.upstream import ServerForwarder, TransportSettings, UpstreamPools
from ferryman.upstream.connection import UpstreamConnection
from ferryman.upstream.forwarder import canonical_header_name, parse_server_url
from tests.unit.http.test_http_exchange import FakeDownstream


def test_transport_settings_from_models() -> None:
    dyn = TransportSettings.from_model(ServersTransport.model_validate(
        {"maxIdleConnsPerHost": 0, "forwardingTimeouts": {"dialTimeout": "1s", "responseHeaderTimeout": "250ms"}}))
    assert dyn.dial_timeout == 1.0 and dyn.response_header_timeout == 0.25
    assert dyn.idle_limit == 2  # 0 means Go's DefaultMaxIdleConnsPerHost
    static = TransportSettings.from_model(StaticServersTransport())
    assert static.idle_limit == 200 and static.idle_conn_timeout == 90.0
    assert TransportSettings(max_idle_conns_per_host=-1).idle_limit == 0


def test_server_urls() -> None:
    url = parse_server_url("http://[::1]:8080/base")
    assert (url.host, url.port, url.authority, url.path) == ("::1", 8080, b"[::1]:8080", b"/base")
    assert parse_server_url("http://backend").port == 80
    assert parse_server_url("https://backend").port == 443
    assert parse_server_url("h2c://backend:50051").scheme == "h2c"
    with pytest.raises(ConfigError, match="unsupported scheme"):
        parse_server_url("ftp://backend")
    with pytest.raises(ConfigError):
        parse_server_url("http://")


def test_pools_are_shared_by_key_and_kept_across_rebuilds() -> None:
    pools = UpstreamPools()
    a = pools.get("http", "Backend", 80, "default@internal", TransportSettings())
    b = pools.get("http", "backend", 80, "default@internal", TransportSettings(max_idle_conns_per_host=5))
    assert a is b and a.settings.max_idle_conns_per_host == 5 and a.max_idle == 5
    other = pools.get("http", "backend", 80, "custom@file", TransportSettings())
    assert other is not a
    assert len(pools) == 2


class FakeTransport:
    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.out.append(data)

    def writelines(self, data: list[bytes]) -> None:
        self.out.extend(data)

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _exchange(headers: Headers, *, method: bytes = b"GET", body_length: int = 0,
              upgrade: bytes | None = None, authority: bytes = b"client.example") -> Exchange:
    info = ConnInfo("web", "192.0.2.1", 1, False, ForwardingPolicy(hostname="edge"))
    ex = Exchange(info, FakeDownstream(), method, b"/p?a;b", b"/p", b"a&b", b"1.1", headers, authority, body_length)
    if upgrade is not None:
        ex.upgrade = upgrade
        ex.websocket = True
    return ex


def _head_for(ex: Exchange, *, pass_host_header: bool = True, preserve_path: bool = False) -> bytes:
    pools = UpstreamPools()
    fwd = ServerForwarder.build("http://10.0.0.1:8080/base", pools, "default@internal", TransportSettings(),
                                pass_host_header=pass_host_header, preserve_path=preserve_path)
    conn = UpstreamConnection(fwd.pool)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    fwd.pool.idle.append(conn)
    fwd.handle(ex)
    return transport.out[0]


def test_request_head_for_a_get() -> None:
    head = _head_for(_exchange([(b"accept", b"*/*")]))
    assert head == (b"GET /p?a&b HTTP/1.1\r\nHost: client.example\r\naccept: */*\r\n"
                    b"X-Forwarded-Proto: http\r\nX-Forwarded-Port: 80\r\nX-Forwarded-Host: client.example\r\n"
                    b"X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Server: edge\r\nX-Real-Ip: 192.0.2.1\r\n\r\n")


def test_request_head_framing_and_host_options() -> None:
    post = _head_for(_exchange([], method=b"POST"), pass_host_header=False)
    assert post.startswith(b"POST /p?a&b HTTP/1.1\r\nHost: 10.0.0.1:8080\r\n")
    assert b"Content-Length: 0\r\n" in post
    chunked = _head_for(_exchange([], method=b"PUT", body_length=-1))
    assert b"Transfer-Encoding: chunked\r\n" in chunked
    sized = _head_for(_exchange([], method=b"PUT", body_length=12), preserve_path=True)
    assert sized.startswith(b"PUT /base/p?a&b HTTP/1.1\r\n") and b"Content-Length: 12\r\n" in sized


def test_upgrade_head_uses_go_header_casing() -> None:
    head = _head_for(_exchange([(b"sec-websocket-key", b"k"), (b"x-custom-thing", b"v")], upgrade=b"websocket"))
    assert b"Sec-WebSocket-Key: k\r\n" in head and b"X-Custom-Thing: v\r\n" in head
    assert b"Connection: Upgrade\r\nUpgrade: websocket\r\n" in head
    assert b"X-Forwarded-Proto: ws\r\n" in head
    assert canonical_header_name(b"content-md5") == b"Content-Md5"


def test_transports_with_spiffe_or_peer_cert_sans_are_refused_not_ignored() -> None:
    from ferryman.dynamic.models import ServersTransport

    for section in ({"spiffe": {"ids": ["spiffe://example.org/backend"]}},
                    {"peerCertSANs": [{"type": "URI", "value": "spiffe://example.org/backend"}]}):
        with pytest.raises(ConfigError, match="not implemented yet"):
            TransportSettings.from_model(ServersTransport.model_validate(section))
    assert TransportSettings.from_model(ServersTransport.model_validate({"peerCertURI": "spiffe://x"})).peer_cert_uri
