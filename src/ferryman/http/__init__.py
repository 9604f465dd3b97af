"""The HTTP-version-neutral exchange vocabulary shared by servers, middlewares and services."""

from ferryman.http.exchange import (
    BodyConsumer,
    ConnInfo,
    Downstream,
    Exchange,
    Handler,
    Headers,
    Producer,
    ResponseHook,
    ResponseSink,
    TunnelPeer,
)

__all__ = [
    "BodyConsumer",
    "ConnInfo",
    "Downstream",
    "Exchange",
    "Handler",
    "Headers",
    "Producer",
    "ResponseHook",
    "ResponseSink",
    "TunnelPeer",
]
