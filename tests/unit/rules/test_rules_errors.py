"""Rule errors: each points at the right column, says what is wrong, and how to fix it."""

from __future__ import annotations

import pytest

from ferryman.errors import RuleError
from ferryman.rules import check_rule, compile_rule, parse_domains


def _error(rule: str, syntax: str = "v3") -> RuleError:
    with pytest.raises(RuleError) as info:
        compile_rule(rule, syntax=syntax)
    return info.value


# (rule, column where the caret must be, words the message must contain, words the fix must contain)
CASES: list[tuple[str, int, str, str]] = [
    # unknown matchers, with the list of known ones and a suggestion
    ("Hots(`a`)", 0, "unknown matcher 'Hots'", "did you mean Host?"),
    ("Host(`a`) && Pth(`/`)", 13, "known matchers: ClientIP, Header", "did you mean Path?"),
    ("hOsT(`a`)", 0, "not written in an accepted case", "Host, host or HOST"),
    ("Headers(`X-A`, `b`)", 0, "Headers is a ruleSyntax v2 matcher", "Header(`name`, `value`)"),
    ("rulewithnotmatcher", 0, "bare name 'rulewithnotmatcher'", "parentheses"),
    ("Host", 0, "bare name 'Host'", "Host(`example.com`)"),
    # argument count and empty arguments
    ("Host(`a`, `b`)", 10, "Host takes one value, got 2", "Host(`example.com`)"),
    ("Header(`X-A`)", 12, "Header takes two values, got 1", "Header(`X-Canary`, `1`)"),
    ("Query(`a`, `b`, `c`)", 16, "one value or two values, got 3", "Query("),
    ("Host()", 5, "Host has no value", "Host(`example.com`)"),
    ("Path(``)", 5, "empty value in Path", "Path(`/products`)"),
    ("Header(`X-A`, ``)", 14, "empty value in Header", ""),
    # quoting
    ("Host(example.com)", 5, "must be quoted", "Host(`example.com`)"),
    ("Header(`X-A`, value)", 14, "must be quoted", "`value`"),
    ("Host('example.com')", 5, "single quotes", "`example.com`"),
    ("Host(`a`) && Path('/x')", 18, "single quotes", "`/x`"),
    ("Host(`a)", 5, "closing backtick is missing", "add the closing backtick"),
    ('Host("a)', 5, "closing double quote is missing", ""),
    ('PathRegexp("^/a\\.b")', 15, "unknown escape sequence \\.", "backticks"),
    ('Host("\\xff")', 6, "valid UTF-8", ""),
    ("Host(`a` `b`)", 9, "missing ','", ""),
    ("Host(,)", 5, "missing value before ','", ""),
    # parentheses
    ("Host(`a`", 4, "'(' is never closed", "add the missing ')'"),
    ("(Host(`a`) && Path(`/`)", 0, "'(' is never closed", "')'"),
    ("Host(`a`))", 9, "has no matching '('", ""),
    ("Host(`a`) && Path(`/`))", 22, "has no matching '('", ""),
    ("()", 0, "empty parentheses", ""),
    # operators
    ("Host(`a`) &&", 10, "'&&' is missing a matcher on its right", "after '&&'"),
    ("Host(`a`) ||", 10, "'||' is missing a matcher on its right", ""),
    ("&& Host(`a`)", 0, "'&&' is missing a matcher on its left", ""),
    ("Host(`a`) || || Host(`b`)", 10, "'||' is missing a matcher on its right", ""),
    ("Host(`a`) && (Path(`/`) ||)", 24, "'||' is missing a matcher on its right", ""),
    ("Host(`a`) & Path(`/`)", 10, "single '&'", "&&"),
    ("Host(`a`) | Path(`/`)", 10, "single '|'", "||"),
    ("Host(`a`) and Path(`/`)", 10, "'and' is not an operator", "&&"),
    ("Host(`a`) Path(`/`)", 10, "missing operator", "&&"),
    ("Host(`a`) == Host(`b`)", 10, "'=='", ""),
    ("Host(`a`) && !", 13, "'!' must be followed", "!Host"),
    ("Host(`a`)\n&& Path(`/`)", 10, "line break", "end of the previous line"),
    ('Host("a"\n)', 8, "line break", ""),
    ("Host(`a`) /* no end", 10, "comment not terminated", ""),
    # matcher values
    ("Path(`api`)", 6, "must start with '/'", "Path(`/api`)"),
    ("Host(`a`) && PathPrefix(\"api\")", 25, "must start with '/'", "PathPrefix(`/api`)"),
    ("Host(`exämple.com`)", 8, "non-ASCII", "xn--exmple-cua.com"),
    ("Host(`🦭.com`)", 6, "non-ASCII", "Host(`xn--9t9h.com`)"),
    ("ClientIP(`10.0.0.0/33`)", 10, "not an IP address or a CIDR range", "10.0.0.0/8"),
    ("ClientIP(`1`)", 10, "not an IP address", ""),
    ("ClientIP(`010.0.0.1`)", 10, "not an IP address", ""),
    ("ClientIP(`fe80::1%eth0`)", 10, "not an IP address", ""),
    ("ClientIP(`10.0.0.0/255.0.0.0`)", 10, "not an IP address", ""),
    # regular expressions: the caret goes to the offending character inside the value
    ("PathRegexp(`^/(a`)", 14, "missing closing ')'", "')'"),
    ("PathRegexp(`(a)\\1`)", 15, "backreferences", ""),
    ("HostRegexp(`^(?=x)`)", 13, "lookahead", ""),
    ("PathRegexp(`(?<=a)b`)", 12, "lookbehind", ""),
    ("PathRegexp(`a++`)", 14, "nested repetition", ""),
    ("PathRegexp(`a{2000}`)", 13, "invalid repeat count", ""),
    ("PathRegexp(`[z-a]`)", 13, "invalid character class range", ""),
    ("PathRegexp(`\\pL`)", 12, "Unicode character classes", ""),
    ("PathRegexp(`a\\Z`)", 13, "invalid escape sequence \\Z", "\\z"),
    ("Header(`X`, `x`) && HeaderRegexp(`X`, `(`)", 39, "missing closing ')'", ""),
    ("QueryRegexp(`q`, `*x`)", 18, "missing argument to repetition operator", ""),
    ('PathRegexp("^/(x\\x41")', 14, "missing closing ')'", ""),
]


