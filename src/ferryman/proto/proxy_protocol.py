"""PROXY protocol v1 (text) and v2 (binary), sans-I/O, per HAProxy's ``proxy-protocol.txt``.

The receiving side is one function, :func:`parse_proxy_header`, called on whatever bytes the
connection has buffered so far. It never consumes anything itself and returns one of:

* :data:`NEED_MORE` -- the bytes so far are a valid beginning of a header; read more and call again.
* :data:`NOT_PROXY` (alias :data:`NotProxy`) -- the buffer does not start with a PROXY signature: the
  connection simply has no header (Traefik accepts that). Decided from the first bytes that can no
  longer become ``"PROXY "`` or the 12-byte v2 signature, so ``GET /``, ``POST /`` or a TLS
  ClientHello are answered after one or two bytes and never delayed.
* a :class:`ProxyHeader` whose ``consumed`` bytes the caller drops before handing the rest of the
  buffer to the next protocol layer.

A malformed header raises :class:`ferryman.errors.ProtocolError`; the connection must then be closed.
The buffer may be ``bytes``, ``bytearray`` or a byte ``memoryview``; only the header bytes are copied.

The sending side is :func:`build_v1` / :func:`build_v2` (tests, and upstream ``proxyProtocol``).

Choices the spec leaves open, made here:

* v1 ``UNKNOWN`` and v2 ``AF_UNSPEC`` give ``family="UNKNOWN"`` and no addresses: use the real peer.
* v2 ``LOCAL``: the spec says the receiver must accept it and ignore the protocol block, so the block
  is decoded best effort (addresses and TLVs when well formed, else ``"UNKNOWN"`` and no TLVs) and
  never raises. Only the signature, version, command and length limit are enforced.
* v2 ``AF_INET``/``AF_INET6`` with transport ``UNSPEC``: the address size is ambiguous (ports or not),
  so the block is skipped: ``family="UNKNOWN"``, no addresses, no TLVs.
* v2 ``AF_UNIX``: ``src_ip``/``dst_ip`` hold the socket paths (NUL padding removed; an abstract name
  keeps its leading NUL), ports are ``None``.
* TLVs are returned raw, in wire order, NOOP and SSL included (sub-TLVs are not split). A
  ``PP2_TYPE_CRC32C`` TLV is verified (the spec's MUST) and a mismatch raises.
* IPv6 addresses are returned in RFC 5952 form (``::ffff:1.2.3.4`` for IPv4-mapped ones) whatever the
  Python version or libc.
"""

from __future__ import annotations

import enum
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from ferryman.errors import ProtocolError

__all__ = [
    "NEED_MORE",
    "NOT_PROXY",
    "PP2_TYPE_ALPN",
    "PP2_TYPE_AUTHORITY",
    "PP2_TYPE_CRC32C",
    "PP2_TYPE_NETNS",
    "PP2_TYPE_NOOP",
    "PP2_TYPE_SSL",
    "PP2_TYPE_UNIQUE_ID",
    "V1_MAX_LENGTH",
    "V1_PREFIX",
    "V2_DEFAULT_MAX_LENGTH",
    "V2_SIGNATURE",
    "Command",
    "Family",
    "NotProxy",
    "ParseStatus",
    "ProxyHeader",
    "ProxyResult",
    "Transport",
    "build_v1",
    "build_v2",
    "crc32c",
    "parse_proxy_header",
]

Command: TypeAlias = Literal["PROXY", "LOCAL"]
Family: TypeAlias = Literal["TCP4", "TCP6", "UNIX", "UNKNOWN"]
Transport: TypeAlias = Literal["STREAM", "DGRAM", "UNSPEC"]
Buffer: TypeAlias = bytes | bytearray | memoryview

V1_PREFIX: Final = b"PROXY "
V1_MAX_LENGTH: Final = 107  # the longest legal v1 line, CRLF included
V2_SIGNATURE: Final = b"\r\n\r\n\x00\r\nQUIT\n"
V2_HEADER_LENGTH: Final = 16
V2_DEFAULT_MAX_LENGTH: Final = 16384  # whole v2 header (16 + len); HAProxy's default buffer size

