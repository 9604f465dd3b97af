"""A small asyncio client for the Docker Engine API (the part the Docker provider needs).

HTTP/1.1 over a unix socket or TCP (optionally TLS), one connection per request
(``Connection: close``): ``GET`` JSON answers (``/version``, ``/containers/json``,
``/containers/{id}/json``) and the ``/events`` stream (chunked JSON objects). Written on asyncio
streams rather than the ``docker`` SDK so nothing blocks the event loop, a stream is cancelled
cleanly with its task, and an engine that goes away surfaces as one :class:`EngineError`
(see ADR 0008).
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

__all__ = ["API_VERSION", "Endpoint", "EngineClient", "EngineError", "JSONStream", "NotFound", "parse_endpoint",
           "tls_context"]

#: The newest Engine API version this client was written against; an older engine's own
#: version is used when it is lower (Docker 20.10 speaks 1.41).
API_VERSION = (1, 45)
MAX_HEAD = 64 * 1024
MAX_BODY = 256 * 1024 * 1024


class EngineError(Exception):
    """The engine could not be reached, or answered something this client cannot use."""


class NotFound(EngineError):
    """404 from the engine (a container removed between list and inspect)."""


@dataclass(frozen=True)
class Endpoint:
    """Where the engine listens: ``unix`` (``path``) or ``tcp`` (``host``, ``port``, ``tls``)."""

    text: str
    kind: str
    path: str = ""
    host: str = ""
    port: int = 0
    tls: ssl.SSLContext | None = None


def tls_context(*, ca: str = "", cert: str = "", key: str = "", insecure_skip_verify: bool = False,
                ) -> ssl.SSLContext:
    """Traefik's ``ClientTLS`` as an SSL context: ``ca`` (else the system roots), a client
    certificate (``cert`` + ``key``), ``insecureSkipVerify``. Raises ``ValueError`` naming the
    file that cannot be used."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    try:
        if ca:
            ctx.load_verify_locations(cafile=ca)
        if cert or key:
            if not (cert and key):
                raise ValueError("tls.cert and tls.key must be set together")
            ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load TLS files ({ca or cert or key}): {exc}") from None
    if insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def parse_endpoint(text: str, tls: ssl.SSLContext | None = None) -> Endpoint:
    """``unix:///var/run/docker.sock``, ``tcp://host:2375``, ``http://``/``https://host:port``.

    A ``tcp://`` endpoint uses TLS when ``tls`` is given (``https://`` always does)."""
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "unix":
        path = parts.path or parts.netloc
        if not path:
            raise ValueError(f"endpoint {text!r}: no socket path (unix:///var/run/docker.sock)")
        return Endpoint(text, "unix", path=path)
    if scheme in ("tcp", "http", "https"):
        if not parts.hostname:
            raise ValueError(f"endpoint {text!r}: no host (tcp://127.0.0.1:2375)")
        if scheme == "https" and tls is None:
            tls = ssl.create_default_context()
        if scheme == "http":
            tls = None
        try:
            port = parts.port or (2376 if tls is not None else 2375)
        except ValueError:
            raise ValueError(f"endpoint {text!r}: bad port") from None
        return Endpoint(text, "tcp", host=parts.hostname, port=port, tls=tls)
    raise ValueError(f"endpoint {text!r}: unsupported scheme (use unix:// or tcp://)")


