"""``headers``: every Traefik vector of the shared conformance data, then details the vectors miss.

Replay notes (handler level, as the Go tests):

* cases whose configuration defines nothing (``{}``, ``customRequestHeaders: {}``) come from
  Go tests that build the inner ``NewHeader`` directly; the full middleware rejects such a
  configuration (``TestNew_withoutOptions``), so they are built with ``allow_empty``;
* ``response_headers_exact`` compares the whole header map of a Go recorder: ``Date`` (added by a
  real server) is left out, ``Content-Length`` is the length the sink frames the body with;
* ``forwarded_headers_exact`` leaves out the X-Forwarded-* an entry point adds before routing;
  ``X-Forwarded-For: null`` means "present with no value": the proxy must not add the client.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from ferryman.dynamic.models import Headers as HeadersConfig
from ferryman.errors import ConfigError
from ferryman.http.exchange import Handler
from ferryman.middlewares import build_middleware
from ferryman.middlewares.headers import build_headers, has_any
from tests.unit.middlewares.conformance_support import (
    Upstream,
    case_exchange,
    case_id,
    conformance_cases,
    final_head,
    mw,
)

CASES = conformance_cases("headers")


def _build(config: dict[str, Any], nxt: Handler) -> Handler:
    model = HeadersConfig.model_validate(config)
    if not has_any(model):
        return build_headers("hdr", model, nxt, allow_empty=True)
    return build_middleware("hdr", mw("headers", config), nxt)


def _request(method: str = "GET", headers: dict[str, list[str]] | None = None, host: str = "example.com",
             tls: bool = False) -> dict[str, Any]:
    return {"method": method, "url": "/foo", "host": host, "tls": tls, "headers": headers or {},
            "remote_addr": "192.0.2.1:1234"}


def _run(config: dict[str, Any], req: dict[str, Any] | None = None,
         upstream: Upstream | None = None) -> tuple[int, dict[str, list[str]], int, Upstream]:
    upstream = upstream or Upstream()
    ex, down = case_exchange(req or _request())
    _build(config, upstream).handle(ex)
    status, headers, length = final_head(down)
    return status, headers, length, upstream


@pytest.mark.skipif(not CASES, reason="shared conformance data not found")
@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_headers_conformance(case: dict[str, Any]) -> None:
    if "config_error" in case:
        if case["config_error"]:
            with pytest.raises((ConfigError, ValueError)):
                build_middleware("hdr", mw("headers", case["config"]), Upstream())
        else:
            build_middleware("hdr", mw("headers", case["config"]), Upstream())
        return
    up = case["upstream"]
    upstream = Upstream(up["status"], up["header_ops"])
    status, headers, length, _ = _run(case["config"], case["request"], upstream)
    expected = case["expected"]
    assert status == expected["status"]
    if "response_headers" in expected:
        want = dict(expected["response_headers"])
        if "Content-Length" in want:
            assert [str(length)] == want.pop("Content-Length")
        if expected.get("response_headers_exact"):
            assert headers == want
        else:
            for name, values in want.items():
                assert headers.get(name) == values
    for name, values in expected.get("response_headers_include", {}).items():
        assert headers.get(name) == values
    if "note" in up and "not called" in up["note"]:
        assert upstream.seen == []
    forwarded = upstream.forwarded()
    for name, values in expected.get("forwarded_headers_include", {}).items():
        assert forwarded.get(name) == values
    if "forwarded_headers" in expected:
        want_fwd = dict(expected["forwarded_headers"])
        if "X-Forwarded-For" in want_fwd and want_fwd["X-Forwarded-For"] is None:
            del want_fwd["X-Forwarded-For"]
            assert upstream.omit_xff
        if expected.get("forwarded_headers_exact"):
            assert forwarded == want_fwd
        else:
            for name, values in want_fwd.items():
                assert forwarded.get(name) == values
    if "forwarded_host" in expected:
        assert upstream.authority == expected["forwarded_host"].encode()
        assert upstream.seen[0].target == b"/foo"  # the URL is not rewritten


# ------------------------------------------------------------------------------------ details


def test_security_headers_all_at_once_over_tls() -> None:
    config = {"stsSeconds": 31536000, "stsIncludeSubdomains": True, "stsPreload": True, "frameDeny": True,
              "contentTypeNosniff": True, "browserXssFilter": True, "contentSecurityPolicy": "default-src 'self'",
              "contentSecurityPolicyReportOnly": "script-src 'none'", "referrerPolicy": "no-referrer",
              "permissionsPolicy": "camera=()", "publicKey": "pin-sha256=\"x\""}
    status, headers, _, _ = _run(config, _request(tls=True))
    assert status == 200
    assert headers == {
        "Strict-Transport-Security": ["max-age=31536000; includeSubDomains; preload"],
        "X-Frame-Options": ["DENY"], "X-Content-Type-Options": ["nosniff"], "X-Xss-Protection": ["1; mode=block"],
        "Content-Security-Policy": ["default-src 'self'"],
        "Content-Security-Policy-Report-Only": ["script-src 'none'"], "Referrer-Policy": ["no-referrer"],
        "Permissions-Policy": ["camera=()"], "Public-Key-Pins": ["pin-sha256=\"x\""],
    }


def test_sts_only_over_https_unless_forced_and_never_in_development() -> None:
    assert _run({"stsSeconds": 60}, _request())[1] == {}
    assert _run({"stsSeconds": 60}, _request(tls=True))[1] == {"Strict-Transport-Security": ["max-age=60"]}
    assert _run({"stsSeconds": 60, "isDevelopment": True, "forceSTSHeader": True}, _request(tls=True))[1] == {}
    assert _run({"stsSeconds": 0, "forceSTSHeader": True}, _request(tls=True))[1] == {}


def test_ssl_proxy_headers_mark_the_request_as_https() -> None:
    config = {"stsSeconds": 60, "sslProxyHeaders": {"X-Forwarded-Proto": "https"}}
    req = _request(headers={"X-Forwarded-Proto": ["https"]})
    assert _run(config, req)[1] == {"Strict-Transport-Security": ["max-age=60"]}
    assert _run(config, _request())[1] == {}  # the entry point's X-Forwarded-Proto is http


def test_custom_values_win_over_the_switches_and_override_the_backend() -> None:
    config = {"frameDeny": True, "customFrameOptionsValue": "SAMEORIGIN", "browserXssFilter": True,
              "customBrowserXSSValue": "0"}
    upstream = Upstream(200, [{"op": "add", "name": "x-frame-options", "value": "ALLOW"}])
    assert _run(config, upstream=upstream)[1] == {"X-Frame-Options": ["SAMEORIGIN"], "X-Xss-Protection": ["0"]}


def test_allowed_hosts_bad_host_is_go_http_error_and_keeps_custom_response_headers() -> None:
    config = {"allowedHosts": ["foo.com"], "customResponseHeaders": {"X-Served-By": "edge"},
              "frameDeny": True}
    upstream = Upstream()
    ex, down = case_exchange(_request(host="FOO.com"))
    _build(config, upstream).handle(ex)
    assert final_head(down)[0] == 200
    ex, down = case_exchange(_request(host="foo.com:8080"))  # Traefik compares req.Host, port included
    _build(config, upstream).handle(ex)
    status, headers, _ = final_head(down)
    assert status == 500
    assert headers == {"Content-Type": ["text/plain; charset=utf-8"], "X-Content-Type-Options": ["nosniff"],
                       "X-Served-By": ["edge"]}
    assert ("data", b"Bad Host\n") in down.calls
    assert len(upstream.seen) == 1


def test_allowed_hosts_use_hosts_proxy_headers_and_the_rewritten_host() -> None:
    config = {"allowedHosts": ["public.example"], "hostsProxyHeaders": ["X-Forwarded-Host"]}
    assert _run(config, _request(host="public.example"))[0] == 200  # entry point's X-Forwarded-Host = Host
    req = _request(host="internal", headers={"X-Forwarded-Host": ["public.example"]})
    assert _run(config, req)[0] == 200  # trusted peer's X-Forwarded-Host wins
    rewritten = {"allowedHosts": ["public.example"], "customRequestHeaders": {"Host": "public.example"}}
    status, _, _, upstream = _run(rewritten, _request(host="internal"))
    assert status == 200 and upstream.authority == b"public.example"
    assert [v.decode() for n, v in upstream.headers if n == b"x-forwarded-host"] == ["internal"]
    assert _run({"allowedHosts": ["x"], "isDevelopment": True}, _request(host="y"))[0] == 200


def test_preflight_skips_the_security_part() -> None:
    config = {"allowedHosts": ["nowhere"], "accessControlAllowOriginList": ["*"], "frameDeny": True}
    req = _request("OPTIONS", {"Origin": ["https://a"], "Access-Control-Request-Method": ["PUT"]})
    status, headers, length, upstream = _run(config, req)
    assert (status, headers, length) == (200, {"Access-Control-Allow-Origin": ["*"]}, 0)
    assert upstream.seen == []


def test_preflight_wildcards_with_credentials_echo_the_request() -> None:
    config = {"accessControlAllowOriginList": ["*"], "accessControlAllowCredentials": True,
              "accessControlAllowHeaders": ["*"], "accessControlAllowMethods": ["*"],
              "accessControlExposeHeaders": ["*"], "accessControlMaxAge": 0}
    req = _request("OPTIONS", {"Origin": ["https://a"], "Access-Control-Request-Method": ["PATCH"],
                               "Access-Control-Request-Headers": ["x-a,x-b"]})
    headers = _run(config, req)[1]
    assert headers == {"Access-Control-Allow-Credentials": ["true"], "Access-Control-Allow-Headers": ["x-a,x-b"],
                       "Access-Control-Allow-Methods": ["PATCH"], "Access-Control-Allow-Origin": ["https://a"],
                       "Access-Control-Max-Age": ["0"]}


def test_options_without_preflight_headers_goes_to_the_backend() -> None:
    config = {"accessControlAllowOriginList": ["https://a"]}
    status, headers, _, upstream = _run(config, _request("OPTIONS", {"Origin": ["https://a"]}))
    assert status == 200 and len(upstream.seen) == 1
    assert headers == {"Access-Control-Allow-Origin": ["https://a"]}


def test_vary_uses_the_first_value_and_collapses() -> None:
    config = {"accessControlAllowOriginList": ["https://a"], "addVaryHeader": True}
    upstream = Upstream(200, [{"op": "add", "name": "vary", "value": "Accept"},
                              {"op": "add", "name": "Vary", "value": "Cookie"}])
    headers = _run(config, _request(headers={"Origin": ["https://a"]}), upstream)[1]
    assert headers["Vary"] == ["Accept,Origin"]


def test_request_header_edits_in_order_with_canonical_response_names() -> None:
    config = {"customRequestHeaders": {"x-a": "1", "X-B": "", "x-forwarded-for": ""},
              "customResponseHeaders": {"x-served-by": "edge", "server": ""}}
    upstream = Upstream(200, [{"op": "set", "name": "Server", "value": "backend"}])
    req = _request(headers={"X-B": ["drop"], "X-Forwarded-For": ["198.51.100.7"]})
    _, headers, _, up = _run(config, req, upstream)
    assert headers == {"X-Served-By": ["edge"]}
    fwd = up.forwarded()
    assert fwd["X-A"] == ["1"] and "X-B" not in fwd
    # Only the exact key X-Forwarded-For means "do not add"; another spelling just deletes.
    assert "X-Forwarded-For" not in fwd and not up.omit_xff


def test_response_hook_applies_to_local_answers_after_the_middleware() -> None:
    class Fail:
        def handle(self, ex: Any) -> None:
            ex.respond(502, (), b"Bad Gateway", content_type=None)

    ex, down = case_exchange(_request())
    build_middleware("hdr", mw("headers", {"customResponseHeaders": {"X-A": "1"}, "frameDeny": True}),
                     Fail()).handle(ex)
    status, headers, _ = final_head(down)
    assert status == 502 and headers == {"X-Frame-Options": ["DENY"], "X-A": ["1"]}


@pytest.mark.parametrize(("config", "message"), [
    ({}, "headers configuration not valid"),
    ({"customRequestHeaders": {}}, "headers configuration not valid"),
    ({"accessControlAllowOriginListRegex": ["ok", "a(b"]}, re.escape("accessControlAllowOriginListRegex[1]")),
])
def test_config_errors(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        build_middleware("hdr", mw("headers", config), Upstream())
    assert "http.middlewares.hdr.headers" in str(info.value)


def test_deprecated_options_count_as_configuration_without_effect() -> None:
    status, headers, _, _ = _run({"sslRedirect": True, "featurePolicy": "vibrate 'none'"})
    assert (status, headers) == (200, {})
