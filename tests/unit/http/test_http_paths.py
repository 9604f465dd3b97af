"""Request-target splitting and Traefik's path normalization/sanitization (pure)."""

from __future__ import annotations

import pytest

from ferryman.http.paths import BadTarget, needs_normalization, normalize_path, split_target
from ferryman.proto.h1 import connection_tokens, error_response, split_authority, status_line


@pytest.mark.parametrize(("raw", "expected"), [
    (b"/plain/path", b"/plain/path"),
    (b"/a%2fb", b"/a%2Fb"),                  # reserved escape kept, hex upper-cased
    (b"/%41%62%7e%2D", b"/Ab~-"),            # unreserved escapes decoded
    (b"/a/./b/../c", b"/a/c"),
    (b"//a///b/", b"/a/b/"),                 # duplicate slashes, trailing slash kept
    (b"/a/%2e%2e/b", b"/b"),                 # decoded dots are cleaned too
    (b"/..", b"/"),
    (b"/caf\xc3\xa9", b"/caf%C3%A9"),        # raw non-ASCII is escaped like Go's EscapedPath
    (b"/a b", b"/a%20b"),
])
def test_normalize_path(raw: bytes, expected: bytes) -> None:
    assert normalize_path(raw) == expected


def test_normalize_without_sanitize_keeps_dot_segments() -> None:
    assert normalize_path(b"/a/./b/../c//d", sanitize=False) == b"/a/./b/../c//d"


@pytest.mark.parametrize("raw", [b"/%", b"/%4", b"/%zz", b"/a%g1"])
def test_invalid_escapes_are_rejected(raw: bytes) -> None:
    with pytest.raises(BadTarget):
        normalize_path(raw)


def test_needs_normalization_is_false_for_ordinary_paths() -> None:
    assert not needs_normalization(b"/api/v1/users/42")
    for raw in (b"/a%20b", b"/a/./b", b"//a", b"/\xc3\xa9"):
        assert needs_normalization(raw)


@pytest.mark.parametrize(("target", "expected"), [
    (b"/p?q=1", (b"/p", b"q=1", None, None)),
    (b"/p?", (b"/p", b"", None, None)),
    (b"/p", (b"/p", None, None, None)),
    (b"http://Example.com:81/p?q", (b"/p", b"q", b"Example.com:81", b"http")),
    (b"HTTPS://host", (b"/", None, b"host", b"https")),
    (b"http://user@host/x", (b"/x", None, b"host", b"http")),
    (b"http://@/x", (b"/x", None, None, b"http")),          # empty authority: keep the Host header
    (b"*", (b"*", None, None, None)),
    (b"example.com:443", (b"example.com:443", None, None, None)),
])
def test_split_target(target: bytes, expected: tuple[bytes, bytes | None, bytes | None, bytes | None]) -> None:
    assert split_target(target) == expected


def test_split_target_rejects_garbage() -> None:
    with pytest.raises(BadTarget):
        split_target(b"1http://x/")


def test_h1_helpers() -> None:
    assert status_line(200) == b"HTTP/1.1 200 OK\r\n"
    assert status_line(299) == b"HTTP/1.1 299 status code 299\r\n"
    assert connection_tokens([b"Keep-Alive, X-Foo", b" close "]) == [b"keep-alive", b"x-foo", b"close"]
    assert split_authority(b"host:8080") == (b"host", b"8080")
    assert split_authority(b"[::1]:80") == (b"::1", b"80")
    assert split_authority(b"[::1]") == (b"::1", b"")
    assert split_authority(b"::1") == (b"::1", b"")
    assert split_authority(b"host") == (b"host", b"")
    assert error_response(400, "missing required Host header") == (
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
        b"400 Bad Request: missing required Host header")
