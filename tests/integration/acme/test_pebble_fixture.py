"""The pebble fixture itself: a directory on free ports, this start's root, DNS answering 127.0.0.1."""

from __future__ import annotations

import json
import ssl
import urllib.request

from cryptography import x509

from tests.support.pebble import PebbleFactory
from tests.support.procs import free_port


def test_pebble_starts_with_its_own_root(pebble: PebbleFactory) -> None:
    ca = pebble.start(http_port=free_port(), tls_port=free_port())
    try:
        ctx = ssl.create_default_context(cafile=str(ca.listener_ca))
        with urllib.request.urlopen(ca.directory, context=ctx, timeout=5) as resp:
            directory = json.loads(resp.read())
        assert {"newAccount", "newNonce", "newOrder"} <= set(directory)
        root = x509.load_pem_x509_certificate(ca.root_pem)
        assert root.subject == root.issuer  # self-signed root, fetched from /roots/0
        assert ca.env == {"LEGO_CA_CERTIFICATES": str(ca.listener_ca)}
    finally:
        ca.stop()
