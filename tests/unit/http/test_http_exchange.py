"""The Exchange contract in memory: local answers, hooks, body replay, forwarded headers, the match view."""

from __future__ import annotations

from typing import Any

from ferryman.http.exchange import ConnInfo, Exchange, Headers, TunnelPeer
from ferryman.http.forwarded import (
    XF_PROTO,
    ForwardingPolicy,
    effective_port,
    effective_proto,
    finalize_xff,
    forwarded_block,
    underscore_variants,
)


class FakeDownstream:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.write_paused = False

    def send_info(self, status: int, headers: Headers) -> None:
        self.calls.append(("info", status))

    def send_head(self, status: int, headers: Headers, length: int) -> None:
        self.calls.append(("head", (status, list(headers), length)))

    def send_data(self, data: bytes) -> None:
        self.calls.append(("data", data))

    def send_end(self, trailers: Headers | None) -> None:
        self.calls.append(("end", trailers))

    def abort(self) -> None:
        self.calls.append(("abort", None))

    def pause_body(self) -> None:
        self.calls.append(("pause", None))

    def resume_body(self) -> None:
        self.calls.append(("resume", None))

    def start_tunnel(self, peer: TunnelPeer) -> None:
        self.calls.append(("tunnel", peer))

    def flush(self) -> None:
        pass


def make(headers: Headers | None = None, *, authority: bytes = b"example.com", tls: bool = False,
         trusted: bool = False, body_length: int = 0, policy: ForwardingPolicy | None = None,
         client: str = "192.0.2.9") -> tuple[Exchange, FakeDownstream]:
    policy = policy or ForwardingPolicy(insecure=trusted, hostname="edge-1")
    info = ConnInfo("web", client, 4242, tls, policy)
    down = FakeDownstream()
    ex = Exchange(info, down, b"GET", b"/p?q", b"/p", b"q", b"1.1", headers or [], authority, body_length)
    return ex, down


def test_respond_adds_go_like_headers() -> None:
    ex, down = make()
    ex.respond(418, [(b"X-A", b"1")], b"teapot")
    (kind, (status, headers, length)), data, end = down.calls
    assert (kind, status, length) == ("head", 418, 6)
    names = [n for n, _ in headers]
    assert names == [b"Content-Type", b"X-A", b"Date"]
    assert data == ("data", b"teapot") and end == ("end", None)


def test_respond_keeps_a_given_content_type() -> None:
    ex, down = make()
    ex.respond(200, [(b"content-type", b"application/json")], b"{}")
    headers = down.calls[0][1][1]
    assert [v for n, v in headers if n.lower() == b"content-type"] == [b"application/json"]


def test_response_hooks_edit_the_final_head_only() -> None:
    ex, down = make()

    def hook(e: Exchange, status: int, headers: Headers) -> int:
        headers.append((b"X-Hooked", b"yes"))
        return 299

    ex.add_response_hook(hook)
    ex.send_info(100, [])
    ex.send_head(200, [(b"Server", b"b")], 2)
    ex.send_data(b"ok")
    ex.send_end()
    assert down.calls[0] == ("info", 100)
    assert down.calls[1] == ("head", (299, [(b"Server", b"b"), (b"X-Hooked", b"yes")], 2))
    assert down.calls[2:] == [("data", b"ok"), ("end", None)]


def test_body_chunks_before_the_consumer_are_replayed() -> None:
    ex, _ = make(body_length=-1)
    got: list[object] = []

    class Consumer:
        def body_data(self, data: bytes) -> None:
            got.append(data)

        def body_end(self, trailers: Headers | None) -> None:
            got.append(("end", trailers))

    ex.feed_body(b"a")
    ex.feed_body(b"b")
    assert not ex.body_complete
    ex.end_body([(b"x-t", b"1")])
    ex.set_body_consumer(Consumer())
    assert got == [b"a", b"b", ("end", [(b"x-t", b"1")])]


def test_forwarded_block_for_an_untrusted_peer() -> None:
    ex, _ = make(authority=b"example.com:8080")
    block = forwarded_block(ex)
    assert block == (b"X-Forwarded-Proto: http\r\nX-Forwarded-Port: 8080\r\nX-Forwarded-Host: example.com:8080\r\n"
                     b"X-Forwarded-For: 192.0.2.9\r\nX-Forwarded-Server: edge-1\r\nX-Real-Ip: 192.0.2.9\r\n")
    assert forwarded_block(ex) is block  # cached per connection for an unchanged Host


def test_forwarded_proto_and_port_for_tls_and_websocket() -> None:
    ex, _ = make(tls=True)
    assert effective_proto(ex) == b"https" and effective_port(ex, b"https") == b"443"
    ex.websocket = True
    assert effective_proto(ex) == b"wss"
    plain, _ = make()
    plain.websocket = True
    assert effective_proto(plain) == b"ws"
    assert b"X-Forwarded-Proto: ws\r\n" in forwarded_block(plain)


def test_trusted_values_are_kept_and_xff_appended() -> None:
    ex, _ = make([(b"x-forwarded-proto", b"https")], trusted=True)
    ex.xf_present = XF_PROTO
    ex.xff_prior = b"1.1.1.1, 2.2.2.2"
    block = forwarded_block(ex)
    assert b"X-Forwarded-Proto" not in block
    assert b"X-Forwarded-Port: 443\r\n" in block  # from the trusted proto
    assert b"X-Forwarded-For: 1.1.1.1, 2.2.2.2, 192.0.2.9\r\n" in block


