"""``ipAllowList`` / ``ipWhiteList``: Traefik's vectors (shared conformance data) and strategy details."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ferryman.errors import ConfigError
from ferryman.http.exchange import Handler
from ferryman.middlewares import build_middleware
from tests.unit.middlewares.conformance_support import (
    Upstream,
    case_exchange,
    case_id,
    conformance_cases,
    final_head,
    mw,
)

CASES = conformance_cases("ipAllowList")


def _build(config: dict[str, Any], nxt: Handler, kind: str = "ipAllowList") -> Handler:
    return build_middleware("allow", mw(kind, config), nxt)


def _request(remote: str, xff: list[str] | None = None) -> dict[str, Any]:
    headers = {"X-Forwarded-For": xff} if xff is not None else {}
    return {"method": "GET", "url": "/", "host": "h", "tls": False, "headers": headers, "remote_addr": remote}


def _status(config: dict[str, Any], remote: str, xff: list[str] | None = None,
            kind: str = "ipAllowList") -> tuple[int, bytes]:
    upstream = Upstream()
    ex, down = case_exchange(_request(remote, xff))
    _build(config, upstream, kind).handle(ex)
    status, headers, _ = final_head(down)
    body = b"".join(v for k, v in down.calls if k == "data")
    if status != 200:
        assert upstream.seen == []
        assert "Content-Type" not in headers  # Go's content sniffing is off in Traefik
    return status, body


@pytest.mark.skipif(not CASES, reason="shared conformance data not found")
@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_ip_allow_list_conformance(case: dict[str, Any]) -> None:
    if "config_error" in case:
        if case["config_error"]:
            with pytest.raises(ConfigError):
                _build(case["config"], Upstream())
        else:
            _build(case["config"], Upstream())
        return
    upstream = Upstream()
    ex, down = case_exchange(case["request"])
    _build(case["config"], upstream).handle(ex)
    status, _, _ = final_head(down)
    assert status == case["expected"]["status"]
    assert len(upstream.seen) == (1 if status == 200 else 0)


def test_rejection_body_is_the_status_text() -> None:
    assert _status({"sourceRange": ["10.0.0.0/8"]}, "192.0.2.1:1") == (403, b"Forbidden")
    assert _status({"sourceRange": ["10.0.0.0/8"], "rejectStatusCode": 404}, "192.0.2.1:1") == (404, b"Not Found")
    assert _status({"sourceRange": ["10.0.0.0/8", "2001:db8::/32"]}, "[2001:db8::5]:1")[0] == 200


def test_depth_counts_from_the_right_of_x_forwarded_for() -> None:
    config = {"sourceRange": ["10.0.0.1"], "ipStrategy": {"depth": 2}}
    assert _status(config, "192.0.2.1:1", ["1.1.1.1, 10.0.0.1, 2.2.2.2"])[0] == 200
    assert _status(config, "192.0.2.1:1", ["10.0.0.1", "2.2.2.2"])[0] == 200  # field lines joined
    assert _status(config, "192.0.2.1:1", ["10.0.0.1, 2.2.2.2, 3.3.3.3"])[0] == 403
    assert _status(config, "10.0.0.1:1", ["2.2.2.2"])[0] == 403  # too few entries: no IP, the peer is not used
    assert _status(config, "10.0.0.1:1")[0] == 403


def test_excluded_ips_take_the_first_not_excluded_from_the_right() -> None:
    config = {"sourceRange": ["10.0.0.1"], "ipStrategy": {"excludedIPs": ["172.16.0.0/12", "2.2.2.2"]}}
    assert _status(config, "192.0.2.1:1", ["9.9.9.9, 10.0.0.1, 172.16.1.1, 2.2.2.2"])[0] == 200
    assert _status(config, "192.0.2.1:1", ["10.0.0.1, 9.9.9.9, 2.2.2.2"])[0] == 403


def test_ipv6_subnet_masks_the_peer() -> None:
    config = {"sourceRange": ["2001:db8:1::"], "ipStrategy": {"ipv6Subnet": 48}}
    assert _status(config, "[2001:db8:1:2::99]:1")[0] == 200
    assert _status({"sourceRange": ["2001:db8:1::"]}, "[2001:db8:1:2::99]:1")[0] == 403


def test_empty_ip_strategy_section_is_the_peer() -> None:
    assert _status({"sourceRange": ["192.0.2.1"], "ipStrategy": {}}, "192.0.2.1:1", ["9.9.9.9"])[0] == 200


def test_middleware_edits_to_x_forwarded_for_are_seen() -> None:
    config = {"sourceRange": ["10.0.0.1"], "ipStrategy": {"depth": 1}}
    upstream = Upstream()
    ex, down = case_exchange(_request("192.0.2.1:1", ["9.9.9.9"]))
    ex.set_header(b"x-forwarded-for", b"10.0.0.1")
    _build(config, upstream).handle(ex)
    assert final_head(down)[0] == 200


@pytest.mark.parametrize(("config", "message"), [
    ({"sourceRange": []}, "sourceRange is empty"),
    ({"sourceRange": ["10.0.0.0/33"]}, "not an IP address or CIDR"),
    ({"sourceRange": ["10.0.0.1"], "rejectStatusCode": 600}, "invalid HTTP status code 600"),
    ({"sourceRange": ["10.0.0.1"], "ipStrategy": {"ipv6Subnet": 0}}, "invalid IPv6 subnet"),
    ({"sourceRange": ["10.0.0.1"], "ipStrategy": {"excludedIPs": ["nope"]}}, "not an IP address"),
])
def test_config_errors_name_the_key(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        _build(config, Upstream())
    assert "http.middlewares.allow.ipAllowList" in str(info.value)


def test_deprecated_ip_white_list_behaves_the_same_without_reject_status() -> None:
    assert _status({"sourceRange": ["192.0.2.0/24"]}, "192.0.2.1:1", kind="ipWhiteList")[0] == 200
    assert _status({"sourceRange": ["10.0.0.0/8"]}, "192.0.2.1:1", kind="ipWhiteList") == (403, b"Forbidden")
    with pytest.raises(ValueError, match="rejectStatusCode"):
        mw("ipWhiteList", {"sourceRange": ["10.0.0.0/8"], "rejectStatusCode": 404})
    with pytest.raises(ConfigError, match=re.escape("http.middlewares.allow.ipWhiteList.sourceRange")):
        _build({"sourceRange": ["x"]}, Upstream(), kind="ipWhiteList")


def test_verdicts_are_remembered_per_ip_and_bounded() -> None:
    from ferryman.middlewares.ip_allow_list import KNOWN_IPS, IPAllowListHandler

    upstream = Upstream()
    handler = build_middleware("allow", mw("ipAllowList", {"sourceRange": ["10.0.0.0/8"]}), upstream)
    assert isinstance(handler, IPAllowListHandler)
    for i in range(KNOWN_IPS + 5):
        ex, down = case_exchange({"method": "GET", "url": "/", "host": "h", "headers": {},
                                  "remote_addr": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}:1"})
        handler.handle(ex)
    assert len(upstream.seen) == KNOWN_IPS + 5 and len(handler._known) <= KNOWN_IPS
    for remote, allowed in (("192.0.2.1:1", False), ("192.0.2.1:2", False), ("10.9.9.9:1", True)):
        ex, down = case_exchange({"method": "GET", "url": "/", "host": "h", "headers": {}, "remote_addr": remote})
        handler.handle(ex)
        assert (final_head(down)[0] == 200) is allowed
