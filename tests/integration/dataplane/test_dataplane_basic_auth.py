"""basicAuth through a real entry point and backend: the challenge on the wire, and a bcrypt check
that runs off the event loop on a keep-alive connection (cached after the first request)."""

from __future__ import annotations

import base64

from ferryman.middlewares import build_middleware
from ferryman.upstream import UpstreamPools
from tests.integration.dataplane.dp_support import Reader, http_backend, lb, proxy, read_response
from tests.unit.middlewares.conformance_support import mw

BCRYPT_2Y = "u:$2y$04$TcC9Cv9sCvsT.LOlHObsRO/0xnbuQdXTYP3SNheFQhmYiH/iLSJK."  # password "secret"


def _get(credentials: str | None) -> bytes:
    auth = f"Authorization: Basic {base64.b64encode(credentials.encode()).decode()}\r\n" if credentials else ""
    return f"GET /x HTTP/1.1\r\nHost: h\r\n{auth}\r\n".encode()


def test_basic_auth_on_the_wire_keep_alive() -> None:
    pools = UpstreamPools()
    config = {"users": [BCRYPT_2Y], "headerField": "X-User", "removeHeader": True}
    with http_backend() as backend:
        handler = build_middleware("auth", mw("basicAuth", config), lb(pools, backend.url))
        with proxy(handler, pools=pools) as px, px.connect() as sock:
            reader = Reader(sock)
            sock.sendall(_get(None))
            denied = read_response(reader)
            assert denied.status == 401
            assert denied.get("www-authenticate") == 'Basic realm="traefik"'
            assert denied.get("content-type") == "text/plain"
            assert denied.body == b"401 Unauthorized\n"
            for _ in range(3):  # same connection: bcrypt off the loop once, then cached
                sock.sendall(_get("u:secret"))
                ok = read_response(reader)
                assert ok.status == 200 and ok.body == b"hello from backend"
            sock.sendall(_get("u:wrong"))
            assert read_response(reader).status == 401
    assert len(backend.requests) == 3
    assert all(r.get("x-user") == "u" and r.get("authorization") is None for r in backend.requests)
