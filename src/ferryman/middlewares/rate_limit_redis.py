"""``rateLimit`` with ``redis``: one token bucket per source shared by every instance using the same
redis, as Traefik's ``pkg/middlewares/ratelimiter/redis_limiter.go`` (v3.4+).

The bucket lives in a redis hash ``rate:<middleware>:<source>`` (fields ``last`` and ``tokens``) and
is updated atomically by a Lua script (:data:`TOKEN_BUCKET`, ferryman's own, same arithmetic as
Traefik's): with ``rate`` in tokens per microsecond, ``t`` the caller's wall clock in microseconds,
``tokens = min(tokens + rate * (t - min(last, t)), burst) - 1`` (a new bucket starts full); when
``tokens < 0`` the request waits ``-tokens / rate`` microseconds, unless that exceeds ``maxDelay``,
in which case the token is given back. The hash expires after the middleware's TTL. As in Traefik,
the wait is applied by the caller: at most ``maxDelay`` then forwarded, otherwise ``429`` with
``Retry-After``/``X-Retry-In`` (the in-memory limiter's answer).

When redis cannot be reached or fails, Traefik answers ``500`` with ``Could not insert/update
bucket`` (``http.Error``); so does ferryman, logging the error (at most one line per
:data:`ERROR_LOG_EVERY` seconds per middleware, with the number of errors in between).

The request is never blocked on the loop: the script runs in a task (the redis client is
``redis.asyncio``) and the request continues from it (ADR 0001 allows a task where I/O is needed).
The client -- its connection pool -- is long-lived state (:mod:`ferryman.state`) shared by the
middlewares and routers with the same redis settings, so reloads keep connections; options map to
redis-py: ``endpoints`` (one: a plain client; several: a cluster client), ``username``,
``password``, ``db``, ``tls`` (``ca``/``cert``/``key`` paths or PEM, ``insecureSkipVerify``),
``dialTimeout`` (connect timeout), ``readTimeout``/``writeTimeout`` (redis-py has one socket
timeout: the larger of the two; 0 or less means none), ``poolSize``/``maxActiveConns`` (the most
connections at once: ``maxActiveConns`` if set, else ``poolSize``, else 10 per CPU as go-redis;
callers wait for a free one up to ``readTimeout + 1s`` as go-redis's pool timeout), ``minIdleConns``
(that many connections are opened when the client is created).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import ssl
import tempfile
import time
from collections.abc import Callable
from typing import Any, Final, Protocol

from ferryman.dynamic.models import ClientTLS, RateLimitRedis
from ferryman.errors import ConfigError
from ferryman.http.exchange import Exchange, Handler
from ferryman.middlewares.source import SourceExtractor
from ferryman.state import StateRegistry
from ferryman.tasks import spawn
from ferryman.types import go_duration_ns as go_duration

__all__ = ["ERROR_LOG_EVERY", "TOKEN_BUCKET", "RedisBuckets", "RedisRateLimitHandler", "redis_buckets"]

log = logging.getLogger("ferryman.middlewares.ratelimit")

#: KEYS[1] bucket; ARGV: rate (tokens/us), burst, ttl (s), now (us), max delay (us).
#: Returns {taken ("true"/"false"), wait in us, tokens left}. Traefik's script always answers "true"
#: and lets the caller compare the wait with maxDelay again after a float -> Duration truncation, so
#: a wait a hair above maxDelay gives the token back *and* forwards the request; the decision taken
#: in the script keeps both sides consistent.
TOKEN_BUCKET: Final = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local max_delay = tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'last', 'tokens')
local last = tonumber(state[1]) or 0
local tokens = tonumber(state[2]) or 0
if state[1] == false or state[2] == false then
  last = 0
  tokens = 0
end
if now < last then
  last = now
end
tokens = math.min(tokens + rate * (now - last), burst) - 1
local wait = 0
local taken = true
if tokens < 0 then
  wait = -tokens / rate
  if wait > max_delay then
    tokens = math.min(tokens + 1, burst)
    taken = false
  end
end
redis.call('HSET', KEYS[1], 'last', now, 'tokens', tokens)
redis.call('EXPIRE', KEYS[1], ttl)
return {tostring(taken), tostring(wait), tostring(tokens)}
"""

