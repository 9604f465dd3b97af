"""The ``circuitBreaker`` expression language, as oxy's ``cbreaker`` parses it (``vulcand/predicate``
over Go's expression parser).

Grammar (Go precedence: ``||`` < ``&&`` < comparisons)::

    expr    := and ('||' and)*
    and     := cmp ('&&' cmp)*
    cmp     := operand (('==' | '!=' | '<' | '<=' | '>' | '>=') operand)*
    operand := '(' expr ')' | NAME '(' [literal (',' literal)*] ')' | literal

Typing is oxy's and is checked at build time: a comparison takes a metric on the left and a literal
on the right; ``NetworkErrorRatio()`` and ``ResponseCodeRatio(from, to, dividedByFrom, dividedByTo)``
are floats and need a float literal (``0.5``, not ``1``); ``LatencyAtQuantileMS(q)`` (``q`` a float
literal such as ``50.0``) and ``RequestThreshold()`` are integers and need an integer literal;
``&&``/``||`` join comparisons. ``!``, ``-``, arithmetic, identifiers and strings are refused like
oxy refuses them. Errors carry the column (:class:`ExpressionError`).

The result is a predicate over a :class:`Metrics`-like object, built from closures once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["ExpressionError", "Metrics", "Predicate", "parse_expression"]


class Metrics(Protocol):
    def network_error_ratio(self) -> float: ...

    def response_code_ratio(self, start_a: int, end_a: int, start_b: int, end_b: int) -> float: ...

    def latency_at_quantile_ms(self, quantile: float) -> int: ...

    def total_count(self) -> int: ...


Predicate = Callable[[Metrics], bool]


class ExpressionError(Exception):
    def __init__(self, message: str, column: int, fix: str | None = None) -> None:
        self.message = message
        self.column = column
        self.fix = fix
        super().__init__(message)


@dataclass(frozen=True)
class _Metric:
    name: str
    is_float: bool
    fn: Callable[[Metrics], float] | Callable[[Metrics], int]
    column: int
    uses_codes: bool = False
    uses_latency: bool = False


@dataclass(frozen=True)
class _Literal:
    value: int | float | str
    column: int


@dataclass(frozen=True)
class _Pred:
    fn: Predicate
    column: int
    uses_codes: bool
    uses_latency: bool


_Node = _Metric | _Literal | _Pred

_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<float>(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)
  | (?P<int>0[xXoObB][0-9a-fA-F_]+|\d[\d_]*)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|`[^`]*`)
  | (?P<op>&&|\|\||==|!=|<=|>=|[<>()!,+\-*/%^&|.\[\]])
""", re.VERBOSE)

