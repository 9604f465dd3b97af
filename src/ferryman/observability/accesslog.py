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

Off the request path: the access log is a :mod:`~ferryman.observability.recorder` batch
consumer. A request only appends one tuple of plain values; every 10 ms the batch is formatted on
the event loop in chunks between I/O callbacks, in one tight loop (with caches for what repeats:
the middle of the line, quoted header values, the timestamp of the second; compiled in
``ferryman._speedups`` when it is built, with these Python loops as the reference), and the text
goes to a writer thread, the only part off the loop, which writes it with one ``write``. The loop never
waits for the disk: past :data:`MAX_PENDING` unwritten lines new batches are dropped (counted in
``dropped``). ``reopen()`` (SIGUSR1) makes the writer reopen ``filePath`` before its next write
(log rotation).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import sys
import threading
from collections import deque
from operator import itemgetter
from typing import IO, TYPE_CHECKING, Any

from ferryman.observability.logs import get_logger
from ferryman.observability.recorder import (
    E_CLIENT_IP,
    E_CLIENT_PORT,
    E_DURATION,
    E_EXTRA,
    E_LABELS,
    E_LINE,
    E_MASK,
    E_REQ_SIZE,
    E_RETRIES,
    E_SIZE,
    E_START,
    E_TLS,
    E_USER,
    K_ROUTER,
    L_METHOD,
    L_STATUS,
    L_TARGET,
    L_UPSTREAM,
    L_VERSION,
    Entry,
    chunks,
    entry_names,
    speedups,
    wall_offset,
)

if TYPE_CHECKING:
    from ferryman.http.exchange import Headers
    from ferryman.static.models import AccessLog as AccessLogConfig

__all__ = ["MAX_PENDING", "AccessLog", "canonical_header", "parse_status_ranges"]

log = get_logger("ferryman.accesslog")

