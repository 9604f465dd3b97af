"""``basicAuth``: HTTP Basic authentication against htpasswd users, as Traefik's
``pkg/middlewares/auth/basic_auth.go`` (with ``go-http-auth``'s ``CheckSecret`` and ``RequireAuth``).

Build time: ``usersFile`` lines (trimmed; blank lines and ``#`` comments skipped) then ``users``
entries, each ``name:hash`` with exactly one ``:`` (a later entry for the same name wins, so
``users`` override the file); no user at all, an unreadable file or a malformed entry is a
:class:`~ferryman.errors.ConfigError`. Hashes, as htpasswd writes them:

* ``$2y$``/``$2b$``/``$2a$``/``$2x$`` -- bcrypt (the ``bcrypt`` package; ``$2x$`` is checked as
  ``$2b$``, as Go does; a password over 72 bytes never matches, as Go's ``bcrypt`` refuses it);
* ``{SHA}`` -- base64 of SHA-1, compared in constant time;
* anything else -- MD5-crypt with the magic found in the hash (``$apr1$`` from htpasswd, ``$1$``),
  implemented here; a hash that is not ``$magic$salt$digest`` (plain text, say) never matches.

Per request: ``Authorization: Basic base64(user:password)`` (first field line; scheme
case-insensitive; strict base64). A wrong or missing credential gets ``401`` with
``WWW-Authenticate: Basic realm="<realm>"`` (``traefik`` by default), ``Content-Type: text/plain``
and go-http-auth's body ``401 Unauthorized\\n``. An unknown user still costs one hash check against
the first user's hash (Traefik's timing-attack guard). On success ``headerField`` (if set) carries
the user name to the backend (replacing any value the client sent) and ``removeHeader`` drops
``Authorization``.

**Success cache (ferryman's addition).** bcrypt costs tens of milliseconds by design; Traefik pays it
on every request (it only merges concurrent identical checks). Here a successful check is remembered
per (user, password) in a small bounded table (:data:`CACHE_SIZE` entries per middleware, oldest
dropped first), keyed by a salted SHA-256 of the pair -- no password is kept in memory -- so a
keep-alive client with valid credentials pays bcrypt once. Failures are never cached; the table
lives as long as the built middleware, so a configuration change (new hashes) starts afresh.

**No blocking on the event loop.** A bcrypt check that is not cached runs in the loop's default
thread pool (``bcrypt`` releases the GIL) and the request continues from its completion callback
(ADR 0001: middlewares that wait schedule their own continuation); identical checks in flight share
one computation, like Traefik's ``singleflight``. A client that went away meanwhile is dropped.
Without a running loop (tests, tools) the check runs inline. MD5-crypt and SHA-1 are fast and always
run inline.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Callable, Sequence
from typing import Final

import bcrypt

from ferryman.dynamic.models import BasicAuth
from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange, Handler

__all__ = ["CACHE_SIZE", "BasicAuthHandler", "build_basic_auth", "check_secret", "load_users", "md5_crypt",
           "parse_basic_credentials", "read_users_file", "user_lines"]

#: Successful (user, password) checks remembered per middleware.
CACHE_SIZE: Final = 1024

_DEFAULT_REALM: Final = "traefik"
_UNAUTHORIZED_BODY: Final = b"401 Unauthorized\n"
_ITOA64: Final = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BCRYPT_PREFIXES: Final = (b"$2a$", b"$2b$", b"$2x$", b"$2y$")


# ------------------------------------------------------------------------------------ hashes


def md5_crypt(password: bytes, salt: bytes, magic: bytes = b"$apr1$") -> bytes:
    """MD5-crypt (Poul-Henning Kamp's; Apache's ``$apr1$`` only changes the magic string).

    Returns ``magic + salt + "$" + 22 characters``; the salt is cut to 8 bytes, as every
    implementation does.
    """
    salt = salt[:8]
    ctx = hashlib.md5(password + magic + salt)
    alternate = hashlib.md5(password + salt + password).digest()
    length = len(password)
    while length > 0:
        ctx.update(alternate[:min(16, length)])
        length -= 16
    i = len(password)
    while i:
        ctx.update(b"\x00" if i & 1 else password[:1])
        i >>= 1
    final = ctx.digest()
    for r in range(1000):
        step = hashlib.md5(password if r & 1 else final)
        if r % 3:
            step.update(salt)
        if r % 7:
            step.update(password)
        step.update(final if r & 1 else password)
        final = step.digest()
    out = bytearray()

    def to64(value: int, n: int) -> None:
        for _ in range(n):
            out.append(_ITOA64[value & 0x3F])
            value >>= 6

    for a, b, c in ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)):
        to64((final[a] << 16) | (final[b] << 8) | final[c], 4)
    to64(final[11], 2)
    return magic + salt + b"$" + bytes(out)


def _check_md5(password: bytes, secret: bytes) -> bool:
    parts = secret.split(b"$", 3)
    if len(parts) != 4:
        return False
    magic = b"$" + parts[1] + b"$"
    return hmac.compare_digest(secret, md5_crypt(password, parts[2], magic))


def _check_sha(password: bytes, secret: bytes) -> bool:
    digest = base64.b64encode(hashlib.sha1(password).digest())  # htpasswd {SHA}: SHA-1 by definition
    return hmac.compare_digest(secret[5:], digest)


def _check_bcrypt(password: bytes, secret: bytes) -> bool:
    if secret.startswith(b"$2x$"):
        secret = b"$2b$" + secret[4:]
    try:
        return bcrypt.checkpw(password, secret)
    except ValueError:  # malformed hash, or a password bcrypt refuses (> 72 bytes)
        return False


def is_bcrypt(secret: bytes) -> bool:
    return secret[:4] in _BCRYPT_PREFIXES


def check_secret(password: bytes, secret: bytes) -> bool:
    """go-http-auth's ``CheckSecret``: does ``password`` match the htpasswd ``secret``?"""
    if secret.startswith(b"{SHA}"):
        return _check_sha(password, secret)
    if is_bcrypt(secret):
        return _check_bcrypt(password, secret)
    return _check_md5(password, secret)


