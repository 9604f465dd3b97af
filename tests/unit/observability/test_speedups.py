"""The compiled loops (``ferryman._speedups``) against the Python loops they replace: the same
batches must give the same access-log bytes and the same metrics, entry for entry."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ferryman.observability.accesslog as accesslog
import ferryman.observability.metrics as metrics
from ferryman.observability.accesslog import JSON_FIELDS, AccessLog
from ferryman.observability.metrics import Metrics
from ferryman.observability.recorder import E_EXTRA, speedups
from ferryman.static.models import AccessLog as AccessLogConfig
from tests.support.recording import RecordingClient

needs_speedups = pytest.mark.skipif(speedups is None, reason="ferryman._speedups is not built")

BIT = 2
OTHER = 1
BASE = 1_790_000_000_000_000_000  # a perf_counter_ns-like start, far from 0


def test_speedups_are_built_where_required() -> None:
    """CI sets FERRYMAN_REQUIRE_SPEEDUPS: a silent build failure would leave the Python loops in
    place and the benchmark's numbers would not be the ones users get."""
    if not os.environ.get("FERRYMAN_REQUIRE_SPEEDUPS"):
        pytest.skip("FERRYMAN_REQUIRE_SPEEDUPS is not set")
    assert speedups is not None, "ferryman._speedups did not build (gcc and the Python headers?)"


_labels = st.sampled_from([
    ("web", "s@file", "http", 200, "r@file", b"GET"),
    ("web", "s@file", "http", 404, "r@file", b"GET"),
    ("websecure", None, "grpc", 0, None, b"POST"),
    ("web", "s@file", "http", 200, "r@file", b"GET"),
    ("w\"b", "s\u00e9@file", "http", 200, "r\\x@file", b"GET"),
])
_lines = st.tuples(
    st.sampled_from(["r@file", "other@docker", None]),
    st.sampled_from([b"GET", b"POST"]),
    st.sampled_from([b"/", b"/a?q=1", b'/"quoted"', "/caf\u00e9".encode("latin-1"), b"/x/../y", b"/\x01\t\n\\\x7f"]),
    st.sampled_from([b"1.1", b"2", b"3", b"1.0", b"0.9"]),
    st.sampled_from([200, 404, 499, 502]),
    st.integers(0, 1 << 40),
    st.sampled_from(["", "http://10.0.0.9:80", "http://[::1]:8080", "h2c://b:81/base/x", "unix-no-scheme"]),
    st.sampled_from([None, b"http://a/", b'a "b"']),
    st.sampled_from([None, b"curl/8.0", "Mozilla \u00e9".encode("latin-1")]),
)


@st.composite
def _entry(draw: st.DrawFn) -> tuple[Any, ...]:
    values: list[Any] = [None] * (E_EXTRA + 1)
    # what the compiled loops stop at (another consumer's entry, numbers beyond 64 bits, a surrogate)
    # is rare here, so that they do most of each batch
    values[0] = draw(st.sampled_from([BIT] * 12 + [BIT | OTHER, OTHER]))
    values[1] = draw(_labels)
    values[2] = draw(_lines)
    values[3] = draw(st.sampled_from([0, 1, 31] * 4 + [1 << 64]) | st.integers(0, 1 << 40))
    values[4] = draw(st.integers(0, 1 << 20))
    values[5] = BASE + draw(st.integers(0, 5_000_000_000))
    values[6] = draw(st.integers(0, 3_000_000_000) | st.sampled_from([999_999, 1_000_000] * 6 + [1 << 63, 1 << 70]))
    values[7] = draw(st.sampled_from([0, 0, 0, 2]))
    values[8] = draw(st.sampled_from(["127.0.0.1", "10.0.0.7", "::1"]))
    values[9] = 4000
    values[10] = draw(st.sampled_from(["-", "-", "alice", "j\u00f6rg", 'q"\\'] * 3 + ["bad\udcff"]))
    values[11] = draw(st.sampled_from([None, None, ("1.3", "TLS_AES_128_GCM_SHA256")]))
    values[13] = (draw(st.sampled_from([b"h", b"h:8080", b"[::1]:443", b"[::1]", b"[::1]x", b"[::1", b"a:b:c", b"h:",
                                        b"", "caf\u00e9.local:80".encode("latin-1"), b'q"uote'])),
                  draw(st.sampled_from([b"http", b"https"])), draw(st.sampled_from([-1, 0, 5])),
                  draw(st.none() | _header_lists), draw(st.none() | _header_lists))
    return tuple(values)


