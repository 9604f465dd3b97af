"""``api.debug``: runtime introspection under ``<basePath>/debug/``, suited to a Python process.

Traefik serves Go's ``expvar`` (``/debug/vars``) and ``pprof`` (``/debug/pprof/*``). ferryman keeps
those paths where they make sense in Python and adds what a Python operator needs:

* ``/debug/vars`` -- JSON: ``cmdline``, ``python``, ``pid``, ``tasks`` (count), ``gc`` (counts,
  per-generation collections, frozen objects), ``maxRSSBytes``.
* ``/debug/tasks`` -- JSON list of the running asyncio tasks: ``name``, ``coroutine``, ``state``,
  ``stack`` (innermost frame last).
* ``/debug/memory`` -- JSON: live objects by type (the 100 most numerous), counted on demand by a
  walk over the collector's objects (costly on a large configuration: use it when investigating).
* ``/debug/pprof/profile?seconds=N`` -- a CPU profile of the event loop thread for ``N`` seconds
  (default 30, as Go's; at most 300): a sampling profiler in its own thread (the loop's stack read
  every 5 ms; nothing instrumented, so requests run at full speed meanwhile), answered as text --
  functions by self and total samples, then folded stacks; ``&format=folded`` answers only the
  folded stacks (flame graph input). One profile at a time (Go's 500 message otherwise).
* ``/debug/pprof/cmdline`` -- the command line, NUL-separated (as Go's).
* ``/debug/pprof/`` -- an index of these endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import resource
import sys
import threading
import time
from collections import Counter
from types import FrameType
from typing import Any

from ferryman.api.gojson import encode
from ferryman.http.exchange import Exchange

__all__ = ["DEBUG_PATHS", "handle_debug"]

JSON_UTF8 = b"application/json; charset=utf-8"
TEXT = b"text/plain; charset=utf-8"
NOSNIFF = (b"X-Content-Type-Options", b"nosniff")
MAX_PROFILE_SECONDS = 300.0
SAMPLE_INTERVAL = 0.005
MAX_DEPTH = 64
MAX_STACKS = 5000
#: path under ``/debug/`` -> description (the index).
DEBUG_PATHS = {
    "vars": "process variables (JSON)",
    "tasks": "running asyncio tasks with their stacks (JSON)",
    "memory": "live objects by type (JSON; walks every object)",
    "pprof/profile": "sampled CPU profile of the event loop for ?seconds=N (default 30); &format=folded",
    "pprof/cmdline": "the command line, NUL-separated",
}

_profiling = False


def handle_debug(ex: Exchange, rest: str, query: dict[str, list[str]]) -> bool:
    """Answer ``/debug/<rest>``; ``False`` when ``rest`` is not a debug route (the caller 404s)."""
    if rest == "vars":
        ex.respond(200, (), encode(_vars()), content_type=JSON_UTF8)
    elif rest == "tasks":
        ex.respond(200, (), encode(_tasks()), content_type=JSON_UTF8)
    elif rest == "memory":
        ex.respond(200, (), encode(_memory()), content_type=JSON_UTF8)
    elif rest == "pprof/cmdline":
        ex.respond(200, (NOSNIFF,), "\x00".join(sys.argv).encode(), content_type=TEXT)
    elif rest == "pprof/profile":
        _profile(ex, query)
    elif rest.startswith("pprof/"):
        lines = [f"/debug/{path}: {what}" for path, what in DEBUG_PATHS.items()]
        ex.respond(200, (), ("\n".join(lines) + "\n").encode(), content_type=TEXT)
    else:
        return False
    return True


def _vars() -> dict[str, Any]:
    try:
        tasks = len(asyncio.all_tasks())
    except RuntimeError:
        tasks = 0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "cmdline": list(sys.argv),
        "python": sys.version,
        "pid": os.getpid(),
        "tasks": tasks,
        "gc": {"counts": list(gc.get_count()), "generations": gc.get_stats(), "frozen": gc.get_freeze_count()},
        "maxRSSBytes": usage.ru_maxrss * 1024,
    }


def _tasks() -> list[dict[str, Any]]:
    try:
        tasks = asyncio.all_tasks()
    except RuntimeError:
        return []
    out: list[dict[str, Any]] = []
    for task in tasks:
        coro = task.get_coro()
        state = "cancelled" if task.cancelled() else "done" if task.done() else "pending"
        stack = [f"{f.f_code.co_filename}:{f.f_lineno} in {f.f_code.co_name}" for f in task.get_stack()]
        out.append({"name": task.get_name(), "coroutine": getattr(coro, "__qualname__", repr(coro)),
                    "state": state, "stack": stack})
    out.sort(key=lambda t: t["name"])
    return out


def _memory(limit: int = 100) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    objects = gc.get_objects()
    for obj in objects:
        cls = type(obj)
        counts[f"{cls.__module__}.{cls.__qualname__}"] += 1
    return {"objects": len(objects),
            "byType": [{"type": name, "count": n} for name, n in counts.most_common(limit)]}


def _error(ex: Exchange, status: int, message: str) -> None:
    ex.respond(status, (NOSNIFF,), (message + "\n").encode(), content_type=TEXT)


def _profile(ex: Exchange, query: dict[str, list[str]]) -> None:
    global _profiling
    raw = (query.get("seconds") or ["30"])[0]
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= MAX_PROFILE_SECONDS:
        return _error(ex, 400, f"Bad Request: seconds must be a number in (0, {MAX_PROFILE_SECONDS:g}]")
    folded = (query.get("format") or [""])[0] == "folded"
    if _profiling:
        return _error(ex, 500, "Could not enable CPU profiling: cpu profiling already in use")
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return _error(ex, 500, "Could not enable CPU profiling: no running event loop")
    _profiling = True

    def respond(text: str) -> None:
        global _profiling
        _profiling = False
        ex.respond(200, (), text.encode(), content_type=TEXT)

    sampler = _Sampler(threading.get_ident(), seconds)

    def run() -> None:
        sampler.run()
        text = sampler.folded() if folded else sampler.report()
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (shutdown)
            loop.call_soon_threadsafe(respond, text)

    threading.Thread(target=run, name="ferryman-cpu-profile", daemon=True).start()
    return None


Frame = tuple[str, str, int]  # (file, function, first line)


class _Sampler:
    """A statistical CPU profiler of one thread (the event loop's): a separate thread reads that
    thread's current stack every :data:`SAMPLE_INTERVAL` seconds and counts distinct stacks.

    Nothing is instrumented: the loop runs at full speed (``cProfile`` would slow every call
    several times over while a profile runs). Bounded: at most :data:`MAX_PROFILE_SECONDS`, stacks
    cut at :data:`MAX_DEPTH` frames, at most :data:`MAX_STACKS` distinct stacks (the rest counted
    as ``[other]``)."""

    def __init__(self, thread_id: int, seconds: float) -> None:
        self.thread_id = thread_id
        self.seconds = seconds
        self.stacks: Counter[tuple[Frame, ...]] = Counter()
        self.samples = 0
        self.idle = 0
        self.dropped = 0
        self.started = 0.0
        self.elapsed = 0.0

    def run(self) -> None:
        self.started = time.monotonic()
        end = self.started + self.seconds
        now = self.started
        while now < end:
            frame = sys._current_frames().get(self.thread_id)
            if frame is None:  # the loop thread is gone
                break
            stack = _stack(frame)
            del frame
            self.samples += 1
            if _is_idle(stack):
                self.idle += 1
            elif stack in self.stacks or len(self.stacks) < MAX_STACKS:
                self.stacks[stack] += 1
            else:
                self.dropped += 1
            time.sleep(max(0.0, min(SAMPLE_INTERVAL, end - time.monotonic())))
            now = time.monotonic()
        self.elapsed = now - self.started

    def folded(self) -> str:
        """Brendan Gregg's folded stacks (``root;...;leaf count``), for flame graph tools."""
        lines = [";".join(_label(f) for f in stack) + f" {n}" for stack, n in self.stacks.most_common()]
        if self.idle:
            lines.append(f"[idle] {self.idle}")
        if self.dropped:
            lines.append(f"[other] {self.dropped}")
        return "\n".join(lines) + "\n"

    def report(self, top: int = 40) -> str:
        busy = self.samples - self.idle
        own: Counter[Frame] = Counter()
        total: Counter[Frame] = Counter()
        for stack, n in self.stacks.items():
            own[stack[-1]] += n
            for frame in set(stack):
                total[frame] += n
        out = [f"CPU profile of the event loop thread: {self.samples} samples in {self.elapsed:.1f}s "
               f"(every {SAMPLE_INTERVAL * 1000:g} ms), {busy} busy, {self.idle} idle (waiting for I/O)",
               "", "Busy samples by function (self = on top of the stack, total = anywhere in it):",
               f"{'self':>7} {'self%':>6} {'total':>7} {'total%':>6}  function"]
        for frame, n in sorted(total.items(), key=lambda kv: (-own[kv[0]], -kv[1]))[:top]:
            out.append(f"{own[frame]:>7} {_pct(own[frame], busy):>6} {n:>7} {_pct(n, busy):>6}  {_label(frame)}")
        out += ["", "Folded stacks (?format=folded for a flame graph):", self.folded()]
        return "\n".join(out)


def _pct(n: int, of: int) -> str:
    return f"{100 * n / of:.1f}%" if of else "-"


def _label(frame: Frame) -> str:
    return f"{frame[1]} ({frame[0]}:{frame[2]})"


def _stack(frame: FrameType | None) -> tuple[Frame, ...]:
    found: list[Frame] = []
    while frame is not None and len(found) < MAX_DEPTH:
        code = frame.f_code
        found.append((code.co_filename, code.co_name, code.co_firstlineno))
        frame = frame.f_back
    found.reverse()
    return tuple(found)


def _is_idle(stack: tuple[Frame, ...]) -> bool:
    """The loop waiting in ``select``/``epoll`` (stock asyncio) or inside uvloop's C run loop with
    no Python frame above ``run_forever``."""
    if not stack:
        return True
    leaf = stack[-1]
    return leaf[1] in ("select", "poll", "run_forever", "run_until_complete", "run") and (
        "selectors" in leaf[0] or "asyncio" in leaf[0] or "uvloop" in leaf[0] or leaf[1] == "select")
