"""Weighted round robin with Earliest Deadline First, as Traefik's ``wrr.Balancer``.

Each child has a deadline, initially ``1/weight``; a pick takes the child with the earliest deadline
and pushes its deadline by ``1/weight``, so weights interleave smoothly (3:1 gives a a b a a a b a,
never a a a b in bursts). Ties go to the child that has waited longest (insertion order first).
Children with a non-positive weight are ignored (Traefik); no children answers
``503 no available server``.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Final

from ferryman.http.exchange import Exchange, Handler

__all__ = ["NO_SERVER_BODY", "WeightedRoundRobin"]

NO_SERVER_BODY: Final = b"no available server\n"
_NOSNIFF: Final = ((b"X-Content-Type-Options", b"nosniff"),)


class WeightedRoundRobin:
    """A :class:`~ferryman.http.exchange.Handler` picking one child per exchange."""

    __slots__ = ("_heap", "_inv", "_seq", "_single", "children", "name", "names")

    def __init__(self, name: str, children: Sequence[tuple[str, Handler, int | None]]) -> None:
        self.name = name
        kept = [(n, h, 1 if w is None else w) for n, h, w in children]
        kept = [(n, h, w) for n, h, w in kept if w > 0]
        self.names = [n for n, _, _ in kept]
        self.children = [h for _, h, _ in kept]
        self._inv = [1.0 / w for _, _, w in kept]
        # heap entries: (deadline, sequence, index)
        self._heap: list[tuple[float, int, int]] = [(inv, i, i) for i, inv in enumerate(self._inv)]
        heapq.heapify(self._heap)
        self._seq = len(kept)
        self._single = self.children[0] if len(self.children) == 1 else None

    def pick(self) -> int:
        """Index of the next child (advances the schedule)."""
        heap = self._heap
        deadline, _, index = heap[0]
        seq = self._seq
        self._seq = seq + 1
        heapq.heapreplace(heap, (deadline + self._inv[index], seq, index))
        return index

    def handle(self, ex: Exchange) -> None:
        # ``ex.service`` is set by the leaf (the server forwarder), as Traefik's access log does.
        single = self._single
        if single is not None:
            single.handle(ex)
            return
        if not self._heap:
            ex.service = self.name
            ex.respond(503, _NOSNIFF, NO_SERVER_BODY)
            return
        self.children[self.pick()].handle(ex)
