"""api@internal in memory: Traefik's status codes, bodies and headers; filters and pagination;
views built once per snapshot."""

from __future__ import annotations

import gc
import weakref

import pytest

from ferryman.api.gojson import encode, go_duration, go_time
from ferryman.api.handler import ApiService
from tests.unit.api.api_support import ask, build_snapshot, golden_inputs, load_static, service_for


@pytest.fixture(scope="module")
def api() -> ApiService:
    static, dynamic = golden_inputs()
    _app, snapshot = build_snapshot(static, dynamic)
    return service_for(static, snapshot)


def names(api: ApiService, target: str) -> list[str]:
    answer = ask(api, target)
    assert answer.status == 200, answer.body
    return [item["name"] for item in answer.json()]


# -- Traefik's bodies and headers ---------------------------------------------------------------


@pytest.mark.parametrize(("target", "message"), [
    ("/api/http/routers/nope@file", "router not found: nope@file"),
    ("/api/http/services/nope", "service not found: nope"),
    ("/api/http/middlewares/x%40y", "middleware not found: x@y"),
    ("/api/entrypoints/zz", "entry point not found: zz"),
    ("/api/tcp/routers/x", "router not found: x"),
    ("/api/udp/services/x", "service not found: x"),
    ("/api/certificates/abc", "certificate not found: abc"),
])
def test_unknown_name_is_traefiks_404(api: ApiService, target: str, message: str) -> None:
    answer = ask(api, target)
    assert answer.status == 404
    assert answer.body == b'{"message":"' + message.encode() + b'"}\n'
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert answer.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("target", ["/api/foo", "/api/http/routers/", "/api", "/api/", "/ping",
                                    "/api/http/routers/a/b", "/dashboard", "/dashboard/nope.js", "/x/"])
def test_unknown_path_is_go_404(api: ApiService, target: str) -> None:
    answer = ask(api, target)
    assert (answer.status, answer.body) == (404, b"404 page not found\n")


def test_dashboard_under_the_api_service(api: ApiService) -> None:
    """Traefik's ``dashboard.Append``: ``/`` is a 302 to ``/dashboard/``, the page and its assets
    under it, ``index.html`` has one URL (the directory)."""
    root = ask(api, "/")
    assert (root.status, root.headers["location"], root.body) == (302, "/dashboard/", b"")
    page = ask(api, "/dashboard/")
    assert page.status == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert b'<script type="module" src="./app.js">' in page.body
    assert "default-src 'none'" in page.headers["content-security-policy"]
    script = ask(api, "/dashboard/app.js")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert b'new URL("../api/", window.location.href)' in script.body  # the API relative to the page
    assert ask(api, "/dashboard/index.html").headers["location"] == "./"
    assert ask(api, "/dashboard/", b"POST").status == 405


def test_dashboard_revalidates_with_etag(api: ApiService) -> None:
    first = ask(api, "/dashboard/style.css")
    again = ask(api, "/dashboard/style.css", headers=[(b"if-none-match", first.headers["etag"].encode())])
    assert (again.status, again.body) == (304, b"")


def test_dashboard_off_and_under_base_path() -> None:
    off = service_for(load_static({"entryPoints": {"web": {"address": ":80"}}, "api": {"dashboard": False}}), None)
    assert ask(off, "/").status == 404 and ask(off, "/dashboard/").status == 404
    based = service_for(load_static({"entryPoints": {"web": {"address": ":80"}}, "api": {"basePath": "/tr/"}}), None)
    assert ask(based, "/tr/").headers["location"] == "/tr/dashboard/"
    assert ask(based, "/tr/dashboard/").status == 200
    assert ask(based, "/dashboard/").status == 404


def test_other_methods_get_405_without_body(api: ApiService) -> None:
    for method in (b"POST", b"HEAD", b"PUT"):
        answer = ask(api, "/api/overview", method)
        assert (answer.status, answer.body) == (405, b"")
        assert "content-type" not in answer.headers
    assert ask(api, "/api/nothing", b"POST").status == 404


def test_names_are_percent_decoded(api: ApiService) -> None:
    plain, encoded = ask(api, "/api/http/routers/app@file"), ask(api, "/api/http/routers/app%40file")
    assert plain.status == encoded.status == 200
    assert plain.body == encoded.body and plain.body.endswith(b"}\n")
    assert plain.json()["name"] == "app@file" and plain.json()["provider"] == "file"


def test_bad_escape_is_traefiks_400(api: ApiService) -> None:
    answer = ask(api, "/api/http/routers/a%zzb")
    assert answer.status == 400
    assert answer.json() == {"message": 'unable to decode routerID "a%zzb": invalid URL escape "%zz"'}


def test_list_headers_and_encoding(api: ApiService) -> None:
    answer = ask(api, "/api/http/routers")
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-next-page"] == "1"
    assert answer.body.startswith(b"[{") and answer.body.endswith(b"}]\n")
    # Go's encoder: compact, HTML characters escaped
    assert b"Host(`app.example`) \\u0026\\u0026 PathPrefix(`/v1`)" in answer.body
    assert b"&&" not in answer.body and b", " not in answer.body.split(b'"error"')[0]


