"""IPMatcher (sourceRange / trustedIPs / excludedIPs) and Traefik's ipStrategy."""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ferryman.errors import ConfigError
from ferryman.ipnet import (
    IPMatcher,
    IPStrategy,
    client_ip_from_xff,
    mask_ipv6,
    parse_ip,
    remote_addr_host,
    split_host_port,
)


def _shared_dir() -> Path:
    env = os.environ.get("FERRYMAN_SHARED_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared"


def _ip_matching() -> dict[str, Any] | None:
    path = _shared_dir() / "conformance" / "middlewares.json"
    if not path.is_file():
        return None
    section: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))["ipAllowList_ip_matching"]
    return section


IP_MATCHING = _ip_matching()


def cases(table: str) -> list[Any]:
    if IP_MATCHING is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason="shared conformance data absent"))]
    return [pytest.param(case, id=case["source"].split(":", 1)[1]) for case in IP_MATCHING[table]]


# ------------------------------------------------------------------- Traefik conformance replay


@pytest.mark.parametrize("case", cases("checker_contains"))
def test_conformance_checker_contains(case: dict[str, Any]) -> None:
    matcher = IPMatcher.from_strings(case["source_range"])
    for ip in case["allowed"]:
        assert matcher.contains(ip), ip
    for ip in case["rejected"]:
        assert not matcher.contains(ip), ip


@pytest.mark.parametrize("case", cases("checker_new"))
def test_conformance_checker_new(case: dict[str, Any]) -> None:
    if not case["error"]:
        assert IPMatcher.from_strings(case["source_range"], path="sourceRange")
        return
    with pytest.raises(ConfigError) as info:
        IPMatcher.from_strings(case["source_range"], path="sourceRange")
    bad = [item for item in case["source_range"] or [] if parse_ip(item.partition("/")[0]) is None]
    if bad:  # the message names the first bad entry and its index
        assert repr(bad[0]) in str(info.value)
        assert info.value.path == f"sourceRange[{case['source_range'].index(bad[0])}]"


@pytest.mark.parametrize("case", cases("checker_is_authorized"))
def test_conformance_checker_is_authorized(case: dict[str, Any]) -> None:
    matcher = IPMatcher.from_strings(case["source_range"])
    assert matcher.contains(remote_addr_host(case["remote_addr"])) is case["authorized"]


@pytest.mark.parametrize("case", cases("checker_broken_ips"))
def test_conformance_checker_broken_ips(case: dict[str, Any]) -> None:
    matcher = IPMatcher.from_strings(case["source_range"])
    for ip in case["ips_that_error"]:
        assert not matcher.contains(ip), ip
        assert parse_ip(ip) is None, ip


@pytest.mark.parametrize("case", cases("strategy_remote_addr"))
def test_conformance_strategy_remote_addr(case: dict[str, Any]) -> None:
    # Go's test builds RemoteAddrStrategy directly, so an out-of-range ipv6Subnet reaches it unvalidated.
    strategy = IPStrategy.remote_addr(case["ipv6Subnet"])
    assert strategy.get_ip(case["remote_addr"], "10.9.9.9") == case["expected_ip"]


@pytest.mark.parametrize("case", cases("strategy_depth"))
def test_conformance_strategy_depth(case: dict[str, Any]) -> None:
    xff, depth, subnet = case["x_forwarded_for"], case["depth"], case["ipv6Subnet"]
    assert client_ip_from_xff(xff, depth, ipv6_subnet=subnet) == case["expected_ip"]
    strategy = IPStrategy.from_config(depth=depth, ipv6_subnet=subnet)
    assert strategy.get_ip("192.0.2.1:1234", xff) == case["expected_ip"]
    assert strategy.get_ip("192.0.2.1:1234", [xff]) == case["expected_ip"]


@pytest.mark.parametrize("case", cases("strategy_excluded_ips"))
def test_conformance_strategy_excluded_ips(case: dict[str, Any]) -> None:
    xff, excluded = case["x_forwarded_for"], case["excluded_ips"]
    assert client_ip_from_xff(xff, excluded=IPMatcher.from_strings(excluded)) == case["expected_ip"]
    assert client_ip_from_xff(xff, excluded=excluded) == case["expected_ip"]
    strategy = IPStrategy.from_config(excluded_ips=excluded)
    assert strategy.get_ip("192.0.2.1:1234", xff.encode()) == case["expected_ip"]


