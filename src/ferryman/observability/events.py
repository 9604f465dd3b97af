"""One structured log event per notable thing, with Traefik's field names.

Call these instead of formatting log lines by hand, so every event has the same shape in
``log.format: json`` (and ``key=value`` pairs in ``common``)::

    from ferryman.observability import events

    events.config_applied(routers=12, disabled=1, seconds=0.004, providers=["file"])
    events.element_problem("router", "web@file", "error", 'service "nope@file" does not exist')
    events.provider_error("docker", "cannot connect to the Docker daemon")
    events.certificate_obtained("le", ["example.com", "www.example.com"], not_after=dt)
    events.certificate_renewed("le", ["example.com"], not_after=dt)
    events.certificate_failed("le", ["example.com"], "urn:ietf:params:acme:error:rejectedIdentifier ...")

Field names follow Traefik's logs: ``providerName``, ``routerName``, ``serviceName``,
``middlewareName``, ``entryPointName``, ``error``; certificate events add ``domains``,
``resolver`` (the ``certificatesResolvers`` name) and ``notAfter`` (RFC 3339). Each event also has
``event`` (a stable machine-readable name: ``config.applied``, ``router.disabled``,
``router.warning``, ``provider.error``, ``certificate.obtained``, ``certificate.renewed``,
``certificate.failed``) so pipelines can filter without parsing messages.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable
from typing import Any

from ferryman.observability.logs import get_logger

__all__ = [
    "certificate_failed",
    "certificate_obtained",
    "certificate_renewed",
    "config_applied",
    "element_problem",
    "emit",
    "provider_error",
]

log = get_logger("ferryman.events")

#: kind of a configuration element -> Traefik's field name for it
_NAME_FIELDS = {
    "router": "routerName",
    "service": "serviceName",
    "middleware": "middlewareName",
    "entryPoint": "entryPointName",
    "serversTransport": "serversTransportName",
    "tls.options": "tlsOptionsName",
    "tls.stores": "tlsStoreName",
}


def emit(level: int, message: str, event: str, **fields: Any) -> None:
    """Log ``message`` with ``event`` and ``fields`` (``None`` values are left out)."""
    if log.isEnabledFor(level):
        clean = {k: v for k, v in fields.items() if v is not None}
        clean["event"] = event
        log.log(level, message, extra={"fields": clean})


def _provider_of(name: str) -> str | None:
    return name.rsplit("@", 1)[1] if "@" in name else None


def config_applied(*, routers: int, disabled: int, seconds: float, providers: Iterable[str] = (),
                   services: int | None = None, middlewares: int | None = None) -> None:
    emit(logging.INFO, "configuration applied", "config.applied", routers=routers, disabled=disabled,
         services=services, middlewares=middlewares, compileSeconds=round(seconds, 4),
         providers=sorted(providers) or None)


def element_problem(kind: str, name: str, level: str, message: str, *, rendered: str | None = None) -> None:
    """A configuration element (router, service, middleware...) disabled (``level="error"``) or
    served with a warning. ``rendered``: the message text (default ``<kind> "<name>": <message>``)."""
    disabled = level == "error"
    emit(logging.ERROR if disabled else logging.WARNING, rendered or f'{kind} "{name}": {message}',
         f"{kind}.{'disabled' if disabled else 'warning'}",
         **{_NAME_FIELDS.get(kind, "name"): name, "providerName": _provider_of(name), "error": message})


def provider_error(provider: str, error: str, message: str | None = None) -> None:
    emit(logging.ERROR, message or f"provider {provider}: {error}", "provider.error",
         providerName=provider, error=error)


def _rfc3339(value: datetime.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def certificate_obtained(resolver: str, domains: Iterable[str], *, not_after: datetime.datetime | None = None,
                         ca: str | None = None, provider: str | None = None) -> None:
    emit(logging.INFO, "certificate obtained", "certificate.obtained", resolver=resolver,
         providerName=provider or f"{resolver}.acme", domains=list(domains), notAfter=_rfc3339(not_after), acmeCA=ca)


def certificate_renewed(resolver: str, domains: Iterable[str], *, not_after: datetime.datetime | None = None,
                        ca: str | None = None, provider: str | None = None) -> None:
    emit(logging.INFO, "certificate renewed", "certificate.renewed", resolver=resolver,
         providerName=provider or f"{resolver}.acme", domains=list(domains), notAfter=_rfc3339(not_after), acmeCA=ca)


def certificate_failed(resolver: str, domains: Iterable[str], error: str, *, renewal: bool = False,
                       ca: str | None = None, provider: str | None = None) -> None:
    emit(logging.ERROR, "cannot renew certificate" if renewal else "cannot obtain certificate",
         "certificate.failed", resolver=resolver, providerName=provider or f"{resolver}.acme", domains=list(domains),
         error=error, renewal=renewal, acmeCA=ca)
