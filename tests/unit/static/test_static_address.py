"""Entry point address parsing: ``[host]:port[/tcp|/udp]``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ferryman.static.address import ListenAddress, parse_address
from ferryman.static.models import EntryPoint


@pytest.mark.parametrize(("text", "expected"), [
    (":80", ListenAddress("", 80, "tcp")),
    ("0.0.0.0:80/tcp", ListenAddress("0.0.0.0", 80, "tcp")),
    ("[::]:443", ListenAddress("::", 443, "tcp")),
    (":53/udp", ListenAddress("", 53, "udp")),
    (":53/UDP", ListenAddress("", 53, "udp")),
    ("127.0.0.1:0", ListenAddress("127.0.0.1", 0, "tcp")),
    ("localhost:8080", ListenAddress("localhost", 8080, "tcp")),
    ("[fe80::1%eth0]:8443", ListenAddress("fe80::1%eth0", 8443, "tcp")),
    (" :80 ", ListenAddress("", 80, "tcp")),
])
def test_valid_addresses(text: str, expected: ListenAddress) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(("text", "why"), [
    ("", "empty address"),
    ("80", "missing port"),
    (":", "missing port"),
    (":http", "invalid port"),
    (":80/sctp", "invalid protocol"),
    (":65536", "out of range"),
    ("::1:80", "too many colons"),
    ("[::1:80", "missing ']'"),
    ("[::1]", "missing port"),
    ("[nothost]:80", "invalid IPv6"),
    (":-1", "invalid port"),
    (":\uff18\uff10", "invalid port"),  # fullwidth digits are not ASCII digits
])
def test_invalid_addresses(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as info:
        parse_address(text)
    assert "e.g." in str(info.value)  # every message shows how to write it


def test_hostport_brackets_ipv6() -> None:
    assert parse_address("[::]:443").hostport == "[::]:443"
    assert str(parse_address(":53/udp")) == ":53/udp"


def test_entry_point_exposes_parsed_address() -> None:
    ep = EntryPoint(address="0.0.0.0:8443/tcp")
    assert (ep.listen.host, ep.listen.port, ep.listen.protocol) == ("0.0.0.0", 8443, "tcp")


hosts = st.one_of(
    st.just(""),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda ip: f"[{ip}]"),
    st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,20}){0,3}", fullmatch=True),
)


@given(host=hosts, port=st.integers(0, 65535), proto=st.sampled_from(["", "/tcp", "/udp", "/TCP"]))
def test_round_trip(host: str, port: int, proto: str) -> None:
    parsed = parse_address(f"{host}:{port}{proto}")
    assert parsed.port == port
    assert parsed.protocol == (proto[1:].lower() or "tcp")
    assert parsed.hostport == f"{host}:{port}"
    assert parse_address(str(parsed)) == parsed


@given(st.text(max_size=30))
def test_never_crashes(text: str) -> None:
    try:
        parsed = parse_address(text)
    except ValueError:
        return
    assert 0 <= parsed.port <= 65535 and parsed.protocol in ("tcp", "udp")
