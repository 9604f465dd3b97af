"""Servers transport settings (``serversTransports.<name>`` / static ``serversTransport``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ferryman.errors import ConfigError

__all__ = ["GO_DEFAULT_MAX_IDLE_CONNS_PER_HOST", "TransportSettings"]

#: Go's ``http.DefaultMaxIdleConnsPerHost``: what ``maxIdleConnsPerHost: 0`` means.
GO_DEFAULT_MAX_IDLE_CONNS_PER_HOST = 2


@dataclass(frozen=True, slots=True)
class TransportSettings:
    """Mirror of :class:`ferryman.dynamic.models.ServersTransport` (seconds for durations).

    ``max_idle_conns_per_host`` is the effective idle-pool size: Traefik's value, with 0 meaning
    Go's default (2) and a negative value meaning "no idle connections kept"
    (:meth:`idle_limit`). TLS fields are carried for the https transport (not implemented yet).
    """

    server_name: str = ""
    insecure_skip_verify: bool = False
    root_cas: tuple[str, ...] = ()
    certificates: tuple[tuple[str, str], ...] = ()
    max_idle_conns_per_host: int = 200
    disable_http2: bool = False
    peer_cert_uri: str = ""
    dial_timeout: float = 30.0
    response_header_timeout: float = 0.0
    idle_conn_timeout: float = 90.0
    read_idle_timeout: float = 0.0
    ping_timeout: float = 15.0
    cipher_suites: tuple[str, ...] = ()
    min_version: str = ""
    max_version: str = ""

    @property
    def idle_limit(self) -> int:
        value = self.max_idle_conns_per_host
        if value == 0:
            return GO_DEFAULT_MAX_IDLE_CONNS_PER_HOST
        return max(value, 0)

    @classmethod
    def from_model(cls, model: Any) -> TransportSettings:
        """From a dynamic ``ServersTransport`` or the static ``serversTransport`` (duck-typed).

        ``spiffe`` and ``peerCertSANs`` are not implemented: they restrict which backends are
        trusted, so a transport that sets them is refused (services using it are disabled with the
        reason) rather than used without the check."""
        for key, attr in (("spiffe", "spiffe"), ("peerCertSANs", "peer_cert_sans")):
            if getattr(model, attr, None):
                raise ConfigError(f"serversTransport {key} is not implemented yet in ferryman; refusing to "
                                  "reach backends without that check (use rootCAs and peerCertURI)")
        timeouts = model.forwarding_timeouts
        return cls(
            server_name=getattr(model, "server_name", ""),
            insecure_skip_verify=bool(model.insecure_skip_verify),
            root_cas=tuple(model.root_cas),
            certificates=tuple((c.cert_file, c.key_file) for c in getattr(model, "certificates", ())),
            max_idle_conns_per_host=int(model.max_idle_conns_per_host),
            disable_http2=bool(getattr(model, "disable_http2", False)),
            peer_cert_uri=getattr(model, "peer_cert_uri", ""),
            dial_timeout=float(timeouts.dial_timeout),
            response_header_timeout=float(timeouts.response_header_timeout),
            idle_conn_timeout=float(timeouts.idle_conn_timeout),
            read_idle_timeout=float(getattr(timeouts, "read_idle_timeout", 0.0)),
            ping_timeout=float(getattr(timeouts, "ping_timeout", 15.0)),
            cipher_suites=tuple(getattr(model, "cipher_suites", ())),
            min_version=getattr(model, "min_version", ""),
            max_version=getattr(model, "max_version", ""),
        )
