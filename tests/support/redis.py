"""A real redis-server for tests: its own port on 127.0.0.1, its own directory, no persistence.

    with ProcessGroup() as procs:
        server = RedisServer(tmp_path / "redis", group=procs).start()
        server.endpoint            # "127.0.0.1:<port>" (what rateLimit.redis.endpoints takes)
        server.cli("PING")         # raw command through redis-py, returns the reply
        server.stop()              # e.g. to see what happens when redis is down

The port is chosen free a moment before starting (redis has no "port 0 and tell me"); a clash is
retried with another port. ``--save ''`` and ``--appendonly no`` keep it in memory.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import redis

from tests.support.pebble import write_listener_pki
from tests.support.procs import Proc, ProcessGroup, free_port, poll_until

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    def __init__(self, workdir: Path, *, group: ProcessGroup, tls: bool = False) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.group = group
        self.port = 0
        self.proc: Proc | None = None
        #: with ``tls``: (ca.pem, cert.pem, key.pem) -- a CA and a 127.0.0.1 certificate; the server
        #: then listens with TLS only (clients are not asked for a certificate)
        self.pki = write_listener_pki(workdir / "pki") if tls else None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, deadline: float = 10.0) -> RedisServer:
        last: Exception | None = None
        for _ in range(5):
            port = self.port or free_port()
            log = (self.workdir / "redis.log").open("ab")
            listen = ["--port", str(port)]
            if self.pki is not None:
                ca, cert, key = self.pki
                listen = ["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert),
                          "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no"]
            proc = self.group.spawn([REDIS_SERVER, "--bind", "127.0.0.1", *listen, "--save", "",
                                     "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no"],
                                    stdout=log, stderr=subprocess.STDOUT)
            log.close()
            self.port, self.proc = port, proc
            try:
                poll_until(lambda p=proc: p.poll() is None and self.cli("PING") is True,  # type: ignore[misc]
                           deadline, what=f"redis-server on {port}")
                return self
            except TimeoutError as exc:
                last = exc
                self.group.stop(proc)
                self.port = 0  # probably a port clash: try another one
        raise RuntimeError(f"redis-server did not start: {last}; log:\n"
                           + (self.workdir / "redis.log").read_text(errors="replace")[-2000:])

    def client(self) -> redis.Redis:
        tls: dict[str, Any] = {} if self.pki is None else {"ssl": True, "ssl_ca_certs": str(self.pki[0])}
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=2, **tls)

    def cli(self, *args: Any) -> Any:
        with self.client() as client:
            return client.execute_command(*args)

    def stop(self) -> None:
        if self.proc is not None:
            self.group.stop(self.proc)
            self.proc = None
