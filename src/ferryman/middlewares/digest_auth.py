"""``digestAuth``: HTTP Digest authentication (RFC 2617, MD5, ``qop=auth``), as Traefik's
``pkg/middlewares/auth/digest_auth.go`` with its ``go-http-auth`` fork.

Build time: ``usersFile`` lines (trimmed; blank lines and ``#`` comments skipped) then ``users``,
each ``user:realm:HA1`` as ``htdigest`` writes them (``HA1 = MD5(user:realm:password)``); a line
that is not three ``:``-separated fields is a :class:`~ferryman.errors.ConfigError`. Only the users
of the middleware's ``realm`` (``traefik`` by default) can log in.

Per request, from ``Authorization: Digest ...``: ``opaque`` must be this middleware's (random per
middleware), ``algorithm`` ``MD5`` (assumed when absent), ``qop`` ``auth``; ``uri`` must be the
request target, or a path prefix of the request path; ``response`` must equal
``MD5(HA1:nonce:nc:cnonce:qop:MD5(method:uri))`` (constant-time compare). The nonce must be one this
middleware issued (the last :data:`CACHE_SIZE` + :data:`CACHE_TOLERANCE` are kept; the oldest
``2 * CACHE_TOLERANCE`` are dropped when over), and its nonce count must grow: a repeated count is
a replay (rejected), a smaller one an out-of-order request (rejected with ``stale="true"`` so the
client retries without prompting).

Any failure answers ``401`` with ``Content-Type: text/plain``, the body ``401 Unauthorized\\n`` and
``WWW-Authenticate: Digest realm="<realm>", nonce="<new nonce>", opaque="<opaque>",
[stale="true", ]algorithm="MD5", qop="auth"``. On success ``headerField`` (if set) carries the user
name to the backend and ``removeHeader`` drops ``Authorization``; no ``Authentication-Info`` is
added (Traefik does not either).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import time
from typing import Final

from ferryman.dynamic.models import DigestAuth
from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange, Handler
from ferryman.middlewares._go import GoURLError, parse_url, unescape
from ferryman.middlewares.basic_auth import user_lines

__all__ = ["CACHE_SIZE", "CACHE_TOLERANCE", "DigestAuthHandler", "build_digest_auth", "parse_pairs"]

CACHE_SIZE: Final = 1000
CACHE_TOLERANCE: Final = 100
_DEFAULT_REALM: Final = "traefik"
_BODY: Final = b"401 Unauthorized\n"
_HEX: Final = re.compile(r"0*[0-9a-fA-F]{1,16}")


def _h(data: str) -> str:
    return hashlib.md5(data.encode("utf-8", "surrogateescape")).hexdigest()  # RFC 2617 digest: MD5 by definition


def _random_key() -> str:
    return base64.b64encode(os.urandom(12)).decode()


def _parse_list(value: str) -> list[str]:
    """go-http-auth's ``ParseList`` (urllib2's ``parse_http_list``)."""
    out: list[str] = []
    part: list[str] = []
    escape = quote = False
    for ch in value:
        if escape:
            part.append(ch)
            escape = False
        elif quote:
            if ch == "\\":
                escape = True
            else:
                if ch == '"':
                    quote = False
                part.append(ch)
        elif ch == ",":
            out.append("".join(part).strip())
            part = []
        elif ch == '"':
            quote = True
            part.append(ch)
        else:
            part.append(ch)
    if part:
        out.append("".join(part).strip())
    return out


def parse_pairs(value: str) -> dict[str, str]:
    """go-http-auth's ``ParsePairs``: ``k=v`` items, values unquoted."""
    pairs: dict[str, str] = {}
    for item in _parse_list(value.strip()):
        key, sep, val = item.partition("=")
        if not sep or not val:
            pairs[key] = ""
            continue
        if val[0] == '"' and val[-1] == '"':
            val = val[1:-1]
        pairs[key] = val
    return pairs


class _Client:
    __slots__ = ("last_seen", "nc")

    def __init__(self) -> None:
        self.nc = 0
        self.last_seen = time.monotonic_ns()


