"""The request-side values rules match against: canonical host, routing path, client IP, query.

These run once per request (``canonical_host``, ``routing_path``) or per matcher evaluation
(``query_values``, ``parse_client_ip``), so each has a fast path for the common input.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from functools import lru_cache

from ferryman.errors import ProtocolError

# Traefik keeps these percent-encoded in the routing path (RFC 3986 gen-delims, sub-delims and '%'),
# see ``reservedCharacters`` in pkg/muxer/http/mux.go.
_RESERVED = frozenset({"3A", "2F", "3F", "23", "5B", "5D", "40", "21", "24", "26", "27", "28", "29",
                       "2A", "2B", "2C", "3B", "3D", "25"})
_HEX = frozenset("0123456789abcdefABCDEF")


def canonical_host(raw: str) -> str:
    """The host that ``Host``/``HostRegexp`` match: lower-case, no port, no ``[]``, no trailing dot.

    Follows Traefik's request decorator (``parseHost`` then ``CanonicalDomain``: split off the port
    the way Go's ``net.SplitHostPort`` does, lower-case, trim spaces) and then drops one trailing
    dot, which the ``Host`` matcher tolerates on either side. ``"Example.COM:8080"`` →
    ``"example.com"``, ``"[::1]:443"`` → ``"::1"``, ``"10::10"`` (bare IPv6) stays as is.
    """
    if ":" not in raw and raw[-1:] != "." and raw.lower() == raw and raw.strip() == raw:
        return raw  # already canonical: the common case costs four cheap checks
    host = raw.lower()
    if ":" in host:
        host = _strip_port(host)
    host = host.strip()
    if host[-1:] == ".":
        host = host[:-1]
    return host


def _strip_port(addr: str) -> str:
    """Traefik's ``parseHost``: the host part of ``addr``, or ``addr`` when it does not split."""
    if addr.startswith("["):
        end = addr.find("]")
        if end >= 0 and end + 1 < len(addr) and addr[end + 1] == ":" \
                and "[" not in addr[1:] and "]" not in addr[end + 1:]:
            return addr[1:end]
        if addr.endswith("]"):
            return addr[1:-1]
        return addr
    i = addr.rfind(":")
    host = addr[:i]
    if ":" in host or "[" in addr or "]" in addr:
        return addr
    return host


def routing_path(raw_path: str) -> str:
    """The path ``Path``/``PathPrefix``/``PathRegexp`` match: reserved escapes kept, others decoded.

    ``%2F``, ``%3F``, ``%23``, ``%25`` and the other RFC 3986 reserved characters stay encoded (with
    upper-case hex, so ``%2f`` becomes ``%2F``); every other ``%XX`` is decoded, so
    ``PathPrefix(`/foo bar`)`` matches ``/foo%20bar``. ``raw_path`` is the path part of the request
    target, without the query. A malformed escape (``%zz``, a ``%`` near the end) raises
    :class:`~ferryman.errors.ProtocolError` (400), as Go's URL parser does.

    Deliberate difference: Traefik keeps only *upper-case* reserved escapes encoded and decodes
    ``%2f`` to ``/``; we treat both cases alike so an encoded slash never becomes a separator.
    """
    if "%" not in raw_path:
        return raw_path
    parts = raw_path.split("%")
    out = bytearray(parts[0].encode("utf-8", "surrogateescape"))
    for part in parts[1:]:
        hx = part[:2]
        if len(hx) != 2 or hx[0] not in _HEX or hx[1] not in _HEX:
            raise ProtocolError(f"invalid percent-encoding in request path {raw_path!r}", 400)
        upper = hx.upper()
        if upper in _RESERVED:
            out += b"%" + upper.encode("ascii")
        else:
            out.append(int(hx, 16))
        if len(part) > 2:
            out += part[2:].encode("utf-8", "surrogateescape")
    return out.decode("utf-8", "surrogateescape")


def _unescape_query(text: str) -> str | None:
    """Go's ``url.QueryUnescape``: ``+`` is a space, ``%XX`` a byte; ``None`` when malformed."""
    if "%" not in text:
        return text.replace("+", " ") if "+" in text else text
    parts = text.replace("+", " ").split("%")
    out = bytearray(parts[0].encode("utf-8", "surrogateescape"))
    for part in parts[1:]:
        hx = part[:2]
        if len(hx) != 2 or hx[0] not in _HEX or hx[1] not in _HEX:
            return None
        out.append(int(hx, 16))
        if len(part) > 2:
            out += part[2:].encode("utf-8", "surrogateescape")
    return out.decode("utf-8", "surrogateescape")


def query_values(raw_query: str, key: str) -> Iterator[str]:
    """The values of ``key`` in ``raw_query``, in order, as Go's ``url.ParseQuery`` yields them.

    Pairs are separated by ``&``; a pair containing ``;`` or a malformed escape is skipped (Go
    reports an error for it and ``URL.Query()`` drops it); keys and values are unescaped.
    """
    if not raw_query:
        return
    for pair in raw_query.split("&"):
        if not pair or ";" in pair:
            continue
        name, _, value = pair.partition("=")
        if "%" in name or "+" in name:
            if _unescape_query(name) != key:
                continue
        elif name != key:
            continue
        unescaped = _unescape_query(value)
        if unescaped is not None:
            yield unescaped


def client_host(remote_addr: str) -> str:
    """The host part of ``ip:port`` / ``[v6]:port``, or the whole string when it does not split.

    This is Traefik's ``RemoteAddrStrategy`` (Go ``net.SplitHostPort``) for callers that only have
    a peer address with its port; ``MatchRequest.client_ip`` is already the result.
    """
    if ":" not in remote_addr:
        return remote_addr
    if remote_addr.startswith("["):
        end = remote_addr.find("]")
        if end >= 0 and end + 1 < len(remote_addr) and remote_addr[end + 1] == ":" \
                and "[" not in remote_addr[1:] and "]" not in remote_addr[end + 1:]:
            return remote_addr[1:end]
        return remote_addr
    i = remote_addr.rfind(":")
    host = remote_addr[:i]
    if ":" in host or "[" in remote_addr or "]" in remote_addr:
        return remote_addr
    return host


@lru_cache(maxsize=4096)
def parse_client_ip(text: str) -> tuple[int, int] | None:
    """``(version, integer)`` for an address such as ``10.0.0.1``, ``::1`` or ``fe80::1%eth0``.

    IPv4-mapped IPv6 addresses count as IPv4 (Go's ``net.IP`` compares them equal). The zone of a
    scoped address is ignored, as Go's ``netip.Addr.As16`` does. ``None`` when it does not parse.
    Memoized: peers repeat across keep-alive requests.
    """
    if not text:
        return None
    if "%" in text:
        text = text.split("%", 1)[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return 4, int(addr.ipv4_mapped)
    return addr.version, int(addr)
