"""Go RE2 patterns run through Python's re: same matches, Go's errors."""

from __future__ import annotations

import pytest

from ferryman.rules import RegexpError, compile_go
from ferryman.rules.re2 import quote_meta, translate


@pytest.mark.parametrize(("pattern", "text", "expected"), [
    # unanchored search
    ("example", "www.example.com", True),
    ("^example", "www.example.com", False),
    # `$` is the end of the text (Python's `$` also matches before a final newline)
    ("^a$", "a\n", False),
    ("(?m)^b$", "a\nb\nc", True),
    ("a\\z", "a", True),
    # `{` that is not a repeat is literal; `{,n}` is not a repeat in Go
    ("{domain:[a-z]+}", "{domain:abc}", True),
    ("x{,3}", "x{,3}", True),
    ("x{,3}", "xx", False),
    ("^x{2,3}$", "xxx", True),
    ("^x{2}$", "xxx", False),
    # flags in the middle apply to the rest of the group, across alternatives
    ("a(?i)b|c", "aB", True),
    ("a(?i)b|c", "C", True),
    ("a(?i)b|c", "A", False),
    ("(a(?i)b)c", "aBc", True),
    ("(a(?i)b)c", "aBC", False),
    ("(?i:A)b", "aB", False),
    ("(?s).", "\n", True),
    (".", "\n", False),
    ("(?i-s:a.)", "A\n", False),
    # ASCII-only perl classes and word boundaries
    ("^\\d+$", "٣", False),
    ("^\\d+$", "123", True),
    ("^\\w+$", "é", False),
    ("^\\s$", "\v", False),
    ("^[\\D]$", "٣", True),
    ("\\bfoo\\b", "éfooé", True),
    ("\\Bfoo", "afoo", True),
    # POSIX classes, escapes, quoting
    ("^[[:alpha:]]+$", "abcXYZ", True),
    ("^[[:^digit:]]+$", "ab", True),
    ("^[[:^digit:]]+$", "a1", False),
    ("\\x{41}\\x42\\101\\0", "ABA\x00", True),
    ("\\Qa.b*\\E", "a.b*", True),
    ("\\Qa.b*\\E", "aab", False),
    ("\\Qtail", "tail", True),
    ("^[]a]+$", "]a", True),
    ("^[^]a]$", "b", True),
    ("^[a-]+$", "a-", True),
    ("^[\\d-z]+$", "1-z", True),
    ("\\.\\-\\/", ".-/", True),
    # named groups (names are irrelevant for matching; duplicates are fine)
    ("(?P<x>a)(?<x>b)", "ab", True),
    # repeating an anchor is accepted as in Go
    ("^*a", "a", True),
    ("a(b)*?c", "ac", True),
])
def test_matches_like_go(pattern: str, text: str, expected: bool) -> None:
    assert (compile_go(pattern).search(text) is not None) is expected


@pytest.mark.parametrize(("pattern", "pos", "message"), [
    ("(a)\\1", 3, "backreferences"),
    ("\\8", 0, "backreferences"),
    ("(?P=x)", 0, "backreference"),
    ("(?=a)", 0, "lookahead"),
    ("(?!a)", 0, "negative lookahead"),
    ("x(?<=a)", 1, "lookbehind"),
    ("(?<!a)", 0, "negative lookbehind"),
    ("(?>a)", 0, "atomic group"),
    ("(?#c)", 0, "comment"),
    ("(?(1)a|b)", 0, "conditional"),
    ("a*+", 2, "nested repetition"),
    ("a**", 2, "nested repetition"),
    ("a{2}{3}", 4, "nested repetition"),
    ("a*??", 3, "nested repetition"),
    ("*a", 0, "missing argument"),
    ("a|*", 2, "missing argument"),
    ("a{1001}", 1, "invalid repeat count"),
    ("a{3,2}", 1, "invalid repeat count"),
    ("(a", 0, "missing closing ')'"),
    ("a)", 1, "unexpected ')'"),
    ("[a", 0, "missing closing ']'"),
    ("[z-a]", 1, "invalid character class range"),
    ("[[:foo:]]", 1, "invalid character class"),
    ("\\pL", 0, "Unicode character classes"),
    ("[\\p{Greek}]", 1, "Unicode character classes"),
    ("\\Z", 0, "invalid escape sequence \\Z"),
    ("\\u0041", 0, "invalid escape sequence \\u"),
    ("\\N{DASH}", 0, "invalid escape"),
    ("\\e", 0, "invalid escape"),
    ("\\C", 0, "invalid escape"),
    ("a\\", 1, "trailing backslash"),
    ("(?U)a", 2, "ungreedy"),
    ("(?x)a", 0, "invalid or unsupported Perl syntax"),
    ("(?-)a", 0, "invalid or unsupported Perl syntax"),
    ("(?P<a-b>x)", 0, "invalid named capture"),
    ("\\x{110000}", 0, "invalid escape"),
    ("\\xZ1", 0, "invalid escape"),
])
def test_rejects_like_go(pattern: str, pos: int, message: str) -> None:
    with pytest.raises(RegexpError) as info:
        compile_go(pattern)
    assert message in info.value.message
    assert info.value.pos == pos


def test_empty_flag_group_is_a_no_op() -> None:
    assert compile_go("(?)a").search("a")


def test_translation_keeps_a_position_map() -> None:
    text, index = translate("a$")
    assert text == "a\\Z"
    assert len(index) == len(text) + 1
    assert index[text.index("\\Z")] == 1


def test_quote_meta() -> None:
    assert quote_meta("a.b*c{1}") == "a\\.b\\*c\\{1\\}"
    assert compile_go("^" + quote_meta("(x)[y]") + "$").search("(x)[y]")