_HEADERS = [(b"content-type", b"text/plain"), (b"Content-Type", b"x"), (b"date", b"Mon"), (b"Date", b"Tue"),
            (b"x-forwarded-for", b"1.2.3.4"), (b"user-agent", b'c"u\\'), (b"authorization", b"secret"),
            (b"content-length", b"9"), (b"x-\xe9", b"\xe9\x01"), (b"accept", b"a"), (b"accept", b"b"), (b"x", b"")]
_header_lists = st.lists(st.sampled_from(_HEADERS), max_size=8)
_header_fields = st.fixed_dictionaries({
    "defaultMode": st.sampled_from(["keep", "drop", "redact"]),
    "names": st.dictionaries(st.sampled_from(["Content-Type", "Date", "User-Agent", "Authorization", "Accept",
                                              "Content-Length", "X-\u00e9", "X"]),
                             st.sampled_from(["keep", "drop", "redact"]), max_size=4)})


# runs of equal entries (what a busy router gives) and mixed ones
_batches = st.lists(st.tuples(_entry(), st.integers(1, 4)), max_size=40).map(
    lambda runs: [e for e, times in runs for _ in range(times)])


def _log(config: dict[str, Any]) -> AccessLog:
    log = AccessLog(AccessLogConfig.model_validate(config))
    log.bit = BIT
    return log


def _format_both(config: dict[str, Any], batches: list[list[tuple[Any, ...]]],
                 monkeypatch: pytest.MonkeyPatch) -> tuple[list[tuple[bytes, int]], list[tuple[bytes, int]]]:
    compiled, python = _log(config), _log(config)
    got = [compiled._format(b, 7_000_000_123) for b in batches]
    with monkeypatch.context() as m:
        m.setattr(accesslog, "speedups", None)
        want = [python._format(b, 7_000_000_123) for b in batches]
    assert compiled._count == python._count
    return got, want


@needs_speedups
@settings(max_examples=300, deadline=None)
@given(batches=st.lists(_batches, min_size=1, max_size=3))
def test_clf_lines_match_the_python_loop(batches: list[list[tuple[Any, ...]]]) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        got, want = _format_both({"format": "common"}, batches, monkeypatch)
        assert got == want
        kept, kept_want = _format_both({"format": "common", "fields": {"headers": {"defaultMode": "keep"}}},
                                       batches, monkeypatch)
        assert kept == kept_want


@needs_speedups
@settings(max_examples=300, deadline=None)
@given(batches=st.lists(_batches, min_size=1, max_size=3),
       default=st.sampled_from(["keep", "keep", "drop"]),
       names=st.dictionaries(st.sampled_from((*JSON_FIELDS, "level")), st.sampled_from(["keep", "drop"]), max_size=6),
       headers=st.none() | _header_fields)
def test_json_lines_match_the_python_loop(batches: list[list[tuple[Any, ...]]], default: str,
                                          names: dict[str, str], headers: dict[str, Any] | None) -> None:
    # durations a clock can show (the times' years stay in range)
    batches = [[(*e[:6], min(e[6], 10**12), *e[7:]) for e in b] for b in batches]
    fields: dict[str, Any] = {"defaultMode": default, "names": names}
    if headers is not None:
        fields["headers"] = headers
    with pytest.MonkeyPatch.context() as monkeypatch:
        got, want = _format_both({"format": "json", "fields": fields}, batches, monkeypatch)
        assert got == want


def test_json_fields_are_the_json_lines_keys_in_order() -> None:
    """The compiled loop's field bits follow JSON_FIELDS: the keys the Python code writes, sorted."""
    assert list(JSON_FIELDS) == sorted(JSON_FIELDS)
    log = _log({"format": "json"})
    entry: list[Any] = [BIT, ("web", None, "http", 200, "r", b"GET"), ("r", b"GET", b"/", b"1.1", 200, 2, "http://u", None, None),
                        2, 0, BASE, 1_500_000, 0, "10.0.0.1", 1, "-", ("1.3", "X"), None, (b"h:1", b"http", -1, None, None)]
    served = [entry[0], ("web", "s", *entry[1][2:]), *entry[2:]]
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(accesslog, "speedups", None)
        keys = {key for e in (entry, served) for key in json.loads(log._format([tuple(e)], 0)[0])}
    assert keys - {"level", "msg", "time"} == set(JSON_FIELDS)