ERROR_LOG_EVERY: Final = 5.0
_BODY: Final = b"Too Many Requests"
_ERROR_BODY: Final = b"Could not insert/update bucket\n"
_ERROR_HEADERS: Final = ((b"X-Content-Type-Options", b"nosniff"),)


class Scheduler(Protocol):
    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Any: ...


def _wall_us() -> int:
    return time.time_ns() // 1000


def _endpoint(text: str, path: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ConfigError(f"invalid redis endpoint {text!r}", path=path, fix="write host:port, e.g. localhost:6379")
    return host.strip("[]"), int(port)


def _pem_file(value: str, suffix: str) -> str:
    """A file path for ``value`` (a path already, or PEM content written to a private temp file)."""
    if "-----BEGIN" not in value:
        return value
    fd, name = tempfile.mkstemp(prefix="ferryman-redis-", suffix=suffix)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return name


def _ssl_options(tls: ClientTLS, path: str) -> dict[str, Any]:
    """redis-py's ``ssl_*`` connection options for Traefik's ``ClientTLS`` (checked here, at build
    time, by loading them once)."""
    options: dict[str, Any] = {}
    if tls.ca:
        options["ssl_ca_data" if "-----BEGIN" in tls.ca else "ssl_ca_certs"] = tls.ca
    if tls.cert or tls.key:
        options["ssl_certfile"] = _pem_file(tls.cert, ".crt")
        options["ssl_keyfile"] = _pem_file(tls.key, ".key")
    if tls.insecure_skip_verify:
        options["ssl_cert_reqs"] = "none"
        options["ssl_check_hostname"] = False
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=options.get("ssl_ca_certs"),
                                         cadata=options.get("ssl_ca_data"))
        if "ssl_certfile" in options:
            ctx.load_cert_chain(options["ssl_certfile"], options["ssl_keyfile"])
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"creating TLS config: {exc}", path=path,
                          fix="check the ca/cert/key files (paths or PEM contents)") from None
    return options


