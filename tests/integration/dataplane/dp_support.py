"""Helpers for the data-plane integration tests: real sockets on loopback, raw bytes.

* :class:`LoopThread` runs a uvloop event loop in a background thread (the proxy lives there);
  tests talk to it with blocking sockets, so every byte on the wire is explicit.
* :func:`proxy` starts an :class:`~ferryman.server.EntryPoint` on port 0 with a stand-in routing
  table (:class:`Routes`, same ``match`` contract as the real one).
* :class:`Backend` is a threaded raw-TCP server; :func:`http_backend` wraps a function
  ``Req -> bytes`` into a keep-alive HTTP/1.1 backend.
* :class:`Reader`, :func:`read_request`, :func:`read_response` parse HTTP/1.1 by hand (CL,
  chunked with trailers, close-delimited) so the tests check what was really sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import uvloop

from ferryman.dynamic.models import LoadBalancer, Server
from ferryman.http.exchange import Exchange, Handler
from ferryman.http.match import MatchView
from ferryman.server import EntryPoint, EntryPointSettings
from ferryman.services import build_load_balancer
from ferryman.upstream import TransportSettings, UpstreamPools

T = TypeVar("T")
DEADLINE = 10.0


# --------------------------------------------------------------------------------------------
# Event loop in a thread


class LoopThread:
    def __init__(self) -> None:
        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True, name="proxy-loop")
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = DEADLINE) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = DEADLINE) -> T:
        async def wrapper() -> T:
            return fn()
        return self.run(wrapper(), timeout)

    def stop(self) -> None:
        async def cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks(self.loop) if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(cancel_rest(), 5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


# --------------------------------------------------------------------------------------------
# Routing stand-in


@dataclass
class Route:
    name: str
    target: Handler
    host: str | None = None
    prefix: str = "/"

    def matches(self, req: MatchView) -> bool:
        return (self.host is None or req.host == self.host) and req.path.startswith(self.prefix)


class Routes:
    """Same ``match`` contract as ``ferryman.control.routing.RoutingTable``: first match wins."""

    def __init__(self, *routes: Route) -> None:
        self.routes = list(routes)

    def match(self, req: MatchView) -> Route | None:
        for route in self.routes:
            if route.matches(req):
                return route
        return None


class Responder:
    """A handler answering locally (used to test the server without a backend)."""

    def __init__(self, status: int = 200, body: bytes = b"ok") -> None:
        self.status = status
        self.body = body
        self.seen: list[Exchange] = []

    def handle(self, ex: Exchange) -> None:
        self.seen.append(ex)
        ex.respond(self.status, (), self.body)


@dataclass
class Proxy:
    ep: EntryPoint
    lt: LoopThread
    pools: UpstreamPools

    @property
    def port(self) -> int:
        return self.ep.bound_port

    def connect(self, timeout: float = DEADLINE) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return sock

    def set_routes(self, routes: Routes) -> None:
        def swap() -> None:
            self.ep.routes = routes
        self.lt.call(swap)


@contextlib.contextmanager
def proxy(routes: Routes | Handler | None, settings: EntryPointSettings | None = None,
          pools: UpstreamPools | None = None, **kw: Any) -> Iterator[Proxy]:
    """An entry point on 127.0.0.1:0 in a background loop; ``routes`` may be a single handler."""
    lt = LoopThread()
    pools = pools or UpstreamPools()
    table: Routes | None
    table = routes if routes is None or isinstance(routes, Routes) else Routes(Route("catchall", routes))
    settings = settings or EntryPointSettings(name="web", host="127.0.0.1", port=0)
    ep = EntryPoint(settings, table, hostname="ferryman-test", **kw)
    try:
        lt.run(ep.start())
        yield Proxy(ep, lt, pools)
    finally:
        with contextlib.suppress(Exception):
            lt.run(ep.shutdown(), 30)
        with contextlib.suppress(Exception):
            lt.call(pools.close)
        lt.stop()


def settings(**kw: Any) -> EntryPointSettings:
    values: dict[str, Any] = {"name": "web", "host": "127.0.0.1", "port": 0}
    values.update(kw)
    return EntryPointSettings(**values)


def lb(pools: UpstreamPools, *urls: str, name: str = "svc", transport: TransportSettings | None = None,
       **model: Any) -> Handler:
    """A wrr loadBalancer over ``urls`` (deterministic order)."""
    servers = tuple(Server(url=u) for u in urls)
    return build_load_balancer(name, LoadBalancer(servers=servers, **model), transport or TransportSettings(),
                               pools, rng=random.Random(0))


# --------------------------------------------------------------------------------------------
# Reading HTTP by hand


class Reader:
    """Buffered reads from a blocking socket (with the socket's timeout)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def readline(self) -> bytes:
        while b"\n" not in self.buf:
            if not self._fill():
                raise EOFError(f"connection closed, buffered: {self.buf!r}")
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def readexact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError(f"connection closed after {len(self.buf)} of {n} bytes")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_until_close(self) -> bytes:
        while self._fill():
            pass
        data, self.buf = self.buf, b""
        return data

    def at_eof(self, timeout: float = DEADLINE) -> bool:
        """True if the peer closes (or resets) before sending anything more."""
        if self.buf:
            return False
        self.sock.settimeout(timeout)
        try:
            return not self.sock.recv(1)
        except ConnectionResetError:
            return True


def _read_headers(r: Reader) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    while True:
        line = r.readline()
        if line in (b"\r\n", b"\n"):
            return headers
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))