# ------------------------------------------------------------------------------------ users


def read_users_file(path: str, where: str) -> list[str]:
    """Traefik's ``getLinesFromFile``: trimmed lines, blanks and ``#`` comments skipped."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read usersFile {path!r}: {exc.strerror or exc}", path=where,
                          fix="point usersFile at a readable htpasswd file") from exc
    lines = []
    for raw in text.split("\n"):
        line = raw.strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def user_lines(users_file: str, users: Sequence[str], path: str) -> list[tuple[str, str]]:
    """Traefik's ``loadUsers``: ``(line, key path)`` of the file's lines, then of ``users``."""
    lines: list[tuple[str, str]] = []
    if users_file:
        lines.extend((line, f"{path}.usersFile") for line in read_users_file(users_file, f"{path}.usersFile"))
    lines.extend((entry, f"{path}.users[{i}]") for i, entry in enumerate(users))
    return lines


def load_users(config: BasicAuth, path: str) -> dict[str, bytes]:
    """Traefik's ``getUsers``: the file's lines, then ``users``; a later name wins."""
    users: dict[str, bytes] = {}
    for line, where in user_lines(config.users_file, config.users, path):
        parts = line.split(":")
        if len(parts) != 2:
            shown = parts[0] + ":..." if len(parts) > 1 else line[:20]
            raise ConfigError(f"error parsing BasicUser: {shown!r} is not name:hash", path=where,
                              fix="write each user as name:hash (htpasswd -nB name)")
        users[parts[0]] = parts[1].encode("utf-8", "surrogateescape")
    if not users:
        raise ConfigError(f"no users found in {config.users_file!r}" if config.users_file else "no users found",
                          path=path, fix="set users (name:hash) or usersFile")
    return users


def parse_basic_credentials(value: bytes) -> tuple[bytes, bytes] | None:
    """Go's ``Request.BasicAuth`` on an ``Authorization`` value: ``(user, password)`` or ``None``."""
    if len(value) < 6 or value[:6].lower() != b"basic ":
        return None
    data = value[6:]
    body = data.rstrip(b"=")
    if len(data) % 4 or len(data) - len(body) > 2:
        return None  # Go's StdEncoding wants exact padding
    try:
        decoded = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    return user, password


