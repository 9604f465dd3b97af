"""Go RE2 regular expressions, run by Python's :mod:`re`.

Traefik compiles ``HostRegexp``/``PathRegexp``/``HeaderRegexp``/``QueryRegexp`` values with Go's
``regexp.Compile`` (RE2 syntax, Perl flags) and matches with ``MatchString``: an unanchored search.
Python's ``re`` is close but not the same, so we translate the pattern instead of passing it through:

* constructs RE2 lacks are rejected with a clear message: backreferences, lookaround, atomic
  groups, possessive quantifiers, conditionals, comments, ``\\Z``/``\\u``/``\\N`` escapes;
* ``$`` means end of text (Python's ``$`` also matches before a final newline) → ``\\Z``,
  ``\\z`` → ``\\Z``; ``\\d``, ``\\w``, ``\\s``, ``\\b`` are ASCII-only as in Go;
* a ``{`` that does not start a valid repeat is literal (Python reads ``x{,3}`` as a repeat);
  repeat counts above 1000 are rejected as in Go;
* ``(?i)`` in the middle of a pattern applies to the rest of the enclosing group (Python only
  accepts global flags at the very start), ``(?<name>``, octal ``\\123``, ``\\x{10FFFF}``,
  ``\\Q...\\E`` and POSIX classes ``[[:alpha:]]`` are supported;
* Unicode classes ``\\pL``/``\\p{Greek}`` and the ``(?U)`` flag are not supported (rejected).

Match semantics (does the pattern match anywhere?) are then the same. One difference remains:
Python's engine backtracks, so a pathological pattern can be slow on hostile input, where RE2
is linear. Patterns come from configuration, not from requests.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

MAX_REPEAT = 1000

_WORD = frozenset(range(ord("0"), ord("9") + 1)) | frozenset(range(ord("A"), ord("Z") + 1)) | \
    frozenset(range(ord("a"), ord("z") + 1)) | {ord("_")}
_DIGIT = frozenset(range(ord("0"), ord("9") + 1))
_SPACE = frozenset(map(ord, "\t\n\f\r "))

_PERL = {"d": (_DIGIT, False), "D": (_DIGIT, True), "w": (_WORD, False), "W": (_WORD, True),
         "s": (_SPACE, False), "S": (_SPACE, True)}


def _rng(a: str, b: str) -> frozenset[int]:
    return frozenset(range(ord(a), ord(b) + 1))


_POSIX: dict[str, frozenset[int]] = {
    "alnum": _rng("0", "9") | _rng("A", "Z") | _rng("a", "z"),
    "alpha": _rng("A", "Z") | _rng("a", "z"),
    "ascii": frozenset(range(0, 0x80)),
    "blank": frozenset(map(ord, "\t ")),
    "cntrl": frozenset(range(0, 0x20)) | {0x7F},
    "digit": _DIGIT,
    "graph": _rng("!", "~"),
    "lower": _rng("a", "z"),
    "print": _rng(" ", "~"),
    "punct": _rng("!", "/") | _rng(":", "@") | _rng("[", "`") | _rng("{", "~"),
    "space": frozenset(map(ord, "\t\n\v\f\r ")),
    "upper": _rng("A", "Z"),
    "word": _WORD,
    "xdigit": _rng("0", "9") | _rng("A", "F") | _rng("a", "f"),
}

_SIMPLE = {"a": 0x07, "f": 0x0C, "t": 0x09, "n": 0x0A, "r": 0x0D, "v": 0x0B}
_HEXDIGITS = frozenset("0123456789abcdefABCDEF")
_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")


class RegexpError(ValueError):
    """A pattern Go would reject (or that we cannot run faithfully); ``pos`` indexes the pattern."""

    def __init__(self, message: str, pos: int, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.fix = fix


def _char(cp: int) -> str:
    """A Python pattern escape that stands for exactly the code point ``cp`` anywhere."""
    if cp < 0x100:
        return f"\\x{cp:02x}"
    if cp < 0x10000:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def _ranges(points: frozenset[int], negate: bool) -> list[tuple[int, int]]:
    """Sorted ranges covering ``points`` (or its complement over all code points)."""
    pts = sorted(points)
    out: list[tuple[int, int]] = []
    for p in pts:
        if out and out[-1][1] + 1 == p:
            out[-1] = (out[-1][0], p)
        else:
            out.append((p, p))
    if not negate:
        return out
    comp: list[tuple[int, int]] = []
    nxt = 0
    for lo, hi in out:
        if lo > nxt:
            comp.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= 0x10FFFF:
        comp.append((nxt, 0x10FFFF))
    return comp


def _class_body(ranges: list[tuple[int, int]]) -> str:
    return "".join(_char(lo) if lo == hi else f"{_char(lo)}-{_char(hi)}" for lo, hi in ranges)


@dataclass
class _Frame:
    flags: frozenset[str]  # active Go flags among i, m, s
    start: int  # pattern index of the '(' that opened the frame (-1 for the top level)
    implicit: list[str] = field(default_factory=list)  # Python flag groups opened by (?flags)
    atoms: int = 0  # atoms since the frame start or the last '|'


class _Translator:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.out: list[str] = []
        self.src: list[int] = []
        self.frames: list[_Frame] = [_Frame(frozenset(), -1)]
        self.last_repeatable = False  # may the next token be a repetition operator?
        self.last_was_repeat = False

    # -- output -------------------------------------------------------------------------------------
    def emit(self, text: str, pos: int) -> None:
        self.out.append(text)
        self.src.append(pos)

    def atom(self, text: str, pos: int) -> None:
        self.emit(text, pos)
        self.frames[-1].atoms += 1
        self.last_repeatable = True
        self.last_was_repeat = False

    def anchor(self, text: str, pos: int) -> None:
        # Python refuses to repeat an anchor (``^*``); Go accepts it. Wrap it so both agree.
        nxt = self.p[self.i:self.i + 1]
        if nxt and (nxt in "*+?" or self.repeat_at(self.i) is not None):
            text = f"(?:{text})"
        self.atom(text, pos)

    def error(self, message: str, pos: int, fix: str | None = None) -> RegexpError:
        return RegexpError(message, pos, fix)

    # -- driver --------------------------------------------------------------------------------------
    def run(self) -> tuple[str, list[int]]:
        p = self.p
        while self.i < len(p):
            c = p[self.i]
            pos = self.i
            if c == "\\":
                self.escape()
            elif c == "[":
                self.char_class()
            elif c == "(":
                self.group()
            elif c == ")":
                self.close_group()
            elif c == "|":
                self.i += 1
                frame = self.frames[-1]
                self.emit(")" * len(frame.implicit) + "|" + "".join(frame.implicit), pos)
                frame.atoms = 0
                self.last_repeatable = False
                self.last_was_repeat = False
            elif c in "*+?" or (c == "{" and self.repeat_at(pos) is not None):
                self.repetition()
            elif c == ".":
                self.i += 1
                self.atom(".", pos)
            elif c == "^":
                self.i += 1
                self.anchor("^", pos)
            elif c == "$":
                self.i += 1
                self.anchor("$" if "m" in self.frames[-1].flags else "\\Z", pos)
            else:
                self.i += 1
                self.atom(re.escape(c), pos)
        if len(self.frames) > 1:
            raise self.error("missing closing ')'", self.frames[-1].start, fix="add the missing ')'")
        self.emit(")" * len(self.frames[0].implicit), len(p))
        text = "".join(self.out)
        index: list[int] = []
        for piece, pos in zip(self.out, self.src, strict=True):
            index.extend([pos] * len(piece))
        index.append(len(p))
        return text, index

    # -- repetition ---------------------------------------------------------------------------------
    def repeat_at(self, pos: int) -> re.Match[str] | None:
        return _REPEAT.match(self.p, pos) if self.p.startswith("{", pos) else None

    def repetition(self) -> None:
        p, pos = self.p, self.i
        if self.last_was_repeat:
            raise self.error(f"invalid nested repetition operator {p[pos]!r}", pos,
                             fix="RE2 has no possessive or stacked quantifiers; group the expression first")
        if not self.last_repeatable:
            raise self.error(f"missing argument to repetition operator {p[pos]!r}", pos,
                             fix="escape it with a backslash to match it literally")
        if p[pos] == "{":
            m = self.repeat_at(pos)
            assert m is not None
            lo = int(m.group(1))
            hi = lo if m.group(2) is None else (int(m.group(3)) if m.group(3) else -1)
            if lo > MAX_REPEAT or hi > MAX_REPEAT or (hi != -1 and hi < lo):
                raise self.error(f"invalid repeat count {m.group(0)}", pos,
                                 fix=f"repeat counts must be at most {MAX_REPEAT} and min <= max")
            text = m.group(0)
            self.i = m.end()
        else:
            text = p[pos]
            self.i += 1
        if self.p.startswith("?", self.i):
            text += "?"
            self.i += 1
        self.emit(text, pos)
        self.last_was_repeat = True
        nxt = self.p[self.i:self.i + 1]
        if nxt and (nxt in "*+?" or self.repeat_at(self.i) is not None):
            raise self.error(f"invalid nested repetition operator {nxt!r}", self.i,
                             fix="RE2 has no possessive or stacked quantifiers; group the expression first")

    # -- groups ----------------------------------------------------------------------------------------
    def group(self) -> None:
        p, pos = self.p, self.i
        parent = self.frames[-1]
        if not p.startswith("(?", pos):
            self.i += 1
            self.open_frame("(", pos, parent.flags)
            return
        rest = p[pos + 2:]
        for prefix, what in (("=", "lookahead (?=...)"), ("!", "negative lookahead (?!...)"),
                             ("<=", "lookbehind (?<=...)"), ("<!", "negative lookbehind (?<!...)"),
                             (">", "an atomic group (?>...)"), ("#", "a comment (?#...)"),
                             ("(", "a conditional (?(...)...)"), ("P=", "a backreference (?P=name)"),
                             ("P>", "recursion (?P>name)"), ("R", "recursion (?R)"), ("|", "a branch reset (?|...)")):
            if rest.startswith(prefix):
                raise self.error(f"{what} is not supported: Go RE2 has no such construct", pos,
                                 fix="rewrite the expression without it (for example with two rules)")
        if rest.startswith("P<") or rest.startswith("<"):
            start = pos + (4 if rest.startswith("P<") else 3)
            end = p.find(">", start)
            if end < 0:
                raise self.error("invalid named capture: missing '>'", pos)
            name = p[start:end]
            if not name or not all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in name):
                raise self.error(f"invalid named capture name {name!r}", pos,
                                 fix="names may use only letters, digits and '_'")
            self.i = end + 1
            self.open_frame("(", pos, parent.flags)  # names are irrelevant for matching
            return
        # Flags: (?flags) or (?flags:...), flags among i m s U, optionally negated after '-'.
        j = pos + 2
        on: set[str] = set()
        off: set[str] = set()
        negative = False
        saw = False
        while j < len(p):
            c = p[j]
            if c in "imsU":
                if c == "U":
                    raise self.error("the (?U) ungreedy flag is not supported", j,
                                     fix="use lazy quantifiers such as *? instead")
                (off if negative else on).add(c)
                saw = True
            elif c == "-":
                if negative:
                    break
                negative = True
                saw = False
            elif c in ":)":
                if negative and not saw:
                    break
                flags = (parent.flags | on) - off
                spec = "".join(sorted(on)) + ("-" + "".join(sorted(off)) if off else "")
                self.i = j + 1
                if c == ":":
                    self.open_frame(f"(?{spec}:" if spec else "(?:", pos, flags)
                elif spec:
                    group = f"(?{spec}:"
                    parent.implicit.append(group)
                    parent.flags = flags
                    self.emit(group, pos)
                    self.last_repeatable = False
                return
            else:
                break
            j += 1
        raise self.error("invalid or unsupported Perl syntax in group", pos,
                         fix="RE2 groups are (...), (?:...), (?P<name>...), (?flags) and (?flags:...)")

    def open_frame(self, text: str, pos: int, flags: frozenset[str]) -> None:
        self.emit(text, pos)
        self.frames.append(_Frame(flags, pos))
        self.last_repeatable = False
        self.last_was_repeat = False

    def close_group(self) -> None:
        pos = self.i
        if len(self.frames) == 1:
            raise self.error("unexpected ')': no group is open", pos, fix="remove it or escape it as \\)")
        frame = self.frames.pop()
        self.i += 1
        self.emit(")" * len(frame.implicit) + ")", pos)
        self.frames[-1].atoms += 1
        self.last_repeatable = True
        self.last_was_repeat = False

    # -- escapes ------------------------------------------------------------------------------------------
    def escape(self) -> None:
        p, pos = self.p, self.i
        if pos + 1 >= len(p):
            raise self.error("trailing backslash at end of expression", pos, fix="escape it as \\\\")
        c = p[pos + 1]
        if c == "Q":
            end = p.find("\\E", pos + 2)
            literal = p[pos + 2:] if end < 0 else p[pos + 2:end]
            self.i = len(p) if end < 0 else end + 2
            if not literal:
                return
            for k, ch in enumerate(literal):
                self.atom(re.escape(ch), pos + 2 + k)
            return
        if c == "E":  # a stray \E is ignored by Go
            self.i += 2
            return
        if c in "AzbB":
            self.i += 2
            text = {"A": "\\A", "z": "\\Z", "b": "(?a:\\b)", "B": "(?a:\\B)"}[c]
            self.anchor(text, pos)
            return
        if c in _PERL:
            self.i += 2
            points, negate = _PERL[c]
            self.atom("[" + _class_body(_ranges(points, negate)) + "]", pos)
            return
        if c in "pP":
            raise self.error(f"Unicode character classes (\\{c}...) are not supported", pos,
                             fix="spell the characters out in a [...] class")
        cp = self.escaped_char(pos, in_class=False)
        self.atom(_char(cp), pos)

    def escaped_char(self, pos: int, *, in_class: bool) -> int:
        """Decode a single-character escape at ``pos`` (a backslash); advance past it."""
        p = self.p
        c = p[pos + 1]
        if c in _SIMPLE:
            self.i = pos + 2
            return _SIMPLE[c]
        if c == "0" or (c in "1234567" and p[pos + 2:pos + 3] in tuple("01234567")):
            j = pos + 2
            while j < len(p) and j < pos + 4 and p[j] in "01234567":
                j += 1
            self.i = j
            return int(p[pos + 1:j], 8)
        if c in "123456789":
            raise self.error(f"backreferences (\\{c}) are not supported: Go RE2 has no backreferences", pos,
                             fix="rewrite the expression without the backreference")
        if c == "x":
            if p.startswith("{", pos + 2):
                end = p.find("}", pos + 3)
                digits = p[pos + 3:end] if end > 0 else ""
                if end < 0 or not digits or not all(d in _HEXDIGITS for d in digits) or int(digits, 16) > 0x10FFFF:
                    raise self.error("invalid escape sequence \\x{...}", pos)
                self.i = end + 1
                return int(digits, 16)
            digits = p[pos + 2:pos + 4]
            if len(digits) != 2 or not all(d in _HEXDIGITS for d in digits):
                raise self.error("invalid escape sequence \\x: expected two hex digits", pos)
            self.i = pos + 4
            return int(digits, 16)
        if c.isascii() and not c.isalnum():
            self.i = pos + 2
            return ord(c)
        fixes = {"Z": "use \\z for the end of the text", "u": "write \\x{hhhh} for a code point",
                 "U": "write \\x{hhhhhh} for a code point", "k": "Go RE2 has no backreferences",
                 "g": "Go RE2 has no backreferences", "C": "\\C (any byte) is not supported"}
        where = " inside [...]" if in_class else ""
        raise self.error(f"invalid escape sequence \\{c}{where}", pos, fix=fixes.get(c))

    # -- character classes ------------------------------------------------------------------------------
    def char_class(self) -> None:
        p, start = self.p, self.i
        i = start + 1
        negated = p.startswith("^", i)
        if negated:
            i += 1
        parts: list[str] = []
        first = True
        while True:
            if i >= len(p):
                raise self.error("missing closing ']' of a character class", start, fix="add the missing ']'")
            c = p[i]
            if c == "]" and not first:
                i += 1
                break
            first = False
            if c == "[" and p.startswith("[:", i):
                end = p.find(":]", i + 2)
                if end >= 0:
                    name = p[i + 2:end]
                    neg = name.startswith("^")
                    points = _POSIX.get(name[1:] if neg else name)
                    if points is None:
                        raise self.error(f"invalid character class [:{name}:]", i,
                                         fix="POSIX classes are " + ", ".join(sorted(_POSIX)))
                    parts.append(_class_body(_ranges(points, neg)))
                    i = end + 2
                    continue
            if c == "\\" and p[i + 1:i + 2] in _PERL:
                points, neg = _PERL[p[i + 1]]
                parts.append(_class_body(_ranges(points, neg)))
                i += 2
                continue
            if c == "\\" and p[i + 1:i + 2] in ("p", "P"):
                raise self.error("Unicode character classes (\\p...) are not supported", i,
                                 fix="spell the characters out in the class")
            lo, i = self.class_char(i)
            if p.startswith("-", i) and i + 1 < len(p) and p[i + 1] != "]":
                hi, j = self.class_char(i + 1)
                if hi < lo:
                    raise self.error("invalid character class range", i - 1, fix="write ranges low-high")
                parts.append(f"{_char(lo)}-{_char(hi)}")
                i = j
            else:
                parts.append(_char(lo))
        self.i = i
        self.atom("[" + ("^" if negated else "") + "".join(parts) + "]", start)

    def class_char(self, i: int) -> tuple[int, int]:
        p = self.p
        if p[i] != "\\":
            return ord(p[i]), i + 1
        if i + 1 >= len(p):
            raise self.error("missing closing ']' of a character class", i)
        if p[i + 1] in _PERL or p[i + 1] in "pP":
            raise self.error("a class escape cannot be the end of a range", i)
        cp = self.escaped_char(i, in_class=True)
        return cp, self.i


def translate(pattern: str) -> tuple[str, list[int]]:
    """Translate a Go RE2 ``pattern`` to Python syntax.

    Returns the Python pattern and, for each of its characters (plus one for the end), the index of
    the pattern character it came from, so Python's error positions can be reported in Go terms.
    """
    return _Translator(pattern).run()


def compile_go(pattern: str) -> re.Pattern[str]:
    """Compile a Go RE2 pattern for unanchored search; raises :class:`RegexpError`."""
    text, index = translate(pattern)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return re.compile(text)
    except re.error as exc:
        pos = exc.pos if exc.pos is not None else 0
        raise RegexpError(exc.msg, index[min(pos, len(index) - 1)]) from None
    except (RecursionError, OverflowError, MemoryError, ValueError) as exc:
        raise RegexpError(f"expression is too complex ({exc})", 0) from None


def quote_meta(text: str) -> str:
    """Go's ``regexp.QuoteMeta``: backslash-escape ``\\.+*?()|[]{}^$``."""
    return "".join("\\" + ch if ch in "\\.+*?()|[]{}^$" else ch for ch in text)
