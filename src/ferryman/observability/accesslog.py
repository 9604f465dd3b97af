"""Access logs (``accessLog``) with Traefik's field names and line formats.

* ``format: common`` (default) -- Traefik's extended CLF, one line per request::

      127.0.0.1 - - [25/Nov/2026:21:27:15 +0000] "GET /a?q=1 HTTP/1.1" 200 335 "-" "curl/8.0" 1 "web@file" "http://10.0.0.2:80" 1ms

  ``genericCLF`` stops after the User-Agent.
* ``format: json`` -- one object per line with Traefik's keys (sorted, as logrus writes them):
  ``ClientAddr``, ``ClientHost``, ``ClientPort``, ``ClientUsername``, ``DownstreamContentSize``,
  ``DownstreamStatus``, ``Duration`` (ns), ``OriginContentSize``, ``OriginDuration``,
  ``OriginStatus``, ``Overhead``, ``RequestAddr``, ``RequestContentSize``, ``RequestCount``,
  ``RequestHost``, ``RequestMethod``, ``RequestPath``, ``RequestPort``, ``RequestProtocol``,
  ``RequestScheme``, ``RetryAttempts``, ``RouterName``, ``ServiceAddr``, ``ServiceName``,
  ``ServiceURL``, ``StartLocal``, ``StartUTC``, ``TLSVersion``/``TLSCipher`` (TLS),
  ``entryPointName``, ``level``, ``msg``, ``time`` and ``request_<Header>``,
  ``downstream_<Header>``, ``origin_<Header>`` per ``fields.headers``.
* ``fields.defaultMode``/``names`` keep or drop fields; ``fields.headers.defaultMode``/``names``
  keep, drop or redact (``REDACTED``) headers; ``filters`` keep a request when its status is in
  ``statusCodes``, it was retried (``retryAttempts``) or took longer than ``minDuration``.

Off the hot path: the request's values are captured into a small object on the event loop; lines
are formatted and written by a writer thread in batches, every :data:`FLUSH_INTERVAL` seconds or
as soon as ``bufferingSize`` lines (default :data:`FLUSH_LINES`) are waiting. The loop never waits
for the disk: past :data:`MAX_PENDING` unwritten lines new ones are dropped (counted in ``dropped``).
``reopen()`` (SIGUSR1) makes the writer reopen ``filePath`` (log rotation).
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import json
import os
import re
import sys
import threading
from collections import deque
from time import time_ns
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from ferryman.observability.logs import get_logger

if TYPE_CHECKING:
    from ferryman.http.exchange import Headers
    from ferryman.observability.recorder import Tap
    from ferryman.static.models import AccessLog as AccessLogConfig

__all__ = ["MAX_PENDING", "AccessLog", "canonical_header", "parse_status_ranges"]

log = get_logger("ferryman.accesslog")

#: Unwritten lines kept before new ones are dropped (the loop never blocks on the disk).
MAX_PENDING = 100_000
#: The writer writes what is pending this often (seconds), or at once past ``bufferingSize``
#: lines (default :data:`FLUSH_LINES`).
FLUSH_INTERVAL = 0.1
FLUSH_LINES = 4096
_REDACTED = "REDACTED"


def canonical_header(name: bytes | str) -> str:
    """Go's ``CanonicalMIMEHeaderKey``: ``x-real-ip`` -> ``X-Real-Ip``."""
    text = name.decode("latin-1") if isinstance(name, bytes) else name
    return "-".join(part[:1].upper() + part[1:].lower() for part in text.split("-"))


def parse_status_ranges(codes: tuple[str, ...] | list[str]) -> list[tuple[int, int]]:
    """``["200", "300-302"]`` -> ``[(200, 200), (300, 302)]``; bad entries raise ``ValueError``."""
    out: list[tuple[int, int]] = []
    for item in codes:
        for part in str(item).split(","):
            part = part.strip()
            if not part:
                continue
            lo, sep, hi = part.partition("-")
            try:
                low = int(lo)
                high = int(hi) if sep else low
            except ValueError:
                raise ValueError(f"accessLog.filters.statusCodes: {part!r} is not a status code or a "
                                 "range such as 300-302") from None
            out.append((low, high))
    return out


