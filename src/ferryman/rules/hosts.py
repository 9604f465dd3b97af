"""Host constraints: which canonical hosts a rule can possibly match.

The routing table indexes routes by host so that routing cost does not grow with the number of
routers. A :class:`HostConstraint` is a *necessary* condition — a request whose host it does not
allow can never match the rule — derived from the tree:

* ``Host(`a`)`` → exact ``{a}``; ``Host(`*.x.com`)`` → wildcard parent ``x.com``;
* ``A && B`` → the intersection (either side alone would also be sound);
* ``A || B`` → the union, or ``None`` (any host) as soon as one side is unconstrained;
* negated matchers, ``HostRegexp``, ``Host(`*`)`` and every non-host matcher → ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HostConstraint:
    """The rule can only match when the canonical host is in ``exact`` or is
    ``<one label>.<parent>`` for a parent in ``wildcard_parents``. Both empty: matches no host."""

    exact: frozenset[str] = frozenset()
    wildcard_parents: frozenset[str] = frozenset()

    def allows(self, host: str) -> bool:
        """Whether a request with this canonical host may match."""
        if host in self.exact:
            return True
        if self.wildcard_parents:
            _label, dot, parent = host.partition(".")
            return bool(dot) and parent in self.wildcard_parents
        return False

    def intersect(self, other: HostConstraint) -> HostConstraint:
        # A host has exactly one wildcard parent (everything after its first dot), so it satisfies
        # both wildcard sets only through a parent present in both.
        exact = {h for h in self.exact if other.allows(h)} | {h for h in other.exact if self.allows(h)}
        return HostConstraint(frozenset(exact), self.wildcard_parents & other.wildcard_parents)

    def union(self, other: HostConstraint) -> HostConstraint:
        return HostConstraint(self.exact | other.exact, self.wildcard_parents | other.wildcard_parents)

    def __repr__(self) -> str:
        parts = []
        if self.exact:
            parts.append("exact={" + ", ".join(map(repr, sorted(self.exact))) + "}")
        if self.wildcard_parents:
            parts.append("wildcard_parents={" + ", ".join(map(repr, sorted(self.wildcard_parents))) + "}")
        return f"HostConstraint({', '.join(parts) or 'nothing'})"


#: A constraint no host satisfies (a rule that can never match, such as ``Host(`*x`)``).
NO_HOST = HostConstraint()


def both(a: HostConstraint | None, b: HostConstraint | None) -> HostConstraint | None:
    """Constraint of ``A && B`` (``None`` = any host)."""
    if a is None:
        return b
    if b is None:
        return a
    return a.intersect(b)


def either(a: HostConstraint | None, b: HostConstraint | None) -> HostConstraint | None:
    """Constraint of ``A || B`` (``None`` = any host)."""
    if a is None or b is None:
        return None
    return a.union(b)
