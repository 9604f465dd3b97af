"""Middleware registry, chain composition and redirectScheme details (in memory)."""

from __future__ import annotations

from typing import Any

import pytest

from ferryman.dynamic.models import Middleware
from ferryman.errors import ConfigError
from ferryman.http.exchange import ConnInfo, Exchange, Handler, Headers
from ferryman.http.forwarded import ForwardingPolicy
from ferryman.middlewares import MiddlewareContext, build_middleware, chain, implemented_middlewares
from tests.unit.http.test_http_exchange import FakeDownstream


def mw(kind: str, config: object) -> Middleware:
    """A middleware model from Traefik's keys."""
    return Middleware.model_validate({kind: config})



def exchange(method: bytes = b"GET", target: bytes = b"/p", authority: bytes = b"foo") -> tuple[Exchange, FakeDownstream]:
    info = ConnInfo("web", "192.0.2.1", 1234, False, ForwardingPolicy(hostname="h"))
    down = FakeDownstream()
    return Exchange(info, down, method, target, target, None, b"1.1", [], authority, 0), down


class Record:
    def __init__(self, log: list[str], name: str, nxt: Handler | None = None) -> None:
        self.log, self.name, self.next = log, name, nxt

    def handle(self, ex: Exchange) -> None:
        self.log.append(self.name)
        if self.next is not None:
            self.next.handle(ex)


def status_and_location(down: FakeDownstream) -> tuple[int, bytes | None]:
    status, headers, _ = down.calls[0][1]
    location = dict((n.lower(), v) for n, v in headers).get(b"location")
    return status, location


def test_chain_first_builder_is_outermost() -> None:
    log: list[str] = []
    handler = chain([lambda n: Record(log, "a", n), lambda n: Record(log, "b", n)], Record(log, "svc"))
    ex, _ = exchange()
    handler.handle(ex)
    assert log == ["a", "b", "svc"]


@pytest.mark.parametrize(("method", "permanent", "status"), [
    (b"GET", False, 302), (b"POST", False, 307), (b"GET", True, 301), (b"PUT", True, 308),
])
def test_redirect_status_codes(method: bytes, permanent: bool, status: int) -> None:
    handler = build_middleware("r", mw("redirectScheme", {"scheme": "https", "permanent": permanent}),
                          Record([], "svc"))
    ex, down = exchange(method)
    handler.handle(ex)
    assert status_and_location(down) == (status, b"https://foo/p")
    assert down.calls[1] == ("data", {301: b"Moved Permanently", 302: b"Found", 307: b"Temporary Redirect",
                                      308: b"Permanent Redirect"}[status])


def test_redirect_keeps_ipv6_brackets_for_origin_form() -> None:
    handler = build_middleware("r", mw("redirectScheme", {"scheme": "https", "port": "8443"}), Record([], "svc"))
    ex, down = exchange(authority=b"[::1]:80")
    handler.handle(ex)
    assert status_and_location(down) == (302, b"https://[::1]:8443/p")


def test_redirect_numeric_port_and_default_ports() -> None:
    handler = build_middleware("r", mw("redirectScheme", {"scheme": "https", "port": 443}), Record([], "svc"))
    ex, down = exchange(authority=b"foo:80")
    handler.handle(ex)
    assert status_and_location(down) == (302, b"https://foo/p")


def test_redirect_scheme_requires_a_scheme() -> None:
    with pytest.raises(ConfigError, match="target scheme"):
        build_middleware("r", mw("redirectScheme", {"scheme": ""}), Record([], "svc"))


def test_unknown_or_unimplemented_type_is_a_config_error() -> None:
    assert {"redirectScheme", "chain"} <= implemented_middlewares()
    with pytest.raises(ConfigError, match="not implemented"):
        build_middleware("p", mw("plugin", {"demo": {"k": "v"}}), Record([], "svc"))


def test_chain_middleware_resolves_members_and_detects_cycles() -> None:
    models: dict[str, Middleware] = {
        "to-https@file": mw("redirectScheme", {"scheme": "https"}),
        "outer@file": mw("chain", {"middlewares": ["inner"]}),
        "inner@file": mw("chain", {"middlewares": ["to-https"]}),
        "loop@file": mw("chain", {"middlewares": ["loop"]}),
    }

    def lookup(ref: str) -> tuple[str, Middleware] | None:
        name = ref if "@" in ref else f"{ref}@file"
        model = models.get(name)
        return None if model is None else (name, model)

    ctx = MiddlewareContext(lookup=lookup)
    handler = build_middleware("outer@file", models["outer@file"], Record([], "svc"), ctx)
    ex, down = exchange()
    handler.handle(ex)
    assert status_and_location(down) == (302, b"https://foo/p")
    with pytest.raises(ConfigError, match="cycle"):
        build_middleware("loop@file", models["loop@file"], Record([], "svc"), ctx)
    missing = mw("chain", {"middlewares": ["ghost"]})
    with pytest.raises(ConfigError, match="ghost"):
        build_middleware("m@file", missing, Record([], "svc"), ctx)


def test_redirect_forwards_when_already_on_target() -> None:
    log: list[str] = []
    handler = build_middleware("r", mw("redirectScheme", {"scheme": "http"}), Record(log, "svc"))
    ex, down = exchange()
    handler.handle(ex)
    assert log == ["svc"] and down.calls == []


_: Any = Headers
