"""A real Docker engine for tests: its own ``dockerd``, socket, data root and test image.

:class:`Dockerd` starts ``dockerd --iptables=false --ip6tables=false --bridge=none`` with its own
``--data-root``, ``--exec-root``, ``--pidfile``, unix socket (under a short temporary directory)
and a ``tcp://127.0.0.1:<free port>`` listener, so several test runs can each have one; it can be
killed and started again on the same data root (engine restart tests). Nothing touches
``/var/run/docker.sock``.

There is no registry: :func:`rootfs_tarball` builds a root filesystem from the host's Debian
Python 3.11 and the libraries it links (what ``examples/hello.py`` needs), cached across runs in
``$FERRYMAN_TEST_CACHE`` (default ``<tmp>/ferryman-test-cache``) under a key made from the files'
names, sizes and times; :meth:`Dockerd.import_image` loads it with ``docker import``. Test
containers run with ``--network host``, each backend on its own 127.0.0.1 port.

:func:`skip_reason` says why Docker tests cannot run here (no ``dockerd``, not root, no host
Python 3.11); the fixtures skip with it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from tests.support.procs import REPO_ROOT, ProcessGroup, free_port, poll_until

HOST_PYTHON = Path("/usr/bin/python3.11")
HOST_STDLIB = Path("/usr/lib/python3.11")
EXAMPLES = REPO_ROOT / "examples"
RECIPE_VERSION = "3"

#: ``/bin/sh`` of the test image: enough of ``sh -c "cmd args"`` for Docker's ``CMD-SHELL``
#: health checks (no shell syntax beyond words and quotes).
SH_SHIM = b"""#!/usr/bin/python3
import os, shlex, sys
if len(sys.argv) < 3 or sys.argv[1] != "-c":
    sys.exit("sh (test shim): only 'sh -c COMMAND' is supported")