#: Unwritten lines kept before new ones are dropped (the loop never blocks on the disk). Lines are
#: always written in batches (``bufferingSize`` is accepted; the batches are the buffering).
MAX_PENDING = 100_000
_REDACTED = "REDACTED"
#: The json format's own fields (without headers and logrus' level/msg/time), in the order of their
#: names, as the lines show them; the compiled json loop keeps field i when bit i of its mask is set.
JSON_FIELDS = (
    "ClientAddr", "ClientHost", "ClientPort", "ClientUsername", "DownstreamContentSize", "DownstreamStatus",
    "Duration", "GzipRatio", "OriginContentSize", "OriginDuration", "OriginStatus", "Overhead", "RequestAddr",
    "RequestContentSize", "RequestCount", "RequestHost", "RequestMethod", "RequestPath", "RequestPort",
    "RequestProtocol", "RequestScheme", "RetryAttempts", "RouterName", "ServiceAddr", "ServiceName", "ServiceURL",
    "StartLocal", "StartUTC", "TLSCipher", "TLSVersion", "entryPointName",
)
#: durations in whole milliseconds, formatted once
_MS = [str(ms) for ms in range(1000)]
_MASK = itemgetter(E_MASK)


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

    def parts(self, second: int) -> tuple[str, str, str]:
        """``(utc, local, zone)`` of a second (Unix time): what :meth:`rfc3339nano` and
        :meth:`rfc3339` put around the fraction (the compiled json loop's clock)."""
        if second != self._second:
            self._refresh(second)
        return self._utc, self._local, self._local_zone

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
        self._count = 0
        self._taken = 0  # entries taken
        self._done = 0  # entries formatted
        self._inbox: deque[list[Entry]] = deque()
        self._texts: list[bytes] = []  # formatted chunks not yet handed to the writer
        self._text_lines = 0
        self._writer = _Writer(self.path)
        self.dropped = 0
        self._clock = _Clock()
        self._end_clock = _Clock()
        self._quote_cache: dict[str, str] = {}
        self._parts_cache: dict[tuple[Any, ...], tuple[str, str]] = {}
        self._clf_mode = self.format != "json"
        self._generic = self.format == "genericCLF"
        self._referer_mode = self._header_names.get("Referer", self._header_default)
        self._ua_mode = self._header_names.get("User-Agent", self._header_default)
        self._clf_headers_shown = self._referer_mode != "drop" or self._ua_mode != "drop"
        #: the compiled json loop's fields (bits of JSON_FIELDS) and headers (raw name -> canonical
        #: name and mode, filled by _header_info)
        self._json_keep = sum(1 << i for i, name in enumerate(JSON_FIELDS) if self._field_kept(name))
        self._header_cache: dict[bytes, tuple[str, int]] = {}
        self._json_headers = (self._header_cache, self._header_info) if self._want_headers else None
        #: routers with ``observability.accessLogs: false`` (set on each apply)
        self.muted: frozenset[str] = frozenset()
        #: this consumer's bit in the entries (:meth:`Recording.register`)
        self.bit = 1

    def _field_kept(self, name: str) -> bool:
        """``fields.defaultMode`` / ``fields.names`` for one field."""
        return self._names.get(name, "keep" if self._default_keep else "drop") != "drop"

    @property
    def clf_mode(self) -> bool:
        """``common`` or ``genericCLF`` (not json)."""
        return self._clf_mode

    @property
    def clf_headers(self) -> bool:
        """The CLF line shows the Referer or the User-Agent (the entries then carry them)."""
        return self._clf_mode and self._clf_headers_shown

    @property
    def json_headers(self) -> bool:
        """The json format logs headers (the entries then carry the header lists)."""
        return not self._clf_mode and self._want_headers

    @property
    def written(self) -> int:
        """Lines written to the file so far."""
        return self._writer.written

    # ------------------------------------------------------------------ loop side

    def take(self, batch: list[Entry]) -> None:
        """:class:`~ferryman.observability.recorder.BatchConsumer`: queue a batch, or drop it when
        too many lines wait already (the loop never waits for the disk)."""
        writer = self._writer
        waiting = self._taken - self._done + writer.queued - writer.done
        if waiting + len(batch) > MAX_PENDING:
            self.dropped += len(batch)
            return
        self._taken += len(batch)
        self._inbox.extend(chunks(batch))

    def work(self) -> bool:
        """Formats one waiting chunk; once none is left, hands the text to the writer thread.
        Returns whether more chunks wait."""
        inbox = self._inbox
        if inbox:
            chunk = inbox.popleft()
            try:
                text, lines = self._format(chunk, wall_offset())
                if lines:
                    self._texts.append(text)
                    self._text_lines += lines
            except Exception:  # never let one odd request stop the log
                log.exception("access log: cannot format a batch")
            self._done += len(chunk)
        if inbox:
            return True
        if self._texts:
            texts, lines = self._texts, self._text_lines
            self._texts = []
            self._text_lines = 0
            self._writer.put(texts[0] if len(texts) == 1 else b"".join(texts), lines)
        return False

    def _format(self, batch: list[Entry], offset: int) -> tuple[bytes, int]:
        """The lines of a chunk as UTF-8 text (each ending in a newline) and how many there are."""
        if speedups is None or self.muted or self._filtered:
            return self._format_py(batch, offset)
        # the compiled loops of _clf_lines and _json_lines; they stop at what they do not handle,
        # Python does the rest
        before = self._count
        if self._clf_mode and not self._generic:
            text, self._count, stop = speedups.clf_lines(batch, self.bit, offset, before, self._parts_cache,
                                                          self._parts, self._clock.clf)
        elif not self._clf_mode:
            text, self._count, stop = speedups.json_lines(batch, self.bit, offset, before, self._json_keep,
                                                           self._clock.parts, self._end_clock.parts,
                                                           self._json_headers)
        else:
            return self._format_py(batch, offset)
        lines = self._count - before
        if stop == len(batch):
            return text, lines
        rest, more = self._format_py(batch[stop:], offset)
        return text + rest, lines + more

    def _format_py(self, batch: list[Entry], offset: int) -> tuple[bytes, int]:
        lines: list[str] = []
        if self._clf_mode:
            self._clf_lines(batch, offset, lines)
        else:
            self._json_lines(batch, offset, lines)
        if not lines:
            return b"", 0
        lines.append("")  # the last line's newline
        return "\n".join(lines).encode("utf-8", "replace"), len(lines) - 1

    def start(self) -> None:
        self._writer.start()

    def reopen(self) -> None:
        """Log rotation (SIGUSR1): the writer reopens ``filePath`` before its next write."""
        self._writer.reopen()

    def flush_now(self) -> None:
        """Format and write everything queued, in the caller's thread (tests, shutdown)."""
        while self.work():
            pass
        self._writer.write_now()

    def close(self) -> None:
        """Write what is waiting and close the file (after the recording handed everything over)."""
        self.flush_now()
        self._writer.close()

    def _keep(self, e: Entry) -> bool:
        """``filters``: a status in ``statusCodes``, retried, or slower than ``minDuration``."""
        status = e[E_LINE][L_STATUS]
        for lo, hi in self._ranges:
            if lo <= status <= hi:
                return True
        if self._retry_filter and e[E_RETRIES] > 0:
            return True
        return self._min_duration_ns > 0 and e[E_DURATION] > self._min_duration_ns

    # ------------------------------------------------------------------ formatting (event loop, in chunks)

    def _clf_lines(self, batch: list[Entry], offset: int, lines: list[str]) -> None:
        """CLF lines of a batch, in one loop. What repeats from one request to the next is
        formatted once: the middle of the line (request line, status, size, Referer, User-Agent;
        router and server) is cached under the entry's ``E_LINE`` tuple, and consecutive requests
        with an equal one (a busy route) skip even the look-up; the timestamp changes once a
        second. The common case (every entry for this log, no router muted, no filter, ``common``
        format) runs a loop with nothing else in it."""
        bit = self.bit
        if self.muted or self._filtered or self._generic or not all(map(bit.__and__, map(_MASK, batch))):
            self._clf_lines_filtered(batch, offset, lines)
            return
        parts = self._parts_cache
        clock = self._clock
        count = self._count
        append = lines.append
        low = high = 0  # the second being formatted, as [low, high) in E_START's clock
        stamp = ""
        key: tuple[Any, ...] | None = None
        head = tail = ""
        client = user = None
        prefix = ""
        for e in batch:
            # layout: recorder.E_* (2 the line's middle, 5 start, 6 duration, 8 client ip, 10 user)
            count += 1
            start = e[5]
            if not low <= start < high:
                wall = start + offset
                low = start - wall % 1_000_000_000
                high = low + 1_000_000_000
                stamp = clock.clf(wall)
                client = None
            if e[8] != client or e[10] != user:
                client = e[8]
                user = e[10]
                prefix = f"{client} - {user} [{stamp}] "
            middle = e[2]
            if middle != key:
                key = middle
                found = parts.get(middle)
                head, tail = found if found is not None else self._parts(middle)
            ms = e[6] // 1_000_000
            append(f"{prefix}{head} {count}{tail}{_MS[ms] if ms < 1000 else ms}ms")
        self._count = count

    def _clf_lines_filtered(self, batch: list[Entry], offset: int, lines: list[str]) -> None:
        """:meth:`_clf_lines` with entries for other consumers, muted routers, ``filters`` or
        ``genericCLF``."""
        bit = self.bit
        muted = self.muted
        filtered = self._filtered
        generic = self._generic
        count = self._count
        append = lines.append
        for e in batch:
            if not e[E_MASK] & bit:
                continue
            count += 1  # RequestCount: every request this log sees, written or not
            if (muted and e[E_LABELS][K_ROUTER] in muted) or (filtered and not self._keep(e)):
                continue
            wall = e[E_START] + offset
            head, tail = self._parts_cache.get(e[E_LINE]) or self._parts(e[E_LINE])
            line = f"{e[E_CLIENT_IP]} - {e[E_USER]} [{self._clock.clf(wall)}] {head}"
            if not generic:
                line += f" {count}{tail}{e[E_DURATION] // 1_000_000}ms"
            append(line)
        self._count = count

    def _parts(self, key: tuple[Any, ...]) -> tuple[str, str]:
        """``('"GET /a HTTP/1.1" 200 31 "referer" "ua"', ' "router" "server" ')`` for
        ``entry[E_LINE]`` (a bounded cache: targets can be endless)."""
        router, method, target, version, status, size, upstream, referer, ua = key
        line = (f'"{method.decode("latin-1")} {target.decode("latin-1")} {_protocol(version)}" {status} {size} '
                f"{self._header_shown(self._referer_mode, referer)} {self._header_shown(self._ua_mode, ua)}")
        part = (line, f' {self._quoted(router or "-")} {self._quoted(upstream or "-")} ')
        parts = self._parts_cache
        if len(parts) >= 4096:
            parts.clear()
        parts[key] = part
        return part

    def _header_shown(self, mode: str, value: bytes | None) -> str:
        """A Referer / User-Agent as the CLF line shows it (``fields.headers`` modes)."""
        if value is None or mode == "drop":
            return '"-"'
        return '"REDACTED"' if mode == "redact" else self._quoted(value.decode("latin-1"))

    def _quoted(self, value: str) -> str:
        """:func:`_quote` with a bounded cache (router names, server URLs, User-Agents repeat)."""
        cache = self._quote_cache
        out = cache.get(value)
        if out is None:
            if len(cache) >= 4096:
                cache.clear()
            out = cache[value] = _quote(value)
        return out

    def _json_lines(self, batch: list[Entry], offset: int, lines: list[str]) -> None:
        bit = self.bit
        muted = self.muted
        filtered = self._filtered
        for e in batch:
            if not e[0] & bit:
                continue
            self._count += 1
            if (muted and e[E_LABELS][K_ROUTER] in muted) or (filtered and not self._keep(e)):
                continue
            lines.append(self._json(e, self._count, offset))

    def _json(self, e: Entry, count: int, offset: int) -> str:
        clock = self._clock
        authority, scheme, length, origin_headers, req_headers = e[E_EXTRA]
        host, port = _split_host_port(authority.decode("latin-1"))
        ip = e[E_CLIENT_IP]
        client_port = e[E_CLIENT_PORT]
        client_addr = f"[{ip}]:{client_port}" if ":" in ip else f"{ip}:{client_port}"
        ep, router, service = entry_names(e)
        served = service is not None
        line = e[E_LINE]
        upstream = line[L_UPSTREAM]
        service_addr = upstream.split("://", 1)[-1].split("/", 1)[0] if upstream else ""
        status = line[L_STATUS]
        size = e[E_SIZE]
        duration = e[E_DURATION]
        start_ns = e[E_START] + offset
        fields: dict[str, Any] = {
            "ClientAddr": client_addr,
            "ClientHost": ip,
            "ClientPort": str(client_port),
            "ClientUsername": e[E_USER],
            "DownstreamContentSize": size,
            "DownstreamStatus": status,
            "Duration": duration,
            "OriginContentSize": size if served else 0,
            "OriginDuration": duration if served else 0,
            "OriginStatus": status if served else 0,
            "Overhead": 0 if served else duration,
            "RequestAddr": authority.decode("latin-1"),
            "RequestContentSize": e[E_REQ_SIZE],
            "RequestCount": count,
            "RequestHost": host,
            "RequestMethod": line[L_METHOD].decode("latin-1"),
            "RequestPath": line[L_TARGET].decode("latin-1"),
            "RequestPort": port or "-",
            "RequestProtocol": _protocol(line[L_VERSION]),
            "RequestScheme": scheme.decode(),
            "RetryAttempts": e[E_RETRIES],
            "StartLocal": clock.rfc3339nano(start_ns, False),
            "StartUTC": clock.rfc3339nano(start_ns, True),
            "entryPointName": ep,
        }
        if router is not None:
            fields["RouterName"] = router
        if served:
            fields["ServiceName"] = service
        if upstream:
            fields["ServiceURL"] = upstream
            fields["ServiceAddr"] = service_addr
        if e[E_TLS] is not None:
            fields["TLSVersion"], fields["TLSCipher"] = e[E_TLS]
        origin_size = fields["OriginContentSize"]
        if origin_size != size and size:
            ratio = origin_size / size
            fields["GzipRatio"] = int(ratio) if ratio.is_integer() else ratio
        if self._names or not self._default_keep:
            fields = {k: v for k, v in fields.items() if self._field_kept(k)}
        if self._want_headers:
            request = req_headers
            if e[E_REQ_SIZE] > 0 and request is not None:
                request = [*request, (b"content-length", b"%d" % e[E_REQ_SIZE])]  # framing, kept by Go
            self._headers(fields, "request_", request)
            response = origin_headers
            if not served:
                # Answered by ferryman itself: Go adds Date and Content-Length only when writing,
                # after the access log copied the header map; there is no origin response.
                response = [(n, v) for n, v in response or () if n.lower() not in (b"date", b"content-length")]
            else:
                if length >= 0 and response is not None and status not in (204, 304):
                    # the sink adds the framing header; Traefik logs the Content-Length it sends
                    response = [*response, (b"content-length", b"%d" % length)]
                self._headers(fields, "origin_", response)
            self._headers(fields, "downstream_", response)
        fields["level"] = "info"
        fields["msg"] = ""
        fields["time"] = self._end_clock.rfc3339(start_ns + duration)  # when logged: the end
        return json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    def _header_info(self, raw: bytes) -> tuple[str, int]:
        """A header's canonical name and its ``fields.headers`` mode (0 keep, 1 drop, 2 redact), for
        the compiled json loop (which caches them by raw name)."""
        name = canonical_header(raw)
        mode = self._header_names.get(name, self._header_default)
        return name, 1 if mode == "drop" else 2 if mode == "redact" else 0

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