PP2_TYPE_ALPN: Final = 0x01
PP2_TYPE_AUTHORITY: Final = 0x02
PP2_TYPE_CRC32C: Final = 0x03
PP2_TYPE_NOOP: Final = 0x04
PP2_TYPE_UNIQUE_ID: Final = 0x05
PP2_TYPE_SSL: Final = 0x20
PP2_TYPE_NETNS: Final = 0x30

_UNIX_PATH_SIZE: Final = 108
_MAPPED_PREFIX: Final = b"\x00" * 10 + b"\xff\xff"
_V1_PROTOCOLS: Final = (b"TCP4", b"TCP6", b"UNKNOWN")
# Bytes that may follow "PROXY TCP4 " / "PROXY TCP6 " before the CRLF: hex digits, '.', ':', ' ', CR.
_V1_ADDRESS_BYTES: Final = b"0123456789abcdefABCDEF.: \r"
_TRANSPORTS: Final[tuple[Transport, Transport, Transport]] = ("UNSPEC", "STREAM", "DGRAM")


class ParseStatus(enum.Enum):
    """The two non-header outcomes of :func:`parse_proxy_header`."""

    NEED_MORE = "need more bytes"
    NOT_PROXY = "no PROXY protocol header"

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"


NEED_MORE: Final = ParseStatus.NEED_MORE
NOT_PROXY: Final = ParseStatus.NOT_PROXY
NotProxy: Final = ParseStatus.NOT_PROXY


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """A complete PROXY header found at the start of the buffer.

    ``consumed`` is the header's length in bytes. For ``TCP4``/``TCP6`` the addresses are IP strings
    (no port, no brackets) and the ports ints; for ``UNIX`` they are socket paths and the ports
    ``None``; for ``UNKNOWN`` all four are ``None``. ``tlvs`` holds v2 ``(type, value)`` pairs.
    """

    consumed: int
    command: Command
    family: Family
    src_ip: str | None
    src_port: int | None
    dst_ip: str | None
    dst_port: int | None
    tlvs: tuple[tuple[int, bytes], ...] = ()
    version: Literal[1, 2] = 1
    transport: Transport = "STREAM"

    @property
    def overrides_peer(self) -> bool:
        """True when the connection's client address must become ``src_ip``/``src_port``.

        That is a ``PROXY`` command carrying an IPv4 or IPv6 address; ``LOCAL``, ``UNKNOWN`` and
        ``UNIX`` headers leave the real peer address in place.
        """
        return self.command == "PROXY" and (self.family == "TCP4" or self.family == "TCP6")

    def tlv(self, type_: int) -> bytes | None:
        """The value of the first TLV of this type, or ``None``."""
        for t, value in self.tlvs:
            if t == type_:
                return value
        return None


ProxyResult: TypeAlias = ProxyHeader | ParseStatus


def parse_proxy_header(buf: Buffer, *, max_v2_length: int = V2_DEFAULT_MAX_LENGTH) -> ProxyResult:
    """Look for a PROXY protocol header (v1 or v2, auto-detected) at the start of ``buf``.

    ``max_v2_length`` bounds a v2 header as a whole (16 fixed bytes + its ``len`` field); a longer
    announced length raises :class:`ProtocolError` as soon as the 16 fixed bytes are in. A v1 line
    is always bounded by the spec's 107 bytes.
    """
    n = len(buf)
    if n == 0:
        return NEED_MORE
    first = buf[0]
    if first == 0x50:  # "P"
        if n < 6:
            return NEED_MORE if V1_PREFIX.startswith(bytes(buf)) else NOT_PROXY
        if buf[:6] != V1_PREFIX:
            return NOT_PROXY
        return _parse_v1(bytes(buf[:V1_MAX_LENGTH]))
    if first == 0x0D:  # CR
        if n < 12:
            return NEED_MORE if V2_SIGNATURE.startswith(bytes(buf)) else NOT_PROXY
        if buf[:12] != V2_SIGNATURE:
            return NOT_PROXY
        return _parse_v2(buf, n, max_v2_length)
    return NOT_PROXY


