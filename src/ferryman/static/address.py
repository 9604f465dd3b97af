"""Entry point addresses: ``[host]:port[/tcp|/udp]``, as Traefik's ``EntryPoint.Address``."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Literal

__all__ = ["ListenAddress", "parse_address"]

Protocol = Literal["tcp", "udp"]


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """A parsed entry point address.

    ``host`` is ``""`` for "all interfaces" (``:80``); an IPv6 literal is unbracketed (``::``).
    ``port`` 0 asks the OS for a free port (useful in tests).
    """

    host: str
    port: int
    protocol: Protocol

    @property
    def hostport(self) -> str:
        """``host:port`` as Go's ``net.JoinHostPort`` writes it (IPv6 bracketed)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.hostport}/{self.protocol}"


_FIX = 'write "[host]:port[/tcp|/udp]", e.g. ":80", "0.0.0.0:443/tcp", "[::]:443" or ":53/udp"'


def parse_address(address: str) -> ListenAddress:
    """Parse an entry point address the way Traefik does.

    The protocol is what follows the first ``/`` (case-insensitive, default ``tcp``), the rest is
    a Go ``host:port``: IPv6 hosts must be bracketed, the port is a number 0-65535. Raises
    ``ValueError`` whose message says what is wrong and how to write it.
    """
    text = address.strip()
    if not text:
        raise ValueError(f"empty address; {_FIX}")
    hostport, slash, proto = text.partition("/")
    protocol: Protocol
    if not slash or proto.lower() == "tcp":
        protocol = "tcp"
    elif proto.lower() == "udp":
        protocol = "udp"
    else:
        raise ValueError(f"invalid protocol {proto!r} in address {address!r} (only tcp and udp); {_FIX}")

    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ValueError(f"missing ']' in address {address!r}; {_FIX}")
        host = hostport[1:end]
        rest = hostport[end + 1:]
        if not rest.startswith(":"):
            raise ValueError(f"missing port in address {address!r}; {_FIX}")
        port_text = rest[1:]
        try:
            IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise ValueError(f"invalid IPv6 address {host!r} in address {address!r}; {_FIX}") from None
    else:
        host, colon, port_text = hostport.rpartition(":")
        if not colon:
            raise ValueError(f"missing port in address {address!r}; {_FIX}")
        if ":" in host:
            raise ValueError(f"too many colons in address {address!r} (bracket IPv6 hosts); {_FIX}")
        if any(c.isspace() for c in host):
            raise ValueError(f"invalid host {host!r} in address {address!r}; {_FIX}")
    if not port_text.isdigit() or not port_text.isascii():
        what = "missing port" if not port_text else f"invalid port {port_text!r}"
        raise ValueError(f"{what} in address {address!r} (a number 0-65535); {_FIX}")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"port {port} out of range in address {address!r} (0-65535); {_FIX}")
    return ListenAddress(host=host, port=port, protocol=protocol)
