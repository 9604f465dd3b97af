"""api.debug: process variables, asyncio tasks, memory by type, an on-demand CPU profile."""

from __future__ import annotations

import asyncio
import time

import pytest

from ferryman.api.handler import ApiService
from ferryman.http.exchange import ConnInfo, Exchange, Headers
from ferryman.http.forwarded import ForwardingPolicy
from tests.unit.api.api_support import ask, load_static, service_for
from tests.unit.http.test_http_exchange import FakeDownstream


def debug_api(debug: bool = True, base: str = "/") -> ApiService:
    static = load_static({"entryPoints": {"web": {"address": ":80"}},
                          "api": {"debug": debug, "dashboard": False, "basePath": base}})
    return service_for(static, None)


def test_debug_routes_only_when_enabled() -> None:
    assert ask(debug_api(False), "/debug/vars").status == 404
    on = debug_api(True, "/t")
    assert ask(on, "/t/debug/vars").status == 200
    assert ask(on, "/debug/vars").status == 404
    assert ask(on, "/t/debug/nothing").status == 404
    assert ask(on, "/t/debug/vars", b"POST").status == 405


def test_vars_and_memory_and_cmdline() -> None:
    api = debug_api()
    answer = ask(api, "/debug/vars")
    assert answer.headers["content-type"] == "application/json; charset=utf-8"
    variables = answer.json()
    assert {"cmdline", "python", "pid", "tasks", "gc", "maxRSSBytes"} <= set(variables)
    assert len(variables["gc"]["generations"]) == 3
    memory = ask(api, "/debug/memory").json()
    assert memory["objects"] > 1000
    assert "builtins.dict" in {t["type"] for t in memory["byType"]}
    counts = [t["count"] for t in memory["byType"]]
    assert counts == sorted(counts, reverse=True)
    assert ask(api, "/debug/pprof/cmdline").status == 200
    index = ask(api, "/debug/pprof/").body.decode()
    assert "/debug/pprof/profile" in index and "/debug/tasks" in index


class Waiting(FakeDownstream):
    """A downstream that resolves a future when the response ends."""

    def __init__(self, done: asyncio.Future[None]) -> None:
        super().__init__()
        self.done = done

    def send_end(self, trailers: Headers | None) -> None:
        super().send_end(trailers)
        if not self.done.done():
            self.done.set_result(None)


async def call(api: ApiService, target: str) -> tuple[int, bytes]:
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    down = Waiting(done)
    path, _, query = target.partition("?")
    info = ConnInfo("traefik", "127.0.0.1", 1, False, ForwardingPolicy(hostname="h"))
    api.handle(Exchange(info, down, b"GET", target.encode(), path.encode(), query.encode() or None, b"1.1",
                        [], b"localhost", 0))
    await asyncio.wait_for(done, 5.0)
    status = next(c[1][0] for c in down.calls if c[0] == "head")
    return status, b"".join(c[1] for c in down.calls if c[0] == "data")


def test_tasks_lists_the_running_tasks() -> None:
    async def main() -> list[dict[str, object]]:
        blocker = asyncio.Event()
        waiter = asyncio.create_task(blocker.wait(), name="test-waiter")
        await asyncio.sleep(0)  # let the task start (one loop turn, not a timed wait)
        try:
            status, body = await call(debug_api(), "/debug/tasks")
            assert status == 200
            import json

            tasks: list[dict[str, object]] = json.loads(body)
            return tasks
        finally:
            waiter.cancel()

    tasks = asyncio.run(main())
    waiter = next(t for t in tasks if t["name"] == "test-waiter")
    assert waiter["state"] == "pending" and waiter["coroutine"] == "Event.wait"
    assert any("in wait" in str(frame) for frame in waiter["stack"])  # type: ignore[attr-defined]


def busy_callback(until: float) -> None:
    """CPU work on the loop thread: what the sampler must see."""
    while time.monotonic() < until:
        sum(range(1000))


def test_cpu_profile_samples_the_loop_thread_from_another_thread() -> None:
    async def main() -> tuple[tuple[int, bytes], tuple[int, bytes], tuple[int, bytes]]:
        api = debug_api()
        first = asyncio.create_task(call(api, "/debug/pprof/profile?seconds=0.3"))
        await asyncio.sleep(0)
        second = await call(api, "/debug/pprof/profile?seconds=0.05")  # one at a time
        await asyncio.sleep(0.02)
        busy_callback(time.monotonic() + 0.2)
        result = await first
        folded = await call(api, "/debug/pprof/profile?seconds=0.1&format=folded")
        return result, second, folded

    (status, body), (busy_status, busy_body), (f_status, f_body) = asyncio.run(main())
    text = body.decode()
    assert status == 200 and text.startswith("CPU profile of the event loop thread: ")
    assert "busy_callback (" in text.split("Folded stacks")[0]  # on top of the busy samples
    assert busy_status == 500 and b"already in use" in busy_body
    assert f_status == 200
    for line in f_body.decode().splitlines():  # "frame;frame;... count"
        stack, _, count = line.rpartition(" ")
        assert stack and int(count) > 0


@pytest.mark.parametrize("seconds", ["0", "-1", "abc", "301"])
def test_cpu_profile_rejects_bad_durations(seconds: str) -> None:
    answer = ask(debug_api(), f"/debug/pprof/profile?seconds={seconds}")
    assert answer.status == 400
