"""ACME against a real CA (pebble): issuance with HTTP-01 and TLS-ALPN-01, acme.json, restarts,
renewals and failures, with ferryman's real entry points answering pebble's validation."""

from __future__ import annotations

import base64
import datetime
import fcntl
import http.client
import json
import os
import ssl
import stat
from collections.abc import Callable
from pathlib import Path

from cryptography import x509

from ferryman.acme.storage import AcmeStorage, StoredCert
from tests.integration.conftest import StartFerryman
from tests.integration.tls.pki import CA, Pair
from tests.support.acme import acme_resolver, curl_https, dynamic_https, leaf_of, served_chain, wait_https
from tests.support.pebble import PebbleFactory
from tests.support.procs import free_port, http_request, poll_until


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
    assert entry["Account"]["Registration"]["body"] == {"status": "valid", "contact": ["mailto:ops@example.com"]}
    [cert] = entry["Certificates"]
    assert cert["domain"] == {"main": "example.com", "sans": ["www.example.com"]}
    assert cert["Store"] == "default"
    obtained = fm.wait_for(lambda e: e.get("event") == "certificate.obtained")
    assert obtained["domains"] == ["example.com", "www.example.com"] and obtained["resolver"] == "le"


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
    fm.wait_for(lambda e: e.get("event") == "certificate.obtained" and e.get("domains") == ["alpn.example.net"])
    fm.stop()

    again = ferryman(static, dynamic, env=ca.env)
    again.wait_for(lambda e: "1 certificate(s) loaded from storage" in str(e.get("message")))
    wait_https("alpn.example.net", websecure, ca.root_file, expect="Hello from alpn")
    assert leaf_of(served_chain(websecure, "alpn.example.net")).serial_number == leaf_of(first).serial_number
    assert not any("ordering a certificate" in str(e.get("message")) for e in again.lines)


def _store_cert(storage: Path, resolver: str, pair: Pair, domains: tuple[str, ...], *, lock: bool = True) -> None:
    cert = StoredCert(main=domains[0], sans=domains[1:], certificate=pair.cert_pem.encode(),
                      key=pair.key_pem.encode())
    AcmeStorage(storage).update(resolver, lambda acc, certs: (acc, [*certs, cert]), lock=lock)


def test_renewal_swaps_the_certificate_live_without_dropping_connections(
        pebble: PebbleFactory, ferryman: StartFerryman, hello: Callable[[str], int], tmp_path: Path) -> None:
    web, websecure = free_port(), free_port()
    ca = pebble.start(http_port=web, tls_port=websecure)
    storage = tmp_path / "acme.json"
    # a certificate in its last 10 minutes: with certificatesDuration 1 (hour) it is due now
    old = CA("previous CA").issue("renew.example.org", dns=("renew.example.org",),
                                  valid=(datetime.timedelta(minutes=-50), datetime.timedelta(minutes=10)))
    _store_cert(storage, "le", old, ("renew.example.org",))
    fm = ferryman(_static(web, websecure, {"le": acme_resolver(ca.directory, storage, certificatesDuration=1)}),
                  dynamic_https("Host(`renew.example.org`)", hello("renewed")), env=ca.env, start=False)
    fm.start(wait_config=False)
    # a keep-alive connection opened before the swap (whichever certificate it got)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", websecure, context=ctx, timeout=10)
    poll_until(lambda: _get(conn, "renew.example.org") == "Hello from renewed\n", 20, what="the first HTTPS answer")
    sock = conn.sock
    renewed = fm.wait_for(lambda e: e.get("event") == "certificate.renewed", 60)
    assert renewed["domains"] == ["renew.example.org"]
    # the same connection still works after the swap
    assert _get(conn, "renew.example.org") == "Hello from renewed\n"
    assert conn.sock is sock  # not reconnected
    conn.close()
    wait_https("renew.example.org", websecure, ca.root_file, expect="Hello from renewed")
    ca.verify_chain(served_chain(websecure, "renew.example.org"), "renew.example.org")
    [stored] = json.loads(storage.read_text())["le"]["Certificates"]
    leaf = x509.load_pem_x509_certificate(base64.b64decode(stored["certificate"]))
    assert leaf.issuer != x509.load_pem_x509_certificate(old.cert_pem.encode()).issuer  # pebble's now


def _get(conn: http.client.HTTPSConnection, host: str) -> str:
    try:
        conn.request("GET", "/", headers={"Host": host})
        return conn.getresponse().read().decode()
    except (OSError, http.client.HTTPException):
        conn.close()  # the next request reconnects
        raise


