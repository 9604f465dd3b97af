"""Rule text → :mod:`ferryman.rules.tree`, with errors that point at a column.

Traefik hands the rule to Go's expression parser (``go/parser.ParseExpr`` through
``vulcand/predicate``), so the accepted language is a small slice of Go:

* matcher calls ``Name(arg, ...)`` whose arguments are Go string literals — raw strings in
  backticks (no escapes, carriage returns dropped) or interpreted strings in double quotes
  (Go escapes); a trailing comma before ``)`` is allowed;
* ``!``, ``&&`` (binds tighter), ``||`` and parentheses;
* spaces, tabs, carriage returns and newlines between tokens — but Go inserts a semicolon at a
  newline that follows ``)``, a string or a name, so ``Host(`a`)⏎&& Path(`/`)`` is an error
  (the ``&&`` must end the line instead). We reproduce that, with a message saying so.

The parser knows nothing about which matchers exist; :func:`parse` returns calls with the name
as written and the compiler resolves them, so syntax errors are reported before unknown names,
in the same order as Traefik.
"""

from __future__ import annotations

from dataclasses import dataclass

from ferryman.errors import RuleError

from .tree import And, Arg, Call, Node, Or, negate

#: Deepest nesting of ``(`` and ``!`` we accept; keeps recursion and generated code bounded.
MAX_DEPTH = 100

