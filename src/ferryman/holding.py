"""A placeholder asyncio Protocol: keeps what a transport delivers until the real protocol is
chosen (after a TLS handshake, once ALPN says which HTTP version), then hands everything over."""

from __future__ import annotations

import asyncio

__all__ = ["Holding"]


class Holding(asyncio.Protocol):
    """Buffers data, EOF and connection loss; :meth:`hand_over` replays them to ``proto``."""

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.eof = False
        self.lost: tuple[Exception | None] | None = None

    def data_received(self, data: bytes) -> None:
        self.data.append(data)

    def eof_received(self) -> bool | None:
        self.eof = True
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = (exc,)

    def hand_over(self, transport: asyncio.BaseTransport, proto: asyncio.Protocol) -> None:
        """Attach ``proto`` to ``transport`` and replay what arrived meanwhile."""
        transport.set_protocol(proto)
        proto.connection_made(transport)
        for chunk in self.data:
            proto.data_received(chunk)
        if self.lost is not None:
            proto.connection_lost(self.lost[0])
        elif self.eof and not proto.eof_received():
            transport.close()