argv = shlex.split(sys.argv[2])
os.execvp(argv[0], argv)
"""


def cache_dir() -> Path:
    path = Path(os.environ.get("FERRYMAN_TEST_CACHE") or Path(tempfile.gettempdir()) / "ferryman-test-cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def docker_cli() -> str | None:
    return shutil.which("docker")


def skip_reason() -> str | None:
    """Why a real Docker engine cannot be started here, or None."""
    if shutil.which("dockerd") is None:
        return "dockerd is not installed (Debian: apt-get install docker.io); Docker engine tests skipped"
    if docker_cli() is None:
        return "the docker CLI is not installed (Debian: apt-get install docker.io); Docker engine tests skipped"
    if os.geteuid() != 0:
        return "dockerd needs root; Docker engine tests skipped"
    if not HOST_PYTHON.exists() or not HOST_STDLIB.is_dir():
        return f"{HOST_PYTHON} (Debian's python3.11) is needed to build the test image; Docker engine tests skipped"
    return None


# --------------------------------------------------------------------------------------------
# The root filesystem (host Python + its libraries)


def _ldd(path: Path) -> list[Path]:
    out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=False).stdout
    found: list[Path] = []
    for line in out.splitlines():
        for word in line.split():
            if word.startswith("/"):
                found.append(Path(word))
    return found


def _stdlib_files() -> Iterator[Path]:
    for root, dirs, files in os.walk(HOST_STDLIB):
        rel = Path(root).relative_to(HOST_STDLIB)
        dirs[:] = sorted(d for d in dirs if not (rel == Path(".") and d in ("test", "dist-packages"))
                         and d != "__pycache__")
        for name in sorted(files):
            yield Path(root) / name


def _key(paths: Iterable[Path], extra: str = "") -> str:
    h = hashlib.sha256((RECIPE_VERSION + extra).encode())
    for p in paths:
        try:
            st = p.stat()
        except OSError:
            continue
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def rootfs_tarball(extra: Sequence[tuple[Path, str]] = (), name: str = "py") -> Path:
    """A tar of the minimal root filesystem, built once per content key and cached.

    ``extra`` adds ``(host path, path in the image)`` pairs (files or directories)."""
    stdlib = list(_stdlib_files())
    extra_files: list[Path] = []
    for src, _dst in extra:
        extra_files.extend(sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else [src])
    key = _key([HOST_PYTHON, *stdlib, *extra_files], extra=repr([(str(s), d) for s, d in extra]))
    out = cache_dir() / f"rootfs-{name}-{key}.tar"
    if out.exists():
        return out
    libs: set[Path] = set(_ldd(HOST_PYTHON))
    for so in (HOST_STDLIB / "lib-dynload").glob("*.so"):
        libs.update(_ldd(so))
    for path in extra_files:  # extension modules: the system libraries they link (libgcc_s...)
        if ".so" in path.name:
            libs.update(lib for lib in _ldd(path) if str(lib).startswith(("/lib", "/usr/lib")))
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    with tarfile.open(tmp, "w") as tar:
        def add_dir(arc: str) -> None:
            info = tarfile.TarInfo(arc)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)

        def add_link(arc: str, target: str) -> None:
            info = tarfile.TarInfo(arc)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)

        def add_bytes(arc: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(arc)
            info.size = len(data)
            info.mode = mode
            import io

            tar.addfile(info, io.BytesIO(data))

        for d in ("usr", "usr/bin", "usr/lib", "etc", "tmp", "root", "proc", "sys", "dev", "var", "run"):
            add_dir(d)
        add_link("bin", "usr/bin")
        add_bytes("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
        add_bytes("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        add_bytes("etc/hosts", b"127.0.0.1 localhost\n")
        tar.add(HOST_PYTHON, arcname="usr/bin/python3.11")
        add_link("usr/bin/python3", "python3.11")
        add_bytes("usr/bin/sh", SH_SHIM, mode=0o755)
        seen_dirs: set[str] = set()
        for lib in sorted(libs):
            real = lib.resolve()
            arc = str(lib).lstrip("/")
            parent = str(Path(arc).parent)
            for i in range(1, len(Path(parent).parts) + 1):
                d = str(Path(*Path(parent).parts[:i]))
                if d not in seen_dirs and d not in ("usr", "usr/lib", "usr/bin"):
                    seen_dirs.add(d)
                    add_dir(d)
            tar.add(real, arcname=arc)
        tar.add(HOST_STDLIB, arcname="usr/lib/python3.11", recursive=False)
        for path in stdlib:
            rel = path.relative_to(HOST_STDLIB)
            for i in range(1, len(rel.parts)):
                d = "usr/lib/python3.11/" + str(Path(*rel.parts[:i]))
                if d not in seen_dirs:
                    seen_dirs.add(d)
                    add_dir(d)
            tar.add(path, arcname=f"usr/lib/python3.11/{rel}", recursive=False)
        for src, dst in extra:
            parts = Path(dst.lstrip("/")).parts[:-1]
            for i in range(1, len(parts) + 1):
                d = str(Path(*parts[:i]))
                if d not in seen_dirs and d not in ("usr", "usr/lib", "usr/bin", "etc", "tmp"):
                    seen_dirs.add(d)
                    add_dir(d)
            tar.add(src, arcname=dst.lstrip("/"), filter=lambda ti: None if "__pycache__" in ti.name else ti)
    os.replace(tmp, out)
    for old in cache_dir().glob(f"rootfs-{name}-*.tar"):  # superseded builds, unused for an hour
        with contextlib.suppress(OSError):
            if old != out and time.time() - old.stat().st_mtime > 3600:
                old.unlink()
    return out


def _dist_key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def ferryman_image_files() -> list[tuple[Path, str]]:
    """What the Dockerfile installs, taken from this venv: ferryman (``src/ferryman``) and its
    runtime dependencies (the closure of pyproject's ``dependencies``) into the image Python's
    ``/usr/lib/python3/dist-packages``, and a ``ferryman`` console script in ``/usr/local/bin``."""
    dest = "usr/lib/python3/dist-packages"
    files: dict[str, Path] = {}
    seen: set[str] = set()
    todo = [str(r) for r in (metadata.distribution("ferryman").requires or []) if "extra ==" not in str(r)]
    while todo:
        requirement = todo.pop()
        name = re.split(r"[ ;<>=!~\[(]", requirement, maxsplit=1)[0]
        if _dist_key(name) in seen:
            continue
        seen.add(_dist_key(name))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a dependency for other platforms or Pythons (pywin32, exceptiongroup)
        todo.extend(str(r) for r in dist.requires or [] if "extra ==" not in str(r))
        for f in dist.files or []:
            top = f.parts[0]
            if top in ("..", "bin") or top.endswith(".pth"):
                continue
            files.setdefault(top, Path(str(dist.locate_file(top))))
    entry = cache_dir() / "ferryman-console-script"
    entry.write_text("#!/usr/bin/python3\nimport sys\nfrom ferryman.cli import main\nsys.exit(main())\n")
    entry.chmod(0o755)
    out = [(path, f"{dest}/{top}") for top, path in sorted(files.items()) if path.exists()]
    out.append((REPO_ROOT / "src" / "ferryman", f"{dest}/ferryman"))
    out.append((entry, "usr/local/bin/ferryman"))
    return out


# --------------------------------------------------------------------------------------------
# The engine


class Dockerd:
    """One ``dockerd`` with its own sockets and directories (see the module docstring)."""

    def __init__(self, root: Path, group: ProcessGroup, *, storage_driver: str = "",
                 tls: tuple[Path, Path, Path] | None = None) -> None:
        """``tls`` = (CA, server certificate, server key): the TCP listener then requires TLS
        with a client certificate signed by that CA (``--tlsverify``)."""
        self.root = root
        self.group = group
        self.socket = root / "docker.sock"
        self.data_root = root / "data"
        self.exec_root = root / "exec"
        self.pidfile = root / "dockerd.pid"
        self.log_path = root / "dockerd.log"
        self.tcp_port = free_port()
        self.storage_driver = storage_driver or os.environ.get("FERRYMAN_DOCKER_STORAGE", "overlay2")
        self.tls = tls
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    @property
    def tcp_endpoint(self) -> str:
        return f"tcp://{'localhost' if self.tls else '127.0.0.1'}:{self.tcp_port}"

    def start(self, deadline: float = 30.0) -> Dockerd:
        argv = ["dockerd", "--iptables=false", "--ip6tables=false", "--bridge=none",
                f"--storage-driver={self.storage_driver}", f"--data-root={self.data_root}",
                f"--exec-root={self.exec_root}", f"--pidfile={self.pidfile}",
                "-H", self.endpoint, "-H", f"tcp://127.0.0.1:{self.tcp_port}"]
        if self.tls is not None:
            ca, cert, key = self.tls
            argv += ["--tlsverify", f"--tlscacert={ca}", f"--tlscert={cert}", f"--tlskey={key}"]
        log = self.log_path.open("ab")
        try:
            self.proc = self.group.spawn(argv, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited ({self.proc.returncode}):\n{self.log_tail()}")
            return self.run("version", "--format", "{{.Server.APIVersion}}", check=False).returncode == 0

        try:
            poll_until(ready, deadline, interval=0.05, what="dockerd to answer")
        except (TimeoutError, RuntimeError):
            self.stop()
            raise
        return self

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """Stop the engine (SIGTERM, as a host shutdown or ``systemctl restart docker`` does)."""
        if self.proc is not None:
            self.group.stop(self.proc, timeout=20.0)
            self.proc = None
        self._kill_leftovers()

    def stop(self) -> None:
        """Remove every container, stop the engine and anything it left behind (processes, and
        mounts under its directory such as ``exec/netns/default``)."""
        if self.proc is not None and self.proc.poll() is None:
            ids = self.run("ps", "-aq", check=False).stdout.split()
            if ids:
                self.run("rm", "-f", *ids, check=False, timeout=60)
        self.kill()
        unmount_below(self.root)

    def _kill_leftovers(self) -> None:
        """containerd shims started for this engine (their command line names our exec root)."""
        marker = str(self.exec_root).encode()
        for pid_dir in Path("/proc").iterdir():
            if not pid_dir.name.isdigit():
                continue
            try:
                cmdline = (pid_dir / "cmdline").read_bytes()
            except OSError:
                continue
            if marker in cmdline:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(pid_dir.name), signal.SIGKILL)

    # -- the CLI ---------------------------------------------------------------------------------

    def run(self, *args: str, check: bool = True, timeout: float = 60.0,
            stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
        cli = docker_cli()
        assert cli is not None
        proc = subprocess.run([cli, "-H", self.endpoint, *args], capture_output=True, text=stdin is None,
                              input=stdin, timeout=timeout, check=False,
                              env={**os.environ, "DOCKER_CONFIG": str(self.root / "cli")})
        if stdin is not None:  # binary input: decode the answer ourselves
            proc = subprocess.CompletedProcess(proc.args, proc.returncode,
                                               bytes(proc.stdout).decode(errors="replace"),
                                               bytes(proc.stderr).decode(errors="replace"))
        if check and proc.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def import_image(self, tarball: Path, tag: str, changes: Sequence[str] = ()) -> str:
        """``docker import`` the root filesystem as ``tag`` (skipped when already there)."""
        if self.run("image", "inspect", tag, check=False).returncode == 0:
            return tag
        argv = ["import"]
        for change in changes:
            argv += ["-c", change]
        self.run(*argv, str(tarball), tag, timeout=300)
        return tag

    def inspect(self, ident: str) -> dict[str, Any]:
        data = json.loads(self.run("inspect", ident).stdout)
        assert isinstance(data, list) and data
        item: dict[str, Any] = data[0]
        return item


def unmount_below(root: Path) -> None:
    """Lazily unmount everything mounted at or below ``root`` (deepest first)."""
    prefix = str(root).rstrip("/") + "/"
    try:
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return
    for target in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)


def start_dockerd(root: Path, group: ProcessGroup, *, tls: tuple[Path, Path, Path] | None = None) -> Dockerd:
    """Start an engine in ``root``: overlay2 (no copy per container), else vfs."""
    engine = Dockerd(root, group, tls=tls)
    try:
        return engine.start()
    except (TimeoutError, RuntimeError):
        if engine.storage_driver == "vfs":
            raise
    shutil.rmtree(engine.data_root, ignore_errors=True)
    return Dockerd(root, group, storage_driver="vfs", tls=tls).start()


def wait_health(engine: Dockerd, ident: str, status: str = "healthy", deadline: float = 30.0) -> None:
    def probe() -> bool:
        state = engine.inspect(ident).get("State") or {}
        return bool((state.get("Health") or {}).get("Status") == status)

    poll_until(probe, deadline, interval=0.1, what=f"container {ident} to be {status}")


def short_tmpdir(prefix: str = "fm-dkr-") -> Path:
    """A short directory under /tmp (unix socket paths are limited to 107 bytes)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