@pytest.mark.parametrize(("rule", "column", "message", "fix"), CASES, ids=[c[0] for c in CASES])
def test_error_points_at_column(rule: str, column: int, message: str, fix: str) -> None:
    error = _error(rule)
    assert error.column == column, f"{error.message} at column {error.column}, expected {column}"
    assert message in error.message
    assert fix in (error.fix or "")
    assert error.rule == rule


@pytest.mark.parametrize(("rule", "column", "message"), [
    ("Headers(`X-A`)", 13, "name/value pairs, got 1 value"),
    ("Query(`titi`)", 7, "key=value pairs"),
    ("Query(`titi={test`)", 7, "unbalanced braces"),
    ("HostRegexp(`{sub:[a-z}.example.com`)", 12, "invalid regular expression in '{sub:[a-z}'"),
    ("Path(`/a/{:x}`)", 9, "missing name or pattern"),
    ("Header(`X-A`, `b`)", 0, "Header is a ruleSyntax v3 matcher"),
    ("PathRegexp(`/a`)", 0, "PathRegexp is a ruleSyntax v3 matcher"),
    ("Host(`locàlhost`)", 9, "non-ASCII"),
])
def test_v2_errors(rule: str, column: int, message: str) -> None:
    error = _error(rule, syntax="v2")
    assert error.column == column
    assert message in error.message


@pytest.mark.parametrize("rule", [
    "PathRegexp(`^/(a`)",
    "Host(`a`) &&",
    "Host(`a`, `b`)",
    "Host(`a`) && Pth(`/`)",
])
def test_caret_rendering(rule: str) -> None:
    error = _error(rule)
    lines = str(error).split("\n")
    assert lines[0] == f"{error.message} at column {error.column + 1}"
    assert lines[1] == f"    {rule}"
    caret = lines[2]
    assert caret.strip() == "^"
    assert caret.index("^") - 4 == error.column
    if error.fix:
        assert lines[3] == f"  fix: {error.fix}"


def test_caret_sits_under_the_offending_character() -> None:
    rule = "Host(`example.com`) && PathRegexp(`^/v[0-9]+/(users`)"
    error = _error(rule)
    rendered = str(error).split("\n")
    assert rendered[1][4:] == rule
    assert rendered[2].index("^") - 4 == rule.index("(users")
    assert rule[error.column] == "("


def test_caret_for_an_error_in_a_double_quoted_value_maps_through_escapes() -> None:
    # Column of the bad '(' accounts for the two-character escape \\ before it.
    rule = 'PathRegexp("^/a\\\\d(b")'
    error = _error(rule)
    assert rule[error.column] == "("


def test_check_rule_returns_the_error_or_none() -> None:
    assert check_rule("Host(`example.com`)") is None
    error = check_rule("Host(`example.com`) &&")
    assert isinstance(error, RuleError)
    assert error.column == 20


def test_error_message_renders_the_fix() -> None:
    text = str(_error("Path(`api`)"))
    assert "fix: write Path(`/api`)" in text


def test_syntax_errors_come_before_unknown_matchers() -> None:
    # Traefik parses the whole expression first, then resolves matcher names left to right.
    error = _error("Foo(`a`) && Bar(`b`) &&")
    assert "missing a matcher on its right" in error.message
    error = _error("Foo(`a`) && Bar(`b`)")
    assert error.column == 0


def test_parse_domains_rejects_unknown_matchers_and_bad_syntax() -> None:
    with pytest.raises(RuleError):
        parse_domains("Foobar(`foo.bar`,`test.bar`)")
    with pytest.raises(RuleError):
        parse_domains("Host(`a`) &&")
