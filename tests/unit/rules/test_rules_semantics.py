"""Matcher semantics, host constraints, helpers and the compiled form."""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Sequence

import pytest

from ferryman.errors import ProtocolError, RuleError
from ferryman.rules import (
    CompiledRule,
    HostConstraint,
    canonical_host,
    client_host,
    compile_rule,
    parse_rule,
    routing_path,
)
from ferryman.rules.parser import MAX_DEPTH
from ferryman.rules.tree import Call
from tests.unit.rules.rules_support import Req, req


def matches(rule: str, request: Req, syntax: str = "v3") -> bool:
    return compile_rule(rule, syntax=syntax).match(request)


# -- Host --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("rule", "host", "expected"), [
    ("Host(`example.com`)", "EXAMPLE.com:8443", True),
    ("Host(`example.com`)", "example.com.", True),
    ("Host(`example.com.`)", "example.com", True),
    ("Host(`Example.COM`)", "example.com", True),
    ("Host(`example.com`)", "www.example.com", False),
    ("Host(`*.example.com`)", "a.example.com", True),
    ("Host(`*.example.com`)", "A.Example.Com.", True),
    ("Host(`*.example.com`)", "a.b.example.com", False),
    ("Host(`*.example.com`)", "example.com", False),
    ("Host(`*.example.com`)", "aexample.com", False),
    ("Host(`*.example.com.`)", "a.example.com", True),
    ("Host(`*`)", "", True),
    ("Host(`*`)", "anything:1", True),
    ("Host(`*.`)", "localhost", True),  # Traefik compares labels: `*` stands for one label
    ("Host(`*.`)", "a.b", False),
    ("Host(`*example.com`)", "aexample.com", False),  # a leading * not followed by '.' never matches
    ("Host(`example.com`)", "", False),
    ("Host(`::1`)", "[::1]:443", True),
    ("Host(`10::10`)", "10::10", True),
])
def test_host(rule: str, host: str, expected: bool) -> None:
    assert matches(rule, req(host=host)) is expected


def test_host_regexp_searches_the_canonical_host_unanchored() -> None:
    assert matches("HostRegexp(`example`)", req(host="www.EXAMPLE.com:80"))
    assert not matches("HostRegexp(`^example`)", req(host="www.example.com"))
    assert matches("HostRegexp(`(?i)^WWW\\.`)", req(host="www.example.com"))


# -- Host constraints ----------------------------------------------------------------------------------


def hosts(rule: str, syntax: str = "v3") -> HostConstraint | None:
    return compile_rule(rule, syntax=syntax).hosts


def exact(*names: str) -> HostConstraint:
    return HostConstraint(exact=frozenset(names))


def wild(*parents: str) -> HostConstraint:
    return HostConstraint(wildcard_parents=frozenset(parents))


@pytest.mark.parametrize(("rule", "expected"), [
    ("Host(`a.com`)", exact("a.com")),
    ("Host(`A.com.`) && PathPrefix(`/x`)", exact("a.com")),
    ("PathPrefix(`/x`) && Host(`a.com`)", exact("a.com")),
    ("Host(`a.com`) || Host(`b.com`)", exact("a.com", "b.com")),
    ("(Host(`a.com`) || Host(`b.com`)) && Method(`GET`)", exact("a.com", "b.com")),
    ("Host(`*.x.com`)", wild("x.com")),
    ("Host(`*.x.com`) || Host(`y.com`)", HostConstraint(frozenset({"y.com"}), frozenset({"x.com"}))),
    ("Host(`a.x.com`) && Host(`*.x.com`)", exact("a.x.com")),
    ("(Host(`a.com`) || Host(`b.com`)) && Host(`b.com`)", exact("b.com")),
    ("Host(`a.com`) && Host(`b.com`)", HostConstraint()),  # can never match
    ("Host(`*.x.com`) && Host(`*.y.com`)", HostConstraint()),
    ("Host(`*x.com`)", HostConstraint()),
    ("Host(`a.com`) || (Host(`b.com`) && Path(`/p`))", exact("a.com", "b.com")),
    ("Host(`a.com`) && !Host(`b.com`)", exact("a.com")),
    ("!Host(`a.com`)", None),
    ("!(Host(`a.com`) || Path(`/`))", None),
    ("!!Host(`a.com`)", exact("a.com")),
    ("HostRegexp(`^a\\.com$`)", None),
    ("Host(`*`)", None),
    ("Host(`*.`)", None),
    ("Host(`a.com`) || Path(`/x`)", None),
    ("PathPrefix(`/`)", None),
])
def test_host_constraint(rule: str, expected: HostConstraint | None) -> None:
    assert hosts(rule) == expected