def test_version_is_marshalled_without_newline(api: ApiService) -> None:
    answer = ask(api, "/api/version")
    assert answer.headers["content-type"] == "application/json; charset=UTF-8"
    assert answer.body == b'{"Version":"0.1.0","Codename":"ferryman","startDate":"2026-01-02T03:04:05.5Z"}'


# -- filters, sorting, pagination ---------------------------------------------------------------


def test_status_and_search_filters(api: ApiService) -> None:
    assert names(api, "/api/http/routers?status=disabled") == ["broken@file", "mirror@file", "missing@file"]
    assert names(api, "/api/http/routers?status=WARNING") == ["canary@file"]
    # search looks at the name and the rule, case-insensitively
    assert names(api, "/api/http/routers?search=EXAMPLE`)%20%26%26") == ["app@file", "dashboard@file"]
    assert names(api, "/api/http/routers?search=canary") == ["canary@file"]
    assert names(api, "/api/http/services?search=APP") == ["app-v2@file", "app@file"]
    assert names(api, "/api/http/services?status=disabled") == ["mirrored@file"]
    assert names(api, "/api/http/middlewares?search=SECURED") == ["secured@file"]
    assert names(api, "/api/http/routers?search=nothing-like-this") == []


def test_service_and_middleware_name_filters(api: ApiService) -> None:
    assert names(api, "/api/http/routers?serviceName=app@file") == ["app@file", "broken@file"]
    assert names(api, "/api/http/routers?serviceName=split") == ["canary@file"]
    assert names(api, "/api/http/routers?middlewareName=secured@file") == ["app@file"]


def test_sort_by(api: ApiService) -> None:
    # ties go by name, in the same direction (Traefik's sortByFunc)
    assert names(api, "/api/http/routers?sortBy=priority&direction=desc")[:3] == [
        "ping@internal", "web-to-websecure@internal", "api@internal"]
    assert names(api, "/api/http/routers?sortBy=priority")[-3:] == [
        "api@internal", "web-to-websecure@internal", "ping@internal"]
    assert names(api, "/api/http/routers?direction=desc")[0] == "web-to-websecure@internal"
    assert names(api, "/api/http/services?sortBy=type")[:3] == ["api@internal", "dashboard@internal", "noop@internal"]


def test_pagination_and_next_page(api: ApiService) -> None:
    everything = names(api, "/api/http/routers")
    assert len(everything) == 10
    first = ask(api, "/api/http/routers?per_page=4")
    assert first.headers["x-next-page"] == "2" and [r["name"] for r in first.json()] == everything[:4]
    second = ask(api, "/api/http/routers?per_page=4&page=2")
    assert second.headers["x-next-page"] == "3" and [r["name"] for r in second.json()] == everything[4:8]
    last = ask(api, "/api/http/routers?per_page=4&page=3")
    assert last.headers["x-next-page"] == "1" and [r["name"] for r in last.json()] == everything[8:]
    eps = ask(api, "/api/entrypoints?per_page=1&page=2")
    assert eps.headers["x-next-page"] == "3" and [e["name"] for e in eps.json()] == ["traefik"]
    empty = ask(api, "/api/tcp/routers")
    assert (empty.body, empty.headers["x-next-page"]) == (b"[]\n", "1")


@pytest.mark.parametrize(("query", "message"), [
    ("per_page=4&page=4", "invalid request: page: 4, per_page: 4"),
    ("per_page=0", "invalid request: per_page: 0"),
    ("per_page=-3", "invalid request: per_page: -3"),
    ("per_page=abc", "invalid request: per_page: 0"),
    ("page=0", "invalid request: page: 0"),
])
def test_bad_pages_are_traefiks_400(api: ApiService, query: str, message: str) -> None:
    answer = ask(api, f"/api/http/routers?{query}")
    assert answer.status == 400
    assert answer.json() == {"message": message}
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"


# -- shapes not in the golden configuration -----------------------------------------------------


def test_tls_router_shows_default_options() -> None:
    static = load_static({"entryPoints": {"websecure": {"address": ":443"}}, "api": {}})
    _app, snapshot = build_snapshot(static, """
http:
  routers:
    secure: {rule: "Host(`t.example`)", service: s, tls: {}}
    custom: {rule: "Host(`u.example`)", service: s, tls: {certResolver: le, domains: [{main: u.example}]}}
  services:
    s: {loadBalancer: {servers: [{url: "http://127.0.0.1:1"}]}}
""")
    api = service_for(static, snapshot)
    assert ask(api, "/api/http/routers/secure@file").json()["tls"] == {"options": "default"}
    assert ask(api, "/api/http/routers/custom@file").json()["tls"] == {
        "options": "default", "certResolver": "le", "domains": [{"main": "u.example"}]}
    # api without insecure: no internal router, the service exists for user routers
    assert [r["name"] for r in ask(api, "/api/http/routers").json()] == ["custom@file", "secure@file"]
    assert "api@internal" in [s["name"] for s in ask(api, "/api/http/services").json()]