# ------------------------------------------------------------------------------------ IPMatcher


def test_single_ips_and_cidrs_with_host_bits() -> None:
    m = IPMatcher.from_strings(["10.1.2.3/8", "192.0.2.7", "2001:db8::5/32", "fe80::1"])
    assert [str(n) for n in m.networks] == ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32", "fe80::1/128"]
    assert m.entries == ("10.1.2.3/8", "192.0.2.7", "2001:db8::5/32", "fe80::1")
    assert len(m) == 4
    assert m.contains("10.255.0.1") and m.contains("192.0.2.7") and m.contains("2001:db8:ffff::1")
    assert not m.contains("11.0.0.1") and not m.contains("192.0.2.8") and not m.contains("fe80::2")
    assert "10.0.0.1" in m


def test_ipv4_mapped_ipv6_queries_are_ipv4() -> None:
    m = IPMatcher.from_strings(["1.2.3.0/24"])
    assert m.contains("::ffff:1.2.3.4")
    assert m.contains("::FFFF:102:304")
    assert not m.contains("::ffff:1.2.4.4")
    assert not m.contains("::1.2.3.4")  # IPv4-compatible is not IPv4-mapped


def test_ipv4_mapped_entries_are_ipv4() -> None:
    m = IPMatcher.from_strings(["::ffff:10.0.0.0/104", "::ffff:192.0.2.1"])
    assert [str(n) for n in m.networks] == ["10.0.0.0/8", "192.0.2.1/32"]
    assert m.contains("10.9.8.7") and m.contains("::ffff:10.9.8.7") and m.contains("192.0.2.1")
    everything_v4 = IPMatcher.from_strings(["::ffff:0:0/96"])
    assert everything_v4.contains("8.8.8.8") and not everything_v4.contains("2001:db8::1")


def test_zone_ids_are_ignored_in_queries() -> None:
    m = IPMatcher.from_strings(["fe80::/10"])
    assert m.contains("fe80::1%eth0")
    assert m.contains("fe80::1%25")
    assert not m.contains("fe80::1%")  # an empty zone is not an address
    assert not IPMatcher.from_strings(["1.2.3.4"]).contains("1.2.3.4%eth0")  # zones are IPv6-only


@pytest.mark.parametrize(
    "ip",
    ["", "foo", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.04", "256.0.0.1", "[::1]", "::1]", "1.2.3.4:80",
     "1.2.3.4/32", " 1.2.3.4", "1.2.3.4\x00", "fe:::80", "\\&$§&/(", "\uff11.\uff12.\uff13.\uff14", "0x1.2.3.4"],
)
def test_unparsable_queries_are_not_contained(ip: str) -> None:
    everything = IPMatcher.from_strings(["0.0.0.0/0", "::/0"])
    assert not everything.contains(ip)
    assert parse_ip(ip) is None


def test_parse_ip() -> None:
    assert parse_ip("::ffff:1.2.3.4") == ipaddress.IPv4Address("1.2.3.4")
    assert parse_ip("fe80::1%eth0") == ipaddress.IPv6Address("fe80::1")
    assert parse_ip("2001:DB8::1") == ipaddress.IPv6Address("2001:db8::1")


def test_contains_address_agrees_with_contains() -> None:
    m = IPMatcher.from_strings(["10.0.0.0/8", "2001:db8::/32"])
    assert m.contains_address(ipaddress.IPv4Address("10.1.1.1"))
    assert m.contains_address(ipaddress.IPv6Address("::ffff:10.1.1.1"))
    assert m.contains_address(ipaddress.IPv6Address("2001:db8::9"))
    assert not m.contains_address(ipaddress.IPv6Address("2001:db9::9"))


