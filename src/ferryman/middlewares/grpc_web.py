"""``grpcWeb`` middleware: gRPC-Web requests from browsers become gRPC requests to the backend
(Traefik wraps Improbable's ``grpcweb`` handler; ``allowOrigins`` feeds its CORS origin check).

* A ``POST`` with ``Content-Type: application/grpc-web[+proto]`` (binary) or
  ``application/grpc-web-text[+proto]`` (base64) is sent on as ``application/grpc[+proto]`` with
  ``te: trailers``; the ``-text`` body is base64-decoded as it streams. The backend must speak
  HTTP/2 (``h2c://`` or ``https://``), as with Traefik.
* The gRPC response goes back as ``application/grpc-web[-text][+proto]``: messages pass through
  (base64-encoded for ``-text``), and the HTTP/2 trailers (``grpc-status``, ``grpc-message``,
  trailing metadata) become the final gRPC-Web trailer frame (flag ``0x80``, ``name: value`` lines).
  A trailers-only response keeps its status in the headers, as gRPC-Web clients expect.
* CORS: a preflight (``OPTIONS`` asking for ``x-grpc-web``) is answered here, ``204`` with
  ``Access-Control-Allow-*`` when the ``Origin`` is in ``allowOrigins`` (``*`` allows any) and
  without them otherwise; gRPC-Web responses to an allowed origin carry
  ``Access-Control-Allow-Origin``, ``-Allow-Credentials`` and ``-Expose-Headers``.
* Anything else passes through untouched, at the cost of a method comparison.

The translated request is a second :class:`~ferryman.http.exchange.Exchange` whose downstream is a
bridge back to the client's: flow control, client loss and the body stream go through it.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

from ferryman.dynamic.models import GrpcWeb
from ferryman.http.exchange import X_TE_TRAILERS, Exchange, Handler, Headers, TunnelPeer

__all__ = ["GrpcWebHandler", "build_grpc_web"]

_WEB: Final = b"application/grpc-web"
_TEXT: Final = b"application/grpc-web-text"
_GRPC: Final = b"application/grpc"
_MAX_AGE: Final = b"600"
_PREFLIGHT_VARY: Final = b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"


def _first(headers: Headers, name: bytes) -> bytes | None:
    for n, v in headers:
        if n == name:
            return v
    return None


def trailer_frame(trailers: Headers) -> bytes:
    """The gRPC-Web trailer frame: flag 0x80, 4-byte length, ``name: value\\r\\n`` lines."""
    block = b"".join(n.lower() + b": " + v + b"\r\n" for n, v in trailers)
    return b"\x80" + len(block).to_bytes(4, "big") + block


class _Decoder:
    """The client's request body, base64-decoded (``-text``) or as is, into the inner exchange."""

    __slots__ = ("_carry", "inner", "text")

    def __init__(self, inner: Exchange, text: bool) -> None:
        self.inner = inner
        self.text = text
        self._carry = b""

    def body_data(self, data: bytes) -> None:
        if not self.text:
            self.inner.feed_body(data)
            return
        data = self._carry + b"".join(data.split())
        cut = len(data) - len(data) % 4
        self._carry = data[cut:]
        if cut:
            self.inner.feed_body(_b64decode(data[:cut]))

    def body_end(self, trailers: Headers | None) -> None:
        if self._carry:
            self.inner.feed_body(_b64decode(self._carry + b"=" * (-len(self._carry) % 4)))
            self._carry = b""
        self.inner.end_body(trailers)


def _b64decode(data: bytes) -> bytes:
    """Base64 that may hold several padded segments (one per gRPC-Web message)."""
    try:
        if b"=" not in data[:-2]:
            return base64.b64decode(data)
        return b"".join(base64.b64decode(data[i:i + 4]) for i in range(0, len(data), 4))
    except binascii.Error:
        return b""


