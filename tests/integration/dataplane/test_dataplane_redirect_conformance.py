"""Traefik's redirectScheme test vectors (shared conformance data), replayed over the wire.

Each case becomes a real request to an entry point whose only route is the middleware in front of
a local 200 responder. Over the wire (as with a real Traefik entry point):

* ``X-Forwarded-Proto`` only reaches the middleware from a trusted peer, so the entry point
  trusts everyone (``forwardedHeaders.insecure``), and TLS cases run on a TLS entry point;
* a URL without a path (``http://foo``) is sent as ``/`` (origin-form) or ``http://foo``
  (absolute-form): the entry point normalizes both to the request-URI ``/``, so the ``Location``
  gains that ``/`` (Go's handler-level test has an empty path);
* ``_forcePermanentRedirect`` is Traefik-internal (not settable from configuration): those cases
  build the handler directly.
"""

from __future__ import annotations

import json
import os
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ferryman.dynamic.models import Middleware, RedirectScheme
from ferryman.errors import ConfigError
from ferryman.http.exchange import Handler
from ferryman.middlewares import build_middleware
from ferryman.middlewares.redirect_scheme import RedirectSchemeHandler
from tests.integration.dataplane.dp_support import (
    Message,
    Proxy,
    Responder,
    exchange,
    proxy,
    self_signed_context,
    settings,
    tls_exchange,
)


def mw(kind: str, config: object) -> Middleware:
    """A middleware model from Traefik's keys."""
    return Middleware.model_validate({kind: config})



def _shared() -> Path:
    env = os.environ.get("FERRYMAN_SHARED_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[4] / "shared"


def _cases() -> list[dict[str, Any]]:
    path = _shared() / "conformance" / "middlewares.json"
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    return [c for c in data["cases"] if c.get("middleware") == "redirectScheme"]


CASES = _cases()
pytestmark = pytest.mark.skipif(not CASES, reason="shared conformance data not found")


def _handler(config: dict[str, Any], nxt: Handler) -> Handler:
    public = {k: v for k, v in config.items() if not k.startswith("_")}
    if config.get("_forcePermanentRedirect"):
        model = RedirectScheme(**public)
        return RedirectSchemeHandler("conformance", nxt, model.scheme, model.port, model.permanent,
                                     force_permanent_redirect=True)
    return build_middleware("conformance", mw("redirectScheme", public), nxt)


def _wire_request(req: dict[str, Any]) -> bytes:
    url = urlsplit(req["url"])
    path = url.path or "/"
    target = req["request_uri"] or (path + (f"?{url.query}" if url.query else ""))
    lines = [f"{req['method']} {target} HTTP/1.1", f"Host: {req['host']}"]
    for name, values in req.get("headers", {}).items():
        lines.extend(f"{name}: {value}" for value in values)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _expected_location(case: dict[str, Any]) -> str:
    location: str = case["expected"]["location"]
    if not urlsplit(case["request"]["url"]).path and not urlsplit(location).path:
        location += "/"
    return location


@pytest.fixture(scope="module")
def tls_context(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    return self_signed_context(tmp_path_factory.mktemp("tls"))


def _send(px: Proxy, tls: bool, raw: bytes) -> Message:
    return tls_exchange(px.port, raw) if tls else exchange(px.port, raw)


@pytest.mark.parametrize("case", CASES, ids=[c["source"].rpartition(":")[2] for c in CASES])
def test_redirect_scheme_conformance(case: dict[str, Any], tls_context: ssl.SSLContext) -> None:
    responder = Responder(200, b"forwarded")
    if case.get("config_error"):
        with pytest.raises(ConfigError):
            build_middleware("conformance", mw("redirectScheme", {"scheme": ""}), responder)
        return
    req = case["request"]
    tls = bool(req["tls"])
    handler = _handler(case["config"], responder)
    extra: dict[str, Any] = {"ssl": tls_context} if tls else {}
    with proxy(handler, settings(forwarded_insecure=True), **extra) as px:
        resp = _send(px, tls, _wire_request(req))
    expected = case["expected"]
    assert resp.status == expected["status"], case["source"]
    if expected["status"] == 200:
        assert resp.body == b"forwarded"
        assert len(responder.seen) == 1
    else:
        assert resp.get("location") == _expected_location(case), case["source"]
        assert resp.get("content-type") is None  # Traefik: no sniffed Content-Type on redirects
        assert responder.seen == []