def test_host_constraint_v2() -> None:
    assert hosts("Host(`a.com`, `B.com`)", "v2") == exact("a.com", "b.com")
    assert hosts("HostHeader(`a.com`) && Path(`/`)", "v2") == exact("a.com")
    assert hosts("HostRegexp(`{sub}.a.com`)", "v2") is None
    assert hosts("Host(`*.a.com`)", "v2") == exact("*.a.com")  # v2 has no wildcard


def test_host_constraint_allows() -> None:
    constraint = HostConstraint(frozenset({"a.com"}), frozenset({"x.com"}))
    assert constraint.allows("a.com")
    assert constraint.allows("b.x.com")
    assert constraint.allows(".x.com")  # an empty first label, as Traefik's label comparison allows
    assert not constraint.allows("x.com")
    assert not constraint.allows("c.b.x.com")
    assert not constraint.allows("")
    assert not HostConstraint().allows("a.com")
    assert repr(constraint) == "HostConstraint(exact={'a.com'}, wildcard_parents={'x.com'})"


# -- domains ---------------------------------------------------------------------------------------------


def test_domains() -> None:
    assert compile_rule("Host(`Foo.Bar`) || Host(`b.com`) && Path(`/x`)").domains() == ["foo.bar", "b.com"]
    assert compile_rule("Path(`/x`)").domains() == []
    assert compile_rule("HostRegexp(`a`) && Host(`*.x.com`)").domains() == ["*.x.com"]
    assert compile_rule("!Host(`a.com`)").domains() == ["a.com"]  # as Traefik's ParseDomains
    assert compile_rule("Host(`a.com`, `b.com`)", syntax="v2").domains() == ["a.com", "b.com"]
    assert compile_rule("HostHeader(`a.com`)", syntax="v2").domains() == []


# -- paths ---------------------------------------------------------------------------------------------------


def test_path_matchers_use_the_routing_path() -> None:
    request = req(path=routing_path("/foo%20bar/x"))
    assert matches("PathPrefix(`/foo bar`)", request)
    assert matches("Path(`/foo bar/x`)", request)
    assert matches("PathRegexp(`^/foo bar/`)", request)
    encoded_slash = req(path=routing_path("/a%2fb"))
    assert encoded_slash.path == "/a%2Fb"
    assert not matches("Path(`/a/b`)", encoded_slash)
    assert matches("Path(`/a%2Fb`)", encoded_slash)


def test_path_prefix_is_a_plain_string_prefix() -> None:
    assert matches("PathPrefix(`/products`)", req(path="/products-for-sale"))
    assert not matches("PathPrefix(`/products/`)", req(path="/products"))
    assert not matches("PathPrefix(`/{id}`)", req(path="/42"))  # no placeholders in v3


# -- headers ---------------------------------------------------------------------------------------------------


def test_header_matches_any_value_exactly() -> None:
    request = req(headers={"X-Tag": ["a, b", "c"], "x-tag": ["d"]})
    assert matches("Header(`x-TAG`, `c`)", request)
    assert matches("Header(`X-Tag`, `d`)", request)
    assert matches("Header(`X-Tag`, `a, b`)", request)
    assert not matches("Header(`X-Tag`, `a`)", request)  # values are not split on commas
    assert not matches("Header(`X-Other`, `c`)", request)
    assert matches("HeaderRegexp(`X-Tag`, `^[cd]$`)", request)
    assert not matches("HeaderRegexp(`X-Tag`, `^C$`)", request)


