"""A real ACME CA for tests: pebble (Debian package) with pebble-challtestsrv as its DNS server.

pebble's validation authority dials fixed ports (``httpPort`` for HTTP-01, ``tlsPort`` for
TLS-ALPN-01) that must be in its configuration before it starts, so a test first chooses the ports
its ferryman entry points will bind, then asks the :func:`pebble` factory for a CA
validating on them::

    def test_issue(pebble: PebbleFactory, ...):
        web, websecure = free_port(), free_port()
        ca = pebble.start(http_port=web, tls_port=websecure)
        static = {..., "certificatesResolvers": {"le": {"acme": {"caServer": ca.directory, ...}}}}
        fm = ferryman(static, dynamic, env=ca.env)          # LEGO_CA_CERTIFICATES: the listener CA
        ...
        ca.verify_chain(chain_pem)                           # against pebble's root of this start

Each :meth:`PebbleFactory.start` runs its own pebble and pebble-challtestsrv (DNS only: every A
query answers 127.0.0.1, no AAAA) on free loopback ports, with ``PEBBLE_VA_NOSLEEP=1`` and
``PEBBLE_WFE_NONCEREJECT=0`` (deterministic runs). The ``pebble`` fixture stops what a test
started when the test ends (or earlier: :meth:`Pebble.stop`); the listener PKI is made once per
session (``pebble_session``). ``netns=`` runs both inside a network namespace (see
:mod:`tests.support.netns`) so that pebble validates on ports 80/443 of that namespace. pebble
regenerates its root on every start: :attr:`Pebble.root_pem` is fetched from ``/roots/0`` each time.
The listener certificate (pebble's HTTPS directory) is generated once per session;
:attr:`PebbleFactory.listener_ca` is the CA to trust it (ferryman reads it from
``LEGO_CA_CERTIFICATES``, as Traefik does).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.procs import ProcessGroup, free_port, poll_until

__all__ = ["Pebble", "PebbleFactory", "pebble", "pebble_available", "pebble_session", "write_listener_pki"]

PEBBLE = shutil.which("pebble") or "/usr/bin/pebble"
CHALLTESTSRV = shutil.which("pebble-challtestsrv") or "/usr/bin/pebble-challtestsrv"


def pebble_available() -> bool:
    return os.access(PEBBLE, os.X_OK) and os.access(CHALLTESTSRV, os.X_OK)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_listener_pki(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a ``localhost``/``127.0.0.1`` server certificate for pebble's own HTTPS listeners;
    returns (ca.pem, cert.pem, key.pem)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ferryman tests: pebble listener CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = directory / "listener-ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(_pem_key(key))
    return ca_path, cert_path, key_path


@dataclass
class Pebble:
    """One running pebble: its ACME directory URL, this start's root and what ferryman needs."""

    directory: str
    management: str
    listener_ca: Path
    root_pem: bytes
    root_file: Path
    http_port: int
    tls_port: int
    workdir: Path
    netns: str | None
    group: ProcessGroup = field(repr=False)

    @property
    def env(self) -> dict[str, str]:
        """Environment for ferryman: trust pebble's HTTPS listener (Traefik's ``LEGO_CA_CERTIFICATES``)."""
        return {"LEGO_CA_CERTIFICATES": str(self.listener_ca)}

    def fetch_root(self, index: int) -> bytes:
        """Root ``index`` of this start (``PEBBLE_ALTERNATE_ROOTS=n`` adds roots 1..n)."""
        return _fetch(f"{self.management}/roots/{index}", self.listener_ca, self.netns)

    def verify_chain(self, chain_pem: bytes, name: str | None = None, *, root_file: Path | None = None) -> None:
        """Fail unless ``chain_pem`` (leaf first, then intermediates) chains to this pebble's root
        (``openssl verify``; with ``name``, also checks the leaf covers it; ``root_file``: another root)."""
        with tempfile.TemporaryDirectory(prefix="pebble-verify-") as tmp:
            certs = x509.load_pem_x509_certificates(chain_pem)
            leaf = Path(tmp, "leaf.pem")
            leaf.write_bytes(certs[0].public_bytes(serialization.Encoding.PEM))
            untrusted = Path(tmp, "untrusted.pem")
            untrusted.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs[1:]))
            argv = ["openssl", "verify", "-CAfile", str(root_file or self.root_file)]
            if certs[1:]:
                argv += ["-untrusted", str(untrusted)]
            if name is not None:
                argv += ["-verify_hostname", name]
            done = subprocess.run([*argv, str(leaf)], capture_output=True, text=True, check=False)
            assert done.returncode == 0 and ": OK" in done.stdout, (done.stdout, done.stderr)

    def stop(self) -> None:
        self.group.stop_all()


