"""The one recording seam: every exchange an entry point serves ends here (metrics, access log).

Contract (others may code against it):

* ``EntryPoint.observer`` is ``None`` when nothing records requests on that entry point (neither
  metrics, nor access logs, nor a watching dashboard): connections then pay one attribute test per
  request and nothing else.
* Otherwise it is an :class:`Observer`. Connections call ``observer.begin(ex)`` once per request,
  right after building the :class:`~ferryman.http.exchange.Exchange` and before routing (HTTP/2
  and HTTP/3; HTTP/1.1 inlines the same stores). The client connection -- the innermost response
  sink, so it sees what the client really gets -- keeps ``ex.status`` and counts ``ex.sent``
  (response body bytes) for every exchange; while ``ex.obs`` is set it also keeps
  ``ex.resp_headers``/``ex.resp_length`` from the head (read only once ``ex.status`` is set), and
  it calls ``ex.obs.finish(ex, trailers)`` when the response ends. An aborted exchange or a client
  gone before the end goes through :func:`lost` (Traefik's 499 when no status was sent).
* Others fill in what only they know, guarded by ``ex.obs is not None``: the forwarder
  ``ex.obs_upstream``, basicAuth/digestAuth/forwardAuth ``ex.obs_user``, retry ``ex.obs_retries``.
* ``finish`` copies the facts into one tuple of plain values (layout ``E_*``)
  appended to the process-wide :class:`Recording`; nothing else happens per request. (``finish``
  is :meth:`Observer.finish_py` or its compiled twin, ``ferryman._speedups.Finisher``; the
  consumers' loops have compiled twins too, see :data:`speedups` and ADR 0015.) Every
  :data:`TICK` seconds (:data:`IDLE_TICK` while nothing finishes) the event loop hands the
  collected tuples, as one batch, to each consumer
  (:class:`BatchConsumer`: metrics, the access log, the dashboard's counter), which aggregates or
  formats them in tight loops over chunks of the batch, between I/O callbacks (only the access
  log's ``write`` leaves the loop, for a writer thread). Readers that must see every finished
  request (a Prometheus scrape, ``/api/traffic``) call :meth:`Recording.flush` and then process
  what is waiting, on the spot.
* Which consumers want an entry is a bit mask in the entry (``E_MASK``): requests served by
  ``*@internal`` routers (API, ping, metrics, dashboard) only carry the bits of consumers that asked
  for internals (``metrics.addInternals`` / ``accessLog.addInternals``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from time import perf_counter_ns, time_ns
from typing import TYPE_CHECKING, Any, Final, Protocol

from ferryman.http.exchange import X_WEBSOCKET
from ferryman.observability.logs import get_logger

if TYPE_CHECKING:
    from ferryman.http.exchange import Exchange, Headers

__all__ = ["IDLE_TICK", "TICK", "BatchConsumer", "Entry", "Observer", "Recording", "lost", "wall_offset"]

log = get_logger("ferryman.recorder")

#: How often (seconds) the loop hands the finished exchanges to the consumers while requests
#: finish. Short on purpose: a batch of 10 ms (~350 entries at 35k req/s) is still in the CPU caches
#: when it is processed and its memory is reused for the next one; with 100 ms, the entries of a
#: busy proxy (~1.5 MB) left the caches first and the allocator kept asking the kernel for fresh
#: pages (measured: the CPU cost of metrics + access log, +3.3 us -> +1.9 us per request).
TICK: Final = 0.01
#: The interval while nothing finishes (an idle proxy wakes up ten times a second for this, no more).
IDLE_TICK: Final = 0.1

#: One finished exchange, plain values only (see the ``E_*`` indexes).
Entry = tuple[Any, ...]

# ---- entry layout. Two nested tuples are ready-made keys for the consumers: ``E_LABELS`` the
# metrics slot's labels, ``E_LINE`` the cached middle of a CLF line. The consumers' hot loops
# index entries with these numbers literally (keep them in step).
E_MASK: Final = 0  #: bits of the consumers that want it
#: ``(entrypoint, service, protocol, code, router, method)`` (``K_*``): metrics labels; protocol
#: is http, websocket, grpc, grpc-web or sse; code the HTTP status, or the gRPC status for gRPC
E_LABELS: Final = 1
#: ``(router, method, target, version, status, size, upstream, referer, ua)`` (``L_*``): the
#: target as received, the response body bytes sent, the server URL ("" if none), the first
#: Referer / User-Agent values (None when absent or not shown by the access log)
E_LINE: Final = 2
E_SIZE: Final = 3  #: response body bytes sent (also in E_LINE)
E_REQ_SIZE: Final = 4  #: request body bytes (Content-Length; 0 when streamed)
E_START: Final = 5  #: start, ``perf_counter_ns`` (see :func:`wall_offset`)
E_DURATION: Final = 6  #: nanoseconds
E_RETRIES: Final = 7
E_CLIENT_IP: Final = 8
E_CLIENT_PORT: Final = 9
E_USER: Final = 10  #: ClientUsername ("-" if none)
E_TLS: Final = 11  #: ``(version, cipher)`` on TLS connections, else None
E_HEADER_LABELS: Final = 12  #: metrics ``headerLabels`` values (a tuple of str), or None
#: json access log: ``(authority, scheme, response length, response headers, request headers)``
#: (the header lists -- the only non-atomic values -- only when headers are logged), else None
E_EXTRA: Final = 13
# E_LABELS
K_EP: Final = 0
K_SERVICE: Final = 1
K_PROTO: Final = 2
K_CODE: Final = 3
K_ROUTER: Final = 4
K_METHOD: Final = 5
# E_LINE
L_ROUTER: Final = 0
L_METHOD: Final = 1
L_TARGET: Final = 2
L_VERSION: Final = 3
L_STATUS: Final = 4
L_SIZE: Final = 5
L_UPSTREAM: Final = 6
L_REFERER: Final = 7
L_UA: Final = 8

#: ``E_EXTRA``
Extra = tuple[bytes, bytes, int, "Headers | None", "Headers | None"]

_GRPC: Final = b"application/grpc"
_GRPC_WEB: Final = b"application/grpc-web"


def entry_names(e: Entry) -> tuple[str, str | None, str | None]:
    """``(entry point, router, service)`` of an entry (for consumers off the hot loops)."""
    labels = e[E_LABELS]
    return labels[K_EP], labels[K_ROUTER], labels[K_SERVICE]


#: Entries a consumer processes at a time before the loop serves I/O again (~0.2-0.5 ms).
CHUNK: Final = 512


def chunks(batch: list[Entry]) -> list[list[Entry]]:
    """``batch`` in slices of at most :data:`CHUNK` entries."""
    if len(batch) <= CHUNK:
        return [batch]
    return [batch[i:i + CHUNK] for i in range(0, len(batch), CHUNK)]


class Speedups(Protocol):
    """What ``ferryman._speedups`` offers: the compiled twins of the recording's loops (see the C
    source's docstrings)."""

    def clf_lines(self, batch: list[Entry], bit: int, offset: int, count: int,
                  parts: dict[tuple[Any, ...], tuple[str, str]], make_parts: Callable[[tuple[Any, ...]], tuple[str, str]],
                  stamp: Callable[[int], str], /) -> tuple[bytes, int, int]: ...

    def json_lines(self, batch: list[Entry], bit: int, offset: int, count: int, keep: int,
                   start_clock: Callable[[int], tuple[str, str, str]], end_clock: Callable[[int], tuple[str, str, str]],
                   headers: tuple[dict[bytes, tuple[str, int]], Callable[[bytes], tuple[str, int]]] | None,
                   /) -> tuple[bytes, int, int]: ...

    def metrics_add(self, batch: list[Entry], bit: int, slots: dict[Any, list[Any]], width: int,
                    bounds: tuple[int, ...], rare: bool, /) -> tuple[int, list[Entry]]: ...

    def Finisher(self, mask: int, internal_mask: int, internal: set[str | None], pending: list[Entry],
                 scan: int, websocket_bit: int, fallback: Callable[..., None], json: int = 0, /
                 ) -> Callable[..., None]: ...