class _Bridge:
    """The inner (gRPC) exchange's downstream and sink: translates the response back to gRPC-Web
    on the client's exchange; also the client exchange's producer (flow control, client loss)."""

    __slots__ = ("_carry", "cors", "grpc", "inner", "outer", "text")

    def __init__(self, outer: Exchange, text: bool, cors: Headers | None) -> None:
        self.outer = outer
        self.text = text
        self.cors = cors
        self.grpc = False
        self._carry = b""
        self.inner: Exchange | None = None

    # -- Downstream of the inner exchange
    @property
    def write_paused(self) -> bool:
        return self.outer.downstream.write_paused

    @write_paused.setter
    def write_paused(self, value: bool) -> None:
        return  # the client's downstream owns the state

    def pause_body(self) -> None:
        self.outer.pause_body()

    def resume_body(self) -> None:
        self.outer.resume_body()

    def start_tunnel(self, peer: TunnelPeer) -> None:
        peer.downstream_lost()
        self.abort()

    def flush(self) -> None:
        self.outer.downstream.flush()

    # -- ResponseSink
    def send_info(self, status: int, headers: Headers) -> None:
        return

    def send_head(self, status: int, headers: Headers, length: int) -> None:
        inner = self.inner
        if inner is not None:
            inner.status = status
        out: Headers = []
        for name, value in headers:
            lname = name.lower()
            if lname == b"content-type" and value.startswith(_GRPC):
                self.grpc = True
                value = (_TEXT if self.text else _WEB) + value[len(_GRPC):]
            out.append((name, value))
        if self.cors is not None:
            out.extend(self.cors)
            exposed = dict.fromkeys([b"grpc-status", b"grpc-message", *(n.lower() for n, _ in headers)])
            out.append((b"Access-Control-Expose-Headers", b", ".join(exposed)))
        self.outer.send_head(status, out, -1 if self.grpc else length)

    def send_data(self, data: bytes) -> None:
        if self.grpc and self.text:
            data = self._carry + data
            cut = len(data) - len(data) % 3
            self._carry = data[cut:]
            if not cut:
                return
            data = base64.b64encode(data[:cut])
        self.outer.send_data(data)

    def send_end(self, trailers: Headers | None) -> None:
        outer = self.outer
        if self.grpc:
            frame = trailer_frame(trailers) if trailers else b""
            if self.text:
                out = base64.b64encode(self._carry) if self._carry else b""
                self._carry = b""
                if frame:
                    out += base64.b64encode(frame)
            else:
                out = frame
            if out:
                outer.send_data(out)
        if self.inner is not None:
            self.inner.done = True
        outer.send_end(None)

    def abort(self) -> None:
        if self.inner is not None:
            self.inner.done = True
        self.outer.abort()

    # -- Producer of the client's exchange
    def pause_producing(self) -> None:
        producer = self.inner.producer if self.inner is not None else None
        if producer is not None:
            producer.pause_producing()

    def resume_producing(self) -> None:
        producer = self.inner.producer if self.inner is not None else None
        if producer is not None:
            producer.resume_producing()

    def downstream_lost(self) -> None:
        inner = self.inner
        if inner is None or inner.done:
            return
        inner.done = True
        producer = inner.producer
        if producer is not None:
            producer.downstream_lost()


class GrpcWebHandler:
    __slots__ = ("allow_all", "name", "next", "origins")

    def __init__(self, name: str, config: GrpcWeb, next_handler: Handler) -> None:
        self.name = name
        self.next = next_handler
        self.allow_all = "*" in config.allow_origins
        self.origins = frozenset(o.encode() for o in config.allow_origins)

    def _allowed(self, origin: bytes | None) -> bool:
        return origin is not None and (self.allow_all or origin in self.origins)

    def handle(self, ex: Exchange) -> None:
        method = ex.method
        if method == b"POST":
            ctype = _first(ex.headers, b"content-type")
            if ctype is not None and ctype.startswith(_WEB):
                self._translate(ex, ctype)
                return
        elif method == b"OPTIONS" and self._preflight(ex):
            return
        self.next.handle(ex)

    def _preflight(self, ex: Exchange) -> bool:
        headers = ex.headers
        requested = _first(headers, b"access-control-request-method")
        wanted = _first(headers, b"access-control-request-headers") or b""
        if requested is None or b"x-grpc-web" not in wanted.lower():
            return False
        origin = _first(headers, b"origin")
        out: Headers = [(b"Vary", _PREFLIGHT_VARY)]
        if self._allowed(origin):
            assert origin is not None
            out += [(b"Access-Control-Allow-Origin", origin),
                    (b"Access-Control-Allow-Methods", requested.upper()),
                    (b"Access-Control-Allow-Headers", wanted),
                    (b"Access-Control-Allow-Credentials", b"true"),
                    (b"Access-Control-Max-Age", _MAX_AGE)]
        ex.respond(204, out, b"", content_type=None)
        return True

    def _translate(self, ex: Exchange, ctype: bytes) -> None:
        text = ctype.startswith(_TEXT)
        suffix = ctype[len(_TEXT if text else _WEB):]
        origin = _first(ex.headers, b"origin")
        cors: Headers | None = None
        if self._allowed(origin):
            assert origin is not None
            cors = [(b"Access-Control-Allow-Origin", origin), (b"Vary", b"Origin"),
                    (b"Access-Control-Allow-Credentials", b"true")]
        headers = [h for h in ex.headers if h[0] != b"content-type" and not (text and h[0] == b"content-length")]
        headers.append((b"content-type", _GRPC + suffix))
        bridge = _Bridge(ex, text, cors)
        inner = Exchange(ex.conn, bridge, ex.method, ex.target, ex.path, ex.query, b"2", headers, ex.authority,
                         -1 if text and ex.body_length else ex.body_length)
        inner.flags = ex.flags | X_TE_TRAILERS
        inner.xff_prior = ex.xff_prior
        inner.router = ex.router
        bridge.inner = inner
        ex.set_producer(bridge)
        if ex.body_length:
            ex.set_body_consumer(_Decoder(inner, text))
        self.next.handle(inner)
        if ex.service is None:
            ex.service = inner.service


def build_grpc_web(name: str, config: GrpcWeb, next_handler: Handler) -> Handler:
    return GrpcWebHandler(name, config, next_handler)
