"""circuitBreaker through a real ferryman: a backend that dies trips the breaker (fast fallback), a
reload that keeps the middleware keeps the breaker tripped, a healed backend closes it again after
fallback + recovery; an invalid expression disables only its router, with a caret in the log."""

from __future__ import annotations

import http.client
import time
from typing import Any

import yaml

from tests.integration.conftest import StartFerryman
from tests.integration.dataplane.dp_support import http_backend
from tests.support.procs import poll_until

STATIC = {"entryPoints": {"web": {"address": "127.0.0.1:0"}},
          "providers": {"providersThrottleDuration": "0.1s"}}

BREAKER = {"circuitBreaker": {"expression": "NetworkErrorRatio() > 0.5", "checkPeriod": "50ms",
                              "fallbackDuration": "3s", "recoveryDuration": "1s", "responseCode": 418}}


def get(port: int, host: str = "app") -> tuple[int, bytes, float]:
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/", headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, resp.read(), time.monotonic() - started
    finally:
        conn.close()


def config(url: str) -> dict[str, Any]:
    return {"http": {
        "routers": {"app": {"rule": "Host(`app`)", "service": "s", "middlewares": ["cb"]},
                    "bad": {"rule": "Host(`bad`)", "service": "s", "middlewares": ["broken"]}},
        "middlewares": {"cb": BREAKER,
                        "broken": {"circuitBreaker": {"expression": "NetworkErrorRatio() > 0.5 &&"}}},
        "services": {"s": {"loadBalancer": {"servers": [{"url": url}]}}}}}


def test_breaker_trips_survives_reload_and_recovers(ferryman: StartFerryman) -> None:
    first = http_backend()
    fm = ferryman(static=STATIC, start=False)
    fm.static["providers"]["file"] = {"directory": str(fm.dynamic_dir), "watch": True}
    fm.write_dynamic("routes.yml", config(first.url))
    fm.config_file.write_text(yaml.safe_dump(fm.static))
    fm.start()
    port = fm.ports["web"]
    # The broken router is disabled with a caret under the problem; the other one serves.
    text = "\n".join(fm.raw)
    assert "broken@file" in text and "expected operand" in text and "^" in text
    assert get(port, "bad")[0] == 404
    assert get(port)[:2] == (200, b"hello from backend")

    first.close()  # the backend dies: 502s until the breaker trips, then the fallback, fast
    def tripped() -> tuple[int, bytes, float] | None:
        answer = get(port)
        return answer if answer[0] == 418 else None

    _, body, _ = poll_until(tripped, 10, what="tripped breaker")
    assert body == b"I'm a teapot"
    assert all(get(port)[0] == 418 for _ in range(5))

    with http_backend() as second:
        mark = fm.mark()
        fm.write_dynamic("routes.yml", config(second.url))  # same middleware, new server
        fm.wait_for(lambda e: e.get("message") == "configuration applied", 5, start=mark)
        assert get(port)[0] == 418  # still tripped: the state survived the reload
        assert second.requests == []
        # fallbackDuration (3s) then a 1s ramp-up: back to 200 for good.
        poll_until(lambda: all(get(port)[0] == 200 for _ in range(5)), 10, interval=0.1, what="recovery")
        assert len(second.requests) >= 5
