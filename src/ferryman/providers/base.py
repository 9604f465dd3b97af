"""What providers produce: one message per change of their whole configuration."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ferryman.dynamic.models import Configuration


@dataclass(frozen=True, slots=True)
class ElementProblem:
    """An element a provider could not decode; it is left out and reported."""

    kind: str  # "http.routers", "http.services", ...
    name: str
    message: str


@dataclass(frozen=True, slots=True)
class ProviderMessage:
    """A provider's complete current configuration, or why it has none right now.

    ``config is None`` means the provider's input could not be used at all (a file that no longer
    parses): the watcher keeps that provider's last good configuration and reports ``error``.
    """

    provider: str
    config: Configuration | None
    error: str | None = None
    problems: tuple[ElementProblem, ...] = ()
    warnings: tuple[str, ...] = field(default=())


Emit = Callable[[ProviderMessage], None]


class Provider(Protocol):
    name: str

    async def run(self, emit: Emit) -> None:
        """Emit the initial configuration, then one message per change, until cancelled."""