# --------------------------------------------------------------------------------------------- v1


def _parse_v1(head: bytes) -> ProxyResult:
    lf = head.find(b"\n", 6)
    if lf < 0:
        if len(head) >= V1_MAX_LENGTH:
            raise ProtocolError(f"PROXY v1 header has no CRLF within {V1_MAX_LENGTH} bytes")
        _check_v1_prefix(head)
        return NEED_MORE
    if head[lf - 1] != 0x0D:
        raise ProtocolError("PROXY v1 header must end with CRLF, not a bare LF")
    line = head[6 : lf - 1]
    consumed = lf + 1
    if line[:7] == b"UNKNOWN" and (len(line) == 7 or line[7] == 0x20):
        # The receiver must ignore anything after UNKNOWN and use the real connection endpoints.
        return ProxyHeader(consumed, "PROXY", "UNKNOWN", None, None, None, None, (), 1, "UNSPEC")
    parts = line.split(b" ")
    if len(parts) != 5:
        raise ProtocolError(f"malformed PROXY v1 header {_show(head[:consumed])}")
    proto, src, dst, sport, dport = parts
    if proto == b"TCP4":
        family: Family = "TCP4"
        src_ip, dst_ip = _v1_ipv4(src), _v1_ipv4(dst)
    elif proto == b"TCP6":
        family = "TCP6"
        src_ip, dst_ip = _v1_ipv6(src), _v1_ipv6(dst)
    else:
        raise ProtocolError(f"unknown PROXY v1 protocol {_show(proto)} (expected TCP4, TCP6 or UNKNOWN)")
    return ProxyHeader(consumed, "PROXY", family, src_ip, _v1_port(sport), dst_ip, _v1_port(dport), (), 1)


def _check_v1_prefix(head: bytes) -> None:
    """Fail fast on an incomplete v1 line that can no longer become valid.

    Never rejects a prefix of a valid line (the byte-by-byte split tests hold it to that).
    """
    rest = head[6:]
    sp = rest.find(b" ")
    if sp < 0:
        if rest.endswith(b"\r"):  # "PROXY UNKNOWN\r": only UNKNOWN may end right after the protocol
            if rest[:-1] != b"UNKNOWN":
                raise ProtocolError(f"malformed PROXY v1 header {_show(head)}")
        elif not any(p.startswith(rest) for p in _V1_PROTOCOLS):
            raise ProtocolError(f"unknown PROXY v1 protocol {_show(rest)} (expected TCP4, TCP6 or UNKNOWN)")
        return
    proto = rest[:sp]
    if proto == b"UNKNOWN":
        return
    if proto != b"TCP4" and proto != b"TCP6":
        raise ProtocolError(f"unknown PROXY v1 protocol {_show(proto)} (expected TCP4, TCP6 or UNKNOWN)")
    tail = rest[sp + 1 :]
    cr = tail.find(b"\r")
    if (
        (cr >= 0 and cr != len(tail) - 1)
        or tail.count(b" ") > 3
        or tail.translate(None, _V1_ADDRESS_BYTES)
    ):
        raise ProtocolError(f"malformed PROXY v1 header {_show(head)}")


def _v1_ipv4(raw: bytes) -> str:
    try:
        text = raw.decode("ascii")
        socket.inet_pton(socket.AF_INET, text)  # strict dotted quad; rejects leading zeros
    except (OSError, ValueError):
        raise ProtocolError(f"bad IPv4 address {_show(raw)} in PROXY v1 header") from None
    return text


def _v1_ipv6(raw: bytes) -> str:
    try:
        packed = socket.inet_pton(socket.AF_INET6, raw.decode("ascii"))  # no zone, no brackets
    except (OSError, ValueError):
        raise ProtocolError(f"bad IPv6 address {_show(raw)} in PROXY v1 header") from None
    return _format_ipv6(packed)


