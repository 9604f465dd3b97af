"""PROXY protocol v1/v2 parser and encoders (HAProxy proxy-protocol.txt)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ferryman.errors import ProtocolError
from ferryman.proto.proxy_protocol import (
    NEED_MORE,
    NOT_PROXY,
    PP2_TYPE_ALPN,
    PP2_TYPE_AUTHORITY,
    PP2_TYPE_CRC32C,
    PP2_TYPE_NOOP,
    PP2_TYPE_SSL,
    V1_PREFIX,
    V2_SIGNATURE,
    NotProxy,
    ParseStatus,
    ProxyHeader,
    ProxyResult,
    build_v1,
    build_v2,
    crc32c,
    parse_proxy_header,
)

SIG = V2_SIGNATURE
HTTP = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"


def header(result: ProxyResult) -> ProxyHeader:
    assert isinstance(result, ProxyHeader), result
    return result


def v2(ver_cmd: int, fam: int, body: bytes) -> bytes:
    """A v2 header assembled by hand from the spec's layout, independent of build_v2."""
    return SIG + bytes((ver_cmd, fam)) + len(body).to_bytes(2, "big") + body


def tlv(type_: int, value: bytes) -> bytes:
    return bytes((type_,)) + len(value).to_bytes(2, "big") + value


def canonical(ip: str) -> str:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return f"::ffff:{addr.ipv4_mapped}"
    return str(addr)


# ------------------------------------------------------------------------------------ detection


def test_names_for_the_sentinels() -> None:
    assert NotProxy is NOT_PROXY is ParseStatus.NOT_PROXY
    assert NEED_MORE is ParseStatus.NEED_MORE


@pytest.mark.parametrize(
    ("data", "decided_after"),
    [
        (HTTP, 1),
        (b"POST / HTTP/1.1\r\n", 2),
        (b"PUT / HTTP/1.1\r\n", 2),
        (b"PATCH / HTTP/1.1\r\n", 2),
        (b"PRI * HTTP/2.0\r\n", 3),
        (b"\x16\x03\x01\x02\x00\x01", 1),  # TLS ClientHello
        (b"\r\nGET / HTTP/1.1\r\n", 3),  # tolerated empty line before a request
        (b"\r\n\r\nGET /", 5),
        (b"PROXYTCP4", 6),
        (b"PROXY\r\n", 6),
        (SIG[:11] + b"X" + b"\x21\x11\x00\x00", 12),
    ],
)
def test_not_proxy_is_decided_from_the_first_diverging_byte(data: bytes, decided_after: int) -> None:
    for k in range(1, decided_after):
        assert parse_proxy_header(data[:k]) is NEED_MORE, k
    assert parse_proxy_header(data[:decided_after]) is NOT_PROXY
    assert parse_proxy_header(data) is NOT_PROXY


def test_empty_buffer_needs_more() -> None:
    assert parse_proxy_header(b"") is NEED_MORE


# ------------------------------------------------------------------------------------------- v1


def test_v1_tcp4() -> None:
    line = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
    h = header(parse_proxy_header(line + HTTP))
    assert h == ProxyHeader(len(line), "PROXY", "TCP4", "192.168.0.1", 56324, "192.168.0.11", 443, (), 1, "STREAM")
    assert h.overrides_peer


def test_v1_tcp6_is_canonicalised() -> None:
    line = b"PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::FFFF:10.0.0.1 65535 0\r\n"
    h = header(parse_proxy_header(line + HTTP))
    assert (h.family, h.src_ip, h.dst_ip, h.src_port, h.dst_port) == ("TCP6", "2001:db8::1", "::ffff:10.0.0.1", 65535, 0)
    assert h.consumed == len(line)


@pytest.mark.parametrize(
    "line",
    [
        b"PROXY UNKNOWN\r\n",
        b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
        b"PROXY UNKNOWN whatever the sender puts here \xff\r\n",
    ],
)
def test_v1_unknown_ignores_the_rest_of_the_line(line: bytes) -> None:
    assert len(line) <= 107
    h = header(parse_proxy_header(line + HTTP))
    assert h == ProxyHeader(len(line), "PROXY", "UNKNOWN", None, None, None, None, (), 1, "UNSPEC")
    assert not h.overrides_peer


