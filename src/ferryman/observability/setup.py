"""Wires ``metrics`` and ``accessLog`` from the static configuration (used by the app only).

:class:`Observability` owns the metrics registry (:mod:`~ferryman.observability.metrics`) and the
access log (:mod:`~ferryman.observability.accesslog`), builds each entry point's
:class:`~ferryman.observability.recorder.Observer` (``None`` when nothing is recorded there, so
the entry point pays nothing), and provides the ``prometheus@internal`` service and its router.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ferryman.dynamic.merge import MAX_INT
from ferryman.dynamic.models import Router
from ferryman.observability.accesslog import AccessLog
from ferryman.observability.logs import reopen_log_files
from ferryman.observability.metrics import Metrics, PrometheusService
from ferryman.observability.recorder import BatchConsumer, Observer, Recording

if TYPE_CHECKING:
    from ferryman.control.compile import Snapshot
    from ferryman.http.exchange import Handler
    from ferryman.server.entrypoint import EntryPoint
    from ferryman.static.models import StaticConfig
    from ferryman.tls.store import LoadedCert

__all__ = ["Observability"]


class Observability:
    def __init__(self, static: StaticConfig) -> None:
        self.static = static
        metrics_cfg = static.metrics
        prom = metrics_cfg.prometheus if metrics_cfg is not None else None
        self.metrics: Metrics | None = None
        self.prometheus: PrometheusService | None = None
        self.metrics_internals = bool(metrics_cfg.add_internals) if metrics_cfg is not None else False
        if prom is not None:
            self.metrics = Metrics(buckets=prom.buckets, entry_points=prom.add_entry_points_labels,
                                   routers=prom.add_routers_labels, services=prom.add_services_labels,
                                   header_labels=prom.header_labels)
            self.prometheus = PrometheusService(self.metrics)
        self.access_log: AccessLog | None = None
        if static.access_log is not None:
            self.access_log = AccessLog(static.access_log)
        #: where every entry point's observer records finished exchanges
        self.recording = Recording()
        if self.metrics is not None:
            self.metrics.bit = self.recording.register(self.metrics, self.metrics.work)
            self.metrics.flush = self.recording.flush
        if self.access_log is not None:
            self.access_log.bit = self.recording.register(self.access_log, self.access_log.work)
        self._certs: tuple[int, list[tuple[str, str, str, float]]] = (0, [])

    # ------------------------------------------------------------------ internal provider

    def internal_services(self) -> dict[str, Handler]:
        return {"prometheus@internal": self.prometheus} if self.prometheus is not None else {}

    def internal_routers(self) -> dict[str, Router]:
        """Traefik's ``prometheus`` router: ``PathPrefix(`/metrics`)`` on ``metrics.prometheus.
        entryPoint`` unless ``manualRouting``."""
        metrics = self.static.metrics
        prom = metrics.prometheus if metrics is not None else None
        if prom is None or prom.manual_routing:
            return {}
        return {"prometheus": Router(rule="PathPrefix(`/metrics`)", entry_points=(prom.entry_point,),
                                     service="prometheus@internal", priority=MAX_INT)}

    # ------------------------------------------------------------------ entry points

    def attach(self, entry_points: Mapping[str, EntryPoint]) -> None:
        """Give each entry point its observer (honouring ``entryPoints.*.observability``)."""
        metrics = self.metrics
        log = self.access_log
        for name, ep in entry_points.items():
            settings = self.static.entry_points.get(name)
            obs = settings.observability if settings is not None else None
            mask = internal = 0
            if metrics is not None and (obs is None or obs.metrics):
                mask |= metrics.bit
                if self.metrics_internals:
                    internal |= metrics.bit
            if log is not None and (obs is None or obs.access_logs):
                mask |= log.bit
                if log.add_internals:
                    internal |= log.bit
            ep.observer = self.observer(mask, internal)
        if metrics is not None:
            def open_connections() -> list[tuple[str, str, int]]:
                return [(n, "TCP", len(e.connections)) for n, e in sorted(entry_points.items())]
            metrics.open_connections = open_connections

    def observer(self, mask: int, internal: int = 0) -> Observer | None:
        """An observer recording for the consumers in ``mask`` (``internal``: those that also want
        ``*@internal`` requests); ``None`` when nobody records."""
        if not mask:
            return None
        metrics = self.metrics
        log = self.access_log
        measured = metrics is not None and bool(mask & metrics.bit)
        labels = tuple(h for _, h in metrics.header_labels) if metrics is not None and measured else ()
        logged = log is not None and bool(mask & log.bit)
        return Observer(self.recording, mask, internal, protocols=measured,
                        clf_headers=logged and log is not None and log.clf_headers, label_headers=labels,
                        json=logged and log is not None and not log.clf_mode,
                        json_headers=logged and log is not None and log.json_headers)

    def register(self, consumer: BatchConsumer) -> int:
        """Adds a batch consumer (the dashboard's traffic counter); returns its bit."""
        return self.recording.register(consumer)

    def applied(self, snapshot: Snapshot, *, reload: bool) -> None:
        """After each configuration apply: routers' own ``observability`` switches, reload
        counters, router labels, certificates."""
        routers = snapshot.merged.routers
        internal = self.recording.internal_routers
        names = {n for n in routers if n.endswith("@internal")}
        if names != internal:
            internal.clear()
            internal.update(names)
        if self.access_log is not None:
            self.access_log.muted = frozenset(
                n for n, r in routers.items()
                if r.config is not None and r.config.observability is not None
                and r.config.observability.access_logs is False)
        metrics = self.metrics
        if metrics is None:
            return
        metrics.muted = frozenset(
            n for n, r in routers.items()
            if r.config is not None and r.config.observability is not None and r.config.observability.metrics is False)
        if reload:
            metrics.config_reloaded()
        metrics.set_routers({name: r.config.service for name, r in snapshot.merged.routers.items()
                             if r.config is not None})
        store = snapshot.tls_store
        certs = store.certs if store is not None else []
        if id(certs) != self._certs[0]:
            self._certs = (id(certs), _cert_rows(certs))
        rows = self._certs[1]
        metrics.certificates = lambda: rows

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.access_log is not None:
            self.access_log.start()
        self.recording.start(loop)

    def reopen(self) -> None:
        """SIGUSR1 (log rotation, as Traefik): reopen the access log and ``log.filePath``."""
        if self.access_log is not None:
            self.access_log.reopen()
        reopen_log_files()

    def close(self) -> None:
        self.recording.close()
        if self.access_log is not None:
            self.access_log.close()


def _cert_rows(certs: Iterable[LoadedCert]) -> list[tuple[str, str, str, float]]:
    """``traefik_tls_certs_not_after`` rows: CN, decimal serial, comma-joined DNS SANs, expiry."""
    from cryptography import x509

    rows: list[tuple[str, str, str, float]] = []
    for cert in certs:
        try:
            parsed = x509.load_pem_x509_certificate(cert.chain_pem)
        except ValueError:
            continue
        cns = parsed.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        cn: Any = cns[0].value if cns else ""
        try:
            ext = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            sans = ",".join(ext.value.get_values_for_type(x509.DNSName))
        except x509.ExtensionNotFound:
            sans = ""
        not_after = parsed.not_valid_after_utc.replace(tzinfo=datetime.UTC).timestamp()
        rows.append((str(cn), str(parsed.serial_number), sans, not_after))
    return rows
