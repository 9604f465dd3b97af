"""Path middlewares beyond Traefik's vectors: Go's expansion and URL rules, chains, config errors."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from ferryman.dynamic.models import IMPLEMENTED_MIDDLEWARES, Middleware, StripPrefix
from ferryman.errors import ConfigError
from ferryman.http.exchange import ConnInfo, Exchange, Handler
from ferryman.http.forwarded import ForwardingPolicy
from ferryman.middlewares import build_middleware, chain, implemented_middlewares
from ferryman.middlewares._go import (
    GoTemplate,
    GoURLError,
    compile_template,
    go_group_names,
    join_path,
    parse_url,
    replace_all,
    url_state,
)
from ferryman.rules.re2 import compile_go
from tests.unit.http.test_http_exchange import FakeDownstream

KINDS = {"addPrefix", "stripPrefix", "stripPrefixRegex", "replacePath", "replacePathRegex", "redirectRegex"}


def mw(kind: str, config: object) -> Middleware:
    return Middleware.model_validate({kind: config})


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Exchange] = []

    def handle(self, ex: Exchange) -> None:
        self.seen.append(ex)


def exchange(target: bytes = b"/p", method: bytes = b"GET", authority: bytes = b"foo", tls: bool = False,
             headers: list[tuple[bytes, bytes]] | None = None) -> tuple[Exchange, FakeDownstream]:
    path, sep, query = target.partition(b"?")
    info = ConnInfo("web", "192.0.2.1", 1234, tls, ForwardingPolicy(hostname="h"))
    down = FakeDownstream()
    ex = Exchange(info, down, method, target, path, query if sep else None, b"1.1", list(headers or []),
                  authority, 0)
    return ex, down


def run(kind: str, config: object, target: bytes = b"/p", **kw: object) -> tuple[Exchange, FakeDownstream, Recorder]:
    rec = Recorder()
    handler = build_middleware("m@file", mw(kind, config), rec)
    ex, down = exchange(target, **kw)  # type: ignore[arg-type]
    handler.handle(ex)
    return ex, down, rec


def head(down: FakeDownstream) -> tuple[int, dict[bytes, bytes], bytes]:
    status, headers, _ = down.calls[0][1]
    body = b"".join(data for kind, data in down.calls if kind == "data")
    return status, {n.lower(): v for n, v in headers}, body


# ------------------------------------------------------------------ registry and models


def test_the_six_types_are_implemented_and_typed() -> None:
    assert KINDS <= IMPLEMENTED_MIDDLEWARES
    assert implemented_middlewares() >= KINDS
    model = mw("stripPrefix", {"prefixes": "/a, /b", "forceSlash": "true"})
    assert model.strip_prefix == StripPrefix(prefixes=("/a", "/b"), force_slash=True)
    with pytest.raises(ValueError, match="prefixs"):
        mw("stripPrefix", {"prefixs": ["/a"]})


@pytest.mark.parametrize(("kind", "config", "key"), [
    ("addPrefix", {}, "addPrefix.prefix"),
    ("addPrefix", {"prefix": ""}, "addPrefix.prefix"),
    ("stripPrefixRegex", {"regex": ["/ok", "/a(b"]}, "stripPrefixRegex.regex[1]"),
    ("replacePathRegex", {"regex": "^(?err)/x", "replacement": "/y"}, "replacePathRegex.regex"),
    ("redirectRegex", {"regex": "^(.*", "replacement": "$1"}, "redirectRegex.regex"),
    ("redirectRegex", {"replacement": "https://x"}, "redirectRegex.regex"),
    ("replacePathRegex", {"regex": "(?<=a)b", "replacement": "/y"}, "replacePathRegex.regex"),
])
def test_invalid_configuration_is_a_config_error_with_its_path(kind: str, config: object, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_middleware("m@file", mw(kind, config), Recorder())
    assert info.value.path == f"http.middlewares.m@file.{key}"
    assert info.value.fix


# ------------------------------------------------------------------ Go helpers


@pytest.mark.parametrize(("template", "expected"), [
    ("$1-$2", "a-b"),
    ("${1}x", "ax"),
    ("$1x", ""),             # the group named "1x" (does not exist): Go's longest-name rule
    ("$$1", "$1"),
    ("$", "$"),
    ("${1", "${1"),          # malformed: literal
    ("$-", "$-"),
    ("${name}/$name", "b/b"),
    ("$9", ""),              # no such group
    ("$01", ""),             # leading zero: a name, not a number
    ("$0", "a/b("),
])
def test_go_template_expansion(template: str, expected: str) -> None:
    source = r"(a)/(?P<name>b)[(][[:alpha:])]*"
    pattern = compile_go(source)
    match = pattern.search("a/b(")
    assert match is not None
    assert go_group_names(source, pattern.groups) == {"name": 2}
    assert compile_template(template, pattern, source).expand(match) == expected


@pytest.mark.parametrize(("pattern", "src", "repl", "expected"), [
    ("a*", "baaac", "X", "XbXcX"),  # Python's re.sub gives XbXXcX
    ("", "ab", "-", "-a-b-"),
    ("/whoami", "/whoami/and/whoami", "", "/and"),
    ("^/foo/(.*)", "/foo/bar", "/$1", "/bar"),
])
def test_replace_all_is_go_replace_all_string(pattern: str, src: str, repl: str, expected: str) -> None:
    regexp = compile_go(pattern)
    assert replace_all(regexp, src, GoTemplate(repl, regexp)) == expected


def test_url_helpers() -> None:
    assert url_state(b"/a%2Fb") == (b"/a/b", b"/a%2Fb")
    assert url_state(b"/a%08b") == (b"/a\bb", b"")
    assert join_path(b"/a/./b//c/../d/") == b"/a/b/d/"
    assert join_path(b"rel/../x") == b"x"
    assert parse_url(b"HTTPS://Foo:8443/a%2Fb?q#f").string() == b"https://Foo:8443/a%2Fb?q#f"
    assert parse_url(b"https://x/a b").string() == b"https://x/a%20b"
    assert parse_url(b"mailto:joe@example.com").string() == b"mailto:joe@example.com"
    for bad in (b"http://x/%zz", b"http://[::1/", b"http://x:8a/", b":nope", b"http://x/\x01", b"1a:b/c"):
        with pytest.raises(GoURLError):
            parse_url(bad)


# ------------------------------------------------------------------ behaviour


def test_add_prefix_keeps_query_and_escapes_a_literal_percent() -> None:
    ex, _, rec = run("addPrefix", {"prefix": "/a%20"}, b"/b?x=1")
    assert rec.seen == [ex]
    assert (ex.path, ex.query, ex.target) == (b"/a%2520/b", b"x=1", b"/a%2520/b?x=1")


def test_strip_prefix_appends_to_an_existing_forwarded_prefix_and_keeps_the_query() -> None:
    ex, _, rec = run("stripPrefix", {"prefixes": [" /api "]}, b"/api/v1?q",
                     headers=[(b"x-forwarded-prefix", b"/outer")])
    assert rec.seen == [ex]
    assert ex.header_values(b"x-forwarded-prefix") == [b"/outer", b"/api"]
    assert (ex.path, ex.target) == (b"/v1", b"/v1?q")


def test_strip_prefix_force_slash_and_double_slash_rejection() -> None:
    ex, _, _ = run("stripPrefix", {"prefixes": ["/stat"], "forceSlash": True}, b"/stat")
    assert (ex.path, ex.target) == (b"/", b"/")
    ex, down, rec = run("stripPrefix", {"prefixes": ["/api"]}, b"/api//etc")
    status, headers, body = head(down)
    assert (status, body, rec.seen) == (400, b"Bad Request\n", [])
    assert headers[b"x-content-type-options"] == b"nosniff"


def test_strip_then_add_prefix_in_a_chain() -> None:
    rec = Recorder()

    def layer(kind: str, config: object) -> Callable[[Handler], Handler]:
        return lambda nxt: build_middleware(kind, mw(kind, config), nxt)

    handler = chain([layer("stripPrefix", {"prefixes": ["/api"]}), layer("addPrefix", {"prefix": "/v2"})], rec)
    ex, _ = exchange(b"/api/users%2F1?x")
    handler.handle(ex)
    assert (ex.path, ex.target) == (b"/v2/users%2F1", b"/v2/users%2F1?x")


def test_strip_prefix_regex_skips_a_match_that_is_not_a_prefix() -> None:
    ex, _, rec = run("stripPrefixRegex", {"regex": ["b/", "/x/"]}, b"/x/b/c")
    assert rec.seen == [ex]
    assert ex.path == b"/b/c"
    assert ex.header_values(b"x-forwarded-prefix") == [b"/x/"]


def test_replace_path_with_an_invalid_escape_answers_500_like_traefik() -> None:
    _, down, rec = run("replacePath", {"path": "/a%zz"})
    status, _, body = head(down)
    assert (status, body, rec.seen) == (500, b'invalid URL escape "%zz"\n', [])


def test_replace_path_regex_rejects_dot_segments_and_keeps_the_query() -> None:
    _, down, rec = run("replacePathRegex", {"regex": "^/a/(.*)", "replacement": "/b/../$1"}, b"/a/x")
    assert head(down)[0] == 400 and rec.seen == []
    ex, _, rec = run("replacePathRegex", {"regex": "^/a/(?P<rest>.*)", "replacement": "/b/${rest}"}, b"/a/x?y")
    assert rec.seen == [ex]
    assert (ex.path, ex.target) == (b"/b/x", b"/b/x?y")
    assert ex.header_values(b"x-replaced-path") == [b"/a/x"]


def test_redirect_regex_rewrites_in_place_when_the_url_is_unchanged() -> None:
    ex, down, rec = run("redirectRegex", {"regex": "^http://foo/(.*)$", "replacement": "http://foo/$1"},
                        b"/p?q=1")
    assert rec.seen == [ex] and down.calls == []
    assert (ex.path, ex.query, ex.target) == (b"/p", b"q=1", b"/p?q=1")


def test_redirect_regex_location_is_go_url_string_and_ignores_forwarded_proto() -> None:
    _, down, _ = run("redirectRegex", {"regex": "^http://([^/]+)/(.*)$", "replacement": "HTTPS://$1/new $2"},
                        b"/p", authority=b"foo:8080", headers=[(b"x-forwarded-proto", b"https")])
    status, headers, body = head(down)
    assert (status, headers[b"location"], body) == (302, b"https://foo:8080/new%20p", b"Found")
    assert b"content-type" not in headers
    _, down, _ = run("redirectRegex", {"regex": "^https://", "replacement": "http://", "permanent": True},
                     b"/p", method=b"POST", tls=True)
    status, headers, body = head(down)
    assert (status, headers[b"location"], body) == (308, b"http://foo/p", b"Permanent Redirect")


def test_redirect_regex_unparsable_result_is_502() -> None:
    _, down, rec = run("redirectRegex", {"regex": "^(.*)$", "replacement": "http://x:port/"})
    status, headers, body = head(down)
    assert (status, body, rec.seen) == (502, b"Bad Gateway", [])
    assert b"content-type" not in headers


def test_regexes_are_compiled_once_at_build_time() -> None:
    handler = build_middleware("m", mw("replacePathRegex", {"regex": " ^/a ", "replacement": " /b "}), Recorder())
    assert isinstance(handler._regexp, re.Pattern)  # type: ignore[attr-defined]
    assert handler._template.literal == "/b"  # type: ignore[attr-defined]
