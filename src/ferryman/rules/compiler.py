"""``compile_rule``: rule text → :class:`CompiledRule` with one generated ``match`` function."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import cast

from ferryman.errors import RuleError

from . import matchers
from .hosts import HostConstraint, both, either
from .matchers import Context, Leaf, Spec
from .parser import parse
from .request import MatchRequest
from .tree import And, Call, Node, calls, flatten, rebuild, render

SYNTAXES = ("v3", "v2")

_SPECS: dict[str, dict[str, Spec]] = {"v3": matchers.V3, "v2": matchers.V2}
_SPELLINGS: dict[str, dict[str, str]] = {s: matchers.spellings(specs) for s, specs in _SPECS.items()}
#: ParseDomains accepts the matchers of both syntaxes.
_ALL_SPELLINGS: dict[str, str] = {**_SPELLINGS["v2"], **_SPELLINGS["v3"]}


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A router rule ready to match requests. Immutable; compare and hash by text and syntax.

    ``match(req)`` is a generated function (a plain attribute, so calling it costs one call).
    """

    text: str
    syntax: str
    priority: int
    hosts: HostConstraint | None
    match: Callable[[MatchRequest], bool] = field(repr=False, compare=False)
    tree: Node = field(repr=False, compare=False)
    source: str = field(repr=False, compare=False)  # the generated Python, for debugging
    _domains: tuple[str, ...] = field(repr=False, compare=False, default=())

    def domains(self) -> list[str]:
        """The ``Host`` values of the rule, lower-cased, in order — Traefik's ``ParseDomains``
        (used for TLS certificates and ACME). Like Traefik, negated ``Host`` values are included."""
        return list(self._domains)

    def describe(self) -> str:
        """The parsed rule, with canonical matcher names and negation pushed to the matchers."""
        return render(self.tree)

    def __reduce__(self) -> tuple[Callable[[str, str], CompiledRule], tuple[str, str]]:
        # The generated function does not pickle; the rule text is all a worker needs to rebuild it.
        return _compile, (self.text, self.syntax)

    def __repr__(self) -> str:
        hosts = "any" if self.hosts is None else repr(self.hosts)
        return (f"CompiledRule({self.text!r}, syntax={self.syntax!r}, priority={self.priority}, "
                f"hosts={hosts}, parsed={self.describe()!r})")


def resolve_syntax(syntax: str) -> str:
    """``v2`` selects the deprecated syntax; like Traefik, anything else (``v3``, ``""``,
    ``default``, unknown values) means v3."""
    return "v2" if syntax == "v2" else "v3"


def compile_rule(rule: str, *, syntax: str = "v3") -> CompiledRule:
    """Compile a router rule. Raises :class:`~ferryman.errors.RuleError` pointing at the column.

    Results are memoized (rules are re-compiled on every configuration reload and
    :class:`CompiledRule` is immutable).
    """
    return _compile(rule, resolve_syntax(syntax))


def check_rule(rule: str, *, syntax: str = "v3") -> RuleError | None:
    """The error :func:`compile_rule` would raise, or ``None`` when the rule is valid."""
    try:
        compile_rule(rule, syntax=syntax)
    except RuleError as exc:
        return exc
    return None


def parse_domains(rule: str) -> list[str]:
    """Traefik's ``ParseDomains``: the lower-cased ``Host`` values of a rule, for certificates.

    Only the syntax is checked (matchers of both v2 and v3 are known); values are not validated,
    so ``Host() && Path(`/x`)`` gives ``[]``. Raises :class:`~ferryman.errors.RuleError` for an
    unparsable rule or an unknown matcher.
    """
    out: list[str] = []
    for call in calls(_parse_resolved(rule, _ALL_SPELLINGS, "v3")):
        if call.name == "Host":
            out.extend(a.value.lower() for a in call.args)
    return out


def parse_rule(rule: str, matchers: Collection[str]) -> Node:
    """Parse ``rule`` against a set of matcher names, without validating values.

    Names are accepted in the four spellings Traefik registers (``PathPrefix``, ``pathprefix``,
    ``PATHPREFIX``, ``Pathprefix``) and come back canonical in ``Call.name``; negation is pushed
    down to the calls. This is the generic layer (Traefik's ``pkg/rules``), reusable for other
    rule languages such as TCP's. Raises :class:`~ferryman.errors.RuleError`.
    """
    spellings: dict[str, str] = {}
    for name in matchers:
        lower = name.lower()
        for form in (name, lower, name.upper(), lower[:1].upper() + lower[1:]):
            spellings.setdefault(form, name)
    return _parse_resolved(rule, spellings, None)