def _read_chunked(r: Reader) -> tuple[bytes, list[tuple[str, str]]]:
    body = b""
    while True:
        size_line = r.readline()
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            return body, _read_headers(r)
        body += r.readexact(size)
        assert r.readexact(2) == b"\r\n"


@dataclass
class Message:
    start: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    trailers: list[tuple[str, str]] = field(default_factory=list)
    chunked: bool = False

    def get(self, name: str) -> str | None:
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def names(self) -> set[str]:
        return {n.lower() for n, _ in self.headers}

    @property
    def status(self) -> int:
        return int(self.start.split(" ")[1])

    @property
    def method(self) -> str:
        return self.start.split(" ")[0]

    @property
    def target(self) -> str:
        return self.start.split(" ")[1]


def read_request(r: Reader) -> Message:
    start = r.readline().decode("latin-1").rstrip("\r\n")
    msg = Message(start, _read_headers(r))
    te = msg.get("transfer-encoding")
    if te is not None and "chunked" in te.lower():
        msg.body, msg.trailers = _read_chunked(r)
        msg.chunked = True
    elif msg.get("content-length") is not None:
        msg.body = r.readexact(int(msg.get("content-length") or 0))
    return msg


def read_response(r: Reader, *, head: bool = False) -> Message:
    """One response; 1xx interim responses are returned as they come (call again)."""
    start = r.readline().decode("latin-1").rstrip("\r\n")
    msg = Message(start, _read_headers(r))
    status = msg.status
    if head or status < 200 or status in (204, 304):
        return msg
    te = msg.get("transfer-encoding")
    if te is not None and "chunked" in te.lower():
        msg.body, msg.trailers = _read_chunked(r)
        msg.chunked = True
    elif msg.get("content-length") is not None:
        msg.body = r.readexact(int(msg.get("content-length") or 0))
    else:
        msg.body = r.read_until_close()
    return msg


def exchange(port: int, raw: bytes, *, head: bool = False, timeout: float = DEADLINE) -> Message:
    """One request on a fresh connection, one response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        return read_response(Reader(sock), head=head)


# --------------------------------------------------------------------------------------------
# Backends


class Backend:
    """A threaded TCP server on 127.0.0.1:0; ``handler(sock)`` runs per connection."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self.handler = handler
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port: int = self.listener.getsockname()[1]
        self.connections = 0
        self.requests: list[Message] = []
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._socks.append(sock)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            sock.settimeout(DEADLINE * 3)  # inside: close() may have closed it already
            self.handler(sock)
        except (OSError, EOFError, AssertionError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept thread: the port stops answering
        with contextlib.suppress(OSError):
            self.listener.close()
        with self._lock:
            for sock in self._socks:
                with contextlib.suppress(OSError):
                    sock.close()

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def response(status: int = 200, body: bytes = b"hello", headers: Mapping[str, str] | None = None,
             reason: str = "OK") -> bytes:
    head = f"HTTP/1.1 {status} {reason}\r\n"
    hdrs = dict(headers or {})
    if "Content-Length" not in hdrs and "Transfer-Encoding" not in hdrs:
        hdrs["Content-Length"] = str(len(body))
    for name, value in hdrs.items():
        head += f"{name}: {value}\r\n"
    return head.encode() + b"\r\n" + body


def http_backend(handler: Callable[[Message], bytes] | None = None) -> Backend:
    """A keep-alive backend: reads requests in a loop, answers ``handler(req)`` (raw bytes)."""
    answer = handler or (lambda req: response(body=b"hello from backend"))
    backend: Backend

    def serve(sock: socket.socket) -> None:
        r = Reader(sock)
        while True:
            try:
                req = read_request(r)
            except EOFError:
                return
            with backend._lock:
                backend.requests.append(req)
            out = answer(req)
            if out:
                sock.sendall(out)
            conn = (req.get("connection") or "").lower()
            if "close" in conn or b"Connection: close" in out:
                return

    backend = Backend(serve)
    return backend


def poll(predicate: Callable[[], bool], deadline: float = DEADLINE, interval: float = 0.01) -> bool:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# --------------------------------------------------------------------------------------------
# TLS


def self_signed_context(directory: Path) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for ``localhost``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return ctx


def tls_exchange(port: int, raw: bytes, *, timeout: float = DEADLINE) -> Message:
    client = ssl.create_default_context()
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw_sock, \
            client.wrap_socket(raw_sock, server_hostname="localhost") as sock:
        sock.sendall(raw)
        return read_response(Reader(sock))
