"""The Docker provider: Traefik's ``providers.docker`` against a real Docker engine.

One session against the engine: negotiate the API version, open the ``/events`` stream (container
events only) *before* listing, so nothing that happens during the listing is missed, then list the
containers, inspect the ones that can be served, translate them
(:func:`~ferryman.providers.docker_config.build_configuration`) and emit the configuration. Every
event that can change what is served (start, die, stop, destroy, pause, unpause, restart,
rename, health_status) marks the configuration dirty; one refresher re-lists while it is dirty,
so a burst of events costs one or two listings and a single event is acted on at once.

When the engine goes away (socket closed, refused, stream cut, timeout) the session ends, the
provider keeps quiet — the watcher keeps serving the last configuration — and a new session is
tried after a capped exponential backoff (0.25 s doubling to 5 s); when it succeeds the
configuration is listed afresh. See ADR 0008.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ferryman.errors import ConfigError
from ferryman.providers.base import ElementProblem, Emit, ProviderMessage
from ferryman.providers.docker_config import (
    ContainerInfo,
    DockerSettings,
    build_configuration,
    container_from_inspect,
    settings_errors,
)
from ferryman.providers.docker_engine import EngineClient, EngineError, NotFound, parse_endpoint, tls_context

if TYPE_CHECKING:
    from ferryman.static.models import DockerProvider as StaticDocker

__all__ = ["REFRESH_ACTIONS", "Backoff", "DockerProvider", "docker_provider"]

log = logging.getLogger("ferryman.providers.docker")

#: Container events after which the served containers may differ.
REFRESH_ACTIONS = frozenset({"start", "restart", "die", "stop", "destroy", "pause", "unpause",
                             "rename", "update"})
#: Element kinds merge knows; other problems (a skipped container...) are logged here.
_ELEMENT_KINDS = frozenset({"http.routers", "http.services", "http.middlewares", "http.serversTransports",
                            "tls.options", "tls.stores"})
_HOST_NAMES = ("host.docker.internal", "host.containers.internal")


class Backoff:
    """Capped exponential backoff: ``initial``, doubling up to ``cap``; ``reset()`` after success."""

    def __init__(self, initial: float = 0.25, cap: float = 5.0) -> None:
        self.initial = initial
        self.cap = cap
        self.current = initial

    def next(self) -> float:
        delay = self.current
        self.current = min(self.current * 2, self.cap)
        return delay

    def reset(self) -> None:
        self.current = self.initial


def _bool(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "t", "yes")


class DockerProvider:
    name = "docker"

    def __init__(self, *, endpoint: str = "unix:///var/run/docker.sock", settings: DockerSettings | None = None,
                 watch: bool = True, http_client_timeout: float = 0.0, username: str = "", password: str = "",
                 tls: Mapping[str, Any] | None = None, backoff: Backoff | None = None) -> None:
        ctx = tls_context(**tls) if tls is not None else None
        self.endpoint = parse_endpoint(endpoint, ctx)
        self.settings = settings or DockerSettings()
        self.watch = watch
        self.client = EngineClient(self.endpoint, timeout=http_client_timeout, username=username,
                                   password=password)
        self.backoff = backoff or Backoff()
        self._logged: frozenset[str] = frozenset()
        self._host_ip: str | None = None
        #: container id → (state, health) as last listed
        self.states: dict[str, tuple[str, str]] = {}

    # -- reading the engine ---------------------------------------------------------------------

    async def _host_address(self) -> str:
        """Traefik's address for host-network containers: ``host.docker.internal``, then
        ``host.containers.internal``, else 127.0.0.1 (looked up once per session, 1 s at most)."""
        if self._host_ip is None:
            self._host_ip = ""
            loop = asyncio.get_running_loop()
            for name in _HOST_NAMES:
                try:
                    async with asyncio.timeout(1.0):
                        infos = await loop.getaddrinfo(name, None, family=socket.AF_INET, type=socket.SOCK_STREAM)
                except (OSError, TimeoutError):
                    continue
                if infos:
                    self._host_ip = str(infos[0][4][0])
                    break
        return self._host_ip

    async def _inspect(self, ident: str, sem: asyncio.Semaphore) -> Mapping[str, Any] | None:
        async with sem:
            try:
                data = await self.client.get_json(f"/containers/{ident}/json")
            except NotFound:
                return None  # removed since the listing
        return data if isinstance(data, Mapping) else None

    async def containers(self) -> list[ContainerInfo]:
        """The containers that may be served, inspected (running ones, and stopped ones that
        carry ``traefik.docker.allownonrunning=true``)."""
        listed = await self.client.get_json("/containers/json", {"all": "1"})
        if not isinstance(listed, list):
            raise EngineError("/containers/json: not a list")
        wanted: list[str] = []
        states: dict[str, tuple[str, str]] = {}
        for item in listed:
            if not isinstance(item, Mapping):
                continue
            states[str(item.get("Id", ""))] = (str(item.get("State", "")), "")
            labels = item.get("Labels") or {}
            allow = any(k.lower() == "traefik.docker.allownonrunning" and _bool(v) for k, v in labels.items())
            if item.get("State") == "running" or allow:
                wanted.append(str(item.get("Id", "")))
        sem = asyncio.Semaphore(8)
        inspected = await asyncio.gather(*(self._inspect(i, sem) for i in wanted if i))
        out: list[ContainerInfo] = []
        peers: dict[str, ContainerInfo | None] = {}
        for data in inspected:
            if data is None:
                continue
            info = container_from_inspect(data)
            states[info.id] = (info.state, info.health)
            mode = info.network_mode
            if mode.startswith("container:"):
                peer_id = mode.split(":", 1)[1]
                if peer_id not in peers:
                    peer_data = await self._inspect(peer_id, sem)
                    peers[peer_id] = container_from_inspect(peer_data) if peer_data is not None else None
                peer = peers[peer_id]
                if peer is not None:
                    info = dataclasses.replace(info, network_mode=peer.network_mode, networks=peer.networks)
            if info.network_mode == "host":
                host_ip = await self._host_address()
                if host_ip:
                    info = dataclasses.replace(info, node_ip=host_ip)
            out.append(info)
        self.states = states
        return out

    async def load(self) -> ProviderMessage:
        containers = await self.containers()
        config, problems, warnings = await asyncio.to_thread(build_configuration, containers, self.settings)
        self._log_problems(problems)
        return ProviderMessage(self.name, config, problems=tuple(problems), warnings=tuple(warnings))

    def _log_problems(self, problems: list[ElementProblem]) -> None:
        """Problems merge cannot attach to an element (a container skipped as a whole, bad
        constraints) are logged here, once per appearance."""
        current = frozenset(p.message for p in problems if p.kind not in _ELEMENT_KINDS)
        for message in sorted(current - self._logged):
            log.error("provider docker: %s", message, extra={"fields": {"providerName": self.name}})
        self._logged = current

    def _reflects(self, ident: str, action: str) -> bool:
        """Whether the last listing shows the state an event announced."""
        state, health = self.states.get(ident, ("", ""))
        if action == "destroy":
            return ident not in self.states
        if action in ("start", "restart", "unpause"):
            return state == "running"
        if action == "pause":
            return state == "paused"
        if action in ("die", "stop"):
            return state != "running"
        if action.startswith("health_status:"):
            return state != "running" or health == action.split(":", 1)[1].strip()
        return True

    # -- running ---------------------------------------------------------------------------------

    async def run(self, emit: Emit) -> None:
        while True:
            try:
                await self._session(emit)
                return  # watch: false, listed once
            except Exception as exc:  # an engine problem, or a bug: never let the provider die
                delay = self.backoff.next()
                self._host_ip = None
                fields = {"fields": {"providerName": self.name, "endpoint": self.endpoint.text}}
                if isinstance(exc, EngineError):
                    log.error("provider docker: %s; keeping the last configuration, retrying in %.2gs", exc,
                              delay, extra=fields)
                else:
                    log.exception("provider docker: unexpected error; keeping the last configuration, "
                                  "retrying in %.2gs", delay, extra=fields)
                await asyncio.sleep(delay)

    async def _session(self, emit: Emit) -> None:
        version = await self.client.negotiate()
        events = None
        if self.watch:
            events = await self.client.open_stream("/events", {"filters": {"type": ["container"]}})
        try:
            emit(await self.load())
        except BaseException:
            if events is not None:
                await events.aclose()
            raise
        log.info("provider docker: connected", extra={"fields": {
            "providerName": self.name, "endpoint": self.endpoint.text, "apiVersion": version}})
        self.backoff.reset()
        if events is None:
            return
        dirty = asyncio.Event()
        expected: dict[str, str] = {}  # container id → the action its state must reflect

        async def refresher() -> None:
            # The engine sends some events (unpause, start) just before the state it lists
            # changes: when the listing does not show what an event announced yet, list again
            # shortly after, so the change is never missed until the next event.
            delay = 0.0
            while True:
                if delay:
                    try:
                        async with asyncio.timeout(delay):
                            await dirty.wait()
                    except TimeoutError:
                        pass
                else:
                    await dirty.wait()
                dirty.clear()
                emit(await self.load())
                for ident in [i for i, action in expected.items() if self._reflects(i, action)]:
                    del expected[ident]
                delay = min(delay * 2, 1.0) if delay else 0.02
                if not expected:
                    delay = 0.0
                elif delay >= 1.0:
                    log.warning("provider docker: the engine's listing still does not reflect %s",
                                ", ".join(f"{a} of {i[:12]}" for i, a in expected.items()))
                    expected.clear()
                    delay = 0.0

        async def reader() -> None:
            try:
                async for event in events:
                    if not isinstance(event, Mapping):
                        continue
                    action = str(event.get("Action") or event.get("status") or "")
                    if action in REFRESH_ACTIONS or action.startswith("health_status"):
                        ident = str(event.get("id") or (event.get("Actor") or {}).get("ID") or "")
                        log.debug("provider docker: event %s %s", action, ident)
                        if ident:
                            expected[ident] = action
                        dirty.set()
            finally:
                await events.aclose()

        tasks = {asyncio.ensure_future(refresher()), asyncio.ensure_future(reader())}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for t in done:
            exc = t.exception()
            if exc is not None:
                raise exc
        raise EngineError("the Docker engine closed the event stream")


def docker_provider(static: StaticDocker) -> DockerProvider:
    """The provider for ``providers.docker``; raises :class:`ConfigError` for unusable TLS files
    or endpoints."""
    settings = DockerSettings(
        exposed_by_default=static.exposed_by_default, default_rule=static.default_rule, network=static.network,
        constraints=static.constraints, allow_empty_services=static.allow_empty_services,
        use_bind_port_ip=static.use_bind_port_ip)
    errors = settings_errors(settings)
    if errors:
        option, message = errors[0]
        raise ConfigError(message, source="static configuration", path=f"providers.docker.{option}",
                          fix="constraints: Label(`key`, `value`) / LabelRegex(`key`, `re`) with && || ! ()"
                          if option == "constraints" else
                          "defaultRule: a Go template such as Host(`{{ normalize .Name }}.example.com`)")
    tls = None
    if static.tls is not None:
        tls = {"ca": static.tls.ca, "cert": static.tls.cert, "key": static.tls.key,
               "insecure_skip_verify": static.tls.insecure_skip_verify}
    try:
        return DockerProvider(endpoint=static.endpoint, settings=settings, watch=static.watch,
                              http_client_timeout=static.http_client_timeout, username=static.username,
                              password=static.password, tls=tls)
    except ValueError as exc:
        raise ConfigError(str(exc), source="static configuration", path="providers.docker",
                          fix="check providers.docker.endpoint and providers.docker.tls") from None
