"""Helpers for HTTPS tests with certificate resolvers: configurations, curl over TLS, served chains."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography import x509

from tests.support.procs import poll_until

__all__ = ["acme_resolver", "curl_https", "dynamic_https", "leaf_of", "served_chain", "wait_https"]


def acme_resolver(directory: str, storage: Path, *, http_entry_point: str | None = "web", tls: bool = False,
                  **extra: Any) -> dict[str, Any]:
    """A ``certificatesResolvers.<n>`` entry for pebble (EC256 keys: fast to generate)."""
    acme: dict[str, Any] = {"email": "ops@example.com", "caServer": directory, "storage": str(storage),
                            "keyType": "EC256"}
    if http_entry_point is not None:
        acme["httpChallenge"] = {"entryPoint": http_entry_point}
    if tls:
        acme["tlsChallenge"] = {}
    acme.update(extra)
    return {"acme": acme}


def curl_https(host: str, port: int, cacert: Path, path: str = "/", *, netns: str | None = None,
               connect_to: str = "127.0.0.1", extra: Sequence[str] = (), timeout: float = 5.0
               ) -> subprocess.CompletedProcess[str]:
    """``curl --cacert`` to ``https://host:port/path`` with ``host`` resolved to ``connect_to``."""
    url_port = "" if port == 443 else f":{port}"
    argv = ["curl", "-sS", "--max-time", str(timeout), "--cacert", str(cacert),
            "--resolve", f"{host}:{port}:{connect_to}", *extra, f"https://{host}{url_port}{path}"]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def wait_https(host: str, port: int, cacert: Path, *, deadline: float = 60.0, netns: str | None = None,
               expect: str | None = None) -> subprocess.CompletedProcess[str]:
    """Poll until curl verifies the chain for ``host`` (and the body contains ``expect``)."""

    def probe() -> subprocess.CompletedProcess[str] | None:
        done = curl_https(host, port, cacert, netns=netns)
        if done.returncode == 0 and (expect is None or expect in done.stdout):
            return done
        return None

    return poll_until(probe, deadline, interval=0.2, what=f"a verified HTTPS answer for {host}:{port}")


def served_chain(port: int, server_name: str, host: str = "127.0.0.1", *, alpn: str | None = None) -> bytes:
    """The PEM chain a TLS server sends for ``server_name`` (``openssl s_client -showcerts``, no
    verification)."""
    argv = ["openssl", "s_client", "-connect", f"{host}:{port}", "-servername", server_name, "-showcerts"]
    if alpn:
        argv += ["-alpn", alpn]
    done = subprocess.run(argv, input="", capture_output=True, text=True, timeout=10, check=False)
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", done.stdout, re.S)
    return "".join(b + "\n" for b in blocks).encode()


def leaf_of(chain_pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificates(chain_pem)[0]


def dynamic_https(rule: str, backend_port: int, resolver: str = "le", *,
                  entry_point: str = "websecure", tls_extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"http": {
        "routers": {"app": {"rule": rule, "entryPoints": [entry_point], "service": "app",
                            "tls": {"certResolver": resolver, **(tls_extra or {})}}},
        "services": {"app": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{backend_port}"}]}}}}}
