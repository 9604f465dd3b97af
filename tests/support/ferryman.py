"""Run a real ferryman process for integration tests.

Entry points bind port 0 (``127.0.0.1:0``); ferryman logs one JSON line per listening entry point
(``"message": "entry point listening"``, ``entryPointName``, ``address``), which is how tests learn
the real ports. A reader thread drains stdout into ``lines`` so the child never blocks on a full
pipe, and tests can wait for any log event with a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.support.procs import VENV_BIN, ProcessGroup

Event = dict[str, Any]


class Ferryman:
    def __init__(self, workdir: Path, static: Mapping[str, Any], dynamic: Mapping[str, Any] | None = None,
                 *, group: ProcessGroup, env: Mapping[str, str] | None = None) -> None:
        self.workdir = workdir
        self.dynamic_dir = workdir / "dynamic"
        self.dynamic_dir.mkdir(parents=True, exist_ok=True)
        self.static = dict(static)
        self.static.setdefault("log", {"level": "INFO", "format": "json"})
        if "providers" not in self.static:
            self.static["providers"] = {"file": {"directory": str(self.dynamic_dir), "watch": True}}
        self.config_file = workdir / "traefik.yml"
        self.config_file.write_text(yaml.safe_dump(self.static))
        if dynamic is not None:
            self.write_dynamic("routes.yml", dynamic)
        self.group = group
        self.env = dict(env or {})
        self.lines: list[Event] = []
        self.raw: list[str] = []
        self._cond = threading.Condition()
        self.proc: subprocess.Popen[bytes] | None = None
        self.ports: dict[str, int] = {}
        #: command prefix, e.g. ``["ip", "netns", "exec", ns]`` to run inside a network namespace
        self.wrapper: list[str] = []

    # -- files ------------------------------------------------------------------------------------

    def write_dynamic(self, name: str, content: Mapping[str, Any] | str) -> Path:
        """Write a dynamic file atomically (temp file + rename, as editors do)."""
        text = content if isinstance(content, str) else yaml.safe_dump(dict(content))
        path = self.dynamic_dir / name
        tmp = self.dynamic_dir / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, path)
        return path

    # -- process ----------------------------------------------------------------------------------

    def start(self, deadline: float = 15.0, wait_config: bool = True) -> Ferryman:
        argv = [*self.wrapper, str(VENV_BIN / "ferryman"), f"--configFile={self.config_file}"]
        self.proc = self.group.spawn(argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        threading.Thread(target=self._drain, daemon=True).start()
        names = [n for n, ep in self.static.get("entryPoints", {}).items()
                 if not str(ep.get("address", "")).endswith("/udp")]
        for name in names:
            ev = self.wait_for(lambda e, n=name: e.get("message") == "entry point listening"  # type: ignore[misc]
                               and e.get("entryPointName") == n, deadline)
            self.ports[name] = int(str(ev["address"]).rsplit(":", 1)[1])
        if wait_config:
            self.wait_for(lambda e: e.get("message") == "configuration applied", deadline)
        return self

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            text = raw.decode("utf-8", "replace").rstrip("\n")
            try:
                event = json.loads(text)
            except ValueError:
                event = {"message": text, "level": "raw"}
            if not isinstance(event, dict):
                event = {"message": text, "level": "raw"}
            with self._cond:
                self.raw.append(text)
                self.lines.append(event)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, pred: Callable[[Event], bool], deadline: float = 10.0, *, start: int = 0) -> Event:
        end = time.monotonic() + deadline
        seen = start
        with self._cond:
            while True:
                while seen < len(self.lines):
                    ev = self.lines[seen]
                    seen += 1
                    if pred(ev):
                        return ev
                if self.proc is not None and self.proc.poll() is not None and seen >= len(self.lines):
                    raise RuntimeError(f"ferryman exited ({self.proc.returncode}); log:\n" + "\n".join(self.raw[-40:]))
                remaining = end - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("log event not seen; log:\n" + "\n".join(self.raw[-40:]))
                self._cond.wait(min(remaining, 0.2))

    def mark(self) -> int:
        """Position in the log, to wait only for events after it."""
        with self._cond:
            return len(self.lines)

    def url(self, entry_point: str = "web", path: str = "/") -> str:
        return f"http://127.0.0.1:{self.ports[entry_point]}{path}"

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        return self.group.stop(self.proc)