def test_base_path_prefixes_every_route() -> None:
    static = load_static({"entryPoints": {"web": {"address": ":80"}}, "api": {"basePath": "/traefik/"}})
    api = service_for(static, None)
    assert ask(api, "/traefik/api/overview").status == 200
    assert ask(api, "/api/overview").status == 404
    # before the first configuration: empty lists, not errors
    assert ask(api, "/traefik/api/http/routers").body == b"[]\n"
    assert ask(api, "/traefik/api/rawdata").body == b"{}\n"


def test_views_are_built_once_per_snapshot() -> None:
    static, dynamic = golden_inputs()
    app, _first = build_snapshot(static, dynamic)
    api = ApiService(static, lambda: app.snapshot)
    assert api._views is None  # lazily, on the first request
    ask(api, "/api/http/routers")
    views = api._views
    assert views is not None
    for target in ("/api/http/routers?page=1", "/api/overview", "/api/http/services/app@file"):
        ask(api, target)
        assert api._views is views
    _app2, second = build_snapshot(static, dynamic.replace("weight: 9", "weight: 8"))
    app.snapshot = second
    assert ask(api, "/api/http/services/split@file").json()["weighted"]["services"][0]["weight"] == 8
    assert api._views is not views


def test_views_do_not_keep_an_old_snapshot_alive() -> None:
    static, dynamic = golden_inputs()
    app, first = build_snapshot(static, dynamic)
    api = ApiService(static, lambda: app.snapshot)
    ask(api, "/api/overview")
    gone = weakref.ref(first)
    _app2, app.snapshot = build_snapshot(static, dynamic)
    del first, _app2
    gc.collect()
    assert gone() is None
    assert ask(api, "/api/overview").status == 200


# -- Go formatting helpers ----------------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (10, "10s"), (60, "1m0s"), (90.5, "1m30.5s"), (180, "3m0s"), (3600, "1h0m0s"),
    (3725, "1h2m5s"), (0.1, "100ms"), (0.0015, "1.5ms"), (2e-9, "2ns"), (5e-6, "5µs"), (-2, "-2s"),
])
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def test_go_encoding_and_time() -> None:
    assert encode({"a": "<b> & \u2028é"}) == '{"a":"\\u003cb\\u003e \\u0026 \\u2028é"}\n'.encode()
    assert encode([1, True, None], newline=False) == b"[1,true,null]"
    assert go_time(0) == "1970-01-01T00:00:00Z"
    assert go_time(1.25) == "1970-01-01T00:00:01.25Z"


def test_rejected_elements_and_every_kind_of_section_encode() -> None:
    static = load_static({"entryPoints": {"web": {"address": ":80"}}, "api": {}})
    _app, snapshot = build_snapshot(static, """
http:
  routers:
    r1: {rule: "Host(`a`)", service: s1, middlewares: [m1, m2, m3, m4, m5]}
    bad: {rule: "Host(`b`)", service: s1, colour: red}
  services:
    s1: {loadBalancer: {servers: [{url: "http://127.0.0.1:1"}], healthCheck: {path: /h, interval: 10s},
                        sticky: {cookie: {}}}}
    s2: {loadBalancer: {servers: [{url: "http://127.0.0.1:1"}], nope: 1}}
    s3: {failover: {service: s1, fallback: s1}}
    s4: {highestRandomWeight: {services: [{name: s1}]}}
  middlewares:
    m1: {addPrefix: {prefix: /x}}
    m2: {ipAllowList: {sourceRange: [10.0.0.0/8], ipStrategy: {depth: 1}}}
    m3: {rateLimit: {average: 10, period: 1s}}
    m4: {circuitBreaker: {expression: "NetworkErrorRatio() > 0.5"}}
    m5: {compress: {}}
""")
    api = service_for(static, snapshot)
    bad = ask(api, "/api/http/routers/bad@file").json()
    assert list(bad) == ["error", "status", "name", "provider", "priorityStr"]
    assert bad["status"] == "disabled" and "colour: unknown key" in bad["error"][0]
    assert ask(api, "/api/http/services/s2@file").json()["status"] == "disabled"
    s1 = ask(api, "/api/http/services/s1@file").json()["loadBalancer"]
    assert s1["healthCheck"]["interval"] == "10s" and s1["sticky"] == {"cookie": {"path": "/"}}
    assert ask(api, "/api/http/services/s4@file").json()["type"] == "highestrandomweight"
    assert ask(api, "/api/http/middlewares/m4@file").json()["circuitBreaker"] == {  # with Traefik's SetDefaults
        "expression": "NetworkErrorRatio() > 0.5", "checkPeriod": "100ms", "fallbackDuration": "10s",
        "recoveryDuration": "10s", "responseCode": 503}
    assert ask(api, "/api/http/middlewares/m5@file").json()["compress"] == {}
    assert ask(api, "/api/rawdata").status == 200
    overview = ask(api, "/api/overview").json()
    assert "providers" not in overview  # none configured (omitempty)
    listed = ask(api, "/api/http/middlewares").json()
    assert overview["http"]["middlewares"] == {
        "total": 5, "warnings": sum(m["status"] == "warning" for m in listed),
        "errors": sum(m["status"] == "disabled" for m in listed)}
