"""``api.debug``: runtime introspection under ``<basePath>/debug/``, suited to a Python process.

Traefik serves Go's ``expvar`` (``/debug/vars``) and ``pprof`` (``/debug/pprof/*``). ferryman keeps
those paths where they make sense in Python and adds what a Python operator needs:

* ``/debug/vars`` -- JSON: ``cmdline``, ``python``, ``pid``, ``tasks`` (count), ``gc`` (counts,
  per-generation collections, frozen objects), ``maxRSSBytes``.
* ``/debug/tasks`` -- JSON list of the running asyncio tasks: ``name``, ``coroutine``, ``state``,
  ``stack`` (innermost frame last).
* ``/debug/memory`` -- JSON: live objects by type (the 100 most numerous), counted on demand by a
  walk over the collector's objects (costly on a large configuration: use it when investigating).
* ``/debug/pprof/profile?seconds=N`` -- a CPU profile of the event loop thread (``cProfile``) for
  ``N`` seconds (default 30, as Go's; at most 300), answered as ``pstats`` text sorted by cumulative
  time. One profile at a time (Go's 500 message otherwise).
* ``/debug/pprof/cmdline`` -- the command line, NUL-separated (as Go's).
* ``/debug/pprof/`` -- an index of these endpoints.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import io
import os
import pstats
import resource
import sys
from collections import Counter
from typing import Any

from ferryman.api.gojson import encode
from ferryman.http.exchange import Exchange

__all__ = ["DEBUG_PATHS", "handle_debug"]

JSON_UTF8 = b"application/json; charset=utf-8"
TEXT = b"text/plain; charset=utf-8"
NOSNIFF = (b"X-Content-Type-Options", b"nosniff")
MAX_PROFILE_SECONDS = 300.0
#: path under ``/debug/`` -> description (the index).
DEBUG_PATHS = {
    "vars": "process variables (JSON)",
    "tasks": "running asyncio tasks with their stacks (JSON)",
    "memory": "live objects by type (JSON; walks every object)",
    "pprof/profile": "CPU profile of the event loop for ?seconds=N (default 30), pstats text",
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
    if _profiling:
        return _error(ex, 500, "Could not enable CPU profiling: cpu profiling already in use")
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return _error(ex, 500, "Could not enable CPU profiling: no running event loop")
    profiler = cProfile.Profile()
    _profiling = True
    profiler.enable()

    def done() -> None:
        global _profiling
        profiler.disable()
        _profiling = False
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(200)
        ex.respond(200, (), out.getvalue().encode(), content_type=TEXT)

    loop.call_later(seconds, done)
    return None
