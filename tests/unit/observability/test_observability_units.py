"""Pure parts of metrics and access logs: formats, filters, label values, the scrape output."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ferryman.observability.accesslog import _rfc3339nano, canonical_header, parse_status_ranges
from ferryman.observability.metrics import Metrics, PrometheusService
from ferryman.observability.recorder import grpc_status


def test_canonical_header_is_gos() -> None:
    assert canonical_header(b"x-real-ip") == "X-Real-Ip"
    assert canonical_header("user-agent") == "User-Agent"
    assert canonical_header(b"WWW-AUTHENTICATE") == "Www-Authenticate"


def test_status_ranges() -> None:
    assert parse_status_ranges(["200", "300-302", "500-599,404"]) == [(200, 200), (300, 302), (500, 599),
                                                                      (404, 404)]
    with pytest.raises(ValueError, match="statusCodes"):
        parse_status_ranges(["2xx"])


def test_rfc3339nano_trims_zeros_like_go() -> None:
    ns = int(datetime.datetime(2026, 11, 25, 21, 26, 26, tzinfo=datetime.UTC).timestamp()) * 10**9
    assert _rfc3339nano(ns + 109_839_476, datetime.UTC) == "2026-11-25T21:26:26.109839476Z"
    assert _rfc3339nano(ns + 100_000_000, datetime.UTC) == "2026-11-25T21:26:26.1Z"
    assert _rfc3339nano(ns, datetime.UTC) == "2026-11-25T21:26:26Z"


def test_grpc_status_from_trailers_then_headers() -> None:
    assert grpc_status([(b"Grpc-Status", b"5")], None) == 5
    assert grpc_status([(b"grpc-status", b"0")], [(b"grpc-status", b"14")]) == 14
    assert grpc_status(None, None) == 0
    assert grpc_status([(b"grpc-status", b"x")], None) == 2


def test_empty_registry_scrapes_global_families_only() -> None:
    m = Metrics()
    m.config_reloaded()
    m.open_connections = lambda: [("web", "TCP", 2)]
    m.certificates = lambda: [("a.test", "1234", "a.test,b.test", 1.8e9)]
    m.set_server_up("app@file", "http://10.0.0.1:80", up=False)
    fams = {f.name: f for f in text_string_to_metric_families(PrometheusService(m).render().decode())}
    traefik = sorted(n for n in fams if n.startswith("traefik_"))
    assert traefik == ["traefik_config_last_reload_success", "traefik_config_reloads",
                       "traefik_open_connections", "traefik_service_server_up", "traefik_tls_certs_not_after"]
    (cert,) = fams["traefik_tls_certs_not_after"].samples
    assert cert.labels == {"cn": "a.test", "serial": "1234", "sans": "a.test,b.test"} and cert.value == 1.8e9
    (up,) = fams["traefik_service_server_up"].samples
    assert up.labels == {"service": "app@file", "url": "http://10.0.0.1:80"} and up.value == 0
    assert "process_cpu_seconds" in fams


class _Client:
    """The client side of an exchange, doing what a client connection does for the recording
    seam (status, body bytes, the head while observed, ``finish`` at the end), without sockets."""

    write_paused = False

    def __init__(self) -> None:
        self.ex: Any = None

    def send_info(self, status: int, headers: list[tuple[bytes, bytes]]) -> None: ...

    def send_head(self, status: int, headers: list[tuple[bytes, bytes]], length: int) -> None:
        self.ex.status = status
        if self.ex.obs is not None:
            self.ex.resp_headers, self.ex.resp_length = headers, length

    def send_data(self, data: bytes) -> None:
        self.ex.sent += len(data)

    def send_end(self, trailers: list[tuple[bytes, bytes]] | None) -> None:
        if self.ex.obs is not None:
            self.ex.obs.finish(self.ex, trailers)

    def abort(self) -> None: ...
    def pause_body(self) -> None: ...
    def resume_body(self) -> None: ...
    def start_tunnel(self, peer: object) -> None: ...
    def flush(self) -> None: ...


@pytest.mark.parametrize(("headers", "websocket", "trailers", "want"), [
    ([(b"accept", b"*/*")], False, None, ("http", 200)),
    ([(b"content-type", b"application/grpc+proto")], False, [(b"grpc-status", b"5")], ("grpc", 5)),
    ([(b"content-type", b"application/grpc-web-text")], False, None, ("grpc-web", 0)),
    ([(b"accept", b"text/event-stream")], False, None, ("sse", 200)),
    ([], True, None, ("websocket", 200)),
])
def test_protocol_label_and_grpc_code(headers: list[tuple[bytes, bytes]], websocket: bool,
                                      trailers: list[tuple[bytes, bytes]] | None, want: tuple[str, int]) -> None:
    from ferryman.http.exchange import ConnInfo, Exchange
    from ferryman.http.forwarded import ForwardingPolicy
    from ferryman.observability.recorder import Observer, Recording

    recording = Recording()
    m = Metrics()
    m.bit = recording.register(m, m.work)
    m.flush = recording.flush
    conn = ConnInfo("web", "127.0.0.1", 4000, False, ForwardingPolicy())
    client = _Client()
    ex = client.ex = Exchange(conn, client, b"POST", b"/x", b"/x", None, b"2", headers, b"h", 3)
    ex.websocket = websocket
    ex.router, ex.service = "r@file", "s@file"
    Observer(recording, m.bit, protocols=True).begin(ex)
    ex.send_head(200, [], -1)
    ex.send_data(b"abcd")
    ex.send_end(trailers)
    assert ex.obs is None  # recorded once
    assert not m.slots  # nothing is aggregated on the request path...
    m.sync()  # ...but a reader sees everything finished so far
    ((key, slot),) = m.slots.items()
    assert key == ("web", "s@file", want[0], want[1], "r@file", b"POST")
    assert slot[:3] == [1, 3, 4]
