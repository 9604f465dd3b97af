"""``ipAllowList`` (and the deprecated ``ipWhiteList``): only listed client IPs pass, as Traefik's
``pkg/middlewares/ipallowlist``.

Build time: ``sourceRange`` becomes an :class:`~ferryman.ipnet.IPMatcher` (an empty list or an
unparsable entry is a :class:`~ferryman.errors.ConfigError`), ``ipStrategy`` an
:class:`~ferryman.ipnet.IPStrategy` (``depth`` from the right of ``X-Forwarded-For``, else the first
address from the right not in ``excludedIPs``, else the peer; ``ipv6Subnet`` masks IPv6), and the
rejection status (``rejectStatusCode``, default 403; a code Go's ``http.StatusText`` does not know is
a config error) with its body, Go's status text, sent without a sniffed ``Content-Type``.

Per request: one strategy call and a dict lookup of the verdict for that IP (the matcher runs once
per IP; at most :data:`KNOWN_IPS` are remembered, then the table starts over). The peer is the entry point's resolved client
address (PROXY protocol included); ``X-Forwarded-For`` is what reaches the middleware (incoming
values only from trusted peers, as Traefik's entry point strips them otherwise).
"""

from __future__ import annotations

from typing import Final

from ferryman.dynamic.models import IPAllowList, IPWhiteList
from ferryman.dynamic.models import IPStrategy as IPStrategyConfig
from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange, Handler
from ferryman.ipnet import IPMatcher, IPStrategy
from ferryman.proto.h1 import REASONS

__all__ = ["IPAllowListHandler", "build_ip_allow_list", "compile_strategy"]


#: Client IPs whose verdict a middleware remembers (then it starts over).
KNOWN_IPS: Final = 4096


class IPAllowListHandler:
    """The built middleware (a :class:`~ferryman.http.exchange.Handler`)."""

    __slots__ = ("_body", "_known", "_matcher", "_remote", "_status", "_strategy", "name", "next")

    def __init__(self, name: str, next_handler: Handler, matcher: IPMatcher, strategy: IPStrategy,
                 reject_status: int) -> None:
        self.name = name
        self.next = next_handler
        self._matcher = matcher
        self._strategy = strategy
        # Plain peer address, no subnet: the matcher can take the connection's IP as it is.
        self._remote = strategy.depth == 0 and strategy.excluded is None and strategy.ipv6_subnet is None
        self._status = reject_status
        self._body = REASONS[reject_status].encode()
        #: verdicts by client IP (the matcher is fixed once built): a dict lookup instead of parsing
        #: the address on every request; bounded by :data:`KNOWN_IPS`
        self._known: dict[str, bool] = {}

    def client_ip(self, ex: Exchange) -> str:
        strategy = self._strategy
        if self._remote:
            return ex.conn.client_ip
        if strategy.depth > 0 or strategy.excluded is not None:
            if ex.xf_materialized:
                xff: list[bytes] | bytes | None = ex.header_values(b"x-forwarded-for") or None
            else:
                xff = ex.xff_prior
            return strategy.get_ip(ex.conn.client_ip, xff)
        return strategy.get_ip(ex.conn.client_ip)

    def handle(self, ex: Exchange) -> None:
        ip = ex.conn.client_ip if self._remote else self.client_ip(ex)
        allowed = self._known.get(ip)
        if allowed is None:
            allowed = bool(ip) and self._matcher.contains(ip)
            if len(self._known) >= KNOWN_IPS:
                self._known.clear()
            self._known[ip] = allowed
        if allowed:
            self.next.handle(ex)
            return
        ex.respond(self._status, (), self._body, content_type=None)


def compile_strategy(config: IPStrategyConfig | None, path: str) -> IPStrategy:
    """Traefik's ``IPStrategy.Get``: ``None`` (no section) is the peer address."""
    if config is None:
        return IPStrategy.remote_addr()
    return IPStrategy.from_config(config.depth, config.excluded_ips, config.ipv6_subnet, path=path)


def build_ip_allow_list(name: str, config: IPAllowList | IPWhiteList, next_handler: Handler,
                        kind: str = "ipAllowList") -> Handler:
    path = f"http.middlewares.{name}.{kind}"
    if not config.source_range:
        raise ConfigError("sourceRange is empty, the IP allow list would refuse every request",
                          path=f"{path}.sourceRange",
                          fix="list the allowed IPs or CIDRs, e.g. sourceRange: [10.0.0.0/8]")
    matcher = IPMatcher.from_strings(config.source_range, path=f"{path}.sourceRange")
    strategy = compile_strategy(config.ip_strategy, f"{path}.ipStrategy")
    status = 403
    code = getattr(config, "reject_status_code", 0)
    if code:
        if code not in REASONS:
            raise ConfigError(f"invalid HTTP status code {code}", path=f"{path}.rejectStatusCode",
                              fix="use a standard HTTP status such as 403 or 404, or remove it (403)")
        status = code
    return IPAllowListHandler(name, next_handler, matcher, strategy, status)