_WS = " \t\r"
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"'}
_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # name | string | ( | ) | , | && | || | ! | nl | eof
    col: int
    text: str = ""
    arg: Arg | None = None


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.last = ""  # kind of the previous token, for Go's semicolon insertion
        self.peeked: _Tok | None = None

    # -- errors ---------------------------------------------------------------------------------
    def fail(self, message: str, column: int, fix: str | None = None) -> RuleError:
        return RuleError(message, rule=self.text, column=max(0, min(column, len(self.text))), fix=fix)

    # -- scanner ----------------------------------------------------------------------------------
    def skip_space(self) -> int | None:
        """Skip blanks and Go comments; return the column of a newline that Go would turn into a
        semicolon (a newline, or a ``/* */`` comment spanning lines, after a name, string or ')')."""
        text, n = self.text, len(self.text)
        while self.pos < n:
            ch = text[self.pos]
            if ch in _WS:
                self.pos += 1
            elif ch == "\n":
                if self.last in ("name", "string", ")"):
                    return self.pos
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.fail("comment not terminated: '/*' has no matching '*/'", self.pos)
                if "\n" in text[self.pos:end] and self.last in ("name", "string", ")"):
                    return end + 1  # the comment acts as a newline; scanning resumes after it
                self.pos = end + 2
            else:
                break
        return None

    def peek(self) -> _Tok:
        if self.peeked is None:
            self.peeked = self.scan()
        return self.peeked

    def next(self) -> _Tok:
        tok = self.peek()
        self.peeked = None
        self.last = tok.kind
        return tok

    def scan(self) -> _Tok:
        nl = self.skip_space()
        if nl is not None:
            self.pos = nl + 1
            return _Tok("nl", nl)
        text, pos = self.text, self.pos
        if pos >= len(text):
            return _Tok("eof", pos)
        ch = text[pos]
        two = text[pos:pos + 2]
        if two == "&&" or two == "||":
            self.pos += 2
            return _Tok(two, pos)
        if ch in "(),":
            self.pos += 1
            return _Tok(ch, pos)
        if ch == "!":
            if two == "!=":
                raise self.fail("'!=' is not supported in rules", pos,
                                fix="negate a matcher instead, e.g. !Host(`example.com`)")
            self.pos += 1
            return _Tok("!", pos)
        if ch == "`" or ch == '"':
            arg = self.string(pos)
            return _Tok("string", pos, arg=arg)
        if ch == "'":
            raise self.single_quote(pos)
        if ch.isalpha() or ch == "_":
            end = pos + 1
            while end < len(text) and (text[end].isalnum() or text[end] == "_"):
                end += 1
            self.pos = end
            return _Tok("name", pos, text[pos:end])
        if ch == "&":
            raise self.fail("single '&' is not an operator", pos, fix="write && for AND")
        if ch == "|":
            raise self.fail("single '|' is not an operator", pos, fix="write || for OR")
        if ch in "=<>":
            op = two if two in ("==", "<=", ">=") else ch
            raise self.fail(f"operator {op!r} is not supported in rules", pos,
                            fix="combine matchers with &&, || and !")
        if ch.isdigit() or ch in ".-/*:[]{}@":
            raise self.fail(f"unexpected {ch!r}: values must be quoted arguments of a matcher", pos,
                            fix="quote values in backticks, e.g. Host(`example.com`)")
        raise self.fail(f"unexpected character {ch!r}", pos)

    def single_quote(self, pos: int) -> RuleError:
        end = self.text.find("'", pos + 1)
        inner = (self.text[pos + 1:end] if end > 0 else self.text[pos + 1:]).split("\n", 1)[0]
        return self.fail("single quotes are not allowed around values", pos,
                         fix=f"use backticks or double quotes: `{inner}`")

    # -- string literals ------------------------------------------------------------------------------
    def string(self, start: int) -> Arg:
        text = self.text
        if text[start] == "`":
            end = text.find("`", start + 1)
            if end < 0:
                raise self.fail("unterminated `...` value: the closing backtick is missing", start,
                                fix="add the closing backtick")
            chars: list[str] = []
            offsets: list[int] = []
            for i in range(start + 1, end):
                if text[i] != "\r":  # Go drops carriage returns from raw strings
                    chars.append(text[i])
                    offsets.append(i)
            self.pos = end + 1
            return Arg("".join(chars), start, end, tuple(offsets))
        return self.interpreted(start)

    def interpreted(self, start: int) -> Arg:
        text, n = self.text, len(self.text)
        buf = bytearray()
        cols: list[int] = []  # column of each byte in ``buf``
        i = start + 1
        while True:
            if i >= n:
                raise self.fail('unterminated "..." value: the closing double quote is missing', start,
                                fix='add the closing "')
            ch = text[i]
            if ch == '"':
                break
            if ch == "\n":
                raise self.fail("newline inside a double-quoted value", start,
                                fix="use backticks for values that span lines")
            if ch != "\\":
                b = ch.encode("utf-8", "surrogatepass")
                buf += b
                cols.extend([i] * len(b))
                i += 1
                continue
            esc = text[i + 1:i + 2]
            if esc in _SIMPLE_ESCAPES:
                buf += _SIMPLE_ESCAPES[esc].encode()
                cols.append(i)
                i += 2
            elif esc in ("x", "u", "U"):
                width = {"x": 2, "u": 4, "U": 8}[esc]
                digits = text[i + 2:i + 2 + width]
                if len(digits) != width or not all(c in _HEX for c in digits):
                    raise self.fail(f"invalid \\{esc} escape: expected {width} hex digits", i,
                                    fix="use backticks to write the value literally")
                value = int(digits, 16)
                if esc == "x":
                    buf.append(value)
                    cols.append(i)
                else:
                    if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
                        raise self.fail(f"escape \\{esc}{digits} is not a valid Unicode code point", i)
                    b = chr(value).encode("utf-8")
                    buf += b
                    cols.extend([i] * len(b))
                i += 2 + width
            elif esc and esc in "01234567":
                digits = text[i + 1:i + 4]
                if len(digits) != 3 or not all(c in "01234567" for c in digits):
                    raise self.fail("invalid octal escape: expected 3 octal digits", i,
                                    fix="use backticks to write the value literally")
                value = int(digits, 8)
                if value > 255:
                    raise self.fail(f"octal escape \\{digits} is greater than 255", i)
                buf.append(value)
                cols.append(i)
                i += 4
            elif esc == "\n" or not esc:
                raise self.fail('unterminated "..." value: the closing double quote is missing', start,
                                fix='add the closing "')
            else:
                hint = ("use backticks for regular expressions, e.g. PathRegexp(`^/api\\.v1`), "
                        "or double the backslash")
                raise self.fail(f"unknown escape sequence \\{esc} in a double-quoted value", i, fix=hint)
        self.pos = i + 1
        try:
            decoded = buf.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail("escape sequences in this value do not form valid UTF-8", cols[exc.start]) from None
        offsets: list[int] = []
        at = 0
        for ch in decoded:
            offsets.append(cols[at])
            at += len(ch.encode("utf-8"))
        return Arg(decoded, start, i, tuple(offsets))

    # -- grammar -----------------------------------------------------------------------------------------
    def parse(self) -> Node:
        if not self.text.strip(" \t\r\n"):
            raise self.fail("empty rule", 0, fix="write a rule such as Host(`example.com`)")
        node = self.or_expr(0)
        tok = self.next()
        if tok.kind == "nl":
            after = self.next()
            if after.kind == "eof":
                return node
            raise self.line_break(tok, after)
        if tok.kind == "eof":
            return node
        raise self.trailing(tok)

    def line_break(self, nl: _Tok, after: _Tok) -> RuleError:
        return self.fail("a line break here ends the rule (Traefik parses rules as Go expressions)", after.col,
                         fix="put && or || at the end of the previous line, not at the start of the next")

    def trailing(self, tok: _Tok) -> RuleError:
        if tok.kind == ")":
            return self.fail("unbalanced parentheses: this ')' has no matching '('", tok.col,
                             fix="remove it or add the missing '('")
        if tok.kind == "name" and tok.text.lower() in ("and", "or", "not"):
            symbol = {"and": "&&", "or": "||", "not": "!"}[tok.text.lower()]
            return self.fail(f"'{tok.text}' is not an operator", tok.col, fix=f"write {symbol}")
        if tok.kind in ("name", "string", "(", "!"):
            return self.fail("missing operator between matchers", tok.col,
                             fix="join matchers with && (and) or || (or)")
        return self.fail(f"unexpected {tok.kind!r}", tok.col)

    def or_expr(self, depth: int) -> Node:
        left = self.and_expr(depth)
        while self.peek().kind == "||":
            op = self.next()
            self.operand_follows(op)
            left = Or(left, self.and_expr(depth))
        return left

    def and_expr(self, depth: int) -> Node:
        left = self.unary(depth)
        while self.peek().kind == "&&":
            op = self.next()
            self.operand_follows(op)
            left = And(left, self.unary(depth))
        return left

    def operand_follows(self, op: _Tok) -> None:
        nxt = self.peek()
        if nxt.kind in ("eof", ")", "||", "&&", ","):
            raise self.fail(f"'{op.kind}' is missing a matcher on its right", op.col,
                            fix=f"add a matcher after '{op.kind}' or remove the operator")

    def unary(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise self.fail(f"rule is nested too deeply (more than {MAX_DEPTH} levels)", self.peek().col)
        tok = self.peek()
        kind = tok.kind
        if kind == "!":
            self.next()
            if self.peek().kind in ("eof", ")", "&&", "||", ","):
                raise self.fail("'!' must be followed by a matcher or a parenthesized expression", tok.col,
                                fix="write e.g. !Host(`example.com`) or !(Host(`a`) || Host(`b`))")
            return negate(self.unary(depth + 1))
        if kind == "(":
            self.next()
            if self.peek().kind == ")":
                raise self.fail("empty parentheses", tok.col, fix="put a matcher inside, or remove them")
            inner = self.or_expr(depth + 1)
            close = self.next()
            if close.kind == ")":
                return inner
            if close.kind == "eof":
                raise self.fail("unbalanced parentheses: this '(' is never closed", tok.col,
                                fix="add the missing ')'")
            if close.kind == "nl":
                raise self.line_break(close, self.next())
            raise self.trailing(close)
        if kind == "name":
            return self.call()
        if kind in ("&&", "||"):
            raise self.fail(f"'{kind}' is missing a matcher on its left", tok.col,
                            fix=f"add a matcher before '{kind}' or remove the operator")
        if kind == ")":
            raise self.fail("unbalanced parentheses: this ')' has no matching '('", tok.col,
                            fix="remove it or add the missing '('")
        if kind == "eof":
            raise self.fail("the rule ends where a matcher was expected", tok.col)
        if kind == "string":
            raise self.fail("a quoted value must be the argument of a matcher", tok.col,
                            fix="write e.g. Host(`example.com`)")
        if kind == "nl":
            raise self.line_break(tok, self.next())
        raise self.fail(f"unexpected {kind!r}", tok.col)

    def call(self) -> Call:
        name = self.next()
        lower = name.text.lower()
        nxt = self.peek()
        if nxt.kind != "(":
            if lower in ("and", "or", "not"):
                symbol = {"and": "&&", "or": "||", "not": "!"}[lower]
                raise self.fail(f"'{name.text}' is not an operator", name.col, fix=f"write {symbol}")
            if nxt.kind == "nl":
                raise self.fail("a line break here ends the rule (Traefik parses rules as Go expressions)",
                                nxt.col, fix=f"write {name.text}(...) on one line")
            raise self.fail(f"expected a matcher call, found a bare name {name.text!r}", name.col,
                            fix="matchers take their values in parentheses, e.g. Host(`example.com`)")
        lparen = self.next()
        args: list[Arg] = []
        while True:
            # Where an argument (or the closing parenthesis) may start: look at the raw text so that
            # an unquoted value gets a precise message instead of a tokenizer error.
            self.skip_space()  # no newline token can arise right after '(' or ','
            pos = self.pos
            ch = self.text[pos:pos + 1]
            if ch == ")":
                self.next()
                return Call(name.text, name.col, tuple(args), pos)
            if ch in ("`", '"'):
                tok = self.next()
                assert tok.arg is not None
                args.append(tok.arg)
            elif ch == "'":
                raise self.single_quote(pos)
            elif ch == "":
                raise self.fail("unbalanced parentheses: this '(' is never closed", lparen.col,
                                fix="add the missing ')'")
            elif ch == ",":
                raise self.fail("missing value before ','", pos, fix="remove the extra ',' or add a quoted value")
            else:
                raise self.unquoted(name.text, pos, first=not args)
            sep = self.next()
            if sep.kind == ",":
                continue
            if sep.kind == ")":
                return Call(name.text, name.col, tuple(args), sep.col)
            if sep.kind == "eof":
                raise self.fail("unbalanced parentheses: this '(' is never closed", lparen.col,
                                fix="add the missing ')'")
            if sep.kind == "nl":
                raise self.fail("a line break after a value ends the rule (Go syntax)", sep.col,
                                fix="add ',' after the value or put ')' on the same line")
            if sep.kind == "string":
                raise self.fail("missing ',' between values", sep.col, fix="separate values with ','")
            raise self.fail(f"expected ',' or ')' after the value of {name.text}", sep.col)

    def unquoted(self, name: str, pos: int, *, first: bool) -> RuleError:
        text = self.text
        end = pos
        while end < len(text) and text[end] not in ",)\n":
            end += 1
        raw = text[pos:end].strip()
        fix = f"write {name}(`{raw}`)" if first else f"quote it in backticks: `{raw}`"
        return self.fail(f"values of {name} must be quoted", pos, fix=fix)


def parse(text: str) -> Node:
    """Parse ``text`` into a tree whose calls still carry their names as written.

    Raises :class:`~ferryman.errors.RuleError` with the column of the problem.
    """
    return _Parser(text).parse()