class _Clock:
    """Per-second caches of the formatted parts of a timestamp (the writer formats many lines per
    second: one ``datetime`` per second instead of three per line)."""

    def __init__(self) -> None:
        self._second = -1
        self._utc = ""
        self._local = ""
        self._local_zone = ""
        self._clf = ""
        self._rfc = ""

    def _refresh(self, second: int) -> None:
        local = datetime.datetime.fromtimestamp(second).astimezone()
        offset = local.strftime("%z")
        self._second = second
        self._utc = datetime.datetime.fromtimestamp(second, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        self._local = local.strftime("%Y-%m-%dT%H:%M:%S")
        self._local_zone = "Z" if offset in ("+0000", "") else f"{offset[:3]}:{offset[3:]}"
        self._clf = local.strftime("%d/%b/%Y:%H:%M:%S ") + (offset or "+0000")
        self._rfc = self._local + self._local_zone

    def clf(self, ns: int) -> str:
        """``25/Nov/2026:21:27:15 +0000`` (local time, as Traefik's CLF)."""
        second = ns // 1_000_000_000
        if second != self._second:
            self._refresh(second)
        return self._clf

    def rfc3339nano(self, ns: int, utc: bool) -> str:
        """Go's ``time.RFC3339Nano`` (trailing zeros of the fraction trimmed), UTC or local."""
        second = ns // 1_000_000_000
        if second != self._second:
            self._refresh(second)
        frac = f"{ns % 1_000_000_000:09d}".rstrip("0")
        if utc:
            return f"{self._utc}.{frac}Z" if frac else f"{self._utc}Z"
        return f"{self._local}.{frac}{self._local_zone}" if frac else f"{self._local}{self._local_zone}"

    def rfc3339(self, ns: int) -> str:
        """Go's ``time.RFC3339`` in local time (logrus' ``time``)."""
        second = ns // 1_000_000_000
        if second != self._second:
            self._refresh(second)
        return self._rfc


def _rfc3339nano(ns: int, tz: datetime.tzinfo | None) -> str:
    return _Clock().rfc3339nano(ns, tz is not None)


_PLAIN = re.compile(r'[^"\\\x00-\x1f\x7f]*')


def _quote(value: str) -> str:
    """Go's ``%q`` for the CLF fields (fast path: nothing to escape)."""
    if _PLAIN.fullmatch(value) is not None:
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False)