def _v1_port(raw: bytes) -> int:
    if not (0 < len(raw) <= 5 and raw.isdigit()) or (len(raw) > 1 and raw[0] == 0x30):
        raise ProtocolError(f"bad port {_show(raw)} in PROXY v1 header")
    port = int(raw)
    if port > 65535:
        raise ProtocolError(f"port {port} out of range in PROXY v1 header")
    return port


# --------------------------------------------------------------------------------------------- v2


def _parse_v2(buf: Buffer, n: int, max_length: int) -> ProxyResult:
    if n > 12:
        ver_cmd = buf[12]
        if ver_cmd >> 4 != 2:
            raise ProtocolError(f"unsupported PROXY protocol version {ver_cmd >> 4} (only 2 exists)")
        if ver_cmd & 0x0F > 1:
            raise ProtocolError(f"unknown PROXY v2 command {ver_cmd & 0x0F:#x}")
        if n > 13 and ver_cmd & 0x0F == 1:
            fam = buf[13]
            if fam >> 4 > 3 or fam & 0x0F > 2:
                raise ProtocolError(f"invalid PROXY v2 address family/transport byte {fam:#04x}")
    if n < V2_HEADER_LENGTH:
        return NEED_MORE
    total = V2_HEADER_LENGTH + ((buf[14] << 8) | buf[15])
    if total > max_length:
        raise ProtocolError(f"PROXY v2 header of {total} bytes exceeds the {max_length}-byte limit")
    if n < total:
        return NEED_MORE
    header = bytes(buf[:total])
    if header[12] & 0x0F == 1:
        return _decode_v2_block(header, "PROXY")
    try:
        return _decode_v2_block(header, "LOCAL")
    except ProtocolError:
        # LOCAL: the receiver must accept the connection and ignore the protocol block.
        return ProxyHeader(total, "LOCAL", "UNKNOWN", None, None, None, None, (), 2, "UNSPEC")


def _decode_v2_block(header: bytes, command: Command) -> ProxyHeader:
    total = len(header)
    fam = header[13]
    af, tp = fam >> 4, fam & 0x0F
    if af > 3 or tp > 2:
        raise ProtocolError(f"invalid PROXY v2 address family/transport byte {fam:#04x}")
    transport = _TRANSPORTS[tp]
    src: str | None = None
    dst: str | None = None
    sport: int | None = None
    dport: int | None = None
    family: Family
    if af == 0:
        family, start = "UNKNOWN", V2_HEADER_LENGTH
    elif af == 3:
        start = _need(header, 2 * _UNIX_PATH_SIZE, "UNIX")
        family = "UNIX"
        src = _unix_path(header[16 : 16 + _UNIX_PATH_SIZE])
        dst = _unix_path(header[16 + _UNIX_PATH_SIZE : start])
    elif tp == 0:
        # INET/INET6 over an unspecified transport: whether ports follow is unknown, so the
        # address block (and anything after it) cannot be delimited. Ignore it.
        return ProxyHeader(total, command, "UNKNOWN", None, None, None, None, (), 2, "UNSPEC")
    elif af == 1:
        start = _need(header, 12, "IPv4")
        family = "TCP4"
        src = socket.inet_ntop(socket.AF_INET, header[16:20])
        dst = socket.inet_ntop(socket.AF_INET, header[20:24])
        sport = (header[24] << 8) | header[25]
        dport = (header[26] << 8) | header[27]
    else:
        start = _need(header, 36, "IPv6")
        family = "TCP6"
        src = _format_ipv6(header[16:32])
        dst = _format_ipv6(header[32:48])
        sport = (header[48] << 8) | header[49]
        dport = (header[50] << 8) | header[51]
    tlvs = _parse_tlvs(header, start) if start < total else ()
    return ProxyHeader(total, command, family, src, sport, dst, dport, tlvs, 2, transport)


def _need(header: bytes, size: int, what: str) -> int:
    if len(header) - V2_HEADER_LENGTH < size:
        raise ProtocolError(
            f"PROXY v2 {what} address block needs {size} bytes, header announces "
            f"{len(header) - V2_HEADER_LENGTH}"
        )
    return V2_HEADER_LENGTH + size


