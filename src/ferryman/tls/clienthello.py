"""Sans-I/O TLS ClientHello peek: is this connection TLS, and which server name does it ask for.

An entry point serves TLS and plain HTTP on one port, as Traefik does: a connection whose first
byte is ``0x16`` (a TLS handshake record) is TLS. Before the handshake starts, the ClientHello is
read here (possibly across several reads and several records) so the server name (SNI) and the
ALPN list are known and the right ``SSLContext`` — certificate *and* TLS options — is chosen before
OpenSSL sees a byte. No asyncio, no sockets.

``peek_client_hello(buf)`` returns :data:`NEED_MORE`, :data:`NOT_TLS` or a :class:`ClientHello`
(``sni`` ``None`` when absent or unreadable; a malformed hello still yields a ``ClientHello`` with
``malformed=True`` and is left to OpenSSL to refuse with a proper alert).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["MAX_HELLO", "NEED_MORE", "NOT_TLS", "ClientHello", "is_tls_start", "peek_client_hello"]

#: Bigger ClientHellos are not waited for (the hello is then parsed as far as it arrived).
MAX_HELLO: Final = 64 * 1024

HANDSHAKE_RECORD: Final = 0x16
CLIENT_HELLO: Final = 0x01
EXT_SERVER_NAME: Final = 0
EXT_ALPN: Final = 16


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NEED_MORE: Final = _Marker("NEED_MORE")
NOT_TLS: Final = _Marker("NOT_TLS")


@dataclass(frozen=True, slots=True)
class ClientHello:
    sni: str | None
    alpn: tuple[bytes, ...] = ()
    malformed: bool = False


def is_tls_start(first: int) -> bool:
    """Traefik's test: the first byte of a TLS connection is a handshake record (0x16)."""
    return first == HANDSHAKE_RECORD


def _handshake_bytes(buf: bytes) -> bytes | None:
    """Concatenate the payloads of the leading handshake records until the first handshake message
    is complete. ``None`` = need more bytes."""
    out = bytearray()
    pos = 0
    need = -1
    while True:
        if len(buf) < pos + 5:
            return None if len(buf) < MAX_HELLO else bytes(out)
        if buf[pos] != HANDSHAKE_RECORD:
            return bytes(out)  # another record type before the hello is complete: parse what we have
        length = int.from_bytes(buf[pos + 3:pos + 5], "big")
        end = pos + 5 + length
        if len(buf) < end:
            return None if len(buf) < MAX_HELLO else bytes(out + buf[pos + 5:])
        out += buf[pos + 5:end]
        pos = end
        if need < 0 and len(out) >= 4:
            need = 4 + int.from_bytes(out[1:4], "big")
        if need >= 0 and len(out) >= need:
            return bytes(out[:need])
        if length == 0 and need < 0 and len(out) >= 4:
            return bytes(out)


def peek_client_hello(buf: bytes) -> ClientHello | _Marker:
    if not buf:
        return NEED_MORE
    if buf[0] != HANDSHAKE_RECORD:
        return NOT_TLS
    hs = _handshake_bytes(buf)
    if hs is None:
        return NEED_MORE
    try:
        return _parse(hs)
    except (IndexError, ValueError):
        return ClientHello(sni=None, malformed=True)


def _parse(hs: bytes) -> ClientHello:
    if len(hs) < 4 or hs[0] != CLIENT_HELLO:
        return ClientHello(sni=None, malformed=True)
    end = min(len(hs), 4 + int.from_bytes(hs[1:4], "big"))
    p = 4 + 2 + 32                                          # client_version, random
    p += 1 + hs[p]                                          # session_id
    p += 2 + int.from_bytes(hs[p:p + 2], "big")             # cipher_suites
    p += 1 + hs[p]                                          # compression_methods
    if p >= end:
        return ClientHello(sni=None)                        # no extensions
    ext_end = min(end, p + 2 + int.from_bytes(hs[p:p + 2], "big"))
    p += 2
    sni: str | None = None
    alpn: list[bytes] = []
    while p + 4 <= ext_end:
        etype = int.from_bytes(hs[p:p + 2], "big")
        elen = int.from_bytes(hs[p + 2:p + 4], "big")
        data = hs[p + 4:p + 4 + elen]
        p += 4 + elen
        if etype == EXT_SERVER_NAME and len(data) >= 2:
            q = 2
            list_end = min(len(data), 2 + int.from_bytes(data[0:2], "big"))
            while q + 3 <= list_end:
                ntype = data[q]
                nlen = int.from_bytes(data[q + 1:q + 3], "big")
                name = data[q + 3:q + 3 + nlen]
                q += 3 + nlen
                if ntype == 0 and name:
                    sni = name.decode("ascii", "replace").lower().rstrip(".")
                    break
        elif etype == EXT_ALPN and len(data) >= 2:
            q = 2
            list_end = min(len(data), 2 + int.from_bytes(data[0:2], "big"))
            while q < list_end:
                plen = data[q]
                alpn.append(bytes(data[q + 1:q + 1 + plen]))
                q += 1 + plen
    if p > ext_end + 0 and p > len(hs):
        raise ValueError("truncated extensions")
    return ClientHello(sni=sni or None, alpn=tuple(alpn))
