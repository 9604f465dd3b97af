"""IP address sets and Traefik's client-IP strategies, prepared once and queried per request.

* :class:`IPMatcher` -- a set of IPs/CIDRs (``sourceRange``, ``trustedIPs``, ``excludedIPs``,
  ``ClientIP``), built once with :meth:`IPMatcher.from_strings`; :meth:`IPMatcher.contains` costs one
  ``inet_pton`` plus one set lookup per distinct prefix length, whatever the number of entries.
* :func:`client_ip_from_xff` and :class:`IPStrategy` -- Traefik's ``ipStrategy`` (``depth``,
  ``excludedIPs``, ``ipv6Subnet``) over ``X-Forwarded-For``; :func:`remote_addr_host` and
  :func:`split_host_port` -- Go's ``net.SplitHostPort`` view of a ``RemoteAddr``.

Address semantics follow Traefik (Go ``netip``): IPv4 is a strict dotted quad (``0127.0.0.1`` is not
an address), an IPv6 zone (``fe80::1%eth0``) is accepted and ignored, and an IPv4-mapped IPv6 address
(``::ffff:1.2.3.4``) is the IPv4 address, both in queries and in configured entries.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from socket import AF_INET, AF_INET6, inet_pton
from typing import Final, TypeAlias

from ferryman.errors import ConfigError

__all__ = [
    "IPAddress",
    "IPMatcher",
    "IPNetwork",
    "IPStrategy",
    "client_ip_from_xff",
    "mask_ipv6",
    "parse_ip",
    "remote_addr_host",
    "split_host_port",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
HeaderValues: TypeAlias = str | bytes | Iterable[str | bytes] | None

_MAPPED_PREFIX: Final = b"\x00" * 10 + b"\xff\xff"
_PREFIX_LEN_RE: Final = re.compile(r"[0-9]{1,3}")
_FIX: Final = "use an IP address such as 192.0.2.10 or 2001:db8::1, or a CIDR such as 10.0.0.0/8"


def _parse_key(text: str) -> tuple[int, int] | None:
    """``(4 | 6, integer value)`` of an address string, or ``None``; unmaps, drops an IPv6 zone."""
    if ":" in text:
        pct = text.find("%")
        if pct >= 0:
            if pct == len(text) - 1:
                return None  # Go: "zone must be a non-empty string"
            text = text[:pct]
        try:
            packed = inet_pton(AF_INET6, text)
        except (OSError, ValueError):
            return None
        if packed[:12] == _MAPPED_PREFIX:
            return 4, int.from_bytes(packed[12:], "big")
        return 6, int.from_bytes(packed, "big")
    try:
        return 4, int.from_bytes(inet_pton(AF_INET, text), "big")
    except (OSError, ValueError):
        return None


def parse_ip(text: str) -> IPAddress | None:
    """The address in ``text`` (zone dropped, IPv4-mapped IPv6 as IPv4), or ``None`` if unparsable."""
    key = _parse_key(text)
    if key is None:
        return None
    return ipaddress.IPv4Address(key[1]) if key[0] == 4 else ipaddress.IPv6Address(key[1])


class IPMatcher:
    """An immutable set of IP networks, queried with :meth:`contains`."""

    __slots__ = ("_v4", "_v6", "entries", "networks")

    entries: tuple[str, ...]
    networks: tuple[IPNetwork, ...]
    _v4: tuple[tuple[int, frozenset[int]], ...]
    _v6: tuple[tuple[int, frozenset[int]], ...]

    def __init__(self, networks: Iterable[IPNetwork], entries: Iterable[str] | None = None) -> None:
        nets: list[IPNetwork] = []
        for net in networks:
            nets.append(_unmap_network(net))
        self.networks = tuple(nets)
        self.entries = tuple(entries) if entries is not None else tuple(str(n) for n in self.networks)
        self._v4 = _index(n for n in self.networks if n.version == 4)
        self._v6 = _index(n for n in self.networks if n.version == 6)

    @classmethod
    def from_strings(
        cls,
        items: Iterable[str] | None,
        *,
        source: str | None = None,
        path: str | None = None,
        allow_empty: bool = False,
    ) -> IPMatcher:
        """Build from IPs and CIDRs (host bits allowed, as Go's ``ParseCIDR``: ``1.2.3.4/24``).

        Raises :class:`ConfigError` naming the first bad entry (``path`` gets ``[index]``), or when
        the list is empty unless ``allow_empty``.
        """
        entries = list(items) if items is not None else []
        if not entries and not allow_empty:
            raise ConfigError("no IP addresses or CIDRs provided (the list is empty)",
                              source=source, path=path, fix=_FIX)
        networks: list[IPNetwork] = []
        for index, item in enumerate(entries):
            net = _parse_network(item) if isinstance(item, str) else None
            if net is None:
                raise ConfigError(f"{item!r} is not an IP address or CIDR", source=source,
                                  path=f"{path}[{index}]" if path else f"[{index}]", fix=_FIX)
            networks.append(net)
        return cls(networks, entries)

    def contains(self, ip: str) -> bool:
        """Whether ``ip`` (no port, no brackets; zone ignored) is in the set. Unparsable -> ``False``."""
        key = _parse_key(ip)
        if key is None:
            return False
        return self._lookup(key[0], key[1])

    __contains__ = contains

    def contains_address(self, addr: IPAddress) -> bool:
        """Like :meth:`contains` for an already parsed address."""
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return self._lookup(addr.version, int(addr))

    def _lookup(self, version: int, value: int) -> bool:
        # A plain loop: any() over a generator costs a frame per call on this hot path.
        for mask, nets in self._v4 if version == 4 else self._v6:  # noqa: SIM110
            if value & mask in nets:
                return True
        return False

    def __len__(self) -> int:
        return len(self.networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IPMatcher) and set(self.networks) == set(other.networks)

    def __hash__(self) -> int:
        return hash(frozenset(self.networks))

    def __repr__(self) -> str:
        return f"IPMatcher({list(self.entries)!r})"


def _parse_network(item: str) -> IPNetwork | None:
    text = item.strip()
    addr_text, slash, bits_text = text.partition("/")
    if "%" in addr_text or not addr_text:
        return None  # Go's ParseIP / ParseCIDR reject zones
    key = _parse_key(addr_text)
    if key is None:
        return None
    # The address as written decides the width: "::ffff:1.2.3.4/120" is an IPv6 prefix.
    width = 128 if ":" in addr_text else 32
    if slash:
        if not _PREFIX_LEN_RE.fullmatch(bits_text):
            return None
        bits = int(bits_text)
        if bits > width:
            return None
    else:
        bits = width
    if width == 128:
        packed = inet_pton(AF_INET6, addr_text)
        return ipaddress.IPv6Network((int.from_bytes(packed, "big"), bits), strict=False)
    return ipaddress.IPv4Network((key[1], bits), strict=False)


def _unmap_network(net: IPNetwork) -> IPNetwork:
    """``::ffff:a.b.c.d/96+n`` is the IPv4 network ``a.b.c.d/n`` (queries are unmapped too)."""
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96:
        mapped = net.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network((int(mapped), net.prefixlen - 96))
    return net


def _index(networks: Iterable[IPNetwork]) -> tuple[tuple[int, frozenset[int]], ...]:
    by_mask: dict[int, set[int]] = {}
    for net in networks:
        by_mask.setdefault(int(net.netmask), set()).add(int(net.network_address))
    # Widest networks first: they are the likeliest to match a random address.
    return tuple((mask, frozenset(values)) for mask, values in sorted(by_mask.items()))


# ------------------------------------------------------------------------------------ strategies


def split_host_port(hostport: str) -> tuple[str, str] | None:
    """Go's ``net.SplitHostPort``: ``("host", "port")`` or ``None`` where Go returns an error.

    ``[::1]:80`` -> ``("::1", "80")``; ``1.2.3.4`` (no port) and ``::1`` (too many colons) -> ``None``.
    """
    i = hostport.rfind(":")
    if i < 0:
        return None
    if hostport[:1] == "[":
        end = hostport.find("]")
        if end < 0 or end + 1 != i:
            return None  # missing ']' or the port is not right after it
        host = hostport[1:end]
        j, k = 1, end + 1
    else:
        host = hostport[:i]
        if ":" in host:
            return None  # too many colons
        j = k = 0
    if "[" in hostport[j:] or "]" in hostport[k:]:
        return None
    return host, hostport[i + 1 :]


def remote_addr_host(remote_addr: str) -> str:
    """The host part of ``ip:port`` / ``[ip]:port``, or the whole string when it has no port."""
    split = split_host_port(remote_addr)
    return remote_addr if split is None else split[0]


def mask_ipv6(ip: str, prefix_len: int) -> str:
    """Traefik's ``ipv6Subnet``: the first address of ``ip``'s ``/prefix_len`` IPv6 network.

    IPv4 addresses, unparsable strings and prefix lengths outside 0..128 come back unchanged; a zone
    is dropped from the result.
    """
    if ":" not in ip or not 0 <= prefix_len <= 128:
        return ip
    pct = ip.find("%")
    bare = ip[:pct] if pct > 0 and pct < len(ip) - 1 else ip
    try:
        value = int.from_bytes(inet_pton(AF_INET6, bare), "big")
    except (OSError, ValueError):
        return ip
    mask = ((1 << prefix_len) - 1) << (128 - prefix_len)
    masked = ipaddress.IPv6Address(value & mask)
    if masked.ipv4_mapped is not None:  # RFC 5952 form, as Go prints it (Python 3.11 would not)
        return f"::ffff:{masked.ipv4_mapped}"
    return str(masked)


def _xff_items(header_values: HeaderValues) -> list[str]:
    if header_values is None:
        return [""]
    if isinstance(header_values, str):
        return header_values.split(",")
    if isinstance(header_values, bytes):
        return header_values.decode("latin-1").split(",")
    joined = ",".join(v.decode("latin-1") if isinstance(v, bytes) else v for v in header_values)
    return joined.split(",")


def client_ip_from_xff(
    header_values: HeaderValues,
    depth: int = 0,
    excluded: IPMatcher | Iterable[str] | None = None,
    *,
    ipv6_subnet: int | None = None,
) -> str:
    """The client IP Traefik's ``ipStrategy`` picks from ``X-Forwarded-For`` (``""`` if none).

    ``header_values`` is the header's value, or all its field lines (joined with ``,``, which is
    what they mean per RFC 9110; Go's ``Header.Get`` would look at the first line only).

    * ``depth > 0``: the ``depth``-th entry from the right, trimmed; ``""`` when there are fewer
      entries. ``ipv6_subnet`` then masks an IPv6 result (see :func:`mask_ipv6`).
    * else, with ``excluded``: scanning from the right, the first non-empty entry that is not in
      ``excluded`` (``""`` if all are). ``ipv6_subnet`` does not apply (as in Traefik).
    * else ``""``: without depth or excludedIPs Traefik uses the remote address, not the header
      (see :class:`IPStrategy`).

    Pass ``excluded`` as a prepared :class:`IPMatcher` on hot paths; strings are parsed per call.
    """
    if depth > 0:
        items = _xff_items(header_values)
        if len(items) < depth:
            return ""
        ip = items[-depth].strip()
        return ip if ipv6_subnet is None else mask_ipv6(ip, ipv6_subnet)
    if excluded is None:
        return ""
    matcher = excluded if isinstance(excluded, IPMatcher) else IPMatcher.from_strings(excluded, allow_empty=True)
    if not matcher:
        return ""
    for item in reversed(_xff_items(header_values)):
        ip = item.strip()
        if ip and not matcher.contains(ip):
            return ip
    return ""


@dataclass(frozen=True, slots=True)
class IPStrategy:
    """A compiled Traefik ``ipStrategy``; ``None`` config means :meth:`IPStrategy.remote_addr`.

    Exactly like Traefik's ``IPStrategy.Get``: a positive ``depth`` wins; otherwise a non-empty
    ``excludedIPs`` list; otherwise the remote address (the client IP the entry point resolved, or
    the TCP peer).
    """

    depth: int = 0
    excluded: IPMatcher | None = None
    ipv6_subnet: int | None = None

    @classmethod
    def remote_addr(cls, ipv6_subnet: int | None = None) -> IPStrategy:
        return cls(0, None, ipv6_subnet)

    @classmethod
    def from_config(
        cls,
        depth: int = 0,
        excluded_ips: Iterable[str] | None = None,
        ipv6_subnet: int | None = None,
        *,
        source: str | None = None,
        path: str | None = None,
    ) -> IPStrategy:
        """Validate and compile; raises :class:`ConfigError` like Traefik (bad subnet, bad CIDR)."""
        excluded = list(excluded_ips or ())
        uses_subnet = depth > 0 or not excluded
        if uses_subnet and ipv6_subnet is not None and not 0 < ipv6_subnet <= 128:
            raise ConfigError(f"invalid IPv6 subnet {ipv6_subnet} value, should be greater than 0 "
                              "and lower or equal to 128", source=source,
                              path=f"{path}.ipv6Subnet" if path else "ipv6Subnet")
        if depth > 0:
            return cls(depth, None, ipv6_subnet)
        if excluded:
            matcher = IPMatcher.from_strings(
                excluded, source=source, path=f"{path}.excludedIPs" if path else "excludedIPs")
            return cls(0, matcher, None)
        return cls(0, None, ipv6_subnet)

    def get_ip(self, remote_addr: str, x_forwarded_for: HeaderValues = None) -> str:
        """The IP this strategy selects for a request (``""`` when the header has none to give).

        ``remote_addr`` is ``ip:port``/``[ip]:port`` or a bare IP (the entry point's resolved
        client IP); ``x_forwarded_for`` is the header value(s), ``None`` when absent.
        """
        if self.depth > 0 or self.excluded is not None:
            return client_ip_from_xff(x_forwarded_for, self.depth, self.excluded, ipv6_subnet=self.ipv6_subnet)
        host = remote_addr_host(remote_addr)
        return host if self.ipv6_subnet is None else mask_ipv6(host, self.ipv6_subnet)
