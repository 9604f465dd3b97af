"""Entry points and client connections (the socket side of the data plane)."""

from ferryman.server.entrypoint import EntryPoint, EntryPointSettings

__all__ = ["EntryPoint", "EntryPointSettings"]
