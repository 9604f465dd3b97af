"""HTTPS through the real ferryman process: curl --cacert end to end, plain and TLS on one port,
X-Forwarded-Proto, mTLS with curl --cert, certificate hot swap by editing the dynamic file."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import StartFerryman
from tests.integration.tls.pki import CA
from tests.integration.tls.tls_harness import client_context, http_get, https_get
from tests.support.procs import poll_until


def curl(port: int, host: str, path: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "--max-time", "10", "--resolve", f"{host}:{port}:127.0.0.1",
                           *args, f"https://{host}:{port}{path}"],
                          capture_output=True, text=True, timeout=20, check=False)


def dynamic(backend: int, cert: tuple[Path, Path], ca_file: Path) -> dict[str, Any]:
    return {
        "http": {
            "routers": {
                "app": {"rule": "Host(`app.test`)", "service": "hello", "tls": {}},
                "app-plain": {"rule": "Host(`app.test`) && PathPrefix(`/plain`)", "service": "hello"},
                "mtls": {"rule": "Host(`mtls.test`)", "service": "hello", "tls": {"options": "mtls"}},
            },
            "services": {"hello": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{backend}"}]}}},
        },
        "tls": {
            "certificates": [{"certFile": str(cert[0]), "keyFile": str(cert[1])}],
            "options": {"mtls": {"clientAuth": {"caFiles": [str(ca_file)],
                                                "clientAuthType": "RequireAndVerifyClientCert"}}},
        },
    }


@pytest.mark.skipif(subprocess.run(["which", "curl"], capture_output=True, check=False).returncode != 0,
                    reason="curl not installed")
def test_https_end_to_end_with_curl(ferryman: StartFerryman, hello: Callable[[str], int], tmp_path: Path) -> None:
    ca = CA()
    certs = tmp_path / "certs"
    certs.mkdir()
    ca_file = certs / "ca.pem"
    ca_file.write_text(ca.pem)
    server = ca.issue("app.test", dns=("app.test", "mtls.test")).write(certs, "server")
    client = ca.issue("client", client=True).write(certs, "client")
    backend = hello("v1")
    fm = ferryman({"entryPoints": {"websecure": {"address": "127.0.0.1:0"}}},
                  dynamic(backend, server, ca_file))
    port = fm.ports["websecure"]

    r = curl(port, "app.test", "/echo", "--cacert", str(ca_file))
    assert r.returncode == 0, r.stderr
    echo = json.loads(r.stdout)
    headers = {k.lower(): v for k, v in echo["headers"]}
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-port"] == str(port)

    # the same port answers plain HTTP with the plain routers only
    assert http_get(port, "app.test", "/plain")[0] == 200
    assert http_get(port, "app.test", "/")[0] == 404

    # mTLS: refused without a client certificate, served with one from the CA
    assert curl(port, "mtls.test", "/", "--cacert", str(ca_file)).returncode != 0
    ok = curl(port, "mtls.test", "/", "--cacert", str(ca_file), "--cert", str(client[0]), "--key", str(client[1]))
    assert ok.returncode == 0 and ok.stdout == "Hello from v1\n", ok.stderr

    # hot swap: a new certificate for app.test takes effect for new handshakes, no restart
    assert https_get(port, "app.test", client_context(ca.pem)).peer_cn == "app.test"
    renewed = ca.issue("app.test renewed", dns=("app.test", "mtls.test")).write(certs, "renewed")
    fm.write_dynamic("routes.yml", dynamic(backend, renewed, ca_file))
    poll_until(lambda: https_get(port, "app.test", client_context(ca.pem)).peer_cn == "app.test renewed",
               what="renewed certificate served")
    r = curl(port, "app.test", "/", "--cacert", str(ca_file))
    assert r.returncode == 0 and r.stdout == "Hello from v1\n", r.stderr


def test_entry_point_http_tls_and_broken_certificate_reported(ferryman: StartFerryman,
                                                             hello: Callable[[str], int], tmp_path: Path) -> None:
    backend = hello("v1")
    fm = ferryman({"entryPoints": {"websecure": {"address": "127.0.0.1:0", "http": {"tls": {}}}}}, {
        "http": {"routers": {"app": {"rule": "Host(`app.test`)", "service": "hello"}},
                 "services": {"hello": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{backend}"}]}}}},
        "tls": {"certificates": [{"certFile": str(tmp_path / "nope.crt"), "keyFile": str(tmp_path / "nope.key")}]},
    })
    port = fm.ports["websecure"]
    fm.wait_for(lambda e: "nope.crt" in str(e.get("message", "")))
    r = https_get(port, "app.test")  # the router gets TLS from the entry point; default certificate
    assert r.status == 200 and r.peer_cn == "TRAEFIK DEFAULT CERT" and r.body == "Hello from v1\n"
    assert http_get(port, "app.test")[0] == 404
