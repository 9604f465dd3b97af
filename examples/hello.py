#!/usr/bin/env python3
"""A tiny HTTP/1.1 backend for ferryman's demo and tests (stdlib only, asyncio).

    python examples/hello.py --port 0 --name v1 [--host 127.0.0.1]

Prints one JSON line to stdout once it is listening, e.g.
``{"event": "listening", "host": "127.0.0.1", "port": 40123, "name": "v1", "pid": 4242}``
so a test can read the real port. Every response carries ``X-Served-By: <name>``.

Endpoints (any method):
  /healthz        200 ``{"status": "ok", "name": ...}``
  /echo[...]      200 JSON describing what arrived: method, target, path, query, version,
                  headers (list of [name, value] pairs as sent), trailers, body length and sha256,
                  client address, name
  /status/<code>  respond with that status code (body ``<code>\\n``)
  anything else   200 ``Hello from <name>\\n`` (text/plain)

HTTP/1.1 keep-alive (HTTP/1.0 with ``Connection: keep-alive``), ``Content-Length`` and
``Transfer-Encoding: chunked`` request bodies (with trailers), ``Expect: 100-continue``,
HEAD. One JSON access-log line per request on stderr. SIGTERM/SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024


class BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    trailers: list[tuple[str, str]] = field(default_factory=list)
    chunked: bool = False

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return None

    def tokens(self, name: str) -> set[str]:
        lname = name.lower()
        out: set[str] = set()
        for k, v in self.headers:
            if k.lower() == lname:
                out.update(t.strip().lower() for t in v.split(",") if t.strip())
        return out


def _parse_fields(block: bytes) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    for raw in block.split(b"\r\n"):
        if not raw:
            continue
        if raw[:1] in (b" ", b"\t"):
            raise BadRequest(400, "obsolete line folding")
        name, sep, value = raw.partition(b":")
        if not sep or not name or name != name.strip():
            raise BadRequest(400, "malformed header line")
        fields.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    return fields


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError as exc:
        raise BadRequest(400, "line too long") from exc
    return line.rstrip(b"\r\n")


async def read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request | None:
    """Read one request; None on a clean EOF between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise BadRequest(400, "truncated request head") from exc
    except asyncio.LimitOverrunError as exc:
        raise BadRequest(431, "request head too large") from exc
    head = head.lstrip(b"\r\n")  # tolerate stray CRLF before a request line
    line, _, rest = head.partition(b"\r\n")
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise BadRequest(400, "malformed request line")
    method, target, version = (p.decode("latin-1") for p in parts)
    req = Request(method, target, version, _parse_fields(rest))

    te = req.tokens("transfer-encoding")
    cl = [v for k, v in req.headers if k.lower() == "content-length"]
    if te and cl:
        raise BadRequest(400, "both Transfer-Encoding and Content-Length")
    if te and te != {"chunked"}:
        raise BadRequest(501, "unsupported transfer-coding")
    if "100-continue" in req.tokens("expect") and (te or (cl and cl[0] != "0")):
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    if te:
        req.chunked = True
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = await _read_line(reader)
            size_txt = size_line.split(b";", 1)[0].strip()
            try:
                size = int(size_txt, 16)
            except ValueError as exc:
                raise BadRequest(400, "bad chunk size") from exc
            if size < 0:
                raise BadRequest(400, "bad chunk size")
            if size == 0:
                break
            total += size
            if total > MAX_BODY:
                raise BadRequest(413, "body too large")
            data = await reader.readexactly(size + 2)
            if data[-2:] != b"\r\n":
                raise BadRequest(400, "chunk not terminated by CRLF")
            chunks.append(data[:-2])
        trailer_lines = []
        while True:
            tl = await _read_line(reader)
            if not tl:
                break
            trailer_lines.append(tl)
        req.trailers = _parse_fields(b"\r\n".join(trailer_lines))
        req.body = b"".join(chunks)
    elif cl:
        if len(set(cl)) != 1 or not cl[0].isdigit():
            raise BadRequest(400, "bad Content-Length")
        length = int(cl[0])
        if length > MAX_BODY:
            raise BadRequest(413, "body too large")
        req.body = await reader.readexactly(length)
    return req


