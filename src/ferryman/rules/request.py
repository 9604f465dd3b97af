"""What a rule looks at in a request."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class MatchRequest(Protocol):
    """The request as rules see it. The data plane fills it once per request.

    Declared with read-only properties so that plain attributes, ``__slots__`` and properties
    all satisfy it.
    """

    @property
    def method(self) -> str:
        """As sent (case-sensitive)."""

    @property
    def host(self) -> str:
        """:func:`~ferryman.rules.canonical_host` of the request host."""

    @property
    def path(self) -> str:
        """:func:`~ferryman.rules.routing_path` of the request path."""

    @property
    def query(self) -> str:
        """The raw query, without ``?``."""

    @property
    def client_ip(self) -> str:
        """Peer (or PROXY protocol source) address, without port."""

    def header_values(self, name: str) -> Sequence[str]:
        """Values of the header ``name`` (case-insensitive; rules pass it lower-cased), one per
        header line, in order; empty when absent."""