@needs_speedups
def test_clf_lines_stop_at_what_they_do_not_handle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another consumer's entry, a surrogate in a name: the Python loop takes over from there."""
    entry: list[Any] = [BIT, ("web", "s", "http", 200, "r", b"GET"), ("r", b"GET", b"/", b"1.1", 200, 2, "", None, None),
                        2, 0, BASE, 1_500_000, 0, "10.0.0.1", 1, "-", None, None, None]
    other = [OTHER, *entry[1:]]
    odd = [*entry[:10], "x\udcff", *entry[11:]]
    batch = [tuple(entry), tuple(other), tuple(entry), tuple(odd), tuple(entry)]
    assert speedups is not None
    text, count, stop = speedups.clf_lines(batch, BIT, 0, 10, {}, _log({})._parts, lambda ns: "STAMP")
    assert (count, stop) == (11, 1)
    assert text == b'10.0.0.1 - - [STAMP] "GET / HTTP/1.1" 200 2 "-" "-" 11 "r" "-" 1ms\n'
    text, count, stop = speedups.clf_lines(batch[2:], BIT, 0, 11, {}, _log({})._parts, lambda ns: "STAMP")
    assert (count, stop) == (12, 1)
    got, want = _format_both({}, [batch], monkeypatch)
    assert got == want
    assert got[0][1] == 4 and b" - x? [" in got[0][0]  # encoded as Python does ("replace")


def _add_both(buckets: list[float], batches: list[list[tuple[Any, ...]]], monkeypatch: pytest.MonkeyPatch,
              header_labels: dict[str, str] | None = None) -> tuple[Metrics, Metrics]:
    compiled = Metrics(buckets=buckets, header_labels=header_labels)
    python = Metrics(buckets=buckets, header_labels=header_labels)
    compiled.bit = python.bit = BIT
    for b in batches:
        compiled._add(b)
    with monkeypatch.context() as m:
        m.setattr(metrics, "speedups", None)
        for b in batches:
            python._add(b)
    return compiled, python


@needs_speedups
@settings(max_examples=300, deadline=None)
@given(batches=st.lists(_batches, min_size=1, max_size=3),
       buckets=st.sampled_from([[0.1, 0.3, 1.2, 5.0], [], [0.0005, 0.001, 2.5], [10.0]]))
def test_metrics_add_matches_the_python_loop(batches: list[list[tuple[Any, ...]]], buckets: list[float]) -> None:
    batches = [[(*e[:12], ("v",) if e[7] else None, None) for e in b] for b in batches]  # header labels
    with pytest.MonkeyPatch.context() as monkeypatch:
        compiled, python = _add_both(buckets, batches, monkeypatch)
        assert compiled.slots == python.slots
        assert (compiled.retries, compiled.tls, compiled.labelled) == (python.retries, python.tls, python.labelled)
        compiled, python = _add_both(buckets, batches, monkeypatch, header_labels={"l": "X-L"})
        assert compiled.slots == python.slots
        assert (compiled.retries, compiled.tls, compiled.labelled) == (python.retries, python.tls, python.labelled)


