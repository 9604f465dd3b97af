"""A real gRPC service for tests: stubs generated with ``grpc_tools.protoc`` at first use (into a
temporary directory), a threaded grpcio server on port 0 (h2c or TLS), and channels to it.

Service ``ferrytest.Echo``:

* ``Unary(Msg) -> Msg``: echoes ``text`` and ``blob``; ``count`` is set to the request's blob
  length; trailing metadata ``x-served-by: <name>`` and ``x-authority`` (the ``:authority`` it saw);
  ``text == "fail"`` aborts with ``PERMISSION_DENIED`` / ``"denied by test"``.
* ``ServerStream(Msg) -> stream Msg``: ``count`` messages ``"<text> <i>"``.
* ``Bidi(stream Msg) -> stream Msg``: each message back, text upper-cased, as it arrives.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from collections.abc import Iterator
from concurrent import futures
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc  # type: ignore[import-untyped]

PROTO = """
syntax = "proto3";
package ferrytest;
service Echo {
  rpc Unary (Msg) returns (Msg);
  rpc ServerStream (Msg) returns (stream Msg);
  rpc Bidi (stream Msg) returns (stream Msg);
}
message Msg { string text = 1; int32 count = 2; bytes blob = 3; }
"""


@cache
def modules() -> tuple[ModuleType, ModuleType]:
    """``(echo_pb2, echo_pb2_grpc)``, generated once per test process."""
    from grpc_tools import protoc  # type: ignore[import-untyped]

    out = Path(tempfile.mkdtemp(prefix="ferryman-grpc-"))
    (out / "ferrytest_echo.proto").write_text(PROTO)
    rc = protoc.main(["protoc", f"-I{out}", f"--python_out={out}", f"--grpc_python_out={out}",
                      str(out / "ferrytest_echo.proto")])
    if rc != 0:
        raise RuntimeError(f"grpc_tools.protoc failed ({rc})")
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module("ferrytest_echo_pb2"), importlib.import_module("ferrytest_echo_pb2_grpc")
    finally:
        sys.path.remove(str(out))


def msg(text: str = "", count: int = 0, blob: bytes = b"") -> Any:
    pb2, _ = modules()
    return pb2.Msg(text=text, count=count, blob=blob)


class _Servicer:
    def __init__(self, name: str) -> None:
        self.name = name

    def Unary(self, request: Any, context: grpc.ServicerContext) -> Any:
        authority = dict(context.invocation_metadata()).get(":authority", "")
        context.set_trailing_metadata((("x-served-by", self.name), ("x-authority", str(authority))))
        if request.text == "fail":
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "denied by test")
        return msg(request.text, len(request.blob), request.blob)

    def ServerStream(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        for i in range(request.count):
            yield msg(f"{request.text} {i}", i)

    def Bidi(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        for request in requests:
            yield msg(request.text.upper(), request.count)


def start_server(name: str = "backend", *, cert: tuple[str, str] | None = None) -> tuple[grpc.Server, int]:
    """A running gRPC server on 127.0.0.1 (h2c, or TLS with ``cert`` = (cert PEM, key PEM))."""
    _, pb2_grpc = modules()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    pb2_grpc.add_EchoServicer_to_server(_Servicer(name), server)
    if cert is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        creds = grpc.ssl_server_credentials([(cert[1].encode(), cert[0].encode())])
        port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    return server, port


def stub(channel: grpc.Channel) -> Any:
    _, pb2_grpc = modules()
    return pb2_grpc.EchoStub(channel)