class _Writer:
    """The access log's only part off the event loop: writes the formatted lines (the thread holds
    the GIL just long enough to start each ``write``) and reopens the file on SIGUSR1."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._queue: deque[tuple[bytes, int]] = deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._reopen = False
        self._closing = False
        self._thread: threading.Thread | None = None
        self._file: IO[bytes] | None = None
        self._text: IO[str] | None = None  # stdout without a binary buffer (tests capture it)
        self._opened = False
        self.queued = 0  # lines handed over (loop thread)
        self.done = 0  # lines written or lost (writer thread)
        self.written = 0

    def start(self) -> None:
        if self._thread is None:
            if not self._opened:
                self._open()
            self._closing = False
            self._thread = threading.Thread(target=self._run, name="accesslog-writer", daemon=True)
            self._thread.start()

    def put(self, data: bytes, lines: int) -> None:
        self.queued += lines
        self._queue.append((data, lines))
        self._wake.set()

    def reopen(self) -> None:
        self._reopen = True
        self._wake.set()

    def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        self.write_now()
        if self._file is not None and self.path:
            with contextlib.suppress(OSError):
                self._file.close()
        self._file = self._text = None

    def _open(self) -> None:
        self._opened = True
        self._file = self._text = None
        if not self.path:
            buffer = getattr(sys.stdout, "buffer", None)
            if buffer is not None:
                self._file = buffer
            else:
                self._text = sys.stdout
            return
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        try:
            self._file = open(self.path, "ab")  # noqa: SIM115 - kept open by design
        except OSError as exc:
            log.error("cannot open access log", extra={"fields": {"filePath": self.path, "error": str(exc)}})

    def _run(self) -> None:
        while not self._closing:
            self._wake.wait(1.0)
            self._wake.clear()
            self.write_now()

    def write_now(self) -> None:
        with self._lock:
            if not self._opened:
                self._open()  # written before start() (tests, a shutdown before serving)
            if self._reopen:
                self._reopen = False
                old = self._file
                self._open()
                if old is not None and old is not self._file and self.path:
                    with contextlib.suppress(OSError):
                        old.close()
            queue = self._queue
            while queue:
                data, lines = queue.popleft()
                try:
                    if self._file is not None:
                        self._file.write(data)
                        self._file.flush()
                        self.written += lines
                    elif self._text is not None:
                        self._text.write(data.decode("utf-8", "replace"))
                        self._text.flush()
                        self.written += lines
                except OSError as exc:
                    log.error("cannot write access log", extra={"fields": {"filePath": self.path, "error": str(exc)}})
                self.done += lines


_PROTOCOLS = {b"1.1": "HTTP/1.1", b"1.0": "HTTP/1.0", b"2": "HTTP/2.0", b"3": "HTTP/3.0"}


def _protocol(version: bytes) -> str:
    return _PROTOCOLS.get(version) or "HTTP/" + version.decode("latin-1")
