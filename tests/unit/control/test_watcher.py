from __future__ import annotations

import asyncio
from collections.abc import Mapping

from ferryman.control.watcher import Watcher
from ferryman.dynamic.models import Configuration, HTTPConfiguration, Router
from ferryman.providers.base import ProviderMessage


def _config(rule: str) -> Configuration:
    return Configuration(http=HTTPConfiguration(routers={"r": Router(rule=rule, service="s")}))


class Recorder:
    def __init__(self) -> None:
        self.applied: list[dict[str, Configuration]] = []
        self.changed = asyncio.Event()

    def __call__(self, configs: Mapping[str, Configuration], _msgs: Mapping[str, ProviderMessage]) -> None:
        self.applied.append(dict(configs))
        self.changed.set()

    def rules(self, provider: str = "file") -> list[str]:
        return [c[provider].http.routers["r"].rule for c in self.applied]


async def _wait(rec: Recorder, count: int, timeout: float = 2.0) -> None:
    async def until() -> None:
        while len(rec.applied) < count:
            rec.changed.clear()
            await rec.changed.wait()
    await asyncio.wait_for(until(), timeout)


def test_first_change_applies_at_once_and_window_coalesces_to_newest() -> None:
    async def main() -> None:
        rec = Recorder()
        w = Watcher(throttle=0.2, apply=rec)
        w.submit(ProviderMessage("file", _config("Host(`a`)")))
        assert rec.rules() == ["Host(`a`)"]  # no wait for the first one
        w.submit(ProviderMessage("file", _config("Host(`b`)")))
        w.submit(ProviderMessage("file", _config("Host(`c`)")))
        assert rec.rules() == ["Host(`a`)"]  # inside the window: held back
        await _wait(rec, 2)
        assert rec.rules() == ["Host(`a`)", "Host(`c`)"]  # newest wins, b never applied
        w.close()
    asyncio.run(main())


def test_unchanged_configuration_is_dropped() -> None:
    async def main() -> None:
        rec = Recorder()
        w = Watcher(throttle=0, apply=rec)
        w.submit(ProviderMessage("file", _config("Host(`a`)")))
        w.submit(ProviderMessage("file", _config("Host(`a`)")))
        assert len(rec.applied) == 1
    asyncio.run(main())


def test_broken_input_keeps_last_good_configuration_and_reports() -> None:
    async def main() -> None:
        rec = Recorder()
        w = Watcher(throttle=0, apply=rec)
        w.submit(ProviderMessage("file", _config("Host(`a`)")))
        w.submit(ProviderMessage("file", None, error="dyn.yml: line 3: bad indentation"))
        assert rec.rules() == ["Host(`a`)"]
        assert w.errors() == {"file": "dyn.yml: line 3: bad indentation"}
        w.submit(ProviderMessage("file", _config("Host(`b`)")))
        assert rec.rules() == ["Host(`a`)", "Host(`b`)"]
        assert w.errors() == {}
    asyncio.run(main())


def test_providers_are_throttled_independently() -> None:
    async def main() -> None:
        rec = Recorder()
        w = Watcher(throttle=5, apply=rec)
        w.submit(ProviderMessage("file", _config("Host(`a`)")))
        w.submit(ProviderMessage("docker", _config("Host(`d`)")))
        assert len(rec.applied) == 2
        assert set(rec.applied[-1]) == {"file", "docker"}
        w.close()
    asyncio.run(main())