# -- query -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("rule", "query", "expected"), [
    ("Query(`q`, `a b`)", "q=a+b", True),
    ("Query(`q`, `a b`)", "q=a%20b", True),
    ("Query(`q`, `a+b`)", "q=a%2Bb", True),
    ("Query(`a b`, `1`)", "a+b=1", True),
    ("Query(`a+b`, `1`)", "a+b=1", False),
    ("Query(`q`, `x`)", "q=y&q=x", True),
    ("Query(`q`, `x`)", "q=x;y=z", False),  # a pair with ';' is dropped, as by Go's ParseQuery
    ("Query(`q`, `x`)", "a=1;b&q=x", True),
    ("Query(`q`, `x`)", "q=%zz&q=x", True),  # a malformed pair is skipped, others still count
    ("Query(`q`, `x`)", "Q=x", False),
    ("Query(`q`)", "q", True),
    ("Query(`q`)", "q=", True),
    ("Query(`q`)", "q=1", False),
    ("QueryRegexp(`q`)", "q", True),
    ("QueryRegexp(`q`, `^[0-9]+$`)", "q=x&q=42", True),
    ("QueryRegexp(`q`, `^[0-9]+$`)", "", False),
])
def test_query(rule: str, query: str, expected: bool) -> None:
    assert matches(rule, req(query=query)) is expected


# -- method ------------------------------------------------------------------------------------------------------


def test_method_upper_cases_the_rule_and_compares_exactly() -> None:
    assert matches("Method(`post`)", req(method="POST"))
    assert not matches("Method(`POST`)", req(method="post"))


# -- ClientIP -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("rule", "client_ip", "expected"), [
    ("ClientIP(`10.0.0.0/8`)", "10.1.2.3", True),
    ("ClientIP(`10.0.0.5/8`)", "10.9.9.9", True),  # host bits in the rule are masked
    ("ClientIP(`10.0.0.0/8`)", "11.0.0.1", False),
    ("ClientIP(`10.0.0.0/8`)", "::ffff:10.1.2.3", True),  # IPv4-mapped client
    ("ClientIP(`::ffff:10.0.0.0/104`)", "10.1.2.3", True),  # IPv4-mapped network
    ("ClientIP(`::ffff:10.1.2.3`)", "10.1.2.3", True),
    ("ClientIP(`2001:db8::/32`)", "2001:db8::1", True),
    ("ClientIP(`2001:db8::/32`)", "2001:db9::1", False),
    ("ClientIP(`fe80::/16`)", "fe80::1%eth0", True),  # zone ignored
    ("ClientIP(`fe80::1`)", "fe80::1%eth0", True),
    ("ClientIP(`::/0`)", "10.0.0.1", False),  # Go does not match IPv4 against an IPv6 range
    ("ClientIP(`10.0.0.1`)", "", False),
    ("ClientIP(`10.0.0.1`)", "not-an-ip", False),
    ("ClientIP(`10.0.0.1`)", "10.0.0.1:80", False),  # client_ip carries no port
])
def test_client_ip(rule: str, client_ip: str, expected: bool) -> None:
    assert matches(rule, req(client_ip=client_ip)) is expected


@pytest.mark.parametrize(("remote_addr", "host"), [
    ("10.0.0.1:1234", "10.0.0.1"),
    ("[::1]:80", "::1"),
    ("::1", "::1"),
    ("10.0.0.1", "10.0.0.1"),
    ("[::1]", "[::1]"),
    ("", ""),
    ("1", "1"),
])
def test_client_host(remote_addr: str, host: str) -> None:
    assert client_host(remote_addr) == host


# -- operators and evaluation --------------------------------------------------------------------------------------


def test_precedence_and_negation() -> None:
    rule = "Host(`a`) || Host(`b`) && Path(`/x`)"
    assert matches(rule, req(host="a", path="/y"))
    assert not matches(rule, req(host="b", path="/y"))
    assert matches("!(Host(`a`) && !Path(`/x`))", req(host="a", path="/x"))
    assert compile_rule("!(Host(`a`) || Path(`/x`))").describe() == "!Host(`a`) && !Path(`/x`)"


class Exploding(Req):
    def header_values(self, name: str) -> Sequence[str]:
        raise AssertionError("header_values should not be called")


def test_cheap_operands_are_evaluated_first() -> None:
    rule = compile_rule("HeaderRegexp(`X-A`, `.`) && Host(`a.com`)")
    assert not rule.match(Exploding(host="b.com"))
    assert "req.host ==" in rule.source.split(" and ")[0]


def test_fast_path_code() -> None:
    assert compile_rule("Host(`a.com`)").source == "def _match(req):\n    return (req.host == _c0)\n"
    assert compile_rule("Host(`a.com`) && PathPrefix(`/x`)").source == \
        "def _match(req):\n    return ((req.host == _c0) and req.path.startswith(_c1))\n"


