"""The ``ferryman`` command: ``ferryman [run]``, ``ferryman healthcheck``, ``ferryman version``.

Arguments are Traefik's: ``ferryman --configFile=/etc/traefik/traefik.yml`` or flags such as
``--entryPoints.web.address=:80``. Exit codes: 0 success, 1 failure (healthcheck, runtime),
2 unusable static configuration or command line.
"""

from __future__ import annotations

import importlib
import logging
import os
import platform
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO, cast

from ferryman import TRAEFIK_COMPAT, __version__
from ferryman.errors import ConfigError
from ferryman.static import LoadedStatic, load_static

__all__ = ["HEALTHCHECK_TIMEOUT", "healthcheck_url", "main"]

HEALTHCHECK_TIMEOUT = 5.0

USAGE = """\
ferryman {version}: an edge router and reverse proxy that reads Traefik {compat} configuration.

Usage:
  ferryman [FLAGS]               run (the default command)
  ferryman healthcheck [FLAGS]   call the /ping endpoint of a running ferryman (needs ping enabled)
  ferryman version               print the version
  ferryman --help                show this help

Configuration (one source, as Traefik): --configFile=PATH, else the first of traefik.toml,
traefik.yaml, traefik.yml in /etc/traefik/, $XDG_CONFIG_HOME/, $HOME/.config/, ./; else the
flags (--entryPoints.web.address=:80 --providers.file.directory=/etc/traefik/dynamic
--api.insecure --log.level=DEBUG); else TRAEFIK_* environment variables
(TRAEFIK_ENTRYPOINTS_WEB_ADDRESS=:80).
"""

COMMANDS = ("run", "healthcheck", "version", "help")


def _load(args: Sequence[str], err: TextIO) -> LoadedStatic | None:
    try:
        return load_static(args, os.environ, Path.cwd())
    except ConfigError as exc:
        print("ferryman: invalid static configuration:", file=err)
        print(exc.render(), file=err)
        return None


def healthcheck_url(loaded: LoadedStatic) -> str:
    """The ``/ping`` URL of the ping entry point; raises ``LookupError`` saying what is missing."""
    config = loaded.config
    if config.ping is None:
        raise LookupError("ping is not enabled: add `ping: {}` to the static configuration (or --ping)")
    name = config.ping.entry_point or "traefik"
    entry_point = config.entry_points.get(name)
    if entry_point is None:
        raise LookupError(f"ping: the entry point {name!r} does not exist")
    listen = entry_point.listen
    host = listen.host
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{listen.port}/ping"


def _healthcheck(loaded: LoadedStatic, out: TextIO, err: TextIO) -> int:
    try:
        url = healthcheck_url(loaded)
    except LookupError as exc:
        print(f"Error calling healthcheck: {exc}", file=err)
        return 1
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, method="GET"), timeout=HEALTHCHECK_TIMEOUT) as resp:
            status = int(resp.status)
            reason = str(resp.reason)
    except urllib.error.HTTPError as exc:
        status, reason = exc.code, str(exc.reason)
    except (urllib.error.URLError, OSError) as exc:
        why = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        print(f"Error calling healthcheck: {url}: {why}", file=err)
        return 1
    if status != 200:
        print(f"Bad healthcheck status: {status} {reason} ({url})", file=err)
        return 1
    print(f"OK: {url}", file=out)
    return 0


def _version(out: TextIO) -> int:
    print(f"ferryman {__version__}", file=out)
    print(f"Python:      {platform.python_version()} ({platform.python_implementation()})", file=out)
    print(f"OS/Arch:     {sys.platform}/{platform.machine()}", file=out)
    print(f"Traefik:     {TRAEFIK_COMPAT} configuration compatible", file=out)
    return 0


def _run(loaded: LoadedStatic) -> int:
    from ferryman.observability.logs import get_logger, setup_logging

    setup_logging(loaded.config.log)
    log = get_logger("ferryman")
    log.info("Configuration loaded", extra={"fields": {"source": loaded.source}})
    # "Accepted but not implemented" must never be silent: when the log level hides warnings
    # (Traefik's default is ERROR), they still go to stderr.
    for warning in loaded.warnings:
        if log.isEnabledFor(logging.WARNING):
            log.warning(warning)
        else:
            print(f"ferryman: warning: {warning}", file=sys.stderr)
    app = importlib.import_module("ferryman.app")  # lazily: version/healthcheck stay light
    run = cast("Callable[[LoadedStatic], object]", app.run)
    result = run(loaded)
    return result if isinstance(result, int) else 0


def _pid1_args(cmdline: Path = Path("/proc/1/cmdline")) -> list[str]:
    """In a container whose main process is ``ferryman [run] FLAGS`` (a Compose ``command:``),
    those flags: a bare ``ferryman healthcheck`` (the image's HEALTHCHECK) then checks the
    router with the configuration it runs with. Empty anywhere else."""
    try:
        argv = [a.decode("utf-8", "replace") for a in cmdline.read_bytes().split(b"\0") if a]
    except OSError:
        return []
    for i, arg in enumerate(argv[:3]):
        if Path(arg).name == "ferryman" or (arg == "ferryman" and i > 0 and argv[i - 1] == "-m"):
            rest = argv[i + 1:]
            if rest and rest[0] == "run":
                rest = rest[1:]
            return [] if rest and rest[0] in COMMANDS else rest
    return []


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    out, err = sys.stdout, sys.stderr
    command = "run"
    if args and not args[0].startswith("-"):
        command = args.pop(0)
        if command not in COMMANDS:
            print(f"ferryman: unknown command {command!r} (commands: run, healthcheck, version)", file=err)
            print("Run 'ferryman --help' for usage.", file=err)
            return 2
    if command == "help" or any(a in ("-h", "--help", "-help") for a in args):
        print(USAGE.format(version=__version__, compat=TRAEFIK_COMPAT), file=out, end="")
        return 0
    if command == "version":
        return _version(out)
    if command == "healthcheck" and not args:
        args = _pid1_args()
    loaded = _load(args, err)
    if loaded is None:
        return 2
    if command == "healthcheck":
        return _healthcheck(loaded, out, err)
    return _run(loaded)
