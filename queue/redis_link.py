"""The connection both Redis stores share (one server, a Cluster, a Sentinel's primary), one deadline, a breaker.

A router sits in the path of live calls, so a slow or dead Redis must cost a caller a few
hundred milliseconds at most, never redis-py's default seconds of retries.

- **One deadline per request.** `request_deadline(budget)` (set by the call path's middleware,
  router/admission.py) bounds every Redis call the request makes together: a route that
  re-reads the tier meta, looks the caller up and runs the engine script shares one budget.
  A call with no request around it (the sweeper, admin pages, the CLI) gets its own
  `2 × timeout_s`. The same deadline goes into the engine script (`script_deadline`), which
  refuses to change anything once Redis's own clock is past it: a request answered 503 never
  takes effect later.
- **The deadline measures Redis, not this process.** When it falls due, a reply that has
  already reached the socket is still read (the loop was late, Redis was not). While this
  process's event loop is itself behind (`loop_lag`), its backlog stretches the deadline (a
  command still gets `timeout_s` from when it was sent, up to `BACKLOG_BUDGETS` budgets), and
  what misses even that fails as `Overloaded`, which does not count against Redis. Only a
  Redis that held a command for its whole `timeout_s`, or missed a deadline while the loop
  kept up, is a Redis failure. An overloaded process is meant to shed load before that, at
  admission (router/admission.py).
- **A breaker.** `TRIP_AFTER` Redis failures in a row open it for `cooldown_s`, during which
  requests fail at once (no socket touched) so the IVR can take its fallback route; the first
  request after the cool-down tries again, and success closes it. Nothing needs a restart.
- **No dead pooled connections.** A pooled connection the server closed (a Redis restart)
  is reconnected when it is checked out, before anything is written on it, so the first
  requests after a restart succeed; nothing is ever retried after it may have reached Redis.
- **Sentinel.** With `redis+sentinel://` every new connection asks the Sentinels for the
  primary, and the link asks them again every `PRIMARY_POLL_S`: once they name another one,
  idle connections close at once and busy ones as they come back, so commands stop going to
  a demoted primary (which may keep accepting writes until the Sentinels reconfigure it).
  A new primary that lacks the engine's library is given it (`fcall`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import DataError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tierline.queue.errors import Overloaded, Unavailable
from tierline.queue.loop_lag import LoopLag, loop_lag
from tierline.queue.redis_urls import SENTINEL_SCHEMES, sentinel_target
from tierline.queue.redis_urls import is_redis_url as is_redis_url  # the stores' callers look it up here

log = logging.getLogger("tierline.redis")

T = TypeVar("T")
MAX_CONNECTIONS = 144  # above the call path's default admission limit (128): admitted requests never queue for one
TRIP_AFTER = 3  # consecutive failures: one slow command under a burst must not stop every call
# How far a router's wall clock may be from Redis's (plus a script's run time and the reply's
# trip back) without a refused-late request taking effect: the engine is told to refuse from
# `deadline - CLOCK_SKEW_S` on (Redis TIME), and the router gives up at `deadline`.
CLOCK_SKEW_S = 0.1
LOOP_LATE_S = 0.05  # the loop this late recently: a missed deadline is this process's backlog, not Redis
BACKLOG_BUDGETS = 25  # a backlog stretches a deadline this far (0.4 s → 10 s) at most: a bound, not a timeout
REPLY_GRACE_S = 1.0  # longest the loop may take to read a reply that reached the socket before the deadline
# How often a Sentinel link asks which server is the primary: the longest a demoted primary
# that still accepts writes keeps getting this router's new ones (see the README's Sentinel part).
PRIMARY_POLL_S = 0.25
Client = Redis | RedisCluster
_OUR_BUGS: tuple[type[Exception], ...] = (ResponseError, DataError)
# Replies that refuse a write for the deployment's sake, not ours: a primary under
# `min-replicas-to-write` that lost its replicas (a failover under way) says NOREPLICAS.
_REFUSALS = ("NOREPLICAS", "MASTERDOWN")


class _Budget:
    """A request's time for Redis: the deadline is fixed by its first Redis call (`at`, event-loop time).

    Starting at the first call, not at the first byte, keeps a client's slow body (bounded
    elsewhere) from being blamed on Redis.
    """

    __slots__ = ("at", "seconds")

    def __init__(self, seconds: float, at: float | None = None) -> None:
        self.seconds, self.at = seconds, at

    def deadline(self, loop: asyncio.AbstractEventLoop) -> float:
        if self.at is None:
            self.at = loop.time() + self.seconds
        return self.at


_BUDGET: ContextVar[_Budget | None] = ContextVar("tierline_redis_budget", default=None)
_CALL_AT: ContextVar[float | None] = ContextVar("tierline_redis_call_deadline", default=None)  # of the call running


class LinkFigures(NamedTuple):
    """A link's breaker (open: calls fail at once) and its lifetime failure counts; `purpose`
    tells the call path's link (`calls`) from the archiver's own (`history`)."""

    purpose: str
    breaker_open: bool
    failures: int
    trips: int
    refused: int


_LINKS: weakref.WeakSet[RedisLink] = weakref.WeakSet()


def open_links() -> list[RedisLink]:
    """The Redis links of this process (one per store URL opened; tests may hold several)."""
    return list(_LINKS)


class DeadlinePassed(TimeoutError):
    """The engine script refused: it reached Redis after the request's deadline (nothing changed)."""


