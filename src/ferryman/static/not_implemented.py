"""Static keys this release accepts (they are valid Traefik configuration) but does not act on.

One list, in one place: when a feature lands, delete its entries here. ``load_static()`` reports
every listed key that the configuration actually sets, so the caller logs it; nothing is
silently ignored. A ``*`` stands for any map key (an entry point or resolver name).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel

from ferryman import __version__

__all__ = ["NOT_IMPLEMENTED", "RELEASE", "not_implemented_keys", "warning_for"]

#: ``major.minor`` of this ferryman release, as shown in the warnings.
RELEASE = ".".join(__version__.split(".")[:2])

NOT_IMPLEMENTED: frozenset[str] = frozenset({
    # (global.checkNewVersion / sendAnonymousUsage: ferryman never phones home, which is what
    # Traefik users set them to; accepted silently.)
    "global.notAppendXForwardedFor",
    "serversTransport.spiffe",
    "tcpServersTransport",
    # entry points
    "entryPoints.*.allowACMEByPass",
    "entryPoints.*.http2.maxDecoderHeaderTableSize",  # HTTP/2 is served; h2 keeps its 4096 tables
    "entryPoints.*.http2.maxEncoderHeaderTableSize",
    "entryPoints.*.udp",
    "entryPoints.*.observability.tracing",  # accessLogs and metrics are honoured
    "entryPoints.*.observability.traceVerbosity",
    "entryPoints.*.http.underscoreHeadersStrategy",
    # providers other than file
    "providers.swarm",
    "providers.kubernetesIngress",
    "providers.kubernetesIngressNGINX",
    "providers.kubernetesCRD",
    "providers.kubernetesGateway",
    "providers.knative",
    "providers.rest",
    "providers.consulCatalog",
    "providers.nomad",
    "providers.ecs",
    "providers.consul",
    "providers.etcd",
    "providers.zooKeeper",
    "providers.redis",
    "providers.http",
    "providers.plugin",
    # logs: level, format, filePath and noColor (ferryman never colours its output) are implemented
    "log.maxSize",
    "log.maxAge",
    "log.maxBackups",
    "log.compress",
    "log.otlp",
    # metrics: Prometheus is served; the push backends are not
    "metrics.datadog",
    "metrics.statsD",
    "metrics.influxDB2",
    "metrics.otlp",
    # access logs: files/stdout, common/genericCLF/json, filters, fields are implemented
    "accessLog.fields.queryParameters",
    "accessLog.dualOutput",
    "accessLog.otlp",
    # whole sections
    "tracing",
    "hostResolver",
    # certificate resolvers: acme (HTTP-01, TLS-ALPN-01) and localCA are served; dnsChallenge and
    # tailscale are refused by the resolver itself (ferryman.acme.manager), loudly
    "certificatesResolvers.*.acme.caServerName",
    "certificatesResolvers.*.acme.emailAddresses",
    "certificatesResolvers.*.acme.disableCommonName",
    "certificatesResolvers.*.acme.clientTimeout",
    "certificatesResolvers.*.acme.httpChallenge.delay",
    "certificatesResolvers.*.acme.tlsChallenge.delay",
    "experimental",
    "spiffe",
    "ocsp",
})


def warning_for(path: str) -> str:
    return f"{path}: accepted but not implemented yet in ferryman {RELEASE}; ignored"


def _alias(model: type[BaseModel], name: str) -> str:
    return model.model_fields[name].alias or name


def _walk(value: object, pattern: tuple[str, ...], path: str, registry: frozenset[str],
          found: list[str]) -> None:
    if isinstance(value, BaseModel):
        cls = type(value)
        for name in cls.model_fields:
            if name not in value.model_fields_set:
                continue
            alias = _alias(cls, name)
            sub_pattern = (*pattern, alias)
            sub_path = f"{path}.{alias}" if path else alias
            if ".".join(sub_pattern) in registry:
                found.append(sub_path)
                continue
            _walk(getattr(value, name), sub_pattern, sub_path, registry, found)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            sub_pattern = (*pattern, "*")
            sub_path = f"{path}.{key}"
            if ".".join(sub_pattern) in registry:
                found.append(sub_path)
                continue
            _walk(item, sub_pattern, sub_path, registry, found)
    elif isinstance(value, tuple):
        for index, item in enumerate(value):
            _walk(item, pattern, f"{path}[{index}]", registry, found)


def not_implemented_keys(config: BaseModel, registry: frozenset[str] = NOT_IMPLEMENTED) -> list[str]:
    """Paths of the listed keys that ``config`` sets explicitly (defaults do not count)."""
    found: list[str] = []
    _walk(config, (), "", registry, found)
    return found
