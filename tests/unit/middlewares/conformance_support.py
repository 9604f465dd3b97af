"""Shared pieces for replaying Traefik's middleware vectors (shared conformance data) in memory.

* :func:`conformance_cases` loads ``middlewares.json`` from ``<repo>/../shared`` or
  ``$FERRYMAN_SHARED_DIR`` (empty list when absent: the tests skip);
* :func:`case_exchange` turns a case's ``request`` into an :class:`Exchange` on a
  :class:`FakeDownstream` (peer from ``remote_addr``, ``X-Forwarded-For`` from a trusted peer as
  the entry point would hand it over);
* :class:`Upstream` is the next handler: records what it received, answers with the case's
  ``upstream`` status and ``header_ops`` through ``ex.sink`` (so response hooks run);
* :func:`final_head` reads the response head the client got.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ferryman.dynamic.models import Middleware
from ferryman.http.exchange import ConnInfo, Exchange, Headers
from ferryman.http.forwarded import XF_FOR, ForwardingPolicy
from ferryman.ipnet import split_host_port
from tests.unit.http.test_http_exchange import FakeDownstream

__all__ = ["ENTRY_POINT_HEADERS", "Upstream", "case_exchange", "conformance_cases", "final_head", "mw",
           "shared_dir"]

#: Headers Traefik's entry point adds before any middleware (not part of a handler-level Go test).
ENTRY_POINT_HEADERS = frozenset({b"x-forwarded-proto", b"x-forwarded-port", b"x-forwarded-host",
                                 b"x-forwarded-server", b"x-real-ip"})


def shared_dir() -> Path:
    env = os.environ.get("FERRYMAN_SHARED_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[4] / "shared"


def conformance_cases(kind: str) -> list[dict[str, Any]]:
    path = shared_dir() / "conformance" / "middlewares.json"
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    return [c for c in data["cases"] if c.get("middleware") == kind]


def case_id(case: dict[str, Any]) -> str:
    """The Go test and sub-test name (sub-test names may contain ``:``)."""
    return str(case["source"].partition(".go:")[2])


def mw(kind: str, config: object) -> Middleware:
    """A middleware model from Traefik's keys."""
    return Middleware.model_validate({kind: config})


def case_exchange(req: dict[str, Any]) -> tuple[Exchange, FakeDownstream]:
    remote = req.get("remote_addr") or ""
    split = split_host_port(remote)
    ip, port = (split[0], int(split[1] or 0)) if split is not None else (remote, 0)
    info = ConnInfo("web", ip, port, bool(req.get("tls")), ForwardingPolicy(insecure=True, hostname="edge"))
    url = urlsplit(req["url"])
    path = (url.path or "/").encode()
    query = url.query.encode() if url.query else None
    target = path + (b"?" + query if query is not None else b"")
    headers: Headers = []
    xff: list[bytes] = []
    for name, values in req.get("headers", {}).items():
        for value in values:
            if name.lower() == "x-forwarded-for":
                xff.append(value.encode())
            else:
                headers.append((name.lower().encode(), value.encode()))
    down = FakeDownstream()
    ex = Exchange(info, down, req["method"].encode(), target, path, query, b"1.1", headers,
                  req.get("host", "").encode(), 0)
    if xff:
        ex.xff_prior = b", ".join(xff)
        ex.xf_present = ex.xf_present | XF_FOR  # a trusted peer sent it
    return ex, down


class Upstream:
    """The next handler: records the request it got and answers like the Go test's handler."""

    def __init__(self, status: int = 200, header_ops: list[dict[str, str]] | None = None) -> None:
        self.status = status
        self.header_ops = header_ops or []
        self.seen: list[Exchange] = []
        self.headers: Headers = []
        self.authority = b""
        self.omit_xff = False

    def handle(self, ex: Exchange) -> None:
        self.seen.append(ex)
        self.headers = list(ex.headers)
        self.authority = ex.authority
        self.omit_xff = ex.omit_xff
        out: Headers = []
        for op in self.header_ops:
            name = op["name"].encode()
            if op["op"] == "set":
                out = [h for h in out if h[0].lower() != name.lower()]
            out.append((name, op["value"].encode()))
        ex.send_head(self.status, out, 0)
        ex.send_end(None)

    def forwarded(self) -> dict[str, list[str]]:
        """The request headers the upstream got (canonical names), entry-point X-Forwarded-* left out."""
        out: dict[str, list[str]] = {}
        for name, value in self.headers:
            if name in ENTRY_POINT_HEADERS:
                continue
            out.setdefault(canonical(name.decode()), []).append(value.decode())
        return out


def canonical(name: str) -> str:
    """Go's ``CanonicalMIMEHeaderKey``."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def final_head(down: FakeDownstream) -> tuple[int, dict[str, list[str]], int]:
    """``(status, headers by canonical name without Date, body length)`` of the response sent."""
    for kind, value in down.calls:
        if kind == "head":
            status, headers, length = value
            out: dict[str, list[str]] = {}
            for name, val in headers:
                key = canonical(name.decode())
                if key == "Date":
                    continue
                out.setdefault(key, []).append(val.decode())
            return status, out, length
    raise AssertionError(f"no response head was sent: {down.calls!r}")