@contextlib.contextmanager
def request_deadline(budget_s: float) -> Iterator[None]:
    """Every Redis call made inside shares one deadline: `budget_s` after the first of them starts."""
    token = _BUDGET.set(_Budget(budget_s))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def _unread(connection: AbstractConnection) -> bool:
    """Bytes or an end-of-file wait on the connection that nobody has read: a reply, or a server that hung up.

    Looks at what the event loop already buffered and at the kernel's socket (the loop may be
    behind), without reading anything. Relies on redis-py's parser keeping its asyncio stream
    in `_stream`; anything unexpected counts as "unread", which at worst costs a reconnect.
    """
    try:
        parser: Any = connection._parser
        stream = parser._stream
        if stream is None or stream.at_eof() or stream._buffer:
            return True
        reader = getattr(parser, "_reader", None)  # hiredis keeps fed bytes of its own
        if reader is not None and reader.has_data():
            return True
        writer: Any = connection._writer
        poll = select.poll()
        poll.register(writer.get_extra_info("socket").fileno(), select.POLLIN)
        return bool(poll.poll(0))
    except (AttributeError, OSError, ValueError):
        return True


class _Pool(BlockingConnectionPool):
    """Hands out only live connections, and remembers which task holds which (and since when).

    redis-py's own check on checkout is skipped while its maintenance notifications are on
    ("auto" by default), so a connection the server closed during a restart was handed out and
    its first command failed: three such failures opened the breaker on a healthy Redis.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held: weakref.WeakKeyDictionary[asyncio.Task[Any], tuple[AbstractConnection, float]] = (
            weakref.WeakKeyDictionary()
        )

    async def ensure_connection(self, connection: AbstractConnection) -> None:
        # An idle pooled connection has nothing to read; if it has, the server hung up (or the
        # connection is dirty): reconnect now, while nothing of this command has been sent.
        if connection.is_connected and _unread(connection):
            await connection.disconnect(nowait=True)
        await super().ensure_connection(connection)

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        connection: AbstractConnection = await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        task = asyncio.current_task()
        if task is not None:
            # The command is written right after checkout, in the same step of the task.
            self.held[task] = (connection, asyncio.get_running_loop().time())
        return connection

    async def release(self, connection: AbstractConnection) -> None:
        task = asyncio.current_task()
        if task is not None and (held := self.held.get(task)) is not None and held[0] is connection:
            del self.held[task]
        await super().release(connection)


class _Sentinels(Sentinel):
    """Asks every Sentinel at once and believes the newest configuration (the highest epoch).

    redis-py's own discovery takes the first Sentinel that answers; one that has not yet heard
    of a failover would send this router back to the demoted primary.
    """

    async def discover_master(self, service_name: str) -> tuple[str, int]:
        answers = await asyncio.gather(*(node.sentinel_masters() for node in self.sentinels), return_exceptions=True)
        best: dict[str, Any] | None = None
        for answer in answers:
            if isinstance(answer, BaseException):
                continue
            state = answer.get(service_name) if isinstance(answer, dict) else None
            if (
                state
                and self.check_master_state(state, service_name)
                and (best is None or state["config-epoch"] > best["config-epoch"])
            ):
                best = state
        if best is None:
            raise MasterNotFoundError(f"no Sentinel names a primary for {service_name!r}")
        return best["ip"], int(best["port"])


class _SentinelPool(SentinelConnectionPool, _Pool):
    """`_Pool`'s live, tracked connections, each to the primary the Sentinels name when it connects."""

    async def release(self, connection: AbstractConnection) -> None:
        # A connection opened before a failover goes back closed: its next command finds the new primary.
        address = (getattr(connection, "host", None), getattr(connection, "port", None))
        if self.master_address is not None and connection.is_connected and address != tuple(self.master_address):
            await connection.disconnect()
        await super().release(connection)


