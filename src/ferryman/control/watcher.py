"""The configuration watcher: providers' messages in, one consistent configuration out.

Per provider (as Traefik's ``providersThrottleDuration``): the first change applies at once, then
changes arriving within the throttle window are coalesced and the newest one applies when the
window ends. Messages equal to what is already applied are dropped (models compare by value). A
message without configuration (a file that no longer parses) keeps that provider's last good
configuration and is recorded as the provider's error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ferryman.dynamic.models import Configuration
from ferryman.observability import events
from ferryman.providers.base import ProviderMessage

log = logging.getLogger("ferryman.watcher")

Apply = Callable[[Mapping[str, Configuration], Mapping[str, ProviderMessage]], None]


@dataclass(slots=True)
class _ProviderState:
    applied: Configuration | None = None
    last_message: ProviderMessage | None = None
    pending: ProviderMessage | None = None
    window: asyncio.TimerHandle | None = None
    error: str | None = None


@dataclass
class Watcher:
    throttle: float
    apply: Apply
    _providers: dict[str, _ProviderState] = field(default_factory=dict)

    def errors(self) -> dict[str, str]:
        return {name: st.error for name, st in self._providers.items() if st.error}

    def submit(self, msg: ProviderMessage) -> None:
        """Called by providers on the event loop."""
        st = self._providers.setdefault(msg.provider, _ProviderState())
        if msg.config is None:
            st.error = msg.error or "provider has no usable configuration"
            events.provider_error(msg.provider, st.error,
                                  f"provider {msg.provider}: {st.error}; keeping its last good configuration")
            return
        st.error = None
        if st.window is not None:
            st.pending = msg
            return
        self._apply(msg.provider, st, msg)

    def _apply(self, provider: str, st: _ProviderState, msg: ProviderMessage) -> None:
        assert msg.config is not None
        if st.applied is not None and msg.config == st.applied and st.last_message is not None \
                and msg.problems == st.last_message.problems:
            log.debug("provider %s: configuration unchanged, skipped", provider)
            return
        st.applied = msg.config
        st.last_message = msg
        self._publish()
        if self.throttle > 0:
            loop = asyncio.get_running_loop()
            st.window = loop.call_later(self.throttle, self._window_closed, provider)

    def _window_closed(self, provider: str) -> None:
        st = self._providers[provider]
        st.window = None
        pending, st.pending = st.pending, None
        if pending is not None:
            self._apply(provider, st, pending)

    def _publish(self) -> None:
        configs = {name: st.applied for name, st in self._providers.items() if st.applied is not None}
        messages = {name: st.last_message for name, st in self._providers.items()
                    if st.last_message is not None}
        self.apply(configs, messages)

    def close(self) -> None:
        for st in self._providers.values():
            if st.window is not None:
                st.window.cancel()
                st.window = None
