"""HTTP middlewares: a registry of builders, composed once at build time.

Contract::

    build_middleware(name, model: Middleware, next: Handler, ctx: MiddlewareContext | None = None) -> Handler
    chain(builders: Sequence[Callable[[Handler], Handler]], final: Handler) -> Handler
    register_middleware(kind, builder)      # kind is the Traefik key, e.g. "redirectScheme"

``build_middleware`` wraps ``next`` with the middleware ``name`` (the qualified name, for errors and
logs). A type that is unknown or not implemented yet raises :class:`~ferryman.errors.ConfigError`.
``chain`` composes builders so that the first is outermost (runs first), like Traefik's ``alice``:
``chain([a, b], svc)`` is ``a(b(svc))``. The ``chain`` middleware type resolves its members through
``ctx.lookup(reference) -> (qualified name, Middleware) | None`` and detects cycles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ferryman.dynamic.models import Middleware
from ferryman.errors import ConfigError
from ferryman.http.exchange import Handler
from ferryman.middlewares.add_prefix import build_add_prefix
from ferryman.middlewares.basic_auth import build_basic_auth
from ferryman.middlewares.buffering import build_buffering
from ferryman.middlewares.circuit_breaker import build_circuit_breaker
from ferryman.middlewares.client_identity import build_client_identity
from ferryman.middlewares.compress import build_compress
from ferryman.middlewares.content_type import build_content_type
from ferryman.middlewares.digest_auth import build_digest_auth
from ferryman.middlewares.encoded_characters import build_encoded_characters
from ferryman.middlewares.errors import build_errors
from ferryman.middlewares.forward_auth import build_forward_auth
from ferryman.middlewares.grpc_web import build_grpc_web
from ferryman.middlewares.headers import build_headers
from ferryman.middlewares.in_flight_req import build_in_flight_req
from ferryman.middlewares.ip_allow_list import build_ip_allow_list
from ferryman.middlewares.pass_tls_client_cert import build_pass_tls_client_cert
from ferryman.middlewares.rate_limit import build_rate_limit
from ferryman.middlewares.redirect_regex import build_redirect_regex
from ferryman.middlewares.redirect_scheme import build_redirect_scheme
from ferryman.middlewares.replace_path import build_replace_path
from ferryman.middlewares.replace_path_regex import build_replace_path_regex
from ferryman.middlewares.retry import build_retry
from ferryman.middlewares.strip_prefix import build_strip_prefix
from ferryman.middlewares.strip_prefix_regex import build_strip_prefix_regex
from ferryman.state import StateRegistry

__all__ = [
    "MiddlewareBuilder",
    "MiddlewareContext",
    "build_middleware",
    "chain",
    "implemented_middlewares",
    "register_middleware",
]


def _no_lookup(reference: str) -> tuple[str, Middleware] | None:
    return None


def _no_service(name: str) -> Handler | None:
    return None


@dataclass(frozen=True)
class MiddlewareContext:
    """What builders may need besides their own section.

    ``lookup`` resolves a middleware reference as written in a ``chain`` (``auth`` or ``auth@file``)
    to its qualified name and model; ``stack`` is the chain being built (cycle detection).
    ``router`` is the router whose chain is being built and ``states`` the long-lived state registry
    (:mod:`ferryman.state`) for middlewares that keep history across reloads (``None``: state lives
    in the built handler only); ``service`` gives a built service handler by qualified name
    (``errors``); ``client_auth`` is the router's TLS options' ``clientAuthType`` (``None`` off TLS).
    """

    lookup: Callable[[str], tuple[str, Middleware] | None] = _no_lookup
    stack: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    router: str = ""
    states: StateRegistry | None = None
    service: Callable[[str], Handler | None] = _no_service
    client_auth: str | None = None


#: ``builder(name, section, next, ctx) -> Handler`` where ``section`` is the type's config model.
MiddlewareBuilder = Callable[[str, Any, Handler, MiddlewareContext], Handler]

_REGISTRY: dict[str, MiddlewareBuilder] = {}


def register_middleware(kind: str, builder: MiddlewareBuilder) -> None:
    """Make middleware type ``kind`` (Traefik's key, e.g. ``"headers"``) buildable."""
    _REGISTRY[kind] = builder


def implemented_middlewares() -> frozenset[str]:
    return frozenset(_REGISTRY)


def build_middleware(name: str, model: Middleware, next: Handler,
                     ctx: MiddlewareContext | None = None) -> Handler:
    """Wrap ``next`` with middleware ``name`` described by ``model``."""
    kind = model.kind
    builder = _REGISTRY.get(kind)
    if builder is None:
        raise ConfigError(f"middleware type {kind!r} is not implemented yet", path=f"http.middlewares.{name}",
                          fix=f"remove {kind} from the configuration or use one of: "
                              f"{', '.join(sorted(_REGISTRY))}")
    field_name = next_field(model, kind)
    section = getattr(model, field_name)
    return builder(name, section, next, ctx or MiddlewareContext())


def next_field(model: Middleware, kind: str) -> str:
    for field_name, info in type(model).model_fields.items():
        if (info.alias or field_name) == kind:
            return field_name
    raise ConfigError(f"unknown middleware type {kind!r}")  # pragma: no cover


def chain(builders: Sequence[Callable[[Handler], Handler]], final: Handler) -> Handler:
    """Compose once: the first builder wraps the outermost layer."""
    handler = final
    for build in reversed(builders):
        handler = build(handler)
    return handler


def _build_chain(name: str, section: Any, next_handler: Handler, ctx: MiddlewareContext) -> Handler:
    if name in ctx.stack:
        cycle = " -> ".join((*ctx.stack, name))
        raise ConfigError(f"middleware chain cycle: {cycle}", path=f"http.middlewares.{name}",
                          fix="remove the middleware from its own chain")
    inner = MiddlewareContext(lookup=ctx.lookup, stack=(*ctx.stack, name), extra=ctx.extra, router=ctx.router,
                              states=ctx.states, service=ctx.service, client_auth=ctx.client_auth)
    builders: list[Callable[[Handler], Handler]] = []
    for reference in section.middlewares:
        resolved = ctx.lookup(reference)
        if resolved is None:
            raise ConfigError(f"middleware {reference!r} does not exist", path=f"http.middlewares.{name}.chain",
                              fix="define it or fix the name (qualify it as name@provider if needed)")
        qualified, model = resolved

        def make(nxt: Handler, _q: str = qualified, _m: Middleware = model) -> Handler:
            return build_middleware(_q, _m, nxt, inner)

        builders.append(make)
    return chain(builders, next_handler)


def _ignoring_ctx(builder: Callable[[str, Any, Handler], Handler]) -> MiddlewareBuilder:
    """Adapts a ``build_x(name, section, next)`` that needs no context to the registry's signature."""
    def build(name: str, section: Any, next_handler: Handler, ctx: MiddlewareContext) -> Handler:
        return builder(name, section, next_handler)
    return build


def _build_ip_white_list(name: str, section: Any, next_handler: Handler) -> Handler:
    return build_ip_allow_list(name, section, next_handler, kind="ipWhiteList")


def _build_circuit_breaker(name: str, section: Any, next_handler: Handler, ctx: MiddlewareContext) -> Handler:
    return build_circuit_breaker(name, section, next_handler, ctx.states, ctx.router)


def _build_rate_limit(name: str, section: Any, next_handler: Handler, ctx: MiddlewareContext) -> Handler:
    return build_rate_limit(name, section, next_handler, states=ctx.states, router=ctx.router)


def _build_errors(name: str, section: Any, next_handler: Handler, ctx: MiddlewareContext) -> Handler:
    service = section.service
    if service and "@" not in service and "@" in name:
        service += "@" + name.rpartition("@")[2]  # qualified with the middleware's provider, as in Traefik
    return build_errors(name, section, next_handler, ctx.service(service) if service else None, service)


def _build_client_identity(name: str, section: Any, next_handler: Handler, ctx: MiddlewareContext) -> Handler:
    return build_client_identity(name, section, next_handler, ctx.router, ctx.client_auth)


register_middleware("chain", _build_chain)
register_middleware("rateLimit", _build_rate_limit)
register_middleware("circuitBreaker", _build_circuit_breaker)
register_middleware("clientIdentity", _build_client_identity)
register_middleware("errors", _build_errors)
for _kind, _builder in (
    ("redirectScheme", build_redirect_scheme),
    ("redirectRegex", build_redirect_regex),
    ("addPrefix", build_add_prefix),
    ("stripPrefix", build_strip_prefix),
    ("stripPrefixRegex", build_strip_prefix_regex),
    ("replacePath", build_replace_path),
    ("replacePathRegex", build_replace_path_regex),
    ("ipAllowList", build_ip_allow_list),
    ("ipWhiteList", _build_ip_white_list),
    ("headers", build_headers),
    ("basicAuth", build_basic_auth),
    ("inFlightReq", build_in_flight_req),
    ("contentType", build_content_type),
    ("retry", build_retry),
    ("compress", build_compress),
    ("grpcWeb", build_grpc_web),
    ("forwardAuth", build_forward_auth),
    ("digestAuth", build_digest_auth),
    ("buffering", build_buffering),
    ("encodedCharacters", build_encoded_characters),
    ("passTLSClientCert", build_pass_tls_client_cert),
):
    register_middleware(_kind, _ignoring_ctx(_builder))
