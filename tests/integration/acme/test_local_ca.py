"""The localCA resolver: HTTPS without internet, trusted with curl --cacert, short-lived leaves renewed."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

from tests.integration.conftest import StartFerryman
from tests.support.acme import dynamic_https, leaf_of, served_chain, wait_https
from tests.support.procs import free_port, http_request, poll_until


def test_local_ca_serves_trusted_https_renews_and_keeps_its_root(
        ferryman: StartFerryman, hello: Callable[[str], int], tmp_path: Path) -> None:
    websecure = free_port()
    ca_dir = tmp_path / "local-ca"
    static = {"entryPoints": {"websecure": {"address": f"127.0.0.1:{websecure}"},
                              "traefik": {"address": "127.0.0.1:0"}},
              "api": {"insecure": True},
              "certificatesResolvers": {"local": {"localCA": {"storage": str(ca_dir),
                                                              "certificatesDuration": "12s"}}}}
    dynamic = dynamic_https("Host(`demo.localhost`)", hello("local"), resolver="local")
    fm = ferryman(static, dynamic)
    root = ca_dir / "root.pem"
    done = wait_https("demo.localhost", websecure, root, expect="Hello from local", deadline=20)
    assert "Hello from local" in done.stdout
    assert stat.S_IMODE(os.stat(ca_dir / "root.key").st_mode) == 0o600
    first = leaf_of(served_chain(websecure, "demo.localhost"))
    # /api/certificates shows it with its issuer and expiry
    status, _, body = http_request("127.0.0.1", fm.ports["traefik"], "/api/certificates")
    assert status == 200
    [listed] = [c for c in json.loads(body) if c["sans"] == ["demo.localhost"]]
    assert listed["issuerCN"].startswith("ferryman Local CA") and listed["issuerOrg"] == "ferryman"
    assert listed["notAfter"] >= first.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")  # (or renewed since)
    assert listed["status"] == "warning"  # expires within 30 days
    assert (first.not_valid_after_utc - first.not_valid_before_utc).total_seconds() <= 12 + 60
    # a third of the lifetime left: renewed and swapped in, still trusted
    before = leaf_of(served_chain(websecure, "demo.localhost")).serial_number
    poll_until(lambda: leaf_of(served_chain(websecure, "demo.localhost")).serial_number != before,
               30, what="a renewed certificate")
    renewed = fm.wait_for(lambda e: e.get("event") == "certificate.renewed", 10)
    assert renewed["domains"] == ["demo.localhost"]
    wait_https("demo.localhost", websecure, root, expect="Hello from local")
    root_pem = root.read_bytes()
    fm.stop()

    again = ferryman(static, dynamic)
    wait_https("demo.localhost", websecure, root, expect="Hello from local", deadline=20)
    assert root.read_bytes() == root_pem  # the same root: users trust it once
    assert not any(e.get("level") == "error" for e in again.lines)
