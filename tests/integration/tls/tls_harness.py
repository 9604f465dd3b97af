"""In-process TLS entry point driven by the real merge + compile pipeline (uvloop in a thread),
and blocking Python ``ssl`` clients."""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from ferryman.control.compile import Builders, Snapshot, compile_snapshot
from ferryman.dynamic.decode import decode_document
from ferryman.dynamic.merge import EntryPointInfo, MergeSettings, merge
from ferryman.http.exchange import Exchange, Handler
from ferryman.server.entrypoint import EntryPoint, EntryPointSettings
from tests.integration.dataplane.dp_support import DEADLINE, LoopThread


class Echo:
    """Answers with what the connection looked like: router, TLS flag, scheme, client address."""

    def handle(self, ex: Exchange) -> None:
        conn = ex.conn
        body = f"router={ex.router} tls={conn.tls} scheme={conn.scheme.decode()} client={conn.client_ip}"
        ex.respond(200, (), body.encode())


def _refuse(*_args: Any) -> Handler:
    raise AssertionError("only echo@internal is used in these tests")


BUILDERS = Builders(load_balancer=lambda name, model, tname, transport: _refuse(name, model, tname, transport),
                    weighted=lambda name, model, children: _refuse(name, model, children),
                    middleware=lambda name, model, nxt: _refuse(name, model, nxt),
                    internal={"echo@internal": Echo()})


class Harness:
    def __init__(self, lt: LoopThread, ep: EntryPoint, ep_tls: bool) -> None:
        self.lt = lt
        self.ep = ep
        self.ep_tls = ep_tls
        self.snapshot: Snapshot | None = None

    @property
    def port(self) -> int:
        return self.ep.bound_port

    def apply(self, dynamic_yaml: str) -> Snapshot:
        decoded = decode_document(dynamic_yaml, source="dyn.yml", fmt="yaml")
        assert not decoded.errors, decoded.errors
        settings = MergeSettings(entry_points=(EntryPointInfo(name="web", port=self.port, tls=self.ep_tls),),
                                 internal_services=("noop", "echo"))
        merged = merge({"file": decoded.config}, settings)
        snap = compile_snapshot(merged, ["web"], BUILDERS, previous=self.snapshot,
                                tls_entry_points=["web"] if self.ep_tls else [])
        ep = self.ep

        def swap() -> None:
            ep.routes = snap.table("web")
            ep.tls_routes = snap.table("web", tls=True)
            ep.tls = snap.tls.get("web")

        self.lt.call(swap)
        self.snapshot = snap
        return snap


@contextlib.contextmanager
def harness(dynamic_yaml: str, *, ep_tls: bool = False, **settings: Any) -> Iterator[Harness]:
    lt = LoopThread()
    ep = EntryPoint(EntryPointSettings(name="web", host="127.0.0.1", port=0, **settings), None,
                    hostname="ferryman-test")
    try:
        lt.run(ep.start())
        h = Harness(lt, ep, ep_tls)
        h.apply(dynamic_yaml)
        yield h
    finally:
        with contextlib.suppress(Exception):
            lt.run(ep.shutdown(), 30)
        lt.stop()


# --------------------------------------------------------------------------------------------
# clients


def client_context(ca_pem: str | None = None, *, minimum: ssl.TLSVersion | None = None,
                   maximum: ssl.TLSVersion | None = None, ciphers: str | None = None,
                   cert: tuple[str, str] | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if ca_pem is None:
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(cadata=ca_pem)
    if minimum is not None or maximum is not None:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    if cert is not None:
        ctx.load_cert_chain(cert[0], cert[1])
    return ctx


@dataclass
class Result:
    status: int
    body: str
    peer_cn: str
    version: str
    cipher: str


def _cn(der: bytes | None) -> str:
    if not der:
        return ""
    cert = x509.load_der_x509_certificate(der)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def https_get(port: int, sni: str | None, ctx: ssl.SSLContext | None = None, *, host: str | None = None,
              path: str = "/") -> Result:
    """One HTTPS request (raises ``ssl.SSLError``/``OSError`` when the handshake is refused)."""
    ctx = ctx or client_context()
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as raw, \
            ctx.wrap_socket(raw, server_hostname=sni) as tls:
        peer_cn = _cn(tls.getpeercert(binary_form=True))
        cipher = tls.cipher()
        version = tls.version() or ""
        hostname = host or sni or "localhost"
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {hostname}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            try:
                chunk = tls.recv(65536)
            except (ssl.SSLZeroReturnError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
        if not data:
            raise ConnectionError("the server closed the TLS connection without answering")
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        return Result(status, body.decode("utf-8", "replace"), peer_cn, version, cipher[0] if cipher else "")


def http_get(port: int, host: str, path: str = "/") -> tuple[int, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body.decode()