class _Response:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, status: int,
                 headers: Mapping[str, str]) -> None:
        self.reader = reader
        self.writer = writer
        self.status = status
        self.headers = headers

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (chunked, Content-Length or until EOF)."""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            while True:
                line = await self.reader.readuntil(b"\r\n")
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise EngineError(f"bad chunk size {line[:40]!r} from the engine") from None
                if size == 0:
                    return
                data = await self.reader.readexactly(size)
                await self.reader.readexactly(2)
                yield data
        length = self.headers.get("content-length")
        if length is not None:
            n = int(length)
            if n > MAX_BODY:
                raise EngineError(f"answer too large ({n} bytes)")
            if n:
                yield await self.reader.readexactly(n)
            return
        while True:
            data = await self.reader.read(65536)
            if not data:
                return
            yield data

    async def body(self) -> bytes:
        out = bytearray()
        async for chunk in self.chunks():
            out += chunk
            if len(out) > MAX_BODY:
                raise EngineError(f"answer larger than {MAX_BODY} bytes")
        return bytes(out)

    def close(self) -> None:
        self.writer.close()


class EngineClient:
    """Requests to one engine. ``timeout`` (seconds, 0 = none) bounds each plain request, and the
    connection plus the answer's head of a stream (Traefik's ``httpClientTimeout``)."""

    def __init__(self, endpoint: Endpoint, *, timeout: float = 0.0, username: str = "",
                 password: str = "") -> None:
        self.endpoint = endpoint
        self.timeout = timeout if timeout > 0 else None
        self.auth = ""
        if username or password:
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            self.auth = f"Authorization: Basic {token}\r\n"
        self.prefix = ""

    async def negotiate(self) -> str:
        """Ask the engine its API version and use ``min(engine, API_VERSION)`` from now on."""
        info = await self.get_json("/version")
        raw = str(info.get("ApiVersion", "")) if isinstance(info, Mapping) else ""
        try:
            major, minor = (int(x) for x in raw.split(".", 1))
            version = min((major, minor), API_VERSION)
        except ValueError:
            version = (1, 41)
        self.prefix = f"/v{version[0]}.{version[1]}"
        return raw

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        ep = self.endpoint
        try:
            if ep.kind == "unix":
                return await asyncio.open_unix_connection(ep.path, limit=MAX_HEAD)
            return await asyncio.open_connection(ep.host, ep.port, ssl=ep.tls, limit=MAX_HEAD,
                                                 server_hostname=ep.host if ep.tls is not None else None)
        except (OSError, ssl.SSLError) as exc:
            raise EngineError(f"cannot connect to the Docker engine at {ep.text}: "
                              f"{getattr(exc, 'strerror', None) or exc}") from None

    async def _open(self, path: str, query: Mapping[str, Any] | None) -> _Response:
        target = quote(self.prefix + path, safe="/:@")
        if query:
            target += "?" + urlencode({k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
                                       for k, v in query.items()})
        reader, writer = await self._connect()
        try:
            host = "docker" if self.endpoint.kind == "unix" else f"{self.endpoint.host}:{self.endpoint.port}"
            writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ferryman\r\n"
                         f"Accept: application/json\r\n{self.auth}Connection: close\r\n\r\n".encode())
            await writer.drain()
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                raise EngineError("answer head too large") from None
            lines = head.decode("latin-1").split("\r\n")
            try:
                status = int(lines[0].split(" ", 2)[1])
            except (IndexError, ValueError):
                raise EngineError(f"not an HTTP answer from {self.endpoint.text}: {lines[0][:60]!r}") from None
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            return _Response(reader, writer, status, headers)
        except BaseException:
            writer.close()
            raise

    async def _checked(self, path: str, query: Mapping[str, Any] | None) -> _Response:
        try:
            resp = await self._open(path, query)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError) as exc:
            raise EngineError(f"the Docker engine at {self.endpoint.text} closed the connection: "
                              f"{exc}") from None
        if resp.status >= 300:
            try:
                detail = (await resp.body()).decode("utf-8", "replace").strip()
                message = json.loads(detail).get("message", detail)
            except (ValueError, AttributeError, EngineError, asyncio.IncompleteReadError, ConnectionError):
                message = ""
            resp.close()
            cls = NotFound if resp.status == 404 else EngineError
            hint = " (check providers.docker.username/password)" if resp.status in (401, 403) else ""
            raise cls(f"GET {path}: HTTP {resp.status} from the Docker engine: {message}{hint}")
        return resp

    async def get_json(self, path: str, query: Mapping[str, Any] | None = None) -> Any:
        async def go() -> Any:
            resp = await self._checked(path, query)
            try:
                data = await resp.body()
            except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError) as exc:
                raise EngineError(f"GET {path}: answer cut short: {exc}") from None
            finally:
                resp.close()
            try:
                return json.loads(data)
            except ValueError:
                raise EngineError(f"GET {path}: the engine's answer is not JSON") from None

        try:
            async with asyncio.timeout(self.timeout):
                return await go()
        except TimeoutError:
            raise EngineError(f"GET {path}: no answer from the Docker engine within "
                              f"{self.timeout}s (providers.docker.httpClientTimeout)") from None

    async def open_stream(self, path: str, query: Mapping[str, Any] | None = None) -> JSONStream:
        """Connect and read the answer's head now; return an iterator over the JSON values that
        follow. The iterator raises :class:`EngineError` when the engine closes the stream."""
        try:
            async with asyncio.timeout(self.timeout):
                resp = await self._checked(path, query)
        except TimeoutError:
            raise EngineError(f"GET {path}: no answer from the Docker engine within "
                              f"{self.timeout}s (providers.docker.httpClientTimeout)") from None
        return JSONStream(path, resp)


class JSONStream:
    """JSON values as the engine streams them; ``aclose()`` drops the connection."""

    def __init__(self, path: str, resp: _Response) -> None:
        self.path = path
        self.resp = resp
        self._gen = self._values()

    def __aiter__(self) -> AsyncGenerator[Any, None]:
        return self._gen

    async def aclose(self) -> None:
        self.resp.close()
        await self._gen.aclose()

    async def _values(self) -> AsyncGenerator[Any, None]:
        path, resp = self.path, self.resp
        decoder = json.JSONDecoder()
        buf = ""
        try:
            async for chunk in resp.chunks():
                buf += chunk.decode("utf-8", "replace")
                while True:
                    buf = buf.lstrip()
                    if not buf:
                        break
                    try:
                        value, end = decoder.raw_decode(buf)
                    except ValueError:
                        if len(buf) > MAX_HEAD:
                            raise EngineError(f"GET {path}: unreadable stream from the engine") from None
                        break  # incomplete: wait for more
                    buf = buf[end:]
                    yield value
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError) as exc:
            raise EngineError(f"GET {path}: stream cut: {exc}") from None
        finally:
            resp.close()
        raise EngineError(f"GET {path}: the Docker engine closed the stream")