async def _loading_once(call: Callable[[], Awaitable[Any]], load: Callable[[], Awaitable[Any]]) -> Any:
    """`call()`; if Redis answers that the function is not there, `load()` it and call again."""
    try:
        return await call()
    except ResponseError as exc:
        if not str(exc).startswith("Function not found"):
            raise
    await load()
    return await call()


def connect(url: str, timeout_s: float) -> Client:
    """A client for `redis://host:port/db` (one server), `redis+cluster://host:port` (a seed node)
    or `redis+sentinel://host:26379,…/service/db` (the service's primary); see redis_urls.py."""
    options: dict[str, Any] = {
        "retry": Retry(NoBackoff(), 0),
        "max_connections": MAX_CONNECTIONS,
    }
    scheme, _, rest = url.partition("://")
    if scheme in SENTINEL_SCHEMES:
        target = sentinel_target(url)
        # rediss+sentinel: TLS to the Sentinels and to the primary, with the same CA and options.
        tls: dict[str, Any] = {} if target.tls is None else {"ssl": True, **target.tls}
        sentinels = _Sentinels(  # type: ignore[no-untyped-call]
            target.sentinels,
            # A dead Sentinel answers quickly; a hung one must not hold a connect past the deadline.
            sentinel_kwargs={
                "socket_timeout": timeout_s,
                "socket_connect_timeout": timeout_s,
                "retry": Retry(NoBackoff(), 0),
                "username": target.sentinel_username,
                "password": target.sentinel_password,
                **tls,
            },
        )
        client: Redis = sentinels.master_for(
            target.service,
            connection_pool_class=_SentinelPool,
            db=target.db,
            username=target.username,
            password=target.password,
            timeout=None,
            socket_timeout=None,
            socket_connect_timeout=None,
            driver_info=None,
            **tls,
            **options,
        )
        return client
    if scheme.endswith("+cluster"):
        parts = urlsplit(f"{scheme.removesuffix('+cluster')}://{rest}")
        return RedisCluster(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            password=parts.password,
            ssl=scheme.startswith("rediss"),
            require_full_coverage=True,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            **options,
        )
    # A bounded pool: a burst of requests queues for a connection instead of opening hundreds
    # of sockets at once. No socket, connect or pool timeout of redis-py's own: `RedisLink.run`
    # bounds every call, and unlike a plain timer it can tell a late loop from a late Redis.
    # No CLIENT SETINFO on each new connection either: a burst opens dozens at once.
    pool = _Pool.from_url(
        url, timeout=None, socket_timeout=None, socket_connect_timeout=None, driver_info=None, **options
    )
    return Redis(connection_pool=pool)