def _load_speedups() -> Speedups | None:
    """The compiled loops of the consumers (``ferryman._speedups``), unless not built or
    ``FERRYMAN_NO_SPEEDUPS`` is set; the consumers' Python loops are the reference."""
    if os.environ.get("FERRYMAN_NO_SPEEDUPS"):
        return None
    try:
        from ferryman import _speedups as module
    except ImportError:
        return None
    return module


#: ``ferryman._speedups`` or None (see :func:`_load_speedups`)
speedups: Speedups | None = _load_speedups()


class BatchConsumer(Protocol):
    """Takes the batches of finished exchanges (called on the event loop: keep it cheap)."""

    def take(self, batch: list[Entry]) -> None: ...


def is_sse(accept: bytes) -> bool:
    """Traefik's SSE test: ``text/event-stream`` is one of the comma-separated Accept values
    (trimmed, any case)."""
    if accept.lower().find(b"text/event-stream") < 0:  # cheap refusal first
        return False
    return any(item.strip().lower() == b"text/event-stream" for item in accept.split(b","))


def grpc_status(headers: Headers | None, trailers: Headers | None) -> int:
    """The ``grpc-status`` of a gRPC response: trailers first, then the head (trailers-only)."""
    for source in (trailers, headers):
        for name, value in source or ():
            if name.lower() == b"grpc-status":
                try:
                    return int(value)
                except ValueError:
                    return 2  # UNKNOWN
    return 0