def _parse_tlvs(header: bytes, start: int) -> tuple[tuple[int, bytes], ...]:
    end = len(header)
    out: list[tuple[int, bytes]] = []
    crc_at = -1
    i = start
    while i < end:
        if end - i < 3:
            raise ProtocolError(f"truncated TLV at byte {i} of the PROXY v2 header")
        value_at = i + 3
        stop = value_at + ((header[i + 1] << 8) | header[i + 2])
        if stop > end:
            raise ProtocolError(f"TLV type {header[i]:#04x} at byte {i} overruns the PROXY v2 header")
        if header[i] == PP2_TYPE_CRC32C:
            if stop - value_at != 4:
                raise ProtocolError("PROXY v2 CRC32C TLV must hold exactly 4 bytes")
            crc_at = value_at
        out.append((header[i], header[value_at:stop]))
        i = stop
    if crc_at >= 0:
        zeroed = header[:crc_at] + b"\x00\x00\x00\x00" + header[crc_at + 4 :]
        if crc32c(zeroed) != int.from_bytes(header[crc_at : crc_at + 4], "big"):
            raise ProtocolError("PROXY v2 header CRC32C checksum mismatch")
    return tuple(out)


def _unix_path(raw: bytes) -> str:
    # Paths are NUL-terminated and NUL-padded; a Linux abstract name starts with NUL.
    path = raw.rstrip(b"\x00") if raw[:1] == b"\x00" else raw.split(b"\x00", 1)[0]
    return path.decode("utf-8", "surrogateescape")


def _format_ipv6(packed: bytes) -> str:
    """RFC 5952 text. libc's ``inet_ntop`` is that, fast, except that some libcs print other
    IPv4-embedding forms (``::1.2.3.4``) dotted; those go through :mod:`ipaddress` instead."""
    if packed[:12] == _MAPPED_PREFIX:
        return "::ffff:" + socket.inet_ntop(socket.AF_INET, packed[12:])
    text = socket.inet_ntop(socket.AF_INET6, packed)
    return str(ipaddress.IPv6Address(packed)) if "." in text else text


def _show(raw: bytes) -> str:
    text = repr(raw[:64])[1:]
    return text if len(raw) <= 64 else text + "..."


# ---------------------------------------------------------------------------------------- CRC32C


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC32C_TABLE: Final = _crc32c_table()


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC-32C (Castagnoli, RFC 4960 appendix B), as PROXY v2's ``PP2_TYPE_CRC32C`` uses it."""
    table = _CRC32C_TABLE
    crc ^= 0xFFFFFFFF
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# -------------------------------------------------------------------------------------- encoders


def build_v1(
    src_ip: str | None = None,
    src_port: int | None = None,
    dst_ip: str | None = None,
    dst_port: int | None = None,
    *,
    family: Literal["TCP4", "TCP6", "UNKNOWN"] | None = None,
) -> bytes:
    """Encode a v1 line. Without addresses (or with ``family="UNKNOWN"``) it is ``PROXY UNKNOWN\\r\\n``.

    The family is taken from the addresses when not given; both must be of that family. Addresses
    are written in canonical form (IPv6 compressed, lower case). Raises ``ValueError`` on bad input.
    """
    if family == "UNKNOWN" or (family is None and src_ip is None and dst_ip is None):
        return b"PROXY UNKNOWN\r\n"
    if src_ip is None or dst_ip is None or src_port is None or dst_port is None:
        raise ValueError("a TCP4/TCP6 PROXY v1 line needs both addresses and both ports")
    src = _ip_for_build(src_ip)
    dst = _ip_for_build(dst_ip)
    if src.version != dst.version:
        raise ValueError(f"source {src_ip!r} and destination {dst_ip!r} are not of the same IP version")
    actual: Family = "TCP4" if src.version == 4 else "TCP6"
    if family is not None and family != actual:
        raise ValueError(f"family {family} does not match the addresses ({actual})")
    src_text = str(src) if src.version == 4 else _format_ipv6(src.packed)
    dst_text = str(dst) if dst.version == 4 else _format_ipv6(dst.packed)
    line = f"PROXY {actual} {src_text} {dst_text} {_port_for_build(src_port)} {_port_for_build(dst_port)}\r\n"
    return line.encode("ascii")


