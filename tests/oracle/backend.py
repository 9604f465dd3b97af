"""A recording HTTP/1.1 backend for the differential (oracle) tests.

Every request gets the same answer (``200``, ``text/plain``, the backend's fixed body), and the
backend records exactly what arrived on the wire: method, raw request target, HTTP version, the
header lines in order (name and value as sent, name case preserved) and the body bytes (chunked
bodies are de-chunked; the framing headers stay in the header list).

Several backends may share one :class:`Recorder`, so a test can see which backend a proxy picked
and in what order::

    rec = Recorder()
    with RecordingBackend("a", rec) as a, RecordingBackend("b", rec) as b:
        mark = rec.mark()
        ...send a request through a proxy to a.url...
        seen = rec.since(mark)      # [Received(backend="a", method="GET", ...)]

Threaded (one thread per connection, keep-alive honoured), bound to ``127.0.0.1:0``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field
from types import TracebackType

__all__ = ["Received", "Recorder", "RecordingBackend"]

MAX_HEAD = 1 << 20
MAX_BODY = 1 << 20


@dataclass(frozen=True)
class Received:
    """One request as the backend read it."""

    backend: str
    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def get_all(self, name: str) -> list[str]:
        low = name.lower()
        return [v for k, v in self.headers if k.lower() == low]


@dataclass
class Recorder:
    """Requests received by any backend sharing it, in arrival order."""

    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cond: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self._cond = threading.Condition(self._lock)

    def add(self, item: Received) -> None:
        with self._cond:
            self.received.append(item)
            self._cond.notify_all()

    def mark(self) -> int:
        with self._lock:
            return len(self.received)

    def since(self, mark: int) -> list[Received]:
        with self._lock:
            return list(self.received[mark:])


class _BadRequest(Exception):
    pass


class _Conn:
    """Buffered reads from one client socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def read_until(self, sep: bytes, limit: int) -> bytes | None:
        """Bytes up to and including ``sep``; None on a clean EOF before any byte."""
        while sep not in self.buf:
            if len(self.buf) > limit:
                raise _BadRequest("head too large")
            if not self._fill():
                if self.buf:
                    raise _BadRequest("EOF inside a message")
                return None
        head, _, self.buf = self.buf.partition(sep)
        return head + sep

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise _BadRequest("EOF inside a body")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data


def _parse_head(head: bytes) -> tuple[str, str, str, tuple[tuple[str, str], ...]]:
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise _BadRequest(f"bad request line {lines[0]!r}")
    method, target, version = (p.decode("latin-1") for p in parts)
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise _BadRequest(f"bad header line {line!r}")
        headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    return method, target, version, tuple(headers)


def _read_body(conn: _Conn, headers: tuple[tuple[str, str], ...]) -> bytes:
    te = [v.lower() for k, v in headers if k.lower() == "transfer-encoding"]
    if te and te[-1].rsplit(",", 1)[-1].strip() == "chunked":
        body = b""
        while True:
            line = conn.read_until(b"\r\n", 4096)
            if line is None:
                raise _BadRequest("EOF inside a chunked body")
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while True:  # trailers up to the empty line
                    trailer = conn.read_until(b"\r\n", MAX_HEAD)
                    if trailer is None or trailer == b"\r\n":
                        return body
            body += conn.read_exact(size)
            if len(body) > MAX_BODY:
                raise _BadRequest("body too large")
            conn.read_exact(2)
    cl = [v for k, v in headers if k.lower() == "content-length"]
    if cl:
        n = int(cl[0])
        if n > MAX_BODY:
            raise _BadRequest("body too large")
        return conn.read_exact(n)
    return b""


class RecordingBackend:
    """A threaded HTTP/1.1 server on ``127.0.0.1:0`` that records requests and answers ``body``."""

    def __init__(self, name: str, recorder: Recorder | None = None, body: bytes | None = None) -> None:
        self.name = name
        self.recorder = recorder if recorder is not None else Recorder()
        self.body = body if body is not None else f"backend {name}\n".encode()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, name=f"backend-{name}", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept_loop(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._closed:
                    sock.close()
                    return
                self._conns.add(sock)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        conn = _Conn(sock)
        answer = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(self.body)) + self.body
        try:
            while True:
                head = conn.read_until(b"\r\n\r\n", MAX_HEAD)
                if head is None:
                    return
                method, target, version, headers = _parse_head(head)
                body = _read_body(conn, headers)
                self.recorder.add(Received(self.name, method, target, version, headers, body))
                sock.sendall(answer if method != "HEAD" else answer[: -len(self.body) or None])
                tokens = ",".join(v for k, v in headers if k.lower() == "connection").lower()
                if "close" in tokens or (version == "HTTP/1.0" and "keep-alive" not in tokens):
                    return
        except (OSError, ValueError, _BadRequest):
            return
        finally:
            with self._lock:
                self._conns.discard(sock)
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns = list(self._conns)
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)

    def __enter__(self) -> RecordingBackend:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
