"""Pure parts of metrics and access logs: formats, filters, label values, the scrape output."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ferryman.observability.accesslog import _rfc3339nano, canonical_header, parse_status_ranges
from ferryman.observability.metrics import Metrics, PrometheusService
from ferryman.observability.recorder import grpc_status
from tests.support.recording import RecordingClient


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
    client = RecordingClient()
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


def _recorded(log_config: dict[str, Any], requests: list[dict[str, Any]], *,
              internal_mask_extra: int = 0) -> list[str]:
    """Lines an access log writes for ``requests`` recorded through a real observer (one batch)."""
    from ferryman.http.exchange import ConnInfo, Exchange
    from ferryman.http.forwarded import ForwardingPolicy
    from ferryman.observability.accesslog import AccessLog
    from ferryman.observability.recorder import Observer, Recording
    from ferryman.static.models import AccessLog as AccessLogConfig

    recording = Recording()
    other = recording.register(Metrics())  # another consumer: its bit alone selects nothing here
    log = AccessLog(AccessLogConfig.model_validate(log_config))
    log.bit = recording.register(log)
    log.muted = frozenset(r["router"] for r in requests if r.get("muted"))
    recording.internal_routers.update(r["router"] for r in requests if r["router"].endswith("@internal"))
    observer = Observer(recording, log.bit, other | internal_mask_extra, clf_headers=log.clf_headers)
    conn = ConnInfo("web", "10.0.0.7", 4000, False, ForwardingPolicy())
    for r in requests:
        client = RecordingClient()
        headers = [(b"referer", b"http://a/"), (b"user-agent", b'curl "8"')]
        ex = client.ex = Exchange(conn, client, b"GET", r.get("target", b"/a"), b"/a", None, b"1.1", headers, b"h", 0)
        observer.begin(ex)
        ex.router, ex.service = r["router"], "s@file"
        ex.obs_upstream = "http://10.0.0.9:80"
        ex.obs_start -= r.get("ms", 0) * 1_000_000
        ex.send_head(r.get("status", 200), [], 2)
        ex.send_data(b"ok")
        ex.send_end(None)
    recording.flush()
    lines: list[str] = []
    log._clf_lines(log._inbox.popleft(), 0, lines)
    return [line.split("] ", 1)[1] for line in lines]  # without client, user and time


def test_clf_common_lines_count_every_request_and_cache_what_repeats() -> None:
    lines = _recorded({"format": "common"}, [
        {"router": "a@file"}, {"router": "a@file"}, {"router": "b@file", "ms": 1234},
        {"router": "a@file", "target": b"/b"}])
    assert lines == [
        '"GET /a HTTP/1.1" 200 2 "-" "-" 1 "a@file" "http://10.0.0.9:80" 0ms',
        '"GET /a HTTP/1.1" 200 2 "-" "-" 2 "a@file" "http://10.0.0.9:80" 0ms',
        '"GET /a HTTP/1.1" 200 2 "-" "-" 3 "b@file" "http://10.0.0.9:80" 1234ms',
        '"GET /b HTTP/1.1" 200 2 "-" "-" 4 "a@file" "http://10.0.0.9:80" 0ms',
    ]


def test_clf_filters_muted_generic_and_header_modes() -> None:
    requests: list[dict[str, Any]] = [{"router": "a@file"}, {"router": "a@file", "status": 502}, {"router": "m@file", "muted": True},
                {"router": "api@internal"}, {"router": "a@file", "status": 404}]
    # statusCodes: RequestCount still counts the requests left out; muted routers and internal
    # requests (addInternals off) are not seen at all
    filtered = _recorded({"format": "common", "filters": {"statusCodes": ["500-599"]}}, requests)
    assert filtered == ['"GET /a HTTP/1.1" 502 2 "-" "-" 2 "a@file" "http://10.0.0.9:80" 0ms']
    # an internal request recorded for another consumer only (its bit, not the log's)
    assert len(_recorded({"format": "common"}, requests, internal_mask_extra=4)) == 3
    generic = _recorded({"format": "genericCLF", "fields": {"headers": {"names": {
        "Referer": "keep", "User-Agent": "redact"}}}}, requests[:1])
    assert generic == ['"GET /a HTTP/1.1" 200 2 "http://a/" "REDACTED"']
    kept = _recorded({"format": "common", "fields": {"headers": {"defaultMode": "keep"}}}, requests[:1])
    assert kept == ['"GET /a HTTP/1.1" 200 2 "http://a/" "curl \\"8\\"" 1 "a@file" "http://10.0.0.9:80" 0ms']


def test_access_log_writes_batches_and_drops_past_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches reach the file through the writer (also before start(), e.g. at shutdown); past
    MAX_PENDING waiting lines a batch is dropped and counted, never queued without bound."""
    import ferryman.observability.accesslog as accesslog
    from ferryman.observability.recorder import (
        E_CLIENT_IP,
        E_EXTRA,
        E_LABELS,
        E_LINE,
        E_MASK,
        E_START,
        E_USER,
        Recording,
    )
    from ferryman.static.models import AccessLog as AccessLogConfig

    path = tmp_path / "logs" / "access.log"
    log = accesslog.AccessLog(AccessLogConfig.model_validate({"filePath": str(path)}))
    recording = Recording()
    log.bit = recording.register(log, log.work)

    def entry(n: int) -> tuple[Any, ...]:
        values: list[Any] = [0] * (E_EXTRA + 1)
        values[E_MASK] = log.bit
        values[E_LABELS] = ("web", "s@file", "http", 200, "r@file", b"GET")
        values[E_LINE] = ("r@file", b"GET", b"/%d" % n, b"1.1", 200, 2, "", None, None)
        values[E_CLIENT_IP], values[E_USER], values[E_START] = "10.0.0.1", "-", 0
        return tuple(values)

    recording.pending.extend(entry(n) for n in range(3))
    recording.close()
    log.flush_now()
    lines = path.read_text().splitlines()
    assert [ln.split('"')[1] for ln in lines] == ["GET /0 HTTP/1.1", "GET /1 HTTP/1.1", "GET /2 HTTP/1.1"]
    assert log.written == 3 and log.dropped == 0
    monkeypatch.setattr(accesslog, "MAX_PENDING", 4)
    log.take([entry(n) for n in range(3)])
    log.take([entry(n) for n in range(2)])  # 3 waiting + 2 > 4: dropped
    assert log.dropped == 2
    log.close()
    assert len(path.read_text().splitlines()) == 6