_CMP = ("==", "!=", "<", "<=", ">", ">=")
_GO_OP_NAME = {"==": "eq", "!=": "neq", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ExpressionError(f"illegal character {text[pos]!r}", pos)
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append((kind, m.group(), pos))
        pos = m.end()
    out.append(("eof", "", len(text)))
    return out


def _go_type(node: _Node) -> str:
    if isinstance(node, _Pred):
        return "cbreaker.hpredicate"
    if isinstance(node, _Metric):
        return "cbreaker.toType[float64]" if node.is_float else "cbreaker.toType[int]"
    return {int: "int", float: "float64", str: "string"}[type(node.value)]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str, int]:
        return self.toks[self.i]

    def take(self) -> tuple[str, str, int]:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        kind, text, col = self.take()
        if text != value or kind == "string":
            raise ExpressionError(f"expected '{value}', found {text or 'end of expression'!r}", col)

    def parse(self) -> _Pred:
        if self.peek()[0] == "eof":
            raise ExpressionError("expected operand (the expression is empty)", 0,
                                  fix="write a condition such as NetworkErrorRatio() > 0.5")
        node = self.or_expr()
        kind, text, col = self.peek()
        if kind != "eof":
            raise ExpressionError(f"unexpected {text!r} after the expression", col)
        if not isinstance(node, _Pred):
            raise ExpressionError(f"expected predicate, got {_go_type(node)}", 0,
                                  fix="compare the metric with a value, e.g. NetworkErrorRatio() > 0.5")
        return node

    def _join(self, op: str, left: _Node, right: _Node, col: int) -> _Pred:
        for side in (left, right):
            if not isinstance(side, _Pred):
                raise ExpressionError(f"'{op}' needs a comparison on each side, got {_go_type(side)}", side.column,
                                      fix="compare each metric with a value, e.g. NetworkErrorRatio() > 0.5")
        assert isinstance(left, _Pred) and isinstance(right, _Pred)
        lf, rf = left.fn, right.fn
        if op == "&&":
            def fn(m: Metrics) -> bool:
                return lf(m) and rf(m)
        else:
            def fn(m: Metrics) -> bool:
                return lf(m) or rf(m)
        return _Pred(fn, left.column, left.uses_codes or right.uses_codes, left.uses_latency or right.uses_latency)

    def or_expr(self) -> _Node:
        node = self.and_expr()
        while self.peek()[1] == "||" and self.peek()[0] == "op":
            col = self.take()[2]
            node = self._join("||", node, self.and_expr(), col)
        return node

    def and_expr(self) -> _Node:
        node = self.cmp_expr()
        while self.peek()[1] == "&&" and self.peek()[0] == "op":
            col = self.take()[2]
            node = self._join("&&", node, self.cmp_expr(), col)
        return node

    def cmp_expr(self) -> _Node:
        node = self.operand()
        while self.peek()[0] == "op" and self.peek()[1] in _CMP:
            _, op, col = self.take()
            right = self.operand()
            node = self._compare(op, node, right, col)
        kind, text, col = self.peek()
        if kind == "op" and text in ("+", "-", "*", "/", "%", "^", "&", "|"):
            raise ExpressionError(f"{text} is not supported", col, fix="use only comparisons joined by && or ||")
        return node

    def _compare(self, op: str, left: _Node, right: _Node, col: int) -> _Pred:
        if not isinstance(left, _Metric):
            raise ExpressionError(f"{_GO_OP_NAME[op]}: unsupported argument: {_go_type(left)}", left.column,
                                  fix="put the metric on the left, e.g. NetworkErrorRatio() > 0.5")
        if not isinstance(right, _Literal) or isinstance(right.value, str) \
                or isinstance(right.value, float) != left.is_float:
            want = "a float literal such as 0.5" if left.is_float else "an integer literal such as 100"
            raise ExpressionError(f"{left.name}() must be compared with {want}, got {_go_type(right)}",
                                  right.column, fix=f"write {want}")
        value = right.value
        metric = left.fn
        if op == "==":
            def fn(m: Metrics) -> bool:
                return metric(m) == value
        elif op == "!=":
            def fn(m: Metrics) -> bool:
                return metric(m) != value
        elif op == "<":
            def fn(m: Metrics) -> bool:
                return metric(m) < value
        elif op == "<=":
            def fn(m: Metrics) -> bool:
                return metric(m) <= value
        elif op == ">":
            def fn(m: Metrics) -> bool:
                return metric(m) > value
        else:
            def fn(m: Metrics) -> bool:
                return metric(m) >= value
        return _Pred(fn, left.column, left.uses_codes, left.uses_latency)

    def operand(self) -> _Node:
        kind, text, col = self.take()
        if kind == "op" and text == "(":
            node = self.or_expr()
            self.expect(")")
            return node
        if kind == "float":
            return _Literal(float(text), col)
        if kind == "int":
            if not text.isdigit():
                raise ExpressionError(f"failed to parse argument: {text}", col, fix="write a decimal integer")
            return _Literal(int(text), col)
        if kind == "string":
            return _Literal(text[1:-1], col)
        if kind == "name":
            if self.peek()[1] != "(" or self.peek()[0] != "op":
                raise ExpressionError(f"{text} is not defined", col,
                                      fix="use NetworkErrorRatio(), ResponseCodeRatio(...), "
                                          "LatencyAtQuantileMS(...) or RequestThreshold()")
            self.take()
            args: list[_Literal] = []
            if self.peek()[1] != ")":
                while True:
                    arg = self.operand()
                    if not isinstance(arg, _Literal):
                        raise ExpressionError(f"{text}: arguments must be literals", arg.column)
                    args.append(arg)
                    if self.peek()[1] == ",":
                        self.take()
                        continue
                    break
            self.expect(")")
            return _call(text, args, col)
        if kind == "op" and text in ("!", "-", "+"):
            raise ExpressionError(f"{text} is not supported", col, fix="use only comparisons joined by && or ||")
        if kind == "eof":
            raise ExpressionError("expected operand, found end of expression", col)
        raise ExpressionError(f"expected operand, found {text!r}", col)


def _call(name: str, args: list[_Literal], col: int) -> _Metric:
    def need(count: int, is_float: bool, usage: str) -> None:
        if len(args) != count:
            raise ExpressionError(f"{name} takes {count} argument{'s' if count != 1 else ''}, got {len(args)}",
                                  col, fix=f"write {usage}")
        for arg in args:
            if isinstance(arg.value, str) or isinstance(arg.value, float) != is_float:
                kind = "a float literal (with a trailing .0)" if is_float else "an integer literal"
                raise ExpressionError(f"{name}: argument must be {kind}, got {type(arg.value).__name__}",
                                      arg.column, fix=f"write {usage}")

    if name == "NetworkErrorRatio":
        need(0, False, "NetworkErrorRatio()")
        return _Metric(name, True, lambda m: m.network_error_ratio(), col)
    if name == "ResponseCodeRatio":
        need(4, False, "ResponseCodeRatio(500, 600, 0, 600)")
        a, b, c, d = (int(arg.value) for arg in args)
        return _Metric(name, True, lambda m: m.response_code_ratio(a, b, c, d), col, uses_codes=True)
    if name == "LatencyAtQuantileMS":
        need(1, True, "LatencyAtQuantileMS(50.0)")
        q = float(args[0].value)
        return _Metric(name, False, lambda m: m.latency_at_quantile_ms(q), col, uses_latency=True)
    if name == "RequestThreshold":
        need(0, False, "RequestThreshold()")
        return _Metric(name, False, lambda m: m.total_count(), col)
    raise ExpressionError(f"unsupported function: {name}", col,
                          fix="use NetworkErrorRatio(), ResponseCodeRatio(...), LatencyAtQuantileMS(...) "
                              "or RequestThreshold()")


@dataclass(frozen=True)
class Parsed:
    predicate: Predicate
    #: Whether the expression reads status codes / latencies (otherwise they are not recorded).
    uses_codes: bool
    uses_latency: bool


def parse_expression(text: str) -> Parsed:
    """Parse ``text``; raises :class:`ExpressionError` with the column of the problem."""
    node = _Parser(text).parse()
    return Parsed(node.fn, node.uses_codes, node.uses_latency)