def test_long_chains_and_nesting_limit() -> None:
    chain = " || ".join(f"Host(`h{i}.com`)" for i in range(2000))
    rule = compile_rule(chain)
    assert rule.match(req(host="h1999.com"))
    assert rule.hosts is not None and len(rule.hosts.exact) == 2000
    nested = "(" * MAX_DEPTH + "Host(`a`)" + ")" * MAX_DEPTH
    assert compile_rule(nested).match(req(host="a"))
    with pytest.raises(RuleError, match="nested too deeply"):
        compile_rule("(" * (MAX_DEPTH + 2) + "Host(`a`)" + ")" * (MAX_DEPTH + 2))
    deep_not = "!" * 60 + "(Host(`a`) && " * 40 + "Path(`/`)" + ")" * 40
    assert compile_rule(deep_not).match(req(host="a", path="/"))
    alternating = "Host(`a`)"
    for i in range(MAX_DEPTH - 1):  # the deepest alternation of && and || the parser accepts
        alternating = f"Path(`/{i}`){' && ' if i % 2 else ' || '}({alternating})"
    assert compile_rule(alternating).match(req(host="a", path="/98"))


# -- syntax details --------------------------------------------------------------------------------------------------


def test_string_literals() -> None:
    call = parse_rule('Path("/a\\tb\\u00e9\\x41\\101\\"\\\\")', ["Path"])
    assert isinstance(call, Call)
    assert call.values() == ('/a\tbéAA"\\',)
    assert matches('Path("/a\\tb\\u00e9")', req(path="/a\tbé"))
    assert matches("Path(`/a\r\nb`)", req(path="/a\nb"))  # raw strings drop carriage returns
    assert matches("Host(`a`,)", req(host="a"))  # Go allows a trailing comma
    assert matches("Host (`a`)", req(host="a"))
    assert matches("Host(`a`) &&\n  Path(`/`)\n", req(host="a", path="/"))
    assert matches("Host(`a`) /* comment */ && Path(`/`) // trailing", req(host="a", path="/"))


def test_matcher_name_spellings() -> None:
    for name in ("PathPrefix", "pathprefix", "PATHPREFIX", "Pathprefix"):
        assert matches(f"{name}(`/x`)", req(path="/x"))
    with pytest.raises(RuleError):
        compile_rule("pathPrefix(`/x`)")


def test_parse_rule_with_other_matchers() -> None:
    tree = parse_rule("!hostsni(`a`) || ALPN(`h2`)", ["HostSNI", "ALPN"])
    assert [c.name for c in (tree.left, tree.right)] == ["HostSNI", "ALPN"]  # type: ignore[union-attr]
    with pytest.raises(RuleError, match="unknown matcher 'Host'"):
        parse_rule("Host(`a`)", ["HostSNI"])


# -- v2 ------------------------------------------------------------------------------------------------------------------


def test_v2_query_pairs_and_first_value() -> None:
    assert matches("Query(`a`, `b`)", req(query="a=b"), "v2")  # split into key/value pairs like Traefik
    assert not matches("Query(`a=b`)", req(query="a=c&a=b"), "v2")  # only the first value counts
    assert matches("Query(`a=`)", req(query="a=anything"), "v2")
    assert matches("Query(`id={id:[0-9]+}`)", req(query="id=42"), "v2")
    assert not matches("Query(`id={id:[0-9]+}`)", req(query="id=4x"), "v2")


def test_v2_templates() -> None:
    assert matches("HostRegexp(`{sub}.example.com`)", req(host="www.example.com"), "v2")
    assert not matches("HostRegexp(`{sub}.example.com`)", req(host="a.b.example.com"), "v2")
    assert matches("HostRegexp(`Example.COM`)", req(host="example.com"), "v2")
    assert matches("Path(`/users/{id}`)", req(path="/users/42"), "v2")
    assert not matches("Path(`/users/{id}`)", req(path="/users/42/x"), "v2")
    assert matches("PathPrefix(`/users/{id:[0-9]+}`)", req(path="/users/42/x"), "v2")
    assert matches("Path(`/a`, `/b`)", req(path="/b"), "v2")


