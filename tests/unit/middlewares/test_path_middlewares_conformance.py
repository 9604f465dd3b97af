"""Traefik's path middleware test vectors (shared conformance data), replayed through the handlers.

Every case of ``middlewares.json`` for ``addPrefix``, ``stripPrefix``, ``stripPrefixRegex``,
``replacePath``, ``replacePathRegex`` and ``redirectRegex`` becomes an in-memory exchange built
like the Go test's request (raw path, ``RequestURI``, Host, TLS, headers), run through the built
middleware in front of a recording handler. What the recording handler sees is compared in Go's
terms: ``URL.Path`` (decoded), ``URL.RawPath`` (``""`` when it is the default encoding) and
``RequestURI``, plus request headers; answers are compared by status and ``Location``.

``request_uri: ""`` in the data means the Go test left ``RequestURI`` unset and the middleware did
not rewrite it: here the exchange keeps its original request-target.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from ferryman.dynamic.models import Middleware
from ferryman.errors import ConfigError
from ferryman.http.exchange import ConnInfo, Exchange, Handler
from ferryman.http.forwarded import ForwardingPolicy
from ferryman.middlewares import build_middleware
from ferryman.middlewares._go import escape, url_state
from tests.unit.http.test_http_exchange import FakeDownstream

KINDS = ("addPrefix", "stripPrefix", "stripPrefixRegex", "replacePath", "replacePathRegex", "redirectRegex")



def shared_dir() -> Path:
    env = os.environ.get("FERRYMAN_SHARED_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[4] / "shared"


def load_cases() -> list[dict[str, Any]]:
    path = shared_dir() / "conformance" / "middlewares.json"
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    return [c for c in data["cases"] if c.get("middleware") in KINDS]


CASES = load_cases()
pytestmark = pytest.mark.skipif(not CASES, reason="shared conformance data not found")


def case_id(case: dict[str, Any]) -> str:
    return f"{case['middleware']}:{case['source'].partition(':')[2].partition('/')[2]}"


def param(case: dict[str, Any]) -> Any:
    return pytest.param(case, id=case_id(case))


def model(case: dict[str, Any]) -> Middleware:
    config = {k: v for k, v in case["config"].items() if not k.startswith("_")}
    return Middleware.model_validate({case["middleware"]: config})


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Exchange] = []

    def handle(self, ex: Exchange) -> None:
        self.seen.append(ex)
        ex.respond(200, (), b"forwarded")


def request_exchange(req: dict[str, Any]) -> tuple[Exchange, FakeDownstream]:
    """The exchange for a Go test request (``path`` raw, query from the URL)."""
    url: str = req["url"].partition("#")[0]
    query: bytes | None = None
    if "?" in url:
        query = url.partition("?")[2].encode()
    path = req["path"].encode()
    origin = (path or b"/") + (b"" if query is None else b"?" + query)
    target = req["request_uri"].encode() if req.get("request_uri") else origin
    headers = [(name.lower().encode(), value.encode())
               for name, values in (req.get("headers") or {}).items() for value in values]
    info = ConnInfo("web", "192.0.2.1", 1234, bool(req.get("tls")), ForwardingPolicy(hostname="h"))
    down = FakeDownstream()
    ex = Exchange(info, down, req["method"].encode(), target, path or b"/", query, b"1.1", headers,
                  req["host"].encode(), 0)
    return ex, down


def canonical_raw_path(path: str, raw_path: str) -> bytes:
    """``raw_path`` as the data's ``meta`` defines it: ``""`` when it is the default encoding of
    ``path``. (``replacePath`` assigns ``URL.RawPath`` without that check, so one Go handler saw
    ``RawPath == "/path/%08bar"``, the default encoding of ``/path/\\bbar``: the Go test does not
    assert it, and ``EscapedPath()``/``RequestURI`` -- what is forwarded -- are the same either way.)"""
    raw = raw_path.encode()
    return b"" if raw and escape(path.encode()) == raw else raw


def answer(down: FakeDownstream) -> tuple[int, dict[bytes, bytes]]:
    status, headers, _ = down.calls[0][1]
    return status, {n.lower(): v for n, v in headers}


def run(case: dict[str, Any]) -> tuple[Exchange, FakeDownstream, Recorder]:
    rec = Recorder()
    handler: Handler = build_middleware("conformance", model(case), rec)
    ex, down = request_exchange(case["request"])
    handler.handle(ex)
    return ex, down, rec


@pytest.mark.parametrize("case", [param(c) for c in CASES])
def test_path_middleware_conformance(case: dict[str, Any]) -> None:
    if "config_error" in case and "request" not in case:
        if case["config_error"]:
            with pytest.raises(ConfigError):
                build_middleware("conformance", model(case), Recorder())
        else:
            build_middleware("conformance", model(case), Recorder())
        return
    original_target = request_exchange(case["request"])[0].target
    ex, down, rec = run(case)
    expected = case["expected"]
    status, headers = answer(down)
    assert status == expected["status"], case["source"]
    if "location" in expected:
        location = expected["location"]
        assert headers.get(b"location") == (None if location is None else location.encode())
    forwarded = expected.get("forwarded")
    if not forwarded:
        assert rec.seen == [], case["source"]
        return
    assert rec.seen == [ex]
    if forwarded is True:
        return
    path, raw_path = url_state(ex.path)
    assert path == forwarded["path"].encode(), case["source"]
    assert raw_path == canonical_raw_path(forwarded["path"], forwarded["raw_path"]), case["source"]
    want_uri = forwarded["request_uri"].encode() or original_target
    assert ex.target == want_uri, case["source"]
    for name, values in (forwarded.get("headers") or {}).items():
        assert ex.header_values(name.lower().encode()) == [v.encode() for v in values], name
    for name in forwarded.get("absent_headers") or ():
        assert ex.header_values(name.lower().encode()) == [], name


def test_every_path_case_is_replayed() -> None:
    counts: dict[str, int] = {}
    for case in CASES:
        counts[case["middleware"]] = counts.get(case["middleware"], 0) + 1
    assert counts == {"stripPrefix": 15, "stripPrefixRegex": 21, "replacePath": 5, "replacePathRegex": 12,
                      "addPrefix": 5, "redirectRegex": 16}
