"""One request and its response, in one HTTP-version-neutral vocabulary.

Contract (others code against it; keep it small):

``Handler.handle(ex) -> None``
    Synchronous and callback driven. A handler answers locally (:meth:`Exchange.respond`), passes
    the exchange to the next handler, or starts forwarding it; it never blocks and never awaits.
    Routing tables hold handlers (``entry.target``); middlewares wrap handlers; services are
    handlers.

:class:`Exchange` -- the request side
    ``method`` (``b"GET"``), ``target`` (the request-URI as Traefik's handlers see it: origin-form
    after path normalization), ``path`` (raw, percent-encoded, normalized), ``query`` (raw bytes
    without ``?``, ``None`` when the target had no ``?``), ``version`` (``b"1.1"``, ``b"1.0"``,
    ``b"2"``, ``b"3"``), ``headers`` (list of ``(lower-case name, value)`` byte pairs, end-to-end
    headers only: hop-by-hop and framing headers are gone, untrusted ``X-Forwarded-*`` too),
    ``authority`` (Host, or the absolute-form URL's authority; ``b""`` if none), ``conn``
    (:class:`ConnInfo`: client ip/port, entry point, TLS, scheme), ``body_length`` (``0`` none,
    ``n`` Content-Length, ``-1`` streamed/chunked), ``expect_continue``, ``upgrade`` (the
    ``Upgrade`` value when the client asked for one), ``te_trailers``; ``router``/``service``
    names for logs (``service`` is the load-balancer service that served it), ``obs`` (and the
    ``obs_*`` facts) while the entry point records metrics/access logs
    (:mod:`ferryman.observability.recorder`); ``status`` and ``sent`` (response body bytes) are kept
    by the client connection.
    :meth:`Exchange.match_request` is the ``MatchRequest`` view for routing.

    Request modification by middlewares: assign ``path``/``query``/``target``/``authority`` and use
    :meth:`set_header`, :meth:`add_header`, :meth:`remove_header`, :meth:`header_values`. The
    ``X-Forwarded-*`` headers an entry point adds (Traefik's ``forwardedheaders``) are kept out of
    ``headers`` until something asks for them: these methods call :meth:`materialize_forwarded` when
    given one of those names (:data:`ENTRY_POINT_X_HEADERS`), so a middleware sees and can override
    them exactly as in Traefik, and a request whose middlewares touch only other headers pays nothing.

Request body
    :meth:`set_body_consumer` attaches a :class:`BodyConsumer`; chunks that arrived before are
    replayed to it, then ``body_end(trailers)``. :meth:`pause_body`/:meth:`resume_body` apply
    backpressure to the client.

The response side
    Whoever produces the response writes through ``ex.sink`` (a :class:`ResponseSink`):
    ``send_info`` (1xx), ``send_head(status, headers, length)``, ``send_data``, ``send_end``,
    ``abort``. ``length`` is the body length (``-1`` = unknown: chunked on HTTP/1.1). ``headers``
    must not contain framing or hop-by-hop headers (``content-length``, ``transfer-encoding``,
    ``connection``...): the sink adds what its protocol needs. Response header names keep the case
    the backend used; compare them case-insensitively. :meth:`add_response_hook` registers a
    head hook (status/headers editing) by wrapping ``ex.sink`` -- nothing is paid when unused.
    ``ex.downstream`` is the client side itself (:class:`Downstream`): flow control
    (:meth:`set_producer` gets ``pause_producing``/``resume_producing`` when the client reads slowly,
    ``downstream_lost`` when it goes away) and ``start_tunnel`` after a ``101``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

from ferryman.http.forwarded import materialize
from ferryman.http.match import MatchView
from ferryman.proto.h1 import Headers, http_date
from ferryman.tls.verify import peer_chain

if TYPE_CHECKING:
    from ferryman.http.forwarded import ForwardingPolicy
    from ferryman.observability.recorder import Observer

__all__ = [
    "ENTRY_POINT_X_HEADERS",
    "BodyConsumer",
    "ConnInfo",
    "Downstream",
    "Exchange",
    "Handler",
    "Headers",
    "Producer",
    "RelaySink",
    "ResponseHook",
    "ResponseSink",
    "TunnelPeer",
]


class Handler(Protocol):
    """Anything that can take charge of an exchange."""

    def handle(self, ex: Exchange) -> None: ...


class BodyConsumer(Protocol):
    """Receives the request body (e.g. the upstream connection that forwards it)."""

    def body_data(self, data: bytes) -> None: ...

    def body_end(self, trailers: Headers | None) -> None: ...


class Producer(Protocol):
    """Produces the response; told to slow down, speed up, or stop."""

    def pause_producing(self) -> None: ...

    def resume_producing(self) -> None: ...

    def downstream_lost(self) -> None: ...


class TunnelPeer(Producer, Protocol):
    """The far end of an upgraded connection (raw bytes both ways)."""

    def tunnel_data(self, data: bytes) -> None: ...

    def tunnel_eof(self) -> None: ...


class ResponseSink(Protocol):
    """Where a response goes. Implemented by the client connection and by hook wrappers."""

    def send_info(self, status: int, headers: Headers) -> None: ...

    def send_head(self, status: int, headers: Headers, length: int) -> None: ...

    def send_data(self, data: bytes) -> None: ...

    def send_end(self, trailers: Headers | None) -> None: ...

    def abort(self) -> None: ...


class Downstream(ResponseSink, Protocol):
    """The client side of one exchange (an HTTP/1.1 connection, later an HTTP/2 or HTTP/3 stream)."""

    write_paused: bool

    def pause_body(self) -> None: ...

    def resume_body(self) -> None: ...

    def start_tunnel(self, peer: TunnelPeer) -> None: ...

    def flush(self) -> None: ...


#: ``hook(ex, status, headers) -> status``; may edit ``headers`` in place.
ResponseHook = Callable[["Exchange", int, Headers], int]


#: The headers the entry point adds (:func:`~ferryman.http.forwarded.materialize`): reading or editing
#: one of them materializes them all; any other header is read and edited without that cost (the
#: forwarder then keeps its per-connection serialized block).
ENTRY_POINT_X_HEADERS = frozenset({b"x-forwarded-proto", b"x-forwarded-port", b"x-forwarded-scheme", b"x-scheme",
                                   b"x-forwarded-host", b"x-forwarded-for", b"x-forwarded-server", b"x-real-ip"})

#: Request body bytes kept while no consumer is attached (e.g. during a dial) before pausing the client.
BODY_BUFFER_LIMIT = 256 * 1024

# Exchange.flags bits.
X_EXPECT = 1
X_WEBSOCKET = 2
X_TE_TRAILERS = 4
X_XF_MATERIALIZED = 8
X_OMIT_XFF = 16
X_XF_SHIFT = 8
#: Any of these means the per-connection X-Forwarded-* cache cannot be used.
X_XF_SLOW = X_WEBSOCKET | X_XF_MATERIALIZED | X_OMIT_XFF | (0xFF << X_XF_SHIFT)


class ConnInfo:
    """Facts about the client connection, shared by all its exchanges (built once per connection)."""

    __slots__ = (
        "client_ip", "client_ip_b", "client_port", "entrypoint", "forwarding", "host_canon",
        "host_raw", "local_port", "scheme", "ssl_object", "tls", "tls_cache", "tls_names_", "trusted", "xf_block",
        "xf_key",
    )

    def __init__(self, entrypoint: str, client_ip: str, client_port: int, tls: bool,
                 forwarding: ForwardingPolicy, local_port: int = 0) -> None:
        self.entrypoint = entrypoint
        self.client_ip = client_ip
        self.client_ip_b = client_ip.encode()
        self.client_port = client_port
        self.tls = tls
        self.scheme = b"https" if tls else b"http"
        self.local_port = local_port
        self.forwarding = forwarding
        #: Whether incoming X-Forwarded-* from this peer are kept (trustedIPs / insecure).
        self.trusted = forwarding.trusts(client_ip)
        # Per-connection caches (keyed by the raw Host): canonical host, forwarded-headers block.
        self.host_raw: bytes | None = None
        self.host_canon = ""
        self.xf_key: bytes | None = None
        self.xf_block = b""
        #: The connection's ``ssl.SSLObject`` (TLS only; logs, metrics, the peer certificate).
        self.ssl_object: Any = None
        #: Per-connection values derived from the peer certificate, by whoever computes them.
        self.tls_cache: dict[object, Any] | None = None
        self.tls_names_: tuple[str, str] | None = None

    def tls_info(self) -> tuple[str, str]:
        """``(version, cipher)`` as Traefik names them (``"1.3"``, ``"TLS_AES_128_GCM_SHA256"``);
        ``("", "")`` on a plain connection."""
        obj = self.ssl_object
        if obj is None:
            return ("1.3", "") if self.tls else ("", "")  # QUIC: always TLS 1.3
        from ferryman.tls.store import go_cipher_name

        version = str(obj.version() or "")
        cipher = obj.cipher()
        return version.removeprefix("TLSv"), go_cipher_name(cipher[0]) if cipher else ""

    def tls_names(self) -> tuple[str, str]:
        """:meth:`tls_info`, computed once per connection (metrics and access logs ask per request)."""
        names = self.tls_names_
        if names is None:
            names = self.tls_names_ = self.tls_info()
        return names

    def peer_certificate(self) -> bytes | None:
        """The client certificate (DER) of a TLS connection, ``None`` when it sent none."""
        obj = self.ssl_object
        if obj is None:
            return None
        try:
            der: bytes | None = obj.getpeercert(binary_form=True)
        except ValueError:  # the handshake is not complete (cannot happen once serving requests)
            return None
        return der or None

    def peer_certificates(self) -> list[bytes]:
        """Every certificate the client sent, its own first (Go's ``PeerCertificates``); ``[]``
        without one. The rest of the chain is read through :func:`ferryman.tls.verify.peer_chain`
        (only the leaf when that is unavailable)."""
        leaf = self.peer_certificate()
        if leaf is None:
            return []
        return [leaf, *(peer_chain(self.ssl_object) or ())]

    def set_client(self, ip: str, port: int) -> None:
        """The client address changed (PROXY protocol): recompute what depends on it."""
        self.client_ip = ip
        self.client_ip_b = ip.encode()
        self.client_port = port
        self.trusted = self.forwarding.trusts(ip)
        self.xf_key = None


class Exchange:
    """One request/response. See the module docstring for the contract."""

    __slots__ = (
        "_body_buf", "_body_done", "_buf_bytes", "_consumer", "_hooks", "_match", "_producer", "authority",
        "body_length", "conn", "done", "downstream", "flags", "headers", "method", "obs", "obs_retries",
        "obs_start", "obs_target", "obs_upstream", "obs_user", "path", "query", "resp_headers", "resp_length",
        "router", "sent", "service", "sink", "status", "target", "trailers", "upgrade", "version", "xff_prior",
    )

    # Set by ``Observer.begin`` (and read) only while the exchange is recorded (``obs``).
    obs_start: int
    obs_target: bytes
    obs_user: str
    obs_upstream: str
    obs_retries: int
    resp_headers: Headers | None
    resp_length: int

    def __init__(self, conn: ConnInfo, downstream: Downstream, method: bytes, target: bytes,
                 path: bytes, query: bytes | None, version: bytes, headers: Headers,
                 authority: bytes, body_length: int) -> None:
        self.conn = conn
        self.downstream = downstream
        self.sink: ResponseSink = downstream
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.authority = authority
        self.body_length = body_length
        #: ``X_*`` bits (the boolean properties below) and ``xf_present << X_XF_SHIFT``.
        self.flags = 0
        self.upgrade: bytes | None = None
        self.xff_prior: bytes | None = None
        self.router: str | None = None
        #: The entry point's :class:`~ferryman.observability.recorder.Observer` while the exchange
        #: is being recorded (metrics, access logs), else ``None``. ``Observer.begin`` also sets
        #: ``obs_start``, ``obs_target``, ``obs_user``, ``obs_upstream`` and ``obs_retries``; the
        #: client connection sets ``resp_headers`` and ``resp_length`` with the head while ``obs``
        #: is set.
        self.obs: Observer | None = None
        self.service: str | None = None
        self.status = 0
        #: response body bytes handed to the client connection (counted by it)
        self.sent = 0
        self.done = False
        self.trailers: Headers | None = None
        self._match: MatchView | None = None
        self._consumer: BodyConsumer | None = None
        self._body_buf: list[bytes] | None = None
        self._body_done = body_length == 0
        self._producer: Producer | None = None
        self._hooks: list[ResponseHook] | None = None

    # ------------------------------------------------------------------ flag properties

    def _set_flag(self, bit: int, on: bool) -> None:
        self.flags = self.flags | bit if on else self.flags & ~bit

    @property
    def expect_continue(self) -> bool:
        """The client sent ``Expect: 100-continue`` (HTTP/1.1)."""
        return bool(self.flags & X_EXPECT)

    @expect_continue.setter
    def expect_continue(self, on: bool) -> None:
        self._set_flag(X_EXPECT, on)

    @property
    def websocket(self) -> bool:
        """An ``Upgrade: websocket`` request (``Connection: upgrade``)."""
        return bool(self.flags & X_WEBSOCKET)

    @websocket.setter
    def websocket(self, on: bool) -> None:
        self._set_flag(X_WEBSOCKET, on)

    @property
    def te_trailers(self) -> bool:
        """The client accepts trailers (``TE: trailers``)."""
        return bool(self.flags & X_TE_TRAILERS)

    @te_trailers.setter
    def te_trailers(self, on: bool) -> None:
        self._set_flag(X_TE_TRAILERS, on)

    @property
    def xf_materialized(self) -> bool:
        """The entry point's X-Forwarded-* are in :attr:`headers` (see :meth:`materialize_forwarded`)."""
        return bool(self.flags & X_XF_MATERIALIZED)

    @xf_materialized.setter
    def xf_materialized(self, on: bool) -> None:
        self._set_flag(X_XF_MATERIALIZED, on)

    @property
    def omit_xff(self) -> bool:
        """Do not add the peer to ``X-Forwarded-For`` (Go's ``Header["X-Forwarded-For"] = nil``)."""
        return bool(self.flags & X_OMIT_XFF)

    @omit_xff.setter
    def omit_xff(self, on: bool) -> None:
        self._set_flag(X_OMIT_XFF, on)

    @property
    def xf_present(self) -> int:
        """``XF_*`` bits (:mod:`ferryman.http.forwarded`): forwarded headers a trusted peer sent."""
        return self.flags >> X_XF_SHIFT

    @xf_present.setter
    def xf_present(self, bits: int) -> None:
        self.flags = (self.flags & ((1 << X_XF_SHIFT) - 1)) | (bits << X_XF_SHIFT)

    # ------------------------------------------------------------------ connection facts

    @property
    def client_ip(self) -> str:
        return self.conn.client_ip

    @property
    def client_port(self) -> int:
        return self.conn.client_port

    @property
    def entrypoint(self) -> str:
        return self.conn.entrypoint

    @property
    def tls(self) -> bool:
        return self.conn.tls

    @property
    def scheme(self) -> bytes:
        return self.conn.scheme

    def match_request(self) -> MatchView:
        """The ``MatchRequest`` view (str fields, computed lazily) the routing table matches on."""
        view = self._match
        if view is None:
            view = self._match = MatchView(self)
        return view

    # ------------------------------------------------------------------ request headers

    def materialize_forwarded(self) -> None:
        """Put the ``X-Forwarded-*`` headers the entry point adds into :attr:`headers` (idempotent)."""
        if not self.flags & X_XF_MATERIALIZED:
            materialize(self)

    def header_values(self, name: bytes) -> list[bytes]:
        """Values of request header ``name`` (lower-case), as a middleware sees them in Traefik."""
        if name in ENTRY_POINT_X_HEADERS:
            self.materialize_forwarded()
        return [v for n, v in self.headers if n == name]

    def header(self, name: bytes) -> bytes | None:
        """First value of request header ``name`` (lower-case) or ``None``."""
        if name in ENTRY_POINT_X_HEADERS:
            self.materialize_forwarded()
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def set_header(self, name: bytes, value: bytes) -> None:
        """Replace every value of ``name`` (lower-case) with ``value``."""
        if name in ENTRY_POINT_X_HEADERS:
            self.materialize_forwarded()
        headers = self.headers
        for n, _ in headers:
            if n == name:
                headers = self.headers = [h for h in headers if h[0] != name]
                break
        headers.append((name, value))
        if name == b"x-forwarded-for":
            self.omit_xff = False

    def add_header(self, name: bytes, value: bytes) -> None:
        if name in ENTRY_POINT_X_HEADERS:
            self.materialize_forwarded()
        self.headers.append((name, value))

    def remove_header(self, name: bytes) -> None:
        if name in ENTRY_POINT_X_HEADERS:
            self.materialize_forwarded()
        self.headers = [h for h in self.headers if h[0] != name]

    # ------------------------------------------------------------------ request body

    def set_body_consumer(self, consumer: BodyConsumer) -> None:
        """Deliver the request body to ``consumer`` (buffered chunks first, then the end)."""
        self._consumer = consumer
        buf = self._body_buf
        if buf is not None:
            self._body_buf = None
            for data in buf:
                consumer.body_data(data)
            if self._buf_bytes > BODY_BUFFER_LIMIT and not self.done:
                self.downstream.resume_body()
        if self._body_done and self._consumer is consumer:
            consumer.body_end(self.trailers)

    def replay_body(self, chunks: Iterable[bytes]) -> None:
        """The request body was read whole by a middleware (forwardAuth's ``forwardBody``,
        ``buffering``): deliver ``chunks`` (iterated once, lazily: e.g. read back from a file), then
        the end, to the next :meth:`set_body_consumer`."""
        self._consumer = None
        self._body_buf = cast(list[bytes], chunks)
        self._buf_bytes = 0
        self._body_done = True

    def unread_body(self, chunks: list[bytes]) -> None:
        """A middleware read the start of the body (``chunks``) and gives it back: the next
        :meth:`set_body_consumer` gets them, then the rest as it arrives."""
        self._consumer = None
        self._body_buf = chunks
        self._buf_bytes = sum(map(len, chunks))

    def feed_body(self, data: bytes) -> None:
        """Called by the downstream for each body chunk (buffered, bounded, until a consumer is set)."""
        consumer = self._consumer
        if consumer is not None:
            consumer.body_data(data)
            return
        if self._body_buf is None:
            self._body_buf = [data]
            self._buf_bytes = len(data)
        else:
            self._body_buf.append(data)
            self._buf_bytes += len(data)
        if self._buf_bytes > BODY_BUFFER_LIMIT:
            self.downstream.pause_body()

    def end_body(self, trailers: Headers | None) -> None:
        """Called by the downstream when the request body is complete."""
        self._body_done = True
        self.trailers = trailers
        consumer = self._consumer
        if consumer is not None:
            consumer.body_end(trailers)

    @property
    def body_complete(self) -> bool:
        return self._body_done

    def pause_body(self) -> None:
        self.downstream.pause_body()

    def resume_body(self) -> None:
        self.downstream.resume_body()

    # ------------------------------------------------------------------ response side

    def set_producer(self, producer: Producer | None) -> None:
        """Register who produces the response (flow control and client-gone notifications)."""
        self._producer = producer
        if producer is not None and self.downstream.write_paused:
            producer.pause_producing()

    @property
    def producer(self) -> Producer | None:
        return self._producer

    def add_response_hook(self, hook: ResponseHook) -> None:
        """Run ``hook(ex, status, headers) -> status`` on the final response head."""
        if self._hooks is None:
            self._hooks = [hook]
            self.sink = _HookedSink(self, self.sink)
        else:
            self._hooks.append(hook)

    def send_info(self, status: int, headers: Headers) -> None:
        if not self.done:
            self.sink.send_info(status, headers)

    def send_head(self, status: int, headers: Headers, length: int = -1) -> None:
        """Start the response (ignored once the exchange is over: a late writer cannot reach the
        connection's next exchange)."""
        if not self.done:
            self.sink.send_head(status, headers, length)

    def send_data(self, data: bytes) -> None:
        self.sink.send_data(data)

    def send_end(self, trailers: Headers | None = None) -> None:
        self.sink.send_end(trailers)

    def abort(self) -> None:
        self.sink.abort()

    def respond(self, status: int, headers: Sequence[tuple[bytes, bytes]] = (), body: bytes = b"",
                content_type: bytes | None = b"text/plain; charset=utf-8") -> None:
        """Answer locally like Go's server: adds ``Content-Type`` (unless given or ``None``),
        ``Date`` and the length. Does nothing once the exchange is over or its head was sent.

        Traefik turns Go's content sniffing off, so a body written without an explicit type (the
        proxy's 502/504, redirects) has no ``Content-Type``: pass ``content_type=None`` for those;
        ``http.Error``-style answers (404, 503) keep the default ``text/plain; charset=utf-8``."""
        if self.done or self.status:
            return
        out: Headers = []
        if content_type is not None:
            for name, _ in headers:
                if name.lower() == b"content-type":
                    break
            else:
                out.append((b"Content-Type", content_type))
        out.extend(headers)
        out.append((b"Date", http_date()))
        sink = self.sink
        sink.send_head(status, out, len(body))
        if body:
            sink.send_data(body)
        sink.send_end(None)


class RelaySink:
    """A :class:`ResponseSink` that passes everything to ``_next``: subclass it and override only
    what a wrapper changes or watches."""

    __slots__ = ("_next",)

    def __init__(self, nxt: ResponseSink) -> None:
        self._next = nxt

    def send_info(self, status: int, headers: Headers) -> None:
        self._next.send_info(status, headers)

    def send_head(self, status: int, headers: Headers, length: int) -> None:
        self._next.send_head(status, headers, length)

    def send_data(self, data: bytes) -> None:
        self._next.send_data(data)

    def send_end(self, trailers: Headers | None) -> None:
        self._next.send_end(trailers)

    def abort(self) -> None:
        self._next.abort()


class _HookedSink(RelaySink):
    """Runs the exchange's response hooks on the final head, then passes everything through."""

    __slots__ = ("_ex",)

    def __init__(self, ex: Exchange, nxt: ResponseSink) -> None:
        super().__init__(nxt)
        self._ex = ex

    def send_head(self, status: int, headers: Headers, length: int) -> None:
        ex = self._ex
        for hook in ex._hooks or ():
            status = hook(ex, status, headers)
        self._next.send_head(status, headers, length)