def test_v2_headers_are_anded() -> None:
    rule = "Headers(`X-A`, `1`, `X-B`, `2`)"
    assert matches(rule, req(headers={"X-A": ["1"], "X-B": ["2"]}), "v2")
    assert not matches(rule, req(headers={"X-A": ["1"]}), "v2")
    # gorilla keeps the pairs in a map: a repeated name keeps its last value
    assert matches("Headers(`X-A`, `1`, `X-A`, `2`)", req(headers={"X-A": ["2"]}), "v2")


# -- the compiled object ------------------------------------------------------------------------------------------------


def test_priority_is_the_rule_length_in_bytes() -> None:
    assert compile_rule("Host(`example.org`)").priority == 19
    assert compile_rule("PathPrefix(`/é`)").priority == len("PathPrefix(`/é`)") + 1
    assert compile_rule("  Host(`a`)  ").priority == 13


def test_compiled_rule_is_immutable_and_memoized() -> None:
    rule = compile_rule("Host(`a`)")
    assert compile_rule("Host(`a`)") is rule
    assert rule == compile_rule("Host(`a`)", syntax="v3")
    assert rule != compile_rule("Host(`a`)", syntax="v2")
    assert hash(rule) == hash(compile_rule("Host(`a`)"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.priority = 1  # type: ignore[misc]


def test_compiled_rule_pickles_by_recompiling() -> None:
    rule = compile_rule("Host(`a`) || Host(`b`)", syntax="v2")
    clone = pickle.loads(pickle.dumps(rule))
    assert clone == rule
    assert clone.match(req(host="b"))


@pytest.mark.parametrize(("syntax", "resolved"), [("v3", "v3"), ("v2", "v2"), ("", "v3"), ("default", "v3"),
                                                  ("v4", "v3")])
def test_syntax_values(syntax: str, resolved: str) -> None:
    assert compile_rule("Host(`a`)", syntax=syntax).syntax == resolved


def test_repr_is_readable() -> None:
    rule = compile_rule("host(`A.com`) && !Pathprefix(`/x`)")
    text = repr(rule)
    assert text.startswith("CompiledRule('host(`A.com`) && !Pathprefix(`/x`)', syntax='v3', priority=34,")
    assert "hosts=HostConstraint(exact={'a.com'})" in text
    assert "parsed='Host(`A.com`) && !PathPrefix(`/x`)'" in text
    assert "hosts=any" in repr(compile_rule("Path(`/`)"))
    assert isinstance(rule, CompiledRule)


# -- canonical_host and routing_path --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    ("example.com", "example.com"),
    ("Example.COM", "example.com"),
    ("example.com:8080", "example.com"),
    ("example.com.", "example.com"),
    ("EXAMPLE.com.:443", "example.com"),
    ("[::1]:443", "::1"),
    ("[::1]", "::1"),
    ("[FE80::1]", "fe80::1"),
    ("10::10", "10::10"),
    ("127.0.0.1:80", "127.0.0.1"),
    (" example.com ", "example.com"),
    ("example.com:", "example.com"),
    ("", ""),
])
def test_canonical_host(raw: str, expected: str) -> None:
    assert canonical_host(raw) == expected


def test_canonical_host_fast_path_returns_the_same_object() -> None:
    raw = "example.com"
    assert canonical_host(raw) is raw


@pytest.mark.parametrize(("raw", "expected"), [
    ("/plain", "/plain"),
    ("/foo%20bar", "/foo bar"),
    ("/foo%2Fbar", "/foo%2Fbar"),
    ("/foo%2fbar", "/foo%2Fbar"),
    ("/%7Bx%7D", "/{x}"),
    ("/a%25b", "/a%25b"),
    ("/a%3fb%23c", "/a%3Fb%23c"),
    ("/%C3%A9", "/é"),
    ("/é%20", "/é "),
    ("/%41%2B", "/A%2B"),
])
def test_routing_path(raw: str, expected: str) -> None:
    assert routing_path(raw) == expected


def test_routing_path_fast_path_returns_the_same_object() -> None:
    raw = "/no/escapes"
    assert routing_path(raw) is raw


@pytest.mark.parametrize("raw", ["/a%", "/a%2", "/a%zz", "/%g0"])
def test_routing_path_rejects_malformed_escapes(raw: str) -> None:
    with pytest.raises(ProtocolError) as info:
        routing_path(raw)
    assert info.value.status_hint == 400