def test_v1_line_of_exactly_107_bytes_is_accepted_and_108_rejected() -> None:
    longest = b"PROXY UNKNOWN " + b"x" * 91 + b"\r\n"
    assert len(longest) == 107
    assert header(parse_proxy_header(longest)).consumed == 107
    too_long = b"PROXY UNKNOWN " + b"x" * 92 + b"\r\n"
    with pytest.raises(ProtocolError, match="107"):
        parse_proxy_header(too_long)
    # Without any CRLF the verdict comes as soon as 107 bytes are buffered.
    assert parse_proxy_header(too_long[:106]) is NEED_MORE
    with pytest.raises(ProtocolError):
        parse_proxy_header(too_long[:107])


@pytest.mark.parametrize(
    "line",
    [
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",  # bare LF
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n",
        b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",  # two spaces
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
        b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",  # heading zero (octal confusion)
        b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 ::1 ::1 1 2\r\n",  # family mismatch
        b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",  # zones have no place here
        b"PROXY TCP6 [::1] ::1 1 2\r\n",
        b"PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",  # heading zero in a port
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 100000\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 \xd9\xa1\r\n",  # non-ASCII digit
        b"PROXY UNKNOWNX\r\n",
        b"PROXY \r\n",
    ],
)
def test_v1_malformed_lines_raise(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_proxy_header(line + HTTP)


@pytest.mark.parametrize(
    "prefix",
    [
        b"PROXY GET / HTTP/1.1",  # an impossible protocol token: no need to wait for the CRLF
        b"PROXY TCP4X",
        b"PROXY FOO ",
        b"PROXY TCP4 1.2.3.4 GET",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3 4",
        b"PROXY TCP4 1.2.3.4\rx",
        b"PROXY TCP4\r",
    ],
)
def test_v1_hopeless_prefixes_fail_before_the_crlf(prefix: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_proxy_header(prefix)


def test_v1_ports_at_the_bounds() -> None:
    h = header(parse_proxy_header(b"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n"))
    assert (h.src_ip, h.dst_ip, h.src_port, h.dst_port) == ("0.0.0.0", "255.255.255.255", 0, 65535)


# ------------------------------------------------------------------------------------------- v2


def test_v2_proxy_ipv4_with_tlvs_from_hand_made_bytes() -> None:
    body = (
        bytes([192, 168, 0, 1, 192, 168, 0, 11])
        + (56324).to_bytes(2, "big")
        + (443).to_bytes(2, "big")
        + tlv(PP2_TYPE_ALPN, b"h2")
        + tlv(PP2_TYPE_AUTHORITY, b"example.com")
        + tlv(PP2_TYPE_NOOP, b"")
        + tlv(PP2_TYPE_SSL, b"\x01\x00\x00\x00\x00" + tlv(0x21, b"TLSv1.3"))
    )
    raw = v2(0x21, 0x11, body)
    h = header(parse_proxy_header(raw + HTTP))
    assert (h.consumed, h.version, h.command, h.family, h.transport) == (len(raw), 2, "PROXY", "TCP4", "STREAM")
    assert (h.src_ip, h.src_port, h.dst_ip, h.dst_port) == ("192.168.0.1", 56324, "192.168.0.11", 443)
    assert h.tlvs == (
        (PP2_TYPE_ALPN, b"h2"),
        (PP2_TYPE_AUTHORITY, b"example.com"),
        (PP2_TYPE_NOOP, b""),
        (PP2_TYPE_SSL, b"\x01\x00\x00\x00\x00" + tlv(0x21, b"TLSv1.3")),
    )
    assert h.tlv(PP2_TYPE_AUTHORITY) == b"example.com"
    assert h.tlv(0xE0) is None
    assert h.overrides_peer


def test_v2_proxy_ipv6() -> None:
    src = ipaddress.IPv6Address("2001:db8::1")
    dst = ipaddress.IPv6Address("::ffff:10.1.2.3")
    raw = v2(0x21, 0x21, src.packed + dst.packed + b"\x00\x50\x01\xbb" + tlv(0xE0, b"custom"))
    h = header(parse_proxy_header(raw))
    assert (h.family, h.src_ip, h.src_port, h.dst_ip, h.dst_port) == ("TCP6", "2001:db8::1", 80, "::ffff:10.1.2.3", 443)
    assert h.tlvs == ((0xE0, b"custom"),)


def test_v2_proxy_unix_stream_and_abstract_dgram() -> None:
    src = b"/var/run/client.sock".ljust(108, b"\x00")
    dst = b"\x00abstract".ljust(108, b"\x00")
    h = header(parse_proxy_header(v2(0x21, 0x31, src + dst + tlv(PP2_TYPE_ALPN, b"http/1.1"))))
    assert (h.family, h.transport, h.src_ip, h.dst_ip) == ("UNIX", "STREAM", "/var/run/client.sock", "\x00abstract")
    assert (h.src_port, h.dst_port) == (None, None)
    assert h.tlvs == ((PP2_TYPE_ALPN, b"http/1.1"),)
    assert not h.overrides_peer
    assert header(parse_proxy_header(v2(0x21, 0x32, src + dst))).transport == "DGRAM"


def test_v2_udp_is_reported_as_dgram() -> None:
    h = header(parse_proxy_header(v2(0x21, 0x12, bytes([10, 0, 0, 1, 10, 0, 0, 2]) + b"\x00\x35\x00\x35")))
    assert (h.family, h.transport, h.src_ip, h.src_port) == ("TCP4", "DGRAM", "10.0.0.1", 53)


def test_v2_local_without_addresses() -> None:
    raw = v2(0x20, 0x00, b"")
    h = header(parse_proxy_header(raw + HTTP))
    assert h == ProxyHeader(16, "LOCAL", "UNKNOWN", None, None, None, None, (), 2, "UNSPEC")
    assert not h.overrides_peer


def test_v2_local_with_addresses_and_tlvs_is_decoded_but_does_not_override_the_peer() -> None:
    raw = v2(0x20, 0x11, bytes([1, 2, 3, 4, 5, 6, 7, 8]) + b"\x00\x01\x00\x02" + tlv(PP2_TYPE_NOOP, b"pad"))
    h = header(parse_proxy_header(raw))
    assert (h.command, h.family, h.src_ip, h.dst_port, h.tlvs) == ("LOCAL", "TCP4", "1.2.3.4", 2, ((PP2_TYPE_NOOP, b"pad"),))
    assert not h.overrides_peer


@pytest.mark.parametrize(
    ("fam", "body"),
    [
        (0x11, b"\x01\x02"),  # address block shorter than IPv4 needs
        (0x41, b""),  # address family 4 does not exist
        (0x13, bytes(12)),  # transport 3 does not exist
        (0x11, bytes(12) + b"\x01\x00"),  # truncated TLV
    ],
)
def test_v2_local_accepts_any_protocol_block(fam: int, body: bytes) -> None:
    # "The receiver must accept this connection as valid ... and discard the protocol block."
    raw = v2(0x20, fam, body)
    h = header(parse_proxy_header(raw + HTTP))
    assert (h.consumed, h.command, h.family, h.tlvs) == (len(raw), "LOCAL", "UNKNOWN", ())


def test_v2_proxy_unspec_family_carries_tlvs_but_no_addresses() -> None:
    h = header(parse_proxy_header(v2(0x21, 0x00, tlv(PP2_TYPE_AUTHORITY, b"a.example"))))
    assert (h.family, h.src_ip, h.tlvs) == ("UNKNOWN", None, ((PP2_TYPE_AUTHORITY, b"a.example"),))
    assert not h.overrides_peer


def test_v2_inet_over_unspecified_transport_is_skipped() -> None:
    h = header(parse_proxy_header(v2(0x21, 0x10, bytes(12) + b"\xff")))
    assert (h.consumed, h.family, h.src_ip, h.tlvs) == (29, "UNKNOWN", None, ())


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (SIG + b"\x11\x11\x00\x0c" + bytes(12), "version"),
        (SIG + b"\x31\x11\x00\x0c" + bytes(12), "version"),
        (SIG + b"\x22\x11\x00\x0c" + bytes(12), "command"),
        (SIG + b"\x2f\x11\x00\x0c" + bytes(12), "command"),
        (v2(0x21, 0x41, bytes(12)), "family"),
        (v2(0x21, 0x13, bytes(12)), "family"),
        (v2(0x21, 0x11, bytes(11)), "needs 12"),
        (v2(0x21, 0x21, bytes(35)), "needs 36"),
        (v2(0x21, 0x31, bytes(215)), "needs 216"),
        (v2(0x21, 0x11, bytes(12) + b"\x01\x00"), "truncated TLV"),
        (v2(0x21, 0x11, bytes(12) + b"\x01\x00\x05abcd"), "overruns"),
        (v2(0x21, 0x00, b"\x01"), "truncated TLV"),
        (v2(0x21, 0x11, bytes(12) + tlv(PP2_TYPE_CRC32C, b"\x00\x00\x00")), "CRC32C"),
        (v2(0x21, 0x11, bytes(12) + tlv(PP2_TYPE_CRC32C, b"\x00\x00\x00\x00")), "checksum"),
    ],
)
def test_v2_malformed_headers_raise(raw: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        parse_proxy_header(raw + HTTP)


def test_v2_bad_version_or_command_fails_as_soon_as_its_byte_arrives() -> None:
    for ver_cmd in (0x11, 0x22):
        with pytest.raises(ProtocolError):
            parse_proxy_header(SIG + bytes((ver_cmd,)))
    with pytest.raises(ProtocolError):
        parse_proxy_header(SIG + b"\x21\x51")


def test_v2_length_limit_is_enforced_from_the_fixed_header() -> None:
    fixed = SIG + b"\x21\x11" + (4096).to_bytes(2, "big")
    assert parse_proxy_header(fixed) is NEED_MORE  # within the default limit: wait for the rest
    with pytest.raises(ProtocolError, match="limit"):
        parse_proxy_header(fixed, max_v2_length=1024)
    with pytest.raises(ProtocolError, match="limit"):
        parse_proxy_header(SIG + b"\x21\x11\xff\xff")  # 65551 bytes > default 16384
    exact = build_v2("1.2.3.4", 1, "5.6.7.8", 2, tlvs=[(0xE0, bytes(100))])
    assert header(parse_proxy_header(exact, max_v2_length=len(exact))).consumed == len(exact)
    with pytest.raises(ProtocolError):
        parse_proxy_header(exact, max_v2_length=len(exact) - 1)


def test_v2_crc32c_is_verified() -> None:
    good = build_v2("1.2.3.4", 1, "5.6.7.8", 2, tlvs=[(PP2_TYPE_AUTHORITY, b"x.example")], crc32c_checksum=True)
    h = header(parse_proxy_header(good))
    checksum = h.tlv(PP2_TYPE_CRC32C)
    assert checksum is not None and len(checksum) == 4
    zeroed = good[: good.index(checksum)] + bytes(4) + good[good.index(checksum) + 4 :]
    assert int.from_bytes(checksum, "big") == crc32c(zeroed)
    tampered = bytearray(good)
    tampered[19] ^= 0x01  # one bit of the source address
    with pytest.raises(ProtocolError, match="checksum"):
        parse_proxy_header(bytes(tampered))


def test_crc32c_reference_vectors() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4
    assert crc32c(b"") == 0


def test_memoryview_and_bytearray_inputs_are_not_modified() -> None:
    raw = build_v2("10.0.0.1", 1000, "10.0.0.2", 443, tlvs=[(PP2_TYPE_ALPN, b"h2")]) + HTTP
    backing = bytearray(raw)
    for buf in (backing, memoryview(backing), memoryview(backing)[: len(raw) - 3]):
        h = header(parse_proxy_header(buf))
        assert h.src_ip == "10.0.0.1"
        assert isinstance(h.tlvs[0][1], bytes)
    assert backing == raw
    assert parse_proxy_header(memoryview(backing)[:20]) is NEED_MORE
    v1 = bytearray(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n" + HTTP)
    assert header(parse_proxy_header(memoryview(v1))).consumed == 32


# --------------------------------------------------------------------- split at every byte offset

VALID_HEADERS = [
    b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
    b"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n",
    b"PROXY UNKNOWN\r\n",
    b"PROXY UNKNOWN ffff:f::f ffff:f::f 65535 65535\r\n",
    build_v2("1.2.3.4", 1, "5.6.7.8", 2),
    build_v2("2001:db8::1", 1, "::1", 2, tlvs=[(PP2_TYPE_ALPN, b"h2"), (PP2_TYPE_NOOP, b"")], crc32c_checksum=True),
    build_v2("/tmp/a.sock", None, "/tmp/b.sock", None, family="UNIX", tlvs=[(0xE1, b"x" * 300)]),
    build_v2(command="LOCAL"),
    build_v2("1.2.3.4", 1, "5.6.7.8", 2, command="LOCAL", transport="DGRAM"),
]


@pytest.mark.parametrize("raw", VALID_HEADERS, ids=range(len(VALID_HEADERS)))
def test_split_at_every_offset_needs_more_until_complete(raw: bytes) -> None:
    whole = header(parse_proxy_header(raw + HTTP))
    assert whole.consumed == len(raw)
    for k in range(len(raw)):
        assert parse_proxy_header(raw[:k]) is NEED_MORE, k
        assert parse_proxy_header(memoryview(raw)[:k]) is NEED_MORE, k
    assert parse_proxy_header(raw) == whole
    assert parse_proxy_header(raw + b"\r\n\r\n") == whole


# ---------------------------------------------------------------------------- encoders, round trip


def test_build_v1_forms() -> None:
    assert build_v1() == b"PROXY UNKNOWN\r\n"
    assert build_v1("1.2.3.4", 1, "5.6.7.8", 2, family="UNKNOWN") == b"PROXY UNKNOWN\r\n"
    assert build_v1("1.2.3.4", 10, "5.6.7.8", 20) == b"PROXY TCP4 1.2.3.4 5.6.7.8 10 20\r\n"
    assert build_v1("2001:DB8:0::1", 1, "::ffff:1.2.3.4", 2) == b"PROXY TCP6 2001:db8::1 ::ffff:1.2.3.4 1 2\r\n"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"src_ip": "1.2.3.4", "src_port": 1, "dst_ip": "::1", "dst_port": 2},
        {"src_ip": "1.2.3.4", "src_port": 1, "dst_ip": "5.6.7.8", "dst_port": 65536},
        {"src_ip": "1.2.3.4", "src_port": 1, "dst_ip": "5.6.7.8"},
        {"src_ip": "1.2.3.4", "src_port": 1, "dst_ip": "5.6.7.8", "dst_port": 2, "family": "TCP6"},
        {"src_ip": "fe80::1%eth0", "src_port": 1, "dst_ip": "::1", "dst_port": 2},
        {"src_ip": "nope", "src_port": 1, "dst_ip": "::1", "dst_port": 2},
    ],
)
def test_build_v1_rejects_bad_input(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        build_v1(**kwargs)  # type: ignore[arg-type]


def test_build_v2_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        build_v2("1.2.3.4", 1, "::1", 2)
    with pytest.raises(ValueError):
        build_v2("/x" * 60, None, "/y", None, family="UNIX")
    with pytest.raises(ValueError):
        build_v2(family="UNIX")
    with pytest.raises(ValueError):
        build_v2(tlvs=[(256, b"")])
    with pytest.raises(ValueError):
        build_v2(tlvs=[(0xE0, bytes(70000))])


def test_build_v2_layout() -> None:
    raw = build_v2("192.168.0.1", 56324, "192.168.0.11", 443)
    assert raw == SIG + b"\x21\x11\x00\x0c" + bytes([192, 168, 0, 1, 192, 168, 0, 11]) + b"\xdc\x04\x01\xbb"
    assert build_v2(command="LOCAL") == SIG + b"\x20\x00\x00\x00"


ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
ports = st.integers(0, 65535)
tlv_lists = st.lists(
    st.tuples(st.integers(0, 255).filter(lambda t: t != PP2_TYPE_CRC32C), st.binary(max_size=40)), max_size=4
)
# At most 26 characters of at most 4 UTF-8 bytes: always fits the 108-byte field, even as "\0" + name.
unix_paths = st.text(st.characters(min_codepoint=1, exclude_categories=["Cs"]), max_size=26)


@given(st.one_of(st.tuples(ipv4, ipv4), st.tuples(ipv6, ipv6)), ports, ports, st.binary(max_size=30))
def test_v1_round_trip(addrs: tuple[str, str], sport: int, dport: int, rest: bytes) -> None:
    raw = build_v1(addrs[0], sport, addrs[1], dport)
    h = header(parse_proxy_header(raw + rest))
    assert h.consumed == len(raw) <= 107
    assert h.family == ("TCP4" if ipaddress.ip_address(addrs[0]).version == 4 else "TCP6")
    assert (h.src_ip, h.src_port, h.dst_ip, h.dst_port) == (canonical(addrs[0]), sport, canonical(addrs[1]), dport)


@given(
    st.sampled_from(["PROXY", "LOCAL"]),
    st.one_of(
        st.tuples(st.just("TCP4"), ipv4, ipv4),
        st.tuples(st.just("TCP6"), ipv6, ipv6),
        st.tuples(st.just("UNIX"), unix_paths, unix_paths | unix_paths.filter(bool).map(lambda p: "\x00" + p)),
        st.tuples(st.just("UNKNOWN"), st.none(), st.none()),
    ),
    ports,
    ports,
    st.sampled_from(["STREAM", "DGRAM"]),
    tlv_lists,
    st.booleans(),
    st.data(),
)
def test_v2_round_trip(
    command: str,
    addrs: tuple[str, str | None, str | None],
    sport: int,
    dport: int,
    transport: str,
    tlvs: list[tuple[int, bytes]],
    with_crc: bool,
    data: st.DataObject,
) -> None:
    family, src, dst = addrs
    raw = build_v2(
        src, sport, dst, dport,
        command=command,  # type: ignore[arg-type]
        family=family,  # type: ignore[arg-type]
        transport=transport,  # type: ignore[arg-type]
        tlvs=tlvs,
        crc32c_checksum=with_crc,
    )
    split = data.draw(st.integers(0, len(raw) - 1), label="split")
    assert parse_proxy_header(raw[:split]) is NEED_MORE
    h = header(parse_proxy_header(raw + HTTP))
    assert (h.consumed, h.version, h.command, h.family) == (len(raw), 2, command, family)
    if family in ("TCP4", "TCP6"):
        assert src is not None and dst is not None
        assert (h.src_ip, h.src_port, h.dst_ip, h.dst_port) == (canonical(src), sport, canonical(dst), dport)
        assert h.transport == transport
    elif family == "UNIX":
        assert (h.src_ip, h.dst_ip, h.src_port, h.dst_port) == (src, dst, None, None)
    else:
        assert (h.src_ip, h.dst_ip, h.transport) == (None, None, "UNSPEC")
    expected_tlvs = [(t, v) for t, v in tlvs]
    got = list(h.tlvs)
    if with_crc:
        assert got[-1][0] == PP2_TYPE_CRC32C
        got = got[:-1]
    assert got == expected_tlvs


# ---------------------------------------------------------------------------------------- fuzzing


def check_parse(data: bytes) -> ProxyResult | None:
    """Parse; only ProtocolError may escape. A header found must be stable under its prefixes."""
    try:
        result = parse_proxy_header(data)
    except ProtocolError:
        return None
    assert isinstance(result, ParseStatus | ProxyHeader)
    if isinstance(result, ProxyHeader):
        assert 0 < result.consumed <= len(data)
        assert parse_proxy_header(data[: result.consumed]) == result
        for k in range(result.consumed):
            assert parse_proxy_header(data[:k]) is NEED_MORE
    return result


@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    check_parse(data)


@given(
    st.sampled_from([V1_PREFIX, V1_PREFIX + b"TCP4 ", V1_PREFIX + b"TCP6 ", V1_PREFIX + b"UNKNOWN", SIG, SIG + b"\x21", SIG + b"\x20"]),
    st.binary(max_size=300),
)
@example(SIG + b"\x21\x31\x00\xd8", b"\x00" * 216)
@example(V1_PREFIX + b"TCP4 ", b"1.2.3.4 5.6.7.8 1 2\r\n")
def test_fuzz_after_a_signature(prefix: bytes, tail: bytes) -> None:
    check_parse(prefix + tail)


@given(
    st.sampled_from(VALID_HEADERS),
    st.integers(0, 10_000),
    st.integers(0, 255),
    st.binary(max_size=20),
)
def test_fuzz_mutated_valid_headers(raw: bytes, where: int, byte: int, rest: bytes) -> None:
    mutated = bytearray(raw)
    mutated[where % len(raw)] = byte
    check_parse(bytes(mutated) + rest)
    check_parse(bytes(mutated[: where % len(raw)]) + bytes(mutated[where % len(raw) + 1 :]) + rest)


@given(
    st.text(alphabet="PROXY TCP46UNKOW0123456789abcdef.:\r\n ", max_size=110),
)
def test_fuzz_v1_grammar_soup(text: str) -> None:
    check_parse(V1_PREFIX + text.encode())