# ------------------------------------------------------------------------------------ handler


class BasicAuthHandler:
    """The built middleware (a :class:`~ferryman.http.exchange.Handler`)."""

    __slots__ = ("_cache", "_challenge", "_header_field", "_not_found", "_pending", "_remove", "_salt",
                 "_users", "name", "next")

    def __init__(self, name: str, next_handler: Handler, users: dict[str, bytes], realm: str,
                 header_field: str, remove_header: bool) -> None:
        self.name = name
        self.next = next_handler
        self._users = {user.encode("utf-8", "surrogateescape"): secret for user, secret in users.items()}
        self._not_found = next(iter(self._users.values()))
        self._challenge = ((b"WWW-Authenticate", f'Basic realm="{realm}"'.encode()),)
        self._header_field = header_field.lower().encode() if header_field else b""
        self._remove = remove_header
        self._salt = os.urandom(16)
        self._cache: dict[bytes, None] = {}
        self._pending: dict[bytes, list[Callable[[bool], None]]] = {}

    def _key(self, user: bytes, password: bytes, secret: bytes) -> bytes:
        return hashlib.sha256(self._salt + secret + b"\x00" + user + b"\x00" + password).digest()

    def _remember(self, key: bytes) -> None:
        cache = self._cache
        if len(cache) >= CACHE_SIZE:
            del cache[next(iter(cache))]
        cache[key] = None

    def handle(self, ex: Exchange) -> None:
        value = None
        for name, val in ex.headers:
            if name == b"authorization":
                value = val
                break
        creds = parse_basic_credentials(value) if value is not None else None
        if creds is None:
            self._reject(ex)
            return
        user, password = creds
        secret = self._users.get(user)
        key: bytes | None = None
        if secret is None:
            secret = self._not_found  # an unknown user costs the same as a known one, then fails
        else:
            key = self._key(user, password, secret)
            if key in self._cache:
                self._accept(ex, user)
                return
        if is_bcrypt(secret):
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is not None:
                self._check_in_thread(loop, ex, user, password, secret, key)
                return
        if check_secret(password, secret) and key is not None:
            self._remember(key)
            self._accept(ex, user)
        else:
            self._reject(ex)

    def _check_in_thread(self, loop: asyncio.AbstractEventLoop, ex: Exchange, user: bytes, password: bytes,
                         secret: bytes, key: bytes | None) -> None:
        """Hash in the default thread pool; continue the exchange from the completion callback.
        ``key`` is ``None`` for an unknown user (always rejected, never cached or shared)."""

        def resume(ok: bool) -> None:
            if ex.done:
                return  # the client went away while we were hashing
            if ok and key is not None:
                self._accept(ex, user)
            else:
                self._reject(ex)

        if key is not None:
            waiters = self._pending.get(key)
            if waiters is not None:  # the same check is already running: share its result
                waiters.append(resume)
                return
            self._pending[key] = [resume]

        def finished(future: asyncio.Future[bool]) -> None:
            ok = not future.cancelled() and future.exception() is None and future.result()
            if key is None:
                resume(False)
                return
            callbacks = self._pending.pop(key, [])
            if ok:
                self._remember(key)
            for callback in callbacks:
                callback(ok)

        loop.run_in_executor(None, check_secret, password, secret).add_done_callback(finished)

    def _accept(self, ex: Exchange, user: bytes) -> None:
        if ex.obs is not None:
            ex.obs_user = user.decode("utf-8", "replace")  # access log ClientUsername
        if self._header_field:
            ex.set_header(self._header_field, user)
        if self._remove:
            ex.remove_header(b"authorization")
        self.next.handle(ex)

    def _reject(self, ex: Exchange) -> None:
        ex.respond(401, self._challenge, _UNAUTHORIZED_BODY, content_type=b"text/plain")


def build_basic_auth(name: str, config: BasicAuth, next_handler: Handler) -> Handler:
    path = f"http.middlewares.{name}.basicAuth"
    users = load_users(config, path)
    return BasicAuthHandler(name, next_handler, users, config.realm or _DEFAULT_REALM, config.header_field,
                            config.remove_header)