def test_acme_json_too_open_is_refused_and_other_routers_keep_serving(
        ferryman: StartFerryman, hello: Callable[[str], int], tmp_path: Path) -> None:
    storage = tmp_path / "acme.json"
    storage.write_text("{}")
    os.chmod(storage, 0o644)
    web, websecure = free_port(), free_port()
    dynamic = dynamic_https("Host(`secure.example.com`)", hello("secure"))
    dynamic["http"]["routers"]["plain"] = {"rule": "Host(`plain.example.com`)", "entryPoints": ["web"],
                                           "service": "app"}
    fm = ferryman(_static(web, websecure, {"le": acme_resolver("https://127.0.0.1:9/dir", storage)}), dynamic)
    refused = fm.wait_for(lambda e: "cannot be used" in str(e.get("message")))
    assert f"permissions 644 for {storage} are too open, please use 600" in refused["message"]
    status, _, body = http_request("127.0.0.1", web, "/", headers={"Host": "plain.example.com"})
    assert (status, body) == (200, b"Hello from secure\n")
    leaf = leaf_of(served_chain(websecure, "secure.example.com"))
    assert leaf.subject.rfc4514_string() == "CN=TRAEFIK DEFAULT CERT"  # the default certificate serves
    assert stat.S_IMODE(os.stat(storage).st_mode) == 0o644  # left as it is


def test_an_unreachable_ca_backs_off_while_other_routers_keep_serving(
        ferryman: StartFerryman, hello: Callable[[str], int], tmp_path: Path) -> None:
    web, websecure = free_port(), free_port()
    closed = free_port()
    dynamic = dynamic_https("Host(`down.example.com`)", hello("other"))
    dynamic["http"]["routers"]["plain"] = {"rule": "Host(`plain.example.com`)", "entryPoints": ["web"],
                                           "service": "app"}
    static = _static(web, websecure, {"le": acme_resolver(f"https://127.0.0.1:{closed}/dir", tmp_path / "acme.json")})
    static["entryPoints"]["traefik"] = {"address": "127.0.0.1:0"}  # type: ignore[index]
    static["api"] = {"insecure": True}
    fm = ferryman(static, dynamic)
    api = fm.ports["traefik"]
    first = fm.wait_for(lambda e: e.get("event") == "certificate.failed", 30)
    assert first["retries"] == 1 and 5 <= first["retryIn"] <= 6
    assert "cannot get the ACME directory" in first["error"] and first["domains"] == ["down.example.com"]
    # beyond Traefik (which only logs it): the API shows the router as a warning with the reason
    router = json.loads(http_request("127.0.0.1", api, "/api/http/routers/app@file")[2])
    assert router["status"] == "warning"
    [problem] = router["error"]
    assert problem.startswith('certificate resolver "le": cannot obtain a certificate for down.example.com: ')
    assert "cannot get the ACME directory" in problem and problem.endswith("(the default certificate is served)")
    overview = json.loads(http_request("127.0.0.1", api, "/api/overview")[2])
    assert overview["http"]["routers"]["warnings"] == 1 and overview["http"]["routers"]["errors"] == 0
    plain = json.loads(http_request("127.0.0.1", api, "/api/http/routers/plain@file")[2])
    assert plain["status"] == "enabled" and "error" not in plain
    assert http_request("127.0.0.1", web, "/", headers={"Host": "plain.example.com"})[0] == 200
    second = fm.wait_for(lambda e: e.get("event") == "certificate.failed" and e.get("retries") == 2, 30)
    assert 10 <= second["retryIn"] <= 12
    assert fm.proc is not None and fm.proc.poll() is None  # never crashes
    assert leaf_of(served_chain(websecure, "down.example.com")).subject.rfc4514_string() == "CN=TRAEFIK DEFAULT CERT"


def _waiting_for_flock(pid: int) -> bool:
    """/proc/locks lists blocked waiters as '-> ... FLOCK ... <pid> ...'."""
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields and "FLOCK" in fields:
            rest = fields[fields.index("->") + 1:]
            if len(rest) > 3 and rest[3] == str(pid):
                return True
    return False


