"""Metrics and access logs of a real ferryman process after real traffic (real backend, real sockets).

The Prometheus output is parsed with ``prometheus_client.parser`` (what a Prometheus scrape
understands); access-log lines are parsed per field.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import StartFerryman
from tests.support.procs import http_request, poll_until

Families = dict[str, Any]


def scrape(port: int, path: str = "/metrics") -> Families:
    status, _, body = http_request("127.0.0.1", port, path)
    assert status == 200, body
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def samples(fams: Families, name: str, **labels: str) -> list[tuple[str, dict[str, str], float]]:
    fam = fams[name]
    return [(s.name, dict(s.labels), s.value) for s in fam.samples
            if all(s.labels.get(k) == v for k, v in labels.items())]


def value(fams: Families, family: str, sample: str, **labels: str) -> float:
    found = [v for n, lab, v in samples(fams, family, **labels) if n == sample]
    assert len(found) == 1, (sample, labels, samples(fams, family))
    return found[0]


def _static(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "entryPoints": {"web": {"address": "127.0.0.1:0"}, "traefik": {"address": "127.0.0.1:0"}},
        "log": {"level": "INFO", "format": "json"},
        **extra,
    }


def _dynamic(backend: int) -> dict[str, Any]:
    return {"http": {
        "routers": {"app": {"rule": "PathPrefix(`/`)", "service": "app", "entryPoints": ["web"]},
                    "auth": {"rule": "PathPrefix(`/private`)", "service": "app", "entryPoints": ["web"],
                             "middlewares": ["auth"]}},
        "middlewares": {"auth": {"basicAuth": {"users": ["bob:$apr1$H6uskkkW$NNBs2U5LAblMB3OM9KekS/"]}}},
        "services": {"app": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{backend}"}]}}},
    }}


def test_prometheus_families_labels_and_values(ferryman: StartFerryman, hello: Callable[[str], int],
                                               tmp_path: Path) -> None:
    backend = hello("v1")
    fm = ferryman(_static(tmp_path, metrics={"prometheus": {"addRoutersLabels": True,
                                                            "headerLabels": {"useragent": "User-Agent"},
                                                            "buckets": [0.5, 1, 10]}}),
                  _dynamic(backend))
    web, internal = fm.ports["web"], fm.ports["traefik"]
    for _ in range(3):
        assert http_request("127.0.0.1", web, "/", headers={"User-Agent": "probe"})[0] == 200
    status, _, _ = http_request("127.0.0.1", web, "/echo", method="POST", body=b"12345")
    assert status == 200
    assert http_request("127.0.0.1", web, "/status/503")[0] == 503

    fams = scrape(internal)
    # global families
    assert fams["traefik_config_reloads"].type == "counter"
    assert value(fams, "traefik_config_reloads", "traefik_config_reloads_total") >= 1
    assert fams["traefik_config_last_reload_success"].type == "gauge"
    assert fams["traefik_open_connections"].type == "gauge"
    assert {s[1]["entrypoint"] for s in samples(fams, "traefik_open_connections")} == {"web", "traefik"}

    # entry point level: three GETs (200), one POST with 5 body bytes, one 503
    ep = "traefik_entrypoint_requests"
    assert fams[ep].type == "counter"
    assert value(fams, ep, ep + "_total", code="200", method="GET", protocol="http", entrypoint="web",
                 useragent="probe") == 3
    assert value(fams, ep, ep + "_total", code="503", method="GET", entrypoint="web") == 1
    assert value(fams, "traefik_entrypoint_requests_bytes", "traefik_entrypoint_requests_bytes_total",
                 code="200", method="POST", entrypoint="web") == 5
    body_bytes = len(b"Hello from v1\n")
    assert value(fams, "traefik_entrypoint_responses_bytes", "traefik_entrypoint_responses_bytes_total",
                 code="200", method="GET", entrypoint="web") == 3 * body_bytes
    hist = "traefik_entrypoint_request_duration_seconds"
    assert fams[hist].type == "histogram"
    les = [lab["le"] for n, lab, _ in samples(fams, hist, code="200", method="GET") if n == hist + "_bucket"]
    assert [float(x) for x in les] == [0.5, 1.0, 10.0, float("inf")]
    assert value(fams, hist, hist + "_count", code="200", method="GET") == 3
    assert value(fams, hist, hist + "_bucket", code="200", method="GET", le="+Inf") == 3
    # router and service levels carry Traefik's label names
    rt = "traefik_router_requests"
    assert value(fams, rt, rt + "_total", code="200", method="GET", router="app@file", service="app@file",
                 protocol="http", useragent="probe") == 3
    sv = "traefik_service_request_duration_seconds"
    assert value(fams, sv, sv + "_count", code="503", method="GET", service="app@file", protocol="http") == 1
    # the scrape itself (an internal router) is not counted without addInternals
    assert not samples(fams, ep, entrypoint="traefik")
    # label sets exactly as Traefik's
    def labels_of(name: str, sample: str) -> set[str]:
        return {k for n, lab, _ in samples(fams, name) if n == sample for k in lab}
    assert labels_of(ep, ep + "_total") == {"code", "method", "protocol", "entrypoint", "useragent"}
    assert labels_of(hist, hist + "_bucket") == {"code", "method", "protocol", "entrypoint", "le"}
    assert labels_of(rt, rt + "_total") == {"code", "method", "protocol", "router", "service", "useragent"}


def test_metrics_off_by_default_and_manual_routing(ferryman: StartFerryman, hello: Callable[[str], int],
                                                   tmp_path: Path) -> None:
    backend = hello("v1")
    dyn = _dynamic(backend)
    dyn["http"]["routers"]["metrics"] = {"rule": "Path(`/custom-metrics`)", "service": "prometheus@internal",
                                         "entryPoints": ["web"], "priority": 1000}
    fm = ferryman(_static(tmp_path, metrics={"prometheus": {"manualRouting": True}}), dyn)
    web = fm.ports["web"]
    assert http_request("127.0.0.1", web, "/")[0] == 200
    fams = scrape(web, "/custom-metrics")
    assert value(fams, "traefik_entrypoint_requests", "traefik_entrypoint_requests_total",
                 code="200", method="GET", entrypoint="web") == 1
    # manualRouting: no /metrics router on the traefik entry point
    assert http_request("127.0.0.1", fm.ports["traefik"], "/metrics")[0] == 404


def _wait_lines(path: Path, n: int) -> list[str]:
    def read() -> list[str] | None:
        if not path.exists():
            return None
        lines = path.read_text().splitlines()
        return lines if len(lines) >= n else None
    return poll_until(read, 10.0, what=f"{n} access log lines in {path}")


CLF = re.compile(r'^(?P<host>\S+) - (?P<user>\S+) \[(?P<time>\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] '
                 r'"(?P<method>\S+) (?P<path>\S+) (?P<proto>\S+)" (?P<status>\d+) (?P<size>\d+) '
                 r'"(?P<referer>[^"]*)" "(?P<ua>[^"]*)" (?P<count>\d+) "(?P<router>[^"]*)" "(?P<url>[^"]*)" '
                 r'(?P<ms>\d+)ms$')


def test_access_log_common_format_and_reopen(ferryman: StartFerryman, hello: Callable[[str], int],
                                             tmp_path: Path) -> None:
    backend = hello("v1")
    log_path = tmp_path / "logs" / "access.log"
    # Referer/User-Agent show in CLF only when fields.headers keeps them (Traefik: dropped by default)
    fm = ferryman(_static(tmp_path, accessLog={"filePath": str(log_path), "fields": {
        "headers": {"names": {"Referer": "keep", "User-Agent": "redact"}}}}), _dynamic(backend))
    web = fm.ports["web"]
    assert http_request("127.0.0.1", web, "/a?x=1", headers={"Referer": "http://ref/", "User-Agent": "ua/1"})[0] == 200
    assert http_request("127.0.0.1", web, "/private", headers={"Authorization": "Basic Ym9iOnNlY3JldA=="})[0] == 200
    lines = _wait_lines(log_path, 2)
    first = CLF.match(lines[0])
    assert first is not None, lines[0]
    assert first["host"] == "127.0.0.1" and first["user"] == "-" and first["method"] == "GET"
    assert first["path"] == "/a?x=1" and first["proto"] == "HTTP/1.1" and first["status"] == "200"
    assert first["size"] == str(len(b"Hello from v1\n")) and first["referer"] == "http://ref/"
    assert first["ua"] == "REDACTED" and first["router"] == "app@file"
    assert first["url"] == f"http://127.0.0.1:{backend}"
    second = CLF.match(lines[1])
    assert second is not None and second["user"] == "bob" and second["router"] == "auth@file"
    assert int(second["count"]) == int(first["count"]) + 1

    # logrotate: move the file away, SIGUSR1, the next line goes to a new file at filePath
    rotated = tmp_path / "logs" / "access.log.1"
    os.rename(log_path, rotated)
    fm.signal(signal.SIGUSR1)

    def reopened() -> bool:
        http_request("127.0.0.1", web, "/after-rotate")
        return log_path.exists() and "/after-rotate" in log_path.read_text()
    poll_until(reopened, 10.0, what="the access log to be reopened at filePath")
    assert len(rotated.read_text().splitlines()) >= 2


def test_access_log_json_fields_filters_and_header_modes(ferryman: StartFerryman, hello: Callable[[str], int],
                                                         tmp_path: Path) -> None:
    backend = hello("v1")
    log_path = tmp_path / "access.json"
    fm = ferryman(_static(tmp_path, accessLog={
        "filePath": str(log_path), "format": "json",
        "filters": {"statusCodes": ["500-599", "404"]},
        "fields": {"names": {"StartLocal": "drop"},
                   "headers": {"defaultMode": "keep", "names": {"Authorization": "redact", "X-Drop": "drop"}}},
    }), _dynamic(backend))
    web = fm.ports["web"]
    assert http_request("127.0.0.1", web, "/")[0] == 200  # filtered out
    assert http_request("127.0.0.1", web, "/status/503", method="POST", body=b"abc",
                        headers={"Authorization": "secret", "X-Drop": "1", "X-Keep": "k"})[0] == 503
    line = json.loads(_wait_lines(log_path, 1)[0])
    assert line["DownstreamStatus"] == 503 and line["OriginStatus"] == 503
    assert line["RequestMethod"] == "POST" and line["RequestPath"] == "/status/503"
    assert line["RequestContentSize"] == 3 and line["RequestProtocol"] == "HTTP/1.1"
    assert line["RouterName"] == "app@file" and line["ServiceName"] == "app@file"
    assert line["ServiceURL"] == f"http://127.0.0.1:{backend}"
    assert line["ServiceAddr"] == f"127.0.0.1:{backend}"
    assert line["entryPointName"] == "web" and line["RequestScheme"] == "http"
    assert line["ClientHost"] == "127.0.0.1" and line["ClientAddr"].startswith("127.0.0.1:")
    assert isinstance(line["Duration"], int) and line["Duration"] > 0
    assert "StartLocal" not in line and line["StartUTC"].endswith("Z")
    assert line["request_Authorization"] == "REDACTED" and line["request_X-Keep"] == "k"
    assert "request_X-Drop" not in line
    assert line["request_X-Forwarded-Proto"] == "http"  # as forwarded, like Traefik
    assert line["downstream_X-Served-By"] == "v1" and line["origin_X-Served-By"] == "v1"
    assert line["level"] == "info" and line["msg"] == ""
    assert list(line) == sorted(line)


def test_http2_goes_through_the_same_seam(ferryman: StartFerryman, hello: Callable[[str], int],
                                          tmp_path: Path) -> None:
    """h2c (prior knowledge) requests are counted and logged like HTTP/1.1 ones."""
    backend = hello("v1")
    log_path = tmp_path / "access.json"
    fm = ferryman(_static(tmp_path, metrics={"prometheus": {}},
                          accessLog={"filePath": str(log_path), "format": "json"}), _dynamic(backend))
    web = fm.ports["web"]
    out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_version}",
                          f"http://127.0.0.1:{web}/h2"], capture_output=True, timeout=10, check=True)
    assert out.stdout == b"2"
    line = json.loads(_wait_lines(log_path, 1)[0])
    assert line["RequestProtocol"] == "HTTP/2.0" and line["DownstreamStatus"] == 200
    assert line["RouterName"] == "app@file"
    fams = scrape(fm.ports["traefik"])
    assert value(fams, "traefik_entrypoint_requests", "traefik_entrypoint_requests_total",
                 code="200", method="GET", entrypoint="web") == 1


def test_router_disabled_is_one_structured_event(ferryman: StartFerryman, hello: Callable[[str], int],
                                                 tmp_path: Path) -> None:
    backend = hello("v1")
    dyn = _dynamic(backend)
    dyn["http"]["routers"]["broken"] = {"rule": "Host(`b.test`)", "service": "missing"}
    fm = ferryman(_static(tmp_path), dyn)
    ev = fm.wait_for(lambda e: e.get("event") == "router.disabled")
    assert ev["routerName"] == "broken@file" and ev["providerName"] == "file"
    assert "missing@file" in ev["error"] and ev["level"] == "error"
    applied = fm.wait_for(lambda e: e.get("event") == "config.applied")
    assert applied["message"] == "configuration applied" and applied["disabled"] >= 1
    assert applied["providers"] == ["file"]


def test_tls_requests_certificates_and_retries(ferryman: StartFerryman, hello: Callable[[str], int],
                                               tmp_path: Path) -> None:
    """``*_requests_tls_total`` with Go's version/cipher names, ``tls_certs_not_after`` for the
    configured certificate, ``service_retries_total`` after retries, TLS fields in the access log."""
    from cryptography import x509

    from tests.integration.tls.pki import CA
    ca = CA()
    certs = tmp_path / "certs"
    certs.mkdir()
    ca_file = certs / "ca.pem"
    ca_file.write_text(ca.pem)
    server = ca.issue("app.test", dns=("app.test",))
    cert, key = server.write(certs, "server")
    backend = hello("v1")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    log_path = tmp_path / "access.json"
    static = _static(tmp_path, metrics={"prometheus": {}}, accessLog={"filePath": str(log_path), "format": "json"})
    static["entryPoints"]["websecure"] = {"address": "127.0.0.1:0"}
    fm = ferryman(static, {
        "http": {
            "routers": {"app": {"rule": "Host(`app.test`)", "service": "app", "tls": {},
                                "entryPoints": ["websecure"]},
                        "flaky": {"rule": "Host(`flaky.test`)", "service": "flaky", "middlewares": ["retry"],
                                  "entryPoints": ["web"]}},
            "middlewares": {"retry": {"retry": {"attempts": 3}}},
            "services": {"app": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{backend}"}]}},
                         "flaky": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{dead}"},
                                                                {"url": f"http://127.0.0.1:{backend}"}]}}},
        },
        "tls": {"certificates": [{"certFile": str(cert), "keyFile": str(key)}]},
    })
    port = fm.ports["websecure"]
    r = subprocess.run(["curl", "-sS", "--tlsv1.3", "--cacert", str(ca_file), "--resolve", f"app.test:{port}:127.0.0.1",
                        f"https://app.test:{port}/"], capture_output=True, timeout=20, check=False)
    assert r.returncode == 0 and r.stdout == b"Hello from v1\n", r.stderr
    for _ in range(2):
        assert http_request("127.0.0.1", fm.ports["web"], "/", headers={"Host": "flaky.test"})[0] == 200

    fams = scrape(fm.ports["traefik"])
    tls = samples(fams, "traefik_entrypoint_requests_tls", entrypoint="websecure")
    assert [(lab["tls_version"], v) for _, lab, v in tls] == [("1.3", 1.0)]
    assert tls[0][1]["tls_cipher"] in ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
    assert value(fams, "traefik_service_requests_tls", "traefik_service_requests_tls_total",
                 service="app@file", tls_version="1.3") == 1
    parsed = x509.load_pem_x509_certificate(server.cert_pem.encode())
    (row,) = samples(fams, "traefik_tls_certs_not_after")
    assert row[1] == {"cn": "app.test", "serial": str(parsed.serial_number), "sans": "app.test"}
    assert row[2] == parsed.not_valid_after_utc.timestamp()
    # round robin: one of the two requests went to the dead server first and was retried
    assert value(fams, "traefik_service_retries", "traefik_service_retries_total", service="flaky@file") >= 1

    lines = [json.loads(ln) for ln in _wait_lines(log_path, 3)]
    tls_line = next(ln for ln in lines if ln["entryPointName"] == "websecure")
    assert tls_line["TLSVersion"] == "1.3" and tls_line["TLSCipher"].startswith("TLS_")
    assert tls_line["RequestScheme"] == "https"
    assert sum(ln.get("RetryAttempts", 0) for ln in lines) >= 1


def test_router_observability_switches(ferryman: StartFerryman, hello: Callable[[str], int],
                                       tmp_path: Path) -> None:
    """A router's ``observability.{metrics, accessLogs}: false`` keeps its requests out of both."""
    backend = hello("v1")
    log_path = tmp_path / "access.json"
    dyn = _dynamic(backend)
    dyn["http"]["routers"]["quiet"] = {"rule": "PathPrefix(`/quiet`)", "service": "app", "entryPoints": ["web"],
                                       "observability": {"metrics": False, "accessLogs": False}}
    fm = ferryman(_static(tmp_path, metrics={"prometheus": {}},
                          accessLog={"filePath": str(log_path), "format": "json"}), dyn)
    web = fm.ports["web"]
    assert http_request("127.0.0.1", web, "/quiet")[0] == 200
    assert http_request("127.0.0.1", web, "/loud")[0] == 200
    (line,) = [json.loads(ln) for ln in _wait_lines(log_path, 1)]
    assert line["RequestPath"] == "/loud"
    fams = scrape(fm.ports["traefik"])
    assert value(fams, "traefik_entrypoint_requests", "traefik_entrypoint_requests_total",
                 code="200", method="GET", entrypoint="web") == 1


