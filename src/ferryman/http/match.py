"""The ``MatchRequest`` view of an :class:`~ferryman.http.exchange.Exchange` (see docs/CONTRACTS.md).

Fields are ``str`` and computed on first access only: a Host-only rule never decodes the path.
The canonical host is cached per connection (keyed by the raw Host bytes), so keep-alive
connections canonicalize once. Canonicalization comes from :mod:`ferryman.rules`
(``canonical_host``, ``routing_path``); local fallbacks with the same semantics are used while
that module does not provide them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ferryman.http.exchange import Exchange

__all__ = ["MatchView", "canonical_host", "routing_path"]

# Traefik's reservedCharacters (pkg/muxer/http/mux.go): kept percent-encoded in the routing path.
_RESERVED: Final = frozenset(b":/?#[]@!$&'()*+,;=%")
_HEXDIGITS: Final = frozenset(b"0123456789ABCDEFabcdef")


def _fallback_canonical_host(raw: str) -> str:
    host = raw
    if host.startswith("["):
        end = host.find("]")
        if end > 0:
            host = host[1:end]
    else:
        head, sep, _port = host.rpartition(":")
        if sep and ":" not in head:
            host = head
    if host.endswith("."):
        host = host[:-1]
    return host.lower()


def _fallback_routing_path(raw_path: str) -> str:
    if "%" not in raw_path:
        return raw_path
    data = raw_path.encode("utf-8", "surrogateescape")
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        c = data[i]
        if c == 0x25 and i + 2 < n and data[i + 1] in _HEXDIGITS and data[i + 2] in _HEXDIGITS:
            value = int(data[i + 1:i + 3], 16)
            if value in _RESERVED:
                out += data[i:i + 3].upper()
            else:
                out.append(value)
            i += 3
            continue
        out.append(c)
        i += 1
    return out.decode("utf-8", "surrogateescape")


def _load() -> tuple[Callable[[str], str], Callable[[str], str]]:
    try:
        rules = importlib.import_module("ferryman.rules")
    except ImportError:  # pragma: no cover - the package always exists
        return _fallback_canonical_host, _fallback_routing_path
    ch = getattr(rules, "canonical_host", None)
    rp = getattr(rules, "routing_path", None)
    return (ch if callable(ch) else _fallback_canonical_host,
            rp if callable(rp) else _fallback_routing_path)


canonical_host, routing_path = _load()

_METHODS: Final[dict[bytes, str]] = {
    m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE")
}


class MatchView:
    """``method``/``host``/``path``/``query``/``client_ip`` and ``header_values(name)`` as ``str``.

    ``host`` is computed up front (every routing table needs it; cached per connection); the other
    fields on first access.
    """

    __slots__ = ("_ex", "_path", "host")

    def __init__(self, ex: Exchange) -> None:
        self.bind(ex)

    def bind(self, ex: Exchange) -> None:
        """Point this view at ``ex`` (the server reuses one view per connection for routing)."""
        self._ex = ex
        self._path: str | None = None
        raw = ex.authority
        conn = ex.conn
        if conn.host_raw == raw:
            self.host = conn.host_canon
        else:
            host = self.host = canonical_host(raw.decode("utf-8", "surrogateescape"))
            conn.host_raw = raw
            conn.host_canon = host

    @property
    def method(self) -> str:
        raw = self._ex.method
        return _METHODS.get(raw) or raw.decode("latin-1")

    @property
    def path(self) -> str:
        path = self._path
        if path is None:
            path = self._path = routing_path(self._ex.path.decode("utf-8", "surrogateescape"))
        return path

    @property
    def query(self) -> str:
        query = self._ex.query
        return "" if query is None else query.decode("utf-8", "surrogateescape")

    @property
    def client_ip(self) -> str:
        return self._ex.conn.client_ip

    def header_values(self, name: str) -> list[str]:
        """Values of header ``name`` (any case), including the X-Forwarded-* Traefik would set."""
        key = name.lower().encode("latin-1")
        if key == b"host":
            return [self._ex.authority.decode("utf-8", "surrogateescape")]
        return [v.decode("utf-8", "surrogateescape") for v in self._ex.header_values(key)]
