"""Pause the cyclic garbage collector around configuration work.

Decoding and compiling a large configuration allocates hundreds of thousands of small objects;
with the collector running, generation-2 passes over everything already alive (the previous
snapshot included) more than double the time to apply a 10,000-router file. Reference counting
still frees what it can while paused; the collector resumes afterwards. Nested and concurrent
uses (the file provider decodes in a worker thread while the loop compiles) are counted.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    global _depth
    with _lock:
        if _depth == 0:
            was_enabled = gc.isenabled()
            gc.disable()
        else:
            was_enabled = False
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and (was_enabled or not gc.isenabled()):
                gc.enable()
