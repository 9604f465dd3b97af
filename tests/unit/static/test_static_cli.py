"""The ``ferryman`` command line: version, help, exit codes, healthcheck, run."""

from __future__ import annotations

import http.server
import logging
import socket
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferryman import __version__
from ferryman.cli import healthcheck_url, main
from ferryman.static import LoadedStatic, load_static


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No TRAEFIK_* from the outside, a fake HOME, and the root logger restored afterwards."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("TRAEFIK_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("ferryman.static.loader.ETC_DIR", tmp_path / "etc")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"ferryman {__version__}"
    assert f"Python:      {sys.version_info.major}.{sys.version_info.minor}" in out
    assert "v3" in out


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["help"], ["healthcheck", "--help"]])
def test_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ferryman {__version__}") and "healthcheck" in out and "--configFile" in out


def test_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve"]) == 2
    assert "unknown command 'serve'" in capsys.readouterr().err


def test_static_errors_exit_2_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.yml").write_text("entryPoints:\n  web:\n    adress: ':80'\nlog: {level: loud}\n")
    assert main(["--configFile=bad.yml"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f'{tmp_path / "bad.yml"}: entryPoints.web.adress: unknown key (fix: did you mean "address"?)' in captured.err
    assert "log.level" in captured.err
    assert main(["healthcheck", "--entryPoints.web.adress=:80"]) == 2
    assert "entryPoints.web.adress" in capsys.readouterr().err


def test_run_hands_the_loaded_config_to_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[LoadedStatic] = []

    def run(loaded: LoadedStatic) -> int:
        seen.append(loaded)
        return 7

    app = types.ModuleType("ferryman.app")
    app.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ferryman.app", app)
    assert main(["--entryPoints.web.address=:8000", "--log.level=DEBUG"]) == 7
    assert len(seen) == 1
    assert seen[0].source == "command line"
    assert seen[0].config.entry_points["web"].listen.port == 8000
    assert logging.getLogger().level == logging.DEBUG  # logging was set up from log.level


def test_run_returns_0_when_the_app_returns_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    app = types.ModuleType("ferryman.app")
    app.run = lambda loaded: None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ferryman.app", app)
    assert main(["--ping"]) == 0


# -- healthcheck -------------------------------------------------------------------------------------


class _PingHandler(http.server.BaseHTTPRequestHandler):
    status = 200
    paths: list[str] = []

    def do_GET(self) -> None:
        self.paths.append(self.path)
        self.send_response(self.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(status: int) -> tuple[http.server.ThreadingHTTPServer, type[_PingHandler]]:
    handler = type("Handler", (_PingHandler,), {"status": status, "paths": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


@pytest.fixture
def ping_server() -> Iterator[tuple[int, type[_PingHandler]]]:
    server, handler = _serve(200)
    yield server.server_address[1], handler
    server.shutdown()
    server.server_close()


def test_healthcheck_ok(ping_server: tuple[int, type[_PingHandler]], capsys: pytest.CaptureFixture[str]) -> None:
    port, handler = ping_server
    assert main(["healthcheck", "--ping", f"--entryPoints.traefik.address=:{port}"]) == 0
    assert handler.paths == ["/ping"]
    assert capsys.readouterr().out == f"OK: http://127.0.0.1:{port}/ping\n"


def test_healthcheck_uses_the_ping_entry_point_from_a_file(
        ping_server: tuple[int, type[_PingHandler]], tmp_path: Path) -> None:
    port, handler = ping_server
    (tmp_path / "traefik.yml").write_text(
        f"entryPoints:\n  web: {{address: ':80'}}\n  health: {{address: '127.0.0.1:{port}'}}\n"
        "ping: {entryPoint: health}\n")
    assert main(["healthcheck", "--configFile=traefik.yml"]) == 0
    assert handler.paths == ["/ping"]


def test_healthcheck_bad_status(capsys: pytest.CaptureFixture[str]) -> None:
    server, _ = _serve(503)
    try:
        port = server.server_address[1]
        assert main(["healthcheck", "--ping", f"--entryPoints.traefik.address=127.0.0.1:{port}"]) == 1
    finally:
        server.shutdown()
        server.server_close()
    assert "Bad healthcheck status: 503" in capsys.readouterr().err


def test_healthcheck_closed_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["healthcheck", "--ping", f"--entryPoints.traefik.address=:{port}"]) == 1
    assert f"Error calling healthcheck: http://127.0.0.1:{port}/ping" in capsys.readouterr().err


def test_healthcheck_without_ping(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["healthcheck", "--entryPoints.web.address=:80"]) == 1
    assert "ping is not enabled" in capsys.readouterr().err


def test_healthcheck_missing_entry_point(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["healthcheck", "--ping.entryPoint=health", "--entryPoints.web.address=:80"]) == 1
    assert "entry point 'health' does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(("address", "url"), [
    (":8082", "http://127.0.0.1:8082/ping"),
    ("0.0.0.0:8082", "http://127.0.0.1:8082/ping"),
    ("[::]:8082", "http://[::1]:8082/ping"),
    ("10.1.2.3:8082", "http://10.1.2.3:8082/ping"),
])
def test_healthcheck_url(address: str, url: str) -> None:
    loaded = load_static(["--ping", f"--entryPoints.traefik.address={address}"], {}, search=[])
    assert healthcheck_url(loaded) == url


def test_healthcheck_default_entry_point_is_implicit() -> None:
    loaded = load_static(["--ping"], {}, search=[])
    assert healthcheck_url(loaded) == "http://127.0.0.1:8080/ping"
