"""The routing table of one entry point: which route serves a request.

Order is Traefik's (``pkg/muxer/http/mux.go``): priority descending, then provider precedence
(``providers.precedence``; a listed provider beats an unlisted one), then — for determinism,
where Go's unstable sort leaves it open — the route name.

Lookups must not cost more as routers are added for other hosts. Each rule states a necessary
host condition (``CompiledRule.hosts``): the request host must be one of ``exact`` or one label
under one of ``wildcard_parents``; ``None`` means any host. Routes are indexed by that condition
into three families of candidate lists, each already in routing order:

* ``exact[host]``   — routes naming that host;
* ``wild[parent]``  — routes with ``*.parent``;
* ``hostless``      — routes without a host condition (shared by every lookup).

A lookup is one dict probe (the exact host, else its parent for wildcards, else nothing) and a
walk over the candidates in routing order, calling ``rule.match`` until one matches. The
candidates of a host are the union of up to three of those lists. When the union is small it
is merged once at build time; when the lists do not interleave in routing order they are walked
one after the other (sharing the tuples); otherwise they are kept apart and merged while walking
(by each route's global rank). So build time stays linear in the number of routes even with
thousands of host-less or wildcard routes next to thousands of hosts, and nothing is copied per
host.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ferryman.rules import CompiledRule, MatchRequest

__all__ = ["RouteEntry", "RoutingTable", "build_routing_table"]

T = TypeVar("T")

#: Unions up to this size are merged at build time; larger ones are merged while walking.
PREMERGE_LIMIT = 32


@dataclass(frozen=True, slots=True)
class RouteEntry(Generic[T]):
    """One route: a compiled rule, its effective priority, its provider's precedence rank
    (lower wins a tie) and what to hand the request to."""

    name: str
    rule: CompiledRule
    priority: int
    provider_rank: int
    target: T


def _rank(item: tuple[int, object]) -> int:
    return item[0]


def _order_key(entry: RouteEntry[T]) -> tuple[int, int, str]:
    return (-entry.priority, entry.provider_rank, entry.name)


# A candidate source is either a pre-merged tuple of entries (walk it as is) or a tuple of
# ranked lists to merge lazily: ((rank, entry), ...) per list.
_Ranked = tuple[tuple[int, RouteEntry[T]], ...]


class _Lazy(Generic[T]):
    """Several ranked candidate lists walked in merged order without building the union."""

    __slots__ = ("lists",)

    def __init__(self, lists: tuple[_Ranked[T], ...]) -> None:
        self.lists = lists

    def __iter__(self) -> Iterator[RouteEntry[T]]:
        last = -1
        for rank, entry in heapq.merge(*self.lists, key=_rank):
            if rank != last:  # a route can be in two lists (Host(`a.x`) || Host(`*.x`))
                last = rank
                yield entry


class _Chain(Generic[T]):
    """Candidate lists whose ranks do not interleave, walked one after the other."""

    __slots__ = ("parts",)

    def __init__(self, parts: tuple[tuple[RouteEntry[T], ...], ...]) -> None:
        self.parts = parts

    def __iter__(self) -> Iterator[RouteEntry[T]]:
        return itertools.chain.from_iterable(self.parts)


_Candidates = tuple[RouteEntry[T], ...] | _Lazy[T] | _Chain[T]


class RoutingTable(Generic[T]):
    """Immutable once built; see the module docstring for the index."""

    __slots__ = ("_entries", "_exact", "_hostless", "_wild")

    def __init__(self, entries: tuple[RouteEntry[T], ...],
                 exact: dict[str, _Candidates[T]],
                 wild: dict[str, _Candidates[T]],
                 hostless: tuple[RouteEntry[T], ...]) -> None:
        self._entries = entries
        self._exact = exact
        self._wild = wild
        self._hostless = hostless

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> tuple[RouteEntry[T], ...]:
        """Every route, in routing order."""
        return self._entries

    def candidates(self, host: str) -> _Candidates[T]:
        """The routes that can match ``host`` (canonical), in routing order."""
        found = self._exact.get(host)
        if found is not None:
            return found
        dot = host.find(".")
        if dot >= 0:
            found = self._wild.get(host[dot + 1:])
            if found is not None:
                return found
        return self._hostless

    def match(self, req: MatchRequest) -> RouteEntry[T] | None:
        """The first route, in routing order, whose rule matches ``req``; ``None`` → 404."""
        for entry in self.candidates(req.host):
            if entry.rule.match(req):
                return entry
        return None


def build_routing_table(entries: Sequence[RouteEntry[T]]) -> RoutingTable[T]:
    """Sort the routes and build the host index (linear after the sort)."""
    ordered = tuple(sorted(entries, key=_order_key))
    hostless: list[tuple[int, RouteEntry[T]]] = []
    exact_lists: dict[str, list[tuple[int, RouteEntry[T]]]] = {}
    wild_lists: dict[str, list[tuple[int, RouteEntry[T]]]] = {}
    for rank, entry in enumerate(ordered):
        hosts = entry.rule.hosts
        if hosts is None:
            hostless.append((rank, entry))
            continue
        # An empty constraint can never match: the route stays in entries() but in no list.
        for host in hosts.exact:
            exact_lists.setdefault(host, []).append((rank, entry))
        for parent in hosts.wildcard_parents:
            wild_lists.setdefault(parent, []).append((rank, entry))

    hostless_t: _Ranked[T] = tuple(hostless)
    wild: dict[str, _Candidates[T]] = {
        parent: _union((tuple(ranked), hostless_t)) for parent, ranked in wild_lists.items()}
    wild_t = {parent: tuple(ranked) for parent, ranked in wild_lists.items()}
    exact: dict[str, _Candidates[T]] = {}
    empty: _Ranked[T] = ()
    for host, ranked in exact_lists.items():
        dot = host.find(".")
        parent_routes = wild_t.get(host[dot + 1:], empty) if dot >= 0 else empty
        exact[host] = _union((tuple(ranked), parent_routes, hostless_t))
    return RoutingTable(ordered, exact, wild, tuple(entry for _, entry in hostless))


def _union(lists: tuple[_Ranked[T], ...]) -> _Candidates[T]:
    present = tuple(lst for lst in lists if lst)
    if not present:
        return ()
    if len(present) == 1:
        return tuple(entry for _, entry in present[0])
    if sum(len(lst) for lst in present) <= PREMERGE_LIMIT:
        merged = dict(heapq.merge(*present, key=_rank))  # rank -> entry; drops a route listed twice
        return tuple(merged[rank] for rank in sorted(merged))
    by_start = sorted(present, key=lambda lst: lst[0][0])
    if all(a[-1][0] < b[0][0] for a, b in itertools.pairwise(by_start)):
        # The lists do not interleave (e.g. every Host route outranks every host-less one):
        # walk them one after the other, sharing the tuples.
        return _Chain(tuple(tuple(entry for _, entry in lst) for lst in by_start))
    return _Lazy(present)
