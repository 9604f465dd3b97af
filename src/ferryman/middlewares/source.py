"""Traefik's ``sourceCriterion`` (``pkg/middlewares/middleware.go`` ``GetSourceExtractor``): which
requests share a rate-limit bucket or an in-flight counter.

* ``ipStrategy`` -- the client IP that :class:`~ferryman.ipnet.IPStrategy` picks (an empty section is
  the peer address, without port);
* ``requestHeaderName`` -- the first value of that request header (``""`` when absent: every request
  without it shares one source, as with oxy's ``request.header.<name>`` extractor);
* ``requestHost`` -- the request's Host as sent (Go's ``req.Host``, port included).

Two criteria at once are a :class:`~ferryman.errors.ConfigError` with Traefik's message. Without any,
the middleware's default applies (the peer IP for ``rateLimit``, the host for ``inFlightReq``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from ferryman.dynamic.models import SourceCriterion
from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange
from ferryman.middlewares.ip_allow_list import compile_strategy

__all__ = ["SourceExtractor", "compile_source"]

#: ``extract(ex) -> source`` (the bucket / counter key).
SourceExtractor = Callable[[Exchange], str]

_FIX = "set only one of sourceCriterion.ipStrategy, requestHeaderName and requestHost"


def _host(ex: Exchange) -> str:
    return ex.authority.decode("latin-1")


def compile_source(config: SourceCriterion | None, path: str, default: Literal["ip", "host"] = "ip",
                   context: str = "getting source extractor") -> SourceExtractor:
    """The extractor for ``config`` (``path`` is the ``sourceCriterion`` key and ``context`` the
    prefix of Traefik's error message, for errors)."""
    strategy_cfg = config.ip_strategy if config is not None else None
    header = config.request_header_name if config is not None else ""
    host = config.request_host if config is not None else False
    if strategy_cfg is not None and header:
        raise ConfigError(f"{context}: iPStrategy and RequestHeaderName are mutually exclusive",
                          path=path, fix=_FIX)
    if strategy_cfg is not None and host:
        raise ConfigError(f"{context}: iPStrategy and RequestHost are mutually exclusive",
                          path=path, fix=_FIX)
    if header and host:
        raise ConfigError(f"{context}: requestHost and RequestHeaderName are mutually exclusive",
                          path=path, fix=_FIX)
    if header:
        name = header.lower().encode("latin-1")

        def by_header(ex: Exchange) -> str:
            value = ex.header(name)
            return "" if value is None else value.decode("latin-1")

        return by_header
    if host or (strategy_cfg is None and default == "host"):
        return _host
    strategy = compile_strategy(strategy_cfg, f"{path}.ipStrategy")
    if strategy.depth == 0 and strategy.excluded is None and strategy.ipv6_subnet is None:
        return _peer
    if strategy.depth > 0 or strategy.excluded is not None:

        def by_forwarded_for(ex: Exchange) -> str:
            if ex.xf_materialized:
                xff: list[bytes] | bytes | None = ex.header_values(b"x-forwarded-for") or None
            else:
                xff = ex.xff_prior
            return strategy.get_ip(ex.conn.client_ip, xff)

        return by_forwarded_for

    def by_peer(ex: Exchange) -> str:
        return strategy.get_ip(ex.conn.client_ip)

    return by_peer


def _peer(ex: Exchange) -> str:
    return ex.conn.client_ip