def _parse_resolved(rule: str, spellings: dict[str, str], syntax: str | None) -> Node:
    tree = parse(rule)
    resolved = {id(call): replace(call, name=_resolve_name(rule, call, spellings, syntax))
                for call in calls(tree)}
    return rebuild(tree, lambda call: resolved[id(call)])


@lru_cache(maxsize=65536)
def _compile(rule: str, syntax: str) -> CompiledRule:
    tree = _parse_resolved(rule, _SPELLINGS[syntax], syntax)
    specs = _SPECS[syntax]
    ctx = Context(rule)
    leaves: dict[int, Leaf] = {}  # by id() of the call
    domains: list[str] = []
    for call in calls(tree):
        spec = specs[call.name]
        matchers.check_call(ctx, spec, call)
        leaves[id(call)] = spec.build(call, ctx)
        if call.name == "Host":
            domains.extend(a.value.lower() for a in call.args)
    expr, _cost = _generate(tree, leaves)
    source = f"def _match(req):\n    return {expr}\n"
    namespace = dict(ctx.namespace)
    exec(compile(source, f"<rule {rule[:80]!r}>", "exec"), namespace)
    match = cast(Callable[[MatchRequest], bool], namespace["_match"])
    return CompiledRule(text=rule, syntax=syntax, priority=len(rule.encode("utf-8", "surrogatepass")),
                        hosts=_hosts(tree, leaves), match=match, tree=tree, source=source,
                        _domains=tuple(domains))


def _resolve_name(rule: str, call: Call, spellings: dict[str, str], syntax: str | None) -> str:
    name = spellings.get(call.written)
    if name is not None:
        return name
    known = sorted(set(spellings.values()))
    message = f"unknown matcher {call.written!r} (known matchers: {', '.join(known)})"
    fix: str | None = None
    canonical = {k.lower(): v for k, v in spellings.items()}.get(call.written.lower())
    other = {"v3": "v2", "v2": "v3"}.get(syntax or "")
    other_name = {k.lower(): v for k, v in _SPELLINGS[other].items()}.get(call.written.lower()) if other else None
    if canonical is not None:
        message = f"matcher {call.written!r} is not written in an accepted case"
        fix = f"write {canonical}, {canonical.lower()} or {canonical.upper()}"
    elif other_name is not None:
        message = f"{other_name} is a ruleSyntax {other} matcher, not available in {syntax}"
        fix = {"Headers": "in v3 write Header(`name`, `value`)",
               "HeadersRegexp": "in v3 write HeaderRegexp(`name`, `regexp`)",
               "HostHeader": "in v3 write Host(`example.com`)"}.get(other_name, f"set ruleSyntax: {other}")
    else:
        close = difflib.get_close_matches(call.written.lower(), [k.lower() for k in known], n=1, cutoff=0.6)
        if close:
            fix = f"did you mean {next(k for k in known if k.lower() == close[0])}?"
    raise RuleError(message, rule=rule, column=call.column, fix=fix)


def _generate(node: Node, leaves: dict[int, Leaf]) -> tuple[str, int]:
    """A Python expression for ``node`` and its cost. Chains of one operator become one n-ary
    ``and``/``or`` whose operands are ordered cheapest first (all matchers are pure)."""
    if isinstance(node, Call):
        leaf = leaves[id(node)]
        return (f"(not {leaf.expr})" if node.negated else leaf.expr), leaf.cost
    parts = sorted((_generate(child, leaves) for child in flatten(node)), key=lambda p: p[1])
    op = " and " if isinstance(node, And) else " or "
    return "(" + op.join(p[0] for p in parts) + ")", sum(p[1] for p in parts)


def _hosts(node: Node, leaves: dict[int, Leaf]) -> HostConstraint | None:
    if isinstance(node, Call):
        return None if node.negated else leaves[id(node)].hosts
    combine = both if isinstance(node, And) else either
    result: HostConstraint | None = None
    for i, child in enumerate(flatten(node)):
        constraint = _hosts(child, leaves)
        result = constraint if i == 0 else combine(result, constraint)
    return result
