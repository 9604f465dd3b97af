"""Replay Traefik's own test vectors (``/work/shared/conformance``) against ferryman.rules."""

from __future__ import annotations

from typing import Any

import pytest

from ferryman.errors import RuleError
from ferryman.rules import compile_rule, parse_domains, parse_rule, routing_path
from ferryman.rules.tree import And, Call, Node, calls
from tests.unit.rules.rules_support import load_conformance, request_from_case, require

HTTP = load_conformance("http_rules.json")
PRIORITY = load_conformance("priority.json")


def _cases(section: str, data: dict[str, Any] = HTTP) -> list[Any]:
    cases: list[Any] = data.get(section, [])
    return cases or [pytest.param(None, marks=pytest.mark.skip(reason="conformance data not found"))]


def _id(case: dict[str, Any] | None) -> str:
    if case is None:
        return "missing"
    return f"{case.get('syntax', 'v3')}:{case.get('source', '').split(':', 1)[-1]}"


@pytest.mark.parametrize("case", _cases("match_cases"), ids=_id)
def test_match_case(case: dict[str, Any]) -> None:
    # go_test_artifact cases: the Go test built a header map with a non-canonical key, which a
    # real request cannot produce; over the wire the header matches (match_over_the_wire).
    expected = case.get("match_over_the_wire", case["match"]) if case.get("go_test_artifact") else case["match"]
    rule = compile_rule(case["rule"], syntax=case.get("syntax", "v3"))
    request = request_from_case(case["request"])
    assert rule.match(request) is expected, f"{case['rule']!r} on {case['request']}"
    if rule.hosts is not None and expected:
        assert rule.hosts.allows(request.host), "host constraint excludes a matching request"


@pytest.mark.parametrize("case", _cases("match_cases"), ids=_id)
def test_match_case_routing_path(case: dict[str, Any]) -> None:
    request = case["request"]
    if request["path"]:
        assert routing_path(request["path"]) == request["routing_path"]


@pytest.mark.parametrize("case", _cases("parse_error_cases"), ids=_id)
def test_parse_error_case(case: dict[str, Any]) -> None:
    rule = case["rule"]
    with pytest.raises(RuleError) as info:
        compile_rule(rule, syntax=case.get("syntax", "v3"))
    error = info.value
    assert error.rule == rule
    assert 0 <= error.column <= len(rule)
    assert "^" in str(error)


def _traefik_tree(node: Node) -> dict[str, Any]:
    """Our tree in the shape of Traefik's ``rules.Tree`` as the conformance data records it."""
    if isinstance(node, Call):
        values = list(node.values())
        return {"matcher": node.name, "not": node.negated, "values": values,
                "check_error": not values or any(not v for v in values)}
    return {"matcher": "and" if isinstance(node, And) else "or", "not": False, "check_error": True,
            "left": _traefik_tree(node.left), "right": _traefik_tree(node.right)}


@pytest.mark.parametrize("case", _cases("grammar_cases"), ids=_id)
def test_grammar_case(case: dict[str, Any]) -> None:
    if case["parse_error"]:
        with pytest.raises(RuleError):
            parse_rule(case["rule"], case["matchers_known"])
        return
    tree = parse_rule(case["rule"], case["matchers_known"])
    assert _traefik_tree(tree) == case["tree"]
    wanted = case["collect_values_for"] or []
    collected = [v.lower() for c in calls(tree) if c.name in wanted for v in c.values()]
    assert (collected or None) == case["collected_values"]


@pytest.mark.parametrize("case", _cases("routing_path_cases"), ids=_id)
def test_routing_path_case(case: dict[str, Any]) -> None:
    assert routing_path(case["request_path"]) == case["routing_path"]


@pytest.mark.parametrize("case", _cases("parse_domains_cases"), ids=_id)
def test_parse_domains_case(case: dict[str, Any]) -> None:
    if case["error"]:
        with pytest.raises(RuleError):
            parse_domains(case["rule"])
        return
    assert parse_domains(case["rule"]) == (case["domains"] or [])
    try:
        compiled = compile_rule(case["rule"])
    except RuleError:
        return  # e.g. Host() — ParseDomains does not validate values, compile does
    assert compiled.domains() == (case["domains"] or [])


def _http_priority_cases() -> list[Any]:
    cases = [c for c in PRIORITY.get("default_priority_cases", []) if c["kind"] == "http"]
    return cases or [pytest.param(None, marks=pytest.mark.skip(reason="conformance data not found"))]


@pytest.mark.parametrize("case", _http_priority_cases(), ids=_id)
def test_default_priority_case(case: dict[str, Any]) -> None:
    assert compile_rule(case["rule"]).priority == case["expected_priority"]


def test_conformance_counts() -> None:
    """Guard against silently replaying a truncated data set."""
    require(HTTP, "http_rules.json")
    assert len(HTTP["match_cases"]) == 536
    assert len(HTTP["parse_error_cases"]) == 98
    assert len(HTTP["grammar_cases"]) == 21
    assert len(HTTP["routing_path_cases"]) == 3
    assert len(HTTP["parse_domains_cases"]) == 6
    assert sum(1 for c in HTTP["match_cases"] if c.get("go_test_artifact")) == 8