def test_materialized_headers_are_what_middlewares_see_and_edit() -> None:
    ex, _ = make([(b"accept", b"*/*")])
    assert ex.header(b"x-forwarded-proto") == b"http"
    assert ex.header_values(b"x-real-ip") == [b"192.0.2.9"]
    assert ex.xf_materialized
    ex.set_header(b"x-forwarded-proto", b"https")
    assert effective_proto(ex) == b"https"
    finalize_xff(ex)
    assert ex.header_values(b"x-forwarded-for") == [b"192.0.2.9"]
    ex2, _ = make()
    ex2.materialize_forwarded()
    ex2.omit_xff = True
    finalize_xff(ex2)
    assert ex2.header_values(b"x-forwarded-for") == []


def test_other_headers_are_edited_without_materializing() -> None:
    ex, _ = make([(b"accept", b"*/*"), (b"x-bench", b"0")])
    ex.set_header(b"x-bench", b"1")
    ex.add_header(b"x-forwarded-prefix", b"/api")
    ex.remove_header(b"accept")
    assert ex.header(b"x-bench") == b"1" and ex.header_values(b"accept") == []
    assert not ex.xf_materialized  # the forwarder keeps the per-connection forwarded block
    assert ex.headers == [(b"x-bench", b"1"), (b"x-forwarded-prefix", b"/api")]
    assert b"X-Forwarded-Proto: http\r\n" in forwarded_block(ex)
    assert ex.header(b"x-forwarded-server") == b"edge-1"  # one of the entry point's: materialized now
    assert ex.xf_materialized


def test_not_append_xff_policy() -> None:
    policy = ForwardingPolicy(insecure=True, not_append_xff=True, hostname="h")
    ex, _ = make(policy=policy)
    assert b"X-Forwarded-For" not in forwarded_block(ex)
    ex2, _ = make(policy=policy)
    ex2.xff_prior = b"1.1.1.1"
    assert b"X-Forwarded-For: 1.1.1.1\r\n" in forwarded_block(ex2)


def test_scheme_headers_option() -> None:
    policy = ForwardingPolicy(add_scheme_headers=True, hostname="h")
    ex, _ = make(policy=policy, tls=True)
    block = forwarded_block(ex)
    assert b"X-Forwarded-Scheme: https\r\nX-Scheme: https\r\n" in block


def test_policy_trust() -> None:
    policy = ForwardingPolicy(trusted_ips=["10.0.0.0/8", "::1"], hostname="h")
    assert policy.trusts("10.1.2.3") and policy.trusts("::1")
    assert not policy.trusts("192.0.2.1")
    assert ForwardingPolicy(insecure=True, hostname="h").trusts("203.0.113.1")


def test_underscore_variants() -> None:
    assert underscore_variants(b"x-real-ip") == {b"x_real-ip", b"x-real_ip", b"x_real_ip"}


def test_match_view() -> None:
    ex, _ = make([(b"x-a", b"1"), (b"x-a", b"2")], authority=b"WWW.Example.COM.:8443")
    ex.path = b"/foo%20bar%2Fbaz"
    view = ex.match_request()
    assert view is ex.match_request()
    assert view.method == "GET"
    assert view.host == "www.example.com"
    assert view.path == "/foo bar%2Fbaz"
    assert view.query == "q"
    assert view.client_ip == "192.0.2.9"
    assert list(view.header_values("X-A")) == ["1", "2"]
    assert list(view.header_values("host")) == ["WWW.Example.COM.:8443"]
    assert list(view.header_values("x-forwarded-proto")) == ["http"]


def test_flag_properties_round_trip() -> None:
    ex, _ = make()
    for name in ("expect_continue", "websocket", "te_trailers", "omit_xff"):
        assert getattr(ex, name) is False
        setattr(ex, name, True)
        assert getattr(ex, name) is True
        setattr(ex, name, False)
        assert getattr(ex, name) is False
    ex.xf_present = 5
    assert ex.xf_present == 5 and ex.flags & 0xFF == 0


def test_buffered_body_is_bounded_until_a_consumer_arrives() -> None:
    from ferryman.http.exchange import BODY_BUFFER_LIMIT
    ex, down = make(body_length=-1)
    chunk = b"x" * 65536
    for _ in range(BODY_BUFFER_LIMIT // len(chunk) + 1):
        ex.feed_body(chunk)
    assert ("pause", None) in down.calls
    got: list[int] = []

    class Consumer:
        def body_data(self, data: bytes) -> None:
            got.append(len(data))

        def body_end(self, trailers: Headers | None) -> None:
            pass

    ex.set_body_consumer(Consumer())
    assert sum(got) > BODY_BUFFER_LIMIT and down.calls[-1] == ("resume", None)


def test_writes_after_the_exchange_is_over_are_ignored() -> None:
    ex, down = make()
    ex.respond(200, (), b"first")
    ex.done = True
    ex.respond(500, (), b"late")
    ex.send_head(200, [], 0)
    assert [c[0] for c in down.calls] == ["head", "data", "end"]