def wants_keep_alive(req: Request) -> bool:
    conn = req.tokens("connection")
    if req.version == "HTTP/1.0":
        return "keep-alive" in conn
    return "close" not in conn


def handle(req: Request, name: str, peer: str) -> tuple[int, str, bytes]:
    path, _, query = req.target.partition("?")
    if req.target.startswith(("http://", "https://")):  # absolute-form
        parts = urlsplit(req.target)
        path, query = parts.path or "/", parts.query
    if path == "/healthz":
        return 200, "application/json", _json({"status": "ok", "name": name})
    if path == "/echo" or path.startswith("/echo/"):
        return (
            200,
            "application/json",
            _json(
                {
                    "name": name,
                    "method": req.method,
                    "target": req.target,
                    "path": path,
                    "query": query,
                    "version": req.version,
                    "headers": [[k, v] for k, v in req.headers],
                    "trailers": [[k, v] for k, v in req.trailers],
                    "chunked": req.chunked,
                    "body_length": len(req.body),
                    "body_sha256": hashlib.sha256(req.body).hexdigest(),
                    "client": peer,
                }
            ),
        )
    if path.startswith("/status/"):
        try:
            code = int(path[len("/status/") :])
        except ValueError:
            code = 0
        if 200 <= code <= 599:
            return code, "text/plain; charset=utf-8", f"{code}\n".encode()
        return 400, "text/plain; charset=utf-8", b"bad status\n"
    return 200, "text/plain; charset=utf-8", f"Hello from {name}\n".encode()


def _json(obj: object) -> bytes:
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _log(**fields: object) -> None:
    sys.stderr.write(json.dumps(fields, separators=(",", ":")) + "\n")
    sys.stderr.flush()


class Server:
    def __init__(self, name: str) -> None:
        self.name = name

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)
        try:
            while True:
                started = time.monotonic()
                try:
                    req = await read_request(reader, writer)
                except BadRequest as exc:
                    body = f"{exc}\n".encode()
                    writer.write(self._head(exc.status, "text/plain; charset=utf-8", len(body), False) + body)
                    await writer.drain()
                    _log(name=self.name, client=peer, status=exc.status, error=str(exc))
                    return
                except asyncio.IncompleteReadError:
                    return
                if req is None:
                    return
                status, ctype, body = handle(req, self.name, peer)
                keep = wants_keep_alive(req)
                head = self._head(status, ctype, len(body), keep, http10=req.version == "HTTP/1.0")
                writer.write(head if req.method == "HEAD" else head + body)
                await writer.drain()
                _log(
                    time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    name=self.name,
                    client=peer,
                    method=req.method,
                    target=req.target,
                    version=req.version,
                    status=status,
                    request_body=len(req.body),
                    bytes=len(body),
                    duration_ms=round((time.monotonic() - started) * 1000, 3),
                )
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _head(self, status: int, ctype: str, length: int, keep: bool, http10: bool = False) -> bytes:
        lines = [
            f"HTTP/1.1 {status} {_reason(status)}",
            f"Content-Type: {ctype}",
            f"Content-Length: {length}",
            f"X-Served-By: {self.name}",
        ]
        if not keep:
            lines.append("Connection: close")
        elif http10:
            lines.append("Connection: keep-alive")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def main_async(args: argparse.Namespace) -> None:
    server = Server(args.name)
    srv = await asyncio.start_server(server.connection, args.host, args.port, limit=MAX_HEAD)
    port = srv.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    print(
        json.dumps(
            {"event": "listening", "host": args.host, "port": port, "name": args.name, "pid": os.getpid()}
        ),
        flush=True,
    )
    async with srv:
        await stop.wait()
    _log(event="stopped", name=args.name)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default 0)")
    p.add_argument("--name", default="hello", help="name used in responses and logs (default hello)")
    args = p.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
