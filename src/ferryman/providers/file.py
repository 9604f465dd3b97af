"""The file provider: Traefik's ``providers.file`` (``filename`` or ``directory``, ``watch``).

Reading and decoding run in a worker thread so a large file never stalls the data plane. A single
file is watched through its parent directory, so editors' atomic renames (write a temp file, rename
it over the original) and bind-mount replacements are seen. A file that stops parsing produces a
message without configuration: the watcher keeps the last good one and reports the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from ferryman.dynamic.decode import decode_files
from ferryman.errors import ConfigError
from ferryman.gcpause import gc_paused
from ferryman.providers.base import ElementProblem, Emit, ProviderMessage

log = logging.getLogger("ferryman.providers.file")

SUFFIXES = (".yml", ".yaml", ".toml")


class FileProvider:
    name = "file"

    def __init__(self, *, filename: str = "", directory: str = "", watch: bool = True,
                 debounce_ms: int = 50) -> None:
        if bool(filename) == bool(directory):
            raise ConfigError("set exactly one of filename and directory", source="static configuration",
                              path="providers.file",
                              fix="use providers.file.directory (recommended) or providers.file.filename")
        self.filename = Path(filename).absolute() if filename else None
        self.directory = Path(directory).absolute() if directory else None
        self.watch = watch
        self.debounce_ms = debounce_ms

    # -- reading ---------------------------------------------------------------------------------

    def _paths(self) -> list[Path]:
        if self.filename is not None:
            return [self.filename]
        assert self.directory is not None
        found: list[Path] = []
        for root, dirs, files in os.walk(self.directory):
            dirs.sort()
            for name in sorted(files):
                if name.endswith(SUFFIXES):
                    found.append(Path(root) / name)
        return found

    def load(self) -> ProviderMessage:
        """Read and decode every file now (blocking; call it from a worker thread)."""
        files: list[tuple[str, bytes]] = []
        try:
            for path in self._paths():
                files.append((str(path), path.read_bytes()))
        except FileNotFoundError as exc:
            return ProviderMessage(self.name, None, error=f"{exc.filename}: file not found")
        except OSError as exc:
            return ProviderMessage(self.name, None, error=f"{getattr(exc, 'filename', '')}: {exc.strerror}")
        if self.directory is not None and not self.directory.is_dir():
            return ProviderMessage(self.name, None, error=f"{self.directory}: directory not found")
        try:
            with gc_paused():
                decoded = decode_files(files)
        except ConfigError as exc:
            return ProviderMessage(self.name, None, error=str(exc))
        problems = tuple(ElementProblem(e.kind, e.name, e.message) for e in decoded.errors)
        return ProviderMessage(self.name, decoded.config, problems=problems, warnings=tuple(decoded.warnings))

    # -- running ---------------------------------------------------------------------------------

    def _watch_roots(self) -> Sequence[Path]:
        if self.filename is not None:
            return [self.filename.parent]
        assert self.directory is not None
        return [self.directory]

    def _relevant(self, changed: str) -> bool:
        if self.filename is not None:
            return Path(changed).name == self.filename.name
        return changed.endswith(SUFFIXES) or os.path.isdir(changed)

    async def run(self, emit: Emit) -> None:
        roots = [str(p) for p in self._watch_roots() if p.exists()] if self.watch else []
        if self.watch and not roots:
            log.error("file provider: nothing to watch at %s", ", ".join(map(str, self._watch_roots())))
        if not roots:
            emit(await asyncio.to_thread(self.load))
            return
        import watchfiles

        changes_iter = watchfiles.awatch(*roots, debounce=self.debounce_ms, step=25, watch_filter=None,
                                         recursive=self.directory is not None)
        # Start watching *before* the first read, so an edit made right after it is never missed:
        # the generator's first step installs the inotify watches, then waits in a thread.
        pending = asyncio.ensure_future(changes_iter.__anext__())
        await asyncio.sleep(0)
        try:
            emit(await asyncio.to_thread(self.load))
            while True:
                changes = await pending
                if any(self._relevant(path) for _change, path in changes):
                    emit(await asyncio.to_thread(self.load))
                pending = asyncio.ensure_future(changes_iter.__anext__())
        finally:
            pending.cancel()
            with contextlib.suppress(RuntimeError, asyncio.CancelledError):
                await changes_iter.aclose()
