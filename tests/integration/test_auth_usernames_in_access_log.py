"""The access log's ClientUsername from digestAuth (the name the client gave) and forwardAuth
(``headerField`` of the auth server's answer), through the real ferryman process."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import StartFerryman
from tests.integration.dataplane.dp_support import http_backend, response
from tests.support.procs import http_request, poll_until


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_client_username(ferryman: StartFerryman, hello: Callable[[str], int], tmp_path: Path) -> None:
    backend = hello("v1")
    ha1 = hashlib.md5(b"dora:traefik:explorer").hexdigest()
    log_path = tmp_path / "access.json"
    with http_backend(lambda req: response(200, b"", {"X-Auth-User": "fred"})) as auth:
        dynamic = {"http": {
            "routers": {"digest": {"rule": "PathPrefix(`/d`)", "service": "app", "middlewares": ["digest"]},
                        "fa": {"rule": "PathPrefix(`/f`)", "service": "app", "middlewares": ["fa"]}},
            "middlewares": {"digest": {"digestAuth": {"users": [f"dora:traefik:{ha1}"]}},
                            "fa": {"forwardAuth": {"address": auth.url, "headerField": "X-Auth-User"}}},
            "services": {"app": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{backend}"}]}}},
        }}
        fm = ferryman({"entryPoints": {"web": {"address": "127.0.0.1:0"}},
                       "accessLog": {"filePath": str(log_path), "format": "json"}}, dynamic)
        port = fm.ports["web"]
        out = subprocess.run(["curl", "-s", "--digest", "-u", "dora:explorer", "-o", "/dev/null", "-w", "%{http_code}",
                              f"http://127.0.0.1:{port}/d"], capture_output=True, text=True, timeout=20, check=False)
        assert out.stdout == "200"
        assert http_request("127.0.0.1", port, "/f")[0] == 200

        def lines() -> list[dict[str, object]] | None:
            if not log_path.exists():
                return None
            found = [json.loads(line) for line in log_path.read_text().splitlines()]
            return found if len(found) >= 3 else None

        logged = poll_until(lines, 10.0, what="3 access log lines")
    by_path = {(e["RequestPath"], e["DownstreamStatus"]): e["ClientUsername"] for e in logged}
    assert by_path[("/d", 401)] == "-"  # curl's first request carries no credentials
    assert by_path[("/d", 200)] == "dora"
    assert by_path[("/f", 200)] == "fred"