class _Watch:
    """The deadline of one `RedisLink.run`: fires at `at`, but does not blame Redis for this loop's backlog.

    A reply that already reached the socket is read. While the loop is behind (`lag`), Redis
    still gets `allowance` from when the command was sent, up to `cap`.
    """

    __slots__ = (
        "allowance",
        "at",
        "cap",
        "handle",
        "lag",
        "loop",
        "outstanding",
        "pool",
        "stretched",
        "task",
        "timeout",
    )

    def __init__(
        self, pool: _Pool | None, at: float, cap: float, allowance: float, lag: LoopLag, stretched: bool
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.pool, self.at, self.cap, self.allowance, self.lag = pool, at, cap, allowance, lag
        self.stretched = stretched  # the deadline already gave way to this loop's backlog
        self.outstanding: float | None = None  # how long the command in flight had been with Redis
        self.handle: asyncio.TimerHandle | None = None
        self.timeout: asyncio.Timeout | None = None

    def arm(self, timeout: asyncio.Timeout) -> None:
        self.timeout = timeout
        self.handle = self.loop.call_at(self.at, self.fire)

    def disarm(self) -> None:
        if self.handle is not None:
            self.handle.cancel()

    def fire(self) -> None:
        assert self.timeout is not None
        now = self.loop.time()
        held = self.pool.held.get(self.task) if self.pool is not None and self.task is not None else None
        outstanding = None
        if held is not None:
            connection, since = held
            if _unread(connection) and now < self.at + REPLY_GRACE_S:
                # Redis answered in time; only this loop has not got round to reading it yet.
                self.handle = self.loop.call_later(0.001, self.fire)
                return
            outstanding = now - since
        behind = self.lag.recent_max() >= LOOP_LATE_S
        if now < self.cap and (outstanding or 0.0) < self.allowance and (behind or (self.stretched and held)):
            # The time went on this process's backlog, not on Redis: give Redis its allowance
            # (from the send, even once the loop has caught up again).
            self.stretched = True
            due = now + self.allowance - (outstanding or 0.0)
            self.handle = self.loop.call_at(min(due, self.cap), self.fire)
            return
        self.outstanding = outstanding
        self.handle = None
        self.timeout.reschedule(now)


class RedisLink:
    """Runs store commands under the request's deadline and a circuit breaker; maps failures to `Unavailable`."""

    def __init__(
        self,
        client: Client,
        timeout_s: float = 0.25,
        cooldown_s: float = 1.0,
        wall: Callable[[], float] = time.time,
        purpose: str = "calls",
    ) -> None:
        self.client = client
        self.purpose = purpose  # /metrics' `link` label: whose calls go through this link
        self.timeout_s = timeout_s
        self.cooldown_s = cooldown_s
        self.wall = wall  # this router's wall clock (injected by the skew tests)
        self.cluster = isinstance(client, RedisCluster)
        pool = None if self.cluster else getattr(client, "connection_pool", None)
        self._pool = pool if isinstance(pool, _Pool) else None
        self._open_until = 0.0  # monotonic; the breaker is open before this instant
        self._failures = 0
        self._sentinel = self._pool if isinstance(self._pool, _SentinelPool) else None
        self._primary_watch: asyncio.Task[None] | None = None
        # Read by /metrics (this process's series); counting changes nothing the link decides.
        self.failures_total = 0  # Redis failures (errors and held-too-long deadlines) that count against it
        self.trips_total = 0  # times the breaker opened
        self.refused_total = 0  # calls failed at once while it was open
        _LINKS.add(self)

    @property
    def healthy(self) -> bool:
        return self._open_until <= time.monotonic()

    def figures(self) -> LinkFigures:
        """This link's breaker and failure counts, for /metrics."""
        return LinkFigures(self.purpose, not self.healthy, self.failures_total, self.trips_total, self.refused_total)

    def script_deadline(self) -> str:
        """The current call's deadline on this router's wall clock, less the tolerated skew (epoch seconds).

        The engine compares it with Redis `TIME` and refuses, changing nothing, once past it.
        The router waits for the reply until that same deadline (`run`), so a script Redis runs
        is one whose answer the router still takes.
        """
        loop = asyncio.get_running_loop()
        at = _CALL_AT.get()
        left = self.timeout_s * 2 if at is None else at - loop.time()
        return repr(self.wall() + left - CLOCK_SKEW_S)

    async def fcall(
        self, name: str, code: str, keys: Sequence[str], args: Callable[[str], Sequence[str | bytes]]
    ) -> Any:
        """Call function `name` of the library `code` with `args(script_deadline)`; call it inside `run`.

        Where Redis lacks the library (a restarted or new server), it is loaded (FUNCTION LOAD
        REPLACE, on every primary of a Cluster) and the call made again: the refused call
        changed nothing. On a single Redis the deadline is read once a live connection is in
        hand, right before the write: opening a connection in a burst, on a loop that is behind,
        can take longer than the deadline leaves, and a deadline read before that would make
        Redis refuse a command this router still waits for.
        """
        if self._pool is None:  # a Cluster client routes the call by its key
            client = self.client

            async def call() -> Any:
                return await client.fcall(name, len(keys), *keys, *args(self.script_deadline()))

            async def load() -> Any:
                return await client.function_load(code, replace=True)

            return await _loading_once(call, load)
        connection = await self._pool.get_connection()

        async def call_here() -> Any:
            await connection.send_command("FCALL", name, len(keys), *keys, *args(self.script_deadline()))
            return await connection.read_response()

        async def load_here() -> Any:
            await connection.send_command("FUNCTION", "LOAD", "REPLACE", code)
            return await connection.read_response()

        try:
            return await _loading_once(call_here, load_here)
        finally:
            await self._pool.release(connection)

    async def run(self, step: Callable[[], Awaitable[T]], deadline_s: float | None = None) -> T:
        """Await `step()` unless the breaker is open; any Redis failure or missed deadline → Unavailable.

        Inside `request_deadline` the request's deadline bounds the call (`deadline_s` is then
        ignored); outside, the call gets `deadline_s` (default `2 × timeout_s`). While this
        process's loop is itself behind, its backlog does not count as Redis's time: a call
        still gets `timeout_s` from when it is sent, up to `BACKLOG_BUDGETS` budgets past the
        deadline; what does not fit fails as `Overloaded`, which the breaker does not count.
        """
        if not self.healthy:
            self.refused_total += 1
            raise Unavailable("the Redis store is unreachable; retrying shortly")
        if self._sentinel is not None and self._primary_watch is None:
            self._primary_watch = asyncio.create_task(self._watch_primary(self._sentinel))
        loop = asyncio.get_running_loop()
        lag = loop_lag()  # started with the first call, so it has history when a deadline is missed
        budget = _BUDGET.get()
        own = None
        if budget is None:
            budget = _Budget(deadline_s or self.timeout_s * 2)
            own = _BUDGET.set(budget)
        at = budget.deadline(loop)
        cap = at + BACKLOG_BUDGETS * budget.seconds  # how far this process's own backlog may stretch it
        now = loop.time()
        late = lag.recent_max()
        stretched = late >= LOOP_LATE_S
        if stretched:
            if now >= cap:
                raise Overloaded("this router is too busy to answer in time; retry shortly")
            # A call made now still gets a whole budget, plus what this loop may take to get its
            # command written (it is late by `late` at each step): its script deadline says so too.
            at = min(max(at, now + budget.seconds + late), cap)
        elif now >= at:
            # The request's budget went on earlier calls (or on waiting for this loop): nothing is sent.
            raise self._missed(sent=False, lag=lag.recent_max())
        call = _CALL_AT.set(at)
        watch = _Watch(self._pool, at, cap, self.timeout_s, lag, stretched)
        try:
            async with asyncio.timeout(None) as timeout:
                watch.arm(timeout)
                result = await step()
        except (RedisError, OSError, TimeoutError) as exc:
            if type(exc) in _OUR_BUGS and not str(exc).startswith(_REFUSALS):
                raise  # a script or argument error is ours to fix, not an outage
            if isinstance(exc, TimeoutError | RedisTimeoutError):
                # Our deadline, or redis-py's connect timeout (a timer of this same loop).
                raise self._missed(
                    sent=True, outstanding=watch.outstanding, lag=lag.recent_max(), stretched=watch.stretched
                ) from None
            self._trip(exc)
            raise Unavailable(f"the Redis store did not answer: {type(exc).__name__}") from None
        finally:
            watch.disarm()
            _CALL_AT.reset(call)
            if own is not None:
                _BUDGET.reset(own)
        if self._failures:
            log.warning("Redis is back after %d failed request(s)", self._failures)
            self._failures = 0
        return result

    def _missed(self, sent: bool, lag: float, outstanding: float | None = None, stretched: bool = False) -> Unavailable:
        """A missed deadline: Redis's failure, or this process's own backlog (`Overloaded`, not counted)."""
        # Redis is to blame when it held a command for its whole allowance without a word, or
        # when this loop kept up (then the time can only have gone on waiting for Redis).
        held_too_long = outstanding is not None and outstanding >= self.timeout_s
        if not held_too_long and (lag >= LOOP_LATE_S or stretched):
            return Overloaded("this router is too busy to answer in time; retry shortly")
        if sent:
            self._trip(TimeoutError("deadline"))
        return Unavailable("the Redis store did not answer in time")

    async def ping(self) -> bool:
        try:
            return bool(await self.run(lambda: self.client.ping(), self.timeout_s * 2))
        except Unavailable:
            return False

    async def close(self) -> None:
        _LINKS.discard(self)  # a closed link has no breaker to report, even before it is collected
        if self._primary_watch is not None:
            self._primary_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._primary_watch
            self._primary_watch = None
        await self.client.aclose()
        if self._sentinel is not None:
            await self._sentinel.sentinel_manager.aclose()

    async def _watch_primary(self, pool: _SentinelPool) -> None:
        """Moves the pool to the primary the Sentinels name, `PRIMARY_POLL_S` after they name it at most."""
        while True:
            await asyncio.sleep(PRIMARY_POLL_S)
            try:
                async with asyncio.timeout(self.timeout_s * 2):
                    address = await pool.sentinel_manager.discover_master(pool.service_name)
            except (RedisError, OSError, TimeoutError):
                continue  # the link's own calls report an outage; this only follows a failover
            if pool.master_address is not None and tuple(pool.master_address) != address:
                log.warning(
                    "the Redis primary of %r moved from %s:%s to %s:%s",
                    pool.service_name,
                    *pool.master_address,
                    *address,
                )
                pool.master_address = address
                await pool.disconnect(inuse_connections=False)

    def _trip(self, exc: BaseException) -> None:
        self._failures += 1
        self.failures_total += 1
        if self._failures == TRIP_AFTER:
            log.error("Redis failed (%s: %s); failing fast for %.1f s", type(exc).__name__, exc, self.cooldown_s)
        if self._failures >= TRIP_AFTER:
            if self.healthy:
                self.trips_total += 1
            self._open_until = time.monotonic() + self.cooldown_s