def _in_netns(netns: str | None, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else list(argv)


def _fetch(url: str, cafile: Path, netns: str | None, timeout: float = 2.0) -> bytes:
    if netns is None:
        ctx = ssl.create_default_context(cafile=str(cafile))
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:
            body: bytes = resp.read()
            return body
    done = subprocess.run(_in_netns(netns, ["curl", "-sSf", "--max-time", str(timeout), "--cacert", str(cafile),
                                            url]), capture_output=True, check=True)
    return done.stdout


class PebbleFactory:
    """Starts pebble instances on demand (session-scoped); stops them all at the end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.listener_ca, self.cert, self.key = write_listener_pki(workdir / "listener")
        self._groups: list[ProcessGroup] = []
        self._count = 0

    def start(self, http_port: int, tls_port: int, *, netns: str | None = None,
              env: dict[str, str] | None = None, eab_keys: dict[str, str] | None = None,
              deadline: float = 20.0) -> Pebble:
        """A pebble validating HTTP-01 on ``http_port`` and TLS-ALPN-01 on ``tls_port`` (of
        127.0.0.1, in ``netns`` when given). ``env`` adds pebble settings (``PEBBLE_*``);
        ``eab_keys`` (kid -> base64url HMAC key) makes external account binding required."""
        last: Exception | None = None
        for _attempt in range(3):  # a free port taken meanwhile by another run: choose again
            try:
                return self._start(http_port, tls_port, netns, env or {}, eab_keys or {}, deadline)
            except (TimeoutError, RuntimeError) as exc:
                last = exc
        raise RuntimeError(f"pebble did not start: {last}") from last

    def _start(self, http_port: int, tls_port: int, netns: str | None, env: dict[str, str],
               eab_keys: dict[str, str], deadline: float) -> Pebble:
        self._count += 1
        workdir = self.workdir / f"pebble-{self._count}"
        workdir.mkdir(parents=True)
        if netns:
            listen, mgmt, dns, dns_mgmt = 14000, 15000, 8053, 8055
        else:
            listen, mgmt, dns, dns_mgmt = free_port(), free_port(), free_port(), free_port()
        config = {"pebble": {
            "listenAddress": f"127.0.0.1:{listen}", "managementListenAddress": f"127.0.0.1:{mgmt}",
            "certificate": str(self.cert), "privateKey": str(self.key),
            "httpPort": http_port, "tlsPort": tls_port, "ocspResponderURL": "",
            "externalAccountBindingRequired": bool(eab_keys), "externalAccountMACKeys": eab_keys}}
        (workdir / "pebble-config.json").write_text(json.dumps(config))
        group = ProcessGroup()
        self._groups.append(group)
        dns_log = open(workdir / "challtestsrv.log", "wb")  # noqa: SIM115 - owned by the child
        pebble_log = open(workdir / "pebble.log", "wb")  # noqa: SIM115
        try:
            group.spawn(_in_netns(netns, [CHALLTESTSRV, "-dns01", f"127.0.0.1:{dns}", "-http01", "",
                                          "-https01", "", "-tlsalpn01", "", "-management",
                                          f"127.0.0.1:{dns_mgmt}", "-defaultIPv4", "127.0.0.1",
                                          "-defaultIPv6", ""]),
                        stdout=dns_log, stderr=subprocess.STDOUT)
            proc = group.spawn(_in_netns(netns, [PEBBLE, "-config", str(workdir / "pebble-config.json"),
                                                 "-dnsserver", f"127.0.0.1:{dns}"]),
                               env={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", **env},
                               stdout=pebble_log, stderr=subprocess.STDOUT)
        finally:
            dns_log.close()
            pebble_log.close()
        directory = f"https://127.0.0.1:{listen}/dir"
        management = f"https://127.0.0.1:{mgmt}"

        def ready() -> bytes:
            if proc.poll() is not None:
                raise RuntimeError("pebble exited: " + (workdir / "pebble.log").read_text()[-2000:])
            _fetch(directory, self.listener_ca, netns)
            return _fetch(f"{management}/roots/0", self.listener_ca, netns)

        try:
            root = poll_until(ready, deadline, what="pebble's directory")
        except BaseException:
            group.stop_all()
            raise
        root_file = workdir / "root.pem"
        root_file.write_bytes(root)
        return Pebble(directory=directory, management=management, listener_ca=self.listener_ca,
                      root_pem=root, root_file=root_file, http_port=http_port, tls_port=tls_port,
                      workdir=workdir, netns=netns, group=group)

    def close(self, since: int = 0) -> None:
        """Stop the pebbles started since the ``since``-th start (all by default)."""
        for group in self._groups[since:]:
            group.stop_all()
        del self._groups[since:]


@pytest.fixture(scope="session")
def pebble_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PebbleFactory]:
    """The session's factory: the listener PKI is made once (skips when pebble is not installed)."""
    if not pebble_available():
        pytest.skip("pebble / pebble-challtestsrv not installed (Debian package 'pebble')")
    factory = PebbleFactory(tmp_path_factory.mktemp("pebble"))
    try:
        yield factory
    finally:
        with contextlib.suppress(Exception):
            factory.close()


@pytest.fixture
def pebble(pebble_session: PebbleFactory) -> Iterator[PebbleFactory]:
    """The pebble factory for one test: what the test started is stopped when it ends."""
    mark = len(pebble_session._groups)
    try:
        yield pebble_session
    finally:
        with contextlib.suppress(Exception):
            pebble_session.close(since=mark)