def _split_host_port(addr: str) -> tuple[str, str]:
    if addr.startswith("["):
        host, _, rest = addr[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else ""
    if addr.count(":") == 1:
        host, _, port = addr.partition(":")
        return host, port
    return addr, ""


class _Captured(NamedTuple):
    """What the loop hands to the writer thread for one request: plain values only (no reference
    to the exchange), so the exchange is freed at once and the cyclic GC has nothing to walk."""

    client_ip: str
    client_port: int
    request_count: int
    duration: int
    entrypoint: str
    host: bytes
    length: int
    method: bytes
    origin_headers: Headers | None
    req_headers: Headers | None
    req_size: int
    retries: int
    router: str | None
    scheme: bytes
    service: str | None
    size: int
    start_ns: int
    status: int
    target: bytes
    tls: tuple[str, str] | None
    upstream: str
    username: str
    version: bytes


class AccessLog:
    """One access log (there is one per process, shared by all entry points)."""

    def __init__(self, config: AccessLogConfig) -> None:
        self.config = config
        self.path = config.file_path
        self.format = config.format
        self.add_internals = bool(config.add_internals)
        filters = config.filters
        self._ranges = parse_status_ranges(filters.status_codes)
        self._retry_filter = bool(filters.retry_attempts)
        self._min_duration_ns = int(float(filters.min_duration) * 1e9)
        self._filtered = bool(self._ranges or self._retry_filter or self._min_duration_ns > 0)
        fields = config.fields
        self._default_keep = fields.default_mode != "drop"
        self._names = {str(k): str(v).lower() for k, v in fields.names.items()}
        headers = fields.headers
        self._header_default = headers.default_mode
        self._header_names = {canonical_header(k): str(v).lower() for k, v in headers.names.items()}
        self._want_headers = self._header_default != "drop" or any(
            m != "drop" for m in self._header_names.values())
        self._count = itertools.count(1)
        self._flush_at = min(int(config.buffering_size) or FLUSH_LINES, MAX_PENDING)
        self._pending: deque[tuple[Any, ...]] = deque()
        self._wake = threading.Event()
        self._reopen = False
        self._closing = False
        self._thread: threading.Thread | None = None
        self._file: IO[str] | None = None
        self.dropped = 0
        self.written = 0
        self._clock = _Clock()
        self._end_clock = _Clock()
        self._quote_cache: dict[str, str] = {"-": '"-"'}
        self._clf_mode = self.format != "json"
        self._generic = self.format == "genericCLF"
        #: routers with ``observability.accessLogs: false`` (set on each apply)
        self.muted: frozenset[str] = frozenset()

    # ------------------------------------------------------------------ loop side (hot path)

    def record(self, tap: Tap) -> None:
        """Recorder consumer: keep one finished exchange for the writer (formatted off the loop).

        Only a tuple of plain values is made here (no reference to the exchange, so it is freed by
        reference counting right away); the writer thread formats it later."""
        muted = self.muted
        if muted and tap.ex.router in muted:
            return
        if self._filtered and not self._keep(tap):
            return
        pending = self._pending
        if len(pending) >= MAX_PENDING:
            self.dropped += 1
            return
        ex = tap.ex
        if self._clf_mode:
            # Only what the line shows (referer/user-agent only when fields.headers keeps them).
            referer = ua = "-"
            if self._want_headers:
                for name, value in ex.headers:
                    if name == b"referer" and referer == "-":
                        referer = self._header_value("Referer", value)
                    elif name == b"user-agent" and ua == "-":
                        ua = self._header_value("User-Agent", value)
            duration = tap.duration_ns
            pending.append((ex.conn.client_ip, tap.username, next(self._count), time_ns() - duration, ex.method,
                            tap.target, ex.version, tap.status, tap.size, referer, ua, ex.router, tap.upstream,
                            duration))
        else:
            conn = ex.conn
            if self._want_headers:
                ex.materialize_forwarded()  # Traefik logs the X-Forwarded-* it adds
            pending.append(self._capture(tap, next(self._count), time_ns(), conn.tls_info() if conn.tls else None))
        if len(pending) == self._flush_at:
            self._wake.set()  # a burst: write it now rather than at the next tick

    def _capture(self, tap: Tap, count: int, end_ns: int, tls: tuple[str, str] | None) -> tuple[Any, ...]:
        """A plain tuple in :class:`_Captured`'s field order: an exact tuple of atoms is untracked by
        the cyclic GC at its first pass (a NamedTuple instance never is)."""
        ex = tap.ex
        conn = ex.conn
        length = ex.body_length
        keep = self._want_headers
        return (conn.client_ip, conn.client_port, count, tap.duration_ns, conn.entrypoint, ex.authority,
                tap.length, ex.method, tap.headers if keep else None, ex.headers if keep else None,
                length if length > 0 else 0, tap.retries, ex.router, conn.scheme, ex.service, tap.size,
                end_ns - tap.duration_ns, tap.status, tap.target, tls, tap.upstream, tap.username, ex.version)

    def _keep(self, tap: Tap) -> bool:
        status = tap.status
        for lo, hi in self._ranges:
            if lo <= status <= hi:
                return True
        if self._retry_filter and tap.retries > 0:
            return True
        return self._min_duration_ns > 0 and tap.duration_ns > self._min_duration_ns

    # ------------------------------------------------------------------ formatting (writer thread)

    def format_line(self, entry: tuple[Any, ...]) -> str:
        """One line from what :meth:`record` kept."""
        if self._clf_mode:
            return self._clf(entry)
        return self._json(_Captured._make(entry))

    def _clf(self, entry: tuple[Any, ...]) -> str:
        (client_ip, username, count, start_ns, method, target, version, status, size, referer, ua, router,
         upstream, duration) = entry
        quoted = self._quoted
        line = (f"{client_ip} - {username or '-'} [{self._clock.clf(start_ns)}] "
                f"\"{method.decode('latin-1')} {target.decode('latin-1')} {_protocol(version)}\" "
                f"{status} {size} {quoted(referer)} {quoted(ua)}")
        if self._generic:
            return line
        return f"{line} {count} {quoted(router or '-')} {quoted(upstream or '-')} {duration // 1_000_000}ms"

    def _quoted(self, value: str) -> str:
        """:func:`_quote` with a bounded cache (router names, server URLs, common User-Agents repeat)."""
        cache = self._quote_cache
        out = cache.get(value)
        if out is None:
            if len(cache) >= 4096:
                cache.clear()
            out = cache[value] = _quote(value)
        return out

    def _json(self, c: _Captured) -> str:
        clock = self._clock
        host, port = _split_host_port(c.host.decode("latin-1"))
        ip = c.client_ip
        client_addr = f"[{ip}]:{c.client_port}" if ":" in ip else f"{ip}:{c.client_port}"
        served = c.service is not None
        upstream = c.upstream
        service_addr = upstream.split("://", 1)[-1].split("/", 1)[0] if upstream else ""
        fields: dict[str, Any] = {
            "ClientAddr": client_addr,
            "ClientHost": ip,
            "ClientPort": str(c.client_port),
            "ClientUsername": c.username or "-",
            "DownstreamContentSize": c.size,
            "DownstreamStatus": c.status,
            "Duration": c.duration,
            "OriginContentSize": c.size if served else 0,
            "OriginDuration": c.duration if served else 0,
            "OriginStatus": c.status if served else 0,
            "Overhead": 0 if served else c.duration,
            "RequestAddr": c.host.decode("latin-1"),
            "RequestContentSize": c.req_size,
            "RequestCount": c.request_count,
            "RequestHost": host,
            "RequestMethod": c.method.decode("latin-1"),
            "RequestPath": c.target.decode("latin-1"),
            "RequestPort": port or "-",
            "RequestProtocol": _protocol(c.version),
            "RequestScheme": c.scheme.decode(),
            "RetryAttempts": c.retries,
            "StartLocal": clock.rfc3339nano(c.start_ns, False),
            "StartUTC": clock.rfc3339nano(c.start_ns, True),
            "entryPointName": c.entrypoint,
        }
        if c.router is not None:
            fields["RouterName"] = c.router
        if served:
            fields["ServiceName"] = c.service
        if upstream:
            fields["ServiceURL"] = upstream
            fields["ServiceAddr"] = service_addr
        if c.tls is not None:
            fields["TLSVersion"], fields["TLSCipher"] = c.tls
        origin_size = fields["OriginContentSize"]
        if origin_size != c.size and c.size:
            ratio = origin_size / c.size
            fields["GzipRatio"] = int(ratio) if ratio.is_integer() else ratio
        names = self._names
        if names or not self._default_keep:
            default = self._default_keep
            fields = {k: v for k, v in fields.items() if names.get(k, "keep" if default else "drop") != "drop"}
        if self._want_headers:
            request = c.req_headers
            if c.req_size > 0 and request is not None:
                request = [*request, (b"content-length", b"%d" % c.req_size)]  # framing, kept by Go
            self._headers(fields, "request_", request)
            response = c.origin_headers
            if not served:
                # Answered by ferryman itself: Go adds Date and Content-Length only when writing,
                # after the access log copied the header map; there is no origin response.
                response = [(n, v) for n, v in response or () if n.lower() not in (b"date", b"content-length")]
            else:
                if c.length >= 0 and response is not None and c.status not in (204, 304):
                    # the sink adds the framing header; Traefik logs the Content-Length it sends
                    response = [*response, (b"content-length", b"%d" % c.length)]
                self._headers(fields, "origin_", response)
            self._headers(fields, "downstream_", response)
        fields["level"] = "info"
        fields["msg"] = ""
        fields["time"] = self._end_clock.rfc3339(c.start_ns + c.duration)  # when logged: the end
        return json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    def _header_value(self, name: str, value: bytes) -> str:
        mode = self._header_names.get(name, self._header_default)
        if mode == "drop":
            return "-"
        return _REDACTED if mode == "redact" else value.decode("latin-1")

    def _headers(self, fields: dict[str, Any], prefix: str, headers: Headers | None) -> None:
        default = self._header_default
        modes = self._header_names
        for raw, value in headers or ():
            name = canonical_header(raw)
            mode = modes.get(name, default)
            if mode == "drop":
                continue
            key = prefix + name
            if key in fields:
                continue  # Go's Header.Get: the first value
            fields[key] = _REDACTED if mode == "redact" else value.decode("latin-1")

    # ------------------------------------------------------------------ writer thread

    def start(self) -> None:
        if self._thread is None:
            self._open()
            self._thread = threading.Thread(target=self._run, name="accesslog-writer", daemon=True)
            self._thread.start()

    def reopen(self) -> None:
        """Log rotation (SIGUSR1): the writer reopens ``filePath`` before its next write."""
        self._reopen = True
        self._wake.set()

    def close(self) -> None:
        """Write what is pending and stop the writer."""
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        if self._file is not None and self._file is not sys.stdout:
            with contextlib.suppress(OSError):
                self._file.close()
        self._file = None

    def flush_now(self) -> None:
        """Format and write everything pending in the caller's thread (tests, shutdown)."""
        self._drain()

    def _open(self) -> None:
        if not self.path:
            self._file = sys.stdout
            return
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        try:
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open by design
        except OSError as exc:
            log.error("cannot open access log", extra={"fields": {"filePath": self.path, "error": str(exc)}})
            self._file = None

    def _run(self) -> None:
        while True:
            # Wake on a timer, not per request: every wake-up of this thread costs the event loop
            # a GIL hand-over (and a context switch when both share one core).
            self._wake.wait(FLUSH_INTERVAL)
            self._wake.clear()
            if self._reopen:
                self._reopen = False
                old = self._file
                self._open()
                if old is not None and old is not sys.stdout and old is not self._file:
                    with contextlib.suppress(OSError):
                        old.close()
            self._drain()
            if self._closing:
                self._drain()
                return

    _lock = threading.Lock()

    def _drain(self) -> None:
        with self._lock:
            pending = self._pending
            if not pending:
                return
            lines: list[str] = []
            while pending:
                try:
                    entry = pending.popleft()
                except IndexError:
                    break
                try:
                    lines.append(self.format_line(entry))
                except Exception:  # never let one odd request stop the log
                    log.exception("access log: cannot format a line")
            out = self._file
            if out is None or not lines:
                return
            try:
                out.write("\n".join(lines) + "\n")
                out.flush()
                self.written += len(lines)
            except OSError as exc:
                log.error("cannot write access log", extra={"fields": {"filePath": self.path, "error": str(exc)}})


_PROTOCOLS = {b"1.1": "HTTP/1.1", b"1.0": "HTTP/1.0", b"2": "HTTP/2.0", b"3": "HTTP/3.0"}


def _protocol(version: bytes) -> str:
    return _PROTOCOLS.get(version) or "HTTP/" + version.decode("latin-1")