def test_instances_sharing_acme_json_reuse_each_others_certificates(
        ferryman: StartFerryman, hello: Callable[[str], int], tmp_path: Path) -> None:
    storage = tmp_path / "acme.json"
    AcmeStorage(storage).check()
    lock = os.open(storage.with_name("acme.json.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # "another instance" is issuing
        web, websecure = free_port(), free_port()
        closed = free_port()  # this instance's CA is unreachable: it can only reuse
        fm = ferryman(_static(web, websecure, {"le": acme_resolver(f"https://127.0.0.1:{closed}/dir", storage)}),
                      dynamic_https("Host(`shared.example.com`)", hello("shared")))
        assert fm.proc is not None
        pid = fm.proc.pid
        poll_until(lambda: _waiting_for_flock(pid), 20, what="ferryman waiting for the storage lock")
        theirs = CA("other instance's CA").issue("shared.example.com", dns=("shared.example.com",))
        _store_cert(storage, "le", theirs, ("shared.example.com",), lock=False)
    finally:
        os.close(lock)
    fm.wait_for(lambda e: "reused the stored certificate for shared.example.com" in str(e.get("message")), 20)
    expected = x509.load_pem_x509_certificate(theirs.cert_pem.encode()).serial_number
    poll_until(lambda: leaf_of(served_chain(websecure, "shared.example.com")).serial_number == expected, 20,
               what="the shared certificate to be served")
    assert not any(e.get("event") == "certificate.failed" for e in fm.lines)


def test_preferred_chain_picks_the_alternate_root(
        pebble: PebbleFactory, ferryman: StartFerryman, hello: Callable[[str], int], tmp_path: Path) -> None:
    web, websecure = free_port(), free_port()
    ca = pebble.start(http_port=web, tls_port=websecure, env={"PEBBLE_ALTERNATE_ROOTS": "1"})
    alternate = tmp_path / "root1.pem"
    alternate.write_bytes(ca.fetch_root(1))
    alternate_cn = x509.load_pem_x509_certificate(alternate.read_bytes()).subject.get_attributes_for_oid(
        x509.NameOID.COMMON_NAME)[0].value
    fm = ferryman(_static(web, websecure, {"le": acme_resolver(ca.directory, tmp_path / "acme.json",
                                                               preferredChain=alternate_cn)}),
                  dynamic_https("Host(`chain.example.com`)", hello("chain")), env=ca.env)
    wait_https("chain.example.com", websecure, alternate, expect="Hello from chain")
    fm.wait_for(lambda e: e.get("event") == "certificate.obtained")
    ca.verify_chain(served_chain(websecure, "chain.example.com"), "chain.example.com", root_file=alternate)
    assert curl_https("chain.example.com", websecure, ca.root_file).returncode != 0  # not the default chain


def test_external_account_binding(
        pebble: PebbleFactory, ferryman: StartFerryman, hello: Callable[[str], int], tmp_path: Path) -> None:
    web, websecure = free_port(), free_port()
    hmac = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    ca = pebble.start(http_port=web, tls_port=websecure, eab_keys={"kid-1": hmac})
    dynamic = dynamic_https("Host(`eab.example.com`)", hello("eab"))
    dynamic["http"]["routers"]["noeab"] = {"rule": "Host(`noeab.example.com`)", "entryPoints": ["websecure"],
                                           "service": "app", "tls": {"certResolver": "noeab"}}
    fm = ferryman(_static(web, websecure, {
        "le": acme_resolver(ca.directory, tmp_path / "acme.json", eab={"kid": "kid-1", "hmacEncoded": hmac}),
        "noeab": acme_resolver(ca.directory, tmp_path / "acme.json")}), dynamic, env=ca.env)
    wait_https("eab.example.com", websecure, ca.root_file, expect="Hello from eab")
    refused = fm.wait_for(lambda e: e.get("event") == "certificate.failed" and e.get("resolver") == "noeab", 30)
    assert "external" in refused["error"].lower()


def test_a_file_certificate_covering_a_routers_hosts_means_no_order(
        pebble: PebbleFactory, ferryman: StartFerryman, hello: Callable[[str], int], tmp_path: Path) -> None:
    """As Traefik: hosts covered by a certificate of the TLS store (exactly or by a wildcard) are
    not ordered; a router whose host is not covered still gets its certificate."""
    web, websecure = free_port(), free_port()
    ca = pebble.start(http_port=web, tls_port=websecure)
    user = CA("user CA").issue("covered.example.com", dns=("covered.example.com", "*.wild.example.com"))
    cert, key = user.write(tmp_path, "user")
    dynamic = dynamic_https("Host(`covered.example.com`) || Host(`a.wild.example.com`)", hello("app"))
    dynamic["http"]["routers"]["other"] = {"rule": "Host(`other.example.com`)", "entryPoints": ["websecure"],
                                           "service": "app", "tls": {"certResolver": "le"}}
    dynamic["tls"] = {"certificates": [{"certFile": str(cert), "keyFile": str(key)}]}
    storage = tmp_path / "acme.json"
    fm = ferryman(_static(web, websecure, {"le": acme_resolver(ca.directory, storage)}), dynamic, env=ca.env)
    obtained = fm.wait_for(lambda e: e.get("event") == "certificate.obtained")
    assert obtained["domains"] == ["other.example.com"]
    wait_https("other.example.com", websecure, ca.root_file, expect="Hello from app")
    ca.verify_chain(served_chain(websecure, "other.example.com"), "other.example.com")
    skipped = fm.wait_for(lambda e: "no certificate to order for" in str(e.get("message")))
    assert "covered.example.com, a.wild.example.com (routers app@file)" in skipped["message"]
    serial = x509.load_pem_x509_certificate(user.cert_pem.encode()).serial_number
    for host in ("covered.example.com", "a.wild.example.com"):
        assert leaf_of(served_chain(websecure, host)).serial_number == serial
    ordered = [str(e.get("message")) for e in fm.lines if "ordering a certificate" in str(e.get("message"))]
    assert len(ordered) == 1 and "other.example.com" in ordered[0]
    [stored] = json.loads(storage.read_text())["le"]["Certificates"]
    assert stored["domain"] == {"main": "other.example.com"}
