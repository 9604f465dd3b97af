"""ACME against a real CA (pebble): issuance with HTTP-01 and TLS-ALPN-01, acme.json, restarts,
renewals and failures, with ferryman's real entry points answering pebble's validation."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

from tests.integration.conftest import StartFerryman
from tests.support.acme import acme_resolver, dynamic_https, leaf_of, served_chain, wait_https
from tests.support.pebble import PebbleFactory
from tests.support.procs import free_port


def _static(web: int, websecure: int, resolvers: dict[str, object]) -> dict[str, object]:
    return {"entryPoints": {"web": {"address": f"127.0.0.1:{web}"},
                            "websecure": {"address": f"127.0.0.1:{websecure}"}},
            "certificatesResolvers": resolvers}


def test_http01_issues_a_certificate_chaining_to_pebbles_root(
        pebble: PebbleFactory, ferryman: StartFerryman, hello: Callable[[str], int], tmp_path: Path) -> None:
    web, websecure = free_port(), free_port()
    ca = pebble.start(http_port=web, tls_port=websecure)
    storage = tmp_path / "acme.json"
    fm = ferryman(_static(web, websecure, {"le": acme_resolver(ca.directory, storage)}),
                  dynamic_https("Host(`example.com`) || Host(`www.example.com`)", hello("app")), env=ca.env)
    done = wait_https("example.com", websecure, ca.root_file, expect="Hello from app")
    assert "Hello from app" in done.stdout
    chain = served_chain(websecure, "www.example.com")
    ca.verify_chain(chain, "www.example.com")
    # acme.json: Traefik's layout, 0600
    assert stat.S_IMODE(os.stat(storage).st_mode) == 0o600
    data = json.loads(storage.read_text())
    entry = data["le"]
    assert entry["Account"]["Email"] == "ops@example.com"
    assert entry["Account"]["KeyType"] == "P256"
    assert entry["Account"]["Registration"]["uri"].startswith("https://127.0.0.1:")
    [cert] = entry["Certificates"]
    assert cert["domain"] == {"main": "example.com", "sans": ["www.example.com"]}
    assert cert["Store"] == "default"
    fm.wait_for(lambda e: "obtained certificate for example.com" in str(e.get("message")))


def test_tls_alpn01_issues_and_a_restart_reuses_acme_json(
        pebble: PebbleFactory, ferryman: StartFerryman, hello: Callable[[str], int], tmp_path: Path) -> None:
    web, websecure = free_port(), free_port()
    ca = pebble.start(http_port=web, tls_port=websecure)
    storage = tmp_path / "acme.json"
    static = _static(web, websecure, {"le": acme_resolver(ca.directory, storage, http_entry_point=None, tls=True)})
    dynamic = dynamic_https("Host(`alpn.example.net`)", hello("alpn"))
    fm = ferryman(static, dynamic, env=ca.env)
    wait_https("alpn.example.net", websecure, ca.root_file, expect="Hello from alpn")
    first = served_chain(websecure, "alpn.example.net")
    ca.verify_chain(first, "alpn.example.net")
    fm.wait_for(lambda e: "obtained certificate for alpn.example.net" in str(e.get("message")))
    fm.stop()

    again = ferryman(static, dynamic, env=ca.env)
    again.wait_for(lambda e: "1 certificate(s) loaded from storage" in str(e.get("message")))
    wait_https("alpn.example.net", websecure, ca.root_file, expect="Hello from alpn")
    assert leaf_of(served_chain(websecure, "alpn.example.net")).serial_number == leaf_of(first).serial_number
    assert not any("ordering a certificate" in str(e.get("message")) for e in again.lines)
