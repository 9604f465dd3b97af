"""Start real processes for tests, poll with deadlines, and always clean up.

Every process is started in its own session (``start_new_session=True``), so it leads a process group
and stopping it also stops its children (nginx workers, a shell's jobs...). Use :class:`ProcessGroup`
as a context manager (or a fixture) so nothing outlives the test, even when an assertion fails::

    with ProcessGroup() as procs:
        _, port = start_hello("v1", group=procs)
        status, headers, body = http_request("127.0.0.1", port, "/")

Times are seconds. A ``deadline`` argument is how long to wait from now, not an absolute clock value.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = REPO_ROOT / ".venv" / "bin"
HELLO = REPO_ROOT / "examples" / "hello.py"

T = TypeVar("T")
Proc = subprocess.Popen[bytes]


def free_port(host: str = "127.0.0.1", kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port that was free a moment ago (bind to port 0 and release it). Prefer ``--port 0`` where possible."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def poll_until(
    probe: Callable[[], T | None],
    deadline: float = 10.0,
    interval: float = 0.02,
    what: str = "condition",
) -> T:
    """Call ``probe`` until it returns something other than None/False; return that value.

    Exceptions raised by ``probe`` count as "not yet" (the last one is chained into the TimeoutError).
    The interval grows gently up to 0.25 s.
    """
    end = time.monotonic() + deadline
    last_exc: BaseException | None = None
    while True:
        try:
            value = probe()
            if value is not None and value is not False:
                return value
        except Exception as exc:  # probing is allowed to fail until the deadline
            last_exc = exc
        if time.monotonic() >= end:
            raise TimeoutError(f"timed out after {deadline:.1f}s waiting for {what}") from last_exc
        time.sleep(interval)
        interval = min(interval * 1.5, 0.25)


def wait_port(host: str, port: int, deadline: float = 10.0) -> None:
    """Wait until a TCP connect to ``host:port`` succeeds."""

    def probe() -> bool:
        with socket.create_connection((host, port), timeout=0.5):
            return True

    poll_until(probe, deadline, what=f"{host}:{port} to accept connections")


def http_request(
    host: str,
    port: int,
    path: str = "/",
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 5.0,
) -> tuple[int, list[tuple[str, str]], bytes]:
    """One HTTP/1.1 request on a fresh connection; returns (status, header pairs, body)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


def read_json_line(proc: Proc, deadline: float = 10.0, event: str | None = None) -> dict[str, Any]:
    """Read lines from ``proc.stdout`` until one parses as a JSON object (with ``"event": event`` if given).

    Reads the pipe directly with a deadline, so a child that hangs or dies fails the test quickly
    (with its exit code) instead of blocking it.
    """
    if proc.stdout is None:
        raise ValueError("process was not started with stdout=PIPE")
    fd = proc.stdout.fileno()
    end = time.monotonic() + deadline
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                with contextlib.suppress(ValueError):
                    obj = json.loads(line)
                    if isinstance(obj, dict) and (event is None or obj.get("event") == event):
                        return obj
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"no JSON line{f' with event={event!r}' if event else ''} within {deadline}s"
                )
            if sel.select(min(remaining, 0.1)):
                chunk = os.read(fd, 65536)
                if not chunk:
                    code = proc.wait(timeout=5)
                    raise RuntimeError(f"process {proc.args!r} closed stdout (exit code {code}) before ready")
                buf += chunk


def stop_process(proc: Proc, timeout: float = 5.0) -> int | None:
    """SIGTERM the process group, then SIGKILL it after ``timeout``; returns the exit code."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)
    # Children that outlived their leader (the group id is still the leader's pid).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    return proc.poll()


class ProcessGroup:
    """Owns processes started through it and stops them (whole process groups) on exit."""

    def __init__(self) -> None:
        self.procs: list[Proc] = []

    def spawn(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        stdout: int | IO[Any] | None = subprocess.PIPE,
        stderr: int | IO[Any] | None = None,
    ) -> Proc:
        """Start ``argv`` in a new session. ``env`` is merged over ``os.environ``.

        Mind the pipes: a child that writes a lot to a PIPE nobody reads will block. Send chatty streams to a
        file or ``subprocess.DEVNULL``; stderr defaults to inheriting the test's stderr (pytest captures it).
        """
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        proc: Proc = subprocess.Popen(
            [os.fspath(a) for a in argv],
            env=full_env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc, timeout: float = 5.0) -> int | None:
        code = stop_process(proc, timeout)
        if proc in self.procs:
            self.procs.remove(proc)
        return code

    def stop_all(self) -> None:
        while self.procs:
            stop_process(self.procs.pop())

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()


@contextlib.contextmanager
def process_group() -> Iterator[ProcessGroup]:
    """``with process_group() as g:`` — same as ``with ProcessGroup() as g:``."""
    with ProcessGroup() as group:
        yield group


def start_hello(
    name: str,
    *,
    group: ProcessGroup | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    deadline: float = 10.0,
    log: int | IO[Any] | None = subprocess.DEVNULL,
) -> tuple[Proc, int]:
    """Start ``examples/hello.py --name <name>`` and return (process, real port) once it listens.

    Without ``group`` the caller must stop it (``stop_process``). Access logs (stderr) go to ``log``:
    DEVNULL by default, or pass an open file / ``None`` (inherit) to keep them.
    """
    argv = [sys.executable, str(HELLO), "--host", host, "--port", str(port), "--name", name]
    owner = group if group is not None else ProcessGroup()
    proc = owner.spawn(argv, stdout=subprocess.PIPE, stderr=log)
    try:
        ready = read_json_line(proc, deadline, event="listening")
    except BaseException:
        owner.stop(proc)
        raise
    if group is None:
        owner.procs.remove(proc)  # ownership passes to the caller
    return proc, int(ready["port"])
