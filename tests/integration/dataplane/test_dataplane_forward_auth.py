"""forwardAuth through a real entry point, a real auth server and a real backend (loopback sockets):
what the auth server receives, what the backend sees, what the client gets."""

from __future__ import annotations

import gzip
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ferryman.errors import ConfigError
from ferryman.middlewares import build_middleware
from ferryman.upstream import UpstreamPools
from tests.integration.dataplane.dp_support import (
    Backend,
    Message,
    Reader,
    exchange,
    http_backend,
    lb,
    proxy,
    read_request,
    read_response,
    response,
)
from tests.integration.tls.pki import CA
from tests.unit.middlewares.conformance_support import mw


def _auth(answer: Callable[[Message], bytes]) -> Backend:
    return http_backend(answer)


def _run(config: dict[str, Any], raw: bytes, auth_answer: Callable[[Message], bytes],
         backend_answer: Callable[[Message], bytes] | None = None) -> tuple[Message, list[Message], list[Message]]:
    pools = UpstreamPools()
    with _auth(auth_answer) as auth, http_backend(backend_answer) as backend:
        cfg = {"address": auth.url + "/verify?x=1", **config}
        handler = build_middleware("fa", mw("forwardAuth", cfg), lb(pools, backend.url))
        with proxy(handler, pools=pools) as px:
            got = exchange(px.port, raw)
        return got, list(auth.requests), list(backend.requests)


def ok(extra: dict[str, str] | None = None) -> Callable[[Message], bytes]:
    return lambda req: response(200, b"auth ok", extra)


GET = b"GET /app/page?q=1 HTTP/1.1\r\nHost: app.test:8080\r\nUser-Agent: curl/8\r\nX-Custom: c\r\n\r\n"


def test_legacy_headers_sent_to_the_auth_server_and_2xx_continues() -> None:
    got, seen, backend = _run({}, GET, ok())
    assert got.status == 200 and got.body == b"hello from backend"
    [a] = seen
    assert a.method == "GET" and a.target == "/verify?x=1"
    assert (a.get("host") or "").startswith("127.0.0.1:")
    assert a.get("x-forwarded-method") == "GET"
    assert a.get("x-forwarded-proto") == "http"
    assert a.get("x-forwarded-host") == "app.test:8080"
    assert a.get("x-forwarded-uri") == "/app/page?q=1"
    assert a.get("x-forwarded-for") == "127.0.0.1"
    assert a.get("x-forwarded-port") == "8080"  # the entry point's, kept in legacy mode
    assert a.get("x-real-ip") == "127.0.0.1"
    assert a.get("x-custom") == "c" and a.get("user-agent") == "curl/8"
    assert a.get("accept-encoding") == "gzip"
    assert a.body == b""
    assert len(backend) == 1 and backend[0].target == "/app/page?q=1"


def test_trust_false_strips_forwarded_headers_and_sets_port() -> None:
    raw = b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Prefix: /evil\r\n\r\n"
    _, [a], _ = _run({"trustForwardHeader": False}, raw, ok())
    assert a.get("x-forwarded-prefix") is None and a.get("x-real-ip") is None
    assert a.get("x-forwarded-server") is None
    assert a.get("x-forwarded-port") == "80"
    assert a.get("x-forwarded-host") == "h"
    assert a.get("user-agent") is None  # no client UA: none sent


def test_auth_request_headers_filter() -> None:
    raw = b"GET / HTTP/1.1\r\nHost: h\r\nCookie: s=1\r\nX-Other: o\r\n\r\n"
    _, [a], _ = _run({"authRequestHeaders": ["Cookie"]}, raw, ok())
    assert a.get("cookie") == "s=1" and a.get("x-other") is None
    assert a.get("x-forwarded-uri") == "/" and a.get("user-agent") == "Go-http-client/1.1"


