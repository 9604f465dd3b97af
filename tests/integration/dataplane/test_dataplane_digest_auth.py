"""digestAuth (and basicAuth with htpasswd files) through a real entry point and backend: curl
--digest / --basic as real clients, and hand-computed RFC 2617 responses for replay, stale nonce
counts, the uri check and the opaque check."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ferryman.errors import ConfigError
from ferryman.middlewares import build_middleware
from ferryman.middlewares.digest_auth import parse_pairs
from ferryman.upstream import UpstreamPools
from tests.integration.dataplane.dp_support import Reader, http_backend, lb, proxy, read_response
from tests.unit.middlewares.conformance_support import mw

needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def htdigest(user: str, realm: str, password: str) -> str:
    return f"{user}:{realm}:{md5(f'{user}:{realm}:{password}')}"


def curl(port: int, *args: str) -> tuple[int, str]:
    out = subprocess.run(["curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}", *args,
                          f"http://127.0.0.1:{port}/private/page?x=1"],
                         capture_output=True, text=True, timeout=20, check=False)
    return int(out.stdout or 0), out.stderr


@needs_curl
def test_curl_digest_with_users_file(tmp_path: Path) -> None:
    users = tmp_path / "users.htdigest"
    users.write_text("# comment\n\n" + htdigest("alice", "traefik", "wonderland") + "\n"
                     + htdigest("bob", "other-realm", "builder") + "\n")
    pools = UpstreamPools()
    with http_backend() as backend:
        config = {"usersFile": str(users), "headerField": "X-User", "removeHeader": True}
        handler = build_middleware("d", mw("digestAuth", config), lb(pools, backend.url))
        with proxy(handler, pools=pools) as px:
            assert curl(px.port, "--digest", "-u", "alice:wonderland")[0] == 200
            assert curl(px.port, "--digest", "-u", "alice:wrong")[0] == 401
            assert curl(px.port, "--digest", "-u", "bob:builder")[0] == 401  # another realm
            assert curl(px.port)[0] == 401
    [seen] = backend.requests
    assert seen.get("x-user") == "alice" and seen.get("authorization") is None


def _authorization(challenge: str, user: str, password: str, method: str, uri: str, nc: int,
                   realm: str = "traefik", opaque: str | None = None) -> str:
    params = parse_pairs(challenge.removeprefix("Digest "))
    ha1 = md5(f"{user}:{realm}:{password}")
    ha2 = md5(f"{method}:{uri}")
    cnonce, nc_text = "0a4f113b", f"{nc:08x}"
    response = md5(f"{ha1}:{params['nonce']}:{nc_text}:{cnonce}:auth:{ha2}")
    return (f'Digest username="{user}", realm="{realm}", nonce="{params["nonce"]}", uri="{uri}", '
            f'algorithm=MD5, qop=auth, nc={nc_text}, cnonce="{cnonce}", response="{response}", '
            f'opaque="{opaque if opaque is not None else params["opaque"]}"')


def test_nonce_counts_uri_and_opaque() -> None:
    pools = UpstreamPools()
    with http_backend() as backend:
        handler = build_middleware("d", mw("digestAuth", {"users": [htdigest("u", "traefik", "pw")]}),
                                   lb(pools, backend.url))
        with proxy(handler, pools=pools) as px, px.connect() as sock:
            reader = Reader(sock)

            def send(target: str, authorization: str | None = None) -> tuple[int, str]:
                auth = f"Authorization: {authorization}\r\n" if authorization else ""
                sock.sendall(f"GET {target} HTTP/1.1\r\nHost: h\r\n{auth}\r\n".encode())
                res = read_response(reader)
                return res.status, res.get("www-authenticate") or ""

            status, challenge = send("/a/b")
            assert status == 401
            assert re.fullmatch(r'Digest realm="traefik", nonce="[A-Za-z0-9+/]{16}", '
                                r'opaque="[A-Za-z0-9+/]{16}", algorithm="MD5", qop="auth"', challenge)
            assert send("/a/b", _authorization(challenge, "u", "pw", "GET", "/a/b", 1))[0] == 200
            assert send("/a/b", _authorization(challenge, "u", "pw", "GET", "/a/b", 2))[0] == 200
            # the same count again: a replay
            assert send("/a/b", _authorization(challenge, "u", "pw", "GET", "/a/b", 2))[0] == 401
            # a smaller count: out of order, the client is told the nonce is stale
            status, stale = send("/a/b", _authorization(challenge, "u", "pw", "GET", "/a/b", 1))
            assert status == 401 and 'stale="true", algorithm="MD5"' in stale
            # uri may be a path prefix of the request path (go-http-auth's historical leniency)
            assert send("/a/b/c", _authorization(challenge, "u", "pw", "GET", "/a/b", 3))[0] == 200
            assert send("/x", _authorization(challenge, "u", "pw", "GET", "/a/b", 4))[0] == 401
            assert send("/a/b", _authorization(challenge, "u", "pw", "GET", "/a/b", 5, opaque="other"))[0] == 401
            # a nonce this middleware never issued
            forged = challenge.replace(parse_pairs(challenge[7:])["nonce"], "AAAAAAAAAAAAAAAA")
            assert send("/a/b", _authorization(forged, "u", "pw", "GET", "/a/b", 1))[0] == 401
    assert len(backend.requests) == 3


def test_malformed_user_line() -> None:
    with pytest.raises(ConfigError, match="user:realm:hash"):
        build_middleware("d", mw("digestAuth", {"users": ["u:hash"]}), lb(UpstreamPools(), "http://127.0.0.1:1"))


@needs_curl
def test_basic_auth_htpasswd_file_from_openssl(tmp_path: Path) -> None:
    """apr1 and MD5-crypt lines made by ``openssl passwd``, ``{SHA}`` as ``htpasswd -s`` writes it."""
    def openssl(*args: str) -> str:
        return subprocess.run(["openssl", "passwd", *args], capture_output=True, text=True, check=True).stdout.strip()

    sha = "{SHA}" + base64.b64encode(hashlib.sha1(b"sha-pass").digest()).decode()
    users = tmp_path / ".htpasswd"
    users.write_text(f"apr:{openssl('-apr1', 'apr-pass')}\nmd5:{openssl('-1', 'md5-pass')}\nsha:{sha}\n")
    pools = UpstreamPools()
    with http_backend() as backend:
        handler = build_middleware("b", mw("basicAuth", {"usersFile": str(users)}), lb(pools, backend.url))
        with proxy(handler, pools=pools) as px:
            for user, password in (("apr", "apr-pass"), ("md5", "md5-pass"), ("sha", "sha-pass")):
                assert curl(px.port, "-u", f"{user}:{password}")[0] == 200, user
                assert curl(px.port, "-u", f"{user}:nope")[0] == 401, user
