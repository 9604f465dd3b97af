"""acme.json: Traefik's layout, permissions, atomic writes, the shared lock."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import stat
import threading
from pathlib import Path

import pytest

from ferryman.acme.storage import AcmeStorage, StorageError, StoredAccount, StoredCert, atomic_write

TRAEFIK_FILE = {
    "le": {
        "Account": {
            "Email": "ops@example.com",
            "Registration": {"body": {"status": "valid", "contact": ["mailto:ops@example.com"]},
                             "uri": "https://acme.example/acme/acct/1"},
            "PrivateKey": base64.b64encode(b"DER").decode(),
            "KeyType": "4096",
        },
        "Certificates": [
            {"domain": {"main": "example.com", "sans": ["www.example.com"]},
             "certificate": base64.b64encode(b"-----BEGIN CERTIFICATE-----\n").decode(),
             "key": base64.b64encode(b"-----BEGIN PRIVATE KEY-----\n").decode(), "Store": "default"},
            {"domain": {"main": "empty.example"}, "certificate": "", "key": "", "Store": "default"},
        ],
    },
    "other": {"Account": None, "Certificates": None, "Unknown": 1},
}


def _write(path: Path, data: object, mode: int = 0o600) -> None:
    path.write_text(json.dumps(data))
    os.chmod(path, mode)


def test_reads_traefiks_file_and_drops_empty_certificates(tmp_path: Path) -> None:
    path = tmp_path / "acme.json"
    _write(path, TRAEFIK_FILE)
    account, certs = AcmeStorage(path).load("le")
    assert account is not None
    assert account.email == "ops@example.com" and account.private_key == b"DER" and account.key_type == "4096"
    assert account.uri == "https://acme.example/acme/acct/1"
    assert [c.domains for c in certs] == [("example.com", "www.example.com")]
    assert certs[0].certificate.startswith(b"-----BEGIN CERTIFICATE-----")
    assert AcmeStorage(path).load("missing") == (None, [])


def test_update_keeps_other_resolvers_and_writes_traefiks_layout(tmp_path: Path) -> None:
    path = tmp_path / "acme.json"
    _write(path, TRAEFIK_FILE)
    new = StoredCert(main="a.example", sans=(), certificate=b"C", key=b"K")
    AcmeStorage(path).update("le", lambda acc, certs: (acc, [*certs, new]))
    data = json.loads(path.read_text())
    assert data["other"] == {"Account": None, "Certificates": None, "Unknown": 1}
    assert data["le"]["Account"]["Email"] == "ops@example.com"
    assert data["le"]["Certificates"][-1] == {"domain": {"main": "a.example"}, "certificate": "Qw==",
                                              "key": "Sw==", "Store": "default"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_created_0600_and_refused_when_too_open(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "acme.json"
    AcmeStorage(path).check()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_bytes() == b""
    os.chmod(path, 0o644)
    with pytest.raises(StorageError, match=r"permissions 644 for .*acme.json are too open, please use 600"):
        AcmeStorage(path).load("le")


def test_invalid_json_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "acme.json"
    _write(path, "x")
    path.write_text("{not json")
    with pytest.raises(StorageError, match="not valid JSON"):
        AcmeStorage(path).load("le")


def test_atomic_write_never_leaves_a_truncated_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "acme.json"
    atomic_write(path, b'{"old": 1}')
    # a crash between writing the temporary file and the rename (the one fault not causable for real)
    def crash(src: str, dst: str) -> None:
        raise OSError("simulated crash before rename")
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        atomic_write(path, b'{"new": 2}' * 1000)
    assert path.read_bytes() == b'{"old": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acme.json"]  # temporary file removed


def test_the_lock_serializes_instances(tmp_path: Path) -> None:
    storage = AcmeStorage(tmp_path / "acme.json")
    storage.check()
    fd = os.open(storage.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another process's lock (flock is per open file)
    done = threading.Event()

    def writer() -> None:
        storage.update("le", lambda acc, certs: (StoredAccount(email="b", private_key=b"k"), certs))
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert not done.wait(0.3)  # blocked behind the lock
    os.close(fd)
    assert done.wait(5)
    thread.join()
    account, _ = storage.load("le")
    assert account is not None and account.email == "b"