def test_auth_response_headers_replace_request_headers() -> None:
    raw = b"GET / HTTP/1.1\r\nHost: h\r\nX-User: forged\r\nX-Auth-Role: forged\r\n\r\n"
    answer = ok({"X-User": "alice", "X-Auth-Role": "admin", "X-Auth-Team": "ops", "X-Unlisted": "u"})
    _, _, [b] = _run({"authResponseHeaders": ["x-user"], "authResponseHeadersRegex": "^X-Auth-"}, raw, answer)
    assert b.get_all("x-user") == ["alice"]
    assert b.get_all("x-auth-role") == ["admin"] and b.get("x-auth-team") == "ops"
    assert b.get("x-unlisted") is None


def test_listed_header_absent_from_auth_answer_is_removed() -> None:
    raw = b"GET / HTTP/1.1\r\nHost: h\r\nX-User: forged\r\n\r\n"
    _, _, [b] = _run({"authResponseHeaders": ["X-User"]}, raw, ok())
    assert b.get("x-user") is None


def test_denied_answer_relayed_with_absolute_location() -> None:
    def deny(req: Message) -> bytes:
        return response(302, b"go login", {"Location": "/login?next=1", "X-Reason": "nope",
                                           "Content-Type": "text/plain"}, reason="Found")
    got, _, backend = _run({}, GET, deny)
    assert got.status == 302 and got.body == b"go login"
    assert got.get("x-reason") == "nope" and got.get("content-type") == "text/plain"
    location = got.get("location") or ""
    assert location.startswith("http://127.0.0.1:") and location.endswith("/login?next=1")
    assert backend == []


def test_preserve_location_header() -> None:
    def deny(req: Message) -> bytes:
        return response(401, b"", {"Location": "/login"}, reason="Unauthorized")
    got, _, _ = _run({"preserveLocationHeader": True}, GET, deny)
    assert got.status == 401 and got.get("location") == "/login"


def test_auth_signin_url_on_401() -> None:
    got, _, _ = _run({"authSigninURL": "https://sso.test/start"}, GET,
                     lambda req: response(401, b"no", reason="Unauthorized"))
    assert got.status == 302 and got.get("location") == "https://sso.test/start"
    assert got.body == b""


def test_forward_body_and_replay_to_backend() -> None:
    raw = b"POST /submit HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world"
    got, [a], [b] = _run({"forwardBody": True, "preserveRequestMethod": True}, raw, ok())
    assert got.status == 200
    assert a.method == "POST" and a.body == b"hello world" and a.get("content-length") == "11"
    assert b.method == "POST" and b.body == b"hello world"


def test_forward_body_chunked() -> None:
    raw = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    _, [a], [b] = _run({"forwardBody": True}, raw, ok())
    assert a.method == "GET" and a.body == b"hello world" and a.chunked
    assert b.body == b"hello world"


def test_forward_body_over_max_body_size_is_401() -> None:
    raw = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world"
    got, seen, backend = _run({"forwardBody": True, "maxBodySize": 5}, raw, ok())
    assert got.status == 401 and got.body == b"" and seen == [] and backend == []


def test_body_not_forwarded_by_default() -> None:
    raw = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
    _, [a], [b] = _run({}, raw, ok())
    assert a.method == "GET" and a.body == b"" and b.body == b"hello"


def test_preserve_method_post_without_forward_body_sends_empty_body() -> None:
    raw = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
    _, [a], [b] = _run({"preserveRequestMethod": True}, raw, ok())
    assert a.method == "POST" and a.get("content-length") == "0" and b.body == b"hello"


def test_max_response_body_size() -> None:
    got, _, backend = _run({"maxResponseBodySize": 3}, GET, lambda req: response(403, b"forbidden!"))
    assert got.status == 401 and got.body == b"" and backend == []


def test_gzip_answer_decoded() -> None:
    body = gzip.compress(b"please log in")
    got, _, _ = _run({}, GET, lambda req: response(403, body, {"Content-Encoding": "gzip"}))
    assert got.status == 403 and got.body == b"please log in" and got.get("content-encoding") is None


def test_auth_cookies_added_to_response() -> None:
    def auth(req: Message) -> bytes:
        return (b"HTTP/1.1 200 OK\r\nSet-Cookie: session=abc; Path=/\r\nSet-Cookie: other=1\r\n"
                b"Content-Length: 0\r\n\r\n")

    def backend(req: Message) -> bytes:
        return (b"HTTP/1.1 200 OK\r\nSet-Cookie: session=old\r\nSet-Cookie: app=2\r\n"
                b"Content-Length: 2\r\n\r\nok")
    got, _, _ = _run({"addAuthCookiesToResponse": ["session"]}, GET, auth, backend)
    assert got.get_all("set-cookie") == ["app=2", "session=abc; Path=/"]


