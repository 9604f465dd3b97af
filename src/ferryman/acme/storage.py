"""``acme.json``: Traefik's storage layout, written atomically, shareable between instances.

Layout (Traefik's ``StoredData`` per resolver name; ``[]byte`` values are base64 as Go's JSON)::

    {"<resolver>": {
       "Account": {"Email": "...", "Registration": {"body": {...}, "uri": "https://.../acct/1"},
                   "PrivateKey": "<base64 of the PKCS#1 DER RSA key>", "KeyType": "4096"},
       "Certificates": [{"domain": {"main": "example.com", "sans": ["www.example.com"]},
                         "certificate": "<base64 of the PEM chain>", "key": "<base64 of the PEM key>",
                         "Store": "default"}]}}

A user moving from Traefik keeps the file: account and certificates are reused, nothing is
re-issued. Other resolvers' entries (and keys ferryman does not know) are kept as they are.

* The file is created 0600; an existing file readable by group or others is refused with
  Traefik's message (``permissions 644 for acme.json are too open, please use 600``).
* Writes go to a temporary file in the same directory (0600), are fsynced, renamed over the file
  and the directory is fsynced: a crash leaves the old or the new file, never a truncated one.
* Several ferryman instances may share one file (beyond Traefik): every read-modify-write holds
  an exclusive ``flock`` on ``<file>.lock``; :meth:`AcmeStorage.locked` is also held while a
  certificate is issued, and the file is re-read under the lock first, so a second instance finds
  the first one's certificate instead of ordering its own.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["AcmeStorage", "StorageError", "StoredAccount", "StoredCert", "atomic_write"]


class StorageError(Exception):
    """The storage cannot be used (message names the file and the fix)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object) -> bytes:
    if not isinstance(value, str) or not value:
        return b""
    try:
        return base64.b64decode(value)
    except ValueError:
        return b""


@dataclass(frozen=True)
class StoredCert:
    main: str
    sans: tuple[str, ...]
    certificate: bytes  # PEM chain, leaf first
    key: bytes          # PEM private key
    store: str = "default"

    @property
    def domains(self) -> tuple[str, ...]:
        return (self.main, *self.sans)

    def to_json(self) -> dict[str, Any]:
        domain: dict[str, Any] = {"main": self.main}
        if self.sans:
            domain["sans"] = list(self.sans)
        return {"domain": domain, "certificate": _b64(self.certificate), "key": _b64(self.key),
                "Store": self.store}

    @classmethod
    def from_json(cls, obj: object) -> StoredCert | None:
        if not isinstance(obj, dict):
            return None
        domain = obj.get("domain") or {}
        main = domain.get("main", "") if isinstance(domain, dict) else ""
        sans = domain.get("sans") or [] if isinstance(domain, dict) else []
        cert, key = _unb64(obj.get("certificate")), _unb64(obj.get("key"))
        if not isinstance(main, str) or not main or not cert or not key:
            return None  # Traefik drops empty entries too
        return cls(main=main, sans=tuple(str(s) for s in sans if isinstance(s, str)), certificate=cert,
                   key=key, store=str(obj.get("Store") or "default"))


@dataclass(frozen=True)
class StoredAccount:
    email: str
    private_key: bytes  # DER (PKCS#1 for RSA, as Traefik writes it)
    key_type: str = "4096"
    registration: dict[str, Any] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        uri = self.registration.get("uri", "")
        return uri if isinstance(uri, str) else ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Email": self.email, "Registration": self.registration or None,
                               "PrivateKey": _b64(self.private_key), "KeyType": self.key_type}
        return out

    @classmethod
    def from_json(cls, obj: object) -> StoredAccount | None:
        if not isinstance(obj, dict):
            return None
        key = _unb64(obj.get("PrivateKey"))
        if not key:
            return None
        registration = obj.get("Registration")
        return cls(email=str(obj.get("Email") or ""), private_key=key, key_type=str(obj.get("KeyType") or ""),
                   registration=registration if isinstance(registration, dict) else {})


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Temp file in the same directory (``mode``), fsync, rename over ``path``, fsync the directory."""
    directory = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def check_private_file(path: Path, what: str = "") -> None:
    """Traefik's check: a secret file must not be readable by group or others."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        raise StorageError(f"permissions {mode:o} for {path} are too open, please use 600 "
                           f"(fix: chmod 600 {path}){what}")


class AcmeStorage:
    """One ``acme.json`` (shared by the resolvers that name it)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    def check(self) -> None:
        """Create the file (0600, empty) when missing; refuse it when its permissions are too open."""
        path = self.path
        if path.is_dir():
            raise StorageError(f"{path} is a directory (fix: point storage at a file, e.g. {path}/acme.json)")
        check_private_file(path)
        if not path.exists():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.close(fd)
            except FileExistsError:
                check_private_file(path)
            except OSError as exc:
                raise StorageError(f"cannot create {path}: {exc.strerror or exc}") from exc

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive lock shared with other processes using the same file (blocks)."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def read_all(self) -> dict[str, Any]:
        self.check()
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise StorageError(f"{self.path} is not valid JSON ({exc}); fix or remove it") from exc
        if not isinstance(data, dict):
            raise StorageError(f"{self.path}: expected a JSON object of resolvers")
        return data

    def load(self, resolver: str) -> tuple[StoredAccount | None, list[StoredCert]]:
        entry = self.read_all().get(resolver)
        if not isinstance(entry, dict):
            return None, []
        account = StoredAccount.from_json(entry.get("Account"))
        certs = [c for c in (StoredCert.from_json(o) for o in entry.get("Certificates") or []) if c is not None]
        return account, certs

    def update(self, resolver: str, change: Callable[[StoredAccount | None, list[StoredCert]],
                                                     tuple[StoredAccount | None, list[StoredCert]]],
               *, lock: bool = True) -> tuple[StoredAccount | None, list[StoredCert]]:
        """Read-modify-write of one resolver's entry (under the lock unless the caller holds it)."""
        ctx = self.locked() if lock else contextlib.nullcontext()
        with ctx:
            data = self.read_all()
            entry = data.get(resolver)
            entry = dict(entry) if isinstance(entry, dict) else {}
            account = StoredAccount.from_json(entry.get("Account"))
            certs = [c for c in (StoredCert.from_json(o) for o in entry.get("Certificates") or [])
                     if c is not None]
            account, certs = change(account, certs)
            entry["Account"] = account.to_json() if account is not None else None
            entry["Certificates"] = [c.to_json() for c in certs] or None
            data[resolver] = entry
            atomic_write(self.path, json.dumps(data, indent=2).encode() + b"\n")
            return account, certs
