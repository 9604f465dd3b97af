"""Pooled keep-alive HTTP/1.1 connections to backends."""

from ferryman.upstream.forwarder import ServerForwarder
from ferryman.upstream.pool import Pool, UpstreamPools
from ferryman.upstream.settings import TransportSettings

__all__ = ["Pool", "ServerForwarder", "TransportSettings", "UpstreamPools"]
