"""The client side of HTTP/1.1: one asyncio Protocol per connection, httptools callbacks, no tasks.

A :class:`H1Connection` parses requests with ``httptools.HttpRequestParser``, turns each into an
:class:`~ferryman.http.exchange.Exchange`, routes it with the entry point's current table and hands
it to the matched handler, all inside the parser callbacks. It is the exchange's
:class:`~ferryman.http.exchange.Downstream`: responses come back through ``send_head``/
``send_data``/``send_end``, are framed (Content-Length, chunked, or close-delimited for HTTP/1.0)
and written with as few ``transport.write`` calls as possible (the head is held back and written
with the first body bytes or at :meth:`flush`).

Behaviour (Traefik/Go ``net/http`` semantics):

* keep-alive and pipelining: requests are answered in order; a request that starts while another
  is in flight is parsed from what already arrived and queued, and reading pauses until it is served.
* request bodies stream to the handler's consumer; ``pause_body``/``resume_body`` pause the socket.
  Response backpressure: ``pause_writing`` reaches the exchange's producer.
* a response that ends before its request body is discarded (up to 256 KiB, else close); with
  ``Expect: 100-continue`` and no ``100`` sent the connection closes instead (Go does the same).
* ``Upgrade``: the bytes after the request are held; after a ``101`` the connection becomes a raw
  tunnel to the exchange's :class:`~ferryman.http.exchange.TunnelPeer`; otherwise it closes after
  the response.
* errors as Go writes them: 400 (malformed, Content-Length with Transfer-Encoding, bad chunk size,
  missing/duplicate Host, fragment in the path), 431 (``maxHeaderBytes`` + 4096, like Go), 501
  (transfer coding other than ``chunked``); 404 ``404 page not found`` when nothing matches.
* timeouts: ``readTimeout`` covers one whole request (head and body, from its first byte; from
  accept for the first one), ``idleTimeout`` the wait between requests (``readTimeout`` when 0),
  ``writeTimeout`` the time from the request head to the end of the response.
* ``keepAliveMaxRequests``/``keepAliveMaxTime`` and shutdown send ``Connection: close``.
* PROXY protocol v1/v2 (when the entry point enables it): the header is parsed and removed; its
  source address replaces the peer's only when the peer is trusted (go-proxyproto USE/IGNORE).
* TLS and plain HTTP on one port (when the entry point has TLS, ``ep.tls``): after the PROXY header
  (if any) the first byte is peeked; ``0x16`` starts a TLS ClientHello, which is read whole (sans-I/O,
  :mod:`ferryman.tls.clienthello`) to pick the ``SSLContext`` for its SNI, then the connection is
  handed to :mod:`ferryman.server.tls` (``loop.start_tls`` on the same transport) and continues as a
  new ``H1Connection`` with ``ConnInfo.tls``; it routes with ``ep.tls_routes``, plain connections with
  ``ep.routes``. Entry points without TLS skip the peek.
* h2c: a connection whose first bytes are the HTTP/2 preface (llhttp stops on ``PRI``: found on the
  error path, nothing is checked for ordinary requests), or whose first request carries ``Upgrade:
  h2c`` with ``HTTP2-Settings`` and no body (checked among the rare header flags; ``101`` then the
  request becomes stream 1), continues as a :class:`~ferryman.server.h2.H2Connection`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any, Final

from httptools import (
    HttpParserCallbackError,
    HttpParserError,
    HttpParserInvalidMethodError,
    HttpParserUpgrade,
    HttpRequestParser,
)

from ferryman.errors import ProtocolError
from ferryman.http.exchange import (
    X_EXPECT,
    X_TE_TRAILERS,
    X_WEBSOCKET,
    X_XF_SHIFT,
    ConnInfo,
    Exchange,
    Headers,
    TunnelPeer,
)
from ferryman.http.forwarded import (
    MANAGED_X_HEADERS,
    XF_FOR,
    XF_HOST,
    XF_PORT,
    XF_PROTO,
    XF_REAL_IP,
    underscore_variants,
)
from ferryman.http.match import MatchView
from ferryman.http.paths import BadTarget, normalize_path, plain_path, split_target
from ferryman.observability.recorder import lost as observed_lost
from ferryman.proto.h1 import (
    LAST_CHUNK,
    STATUS_LINES,
    connection_tokens,
    error_response,
    last_chunk_with_trailers,
    serialize_headers,
    status_line,
)
from ferryman.proto.proxy_protocol import NEED_MORE, NOT_PROXY, parse_proxy_header
from ferryman.tls.clienthello import NEED_MORE as HELLO_NEED_MORE
from ferryman.tls.clienthello import ClientHello, peek_client_hello

if TYPE_CHECKING:
    from ferryman.server.entrypoint import EntryPoint

log = logging.getLogger("ferryman.server")

#: A fatal TLS alert record (TLS 1.2 framing, accepted by every version): internal_error (80).
TLS_ALERT_INTERNAL_ERROR: Final = b"\x15\x03\x03\x00\x02\x02\x50"
#: ALPN of TLS-ALPN-01 validation handshakes (RFC 8737)
ACME_TLS_ALPN: Final = b"acme-tls/1"

__all__ = ["H1Connection"]

# ----------------------------------------------------------------------------- header classes
S_HOST: Final = 1
S_CL: Final = 2
S_TE: Final = 3          # Transfer-Encoding
S_CONN: Final = 4
S_DROP: Final = 5        # hop-by-hop, dropped
S_TEHDR: Final = 6       # TE
S_UPGRADE: Final = 7
S_EXPECT: Final = 8
S_XFP: Final = 9
S_XFHOST: Final = 10
S_XFPORT: Final = 11
S_XREALIP: Final = 12
S_XFF: Final = 13
S_XMANAGED: Final = 14   # other managed X-headers: kept only from trusted peers
S_XSERVER: Final = 15    # always replaced
S_XSCHEME: Final = 16    # X-Forwarded-Scheme / X-Scheme

_SPECIAL: dict[bytes, int] = {
    b"host": S_HOST, b"content-length": S_CL, b"transfer-encoding": S_TE, b"connection": S_CONN,
    b"keep-alive": S_DROP, b"proxy-connection": S_DROP, b"trailer": S_DROP,
    b"proxy-authorization": S_DROP, b"proxy-authenticate": S_DROP, b"te": S_TEHDR,
    b"upgrade": S_UPGRADE, b"expect": S_EXPECT, b"x-forwarded-proto": S_XFP,
    b"x-forwarded-host": S_XFHOST, b"x-forwarded-port": S_XFPORT, b"x-real-ip": S_XREALIP,
    b"x-forwarded-for": S_XFF, b"x-forwarded-server": S_XSERVER, b"x-forwarded-scheme": S_XSCHEME,
    b"x-scheme": S_XSCHEME,
}
for _name in MANAGED_X_HEADERS:
    _SPECIAL.setdefault(_name, S_XMANAGED)
    for _variant in underscore_variants(_name):
        _SPECIAL[_variant] = S_XMANAGED  # dropped from untrusted peers, plain header otherwise


# parse flags
F_CHUNKED: Final = 1
F_TE_OTHER: Final = 2
F_CONN_CLOSE: Final = 4
F_CONN_KEEPALIVE: Final = 8
F_CONN_UPGRADE: Final = 16
F_CONN_OTHER: Final = 32
F_TE_TRAILERS: Final = 64
F_EXPECT: Final = 128
F_HOST_DUP: Final = 256
F_UPGRADE_HDR: Final = 512
F_XFF_TRUSTED: Final = 1024
_RARE_FLAGS: Final = ~(F_CHUNKED | F_CONN_CLOSE | F_CONN_KEEPALIVE | F_CONN_OTHER | F_HOST_DUP | F_TE_OTHER)
XF_SHIFT: Final = 11     # trusted X-Forwarded-* presence bits live above the parse flags
_XF_FLAGS: Final = {S_XFP: XF_PROTO << XF_SHIFT, S_XFHOST: XF_HOST << XF_SHIFT,
                    S_XFPORT: XF_PORT << XF_SHIFT, S_XREALIP: XF_REAL_IP << XF_SHIFT}

# output modes
O_NONE: Final = 0       # no body may be sent (HEAD, 1xx, 204, 304)
O_LENGTH: Final = 1
O_CHUNKED: Final = 2
O_CLOSE: Final = 3      # close-delimited (HTTP/1.0 client, unknown length)
O_RAW: Final = 4        # tunnel

# read-pause reasons
R_BODY: Final = 1
R_PIPELINE: Final = 2
R_UPGRADE: Final = 4
R_WAIT: Final = 8       # response done, waiting for the request body to finish being discarded

# connection states
ST_PROXY: Final = 0
ST_HTTP: Final = 1
ST_UPGRADE_WAIT: Final = 2
ST_TUNNEL: Final = 3
ST_CLOSED: Final = 4
ST_LINGER: Final = 5    # error answered, write side shut: discard input briefly, then close
ST_PEEK: Final = 6      # TLS entry point: waiting for the first byte / the whole ClientHello
ST_HANDOFF: Final = 7   # handed to the TLS handshake; this protocol object is finished

#: Go's ``rstAvoidanceDelay``: how long to read and discard after an error answer before closing.
_LINGER: Final = 0.5

_DISCARD_LIMIT: Final = 256 * 1024
#: RFC 9110 ``tchar``: what a method token may contain.
_TCHAR: Final = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: ``Content-Length: N\r\n`` lines already formatted (bounded; lengths repeat a lot).
_CL_LINES: dict[int, bytes] = {}
_TE_CHUNKED: Final = b"Transfer-Encoding: chunked\r\n"
#: Statuses after which no body may be sent.
_BODYLESS: Final = frozenset((*range(100, 200), 204, 304))


def _cl_line(length: int) -> bytes:
    line = b"Content-Length: %d\r\n" % length
    if len(_CL_LINES) < 4096:
        _CL_LINES[length] = line
    return line
_BIG_CHUNK: Final = 16 * 1024
_NOT_FOUND_HEADERS: Final = ((b"X-Content-Type-Options", b"nosniff"),)
_NOT_FOUND_BODY: Final = b"404 page not found\n"
_MISDIRECTED_BODY: Final = b"Misdirected Request\n"


# Go's httpguts.ValidHostHeader: the bytes a Host header may contain.
_HOST_BYTES: Final = frozenset(
    b"!$%&'()*+,-.0123456789:;=ABCDEFGHIJKLMNOPQRSTUVWXYZ[]_abcdefghijklmnopqrstuvwxyz~")


def _valid_host(host: bytes) -> bool:
    return all(c in _HOST_BYTES for c in host)


def _new_view() -> MatchView:
    """A per-connection view, re-pointed at each request for routing (saves an allocation)."""
    return MatchView.__new__(MatchView)


class _Reject(Exception):
    """Raised inside a parser callback to stop parsing and answer with Go's error bytes."""

    def __init__(self, status: int, detail: str = "", body: str | None = None) -> None:
        super().__init__(status, detail)
        self.status = status
        self.detail = detail
        self.body = body


