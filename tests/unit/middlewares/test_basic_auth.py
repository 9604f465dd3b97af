"""``basicAuth``: htpasswd hash formats, Traefik's user tables, the 401 challenge, the success cache
and the off-loop bcrypt check (in memory)."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import pytest

from ferryman.dynamic.models import BasicAuth
from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange, Handler, Headers
from ferryman.middlewares import basic_auth, build_middleware
from ferryman.middlewares.basic_auth import check_secret, md5_crypt, parse_basic_credentials
from tests.unit.middlewares.conformance_support import Upstream, case_exchange, final_head, mw

# Traefik's own vectors (pkg/middlewares/auth/basic_auth_test.go): user -> (hash, password).
TEST = "test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/"
TEST2 = "test2:$apr1$d9hr9HBB$4HxwgUir3HP4EsggP/QNo0"
TEST2_OVERRIDDEN = "test2:$apr1$mK.GtItK$ncnLYvNLek0weXdxo68690"
TEST3 = "test3:$apr1$3rJbDP0q$RfzJiorTk78jQ1EcKqWso0"
BCRYPT_2A = "$2a$04$.8sTYfcxbSplCtoxt5TdJOgpBYkarKtZYsYfYxQ1edbYRuO1DNi0e"  # "test"
BCRYPT_2Y = "$2y$04$TcC9Cv9sCvsT.LOlHObsRO/0xnbuQdXTYP3SNheFQhmYiH/iLSJK."  # "secret", htpasswd -B style


def _auth(user: str, password: str) -> dict[str, list[str]]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": [f"Basic {token}"]}


def _request(headers: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {"method": "GET", "url": "/", "host": "h", "tls": False, "headers": headers or {},
            "remote_addr": "192.0.2.1:1234"}


def _build(config: dict[str, Any], nxt: Handler | None = None) -> Handler:
    return build_middleware("auth", mw("basicAuth", config), nxt or Upstream())


def _status(handler: Handler, headers: dict[str, list[str]] | None = None) -> int:
    ex, down = case_exchange(_request(headers))
    handler.handle(ex)
    return final_head(down)[0]


# ------------------------------------------------------------------------------------ hashes


@pytest.mark.parametrize(("password", "salt", "magic", "expected"), [
    # openssl passwd -apr1 / -1 (the same algorithm as htpasswd -m)
    (b"test", b"H6uskkkW", b"$apr1$", b"$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/"),
    ("pässwörd".encode(), b"saltsalt", b"$apr1$", b"$apr1$saltsalt$i5XfNxJNeh2E8ljXycZFm0"),
    (b"a-rather-long-password-over-16-bytes", b"12345678", b"$apr1$", b"$apr1$12345678$uwv68psKCpaoKG3c/2acV1"),
    (b"", b"a", b"$apr1$", b"$apr1$a$lsAcX0kKaMIVmrCtUuk5b0"),
    (b"x", b"toolongsaltvalue", b"$apr1$", b"$apr1$toolongs$Hj.OxnaGyTCCeKkZ.EUCp1"),
    (b"hello", b"abc", b"$1$", b"$1$abc$jWy0FsfCoVBK.I85XpXf30"),
])
def test_md5_crypt_vectors(password: bytes, salt: bytes, magic: bytes, expected: bytes) -> None:
    assert md5_crypt(password, salt, magic) == expected


@pytest.mark.parametrize(("secret", "password", "ok"), [
    ("$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/", "test", True),
    ("$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/", "Test", False),
    ("$1$abc$jWy0FsfCoVBK.I85XpXf30", "hello", True),
    ("{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=", "test", True),
    ("{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=", "test2", False),
    (BCRYPT_2A, "test", True),
    (BCRYPT_2A, "tesT", False),
    (BCRYPT_2Y, "secret", True),
    (BCRYPT_2Y, "secreT", False),
    ("$2x$" + BCRYPT_2Y[4:], "secret", True),  # Go treats $2x$ like $2y$
    ("$2y$04$broken", "secret", False),
    ("plaintext", "plaintext", False),  # no magic: MD5-crypt parsing fails, as in go-http-auth
])
def test_check_secret(secret: str, password: str, ok: bool) -> None:
    assert check_secret(password.encode(), secret.encode()) is ok


def test_bcrypt_refuses_passwords_over_72_bytes_like_go() -> None:
    assert check_secret(b"a" * 73, BCRYPT_2Y.encode()) is False


@pytest.mark.parametrize(("value", "expected"), [
    (b"Basic dGVzdDp0ZXN0", (b"test", b"test")),
    (b"bAsIc dGVzdDp0ZXN0", (b"test", b"test")),
    (b"Basic dGVzdDphOmI=", (b"test", b"a:b")),  # the password may hold colons
    (b"Basic OnB3", (b"", b"pw")),
    (b"Basic dGVzdA==", None),  # no colon
    (b"Basic dGVzdDp0ZXN0=", None),  # bad padding
    (b"Basic !!!!", None),
    (b"Bearer dGVzdDp0ZXN0", None),
    (b"Basic", None),
])
def test_parse_basic_credentials(value: bytes, expected: tuple[bytes, bytes] | None) -> None:
    assert parse_basic_credentials(value) == expected


# ------------------------------------------------------------------------------------ users


@pytest.mark.parametrize(("file_content", "users", "realm", "expected"), [
    # TestBasicAuthUsersFromFile
    (TEST + "\n" + TEST2 + "\n", [], "", {"test": "test", "test2": "test2"}),
    (TEST + "\n", [TEST2, TEST3], "", {"test": "test", "test2": "test2", "test3": "test3"}),
    (TEST + "\n" + TEST2 + "\n", [TEST2_OVERRIDDEN], "", {"test": "test", "test2": "overridden"}),
    (TEST + "\n" + TEST2 + "\n", [TEST2_OVERRIDDEN], "traefik", {"test": "test", "test2": "overridden"}),
    ("#Comment\n" + TEST + "\n" + TEST2 + "\n", [], "traefiker", {"test": "test", "test2": "test2"}),
    ("\n  " + TEST + "  \r\n\n", [], "", {"test": "test"}),
])
def test_users_from_file_and_config(tmp_path: Path, file_content: str, users: list[str], realm: str,
                                    expected: dict[str, str]) -> None:
    users_file = tmp_path / "users"
    users_file.write_text(file_content)
    handler = _build({"usersFile": str(users_file), "users": users, "realm": realm})
    for user, password in expected.items():
        assert _status(handler, _auth(user, password)) == 200, user
    ex, down = case_exchange(_request(_auth("foo", "foo")))
    handler.handle(ex)
    status, headers, _ = final_head(down)
    assert status == 401
    assert headers["Www-Authenticate"] == [f'Basic realm="{realm or "traefik"}"']


def test_challenge_is_go_http_auth_s() -> None:
    upstream = Upstream()
    handler = _build({"users": [TEST]}, upstream)
    for headers in (None, _auth("test", "wrong"), {"Authorization": ["Bearer x"]}):
        ex, down = case_exchange(_request(headers))
        handler.handle(ex)
        status, got, length = final_head(down)
        assert (status, got, length) == (401, {"Content-Type": ["text/plain"],
                                                "Www-Authenticate": ['Basic realm="traefik"']}, 17)
        assert ("data", b"401 Unauthorized\n") in down.calls
    assert upstream.seen == []


def test_header_field_and_remove_header() -> None:
    upstream = Upstream()
    handler = _build({"users": [TEST], "headerField": "X-WebAuth-User", "removeHeader": True}, upstream)
    headers = _auth("test", "test") | {"X-Webauth-User": ["forged"]}
    assert _status(handler, headers) == 200
    forwarded = upstream.forwarded()
    assert forwarded["X-Webauth-User"] == ["test"]
    assert "Authorization" not in forwarded
    kept = Upstream()
    assert _status(_build({"users": [TEST]}, kept), _auth("test", "test")) == 200
    assert "Authorization" in kept.forwarded() and "X-Webauth-User" not in kept.forwarded()


def test_labels_style_comma_separated_users() -> None:
    handler = _build({"users": TEST + "," + TEST3})
    assert _status(handler, _auth("test3", "test3")) == 200


@pytest.mark.parametrize(("config", "message"), [
    ({}, "no users found"),
    ({"users": ["justaname"]}, "error parsing BasicUser"),
    ({"users": ["a:b:c"]}, "error parsing BasicUser"),
    ({"usersFile": "/nonexistent/ferryman-users"}, "cannot read usersFile"),
])
def test_config_errors(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        _build(config)
    assert "http.middlewares.auth.basicAuth" in str(info.value)


def test_empty_users_file_is_an_error(tmp_path: Path) -> None:
    users_file = tmp_path / "users"
    users_file.write_text("# nobody\n")
    with pytest.raises(ConfigError, match="no users found in"):
        _build({"usersFile": str(users_file)})


def test_model_defaults() -> None:
    assert BasicAuth() == BasicAuth(users=(), users_file="", realm="", remove_header=False, header_field="")


# ------------------------------------------------------------------------------------ cache


class Counting:
    def __init__(self) -> None:
        self.calls: list[bytes] = []
        self.real = check_secret

    def __call__(self, password: bytes, secret: bytes) -> bool:
        self.calls.append(password)
        return self.real(password, secret)


def test_successful_checks_are_cached_failures_are_not(monkeypatch: pytest.MonkeyPatch) -> None:
    counting = Counting()
    monkeypatch.setattr(basic_auth, "check_secret", counting)
    handler = _build({"users": ["u:" + BCRYPT_2Y]})
    assert [_status(handler, _auth("u", "secret")) for _ in range(3)] == [200, 200, 200]
    assert counting.calls == [b"secret"]
    assert [_status(handler, _auth("u", "nope")) for _ in range(2)] == [401, 401]
    assert counting.calls == [b"secret", b"nope", b"nope"]
    # Unknown users pay one check (against the first user's hash) and are never accepted.
    assert _status(handler, _auth("ghost", "secret")) == 401
    assert len(counting.calls) == 4


def test_cache_is_bounded_oldest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    counting = Counting()
    monkeypatch.setattr(basic_auth, "check_secret", counting)
    monkeypatch.setattr(basic_auth, "CACHE_SIZE", 2)
    handler = _build({"users": [TEST, TEST2, TEST3]})
    for user in ("test", "test2", "test3", "test3", "test"):
        assert _status(handler, _auth(user, user)) == 200
    # test3 was cached, test had been evicted by then.
    assert counting.calls == [b"test", b"test2", b"test3", b"test"]


# ------------------------------------------------------------------------------------ off the loop


def test_bcrypt_runs_off_the_loop_and_identical_checks_share_one_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    counting = Counting()
    monkeypatch.setattr(basic_auth, "check_secret", counting)

    async def main() -> list[int]:
        answered = asyncio.Event()
        downs = []

        class Done(Upstream):
            def handle(self, ex: Exchange) -> None:
                super().handle(ex)
                if len(self.seen) == 2:
                    answered.set()

        handler = _build({"users": ["u:" + BCRYPT_2Y]}, Done())
        for _ in range(2):
            ex, down = case_exchange(_request(_auth("u", "secret")))
            handler.handle(ex)
            assert down.calls == []  # not answered inline: the hash runs in a thread
            downs.append(down)
        await asyncio.wait_for(answered.wait(), 10)
        ex, down = case_exchange(_request(_auth("u", "secret")))
        handler.handle(ex)  # cached now: inline
        downs.append(down)
        return [final_head(d)[0] for d in downs]

    assert asyncio.run(main()) == [200, 200, 200]
    assert counting.calls == [b"secret"]


class Notify:
    """A response sink wrapper that sets an event when the response ends."""

    def __init__(self, ex: Exchange) -> None:
        self.inner = ex.sink
        self.ended = asyncio.Event()
        ex.sink = self

    def send_info(self, status: int, headers: Headers) -> None:
        self.inner.send_info(status, headers)

    def send_head(self, status: int, headers: Headers, length: int) -> None:
        self.inner.send_head(status, headers, length)

    def send_data(self, data: bytes) -> None:
        self.inner.send_data(data)

    def send_end(self, trailers: Headers | None) -> None:
        self.inner.send_end(trailers)
        self.ended.set()

    def abort(self) -> None:
        self.inner.abort()


def test_off_loop_failures_unknown_users_and_departed_clients() -> None:
    async def main() -> tuple[int, int, int, list[Any]]:
        handler = _build({"users": ["u:" + BCRYPT_2Y]})
        ex1, down1 = case_exchange(_request(_auth("u", "wrong")))
        ex2, down2 = case_exchange(_request(_auth("nobody", "secret")))
        ex3, down3 = case_exchange(_request(_auth("u", "secret")))
        ex4, down4 = case_exchange(_request(_auth("u", "secret")))  # joins ex3's check
        notes = [Notify(ex) for ex in (ex1, ex2, ex4)]
        for ex in (ex1, ex2, ex3, ex4):
            handler.handle(ex)
        ex3.done = True  # the client left while hashing
        for note in notes:
            await asyncio.wait_for(note.ended.wait(), 10)
        return final_head(down1)[0], final_head(down2)[0], final_head(down4)[0], down3.calls

    wrong, unknown, shared, departed = asyncio.run(main())
    assert (wrong, unknown, shared) == (401, 401, 200)
    assert departed == []  # answered nothing: ex3's continuation ran before ex4's