class DigestAuthHandler:
    """The built middleware (a :class:`~ferryman.http.exchange.Handler`)."""

    __slots__ = ("_clients", "_header_field", "_opaque", "_realm", "_remove", "_users", "name", "next")

    def __init__(self, name: str, next_handler: Handler, users: dict[str, str], realm: str, header_field: str,
                 remove_header: bool) -> None:
        self.name = name
        self.next = next_handler
        self._users = users  # "user:realm" -> HA1
        self._realm = realm
        self._opaque = _random_key()
        self._header_field = header_field.lower().encode() if header_field else b""
        self._remove = remove_header
        self._clients: dict[str, _Client] = {}

    def check(self, ex: Exchange) -> tuple[str, bool]:
        """``(user, stale)``: the authenticated user name or ``""``. The access log's
        ``ClientUsername`` gets the user name the client gave, accepted or not (as Traefik)."""
        value = None
        for name, val in ex.headers:
            if name == b"authorization":
                value = val.decode("utf-8", "surrogateescape")
                break
        if value is None:
            return "", False
        scheme, sep, rest = value.partition(" ")
        if not sep or scheme != "Digest":
            return "", False
        auth = parse_pairs(rest)
        if ex.obs is not None and auth.get("username"):
            ex.obs_user = auth["username"]
        auth.setdefault("algorithm", "MD5")
        if auth.get("opaque", "") != self._opaque or auth["algorithm"] != "MD5" or auth.get("qop", "") != "auth":
            return "", False
        uri = auth.get("uri", "")
        if ex.target.decode("utf-8", "surrogateescape") != uri:
            try:
                want = parse_url(uri.encode("utf-8", "surrogateescape")).path
                path = unescape(ex.path)
            except GoURLError:
                return "", False
            if len(want) > len(path) or not path.startswith(want):
                return "", False
        username = auth.get("username", "")
        ha1 = self._users.get(f"{username}:{self._realm}", "")
        method = ex.method.decode("latin-1")
        ha2 = _h(f"{method}:{uri}")
        nonce, nc_text, cnonce = auth.get("nonce", ""), auth.get("nc", ""), auth.get("cnonce", "")
        kd = _h(":".join((ha1, nonce, nc_text, cnonce, "auth", ha2)))
        if not hmac.compare_digest(kd.encode(), auth.get("response", "").encode("utf-8", "surrogateescape")):
            return "", False
        if not _HEX.fullmatch(nc_text):
            return "", False  # Go's strconv.ParseUint(nc, 16, 64) refuses it
        nc = int(nc_text, 16)
        client = self._clients.get(nonce)
        if client is None:
            return "", False
        if client.nc:
            if nc == client.nc:
                return "", False  # replay
            if nc < client.nc:
                return "", True  # out of order: stale
        client.nc = nc
        client.last_seen = time.monotonic_ns()
        return username, False

    def handle(self, ex: Exchange) -> None:
        user, stale = self.check(ex)
        if not user:
            self._challenge(ex, stale)
            return
        if self._header_field:
            ex.set_header(self._header_field, user.encode("utf-8", "surrogateescape"))
        if self._remove:
            ex.remove_header(b"authorization")
        self.next.handle(ex)

    def _challenge(self, ex: Exchange, stale: bool) -> None:
        clients = self._clients
        if len(clients) > CACHE_SIZE + CACHE_TOLERANCE:
            for nonce in sorted(clients, key=lambda n: clients[n].last_seen)[:CACHE_TOLERANCE * 2]:
                del clients[nonce]
        nonce = _random_key()
        clients[nonce] = _Client()
        value = f'Digest realm="{self._realm}", nonce="{nonce}", opaque="{self._opaque}", '
        if stale:
            value += 'stale="true", '
        value += 'algorithm="MD5", qop="auth"'
        ex.respond(401, ((b"WWW-Authenticate", value.encode("utf-8", "surrogateescape")),), _BODY,
                   content_type=b"text/plain")


def load_digest_users(config: DigestAuth, path: str) -> dict[str, str]:
    """Traefik's ``getUsers`` with ``digestUserParser``: ``user:realm`` -> HA1; a later entry wins."""
    users: dict[str, str] = {}
    for line, where in user_lines(config.users_file, config.users, path):
        parts = line.split(":")
        if len(parts) != 3:
            raise ConfigError(f"error parsing DigestUser: {parts[0]!r} is not user:realm:hash", path=where,
                              fix="write each user as user:realm:md5(user:realm:password) (htdigest)")
        users[f"{parts[0]}:{parts[1]}"] = parts[2]
    return users


def build_digest_auth(name: str, config: DigestAuth, next_handler: Handler) -> Handler:
    path = f"http.middlewares.{name}.digestAuth"
    users = load_digest_users(config, path)
    return DigestAuthHandler(name, next_handler, users, config.realm or _DEFAULT_REALM, config.header_field,
                             config.remove_header)
