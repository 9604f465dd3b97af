"""HTTP/3 on an entry point (``entryPoints.<n>.http3``): QUIC on the same port over UDP (aioquic),
requests turned into the same :class:`~ferryman.http.exchange.Exchange` events as HTTP/1.1 and 2.

* Only the entry point's TLS routers answer (Traefik: "only TLS routers are reachable over H3").
* The certificate is chosen from the ClientHello's SNI with the entry point's TLS store (exact name,
  wildcard, default certificate; ``sniStrict`` refuses), before aioquic answers the ClientHello
  (:class:`_SNIQuicConnection`). What differs from TCP, because of aioquic: QUIC is TLS 1.3 only,
  so ``minVersion``/``maxVersion``/``cipherSuites`` of TLS 1.2 do not apply; aioquic cannot ask for
  client certificates, so a handshake for a host whose TLS options require one
  (``RequireAnyClientCert``, ``RequireAndVerifyClientCert``, ``VerifyClientCertIfGiven``) is
  refused (the client falls back to TCP, where the policy is enforced) — never served without it.
* Responses: the head is held until data, the end or a flush, so a trailers-only response is one
  HEADERS frame (as on HTTP/2); trailers go out when the client sent ``te: trailers``.
  aioquic buffers stream data without limit, so the producer is paused past :data:`HIGH_WATER`
  unacknowledged bytes per stream and resumed as ACKs drain it. Request bodies are delivered as
  aioquic receives them (its stream windows grow as data is read; no pause per stream).
* Shutdown: GOAWAY on the control stream, open streams finish, then CONNECTION_CLOSE.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import aioquic.asyncio.server as _aioquic_server
from aioquic import tls as _tls
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer
from aioquic.buffer import encode_uint_var
from aioquic.h3.connection import H3_ALPN, FrameType, H3Connection, encode_frame
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import ConnectionTerminated, ProtocolNegotiated, StreamReset
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from ferryman.http.exchange import X_TE_TRAILERS, ConnInfo, Exchange, Headers, TunnelPeer
from ferryman.server.h1 import _lose as lose_exchange
from ferryman.server.h2 import Reject, build_exchange, clean_response_headers, dispatch, status_bytes
from ferryman.tls.clienthello import ClientHello, peek_client_hello
from ferryman.tls.store import default_certificate

if TYPE_CHECKING:
    from ferryman.server.entrypoint import EntryPoint
    from ferryman.tls.store import LoadedCert

log = logging.getLogger("ferryman.server")

__all__ = ["HIGH_WATER", "H3Protocol", "alt_svc", "start_http3"]

HIGH_WATER: Final = 256 * 1024
LOW_WATER: Final = 64 * 1024
_H3_INTERNAL_ERROR: Final = 0x102
_H3_REQUEST_CANCELLED: Final = 0x10C
_BODYLESS: Final = frozenset((204, 304))
_REQUIRES_CLIENT_CERT: Final = frozenset(("RequireAnyClientCert", "RequireAndVerifyClientCert",
                                          "VerifyClientCertIfGiven"))


def alt_svc(port: int) -> bytes:
    """Traefik's (quic-go's) ``Alt-Svc`` value for TLS responses of an HTTP/3 entry point."""
    return b'h3=":%d"; ma=2592000' % port


# =========================================================================== certificate by SNI

_KEYS: dict[int, tuple[Any, list[Any], Any]] = {}


def _crypto_objects(cert: LoadedCert) -> tuple[Any, list[Any], Any]:
    found = _KEYS.get(id(cert))
    if found is None:
        chain = x509.load_pem_x509_certificates(cert.chain_pem)
        key = load_pem_private_key(cert.key_pem, password=None)
        found = (chain[0], chain[1:], key)
        if len(_KEYS) > 1024:
            _KEYS.clear()
        _KEYS[id(cert)] = found
    return found


def _choose(ep: EntryPoint, sni: str | None) -> tuple[Any, list[Any], Any] | None:
    serving = ep.tls
    if serving is None:  # no configuration applied yet: Traefik's default certificate
        return _crypto_objects(default_certificate())
    store = serving.store
    option = serving.host_options.get(sni, "default") if sni else "default"
    opts = store.options.get(option) or store.options["default"]
    cert = store.lookup(sni) if sni else None
    if cert is None and opts.sni_strict:
        return None
    if opts.client_auth in _REQUIRES_CLIENT_CERT:
        log.debug("HTTP/3: refusing a handshake for %r: its TLS options need client certificates", sni)
        return None
    return _crypto_objects(cert if cert is not None else store.default)


def _sni(message: bytes) -> str | None:
    record = b"\x16\x03\x01" + len(message).to_bytes(2, "big") + message
    hello = peek_client_hello(record)
    return hello.sni if isinstance(hello, ClientHello) else None


class _SNIQuicConnection(QuicConnection):
    """aioquic's server connection, with the certificate set from the SNI before the ClientHello is
    answered (aioquic takes one certificate per configuration)."""

    ferryman_sni: str | None = None

    def _initialize(self, peer_cid: bytes) -> None:
        super()._initialize(peer_cid)
        ep = getattr(self._configuration, "ferryman_ep", None)
        if ep is None or self._is_client:
            return
        context = self.tls
        original = context.handle_message
        pending = bytearray()
        state = [False]  # certificate chosen

        def handle_message(input_data: bytes, output_buf: Any) -> None:
            if not state[0]:
                pending.extend(input_data)
                if len(pending) >= 4 and len(pending) >= 4 + int.from_bytes(pending[1:4], "big"):
                    sni = _sni(bytes(pending))
                    self.ferryman_sni = sni
                    chosen = _choose(ep, sni)
                    if chosen is None:
                        raise _tls.AlertHandshakeFailure("no certificate for this server name over HTTP/3")
                    context.certificate, context.certificate_chain, context.certificate_private_key = chosen
                    state[0] = True
            original(input_data, output_buf)

        context.handle_message = handle_message  # type: ignore[method-assign]


# =========================================================================== streams


class H3Stream:
    """One request stream: the :class:`~ferryman.http.exchange.Downstream` of its exchange."""

    __slots__ = ("_ended", "_head", "body_paused", "ex", "proto", "sid", "write_paused")

    def __init__(self, proto: H3Protocol, sid: int) -> None:
        self.proto = proto
        self.sid = sid
        self.ex: Exchange | None = None
        self.write_paused = False
        self.body_paused = False
        self._head: Headers | None = None
        self._ended = False

    def send_info(self, status: int, headers: Headers) -> None:
        if self._ended or status == 101 or self.proto.h3 is None:
            return
        self.proto.h3.send_headers(self.sid, [(b":status", status_bytes(status)), *clean_response_headers(headers)])
        self.proto.wake()

    def send_head(self, status: int, headers: Headers, length: int) -> None:
        ex = self.ex
        if self._ended or ex is None or ex.status:
            return
        ex.status = status
        if ex.obs is not None:
            ex.resp_headers = headers
            ex.resp_length = length
        out: Headers = [(b":status", status_bytes(status)), *clean_response_headers(headers)]
        if length >= 0 and status not in _BODYLESS:
            out.append((b"content-length", b"%d" % length))
        self._head = out
        self.proto.wake()

    def _send_head(self, end: bool) -> None:
        head = self._head
        h3 = self.proto.h3
        if head is not None and h3 is not None:
            self._head = None
            h3.send_headers(self.sid, head, end_stream=end)

    def send_data(self, data: bytes) -> None:
        ex = self.ex
        h3 = self.proto.h3
        if self._ended or not data or h3 is None or (ex is not None and (ex.method == b"HEAD"
                                                                         or ex.status in _BODYLESS)):
            return
        if ex is not None:
            ex.sent += len(data)
        try:
            self._send_head(False)
            h3.send_data(self.sid, data, end_stream=False)
        except Exception as exc:  # stream reset by the peer meanwhile
            log.debug("HTTP/3: stream %d: %r", self.sid, exc)
            self._lost()
            return
        self.proto.wake()
        if not self.write_paused and self.proto.buffered(self.sid) > HIGH_WATER:
            self.write_paused = True
            self.proto.paused.add(self)
            producer = ex.producer if ex is not None else None
            if producer is not None:
                producer.pause_producing()

    def send_end(self, trailers: Headers | None) -> None:
        ex = self.ex
        h3 = self.proto.h3
        if self._ended or h3 is None:
            return
        if ex is not None and not ex.status:
            ex.respond(502, (), b"", content_type=None)
            return
        self._ended = True
        if ex is not None:
            ex.done = True
        keep = trailers if trailers and ex is not None and ex.flags & X_TE_TRAILERS else None
        try:
            if self._head is not None and keep is None:
                self._send_head(True)
            else:
                self._send_head(False)
                if keep:
                    h3.send_headers(self.sid, clean_response_headers(keep), end_stream=True)
                else:
                    h3.send_data(self.sid, b"", end_stream=True)
        except Exception as exc:
            log.debug("HTTP/3: stream %d: %r", self.sid, exc)
        self.proto.stream_done(self)
        if ex is not None and ex.obs is not None:
            ex.obs.finish(ex, trailers)

    def abort(self) -> None:
        if self._ended:
            return
        self._ended = True
        self.proto.reset(self, _H3_INTERNAL_ERROR)

    def pause_body(self) -> None:
        self.body_paused = True

    def resume_body(self) -> None:
        self.body_paused = False

    def start_tunnel(self, peer: TunnelPeer) -> None:
        peer.downstream_lost()
        self.abort()

    def flush(self) -> None:
        if self._head is not None and not self._ended:
            self._send_head(False)
        self.proto.wake()

    def _lost(self) -> None:
        self._ended = True
        if self.ex is not None:
            lose_exchange(self.ex)
        self.proto.stream_done(self)


# =========================================================================== connections


class H3Protocol(QuicConnectionProtocol):
    """One QUIC connection serving HTTP/3."""

    def __init__(self, quic: QuicConnection, stream_handler: Any = None, *, ep: EntryPoint) -> None:
        super().__init__(quic, stream_handler)
        self.ep = ep
        self.h3: H3Connection | None = None
        self.info: ConnInfo | None = None
        self.streams: dict[int, H3Stream] = {}
        self.paused: set[H3Stream] = set()
        self._wake = False
        self._goaway = False
        self._draining = False
        self._finished = False
        self.idle_since = ep.now
        ep.connections.add(self)

    # -- asyncio / aioquic
    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        if self.info is None:
            ep = self.ep
            self.info = ConnInfo(ep.settings.name, str(addr[0]), int(addr[1]), True, ep.forwarding, ep.bound_port)
        super().datagram_received(data, addr)
        if self._draining and not self.streams:
            self._close()
        if self.paused:
            for stream in list(self.paused):
                if self.buffered(stream.sid) <= LOW_WATER:
                    self.paused.discard(stream)
                    stream.write_paused = False
                    ex = stream.ex
                    producer = ex.producer if ex is not None else None
                    if producer is not None:
                        producer.resume_producing()

    def quic_event_received(self, event: Any) -> None:
        if isinstance(event, ProtocolNegotiated):
            if event.alpn_protocol in H3_ALPN:
                self.h3 = H3Connection(self._quic)
        elif isinstance(event, StreamReset):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream._lost()
        elif isinstance(event, ConnectionTerminated):
            self._terminated()
            return
        h3 = self.h3
        if h3 is not None:
            for h3_event in h3.handle_event(event):
                if isinstance(h3_event, HeadersReceived):
                    self._on_headers(h3_event)
                elif isinstance(h3_event, DataReceived):
                    stream = self.streams.get(h3_event.stream_id)
                    ex = stream.ex if stream is not None else None
                    if ex is not None and not ex.done:
                        if h3_event.data:
                            ex.feed_body(h3_event.data)
                        if h3_event.stream_ended and not ex.body_complete:
                            ex.end_body(None)

    def buffered(self, sid: int) -> int:
        stream = self._quic._streams.get(sid)
        if stream is None:
            return 0
        return len(stream.sender._buffer)

    def wake(self) -> None:
        """Send what was queued, once per loop turn."""
        if not self._wake:
            self._wake = True
            self._loop.call_soon(self._transmit)

    def _transmit(self) -> None:
        self._wake = False
        if not self._finished:
            self.transmit()

    # -- requests
    def _on_headers(self, event: HeadersReceived) -> None:
        sid = event.stream_id
        stream = self.streams.get(sid)
        if stream is not None and stream.ex is not None:
            # trailers of the request
            ex = stream.ex
            if not ex.body_complete:
                ex.end_body([(n, v) for n, v in event.headers if n[:1] != b":"] or None)
            return
        if self._goaway:
            self._quic.reset_stream(sid, _H3_REQUEST_CANCELLED)
            return
        stream = H3Stream(self, sid)
        self.streams[sid] = stream
        info = self.info
        assert info is not None
        ep = self.ep
        try:
            ex = build_exchange(ep, stream, event.headers, info, event.stream_ended, b"3")
        except Reject as rej:
            ex = Exchange(info, stream, b"GET", b"/", b"/", None, b"3", [], b"", 0)
            stream.ex = ex
            ex.respond(rej.status, (), b"", content_type=None)
            return
        stream.ex = ex
        if event.stream_ended:
            ex._body_done = True
        dispatch(ep, stream, ex, getattr(self._quic, "ferryman_sni", None))

    def stream_done(self, stream: H3Stream) -> None:
        self.paused.discard(stream)
        if self.streams.pop(stream.sid, None) is not None and not self.streams:
            self.idle_since = self.ep.now
            if self._goaway or self.ep.shutting_down:
                self._close()
        self.wake()

    def reset(self, stream: H3Stream, code: int) -> None:
        try:
            self._quic.reset_stream(stream.sid, code)
        except Exception as exc:
            log.debug("HTTP/3: reset %d: %r", stream.sid, exc)
        stream._lost()

    # -- lifecycle (ServedConnection)
    def _send_goaway(self) -> None:
        h3 = self.h3
        if self._goaway or self._finished:
            return
        self._goaway = True
        if h3 is not None and h3._local_control_stream_id is not None:
            last = max(self.streams, default=0)
            self._quic.send_stream_data(h3._local_control_stream_id,
                                        encode_frame(FrameType.GOAWAY, encode_uint_var(last + 4 if self.streams else 0)))
        self.wake()

    def _close(self, force: bool = False) -> None:
        """CONNECTION_CLOSE once every stream byte sent was acknowledged (aioquic stops sending
        stream data when closing), or at once when ``force``."""
        if self._finished:
            return
        self._draining = True
        self.transmit()
        if not force and not all(st.sender.buffer_is_empty for st in self._quic._streams.values()):
            return  # datagram_received retries as ACKs arrive
        self._finished = True
        self._quic.close()
        self.transmit()
        self._terminated()

    def _terminated(self) -> None:
        self._finished = True
        streams = list(self.streams.values())
        self.streams.clear()
        for stream in streams:
            stream._lost()
        ep = self.ep
        ep.connections.discard(self)
        ep.connection_closed()

    def check_deadlines(self, now: float) -> None:
        return  # aioquic's idle timeout closes silent connections

    def close_if_idle(self) -> bool:
        if self._finished:
            return True
        self._send_goaway()
        if not self.streams:
            self._close()
            return True
        return False

    def force_close(self) -> None:
        self._close(force=True)


def start_http3(ep: EntryPoint, loop: asyncio.AbstractEventLoop) -> Any:
    """Start the QUIC listener on the entry point's port (UDP); returns the coroutine to await."""
    config = QuicConfiguration(is_client=False, alpn_protocols=list(H3_ALPN),
                               idle_timeout=ep.settings.idle_timeout or 60.0, max_datagram_frame_size=None)
    # aioquic wants a certificate up front; the one for each handshake is chosen from its SNI.
    config.certificate, config.certificate_chain, config.private_key = _crypto_objects(default_certificate())
    config.ferryman_ep = ep  # type: ignore[attr-defined]  # read by _SNIQuicConnection
    host = ep.settings.host or "::"
    return loop.create_datagram_endpoint(
        lambda: QuicServer(configuration=config, create_protocol=partial(H3Protocol, ep=ep)),
        local_addr=(host, ep.bound_port))


# aioquic's QuicServer builds QuicConnection objects itself: give it the SNI-aware subclass (it only
# differs for configurations that carry an entry point).
setattr(_aioquic_server, "QuicConnection", _SNIQuicConnection)  # noqa: B010
