"""Static ("install") configuration: Traefik v3's ``traefik.yml`` / ``.toml`` / flags / env.

Pure parsing, no sockets. The entry point is :func:`load_static`::

    loaded = load_static(sys.argv[1:], os.environ)
    loaded.config.entry_points["web"].listen.port
    for warning in loaded.warnings: log.warning(warning)
"""

from ferryman.static.address import ListenAddress, parse_address
from ferryman.static.base import Model
from ferryman.static.diagnostics import StaticConfigError
from ferryman.static.loader import LoadedStatic, load_static
from ferryman.static.models import (
    DEFAULT_INTERNAL_ENTRY_POINT,
    PROVIDER_NAMES,
    Api,
    Core,
    EntryPoint,
    EntryPointHTTP,
    EntryPointTLS,
    FileProvider,
    ForwardedHeaders,
    ForwardingTimeouts,
    LifeCycle,
    Log,
    Ping,
    Providers,
    ProxyProtocol,
    RedirectEntryPoint,
    RespondingTimeouts,
    ServersTransport,
    StaticConfig,
)
from ferryman.static.not_implemented import NOT_IMPLEMENTED

__all__ = [
    "DEFAULT_INTERNAL_ENTRY_POINT",
    "NOT_IMPLEMENTED",
    "PROVIDER_NAMES",
    "Api",
    "Core",
    "EntryPoint",
    "EntryPointHTTP",
    "EntryPointTLS",
    "FileProvider",
    "ForwardedHeaders",
    "ForwardingTimeouts",
    "LifeCycle",
    "ListenAddress",
    "LoadedStatic",
    "Log",
    "Model",
    "Ping",
    "Providers",
    "ProxyProtocol",
    "RedirectEntryPoint",
    "RespondingTimeouts",
    "ServersTransport",
    "StaticConfig",
    "StaticConfigError",
    "load_static",
    "parse_address",
]
