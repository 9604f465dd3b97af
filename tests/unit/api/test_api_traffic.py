"""/api/traffic: request counters recorded only while the dashboard polls them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ferryman.api.traffic import TrafficCounter
from tests.unit.api.api_support import ask, load_static, service_for


@dataclass
class FakeEx:
    entrypoint: str
    router: str | None
    service: str | None


@dataclass
class FakeTap:
    ex: FakeEx
    status: int


class Seam:
    """Stands for the entry points' recording seam: remembers the attached consumer."""

    def __init__(self) -> None:
        self.consumer: Callable[[Any], None] | None = None
        self.calls: list[bool] = []

    def attach(self, consumer: Callable[[Any], None] | None) -> None:
        self.consumer = consumer
        self.calls.append(consumer is not None)


def test_counts_per_entry_point_router_and_service() -> None:
    seam = Seam()
    counter = TrafficCounter(seam.attach)
    assert seam.consumer is None  # nothing recorded before anyone asks
    first = json.loads(counter.read())
    assert seam.calls == [True] and first["entryPoints"] == {} and first["time"] >= first["since"]
    record = seam.consumer
    assert record is not None
    for status in (200, 200, 502):
        record(FakeTap(FakeEx("web", "app@file", "app@file"), status))
    record(FakeTap(FakeEx("web", None, None), 404))  # no router matched
    body = json.loads(counter.read())
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
