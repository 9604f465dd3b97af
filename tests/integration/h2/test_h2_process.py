"""HTTP/2 against the real ferryman process: static ``http2.maxConcurrentStreams`` reaches the
SETTINGS frame, and SIGTERM sends GOAWAY while the open stream finishes."""

from __future__ import annotations

import signal
import socket
import threading

from h2.errors import ErrorCodes

from tests.integration.conftest import StartFerryman
from tests.integration.h2.h2_support import H2Client


def test_sigterm_sends_goaway_and_the_open_stream_finishes(ferryman: StartFerryman) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    bport = listener.getsockname()[1]
    accepted = threading.Event()
    release = threading.Event()

    def slow_backend() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        accepted.set()
        release.wait(20)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")
        conn.close()

    threading.Thread(target=slow_backend, daemon=True).start()
    fm = ferryman(static={"entryPoints": {"web": {"address": "127.0.0.1:0",
                                                  "http2": {"maxConcurrentStreams": 17},
                                                  "transport": {"lifeCycle": {"graceTimeOut": "10s"}}}}},
                  dynamic={"http": {"routers": {"app": {"rule": "PathPrefix(`/`)", "service": "slow"}},
                                    "services": {"slow": {"loadBalancer": {
                                        "servers": [{"url": f"http://127.0.0.1:{bport}"}]}}}}})
    client = H2Client(fm.ports["web"])
    try:
        client.until(lambda: client.conn.remote_settings.max_concurrent_streams == 17)
        sid = client.request("/")
        assert accepted.wait(10)
        fm.signal(signal.SIGTERM)
        client.until(lambda: client.goaway() is not None)
        assert client.goaway() == (sid, ErrorCodes.NO_ERROR)
        assert not client.ended(sid)
        release.set()
        assert client.response(sid)[::2] == (200, b"done")
        client.until(lambda: client.closed)
        assert fm.wait_exit(15) == 0
    finally:
        release.set()
        client.close()
        listener.close()