def test_http3_goes_through_the_same_seam(ferryman: StartFerryman, hello: Callable[[str], int],
                                          tmp_path: Path) -> None:
    """HTTP/3 requests are counted and logged like the others (``RequestProtocol`` ``HTTP/3.0``)."""
    from tests.integration.tls.pki import CA
    from tests.support.h3client import H3Request, h3_requests
    ca = CA()
    certs = tmp_path / "certs"
    certs.mkdir()
    cert, key = ca.issue("app.test", dns=("app.test",)).write(certs, "app")
    backend = hello("v1")
    log_path = tmp_path / "access.json"
    static = _static(tmp_path, metrics={"prometheus": {}}, accessLog={"filePath": str(log_path), "format": "json"})
    static["entryPoints"]["websecure"] = {"address": "127.0.0.1:0", "http3": {}}
    fm = ferryman(static, {
        "http": {"routers": {"app": {"rule": "Host(`app.test`)", "service": "app", "tls": {},
                                     "entryPoints": ["websecure"]}},
                 "services": {"app": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{backend}"}]}}}},
        "tls": {"certificates": [{"certFile": str(cert), "keyFile": str(key)}]},
    })
    (resp,) = h3_requests(fm.ports["websecure"], [H3Request("/", authority="app.test")],
                          server_name="app.test", ca_pem=ca.pem)
    assert resp.status == 200
    line = json.loads(_wait_lines(log_path, 1)[0])
    assert line["RequestProtocol"] == "HTTP/3.0" and line["DownstreamStatus"] == 200
    assert line["RouterName"] == "app@file" and line["TLSVersion"] == "1.3"
    fams = scrape(fm.ports["traefik"])
    assert value(fams, "traefik_entrypoint_requests", "traefik_entrypoint_requests_total",
                 code="200", method="GET", entrypoint="websecure") == 1
