"""Prometheus metrics with Traefik's names, types and labels (``metrics.prometheus``).

Off the request path: :class:`Metrics` is a :mod:`~ferryman.observability.recorder` batch
consumer. Each batch of finished exchanges is added to plain per-label-tuple slots (a list per
``(entrypoint, service, protocol, code, router, method)``) -- no ``prometheus_client`` object is
touched per request. :class:`TraefikCollector` first adds whatever finished up to the scrape, then
turns the slots into metric families, and :class:`PrometheusService` (``prometheus@internal``)
serves them in the text format.

Families (as Traefik 3.7 exposes them; ``traefik_`` prefix):

* ``config_reloads_total`` (counter), ``config_last_reload_success`` (gauge, unix seconds),
  ``open_connections{entrypoint,protocol}`` (gauge), ``tls_certs_not_after{cn,serial,sans}``;
* with ``addEntryPointsLabels`` (default on): ``entrypoint_requests_total{code,method,protocol,
  entrypoint[,headerLabels]}``, ``entrypoint_request_duration_seconds`` (histogram, ``buckets``),
  ``entrypoint_requests_bytes_total``, ``entrypoint_responses_bytes_total``,
  ``entrypoint_requests_tls_total{tls_version,tls_cipher,entrypoint}``;
* with ``addRoutersLabels`` (default off): the same as ``router_*`` with ``router`` and the
  router's ``service`` instead of ``entrypoint``;
* with ``addServicesLabels`` (default on): ``service_*`` with ``service``, plus
  ``service_retries_total{service}`` and ``service_server_up{service,url}``.

Other parts report through the registry: :meth:`Metrics.config_reloaded` (the watcher/app after
each apply), :meth:`Metrics.set_server_up` (health checks). ``request_counts()`` gives request counts
per router/service/entry point for the dashboard.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from ferryman.observability.recorder import (
    E_HEADER_LABELS,
    E_LABELS,
    E_MASK,
    E_RETRIES,
    E_TLS,
    K_CODE,
    K_METHOD,
    K_PROTO,
    K_ROUTER,
    chunks,
    entry_names,
    speedups,
)

if TYPE_CHECKING:
    from ferryman.http.exchange import Exchange
    from ferryman.observability.recorder import Entry

__all__ = ["DEFAULT_BUCKETS", "Metrics", "PrometheusService", "TraefikCollector"]

DEFAULT_BUCKETS = (0.1, 0.3, 1.2, 5.0)

#: A slot: ``[count, request bytes, response bytes, duration sum (ns), bucket0, ..., bucketN, +Inf]``
#: (bucket counts are per bucket, made cumulative at scrape time).
Slot = list[Any]
#: ``(method, code, protocol)`` -> slot
Table = dict[tuple[bytes, int, str], Slot]

_MASK = itemgetter(E_MASK)


def _nothing() -> None:
    pass


def _add_run(slot: Slot, count: int, req: int, resp: int, total: int, fast: int) -> None:
    """A run of requests with the same labels: counts, bytes, duration sum, first bucket."""
    slot[0] += count
    slot[1] += req
    slot[2] += resp
    slot[3] += total
    slot[4] += fast


class Metrics:
    """The registry: slots filled per request, read by :class:`TraefikCollector` at scrape time."""

    def __init__(self, *, buckets: Iterable[float] = DEFAULT_BUCKETS, entry_points: bool = True,
                 routers: bool = False, services: bool = True,
                 header_labels: Mapping[str, str] | None = None) -> None:
        self.buckets = tuple(sorted(float(b) for b in buckets))
        #: the bucket bounds in nanoseconds (durations are kept as integer nanoseconds)
        self._bounds_ns = tuple(round(b * 1e9) for b in self.buckets)
        self._width = 4 + len(self.buckets) + 1
        self.entry_points_on = entry_points
        self.routers_on = routers
        self.services_on = services
        #: label name -> lower-case request header (``headerLabels``), on ``*_requests_total`` only
        self.header_labels = tuple((label, header.lower().encode()) for label, header in (header_labels or {}).items())
        #: ``(entrypoint, service, protocol, code, router, method)`` -> slot (the order of the
        #: recording's entries: one slice of each)
        self.slots: dict[tuple[str, str | None, str, int, str | None, bytes], Slot] = {}
        #: ``(kind, name, method, code, protocol, *header values)`` -> count (with headerLabels)
        self.labelled: dict[tuple[Any, ...], int] = {}
        #: ``(kind, name, tls_version, tls_cipher)`` -> count
        self.tls: dict[tuple[str, str, str, str], int] = {}
        self.retries: dict[str, int] = {}
        self.server_up: dict[tuple[str, str], float] = {}
        #: routers with ``observability.metrics: false`` (set on each apply)
        self.muted: frozenset[str] = frozenset()
        #: router -> its service (the ``service`` label of router metrics), set on each apply
        self.router_services: dict[str, str] = {}
        self.reloads = 0
        self.last_reload_success = 0.0
        #: this consumer's bit in the entries (:meth:`Recording.register`)
        self.bit = 1
        #: hands the recording's pending entries to the consumers (set by whoever wires it)
        self.flush: Callable[[], None] = _nothing
        self._inbox: deque[list[Entry]] = deque()
        #: ``() -> [(entrypoint, protocol, count)]`` and ``() -> [(cn, serial, sans, not_after)]``
        self.open_connections: Callable[[], Iterable[tuple[str, str, int]]] = list
        self.certificates: Callable[[], Iterable[tuple[str, str, str, float]]] = list

    # ------------------------------------------------------------------ reported by other parts

    def config_reloaded(self, success: bool = True) -> None:
        """One configuration apply (Traefik counts every reload; a success stamps the time)."""
        self.reloads += 1
        if success:
            self.last_reload_success = time.time()

    def set_server_up(self, service: str, url: str, up: bool) -> None:
        self.server_up[(service, url)] = 1.0 if up else 0.0

    def set_routers(self, router_services: Mapping[str, str]) -> None:
        """Router -> service names of the configuration being served (router metrics' labels)."""
        self.router_services = dict(router_services)

    # ------------------------------------------------------------------ recording (batches)

    def take(self, batch: list[Entry]) -> None:
        """:class:`~ferryman.observability.recorder.BatchConsumer`: keep the batch for :meth:`work`."""
        self._inbox.extend(chunks(batch))

    def work(self) -> bool:
        """Adds one waiting chunk to the slots; whether more is waiting."""
        inbox = self._inbox
        if inbox:
            self._add(inbox.popleft())
        return bool(inbox)

    def sync(self) -> None:
        """Everything finished up to now is in the slots (a scrape, the dashboard)."""
        self.flush()
        while self.work():
            pass

    def _add(self, batch: list[Entry]) -> None:
        """One tight loop per batch. Consecutive requests with the same labels (the common case:
        a busy router) are summed in local variables and added to their slot once per run; a new
        label set costs one dictionary look-up (the entry point, router and service families are
        sums over slots, made at scrape time)."""
        bit = self.bit
        muted = self.muted
        slots = self.slots
        width = self._width
        bounds = self._bounds_ns
        first = bounds[0] if bounds else -1
        rare = bool(self.header_labels)
        key: tuple[Any, ...] | None = None
        slot: Slot = []
        count = req = resp = total = fast = 0
        if speedups is not None and not muted:
            # the compiled loop below; it stops at what it does not handle, Python does the rest
            stop, rare_entries = speedups.metrics_add(batch, bit, slots, width, bounds, rare)
            for e in rare_entries:
                self._add_rare(e)
            if stop == len(batch):
                return
            batch = batch[stop:]
        if muted or not all(map(bit.__and__, map(_MASK, batch))):
            batch = [e for e in batch if e[E_MASK] & bit and not (muted and e[E_LABELS][K_ROUTER] in muted)]
        for e in batch:
            # layout: recorder.E_* (1 labels, 3 size, 4 request size, 6 duration, 7 retries, 11 tls)
            labels = e[1]  # (entrypoint, service, protocol, code, router, method)
            if labels != key:
                if count:
                    _add_run(slot, count, req, resp, total, fast)
                key = labels
                slot = slots.get(key)  # type: ignore[assignment]
                if slot is None:
                    slot = slots[key] = [0] * width
                count = req = resp = total = fast = 0
            ns = e[6]
            count += 1
            req += e[4]
            resp += e[3]
            total += ns
            if ns <= first:  # most requests: no search
                fast += 1
            else:
                slot[4 + bisect_left(bounds, ns)] += 1
            if e[7] or e[11] is not None or rare:
                self._add_rare(e)
        if count:
            _add_run(slot, count, req, resp, total, fast)

    def _add_rare(self, e: Entry) -> None:
        """Retries, TLS and ``headerLabels`` counters."""
        ep, router, service = entry_names(e)
        retries = e[E_RETRIES]
        if retries and service is not None:
            self.retries[service] = self.retries.get(service, 0) + retries
        levels = self._levels(ep, router, service)
        labels = e[E_HEADER_LABELS]
        if labels is not None:
            key = e[E_LABELS]
            sub = (key[K_METHOD], key[K_CODE], key[K_PROTO])
            for kind, name in levels:
                k = (kind, name, *sub, *labels)
                self.labelled[k] = self.labelled.get(k, 0) + 1
        tls = e[E_TLS]
        if tls is not None:
            version, cipher = tls
            for kind, name in levels:
                k = (kind, name, version, cipher)
                self.tls[k] = self.tls.get(k, 0) + 1

    def tables(self) -> tuple[dict[str, Table], dict[str, Table], dict[str, Table]]:
        """Per entry point, router and service: ``(method, code, protocol) -> summed slot``."""
        levels: tuple[dict[str, Table], dict[str, Table], dict[str, Table]] = ({}, {}, {})
        for (ep, service, proto, code, router, method), slot in list(self.slots.items()):
            sub = (method, code, proto)
            for tables, name in zip(levels, (ep, router, service), strict=True):
                if name is None:
                    continue
                table = tables.get(name)
                if table is None:
                    table = tables[name] = {}
                total = table.get(sub)
                if total is None:
                    table[sub] = list(slot)
                else:
                    for i, v in enumerate(slot):
                        total[i] += v
        return levels

    def _levels(self, ep: str, router: str | None, service: str | None) -> list[tuple[str, str]]:
        """``(kind, name)`` of the entry point / router / service levels this request counts in."""
        names = []
        if self.entry_points_on:
            names.append(("entrypoint", ep))
        if self.routers_on and router is not None:
            names.append(("router", router))
        if self.services_on and service is not None:
            names.append(("service", service))
        return names

    # ------------------------------------------------------------------ for the dashboard

    def request_counts(self) -> dict[str, dict[str, int]]:
        """Requests so far per ``entrypoint`` / ``router`` / ``service`` name (sample it twice for a
        rate). Entry-point counts include requests no router matched."""
        counts: dict[str, dict[str, int]] = {"entrypoint": {}, "router": {}, "service": {}}
        self.sync()
        for (ep, service, _, _, router, _), slot in list(self.slots.items()):
            for kind, name in (("entrypoint", ep), ("router", router), ("service", service)):
                if name is not None:
                    counts[kind][name] = counts[kind].get(name, 0) + slot[0]
        return counts


# ---------------------------------------------------------------------------------------- scrape

_HELP = {
    "entrypoint": ("on an entrypoint", "handled by an entrypoint", "handled by an entrypoint"),
    "router": ("on a router", "handled by a router", "handled by a router"),
    "service": ("on a service", "received by a service", "returned by a service"),
}


def _fmt_le(bound: float) -> str:
    return repr(bound) if bound != int(bound) else str(int(bound))


class TraefikCollector(Collector):
    """Reads a :class:`Metrics` at scrape time and yields Traefik's metric families."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics
        self._labelled: dict[tuple[Any, ...], int] = {}
        self._tls: dict[tuple[str, str, str, str], int] = {}

    def collect(self) -> Iterator[Metric]:
        m = self.m
        yield CounterMetricFamily("traefik_config_reloads_total", "Config reloads", value=m.reloads)
        yield GaugeMetricFamily("traefik_config_last_reload_success", "Last config reload success",
                                value=m.last_reload_success)
        conns = GaugeMetricFamily("traefik_open_connections",
                                  "How many open connections exist, by entryPoint and protocol",
                                  labels=("entrypoint", "protocol"))
        for ep, proto, count in m.open_connections():
            conns.add_metric((ep, proto), count)
        yield conns
        certs = list(m.certificates())
        if certs:
            family = GaugeMetricFamily("traefik_tls_certs_not_after",
                                       "Certificate expiration timestamp", labels=("cn", "serial", "sans"))
            for cn, serial, sans, not_after in certs:
                family.add_metric((cn, serial, sans), not_after)
            yield family
        m.sync()
        eps, routers, services = m.tables()
        retries_now = dict(m.retries)
        self._labelled = dict(m.labelled)
        self._tls = dict(m.tls)
        if m.entry_points_on:
            yield from self._level("entrypoint", ("entrypoint",), {n: ((n,), t) for n, t in eps.items()})
        if m.routers_on:
            yield from self._level("router", ("router", "service"),
                                   {n: ((n, m.router_services.get(n, "")), t) for n, t in routers.items()})
        if m.services_on:
            yield from self._level("service", ("service",), {n: ((n,), t) for n, t in services.items()})
            if retries_now:
                retries = CounterMetricFamily("traefik_service_retries_total",
                                              "How many request retries happened on a service.", labels=("service",))
                for name, count in sorted(retries_now.items()):
                    retries.add_metric((name,), count)
                yield retries
            if m.server_up:
                up = GaugeMetricFamily("traefik_service_server_up",
                                       "service server is up, described by gauge value of 0 or 1.",
                                       labels=("service", "url"))
                for (service, url), value in sorted(m.server_up.items()):
                    up.add_metric((service, url), value)
                yield up

    def _level(self, kind: str, names: tuple[str, ...],
               tables: Mapping[str, tuple[tuple[str, ...], Table]]) -> Iterator[Metric]:
        m = self.m
        on, handled_req, handled_resp = _HELP[kind]
        base = ("code", "method", "protocol", *names)
        extra = tuple(label for label, _ in m.header_labels)
        prefix = f"traefik_{kind}"
        what = "partitioned by status code, protocol, and method." if kind != "router" else \
            "partitioned by service, status code, protocol, and method."
        requests = CounterMetricFamily(
            f"{prefix}_requests_total",
            f"How many HTTP requests {'are processed' if kind == 'router' else 'processed'} {on}, {what}",
            labels=base + extra)
        duration = HistogramMetricFamily(
            f"{prefix}_request_duration_seconds", f"How long it took to process the request {on}, {what}",
            labels=base)
        req_bytes = CounterMetricFamily(f"{prefix}_requests_bytes_total",
                                        f"The total size of requests in bytes {handled_req}, {what}", labels=base)
        resp_bytes = CounterMetricFamily(f"{prefix}_responses_bytes_total",
                                         f"The total size of responses in bytes {handled_resp}, {what}", labels=base)
        bounds = [_fmt_le(b) for b in m.buckets] + ["+Inf"]
        any_rows = False
        for _, (label_values, table) in sorted(tables.items()):
            for (method, code, proto), slot in sorted(list(table.items())):
                any_rows = True
                values = (str(code), method.decode("latin-1"), proto, *label_values)
                if not extra:
                    requests.add_metric(values, slot[0])
                req_bytes.add_metric(values, slot[1])
                resp_bytes.add_metric(values, slot[2])
                running = 0
                buckets = []
                for bound, count in zip(bounds, slot[4:], strict=True):
                    running += count
                    buckets.append((bound, running))
                duration.add_metric(values, buckets, slot[3] * 1e-9)
        if extra:
            for key, count in sorted(self._labelled.items()):
                if key[0] == kind:
                    _, name, method, code, proto, *header_values = key
                    label_values = tables[name][0] if name in tables else (name,)
                    requests.add_metric((str(code), method.decode("latin-1"), proto, *label_values,
                                         *header_values), count)
        if any_rows:
            yield duration
            yield req_bytes
            yield requests
            yield resp_bytes
        tls_rows = [(k, c) for k, c in sorted(self._tls.items()) if k[0] == kind]
        if tls_rows:
            tls = CounterMetricFamily(f"{prefix}_requests_tls_total",
                                      f"How many HTTP requests with TLS processed {on}, partitioned by TLS "
                                      "Version and TLS cipher Used.", labels=("tls_version", "tls_cipher", *names))
            for (_, name, version, cipher), count in tls_rows:
                label_values = tables[name][0] if name in tables else (name,)
                tls.add_metric((version, cipher, *label_values), count)
            yield tls


class PrometheusService:
    """``prometheus@internal``: the text exposition of the registry (plus ``process_*``)."""

    def __init__(self, metrics: Metrics) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(TraefikCollector(metrics))
        ProcessCollector(registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def handle(self, ex: Exchange) -> None:
        body = self.render()
        ex.respond(200, (), b"" if ex.method == b"HEAD" else body,
                   content_type=b"text/plain; version=0.0.4; charset=utf-8")