def _lose(ex: Exchange) -> None:
    """The client side of ``ex`` is gone: mark it done and tell whoever produces its response."""
    if not ex.done:
        ex.done = True
        producer = ex.producer
        if producer is not None:
            producer.downstream_lost()
        observed_lost(ex)


class H1Connection(asyncio.Protocol):
    """One client connection. Implements :class:`~ferryman.http.exchange.Downstream`."""

    __slots__ = (
        "_active",
        "_body_trailers",
        "_cl",
        "_conn_vals",
        "_cur",
        "_deadline_read",
        "_deadline_write",
        "_discard",
        "_discarded",
        "_early",
        "_ep",
        "_flags",
        "_h2c",
        "_handoff",
        "_head_bytes",
        "_head_open",
        "_headers",
        "_host",
        "_http10",
        "_idle_timeout",
        "_ka_limits",
        "_keep_alive",
        "_max_head",
        "_method_override",
        "_out",
        "_parser",
        "_paused",
        "_peer",
        "_pending",
        "_pending_error",
        "_proxy_buf",
        "_queue",
        "_read_timeout",
        "_requests",
        "_rx",
        "_sent_continue",
        "_sni",
        "_spsize",
        "_started",
        "_state",
        "_transport",
        "_upgrade_body",
        "_upgrade_val",
        "_url",
        "_valid_host",
        "_view",
        "_xff",
        "idle_since",
        "info",
        "write_paused",
    )

    def __init__(self, ep: EntryPoint, handoff: tuple[str, int] | None = None, sni: str | None = None) -> None:
        """``handoff``: this connection continues a TLS handshake; the client address (after any
        PROXY header) it had before. ``sni``: the server name of its ClientHello."""
        self._ep = ep
        self._handoff = handoff
        self._sni = sni
        self._parser = HttpRequestParser(self)
        self._transport: Any = None
        self._state = ST_HTTP
        self._active: Exchange | None = None
        self._cur: Exchange | None = None
        self._queue: deque[tuple[Exchange, bool]] | None = None
        self._pending: bytes | None = None
        self._pending_error: bytes | None = None
        self._out = O_NONE
        self._keep_alive = True
        self._http10 = False
        self._paused = 0
        self._discard = False
        self._discarded = 0
        self._early: bytes = b""
        #: Content-Length body bytes of an upgrade request still to cut from the early bytes.
        self._upgrade_body = 0
        self._peer: TunnelPeer | None = None
        self._proxy_buf: bytes = b""
        self._requests = 0
        self._sent_continue = False
        self._deadline_read = 0.0
        self._deadline_write = 0.0
        self._head_open = False
        self._head_bytes = 0
        self._rx = 0
        self._max_head = ep.settings.max_header_bytes + 4096
        self._read_timeout = ep.settings.read_timeout
        self._idle_timeout = ep.settings.idle_timeout or ep.settings.read_timeout
        self._ka_limits = ep.settings.keep_alive_max_requests > 0 or ep.settings.keep_alive_max_time > 0
        self._url = b""
        self._headers: Headers = []
        self._host: bytes | None = None
        self._flags = 0
        self._cl = 0
        self._spsize = 0
        self._conn_vals: list[bytes] | None = None
        self._upgrade_val = b""
        self._xff: list[bytes] | None = None
        self._body_trailers: Headers | None = None
        self._started = 0.0
        self.idle_since = 0.0
        self.write_paused = False
        self.info: ConnInfo | None = None
        self._view = _new_view()
        self._valid_host = b""
        self._method_override: bytes | None = None
        self._h2c: tuple[Exchange, bytes] | None = None

    # =========================================================================== asyncio side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        ep = self._ep
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        ip, port = (peer[0], peer[1]) if isinstance(peer, tuple) else ("", 0)
        handoff = self._handoff
        if handoff is not None:
            ip, port = handoff
        tls = transport.get_extra_info("sslcontext") is not None
        self.info = ConnInfo(ep.settings.name, ip, port, tls, ep.forwarding,
                             sock[1] if isinstance(sock, tuple) else 0)
        if tls:
            self.info.ssl_object = transport.get_extra_info("ssl_object")
        now = ep.now
        self._started = now
        read_timeout = ep.settings.read_timeout
        if read_timeout > 0:
            self._deadline_read = now + read_timeout
        if handoff is None:
            if ep.settings.proxy_protocol:
                self._state = ST_PROXY
            elif ep.tls is not None:
                self._state = ST_PEEK
        ep.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._state != ST_HTTP:
            self._data_special(data)
            return
        self._rx = len(data)
        fresh = self._cur is None and not self._head_open
        requests = self._requests
        try:
            self._parser.feed_data(data)
        except HttpParserUpgrade as upg:
            self._on_parser_upgrade(data, upg.args[0] if upg.args else len(data))
        except HttpParserInvalidMethodError as exc:
            rewritten = self._custom_method(data) if fresh and requests == self._requests else None
            if rewritten is None:
                self._on_parse_error(exc)
                return
            self._parser = HttpRequestParser(self)
            self.data_received(rewritten)
            return
        except HttpParserCallbackError as exc:
            self._on_parse_error(exc)
        except HttpParserError as exc:
            # llhttp pauses on "PRI * HTTP/2.0": an h2c prior-knowledge preface (error path only).
            if not (fresh and requests == 0 and data.startswith(b"PRI * HTTP/2.0\r\n")
                    and self._to_h2c(data, None)):
                self._on_parse_error(exc)
        else:
            if self._head_open:
                self._head_bytes += len(data)
                if self._head_bytes > self._max_head:
                    self._reject(431, "")
                    return
        if self._pending is not None:
            self.flush()

    def eof_received(self) -> bool | None:
        # Go cancels the in-flight request when the client half-closes; so do we (close fully).
        if self._state == ST_TUNNEL:
            peer = self._peer
            if peer is not None:
                peer.tunnel_eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._state = ST_CLOSED
        self._ep.connections.discard(self)
        ex = self._active
        self._active = None
        if ex is not None:
            _lose(ex)
        self._lose_peer()
        self._queue = None
        self._cur = None
        self._ep.connection_closed()

    def pause_writing(self) -> None:
        self.write_paused = True
        ex = self._active
        if ex is not None:
            producer = ex.producer
            if producer is not None:
                producer.pause_producing()

    def resume_writing(self) -> None:
        self.write_paused = False
        ex = self._active
        if ex is not None:
            producer = ex.producer
            if producer is not None:
                producer.resume_producing()

    # =========================================================================== parser callbacks

    def on_url(self, url: bytes) -> None:
        if self._head_open:  # the request line arrived in pieces
            self._url += url
            return
        self._url = url
        self._head_open = True
        self._head_bytes = 0
        self._host = None
        self._flags = 0
        self._spsize = 0
        if self._active is None and self._cur is None:
            # A new request starts: readTimeout runs from its first byte.
            timeout = self._read_timeout
            if timeout > 0:
                self._deadline_read = self._ep.now + timeout
            self.idle_since = 0.0

    def on_header(self, name: bytes, value: bytes) -> None:
        lname = name.lower()
        kind = _SPECIAL.get(lname)
        if kind is None:
            self._headers.append((lname, value))
        elif kind == S_HOST and self._host is None:
            self._host = value
            self._spsize += len(value) + 8
        else:
            self._special(kind, lname, value)

    def _special(self, kind: int, lname: bytes, value: bytes) -> None:
        self._spsize += len(lname) + len(value) + 4
        if kind == S_HOST:
            self._flags |= F_HOST_DUP  # a second Host header (the first is handled in on_header)
        elif kind == S_CL:
            self._cl = int(value)
        elif kind == S_TE:
            if value.strip(b" \t").lower() == b"chunked":
                self._flags |= F_CHUNKED
            else:
                self._flags |= F_TE_OTHER
        elif kind == S_CONN:
            flags = self._flags
            other = False
            for token in connection_tokens([value]):
                if token == b"close":
                    flags |= F_CONN_CLOSE
                elif token == b"keep-alive":
                    flags |= F_CONN_KEEPALIVE
                elif token == b"upgrade":
                    flags |= F_CONN_UPGRADE
                else:
                    other = True
            if other:
                if flags & F_CONN_OTHER and self._conn_vals is not None:
                    self._conn_vals.append(value)
                else:
                    self._conn_vals = [value]
                flags |= F_CONN_OTHER
            self._flags = flags
        elif kind == S_DROP:
            pass
        elif kind == S_TEHDR:
            if b"trailers" in connection_tokens([value]):
                self._flags |= F_TE_TRAILERS
        elif kind == S_UPGRADE:
            self._flags |= F_UPGRADE_HDR
            self._upgrade_val = value
        elif kind == S_EXPECT:
            if value.strip().lower() == b"100-continue":
                self._flags |= F_EXPECT
            self._headers.append((lname, value))
        else:
            info = self.info
            assert info is not None
            if not info.trusted:
                return  # untrusted peer: Traefik deletes the managed X-headers
            if kind == S_XFF:
                if self._flags & F_XFF_TRUSTED and self._xff is not None:
                    self._xff.append(value)
                else:
                    self._xff = [value]
                    self._flags |= F_XFF_TRUSTED
            elif kind == S_XSERVER:
                return  # always replaced by ours
            elif kind == S_XSCHEME and info.forwarding.add_scheme_headers:
                return  # replaced by ours
            else:
                self._flags |= _XF_FLAGS.get(kind, 0)
                self._headers.append((lname, value))

    def on_headers_complete(self) -> None:
        self._head_open = False
        if self._head_bytes + self._rx > self._max_head:
            self._check_head_size()
        parser = self._parser
        flags = self._flags
        if flags & (F_CONN_CLOSE | F_CONN_KEEPALIVE):
            version = parser.get_http_version().encode()
            if version[:2] != b"1.":
                raise _Reject(505, "unsupported protocol version")
            http10 = version == b"1.0"
            keep_alive = bool(flags & F_CONN_KEEPALIVE) if http10 else not flags & F_CONN_CLOSE
        elif parser.should_keep_alive():
            keep_alive = True
            http10 = False
            version = b"1.1"
        else:
            # HTTP/1.0 (rare): llhttp also lets 0.9 and 2.0 through here; Go answers those 505.
            if parser.get_http_version() != "1.0":
                raise _Reject(505, "unsupported protocol version")
            keep_alive = False
            http10 = True
            version = b"1.0"
        if flags & (F_HOST_DUP | F_TE_OTHER):
            if flags & F_TE_OTHER:
                raise _Reject(501, body="Unsupported transfer encoding")
            raise _Reject(400)  # Go 1.26 no longer says "too many Host headers"
        method: bytes = parser.get_method()
        if self._method_override is not None:
            method = self._method_override
            self._method_override = None
        host = self._host
        if host is None:
            if not http10 and method != b"CONNECT":
                raise _Reject(400, "missing required Host header")
            host = b""
        elif host != self._valid_host:
            if not _valid_host(host):
                raise _Reject(400, "malformed Host header")
            self._valid_host = host
        url = target = self._url
        query: bytes | None
        if url[:1] == b"/":
            cut = url.find(b"?")  # not `b"?" in url`: see ferryman.http.paths.plain_path
            if cut >= 0:
                path = url[:cut]
                query = url[cut + 1:]
            else:
                path = url
                query = None
        else:
            try:
                path, query, authority, _scheme = split_target(url)
            except BadTarget as exc:
                raise _Reject(400, "") from exc
            if authority is not None:
                host = authority
            target = path if query is None else path + b"?" + query
        ep = self._ep
        fragment = False
        if plain_path(path) is None:
            if b"#" in path:
                fragment = True  # Traefik's denyFragment answers 400 from its handler chain
                path = path.partition(b"#")[0] or b"/"
            try:
                new_path = normalize_path(path, sanitize=ep.settings.sanitize_path)
            except BadTarget as exc:
                raise _Reject(400, "") from exc
            if new_path != path:
                path = new_path
                target = path if query is None else path + b"?" + query
        if query is not None and query.find(b";") >= 0:
            query = query.replace(b";", b"%3B" if ep.settings.encode_query_semicolons else b"&")
            target = path + b"?" + query
        if flags & F_CHUNKED:
            body_length = -1
        else:
            body_length = self._cl
            if body_length:
                self._cl = 0
        info = self.info
        assert info is not None
        headers = self._headers
        if flags & F_CONN_OTHER and self._conn_vals is not None:
            headers = self._strip_connection_listed(headers, self._conn_vals, info)
            self._conn_vals = None
        ex = Exchange(info, self, method, target, path, query, version, headers, host, body_length)
        if flags & _RARE_FLAGS and self._apply_rare_flags(ex, flags, http10):
            return  # Upgrade: h2c accepted; the request continues as stream 1 of an H2Connection
        # Trailers (if any) accumulate in a fresh list.
        self._headers = []
        self._cur = ex
        self._requests += 1
        if ep.settings.write_timeout > 0:
            self._deadline_write = ep.now + ep.settings.write_timeout
        if self._active is not None:
            # Pipelined: keep it for later, stop reading until the queue is served.
            if self._queue is None:
                self._queue = deque()
            self._queue.append((ex, keep_alive))
            self._pause(R_PIPELINE)
            return
        self._active = ex
        self._http10 = http10
        if not keep_alive:
            self._keep_alive = False
        observer = ep.observer
        if observer is not None:
            # Observer.begin(ex), inlined on the request path (a Python call costs as much as
            # the stores); keep in step with it.
            ex.obs = observer
            ex.obs_start = perf_counter_ns()
            ex.obs_target = target
            ex.obs_user = "-"
            ex.obs_upstream = ""
            ex.obs_retries = 0
        if fragment:
            ex.respond(400, (), b"", content_type=None)
            return
        try:
            routes = ep.tls_routes if info.tls else ep.routes
            if routes is not None:
                view = self._view
                view.bind(ex)
                if info.tls and self._misdirected(view.host):
                    return
                entry = routes.match(view)
            else:
                entry = None
            if entry is None:
                ex.respond(404, _NOT_FOUND_HEADERS, _NOT_FOUND_BODY)
            else:
                ex.router = entry.name
                entry.target.handle(ex)
        except Exception:
            self._handler_failed(ex)

    def _apply_rare_flags(self, ex: Exchange, flags: int, http10: bool) -> bool:
        """Returns True when the request upgrades the connection to h2c (RFC 7540 §3.2)."""
        xflags = 0
        h2c = False
        if flags & F_EXPECT and not http10:
            xflags |= X_EXPECT
        if flags & F_TE_TRAILERS:
            xflags |= X_TE_TRAILERS
        if flags & F_UPGRADE_HDR and flags & F_CONN_UPGRADE:
            ex.upgrade = self._upgrade_val
            token = self._upgrade_val.strip().lower()
            if token == b"websocket":
                xflags |= X_WEBSOCKET
            elif token == b"h2c":
                h2c = self._h2c_upgrade(ex, http10)
        present = flags >> XF_SHIFT
        if flags & F_XFF_TRUSTED and self._xff is not None:
            ex.xff_prior = b", ".join(self._xff)
            present |= XF_FOR
            self._xff = None
        ex.flags = xflags | (present << X_XF_SHIFT)
        return h2c

    def _h2c_upgrade(self, ex: Exchange, http10: bool) -> bool:
        """``Upgrade: h2c`` with ``HTTP2-Settings`` on a cleartext connection, no body, nothing else
        in flight: remember it; the switch happens when llhttp stops at the end of the request."""
        info = self.info
        if http10 or info is None or info.tls or ex.body_length != 0 or self._active is not None or self._queue:
            return False
        settings = [v for n, v in self._headers if n == b"http2-settings"]
        if len(settings) != 1:
            return False
        ex.upgrade = None
        ex.headers = [h for h in ex.headers if h[0] != b"http2-settings"]
        self._h2c = (ex, settings[0])
        self._headers = []
        return True

    def on_body(self, data: bytes) -> None:
        if self._discard:
            self._discarded += len(data)
            if self._discarded > _DISCARD_LIMIT:
                self._keep_alive = False
                self._close()
            return
        ex = self._cur
        if ex is not None:
            ex.feed_body(data)

    def on_message_complete(self) -> None:
        ex = self._cur
        self._cur = None
        # The request is read: readTimeout no longer applies.
        self._deadline_read = 0.0
        trailers = self._headers
        if trailers:
            self._headers = []
        if self._discard:
            self._discard = False
            self._discarded = 0
            if ex is not None:
                ex._body_done = True
            self._resume(R_WAIT)
            if self._active is None:
                self._next()
            return
        if ex is not None and ex.body_length:
            if ex.upgrade is not None:
                # llhttp hands everything after an upgrade request's head to the new protocol;
                # the body is cut from those bytes (_on_parser_upgrade), as Go reads it.
                self._upgrade_body = ex.body_length
            else:
                ex.end_body(trailers or None)
        if self._active is None and not self._queue:
            self._go_idle()

    # =========================================================================== routing

    def _dispatch(self, ex: Exchange) -> None:
        try:
            ep = self._ep
            observer = ep.observer
            if observer is not None:
                observer.begin(ex)
            routes = ep.tls_routes if ex.conn.tls else ep.routes
            view = ex.match_request()
            if ex.conn.tls and self._misdirected(view.host, ex):
                return
            entry = routes.match(view) if routes is not None else None
            if entry is None:
                ex.respond(404, _NOT_FOUND_HEADERS, _NOT_FOUND_BODY)
            else:
                ex.router = entry.name
                entry.target.handle(ex)
        except Exception:
            self._handler_failed(ex)

    def _misdirected(self, host: str, ex: Exchange | None = None) -> bool:
        """Traefik's SNI check (domain fronting): a TLS request whose Host uses other TLS options
        than its SNI — e.g. SNI of a public host, Host of an mTLS one — is answered 421."""
        serving = self._ep.tls
        if serving is None or not serving.misdirected(self._sni, host):
            return False
        log.debug("TLS options differ for SNI %r and Host %r: 421", self._sni, host)
        target = ex if ex is not None else self._active
        if target is not None:
            target.respond(421, _NOT_FOUND_HEADERS, _MISDIRECTED_BODY)
        return True

    def _handler_failed(self, ex: Exchange) -> None:
        log.exception("handler failed for %r %r", ex.method, ex.target)
        if ex.done:
            return
        if ex.status == 0 and self._pending is None and ex is self._active:
            ex.respond(500, (), b"Internal Server Error", content_type=None)
        else:
            self.abort()

    def _next(self) -> None:
        """The active exchange is over; serve the next queued one or go idle."""
        self._sent_continue = False
        if self._paused & R_BODY:
            self._resume(R_BODY)
        queue = self._queue
        if queue:
            ex, keep = queue.popleft()
            self._active = ex
            self._http10 = ex.version == b"1.0"
            self._keep_alive = keep and self._keep_alive
            if not queue:
                self._resume(R_PIPELINE)
            self._ep.loop.call_soon(self._dispatch_queued, ex)
            return
        if self._paused & R_PIPELINE:
            self._resume(R_PIPELINE)
        ep = self._ep
        if ep.shutting_down:
            self._close()
            return
        if self._cur is None:
            self._go_idle()

    def _go_idle(self) -> None:
        now = self.idle_since = self._ep.now
        idle = self._idle_timeout
        self._deadline_read = now + idle if idle > 0 else 0.0
        self._deadline_write = 0.0

    def _dispatch_queued(self, ex: Exchange) -> None:
        if self._state == ST_CLOSED or ex is not self._active:
            return
        self._dispatch(ex)
        if self._pending is not None:
            self.flush()

    # =========================================================================== Downstream API

    def send_info(self, status: int, headers: Headers) -> None:
        if self._http10 or self._state == ST_CLOSED:
            return
        if status == 100:
            if self._sent_continue:
                return
            self._sent_continue = True
        self._write(status_line(status) + serialize_headers(headers) + b"\r\n")

    def send_head(self, status: int, headers: Headers, length: int) -> None:
        ex = self._active
        if ex is None or self._state == ST_CLOSED:
            return
        ex.status = status
        if ex.obs is not None:
            ex.resp_headers = headers
            ex.resp_length = length
        line = STATUS_LINES.get(status) or status_line(status)
        if status in _BODYLESS or ex.method == b"HEAD":
            framing = self._bodyless_framing(status, line, headers, length)
            if status == 101:
                return
        elif length >= 0:
            self._out = O_LENGTH
            framing = _CL_LINES.get(length) or _cl_line(length)
        elif not self._http10:
            self._out = O_CHUNKED
            framing = _TE_CHUNKED
        else:
            self._out = O_CLOSE
            self._keep_alive = False
            framing = b""
        if self._keep_alive and (ex.upgrade is not None or ex.flags & X_EXPECT or self._ka_limits
                                 or self._ep.shutting_down):
            self._keep_alive = self._keep_alive_after(ex)
        if not self._keep_alive:
            tail = b"Connection: close\r\n\r\n"
        elif self._http10:
            tail = b"Connection: keep-alive\r\n\r\n"
        else:
            tail = b"\r\n"
        alt = self._ep.alt_svc
        if alt is not None and ex.conn.tls:
            framing += alt
        if headers:
            self._pending = b"%b%b\r\n%b%b" % (line, b"\r\n".join(map(b": ".join, headers)), framing, tail)
        else:
            self._pending = line + framing + tail

    def _bodyless_framing(self, status: int, line: bytes, headers: Headers, length: int) -> bytes:
        """1xx/101, 204, 304 and HEAD: no body may follow; a 101 is written at once."""
        if status == 101:
            self._out = O_RAW
            self._write(line + serialize_headers(headers) + b"\r\n")
            return b""
        self._out = O_NONE
        if length >= 0 and status != 204 and status >= 200:
            return _CL_LINES.get(length) or _cl_line(length)
        return b""

    def _keep_alive_after(self, ex: Exchange) -> bool:
        """The slow keep-alive checks (upgrade, 100-continue, shutdown, keepAliveMax*)."""
        ep = self._ep
        settings = ep.settings
        if ex.upgrade is not None:
            return False  # no switch happened: the connection state is unclear, close after
        if ex.expect_continue and not self._sent_continue and not ex.body_complete:
            return False
        if ep.shutting_down:
            return False
        if settings.keep_alive_max_requests > 0 and self._requests >= settings.keep_alive_max_requests:
            return False
        return not (settings.keep_alive_max_time > 0 and ep.now - self._started > settings.keep_alive_max_time)

    def send_data(self, data: bytes) -> None:
        out = self._out
        if out == O_NONE:
            return
        ex = self._active
        if ex is not None:
            ex.sent += len(data)
        pending = self._pending
        if out == O_CHUNKED:
            if not data:
                return
            if len(data) > _BIG_CHUNK:
                if pending is not None:
                    self._pending = None
                    self._writelines([pending, b"%x\r\n" % len(data), data, b"\r\n"])
                else:
                    self._writelines([b"%x\r\n" % len(data), data, b"\r\n"])
                return
            data = b"%x\r\n%b\r\n" % (len(data), data)
        if pending is not None:
            self._pending = None
            if len(data) > _BIG_CHUNK:
                self._writelines([pending, data])
                return
            data = pending + data
        if self._state != ST_CLOSED:
            self._transport.write(data)

    def send_end(self, trailers: Headers | None) -> None:
        ex = self._active
        if ex is None:
            return
        out = self._out
        if out == O_CHUNKED:
            tail = last_chunk_with_trailers(trailers) if trailers and ex.flags & X_TE_TRAILERS else LAST_CHUNK
        elif out == O_RAW:
            # End of a tunnel: close once what is buffered is written.
            ex.done = True
            self._active = None
            self._close()
            if ex.obs is not None:
                ex.obs.finish(ex, trailers)
            return
        else:
            tail = b""
        pending = self._pending
        if pending is not None:
            self._pending = None
            tail = pending + tail
        if tail and self._state != ST_CLOSED:
            self._transport.write(tail)
        self._out = O_NONE
        ex.done = True
        self._active = None
        obs = ex.obs
        if obs is not None:
            obs.finish(ex, trailers)
        if (self._keep_alive and ex._body_done and self._pending_error is None
                and not self._queue and not self._paused and self._cur is None):
            # Common case: an idle keep-alive connection again.
            ep = self._ep
            if ep.shutting_down:
                self._close()
                return
            self._sent_continue = False
            now = self.idle_since = ep.now
            idle = self._idle_timeout
            self._deadline_read = now + idle if idle > 0 else 0.0
            self._deadline_write = 0.0
            return
        self._response_done(ex)

    def abort(self) -> None:
        """Kill the connection now (a failed response, a timeout); the producer is told."""
        ex = self._active
        if ex is not None:
            self._active = None
            _lose(ex)
        self._lose_peer()
        self._pending = None
        self._state = ST_CLOSED
        transport = self._transport
        if transport is not None:
            transport.abort()

    def flush(self) -> None:
        pending = self._pending
        if pending is not None:
            self._pending = None
            self._write(pending)

    def pause_body(self) -> None:
        self._pause(R_BODY)

    def resume_body(self) -> None:
        self._resume(R_BODY)

    def _lose_peer(self) -> None:
        """Tell a tunnel's far end that the client side is gone."""
        peer = self._peer
        if peer is not None:
            self._peer = None
            peer.downstream_lost()

    def start_tunnel(self, peer: TunnelPeer) -> None:
        """After a 101: raw bytes from now on, both ways."""
        if self._state == ST_CLOSED:
            peer.downstream_lost()
            return
        self.flush()
        self._state = ST_TUNNEL
        self._peer = peer
        self._deadline_read = 0.0
        self._deadline_write = 0.0
        self._out = O_RAW
        early = self._early
        self._early = b""
        if early:
            peer.tunnel_data(early)
        self._resume(R_UPGRADE | R_PIPELINE)

    # =========================================================================== internals

    def _response_done(self, ex: Exchange) -> None:
        if self._pending_error is not None:
            self._write(self._pending_error)
            self._pending_error = None
            self._linger()
            return
        if ex.upgrade is not None or not self._keep_alive:
            self._close()
            return
        if not ex.body_complete and ex is self._cur:
            ex._consumer = None
            if ex.expect_continue and not self._sent_continue:
                self._close()  # the client may never send the body; Go closes too
                return
            ex._body_buf = None
            self._discard = True
            self._discarded = 0
            self._resume(R_BODY)
            return
        self._next()

    def _strip_connection_listed(self, headers: Headers, values: list[bytes], info: ConnInfo) -> Headers:
        keep = info.forwarding.connection_keep
        drop = {t for t in connection_tokens(values)
                if t not in MANAGED_X_HEADERS and t not in keep
                and t not in (b"close", b"keep-alive", b"upgrade")}
        if not drop:
            return headers
        return [h for h in headers if h[0] not in drop]

    def _check_head_size(self) -> None:
        size = len(self._url) + self._spsize + 14
        for name, value in self._headers:
            size += len(name) + len(value) + 4
        if size > self._max_head:
            raise _Reject(431, "")

    def _on_parser_upgrade(self, data: bytes, offset: int) -> None:
        if self._h2c is not None:
            self._to_h2c(data[offset:], self._h2c)
            return
        rest = data[offset:]
        if self._state == ST_HTTP:
            self._state = ST_UPGRADE_WAIT
        ex = self._active
        if self._upgrade_body:
            if self._upgrade_body < 0:
                # A chunked upgrade request: not decoded here (Go would); refuse it rather than hang.
                self._upgrade_body = 0
                if ex is not None and not ex.done:
                    ex.respond(400, (), b"chunked body on an upgrade request is not supported\n")
                self._close()
                return
            rest = self._upgrade_body_data(rest)
        self._early = rest
        if ex is None or ex.done:
            # Answered already (e.g. 404): no tunnel; close once written.
            self._close()
            return
        if not self._upgrade_body:
            self._pause(R_UPGRADE)

    def _upgrade_body_data(self, data: bytes) -> bytes:
        """Feed the upgrade request's body from ``data``; returns the bytes after it."""
        n = self._upgrade_body
        part, rest = data[:n], data[n:]
        self._upgrade_body = n - len(part)
        ex = self._active
        if ex is not None and not ex.done:
            if part:
                ex.feed_body(part)
            if not self._upgrade_body:
                ex.end_body(None)
        return rest

    def _data_special(self, data: bytes) -> None:
        state = self._state
        if state == ST_TUNNEL:
            peer = self._peer
            if peer is not None:
                peer.tunnel_data(data)
        elif state == ST_UPGRADE_WAIT:
            if self._upgrade_body:
                data = self._upgrade_body_data(data)
                if not self._upgrade_body:
                    self._pause(R_UPGRADE)
            self._early += data
        elif state == ST_PEEK:
            self._on_peek(data)
        elif state == ST_PROXY:
            self._on_proxy_data(data)
        # ST_LINGER, ST_HANDOFF: discard

    def _on_proxy_data(self, data: bytes) -> None:
        buf = self._proxy_buf + data if self._proxy_buf else data
        try:
            result = parse_proxy_header(buf)
        except ProtocolError:
            self._close()
            return
        if result is NEED_MORE:
            self._proxy_buf = buf
            return
        self._proxy_buf = b""
        self._state = ST_PEEK if self._ep.tls is not None else ST_HTTP
        if result is not NOT_PROXY:
            info = self.info
            assert info is not None and not isinstance(result, type(NOT_PROXY))
            if (result.overrides_peer and result.src_ip is not None
                    and self._ep.proxy_trusts(info.client_ip)):
                info.set_client(result.src_ip, result.src_port or 0)
            buf = buf[result.consumed:]
        if buf:
            self.data_received(buf)

    def _on_peek(self, data: bytes) -> None:
        """TLS or plain? Plain requests pay one byte comparison; a ClientHello is read whole."""
        buf = self._proxy_buf + data if self._proxy_buf else data
        if buf[0] != 0x16:
            self._proxy_buf = b""
            self._state = ST_HTTP
            self.data_received(buf)
            return
        hello = peek_client_hello(buf)
        if hello is HELLO_NEED_MORE:
            self._proxy_buf = buf
            return
        self._proxy_buf = b""
        serving = self._ep.tls
        if serving is None or not isinstance(hello, ClientHello):  # TLS was switched off meanwhile
            self._state = ST_HTTP
            self.data_received(buf)
            return
        ctx = serving.select(hello.sni)
        challenges = self._ep.acme_alpn
        if challenges and hello.sni and ACME_TLS_ALPN in hello.alpn:
            ctx = challenges.get(hello.sni.lower(), ctx)  # TLS-ALPN-01 validation (RFC 8737)
        if ctx is None:
            # sniStrict: no certificate for this name. Go answers GetCertificate errors with a
            # fatal internal_error alert.
            log.debug("TLS handshake refused (sniStrict): SNI %r", hello.sni)
            self._transport.write(TLS_ALERT_INTERNAL_ERROR)
            self._close()
            return
        info = self.info
        assert info is not None
        self._state = ST_HANDOFF
        self._deadline_read = 0.0
        ep = self._ep
        ep.connections.discard(self)
        self._transport.pause_reading()
        ep.start_tls(self._transport, buf, ctx, (info.client_ip, info.client_port), hello.sni)
        self._transport = None
        ep.connection_closed()

    def _to_h2c(self, data: bytes, upgrade: tuple[Exchange, bytes] | None) -> bool:
        """HTTP/2 on a cleartext connection -- with prior knowledge (``data`` starts with the
        preface), or after ``Upgrade: h2c`` (``upgrade``: the request and its ``HTTP2-Settings``;
        ``data``: what followed it) -- continue as an ``H2Connection``."""
        from ferryman.server.h2 import H2Connection

        transport = self._transport
        if transport is None or self._state != ST_HTTP:
            return False
        self._state = ST_HANDOFF
        self._deadline_read = 0.0
        self._h2c = None
        self._active = self._cur = None
        ep = self._ep
        ep.connections.discard(self)
        conn = H2Connection(ep, sni=self._sni, info=self.info,
                            upgrade=upgrade[1] if upgrade is not None else None)
        if upgrade is not None:
            transport.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
        transport.set_protocol(conn)
        conn.connection_made(transport)
        self._transport = None
        if upgrade is not None:
            conn.upgraded_request(upgrade[0])
        if data:
            conn.data_received(data)
        return True

    def _custom_method(self, data: bytes) -> bytes | None:
        """llhttp only knows a fixed method table; Go accepts any token (``get``, ``FROB``). When the
        unknown method starts this read, parse the request under a stand-in method and restore it.
        (An unknown method later in a pipelined read still gets 400.)"""
        space = data.find(b" ", 0, 64)
        if space <= 0:
            return None
        token = data[:space]
        if token.strip(_TCHAR):
            return None
        self._method_override = token
        return b"OPTIONS" + data[space:]

    def _on_parse_error(self, exc: Exception) -> None:
        cause = exc.__context__ if isinstance(exc, HttpParserCallbackError) else None
        if isinstance(cause, _Reject):
            self._reject(cause.status, cause.detail, cause.body)
            return
        if str(exc) == "Invalid HTTP version":
            self._reject(505, "unsupported protocol version")
            return
        if cause is not None and not isinstance(cause, ValueError):
            log.error("request parser callback failed", exc_info=cause)
        self._reject(400, "")

    def _reject(self, status: int, detail: str, body: str | None = None) -> None:
        payload = error_response(status, detail, body)
        cur = self._cur
        self._cur = None
        self._state = ST_UPGRADE_WAIT  # stop parsing; later bytes are ignored
        self._early = b""
        self._pause(R_UPGRADE)
        active = self._active
        if cur is not None:
            # The error is in a request body: answer it only if nothing was answered yet.
            if cur is active and not cur.done and cur.status == 0 and self._pending is None:
                self._active = None
                _lose(cur)
                self._write(payload)
                self._linger()
            else:
                self.abort()
            return
        if active is not None and not active.done:
            self._pending_error = payload  # answer in order, after the in-flight response
            return
        self.flush()
        self._write(payload)
        self._linger()

    def _linger(self) -> None:
        """Close after an error answer without losing it to a TCP reset (Go's closeWriteAndWait):
        shut the write side, keep reading and discarding for a moment, then close."""
        transport = self._transport
        if self._state == ST_CLOSED or transport is None:
            return
        self._state = ST_LINGER
        self._paused = 0
        transport.resume_reading()
        if transport.can_write_eof():
            transport.write_eof()
        self._deadline_read = self._ep.now + _LINGER
        self._deadline_write = 0.0

    def _pause(self, reason: int) -> None:
        if not self._paused and self._transport is not None and self._state != ST_CLOSED:
            self._transport.pause_reading()
        self._paused |= reason

    def _resume(self, reason: int) -> None:
        if not self._paused & reason:
            return
        self._paused &= ~reason
        if not self._paused and self._state != ST_CLOSED:
            self._transport.resume_reading()

    def _write(self, data: bytes) -> None:
        if self._state != ST_CLOSED:
            self._transport.write(data)

    def _writelines(self, parts: list[bytes]) -> None:
        if self._state != ST_CLOSED:
            self._transport.writelines(parts)

    def _close(self) -> None:
        if self._state == ST_CLOSED:
            return
        pending = self._pending
        if pending is not None:
            self._pending = None
            self._transport.write(pending)
        self._state = ST_CLOSED
        self._transport.close()
        ex = self._active
        if ex is not None:
            _lose(ex)

    # =========================================================================== entry point hooks

    def check_deadlines(self, now: float) -> None:
        """Called by the entry point's sweeper."""
        d = self._deadline_read
        if d and now >= d:
            self._deadline_read = 0.0
            self._timed_out("read" if self._cur is not None or self._active is not None else "idle")
            return
        d = self._deadline_write
        if d and now >= d:
            self._deadline_write = 0.0
            if self._active is not None:
                self._timed_out("write")

    def _timed_out(self, what: str) -> None:
        log.debug("closing connection from %s: %s timeout", self.info.client_ip if self.info else "?", what)
        self.abort()

    def close_if_idle(self) -> bool:
        """Shutdown: close now if no request is in flight."""
        if self._state == ST_CLOSED:
            return True
        if self._active is None and self._cur is None and not self._queue:
            self._close()
            return True
        return False

    def force_close(self) -> None:
        if self._state != ST_CLOSED:
            self.abort()

    @property
    def busy(self) -> bool:
        return self._active is not None or self._cur is not None

