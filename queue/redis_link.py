"""The connection both Redis stores share: a single Redis or a Cluster, tight timeouts, a breaker.

A router sits in the path of live calls, so a slow or dead Redis must cost a caller a few
hundred milliseconds at most, never redis-py's default seconds of retries. Every command
runs under `timeout_s`; a failure opens the breaker for `cooldown_s`, during which requests
fail at once (no socket touched) so the IVR can take its fallback route; the first request
after the cool-down tries again, and success closes the breaker. Nothing needs a restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import DataError, RedisError, ResponseError

from tierline.queue.errors import Unavailable

log = logging.getLogger("tierline.redis")

T = TypeVar("T")
MAX_CONNECTIONS = 64
TRIP_AFTER = 3  # consecutive failures: one slow command under a burst must not stop every call
Client = Redis | RedisCluster
_OUR_BUGS: tuple[type[Exception], ...] = (ResponseError, DataError)


def is_redis_url(url: str) -> bool:
    return url.split("://", 1)[0] in ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")


def connect(url: str, timeout_s: float) -> Client:
    """A client for `redis://host:port/db` (one server) or `redis+cluster://host:port` (a seed node)."""
    options: dict[str, Any] = {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "retry": Retry(NoBackoff(), 0),
        "max_connections": MAX_CONNECTIONS,
    }
    scheme, _, rest = url.partition("://")
    if scheme.endswith("+cluster"):
        parts = urlsplit(f"{scheme.removesuffix('+cluster')}://{rest}")
        return RedisCluster(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            password=parts.password,
            ssl=scheme.startswith("rediss"),
            require_full_coverage=True,
            **options,
        )
    # A bounded pool: a burst of requests queues for a connection (within the deadline)
    # instead of opening hundreds of sockets at once.
    pool = BlockingConnectionPool.from_url(url, timeout=timeout_s, **options)
    return Redis(connection_pool=pool)


class RedisLink:
    """Runs store commands under a deadline and a circuit breaker; maps failures to `Unavailable`."""

    def __init__(self, client: Client, timeout_s: float = 0.25, cooldown_s: float = 1.0) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self.cooldown_s = cooldown_s
        self.cluster = isinstance(client, RedisCluster)
        self._open_until = 0.0  # monotonic; the breaker is open before this instant
        self._failures = 0

    @property
    def healthy(self) -> bool:
        return self._open_until <= time.monotonic()

    async def run(self, step: Callable[[], Awaitable[T]], deadline_s: float | None = None) -> T:
        """Await `step()` unless the breaker is open; any Redis failure or timeout → Unavailable."""
        if not self.healthy:
            raise Unavailable("the Redis store is unreachable; retrying shortly")
        try:
            async with asyncio.timeout(deadline_s or self.timeout_s * 2):
                result = await step()
        except (RedisError, OSError, TimeoutError) as exc:
            if type(exc) in _OUR_BUGS:
                raise  # a script or argument error is ours to fix, not an outage
            self._trip(exc)
            raise Unavailable(f"the Redis store did not answer: {type(exc).__name__}") from None
        if self._failures:
            log.warning("Redis is back after %d failed request(s)", self._failures)
            self._failures = 0
        return result

    async def ping(self) -> bool:
        try:
            return bool(await self.run(lambda: self.client.ping(), self.timeout_s * 2))
        except Unavailable:
            return False

    async def close(self) -> None:
        await self.client.aclose()

    def _trip(self, exc: BaseException) -> None:
        self._failures += 1
        if self._failures == TRIP_AFTER:
            log.error("Redis failed (%s: %s); failing fast for %.1f s", type(exc).__name__, exc, self.cooldown_s)
        if self._failures >= TRIP_AFTER:
            self._open_until = time.monotonic() + self.cooldown_s