class Recording:
    """Process-wide: the finished exchanges of the current tick, and who takes them.

    Everything here runs on the event loop thread: ``pending`` is appended to per request and
    handed over (copied, cleared) at each tick, so the request path takes no lock. Consumers that
    have work to do with a batch (metrics, access log) register a ``work()`` that processes one
    chunk of what they were given and says whether more is waiting; after a tick the recording
    calls them chunk by chunk, letting the loop serve I/O in between (``call_soon``), so no request
    waits for more than one chunk. Readers that need everything up to now call :meth:`flush` and
    :meth:`work`.

    (A worker thread did this before: on one core, handing the GIL back and forth with it cost
    more CPU per request than the work itself. Only the access log's ``write`` leaves the loop.)"""

    def __init__(self) -> None:
        self.pending: list[Entry] = []
        #: names of the ``*@internal`` routers being served (kept up to date on each apply; the
        #: same set object for ever, observers hold it)
        self.internal_routers: set[str | None] = set()
        #: bit -> consumer (bit = 1 << index)
        self.consumers: list[BatchConsumer] = []
        self._workers: list[Callable[[], bool]] = []
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False

    def register(self, consumer: BatchConsumer, work: Callable[[], bool] | None = None) -> int:
        """Adds a consumer; returns its bit. ``work()`` processes one chunk of what the consumer
        took and returns whether more is waiting."""
        self.consumers.append(consumer)
        if work is not None:
            self._workers.append(work)
        return 1 << (len(self.consumers) - 1)

    def flush(self) -> None:
        """Hands what finished so far to every consumer."""
        pending = self.pending
        if not pending:
            return
        batch = pending.copy()
        pending.clear()  # the same list: observers keep its bound ``append``
        for consumer in self.consumers:
            consumer.take(batch)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is not None or not self.consumers:
            return
        self._loop = loop
        self._handle = loop.call_later(TICK, self._tick)

    def _tick(self) -> None:
        loop = self._loop
        if loop is None:
            return
        busy = bool(self.pending)
        self._handle = loop.call_later(TICK if busy else IDLE_TICK, self._tick)
        if busy:
            self.flush()
        if self._workers and not self._draining:
            # also what a reader's flush() handed over without processing everything
            self._draining = True
            self._drain()

    def _drain(self) -> None:
        if self.work_some() and self._loop is not None:
            self._loop.call_soon(self._drain)
        else:
            self._draining = False

    def work_some(self) -> bool:
        """One chunk for every consumer with work; whether any has more waiting."""
        more = False
        for work in self._workers:
            try:
                if work():
                    more = True
            except Exception:  # a consumer's bug must not stop the others
                log.exception("observability consumer failed")
        return more

    def work(self) -> None:
        """All the consumers' waiting work, now."""
        while self.work_some():
            pass

    def close(self) -> None:
        """Hands over and processes what is left (shutdown)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._loop = None
        self.flush()
        self.work()


class Observer:
    """Per entry point: the consumers' bits for ordinary and for ``*@internal`` requests, and the
    capture function for what those consumers need."""

    __slots__ = ("_append", "_internal", "clf_headers", "finish", "internal_mask", "json", "json_headers", "label_headers",
                 "mask", "protocols", "rare", "recording", "scan")

    def __init__(self, recording: Recording, mask: int, internal_mask: int = 0, *, protocols: bool = False,
                 clf_headers: bool = False, label_headers: Sequence[bytes] = (), json: bool = False,
                 json_headers: bool = False) -> None:
        self.recording = recording
        self._append = recording.pending.append
        self._internal = recording.internal_routers
        #: consumers wanting this entry point's requests
        self.mask = mask
        #: those of them that also want requests of ``*@internal`` routers
        self.internal_mask = internal_mask
        #: request headers whose values label metrics (``headerLabels``)
        self.label_headers = tuple(label_headers)
        #: metrics record: find the protocol label (``E_PROTO``, ``E_CODE``)
        self.protocols = protocols
        #: the CLF access log shows the Referer / User-Agent (``E_LINE``'s Referer and User-Agent)
        self.clf_headers = clf_headers
        #: the access log is json (``E_EXTRA``), and logs headers (keep the header lists there)
        self.json = json
        self.json_headers = json_headers
        #: which request headers to look at: 0 none, 1 for the protocol, 2 also Referer/User-Agent
        self.scan = 2 if clf_headers else 1 if protocols else 0
        self.rare = bool(self.label_headers) or json
        #: ``finish(ex, trailers=None, status=0)``: :meth:`finish_py`, or its compiled common case
        #: (``ferryman._speedups.Finisher``, which calls :meth:`finish_py` for the rest)
        self.finish: Callable[..., None] = self.finish_py
        if speedups is not None and not self.label_headers:
            self.finish = speedups.Finisher(mask, internal_mask, self._internal, recording.pending, self.scan,
                                            X_WEBSOCKET, self.finish_py, (2 if json_headers else 1) if json else 0)

    def with_mask(self, extra: int) -> Observer:
        """The same observer with more consumers (not for internals)."""
        return Observer(self.recording, self.mask | extra, self.internal_mask, protocols=self.protocols,
                        clf_headers=self.clf_headers, label_headers=self.label_headers, json=self.json,
                        json_headers=self.json_headers)

    def begin(self, ex: Exchange) -> None:
        ex.obs = self
        ex.obs_start = perf_counter_ns()
        ex.obs_target = ex.target
        ex.obs_user = "-"
        ex.obs_upstream = ""
        ex.obs_retries = 0

    def finish_py(self, ex: Exchange, trailers: Headers | None = None, status: int = 0) -> None:
        """``finish``: the response ended (or failed; ``status`` replaces an unset ``ex.status``):
        record it once, as one tuple of plain values (layout ``E_*``; a tuple of atoms is untracked
        by the cyclic GC at its first pass, so a tick's worth of them costs the GC nothing)."""
        end = perf_counter_ns()
        ex.obs = None
        router = ex.router
        mask = self.mask
        if router in self._internal:
            mask = self.internal_mask
            if not mask:
                return
        status = ex.status or status
        code = status
        proto = "http"
        referer = ua = None
        scan = self.scan
        if scan:
            ctype = accept = None
            if scan == 1:  # metrics: only what the protocol label depends on
                for name, value in ex.headers:
                    if name == b"accept":
                        if accept is None:
                            accept = value
                    elif name == b"content-type" and ctype is None:
                        ctype = value
            else:  # and the Referer / User-Agent of the CLF line
                for name, value in ex.headers:
                    if name == b"user-agent":
                        if ua is None:
                            ua = value
                    elif name == b"accept":
                        if accept is None:
                            accept = value
                    elif name == b"content-type":
                        if ctype is None:
                            ctype = value
                    elif name == b"referer" and referer is None:
                        referer = value
            # Traefik's protocol label, in its order: websocket, sse, grpc-web, grpc, else http
            if ex.flags & X_WEBSOCKET:
                proto = "websocket"
            elif accept is not None and len(accept) >= 17 and is_sse(accept):
                proto = "sse"
            elif ctype is not None and ctype.startswith(_GRPC):
                proto = "grpc-web" if ctype.startswith(_GRPC_WEB) else "grpc"
                code = grpc_status(ex.resp_headers if ex.status else None, trailers)
        conn = ex.conn
        start = ex.obs_start
        length = ex.body_length
        method = ex.method
        size = ex.sent
        labels = extra = None
        if self.rare:
            labels, extra = self._rare(ex)
        self._append((mask, (conn.entrypoint, ex.service, proto, code, router, method),
                      (router, method, ex.obs_target, ex.version, status, size, ex.obs_upstream, referer, ua),
                      size, length if length > 0 else 0, start, end - start, ex.obs_retries, conn.client_ip,
                      conn.client_port, ex.obs_user, conn.tls_names() if conn.tls else None, labels, extra))

    def _rare(self, ex: Exchange) -> tuple[tuple[str, ...] | None, Extra | None]:
        """``headerLabels`` values and the json access log's extras."""
        labels = tuple((ex.header(h) or b"").decode("latin-1") for h in self.label_headers) \
            if self.label_headers else None
        extra: Extra | None = None
        if self.json:
            # the head's facts exist once a status was sent (the connection keeps them)
            length = ex.resp_length if ex.status else -1
            if self.json_headers:
                ex.materialize_forwarded()  # Traefik logs the X-Forwarded-* it adds
                extra = (ex.authority, ex.conn.scheme, length, ex.resp_headers if ex.status else None, ex.headers)
            else:
                extra = (ex.authority, ex.conn.scheme, length, None, None)
        return labels, extra


def lost(ex: Exchange) -> None:
    """The client went away (or the response was aborted) before the end: Traefik logs 499 when
    no status was sent."""
    obs = ex.obs
    if obs is not None:
        obs.finish(ex, None, 499)


def wall_offset() -> int:
    """``time_ns() - perf_counter_ns()`` now: turns ``E_START`` into wall-clock time."""
    return time_ns() - perf_counter_ns()