def build_v2(
    src_ip: str | None = None,
    src_port: int | None = None,
    dst_ip: str | None = None,
    dst_port: int | None = None,
    *,
    command: Command = "PROXY",
    family: Family | None = None,
    transport: Literal["STREAM", "DGRAM"] = "STREAM",
    tlvs: Iterable[tuple[int, bytes]] = (),
    crc32c_checksum: bool = False,
) -> bytes:
    """Encode a v2 header.

    ``family`` defaults to ``TCP4``/``TCP6`` from the addresses, or ``UNKNOWN`` (``AF_UNSPEC``) when
    none are given (the usual ``LOCAL`` health-check header). For ``UNIX`` the addresses are socket
    paths of at most 108 bytes and the ports are ignored. ``crc32c_checksum`` appends a
    ``PP2_TYPE_CRC32C`` TLV and fills it in. Raises ``ValueError`` on bad input.
    """
    if family is None:
        family = "UNKNOWN" if src_ip is None and dst_ip is None else None
    block = bytearray()
    if family == "UNKNOWN":
        fam = 0x00
    elif family == "UNIX":
        fam = 0x30 | (1 if transport == "STREAM" else 2)
        if src_ip is None or dst_ip is None:
            raise ValueError("a UNIX PROXY v2 header needs both socket paths")
        block += _unix_for_build(src_ip) + _unix_for_build(dst_ip)
    else:
        if src_ip is None or dst_ip is None or src_port is None or dst_port is None:
            raise ValueError("a TCP4/TCP6 PROXY v2 header needs both addresses and both ports")
        src = _ip_for_build(src_ip)
        dst = _ip_for_build(dst_ip)
        if src.version != dst.version:
            raise ValueError(f"source {src_ip!r} and destination {dst_ip!r} are not of the same IP version")
        actual: Family = "TCP4" if src.version == 4 else "TCP6"
        if family is not None and family != actual:
            raise ValueError(f"family {family} does not match the addresses ({actual})")
        fam = (0x10 if src.version == 4 else 0x20) | (1 if transport == "STREAM" else 2)
        block += src.packed + dst.packed
        block += _port_for_build(src_port).to_bytes(2, "big") + _port_for_build(dst_port).to_bytes(2, "big")
    for type_, value in tlvs:
        if not 0 <= type_ <= 0xFF or len(value) > 0xFFFF:
            raise ValueError(f"TLV type {type_} or its {len(value)}-byte value does not fit")
        block += bytes((type_,)) + len(value).to_bytes(2, "big") + value
    crc_at = -1
    if crc32c_checksum:
        crc_at = V2_HEADER_LENGTH + len(block) + 3
        block += bytes((PP2_TYPE_CRC32C,)) + b"\x00\x04" + b"\x00\x00\x00\x00"
    if len(block) > 0xFFFF:
        raise ValueError(f"PROXY v2 address block and TLVs are {len(block)} bytes (at most 65535)")
    ver_cmd = 0x21 if command == "PROXY" else 0x20
    header = bytearray(V2_SIGNATURE) + bytes((ver_cmd, fam)) + len(block).to_bytes(2, "big") + block
    if crc_at >= 0:
        header[crc_at : crc_at + 4] = crc32c(header).to_bytes(4, "big")
    return bytes(header)


def _ip_for_build(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if "%" in text:
        raise ValueError(f"{text!r}: zoned IPv6 addresses cannot be sent in a PROXY header")
    return ipaddress.ip_address(text)


def _port_for_build(port: int) -> int:
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} out of range")
    return port


def _unix_for_build(path: str) -> bytes:
    raw = path.encode("utf-8", "surrogateescape")
    if len(raw) > _UNIX_PATH_SIZE:
        raise ValueError(f"UNIX socket path {path!r} is longer than {_UNIX_PATH_SIZE} bytes")
    return raw.ljust(_UNIX_PATH_SIZE, b"\x00")
