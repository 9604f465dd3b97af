"""The tutorial deployment for real, in a network namespace of its own (ports 80 and 443 free):
``web`` on :80 redirects to ``websecure`` on :443, ``certificatesResolvers.le.acme`` with
``httpChallenge.entryPoint: web`` obtains a certificate for ``Host(`example.com`)`` from pebble
(validating on 80), and ``https://example.com`` reaches the backend with a chain to pebble's root."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.acme import acme_resolver, dynamic_https, wait_https
from tests.support.ferryman import Ferryman
from tests.support.netns import in_netns, netns_available, network_namespace
from tests.support.pebble import PebbleFactory
from tests.support.procs import HELLO, ProcessGroup, read_json_line

pytestmark = pytest.mark.skipif(not netns_available(), reason="needs root for ip netns")


@pytest.fixture
def netns() -> Iterator[str]:
    with network_namespace("acme") as name:
        yield name


def test_http_redirects_and_https_gets_a_pebble_certificate(pebble: PebbleFactory, netns: str,
                                                            tmp_path: Path) -> None:
    group = ProcessGroup()
    ca = pebble.start(http_port=80, tls_port=443, netns=netns)
    try:
        backend = group.spawn(in_netns(netns, [sys.executable, str(HELLO), "--host", "127.0.0.1", "--port", "0",
                                               "--name", "tutorial"]), stderr=subprocess.DEVNULL)
        port = int(read_json_line(backend, 10, event="listening")["port"])
        static = {
            "entryPoints": {
                "web": {"address": ":80", "http": {"redirections": {"entryPoint": {"to": "websecure",
                                                                                   "scheme": "https"}}}},
                "websecure": {"address": ":443"},
            },
            "certificatesResolvers": {"le": acme_resolver(ca.directory, tmp_path / "acme.json")},
        }
        fm = Ferryman(tmp_path, static, dynamic_https("Host(`example.com`)", port), group=group, env=ca.env)
        fm.wrapper = in_netns(netns, [])
        fm.start()
        assert fm.ports == {"web": 80, "websecure": 443}

        redirect = subprocess.run(in_netns(netns, [
            "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "--resolve",
            "example.com:80:127.0.0.1", "http://example.com/path?q=1"]), capture_output=True, text=True, check=True)
        status, location = redirect.stdout.split(" ", 1)
        assert status in ("301", "308") and location == "https://example.com/path?q=1"

        done = wait_https("example.com", 443, ca.root_file, netns=netns, expect="Hello from tutorial")
        assert "Hello from tutorial" in done.stdout
        # the HTTP-01 validation went through :80 despite the redirection
        assert fm.wait_for(lambda e: e.get("event") == "certificate.obtained")["domains"] == ["example.com"]
    finally:
        group.stop_all()
        ca.stop()
