"""/api/traffic: request counters recorded only while the dashboard polls them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ferryman.api.traffic import TrafficCounter
from ferryman.observability.recorder import E_EXTRA, E_LABELS, E_LINE, E_MASK
from tests.unit.api.api_support import ask, load_static, service_for


def entry(ep: str, router: str | None, service: str | None, status: int, mask: int = 1) -> tuple[Any, ...]:
    """A recording entry (``ferryman.observability.recorder``'s layout) with what the counter reads."""
    values: list[Any] = [None] * (E_EXTRA + 1)
    values[E_MASK] = mask
    values[E_LABELS] = (ep, service, "http", status, router, b"GET")
    values[E_LINE] = (router, b"GET", b"/", b"1.1", status, 0, "", None, None)
    return tuple(values)


class Seam:
    """Stands for the entry points' recording seam: remembers whether the counter is attached."""

    def __init__(self) -> None:
        self.calls: list[bool] = []
        self.flushes = 0

    def attach(self, on: bool) -> None:
        self.calls.append(on)

    def flush(self) -> None:
        self.flushes += 1


def test_counts_per_entry_point_router_and_service() -> None:
    seam = Seam()
    counter = TrafficCounter(seam.attach, flush=seam.flush)
    counter.bit = 1
    counter.take([entry("web", "app@file", "app@file", 200)])
    assert seam.calls == [] and counter.slots == {}  # nothing recorded before anyone asks
    first = json.loads(counter.read())
    assert seam.calls == [True] and first["entryPoints"] == {} and first["time"] >= first["since"]
    counter.take([entry("web", "app@file", "app@file", status) for status in (200, 200, 502)])
    counter.take([entry("web", None, None, 404),  # no router matched
                  entry("web", "other@file", "other@file", 200, mask=2)])  # another consumer's
    body = json.loads(counter.read())
    assert seam.flushes == 1  # a read first takes what finished since the last tick
    assert body["entryPoints"] == {"web": {"requests": 4, "errors": 1}}
    assert body["routers"] == {"app@file": {"requests": 3, "errors": 1}}
    assert body["services"] == {"app@file": {"requests": 3, "errors": 1}}
    assert seam.calls == [True]  # attached once


def test_detaches_when_nobody_reads() -> None:
    async def main() -> list[bool]:
        seam = Seam()
        counter = TrafficCounter(seam.attach, idle=0.05)
        counter.read()
        for _ in range(100):
            if not counter.attached:
                break
            await asyncio.sleep(0.02)
        counter.read()  # watching again: attached again, counters from zero
        counter.detach()
        return seam.calls

    assert asyncio.run(main()) == [True, False, True, False]


def test_api_route_is_404_without_a_counter() -> None:
    api = service_for(load_static({"entryPoints": {"web": {"address": ":80"}}, "api": {}}), None)
    assert ask(api, "/api/traffic").status == 404
