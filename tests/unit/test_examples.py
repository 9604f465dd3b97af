"""examples/hello.py is the backend of the demo and of many integration tests: prove it over real sockets."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator

import pytest
import yaml

from tests.support.procs import REPO_ROOT, ProcessGroup, http_request, start_hello


@pytest.fixture(scope="module")
def hello_port() -> Iterator[int]:
    with ProcessGroup() as group:
        _, port = start_hello("v1", group=group)
        yield port


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one Content-Length-delimited response from a raw socket (keeps the connection usable)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the response head"
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines)}
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside the body"
        rest += chunk
    assert len(rest) == length, "unexpected bytes after the response"
    return int(status_line.split(" ")[1]), headers, rest


def test_root_says_hello(hello_port: int) -> None:
    status, headers, body = http_request("127.0.0.1", hello_port, "/")
    assert status == 200
    assert body == b"Hello from v1\n"
    hdrs = {k.lower(): v for k, v in headers}
    assert hdrs["content-type"].startswith("text/plain")
    assert hdrs["x-served-by"] == "v1"


def test_healthz(hello_port: int) -> None:
    status, headers, body = http_request("127.0.0.1", hello_port, "/healthz")
    assert status == 200
    assert dict((k.lower(), v) for k, v in headers)["content-type"] == "application/json"
    assert json.loads(body) == {"status": "ok", "name": "v1"}


def test_status_endpoint(hello_port: int) -> None:
    status, _, body = http_request("127.0.0.1", hello_port, "/status/503")
    assert (status, body) == (503, b"503\n")


def test_echo_chunked_body_and_keep_alive(hello_port: int) -> None:
    with socket.create_connection(("127.0.0.1", hello_port), timeout=5) as sock:
        # 1) chunked body with an extension and a trailer, sent in awkward pieces
        sock.sendall(
            b"POST /echo/x?v=beta&a=1 HTTP/1.1\r\nHost: localhost\r\nX-Release-Stage: canary\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhel"
        )
        sock.sendall(b"lo\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
        status, headers, body = read_response(sock)
        assert status == 200
        assert "connection" not in headers  # stays open
        echo = json.loads(body)
        assert echo["method"] == "POST"
        assert echo["path"] == "/echo/x"
        assert echo["query"] == "v=beta&a=1"
        assert echo["chunked"] is True
        assert echo["body_length"] == len(b"hello world")
        assert ["X-Release-Stage", "canary"] in echo["headers"]
        assert echo["trailers"] == [["X-Trailer", "t"]]
        first_client = echo["client"]

        # 2) second request on the same connection, with Content-Length, then ask to close
        sock.sendall(
            b"PUT /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
        )
        status, headers, body = read_response(sock)
        assert status == 200
        assert headers["connection"] == "close"
        echo = json.loads(body)
        assert echo["client"] == first_client  # same TCP connection
        assert (echo["method"], echo["body_length"], echo["chunked"]) == ("PUT", 3, False)
        assert sock.recv(1) == b""  # server closed after Connection: close


def test_head_and_bad_request(hello_port: int) -> None:
    with socket.create_connection(("127.0.0.1", hello_port), timeout=5) as sock:
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = b""
        while buf.count(b"Hello from v1\n") < 1:
            chunk = sock.recv(65536)
            assert chunk
            buf += chunk
        # HEAD has the length of the GET body but no body; the GET follows directly
        assert buf.count(b"HTTP/1.1 200 OK") == 2
        assert buf.endswith(b"\r\n\r\nHello from v1\n")
    with socket.create_connection(("127.0.0.1", hello_port), timeout=5) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 400 ")


def test_example_configs_describe_the_demo() -> None:
    static = yaml.safe_load((REPO_ROOT / "examples" / "traefik.yml").read_text())
    assert static["entryPoints"]["web"]["address"] == ":8000"
    assert static["providers"]["file"] == {"directory": "examples/dynamic", "watch": True}
    assert static["log"]["level"] == "INFO"

    # ferryman.yml is traefik.yml plus the demo's localCA resolver (a ferryman key)
    ferryman = yaml.safe_load((REPO_ROOT / "examples" / "ferryman.yml").read_text())
    assert ferryman.pop("certificatesResolvers") == {
        "local": {"localCA": {"storage": ".ferryman-demo-ca", "certificatesDuration": "12h"}}}
    assert ferryman == static

    http = yaml.safe_load((REPO_ROOT / "examples" / "dynamic" / "routes.yml").read_text())["http"]
    routers, services = http["routers"], http["services"]
    assert routers["hello"] == {"entryPoints": ["web"], "rule": "Host(`localhost`)", "service": "hello-v1"}
    canary = routers["hello-canary"]
    assert (
        canary["rule"] == "Host(`localhost`) && (Header(`X-Release-Stage`, `canary`) || Query(`v`, `beta`))"
    )
    assert canary["service"] == "hello-v2"
    assert routers["hello-split"]["service"] == "hello-split"
    assert routers["hello-https"] == {"entryPoints": ["websecure"], "rule": "Host(`localhost`)",
                                      "service": "hello-v1", "tls": {"certResolver": "local"}}
    assert services["hello-v1"]["loadBalancer"]["servers"] == [{"url": "http://127.0.0.1:8081"}]
    assert services["hello-v2"]["loadBalancer"]["servers"] == [{"url": "http://127.0.0.1:8082"}]
    weights = {s["name"]: s["weight"] for s in services["hello-split"]["weighted"]["services"]}
    assert weights == {"hello-v1": 90, "hello-v2": 10}


@pytest.mark.parametrize("script", ["examples/demo.sh", "scripts/setup.sh", ".ci/run"])
def test_shell_scripts_parse(script: str) -> None:
    path = REPO_ROOT / script
    assert path.stat().st_mode & 0o111, f"{script} is not executable"
    subprocess.run(["bash", "-n", str(path)], check=True)
