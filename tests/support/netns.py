"""Network namespaces for tests that need fixed ports (80, 443): each gets its own loopback.

``with network_namespace("acme") as ns:`` creates ``fm-acme-<pid>-<n>`` with ``lo`` up and deletes
it at the end (processes still running inside must be stopped first: :class:`ProcessGroup`).
Commands run inside with :func:`in_netns`. Needs root (``ip netns``); :func:`netns_available`
tells whether this machine allows it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
from collections.abc import Iterator, Sequence

__all__ = ["in_netns", "netns_available", "network_namespace"]

_counter = itertools.count(1)


def netns_available() -> bool:
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["ip", "netns", "list"], capture_output=True, check=False)
    return done.returncode == 0


def in_netns(name: str, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", name, *argv]


@contextlib.contextmanager
def network_namespace(tag: str) -> Iterator[str]:
    name = f"fm-{tag}-{os.getpid()}-{next(_counter)}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, capture_output=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