@pytest.mark.parametrize(
    ("items", "index"),
    [
        (["10.0.0.0/8", "foo"], 1),
        (["1.2.3.4/33"], 0),
        (["::1/129"], 0),
        (["1.2.3.4/-1"], 0),
        (["1.2.3.4/+8"], 0),
        (["1.2.3.4/255.255.255.0"], 0),  # netmask notation: Go's ParseCIDR rejects it
        (["1.2.3.4/"], 0),
        (["/8"], 0),
        (["fe80::1%eth0"], 0),
        (["fe80::/10%eth0"], 0),
        (["[::1]"], 0),
        (["0127.0.0.1"], 0),
        (["10.0.0.1", ""], 1),
    ],
)
def test_bad_entries_raise_config_error_naming_them(items: list[str], index: int) -> None:
    with pytest.raises(ConfigError) as info:
        IPMatcher.from_strings(items, source="dynamic.yml", path="http.middlewares.allow.ipAllowList.sourceRange")
    err = info.value
    assert repr(items[index]) in err.message
    assert err.path == f"http.middlewares.allow.ipAllowList.sourceRange[{index}]"
    assert err.source == "dynamic.yml"
    assert err.fix


def test_empty_list() -> None:
    with pytest.raises(ConfigError, match="empty"):
        IPMatcher.from_strings([])
    with pytest.raises(ConfigError):
        IPMatcher.from_strings(None)
    empty = IPMatcher.from_strings([], allow_empty=True)
    assert not empty and not empty.contains("1.2.3.4")


def test_whitespace_around_entries_is_tolerated() -> None:
    assert IPMatcher.from_strings([" 10.0.0.0/8 "]).contains("10.0.0.1")


def test_equality_is_by_networks() -> None:
    assert IPMatcher.from_strings(["10.1.0.0/8"]) == IPMatcher.from_strings(["10.0.0.0/8"])
    assert hash(IPMatcher.from_strings(["10.1.0.0/8"])) == hash(IPMatcher.from_strings(["10.0.0.0/8"]))
    assert IPMatcher.from_strings(["10.0.0.0/8"]) != IPMatcher.from_strings(["10.0.0.0/9"])


v4_nets = st.builds(lambda a, p: ipaddress.IPv4Network((int(a), p), strict=False), st.ip_addresses(v=4), st.integers(0, 32))


