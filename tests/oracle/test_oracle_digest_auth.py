"""digestAuth against the real Traefik: the 401 challenge (nonce and opaque values normalised), and
curl --digest logging in (what the backend then receives)."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.oracle.harness import TRAEFIK, TRAEFIK_MISSING, Backends, Pair, Proxy, case, lb, send_raw

pytestmark = [pytest.mark.oracle, pytest.mark.skipif(TRAEFIK is None, reason=TRAEFIK_MISSING),
              pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")]

ENTRY_POINTS: dict[str, dict[str, Any]] = {"web": {}}


def htdigest(user: str, realm: str, password: str) -> str:
    return f"{user}:{realm}:{hashlib.md5(f'{user}:{realm}:{password}'.encode()).hexdigest()}"


def dynamic(backends: Backends) -> dict[str, Any]:
    middlewares = {
        "plain": {"digestAuth": {"users": [htdigest("alice", "traefik", "pw")]}},
        "custom": {"digestAuth": {"users": [htdigest("bob", "Staff", "pw2")], "realm": "Staff",
                                  "headerField": "X-WebAuth-User", "removeHeader": True}},
    }
    routers = {name: {"rule": f"Host(`{name}.test`)", "service": "app", "entryPoints": ["web"],
                      "middlewares": [name]} for name in middlewares}
    return {"http": {"routers": routers, "middlewares": middlewares, "services": {"app": lb(backends["app"])}}}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, backends: Backends) -> Iterator[Pair]:
    with Pair(tmp_path_factory.mktemp("digest"), backends, ENTRY_POINTS, dynamic(backends)) as p:
        yield p


def _challenge(proxy: Proxy, host: str) -> list[str]:
    resp = send_raw(proxy.ports["web"], f"GET /x HTTP/1.1\r\nHost: {host}.test\r\n\r\n".encode())
    value = re.sub(r'(nonce|opaque)="[^"]*"', r'\1="<random>"', resp.get("www-authenticate") or "")
    return [f"status: {resp.status}", f"www-authenticate: {value}", f"content-type: {resp.get('content-type')}",
            f"body: {resp.body!r}"]


def _login(pair: Pair, proxy: Proxy, host: str, credentials: str) -> list[str]:
    mark = pair.backends.recorder.mark()
    out = subprocess.run(["curl", "-sS", "--max-time", "10", "--digest", "-u", credentials, "-o", "/dev/null",
                          "-w", "%{http_code}", "-H", f"Host: {host}.test",
                          f"http://127.0.0.1:{proxy.ports['web']}/a/b?c=d"],
                         capture_output=True, text=True, timeout=20, check=False)
    seen = pair.backends.recorder.since(mark)
    lines = [f"status: {out.stdout}"]
    for rec in seen:
        lines.append(f"backend: {rec.method} {rec.target}")
        lines.extend(f"  {k.lower()}: {'<digest>' if k.lower() == 'authorization' else v}"
                     for k, v in sorted(rec.headers) if k.lower() in ("authorization", "x-webauth-user"))
    return lines


@pytest.mark.parametrize("c", [case("challenge-default-realm", "plain"), case("challenge-custom-realm", "custom")])
def test_challenge(pair: Pair, c: Any) -> None:
    assert pair.traefik is not None and pair.ferryman is not None
    host = c.request.decode()
    assert _challenge(pair.ferryman, host) == _challenge(pair.traefik, host)


@pytest.mark.parametrize("host, credentials", [
    ("plain", "alice:pw"), ("plain", "alice:bad"), ("plain", "mallory:pw"),
    ("custom", "bob:pw2"), ("custom", "alice:pw"),
])
def test_curl_digest_login(pair: Pair, host: str, credentials: str) -> None:
    assert pair.traefik is not None and pair.ferryman is not None
    got = _login(pair, pair.ferryman, host, credentials)
    assert got == _login(pair, pair.traefik, host, credentials)