class RedisBuckets:
    """The redis client and the registered script, shared across reloads (see :mod:`ferryman.state`)."""

    def __init__(self, config: RateLimitRedis, path: str) -> None:
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.asyncio.connection import Connection, SSLConnection

        endpoints = [_endpoint(e, f"{path}.endpoints") for e in config.endpoints] or [("localhost", 6379)]
        timeouts = [t for t in (config.read_timeout, config.write_timeout)]
        socket_timeout = None if min(timeouts) <= 0 else max(timeouts)
        connect_timeout = config.dial_timeout if config.dial_timeout > 0 else 5.0
        limit = config.max_active_conns or config.pool_size or 10 * (os.cpu_count() or 1)
        common: dict[str, Any] = {
            "username": config.username or None,
            "password": config.password or None,
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
        }
        self.min_idle = max(config.min_idle_conns, 0)
        self.client: Any
        if len(endpoints) > 1:
            from redis.asyncio.cluster import ClusterNode, RedisCluster

            extra: dict[str, Any] = {}
            if config.tls is not None:
                extra = {"ssl": True, **_ssl_options(config.tls, f"{path}.tls")}
            self.client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in endpoints],
                                       max_connections=limit, **common, **extra)
        else:
            host, port = endpoints[0]
            kwargs: dict[str, Any] = {"host": host, "port": port, "db": config.db, **common}
            connection_class: type[Connection] = Connection
            if config.tls is not None:
                connection_class = SSLConnection
                kwargs.update(_ssl_options(config.tls, f"{path}.tls"))
            pool = BlockingConnectionPool(connection_class=connection_class, max_connections=limit,
                                          timeout=(socket_timeout or 3.0) + 1.0, **kwargs)
            self.client = Redis(connection_pool=pool)
        self.script = self.client.register_script(TOKEN_BUCKET)
        self._warmed = self.min_idle == 0

    async def take(self, key: str, rate_per_us: float, burst: int, ttl: int, max_delay_us: int,
                   now_us: int) -> tuple[bool, float]:
        """Run the bucket script at wall-clock time ``now_us``: whether the token was taken, and the
        wait in microseconds."""
        if not self._warmed:
            self._warmed = True
            await asyncio.gather(*(self.client.ping() for _ in range(self.min_idle)), return_exceptions=True)
        reply = await self.script(keys=[key], args=[repr(rate_per_us), burst, ttl, now_us, max_delay_us])
        return reply[0] == b"true", float(reply[1])

    def close(self) -> None:
        """Called when no configuration uses these settings any more."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        spawn(self.client.aclose(), name="redis rateLimit close")


def redis_buckets(config: RateLimitRedis, path: str, states: StateRegistry | None) -> RedisBuckets:
    if states is None:
        return RedisBuckets(config, path)
    return states.get(("rateLimit.redis", config), lambda: RedisBuckets(config, path))


class RedisRateLimitHandler:
    """The built middleware (a :class:`~ferryman.http.exchange.Handler`)."""

    __slots__ = ("_burst", "_errors", "_extract", "_last_log", "_max_delay_ns", "_prefix", "_rate_us", "_ttl",
                 "buckets", "clock", "name", "next", "wall_us")

    def __init__(self, name: str, next_handler: Handler, rate: float, burst: int, max_delay_ns: int, ttl: int,
                 extract: SourceExtractor, buckets: RedisBuckets) -> None:
        self.name = name
        self.next = next_handler
        self._rate_us = rate / 1e6
        self._burst = burst
        self._max_delay_ns = max_delay_ns
        self._ttl = ttl
        self._extract = extract
        self._prefix = f"rate:{name}:"
        self.buckets = buckets
        self._errors = 0
        self._last_log = -math.inf
        #: wall clock in microseconds (shared by all instances); ``call_later`` provider (``None``:
        #: the running loop). Both replaceable by tests that simulate time.
        self.wall_us: Callable[[], int] = _wall_us
        self.clock: Scheduler | None = None

    @property
    def max_delay(self) -> float:
        return self._max_delay_ns / 1e9

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self._rate_us * 1e6

    def handle(self, ex: Exchange) -> None:
        spawn(self.check(ex), name="rateLimit redis")

    async def check(self, ex: Exchange) -> None:
        """Ask redis for this request's token, then answer or forward (or wait, then forward)."""
        key = self._prefix + self._extract(ex)
        try:
            taken, wait_us = await self.buckets.take(key, self._rate_us, self._burst, self._ttl,
                                              self._max_delay_ns // 1000, self.wall_us())
        except Exception as exc:  # redis down, timeouts, script errors: Traefik answers 500
            self._log_error(exc)
            ex.respond(500, _ERROR_HEADERS, _ERROR_BODY)
            return
        if ex.done:
            return  # the client went away meanwhile
        delay_ns = int(wait_us * 1000)
        if not taken:
            ex.respond(429, ((b"Retry-After", b"%d" % math.ceil(delay_ns / 1e9)),
                             (b"X-Retry-In", go_duration(delay_ns).encode())), _BODY, content_type=None)
        elif delay_ns > 0:
            (self.clock or asyncio.get_running_loop()).call_later(delay_ns / 1e9, self._resume, ex)
        else:
            self.next.handle(ex)

    def _resume(self, ex: Exchange) -> None:
        if not ex.done:
            self.next.handle(ex)

    def _log_error(self, exc: BaseException) -> None:
        self._errors += 1
        now = time.monotonic()
        if now - self._last_log < ERROR_LOG_EVERY:
            return
        self._last_log = now
        count, self._errors = self._errors, 0
        log.error("rateLimit %s: could not insert/update bucket in redis (%d request(s) answered 500 since the "
                  "last report): %s", self.name, count, exc or type(exc).__name__,
                  extra={"fields": {"middlewareName": self.name, "middlewareType": "RateLimiter"}})