def _not_mapped(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not (isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None)


v6_nets = st.builds(
    lambda a, p: ipaddress.IPv6Network((int(a), p), strict=False),
    st.ip_addresses(v=6).filter(_not_mapped),
    st.integers(0, 128),
)


@given(st.lists(st.one_of(v4_nets, v6_nets), min_size=1, max_size=8), st.lists(st.ip_addresses(), max_size=8), st.data())
def test_contains_agrees_with_ipaddress(nets: list[Any], probes: list[Any], data: st.DataObject) -> None:
    matcher = IPMatcher.from_strings([str(n) for n in nets])
    # Probe addresses inside the networks too, not only random ones.
    for net in nets:
        probes.append(net.network_address + data.draw(st.integers(0, net.num_addresses - 1)))
    for addr in probes:
        unmapped = addr.ipv4_mapped if addr.version == 6 and addr.ipv4_mapped is not None else addr
        expected = any(n.version == unmapped.version and unmapped in n for n in nets)
        assert matcher.contains(str(addr)) is expected, (nets, addr)
        assert matcher.contains_address(addr) is expected


# ----------------------------------------------------------------------------------- strategies


@pytest.mark.parametrize(
    ("hostport", "expected"),
    [
        ("1.2.3.4:80", ("1.2.3.4", "80")),
        ("[::1]:80", ("::1", "80")),
        ("[fe80::1%eth0]:443", ("fe80::1%eth0", "443")),
        ("example.com:8080", ("example.com", "8080")),
        ("1.2.3.4:", ("1.2.3.4", "")),
        (":80", ("", "80")),
        ("1.2.3.4", None),  # missing port
        ("::1", None),  # too many colons
        ("[::1]", None),
        ("[::1]x:80", None),
        ("[::1:80", None),
        ("a]:80", None),
        ("[a[b]:80", None),
        ("", None),
    ],
)
def test_split_host_port_follows_go(hostport: str, expected: tuple[str, str] | None) -> None:
    assert split_host_port(hostport) == expected


def test_remote_addr_host() -> None:
    assert remote_addr_host("10.0.0.1:5555") == "10.0.0.1"
    assert remote_addr_host("[2001:db8::1]:443") == "2001:db8::1"
    assert remote_addr_host("2001:db8::1") == "2001:db8::1"
    assert remote_addr_host("10.0.0.1") == "10.0.0.1"


@pytest.mark.parametrize(
    ("ip", "bits", "expected"),
    [
        ("2001:db8:aaaa:bbbb::1", 64, "2001:db8:aaaa:bbbb::"),
        ("2001:db8:aaaa:bbbb::1", 48, "2001:db8:aaaa::"),
        ("2001:db8::1", 128, "2001:db8::1"),
        ("2001:db8::1", 0, "::"),
        ("2001:db8::1", 129, "2001:db8::1"),
        ("2001:db8::1", -1, "2001:db8::1"),
        ("fe80::1234%eth0", 64, "fe80::"),
        ("::ffff:1.2.3.4", 120, "::ffff:1.2.3.0"),
        ("1.2.3.4", 8, "1.2.3.4"),
        ("not-an-ip", 64, "not-an-ip"),
        ("fe80::1%", 64, "fe80::1%"),
    ],
)
def test_mask_ipv6(ip: str, bits: int, expected: str) -> None:
    assert mask_ipv6(ip, bits) == expected


def test_depth_counts_from_the_right_over_all_header_lines() -> None:
    lines = ["203.0.113.9, 10.0.0.3", " 10.0.0.2 ,10.0.0.1"]
    assert client_ip_from_xff(lines, 1) == "10.0.0.1"
    assert client_ip_from_xff(lines, 2) == "10.0.0.2"
    assert client_ip_from_xff(lines, 4) == "203.0.113.9"
    assert client_ip_from_xff(lines, 5) == ""
    assert client_ip_from_xff([b"1.1.1.1", b"2.2.2.2"], 2) == "1.1.1.1"
    assert client_ip_from_xff(None, 1) == ""
    assert client_ip_from_xff("", 1) == ""


def test_excluded_skips_empty_entries_and_unparsable_ones_count_as_not_excluded() -> None:
    trusted = IPMatcher.from_strings(["10.0.0.0/8"])
    assert client_ip_from_xff("1.1.1.1, ,10.0.0.1, ", excluded=trusted) == "1.1.1.1"
    assert client_ip_from_xff("1.1.1.1,garbage,10.0.0.1", excluded=trusted) == "garbage"
    assert client_ip_from_xff(None, excluded=trusted) == ""


def test_neither_depth_nor_excluded_selects_nothing_from_the_header() -> None:
    assert client_ip_from_xff("1.1.1.1", 0) == ""
    assert client_ip_from_xff("1.1.1.1", 0, excluded=[]) == ""


def test_strategy_precedence_like_traefik() -> None:
    both = IPStrategy.from_config(depth=1, excluded_ips=["1.1.1.1"])
    assert both.get_ip("9.9.9.9:1", "1.1.1.1") == "1.1.1.1"  # depth wins over excludedIPs
    pool = IPStrategy.from_config(excluded_ips=["2.2.2.2"], ipv6_subnet=500)  # subnet ignored, not validated
    assert pool.get_ip("9.9.9.9:1", "1.1.1.1,2.2.2.2") == "1.1.1.1"
    remote = IPStrategy.from_config(ipv6_subnet=64)
    assert remote.get_ip("[2001:db8::7]:443", "1.1.1.1") == "2001:db8::"
    assert IPStrategy.from_config().get_ip("10.0.0.1", "1.1.1.1") == "10.0.0.1"
    assert IPStrategy.from_config() == IPStrategy.remote_addr()


@pytest.mark.parametrize("subnet", [0, -1, 129])
def test_strategy_rejects_bad_ipv6_subnet(subnet: int) -> None:
    with pytest.raises(ConfigError, match="IPv6 subnet") as info:
        IPStrategy.from_config(depth=2, ipv6_subnet=subnet, path="http.middlewares.a.ipAllowList.ipStrategy")
    assert info.value.path == "http.middlewares.a.ipAllowList.ipStrategy.ipv6Subnet"
    with pytest.raises(ConfigError):
        IPStrategy.from_config(ipv6_subnet=subnet)


def test_strategy_rejects_bad_excluded_ip() -> None:
    with pytest.raises(ConfigError) as info:
        IPStrategy.from_config(excluded_ips=["10.0.0.1", "nope"], path="s.ipStrategy")
    assert info.value.path == "s.ipStrategy.excludedIPs[1]"