def test_auth_server_down_is_500() -> None:
    pools = UpstreamPools()
    with http_backend() as backend:
        dead = Backend(lambda sock: None)
        url = dead.url
        dead.close()
        handler = build_middleware("fa", mw("forwardAuth", {"address": url}), lb(pools, backend.url))
        with proxy(handler, pools=pools) as px:
            got = exchange(px.port, GET)
    assert got.status == 500 and got.body == b"" and got.get("content-type") is None
    assert backend.requests == []


def test_keep_alive_to_the_auth_server() -> None:
    pools = UpstreamPools()
    with _auth(ok()) as auth, http_backend() as backend:
        handler = build_middleware("fa", mw("forwardAuth", {"address": auth.url}), lb(pools, backend.url))
        with proxy(handler, pools=pools) as px, px.connect() as sock:
            reader = Reader(sock)
            for _ in range(5):
                sock.sendall(GET)
                assert read_response(reader).status == 200
    assert len(auth.requests) == 5 and auth.connections == 1


# -------------------------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def ca() -> CA:
    return CA()


@pytest.fixture
def tls_auth(ca: CA, tmp_path: Path) -> Iterator[tuple[int, list[str]]]:
    """An HTTPS auth server requiring a client certificate; records the client certificate's CN."""
    cert, key = ca.issue("localhost", dns=("localhost",)).write(tmp_path, "server")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(cadata=ca.pem)
    ctx.verify_mode = ssl.CERT_REQUIRED
    seen: list[str] = []

    def serve(sock: Any) -> None:
        try:
            tls = ctx.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError):
            return
        peer: dict[str, Any] = dict(tls.getpeercert() or {})
        seen.extend(value for rdn in peer.get("subject", ()) for key, value in rdn if key == "commonName")
        read_request(Reader(tls))
        tls.sendall(response(200, b""))
        tls.close()

    backend = Backend(serve)
    try:
        yield backend.port, seen
    finally:
        backend.close()


def test_https_auth_server_with_client_certificate(ca: CA, tls_auth: tuple[int, list[str]],
                                                    tmp_path: Path) -> None:
    port, seen = tls_auth
    client = ca.issue("ferryman-client", client=True)
    cert_file, _ = client.write(tmp_path, "client")
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(ca.pem)
    pools = UpstreamPools()
    config = {"address": f"https://localhost:{port}/auth",
              "tls": {"ca": str(ca_file), "cert": str(cert_file), "key": client.key_pem}}
    with http_backend() as backend:
        handler = build_middleware("fa", mw("forwardAuth", config), lb(pools, backend.url))
        with proxy(handler, pools=pools) as px:
            got = exchange(px.port, GET)
    assert got.status == 200 and seen == ["ferryman-client"]


def test_https_auth_server_untrusted_is_500(tls_auth: tuple[int, list[str]]) -> None:
    port, seen = tls_auth
    pools = UpstreamPools()
    with http_backend() as backend:
        handler = build_middleware("fa", mw("forwardAuth", {"address": f"https://localhost:{port}/"}),
                                   lb(pools, backend.url))
        with proxy(handler, pools=pools) as px:
            assert exchange(px.port, GET).status == 500
    assert seen == []


@pytest.mark.parametrize("config, fix", [
    ({}, "address"),
    ({"address": "ftp://x/"}, "http"),
    ({"address": "https://x/", "tls": {"cert": "/nope"}}, "cert and key"),
    ({"address": "http://x/", "authResponseHeadersRegex": "(("}, "authResponseHeadersRegex"),
])
def test_config_errors(config: dict[str, Any], fix: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_middleware("fa", mw("forwardAuth", config), lb(UpstreamPools(), "http://127.0.0.1:1"))
    assert fix.lower() in str(err.value).lower() or fix.lower() in (err.value.fix or "").lower()

