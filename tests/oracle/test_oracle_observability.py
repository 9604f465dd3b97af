"""Metrics and access logs against the real Traefik: the same requests through both proxies, then

* the Prometheus scrape of each (``prometheus_client.parser``): the same ``traefik_*`` families,
  with the same types and the same label names per sample (values aside: durations differ);
* the JSON access log: the same set of field names per request (``request_``/``origin_``/
  ``downstream_`` headers included) and the same values where they are deterministic;
* the ``common`` (CLF) access log: the same line once the duration, time, ports and request
  count are masked.

Both proxies write the access log to stdout (their captured output), so one configuration serves both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.oracle.harness import TRAEFIK, TRAEFIK_MISSING, Backends, Pair, Proxy, lb, send_raw
from tests.support.procs import poll_until

pytestmark = [pytest.mark.oracle, pytest.mark.skipif(TRAEFIK is None, reason=TRAEFIK_MISSING)]

ENTRY_POINTS: dict[str, dict[str, Any]] = {"web": {}, "traefik": {}}

REQUESTS = [
    b"GET /app/x?q=1 HTTP/1.1\r\nHost: app.test\r\nUser-Agent: probe/1\r\nReferer: http://ref/\r\n\r\n",
    b"POST /app/post HTTP/1.1\r\nHost: app.test\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
    b"GET /nowhere HTTP/1.1\r\nHost: none.test\r\nUser-Agent: probe/2\r\n\r\n",
    b"HEAD /app/head HTTP/1.0\r\nHost: app.test\r\n\r\n",
]


def dynamic(backends: Backends) -> dict[str, Any]:
    return {"http": {
        "routers": {"app": {"rule": "Host(`app.test`)", "service": "app", "entryPoints": ["web"]}},
        "services": {"app": lb(backends["app"])},
    }}


def send_all(pair: Pair, proxy: Proxy) -> None:
    for raw in REQUESTS:
        resp = send_raw(proxy.ports["web"], raw, head_only=raw.startswith(b"HEAD"))
        assert resp.status in (200, 404), (proxy.name, resp)


def access_lines(proxy: Proxy, n: int, marker: str) -> list[str]:
    def found() -> list[str] | None:
        lines = [ln for ln in proxy.read_log() if marker in ln and "oracle-ready" not in ln]
        return lines if len(lines) >= n else None
    return poll_until(found, 10.0, what=f"{n} access log lines from {proxy.name}")


# ------------------------------------------------------------------------------------------- metrics + JSON


@pytest.fixture(scope="module")
def json_pair(tmp_path_factory: pytest.TempPathFactory, backends: Backends) -> Iterator[Pair]:
    extra = {
        "metrics": {"prometheus": {"addRoutersLabels": True, "headerLabels": {"useragent": "User-Agent"}}},
        "accessLog": {"format": "json", "fields": {"headers": {"defaultMode": "keep"}}},
    }
    with Pair(tmp_path_factory.mktemp("observability"), backends, ENTRY_POINTS, dynamic(backends),
              static_extra=extra) as p:
        for proxy in p.proxies():
            send_all(p, proxy)
        yield p


def families(proxy: Proxy) -> dict[str, tuple[str, frozenset[tuple[str, frozenset[str]]]]]:
    """``family -> (type, {(sample name, label names)})`` of the ``traefik_*`` families."""
    resp = send_raw(proxy.ports["traefik"], b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert resp.status == 200, resp
    out: dict[str, tuple[str, frozenset[tuple[str, frozenset[str]]]]] = {}
    for fam in text_string_to_metric_families(resp.body.decode()):
        if fam.name.startswith("traefik_"):
            shapes = frozenset((s.name, frozenset(s.labels)) for s in fam.samples)
            out[fam.name] = (fam.type, shapes)
    return out


def test_prometheus_families_types_and_labels_match_traefik(json_pair: Pair) -> None:
    assert json_pair.traefik is not None and json_pair.ferryman is not None
    want = families(json_pair.traefik)
    got = families(json_pair.ferryman)
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name] == want[name], name


def test_prometheus_values_for_deterministic_series(json_pair: Pair) -> None:
    def counts(proxy: Proxy) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        resp = send_raw(proxy.ports["traefik"], b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        out = {}
        for fam in text_string_to_metric_families(resp.body.decode()):
            if fam.name.startswith("traefik_") and fam.name.endswith(("_requests", "_bytes")):
                for s in fam.samples:
                    out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out
    assert json_pair.traefik is not None and json_pair.ferryman is not None
    assert counts(json_pair.ferryman) == counts(json_pair.traefik)


MASKED = {"ClientAddr", "ClientPort", "Duration", "OriginDuration", "Overhead", "StartLocal", "StartUTC",
          "time", "RequestCount", "RequestAddr", "RequestPort", "ServiceAddr", "ServiceURL",
          "downstream_Date", "origin_Date", "request_X-Forwarded-Server", "request_X-Forwarded-Host",
          "request_X-Forwarded-Port"}


def test_json_access_log_fields_match_traefik(json_pair: Pair) -> None:
    assert json_pair.traefik is not None and json_pair.ferryman is not None
    want = [json.loads(ln) for ln in access_lines(json_pair.traefik, len(REQUESTS), '"RequestMethod"')]
    got = [json.loads(ln) for ln in access_lines(json_pair.ferryman, len(REQUESTS), '"RequestMethod"')]
    want.sort(key=lambda d: d["RequestPath"])
    got.sort(key=lambda d: d["RequestPath"])
    for w, g in zip(want, got, strict=True):
        assert sorted(g) == sorted(w), (w["RequestPath"], sorted(set(w) - set(g)), sorted(set(g) - set(w)))
        same = {k: w[k] for k in w if k not in MASKED}
        assert {k: g[k] for k in same} == same, w["RequestPath"]


# ------------------------------------------------------------------------------------------- CLF


@pytest.fixture(scope="module")
def clf_pair(tmp_path_factory: pytest.TempPathFactory, backends: Backends) -> Iterator[Pair]:
    with Pair(tmp_path_factory.mktemp("clf"), backends, {"web": {}}, dynamic(backends),
              static_extra={"accessLog": {}}) as p:
        for proxy in p.proxies():
            send_all(p, proxy)
        yield p


def mask_clf(line: str, proxy: Proxy) -> str:
    line = re.sub(r"\[[^\]]+\]", "[TIME]", line)
    line = re.sub(r" \d+ (\"[^\"]*\" \"[^\"]*\") \d+ms$", r" COUNT \1 Nms", line)
    for port in proxy.ports.values():
        line = line.replace(str(port), "PORT")
    return line


def test_common_access_log_layout_matches_traefik(clf_pair: Pair) -> None:
    assert clf_pair.traefik is not None and clf_pair.ferryman is not None
    marker = " HTTP/1."
    want = sorted(mask_clf(ln, clf_pair.traefik) for ln in access_lines(clf_pair.traefik, len(REQUESTS), marker))
    got = sorted(mask_clf(ln, clf_pair.ferryman) for ln in access_lines(clf_pair.ferryman, len(REQUESTS), marker))
    assert got == want
