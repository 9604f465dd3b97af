"""Property-based tests: host-constraint soundness, parser robustness, error columns."""

from __future__ import annotations

import os
import re
import warnings

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ferryman.errors import RuleError
from ferryman.rules import RegexpError, canonical_host, compile_go, compile_rule, routing_path
from tests.unit.rules.rules_support import Req, req

# FERRYMAN_RULES_EXAMPLES raises the number of examples for a long local fuzzing run.
SETTINGS = settings(max_examples=int(os.environ.get("FERRYMAN_RULES_EXAMPLES", "400")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# -- random rules over a small vocabulary, so that generated requests actually hit them --------------

HOSTS = ["a.com", "b.a.com", "x.a.com", "a.b.com", "c.com", "localhost", "x.y.a.com", "com"]
HOST_VALUES = [*HOSTS, "*.a.com", "*.com", "*.b.com", "*", "*.", "A.COM.", "*.A.com", "*x.com", "b.A.com."]
LEAVES_V3 = [
    st.sampled_from(HOST_VALUES).map(lambda h: f"Host(`{h}`)"),
    st.sampled_from(HOST_VALUES).map(lambda h: f"host(\"{h}\")"),
    st.just("HostRegexp(`^[a-z]\\.a\\.com$`)"),
    st.sampled_from(["/", "/x", "/y"]).map(lambda p: f"PathPrefix(`{p}`)"),
    st.sampled_from(["/x", "/y"]).map(lambda p: f"Path(`{p}`)"),
    st.sampled_from(["GET", "post"]).map(lambda m: f"Method(`{m}`)"),
    st.just("Header(`X-A`, `1`)"),
    st.just("Query(`q`)"),
    st.just("ClientIP(`10.0.0.0/8`)"),
]
LEAVES_V2 = [
    st.lists(st.sampled_from(HOST_VALUES), min_size=1, max_size=3).map(
        lambda hs: "Host(" + ", ".join(f"`{h}`" for h in hs) + ")"),
    st.sampled_from(HOSTS).map(lambda h: f"HostHeader(`{h}`)"),
    st.just("HostRegexp(`{sub:[a-z]+}.a.com`)"),
    st.sampled_from(["/", "/x"]).map(lambda p: f"PathPrefix(`{p}`)"),
    st.just("Method(`GET`, `POST`)"),
    st.just("Headers(`X-A`, `1`)"),
]


def rules(leaves: list[st.SearchStrategy[str]]) -> st.SearchStrategy[str]:
    def extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(children, st.sampled_from([" && ", " || "]), children).map(lambda t: f"{t[0]}{t[1]}{t[2]}"),
            children.map(lambda c: f"({c})"),
            children.map(lambda c: f"!({c})"),
            children.map(lambda c: f"!{c}" if c.endswith(")") else f"!({c})"),
        )
    return st.recursive(st.one_of(*leaves), extend, max_leaves=8)


def requests() -> st.SearchStrategy[Req]:
    host = st.builds(
        lambda h, upper, dot, port: (h.upper() if upper else h) + ("." if dot else "") + (":8080" if port else ""),
        st.sampled_from([*HOSTS, "", "z.a.com", ".a.com"]), st.booleans(), st.booleans(), st.booleans())
    return st.builds(
        lambda h, p, m, hdr, q, ip: req(host=h, path=p, method=m, headers={"X-A": ["1"]} if hdr else {},
                                        query=q, client_ip=ip),
        host, st.sampled_from(["/", "/x", "/y", "/x/z"]), st.sampled_from(["GET", "POST"]),
        st.booleans(), st.sampled_from(["", "q", "q=1"]), st.sampled_from(["10.1.1.1", "192.0.2.1"]))


@SETTINGS
@given(rules(LEAVES_V3), st.lists(requests(), min_size=1, max_size=8))
@example("Host(`a.com`) || !Host(`b.com`)", [req(host="c.com")])
@example("!(!Host(`*.a.com`) || Path(`/x`))", [req(host="b.a.com", path="/y")])
def test_host_constraint_is_sound_v3(rule_text: str, reqs: list[Req]) -> None:
    rule = compile_rule(rule_text)
    for request in reqs:
        if rule.match(request):
            assert rule.hosts is None or rule.hosts.allows(request.host), (rule, request)


@SETTINGS
@given(rules(LEAVES_V2), st.lists(requests(), min_size=1, max_size=8))
def test_host_constraint_is_sound_v2(rule_text: str, reqs: list[Req]) -> None:
    rule = compile_rule(rule_text, syntax="v2")
    for request in reqs:
        if rule.match(request):
            assert rule.hosts is None or rule.hosts.allows(request.host), (rule, request)


@SETTINGS
@given(rules(LEAVES_V3), requests())
def test_negation_is_complement(rule_text: str, request: Req) -> None:
    rule = compile_rule(rule_text)
    assert compile_rule(f"!({rule_text})").match(request) is (not rule.match(request))


# -- robustness of the parser: only RuleError, with a column inside the rule ---------------------------

RULE_ALPHABET = "HostPathPrefixRegexpQueryHeaderMethodClientIP()`\"'&|!,. \n\t\\/*{}[]:=-_0123456789abxyzé"


def near_rules() -> st.SearchStrategy[str]:
    """Valid rules with random edits: the inputs most likely to reach deep parser paths."""
    def mutate(rule: str, edits: list[tuple[int, int, str]]) -> str:
        for kind, pos, ch in edits:
            pos %= len(rule) + 1
            if kind == 0:
                rule = rule[:pos] + ch + rule[pos:]
            elif kind == 1:
                rule = rule[:pos] + rule[pos + 1:]
            else:
                rule = rule[:pos] + ch + rule[pos + 1:]
        return rule
    edit = st.tuples(st.integers(0, 2), st.integers(0, 400), st.sampled_from(RULE_ALPHABET))
    return st.builds(mutate, rules(LEAVES_V3 + LEAVES_V2), st.lists(edit, min_size=1, max_size=4))


def _compile_or_rule_error(rule: str, syntax: str) -> None:
    try:
        compiled = compile_rule(rule, syntax=syntax)
    except RuleError as error:
        assert error.rule == rule
        assert 0 <= error.column <= len(rule), (error.column, len(rule))
        lines = str(error).split("\n")
        line_start = rule.rfind("\n", 0, error.column) + 1
        assert lines[0].endswith(f"column {error.column - line_start + 1}")
        # the caret sits under the offending character of the line shown
        assert lines[2] == " " * (4 + error.column - line_start) + "^"
        if "\n" not in rule:
            assert lines[1] == "    " + rule
            assert lines[2] == " " * (4 + error.column) + "^"
        return
    assert compiled.priority == len(rule.encode("utf-8", "surrogatepass"))
    compiled.match(req())  # never raises on a well-formed request


@SETTINGS
@given(st.text(), st.sampled_from(["v3", "v2"]))
def test_parser_only_raises_rule_error_on_any_text(rule: str, syntax: str) -> None:
    _compile_or_rule_error(rule, syntax)


@SETTINGS
@given(st.text(alphabet=RULE_ALPHABET, max_size=80), st.sampled_from(["v3", "v2"]))
def test_parser_only_raises_rule_error_on_rule_like_text(rule: str, syntax: str) -> None:
    _compile_or_rule_error(rule, syntax)


@SETTINGS
@given(near_rules(), st.sampled_from(["v3", "v2"]))
def test_parser_only_raises_rule_error_on_mutated_rules(rule: str, syntax: str) -> None:
    _compile_or_rule_error(rule, syntax)


@SETTINGS
@given(st.text(alphabet="ab.|()*+?{}[]^$\\dw,-:=<>!Pi1", max_size=16))
def test_regexp_translation_agrees_with_python_where_both_accept(pattern: str) -> None:
    try:
        ours = compile_go(pattern)
    except RegexpError as error:
        assert 0 <= error.pos <= len(pattern)
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            theirs = re.compile(pattern, re.ASCII)
    except (re.error, OverflowError, RecursionError):
        return
    if "$" in pattern or "\\Z" in pattern or "{" in pattern or "\\b" in pattern:
        return  # known, intended differences (end of text, literal braces)
    for text in ["", "a", "b", "ab", "ba", "aab", "a.b", "{}", "-", "1", "a\nb", "abab"]:
        assert (ours.search(text) is None) == (theirs.search(text) is None), (pattern, text)


# -- helpers ----------------------------------------------------------------------------------------------


@SETTINGS
@given(st.text(alphabet="abcXYZ019.-_:[]*"))
def test_canonical_host_is_idempotent_and_lower_case(raw: str) -> None:
    host = canonical_host(raw)
    assert host == host.lower()
    # Only one trailing dot is dropped (as Traefik tolerates one), and a bare IPv6 literal such as
    # 10::10 is left alone, so those two shapes are not fixed points.
    if not host.endswith(".") and ":" not in host:
        assert canonical_host(host) == host


path_chars = st.one_of(
    st.sampled_from(list("/abcAZ09-._~!$&'()*+,;=:@ é")),
    st.builds(lambda a, b: f"%{a}{b}", st.sampled_from("0123456789abcdefABCDEF"),
              st.sampled_from("0123456789abcdefABCDEF")),
)


@SETTINGS
@given(st.lists(path_chars, max_size=20).map("".join))
def test_routing_path_is_idempotent(raw: str) -> None:
    once = routing_path("/" + raw)
    assert routing_path(once) == once
