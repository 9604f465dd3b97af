"""The parsed form of a rule: matcher calls joined by ``and`` / ``or``, negation pushed to the leaves.

Traefik parses a rule as a Go expression and applies ``!`` by De Morgan's laws, so the tree it
evaluates only has negation on matcher calls (``pkg/rules/parser.go``). We keep the same shape:
it makes host analysis simple (a negated leaf never constrains the host) and mirrors
``grammar_cases`` in the conformance data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class Arg:
    """One decoded string argument and where it came from in the rule text."""

    value: str
    column: int  # column of the opening quote
    end: int  # column of the closing quote
    offsets: tuple[int, ...]  # column of each decoded character (escapes map to their backslash)

    def column_of(self, index: int) -> int:
        """Column in the rule of ``value[index]`` (the closing quote when past the end)."""
        if 0 <= index < len(self.offsets):
            return self.offsets[index]
        return self.end


@dataclass(frozen=True, slots=True)
class Call:
    """A matcher call such as ``Host(`example.com`)``."""

    written: str  # the name as written in the rule (``pathprefix``)
    column: int  # column of the name
    args: tuple[Arg, ...]
    close: int  # column of the closing parenthesis
    negated: bool = False
    name: str = ""  # canonical matcher name once resolved (``PathPrefix``)

    def values(self) -> tuple[str, ...]:
        return tuple(a.value for a in self.args)


@dataclass(frozen=True, slots=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Or:
    left: Node
    right: Node


Node: TypeAlias = Call | And | Or


def negate(node: Node) -> Node:
    """``!node`` with the negation pushed down to the calls (De Morgan)."""
    return rebuild(node, lambda call: replace(call, negated=not call.negated), swap=True)


def rebuild(node: Node, leaf: Callable[[Call], Call], *, swap: bool = False) -> Node:
    """A copy of ``node`` with every call replaced by ``leaf(call)``, and ``&&``/``||`` exchanged
    when ``swap``. Iterative: a rule can be a chain of thousands of operands."""
    stack: list[tuple[Node, bool]] = [(node, False)]
    done: list[Node] = []
    while stack:
        current, expanded = stack.pop()
        if isinstance(current, Call):
            done.append(leaf(current))
        elif not expanded:
            stack.append((current, True))
            stack.append((current.right, False))
            stack.append((current.left, False))
        else:
            right = done.pop()
            left = done.pop()
            is_and = isinstance(current, And) != swap
            done.append(And(left, right) if is_and else Or(left, right))
    return done[0]


def calls(node: Node) -> list[Call]:
    """The matcher calls of ``node``, left to right (iterative: trees can be long chains)."""
    out: list[Call] = []
    stack: list[Node] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Call):
            out.append(n)
        else:
            stack.append(n.right)
            stack.append(n.left)
    return out


def flatten(node: And | Or) -> list[Node]:
    """The operands of a chain of the same operator: ``a && b && c`` → ``[a, b, c]``."""
    kind = type(node)
    out: list[Node] = []
    stack: list[Node] = [node]
    while stack:
        n = stack.pop()
        if type(n) is kind:
            assert isinstance(n, And | Or)
            stack.append(n.right)
            stack.append(n.left)
        else:
            out.append(n)
    return out


def render(node: Node) -> str:
    """A compact, unambiguous rendering of the tree (used by ``CompiledRule.__repr__`` and tests)."""
    if isinstance(node, Call):
        args = ", ".join(_quote(a.value) for a in node.args)
        text = f"{node.name or node.written}({args})"
        return f"!{text}" if node.negated else text
    op = " && " if isinstance(node, And) else " || "
    parts = []
    for child in flatten(node):
        inner = render(child)
        parts.append(f"({inner})" if not isinstance(child, Call) else inner)
    return op.join(parts)


def _quote(value: str) -> str:
    if "`" not in value and "\r" not in value:
        return f"`{value}`"
    out = ['"']
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)
