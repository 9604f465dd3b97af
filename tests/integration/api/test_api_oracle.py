"""The API's JSON next to the real Traefik's (tests/oracle harness): same static and dynamic files,
``api.insecure`` on both, every endpoint compared key by key and value by value.

Normalised before comparing, as documented differences: entry point addresses (each proxy has its
own ports), ``error`` messages (ferryman's say more; both must have them on the same elements),
service references (ferryman shows them qualified, ``app@file``; Traefik as written, ``app``) and
``/api/version``'s values.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.oracle.harness import TRAEFIK, TRAEFIK_MISSING, Backends, Pair, lb
from tests.support.procs import http_request
from tests.unit.api.test_api_certificates import write_cert

pytestmark = [pytest.mark.oracle, pytest.mark.skipif(TRAEFIK is None, reason=TRAEFIK_MISSING)]


def dynamic(backends: Backends, certs: list[dict[str, str]]) -> dict[str, Any]:
    app, v2 = backends["app"], backends["v2"]
    return {"tls": {"certificates": certs}, "http": {
        "routers": {
            "ok": {"rule": "Host(`a.example`) && PathPrefix(`/x`)", "entryPoints": ["web"], "service": "app",
                   "middlewares": ["secured"]},
            "missing": {"rule": "Host(`c.example`)", "entryPoints": ["web"], "service": "nope"},
            "warn": {"rule": "Path(`/p`)", "priority": 42, "entryPoints": ["web", "nowhere"], "service": "split"},
            "user-api": {"rule": "Host(`api.example`)", "entryPoints": ["web"], "service": "api@internal"},
            "tlsr": {"rule": "Host(`t.example`)", "entryPoints": ["web"], "service": "app", "tls": {}},
        },
        "services": {
            "app": lb(app),
            "v2": {"loadBalancer": {"passHostHeader": False, "servers": [{"url": v2.url, "weight": 2}]}},
            "split": {"weighted": {"services": [{"name": "app", "weight": 3}, {"name": "v2"}]}},
            "unused": lb(v2),
        },
        "middlewares": {
            "secured": {"chain": {"middlewares": ["https-only"]}},
            "https-only": {"redirectScheme": {"scheme": "https", "permanent": True}},
        },
    }}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    backends = Backends()
    pki = tmp_path_factory.mktemp("pki")
    certs = []
    for stem, cn, days, rsa_key, org in (("a", "app.example", 200, False, "Example CA"),
                                         ("b", "soon.example", 10, True, "")):
        cert, _der = write_cert(pki, stem, cn, days_left=days, rsa_key=rsa_key, issuer_org=org,
                                sans=(cn, f"www.{cn}"), ips=("10.0.0.1",))
        certs.append({"certFile": str(cert), "keyFile": str(cert.with_suffix(".key"))})
    try:
        with Pair(tmp_path_factory.mktemp("api"), backends, {"web": {}, "traefik": {}}, dynamic(backends, certs),
                  static_extra={"api": {"insecure": True, "dashboard": False}}) as p:
            yield p
    finally:
        backends.close()


def fetch(pair: Pair, which: str, path: str) -> tuple[int, dict[str, str], bytes]:
    proxy = pair.traefik if which == "traefik" else pair.ferryman
    assert proxy is not None
    status, pairs, body = http_request("127.0.0.1", proxy.ports["traefik"], path)
    return status, {k.lower(): v for k, v in pairs if k.lower() not in ("date", "content-length", "transfer-encoding")}, body


def qualify(name: str, provider: str) -> str:
    return name if "@" in name else f"{name}@{provider}"


def normalise(value: Any, provider: str = "") -> Any:
    """Remove the documented differences (see the module docstring); keep key order."""
    if isinstance(value, list):
        return [normalise(v, provider) for v in value]
    if not isinstance(value, dict):
        return value
    provider = value.get("provider", provider)
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key == "error":
            item = ["<error>"] * len(item)
        elif key == "address":
            item = "<address>"
        elif key == "service" and isinstance(item, str) and provider:
            item = qualify(item, provider)
        elif key == "services" and isinstance(item, list) and provider:
            item = [{**s, "name": qualify(s["name"], provider)} for s in item]
        out[key] = normalise(item, provider)
    return out


def normalise_rawdata(raw: dict[str, Any]) -> dict[str, Any]:
    return {kind: {name: normalise(body, name.rsplit("@", 1)[1]) for name, body in table.items()}
            for kind, table in raw.items()}


@pytest.mark.parametrize("endpoint", [
    "overview", "entrypoints", "entrypoints/web", "http/routers", "http/routers/ok@file",
    "http/routers/missing%40file", "http/services", "http/services/split@file", "http/middlewares",
    "http/middlewares/secured@file", "tcp/routers", "tcp/services", "tcp/middlewares", "udp/routers",
    "udp/services", "http/routers?status=disabled", "http/routers?search=EXAMPLE&per_page=2&page=2",
    "http/services?status=enabled&per_page=3", "rawdata", "certificates", "certificates?status=warning",
    "certificates?sortBy=validUntil&direction=desc",
])
def test_same_json_as_traefik(pair: Pair, endpoint: str) -> None:
    t_status, t_headers, t_body = fetch(pair, "traefik", f"/api/{endpoint}")
    f_status, f_headers, f_body = fetch(pair, "ferryman", f"/api/{endpoint}")
    assert (f_status, f_headers) == (t_status, t_headers)
    if endpoint == "rawdata":
        assert normalise_rawdata(json.loads(f_body)) == normalise_rawdata(json.loads(t_body))
    else:
        t, f = normalise(json.loads(t_body)), normalise(json.loads(f_body))
        assert json.dumps(f, indent=1) == json.dumps(t, indent=1)  # key order too


@pytest.mark.parametrize("path", [
    "/api/http/routers/nope@file", "/api/http/services/x", "/api/http/middlewares/x", "/api/entrypoints/zz",
    "/api/tcp/routers/x", "/api/nothing", "/api/http/routers/", "/api/http/routers?per_page=2&page=9",
    "/api/http/routers?per_page=abc", "/api/http/routers/a%zzb",
])
def test_same_errors_as_traefik(pair: Pair, path: str) -> None:
    assert fetch(pair, "ferryman", path) == fetch(pair, "traefik", path)


def test_version_has_traefiks_keys(pair: Pair) -> None:
    t_status, t_headers, t_body = fetch(pair, "traefik", "/api/version")
    f_status, f_headers, f_body = fetch(pair, "ferryman", "/api/version")
    assert (f_status, f_headers) == (t_status, t_headers)
    assert list(json.loads(f_body)) == list(json.loads(t_body)) == ["Version", "Codename", "startDate"]


# -- the dashboard's routing, next to Traefik's (the page itself is ferryman's own) ----------------

# openssl passwd -apr1 -salt abcdefgh s3cret
ADMIN = "admin:$apr1$abcdefgh$M2T3erDstkD7SsE2QQnfH0"
AUTH = {"Authorization": "Basic YWRtaW46czNjcmV0"}  # admin:s3cret


@contextlib.contextmanager
def admin_pair(workdir: Path, rule: str, entry_points: dict[str, Any], api: dict[str, Any]) -> Iterator[Pair]:
    """Both proxies with one user router to ``api@internal`` on ``web`` behind basicAuth."""
    backends = Backends()
    dynamic = {"http": {
        "routers": {"admin": {"rule": rule, "entryPoints": ["web"], "service": "api@internal",
                              "middlewares": ["auth"]}},
        "middlewares": {"auth": {"basicAuth": {"users": [ADMIN]}}},
    }}
    try:
        with Pair(workdir, backends, entry_points, dynamic, static_extra={"api": api}) as p:
            yield p
    finally:
        backends.close()


@pytest.fixture(scope="module")
def dashboard_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    # api.dashboard: Traefik's default, true
    with admin_pair(tmp_path_factory.mktemp("dashboard"), "Host(`admin.example`)", {"web": {}, "traefik": {}},
                    {"insecure": True}) as p:
        yield p


def ask(pair: Pair, which: str, entry_point: str, path: str,
        headers: dict[str, str] | None = None) -> tuple[int, str, str, bytes]:
    """(status, Location with the proxy's own port masked, Content-Type, body)."""
    proxy = pair.traefik if which == "traefik" else pair.ferryman
    assert proxy is not None
    port = proxy.ports[entry_point]
    status, pairs, body = http_request("127.0.0.1", port, path, headers=headers)
    found = {k.lower(): v for k, v in pairs}
    location = found.get("location", "").replace(f":{port}/", ":<port>/")
    return status, location, found.get("content-type", ""), body


@pytest.mark.parametrize("endpoint", [
    "http/routers/dashboard@internal", "http/middlewares/dashboard_redirect@internal",
    "http/middlewares/dashboard_stripprefix@internal", "http/services", "overview", "http/routers?search=dashboard",
])
def test_dashboard_elements_as_traefik(dashboard_pair: Pair, endpoint: str) -> None:
    t_status, t_headers, t_body = fetch(dashboard_pair, "traefik", f"/api/{endpoint}")
    f_status, f_headers, f_body = fetch(dashboard_pair, "ferryman", f"/api/{endpoint}")
    assert (f_status, f_headers) == (t_status, t_headers)
    t, f = normalise(json.loads(t_body)), normalise(json.loads(f_body))
    assert json.dumps(f, indent=1) == json.dumps(t, indent=1)


@pytest.mark.parametrize(("entry_point", "path", "auth"), [
    ("traefik", "/", False),  # 301 to /dashboard/ (dashboard_redirect)
    ("traefik", "/dashboard/", False),
    ("traefik", "/dashboard", False),  # stripped to the page
    ("traefik", "/dashboard/index.html", False),  # Go's FileServer: 301 to ./
    ("traefik", "/dashboard/nope.js", False),
    ("traefik", "/other", False),
    ("web", "/dashboard/", False),  # basicAuth on the user's router
    ("web", "/", True),  # api@internal itself: 302 to /dashboard/
    ("web", "/dashboard/", True),
    ("web", "/dashboard", True),  # not served by api@internal
    ("web", "/api/version", True),
])
def test_dashboard_routing_as_traefik(dashboard_pair: Pair, entry_point: str, path: str, auth: bool) -> None:
    headers = {"Host": "admin.example", **(AUTH if auth else {})} if entry_point == "web" else None
    t_status, t_location, t_type, t_body = ask(dashboard_pair, "traefik", entry_point, path, headers)
    f_status, f_location, f_type, f_body = ask(dashboard_pair, "ferryman", entry_point, path, headers)
    assert (f_status, f_location, f_type) == (t_status, t_location, t_type)
    if t_status != 200:
        assert f_body == t_body
    elif t_type.startswith("text/html"):
        assert f_body.startswith(b"<!DOCTYPE html>")


@pytest.fixture(scope="module")
def base_path_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """``api.basePath`` with a user router (Traefik documents basePath for that case only)."""
    with admin_pair(tmp_path_factory.mktemp("basepath"), "PathPrefix(`/tr`)", {"web": {}}, {"basePath": "/tr/"}) as p:
        yield p


@pytest.mark.parametrize(("path", "auth"), [
    ("/tr/api/overview", False), ("/tr/", True), ("/tr", True), ("/tr/dashboard/", True), ("/tr/dashboard", True),
    ("/tr/api/http/routers?search=admin", True), ("/tr/api/http/services/dashboard@internal", True),
    ("/tr/api/entrypoints/web", True), ("/tr/api/nothing", True), ("/tr/other", True),
])
def test_base_path_as_traefik(base_path_pair: Pair, path: str, auth: bool) -> None:
    headers = AUTH if auth else None
    t_status, t_location, t_type, t_body = ask(base_path_pair, "traefik", "web", path, headers)
    f_status, f_location, f_type, f_body = ask(base_path_pair, "ferryman", "web", path, headers)
    assert (f_status, f_location, f_type) == (t_status, t_location, t_type)
    if t_type == "application/json":
        t, f = normalise(json.loads(t_body)), normalise(json.loads(f_body))
        assert json.dumps(f, indent=1) == json.dumps(t, indent=1)
    elif t_status != 200:
        assert f_body == t_body
