"""TLS termination on a connection that already started as plain TCP (same port as plain HTTP).

:class:`~ferryman.server.h1.H1Connection` peeks the ClientHello and picks the ``SSLContext``
(:meth:`ferryman.tls.store.TLSServing.select`); :func:`start_tls` then upgrades the same transport
with ``loop.start_tls`` (uvloop's or asyncio's TLS protocol; one task per handshake, none per
request) and, once the handshake is done, serves the connection with a fresh ``H1Connection``
whose ``ConnInfo.tls`` is true -- or an :class:`~ferryman.server.h2.H2Connection` when ALPN chose
``h2``.

The ClientHello bytes were already read from the socket, so they are fed to the TLS protocol
right after ``start_tls`` attached it (its ``connection_made`` runs first: the feed is scheduled one
loop turn later). A client sends nothing more before the server's first flight (0-RTT early data is
not enabled), so nothing can overtake those bytes. Data that arrives between the end of the
handshake and the new protocol being attached is buffered and replayed.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import TYPE_CHECKING, Any

from ferryman.holding import Holding
from ferryman.server.h1 import H1Connection
from ferryman.server.h2 import H2Connection
from ferryman.tasks import spawn

if TYPE_CHECKING:
    from ferryman.server.entrypoint import EntryPoint

log = logging.getLogger("ferryman.server")

__all__ = ["start_tls"]

#: handshake deadline when readTimeout is 0 (no timeout)
DEFAULT_HANDSHAKE_TIMEOUT = 60.0


def _feed(transport: asyncio.BaseTransport, data: bytes) -> None:
    proto: Any = transport.get_protocol()
    view = memoryview(data)
    if not hasattr(proto, "get_buffer"):
        proto.data_received(data)
        return
    while view:
        buf = proto.get_buffer(len(view))
        n = min(len(buf), len(view))
        if n == 0:
            raise RuntimeError("TLS protocol offered an empty buffer")
        buf[:n] = view[:n]
        proto.buffer_updated(n)
        view = view[n:]


def start_tls(ep: EntryPoint, transport: asyncio.BaseTransport, hello: bytes, ctx: ssl.SSLContext,
              client: tuple[str, int], sni: str | None = None) -> None:
    spawn(_handshake(ep, transport, hello, ctx, client, sni), name="tls-handshake")


async def _handshake(ep: EntryPoint, transport: asyncio.BaseTransport, hello: bytes, ctx: ssl.SSLContext,
                     client: tuple[str, int], sni: str | None) -> None:
    loop = ep.loop
    pending = Holding()
    timeout = ep.settings.read_timeout or DEFAULT_HANDSHAKE_TIMEOUT

    def feed_later() -> None:
        # start_tls scheduled the TLS protocol's connection_made; feed after it.
        loop.call_soon(feed)

    def feed() -> None:
        if transport.is_closing():
            return
        try:
            _feed(transport, hello)
        except Exception as exc:  # a broken hello: the handshake fails below
            log.debug("TLS: feeding the ClientHello failed: %r", exc)
            transport.close()

    loop.call_soon(feed_later)
    try:
        tls_transport = await loop.start_tls(transport, pending, ctx, server_side=True,  # type: ignore[arg-type]
                                             ssl_handshake_timeout=timeout)
    except (OSError, ssl.SSLError, ConnectionError, TimeoutError, asyncio.CancelledError) as exc:
        log.debug("TLS handshake with %s failed: %r", client[0], exc)
        if not transport.is_closing():
            transport.close()
        if isinstance(exc, asyncio.CancelledError):
            raise
        return
    if tls_transport is None:
        return
    if ep.shutting_down:
        tls_transport.close()
        return
    conn: H1Connection | H2Connection
    ssl_object = tls_transport.get_extra_info("ssl_object")
    if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
        conn = H2Connection(ep, handoff=client, sni=sni)
    else:
        conn = H1Connection(ep, handoff=client, sni=sni)
    pending.hand_over(tls_transport, conn)
