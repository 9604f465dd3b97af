"""``<basePath>/api/traffic``: cumulative request counters for the dashboard's live request rates
(ferryman's own endpoint; Traefik's dashboard has none).

Costs nothing while nobody watches: the counter is attached to the entry points' request
recording seam (:mod:`ferryman.observability.recorder`) on the first ``/api/traffic`` request and
detached again when no request came for :data:`IDLE_SECONDS`. While attached, each finished
exchange of a non-internal router costs one entry in the recording and, per batch, one dictionary
update (summed when read). The dashboard polls the
endpoint and turns the differences between two answers into rates, so counters start at zero
when watching starts.

Answer::

    {"time": 1764100000.25, "since": 1764099990.0,
     "entryPoints": {"web": {"requests": 120, "errors": 2}},
     "routers": {"app@file": {"requests": 118, "errors": 2}},
     "services": {"app@file": {"requests": 118, "errors": 2}}}

``errors`` counts 5xx answers (and clients gone before an answer, Traefik's 499, are requests).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from ferryman.api.gojson import encode
from ferryman.observability.recorder import E_LINE, E_MASK, L_STATUS, Entry, entry_names

__all__ = ["IDLE_SECONDS", "TrafficCounter"]

IDLE_SECONDS = 60.0


#: ``attach(True)`` adds the counter to every entry point's recording; ``attach(False)`` removes it.
Attach = Callable[[bool], None]


def _nothing() -> None:
    pass


class TrafficCounter:
    """A :class:`~ferryman.observability.recorder.BatchConsumer` (register it, then set ``bit``)."""

    def __init__(self, attach: Attach, idle: float = IDLE_SECONDS, flush: Callable[[], None] = _nothing) -> None:
        self._attach = attach
        self._flush = flush
        self.idle = idle
        self.attached = False
        self.since = 0.0
        self._last_read = 0.0
        self._check: asyncio.TimerHandle | None = None
        #: this consumer's bit in the entries (0: every entry)
        self.bit = 0
        #: (entry point, router, service) -> [requests, 5xx]: one slot per key, summed when read
        self.slots: dict[tuple[str, str | None, str | None], list[int]] = {}

    def take(self, batch: list[Entry]) -> None:
        """Counts a batch of finished exchanges (one slice and one dictionary look-up each)."""
        if not self.attached:
            return
        bit = self.bit
        slots = self.slots
        for e in batch:
            if bit and not e[E_MASK] & bit:
                continue
            key = entry_names(e)
            slot = slots.get(key)
            if slot is None:
                slots[key] = slot = [0, 0]
            slot[0] += 1
            if e[E_LINE][L_STATUS] >= 500:
                slot[1] += 1

    def read(self) -> bytes:
        """The JSON answer; attaches the counter if it is not recording yet."""
        now = time.monotonic()
        self._last_read = now
        if not self.attached:
            self.slots.clear()
            self.since = time.time()
            self._attach(True)
            self.attached = True
            self._schedule()
        else:
            self._flush()  # what finished since the last tick
        tables: tuple[dict[str, list[int]], ...] = ({}, {}, {})
        for key, (requests, errors) in list(self.slots.items()):
            for table, name in zip(tables, key, strict=True):
                if name is None:
                    continue
                total = table.get(name)
                if total is None:
                    table[name] = [requests, errors]
                else:
                    total[0] += requests
                    total[1] += errors
        body: dict[str, Any] = {"time": round(time.time(), 3), "since": round(self.since, 3)}
        for key_name, table in zip(("entryPoints", "routers", "services"), tables, strict=True):
            body[key_name] = {name: {"requests": c[0], "errors": c[1]} for name, c in sorted(table.items())}
        return encode(body)

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (unit tests calling read() directly): stays attached
            return
        self._check = loop.call_later(self.idle, self._idle_check)

    def _idle_check(self) -> None:
        self._check = None
        left = self._last_read + self.idle - time.monotonic()
        if left > 0:
            self._check = asyncio.get_running_loop().call_later(left, self._idle_check)
            return
        self.detach()

    def detach(self) -> None:
        if self._check is not None:
            self._check.cancel()
            self._check = None
        if self.attached:
            self._attach(False)
            self.attached = False
