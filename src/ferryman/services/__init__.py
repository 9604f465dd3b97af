"""HTTP services: ``loadBalancer`` (wrr) and ``weighted``, built once per configuration.

Contract::

    build_load_balancer(name, model: LoadBalancer, transport: TransportSettings, pools: UpstreamPools,
                        *, transport_name="", rng=None) -> Handler
    build_weighted(name, model: Weighted, children: Mapping[str, Handler], *, rng=None) -> Handler

``transport_name`` is the servers transport's qualified name (pool identity; defaults to
``model.servers_transport`` or ``default@internal``). Servers are shuffled once at build time, as
Traefik does (pass ``rng`` for a deterministic order). Options that are not implemented yet
(``sticky``, ``healthCheck``, ``passiveHealthCheck``, service ``middlewares``, strategies other than
``wrr``, https/h2c servers) raise :class:`~ferryman.errors.ConfigError` naming the service.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from ferryman.dynamic.models import LoadBalancer, Weighted
from ferryman.errors import ConfigError
from ferryman.http.exchange import Handler
from ferryman.services.wrr import NO_SERVER_BODY, WeightedRoundRobin
from ferryman.upstream.forwarder import ServerForwarder
from ferryman.upstream.pool import UpstreamPools
from ferryman.upstream.settings import TransportSettings

__all__ = ["NO_SERVER_BODY", "WeightedRoundRobin", "build_load_balancer", "build_weighted"]

DEFAULT_TRANSPORT = "default@internal"


def _not_implemented(name: str, what: str) -> ConfigError:
    return ConfigError(f"{what} is not implemented yet", path=f"http.services.{name}",
                       fix=f"remove {what} from the service for now")


def build_load_balancer(name: str, model: LoadBalancer, transport: TransportSettings,
                        pools: UpstreamPools, *, transport_name: str = "",
                        rng: random.Random | None = None) -> Handler:
    """A ``loadBalancer`` service: one :class:`ServerForwarder` per server behind wrr (a single
    server is returned as is)."""
    if model.strategy != "wrr":
        raise _not_implemented(name, f"loadBalancer.strategy {model.strategy!r}")
    if model.sticky is not None:
        raise _not_implemented(name, "loadBalancer.sticky")
    if model.health_check is not None:
        raise _not_implemented(name, "loadBalancer.healthCheck")
    if model.passive_health_check is not None:
        raise _not_implemented(name, "loadBalancer.passiveHealthCheck")
    if model.middlewares:
        raise _not_implemented(name, "loadBalancer.middlewares")
    tname = transport_name or model.servers_transport or DEFAULT_TRANSPORT
    servers = list(model.servers)
    (rng or random).shuffle(servers)
    children: list[tuple[str, Handler, int | None]] = []
    for index, server in enumerate(servers):
        if not server.url:
            raise ConfigError("server has no url", path=f"http.services.{name}.loadBalancer.servers[{index}]",
                              fix="set url: http://host:port")
        try:
            forwarder = ServerForwarder.build(server.url, pools, tname, transport,
                                              pass_host_header=model.pass_host_header,
                                              preserve_path=server.preserve_path, service=name)
        except ConfigError as exc:
            raise ConfigError(exc.message, path=f"http.services.{name}.loadBalancer.servers[{index}].url",
                              fix=exc.fix) from exc
        children.append((server.url, forwarder, server.weight))
    usable = [c for c in children if c[2] is None or c[2] > 0]
    if len(usable) == 1:
        return usable[0][1]  # one server: no balancing step on the hot path
    return WeightedRoundRobin(name, children)


def build_weighted(name: str, model: Weighted, children: Mapping[str, Handler], *,
                   rng: random.Random | None = None) -> Handler:
    """A ``weighted`` service over already built child services (keys: the names in ``model``)."""
    if model.sticky is not None:
        raise _not_implemented(name, "weighted.sticky")
    if model.health_check is not None:
        raise _not_implemented(name, "weighted.healthCheck")
    refs = list(model.services)
    (rng or random).shuffle(refs)
    entries: list[tuple[str, Handler, int | None]] = []
    for ref in refs:
        handler = children.get(ref.name)
        if handler is None:
            known = ", ".join(sorted(children)) or "none"
            raise ConfigError(f"service {ref.name!r} does not exist (known: {known})",
                              path=f"http.services.{name}.weighted.services")
        entries.append((ref.name, handler, ref.weight))
    return WeightedRoundRobin(name, entries)