@needs_speedups
def test_metrics_with_more_buckets_than_the_compiled_loop_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past 64 buckets the compiled loop hands the whole batch to the Python one."""
    labels = ("web", "s", "http", 200, "r", b"GET")
    batch = [(BIT, labels, None, 1, 1, 0, ns, 0, "", 0, "-", None, None, None) for ns in (5_000_000, 70_000_000)]
    compiled, python = _add_both([0.001 * i for i in range(1, 81)], [batch], monkeypatch)
    assert compiled.slots == python.slots
    assert compiled.slots[labels][:4] == [2, 2, 2, 75_000_000]


@needs_speedups
def test_metrics_add_rejects_a_foreign_slot() -> None:
    assert speedups is not None
    labels = ("web", "s", "http", 200, "r", b"GET")
    entry = (BIT, labels, None, 1, 1, 0, 5, 0, "", 0, "-", None, None, None)
    with pytest.raises(TypeError, match="slot"):
        speedups.metrics_add([entry], BIT, {labels: [0]}, 9, (1, 2, 3, 4), False)
    with pytest.raises(ValueError, match="width"):
        speedups.metrics_add([entry], BIT, {}, 3, (1, 2, 3, 4), False)
    slots: dict[Any, list[Any]] = {}
    assert speedups.metrics_add([entry, entry], BIT, slots, 9, (1, 2, 3, 4), False) == (2, [])
    assert slots == {labels: [2, 2, 2, 10, 0, 0, 0, 0, 2]}


# ---------------------------------------------------------------- the request path: Finisher

_accepts = st.sampled_from([None, b"*/*", b"text/event-stream", b" Text/Event-Stream ,text/html",
                            b"text/html, text/event-stream;q=1", b"text/html,application/xhtml+xml,*/*;q=0.8"])
_ctypes = st.sampled_from([None, b"application/json", b"application/grpc", b"application/grpc+proto",
                           b"application/grpc-web-text", b"application/grp"])


@st.composite
def _request(draw: st.DrawFn) -> dict[str, Any]:
    headers: list[tuple[bytes, bytes]] = [(b"host", b"h")]
    for name, value in ((b"accept", draw(_accepts)), (b"content-type", draw(_ctypes)),
                        (b"referer", draw(st.sampled_from([None, b"http://a/"]))),
                        (b"user-agent", draw(st.sampled_from([None, b"curl/8", b'x "y"']))),
                        (b"accept", draw(st.sampled_from([None, b"text/event-stream"])))):
        if value is not None:
            headers.append((name, value))
    return {
        "headers": draw(st.permutations(headers)),
        "websocket": draw(st.booleans()),
        "router": draw(st.sampled_from(["r@file", "api@internal", None])),
        "service": draw(st.sampled_from(["s@file", None])),
        "status": draw(st.sampled_from([200, 404, 0])),  # 0: lost before the head (499)
        "trailers": draw(st.sampled_from([None, [(b"grpc-status", b"7")]])),
        "sent": draw(st.integers(0, 3)),
        "body_length": draw(st.sampled_from([-1, 0, 5])),
        "user": draw(st.sampled_from([None, "alice"])),
        "upstream": draw(st.sampled_from([None, "http://10.0.0.9:80"])),
        "retries": draw(st.sampled_from([0, 2])),
        "tls": draw(st.booleans()),
        "method": draw(st.sampled_from([b"GET", b"POST"])),
        "version": draw(st.sampled_from([b"1.1", b"2", b"3"])),
    }


def _finished(r: dict[str, Any], observer_args: dict[str, Any], compiled: bool,
              monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """The entries one request leaves, through a real observer, compiled or Python."""
    import ferryman.observability.recorder as recorder
    from ferryman.http.exchange import ConnInfo, Exchange
    from ferryman.http.forwarded import ForwardingPolicy

    with monkeypatch.context() as m:
        if not compiled:
            m.setattr(recorder, "speedups", None)
        recording = recorder.Recording()
        recording.internal_routers.add("api@internal")
        observer = recorder.Observer(recording, 1, **observer_args)
    assert isinstance(observer.finish, type(observer.finish_py)) != compiled
    conn = ConnInfo("web", "10.0.0.7", 4000, r["tls"], ForwardingPolicy())
    if r["tls"]:
        conn.tls_names_ = ("1.3", "TLS_AES_128_GCM_SHA256")
    client = RecordingClient()
    ex = client.ex = Exchange(conn, client, r["method"], b"/a?b", b"/a", b"b", r["version"], list(r["headers"]), b"h",
                              r["body_length"])
    ex.websocket = r["websocket"]
    observer.begin(ex)
    ex.router, ex.service = r["router"], r["service"]
    if r["user"]:
        ex.obs_user = r["user"]
    if r["upstream"]:
        ex.obs_upstream = r["upstream"]
    ex.obs_retries = r["retries"]
    if r["status"]:
        ex.send_head(r["status"], [(b"grpc-status", b"3")], r["sent"])
        ex.send_data(b"x" * r["sent"])
        ex.send_end(r["trailers"])
    else:
        recorder.lost(ex)
    assert ex.obs is None
    for e in recording.pending:
        assert isinstance(e[6], int) and 0 <= e[6] < 10_000_000_000
    return [e[:5] + e[7:] for e in recording.pending]  # without the start and the duration


@needs_speedups
@settings(max_examples=400, deadline=None)
@given(r=_request(), args=st.sampled_from([
    {}, {"protocols": True}, {"protocols": True, "clf_headers": True}, {"clf_headers": True},
    {"internal_mask": 2, "protocols": True}, {"json": True}, {"json": True, "protocols": True},
    {"json": True, "json_headers": True, "clf_headers": True}]))
def test_finisher_records_what_the_python_method_records(r: dict[str, Any], args: dict[str, Any]) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert _finished(r, args, True, monkeypatch) == _finished(r, args, False, monkeypatch)


@needs_speedups
def test_finisher_hands_other_classes_to_the_python_method() -> None:
    """Objects it cannot read at known offsets go to the fallback, with the same arguments."""
    assert speedups is not None
    calls: list[tuple[Any, ...]] = []
    finish = speedups.Finisher(1, 0, set(), [], 0, 2, lambda *a: calls.append(a))

    class Loose:  # no __slots__
        pass

    odd = Loose()
    finish(odd)
    finish(odd, None, 499)
    assert calls == [(odd, None, 0), (odd, None, 499)]
    with pytest.raises(TypeError):
        finish()
