"""Long-lived state that outlives snapshots (DESIGN.md "Long-lived state").

Middlewares whose behaviour depends on history (a circuit breaker's rolling metrics and state, a
redis client and its connections) get that state from a :class:`StateRegistry` keyed by a stable
identity -- typically ``(kind, router, middleware name, configuration value)`` -- so a reload that
leaves their configuration unchanged keeps it, and a changed configuration starts afresh.

Each compile marks the keys it used (:meth:`StateRegistry.get`); :meth:`StateRegistry.sweep` after
the new snapshot is published drops the rest, calling their ``close()`` if they have one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

__all__ = ["StateRegistry"]

log = logging.getLogger("ferryman.state")

T = TypeVar("T")


class StateRegistry:
    __slots__ = ("_items", "_used")

    def __init__(self) -> None:
        self._items: dict[Hashable, Any] = {}
        self._used: set[Hashable] = set()

    def get(self, key: Hashable, factory: Callable[[], T]) -> T:
        """The state for ``key`` (made by ``factory`` the first time); marks it as in use."""
        self._used.add(key)
        try:
            value: T = self._items[key]
        except KeyError:
            value = self._items[key] = factory()
        return value

    def sweep(self) -> int:
        """Forget (and close) what the last compile did not ask for; returns how many."""
        stale = [k for k in self._items if k not in self._used]
        for key in stale:
            value = self._items.pop(key)
            close = getattr(value, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:  # a failing close must not break a reload
                    log.exception("closing stale state %r failed", key)
        self._used = set()
        return len(stale)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items
