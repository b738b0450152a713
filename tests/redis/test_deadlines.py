"""A request's deadline on real Redis: a refused request changes nothing, one deadline per request,
the deadline measures Redis (not this process's loop), a restart costs nothing once Redis is back,
and an overloaded process sheds load early and says so.

Time bounds themselves are shown by loadtest/stress_deadline.py and
loadtest/stress_cpu_saturation.py; these tests hold the mechanisms.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from tests.conftest import new_namespace
from tests.support.redis_servers import RedisServer
from tierline.queue.clock import ManualClock
from tierline.queue.errors import Overloaded, Unavailable
from tierline.queue.redis_link import CLOCK_SKEW_S, RedisLink, connect, request_deadline
from tierline.router.app import build_app, open_services
from tierline.router.config import load_settings


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer(extra=("--enable-debug-command", "local")).start()  # DEBUG SLEEP stalls it
    yield server
    server.cleanup()


class Http:
    def __init__(self, base: str, session: ClientSession, link: RedisLink) -> None:
        self.base, self.session, self.link = base, session, link

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, Any]:
        async with self.session.request(method, self.base + path, json=body) as resp:
            payload = await resp.json() if resp.content_type == "application/json" else await resp.text()
            return resp.status, payload, resp.headers


async def start_http(redis: RedisServer, **overrides: object) -> tuple[TestServer, Http]:
    settings = load_settings(
        None, env={"TIERLINE_STORE": redis.url}, overrides={"redis_namespace": new_namespace(), **overrides}
    )
    services = open_services(settings, ManualClock(1_700_000_000.0))
    server = TestServer(build_app(services, sweeper=False), host="127.0.0.1")
    await server.start_server()
    link: RedisLink = services.calls._link  # type: ignore[attr-defined]
    return server, Http(f"http://127.0.0.1:{server.port}", ClientSession(), link)


@pytest.fixture
async def http(own_redis: RedisServer) -> AsyncIterator[Http]:
    server, client = await start_http(own_redis)
    yield client
    await client.session.close()
    await server.close()


async def redis_cli(redis: RedisServer, *args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "redis-cli", "-p", str(redis.port), *args, stdout=asyncio.subprocess.DEVNULL
    )
    assert await process.wait() == 0


async def waiting_now(http: Http) -> int:
    status, report, _ = await http.call("GET", "/admin/sla?window=60m")
    assert status == 200
    return sum(row["waiting_now"] for row in report["rows"])


# --- item 3: a 503 during a stall leaves no ghost call ----------------------------------------


async def stall(redis: RedisServer, seconds: float) -> asyncio.Task[None]:
    """Redis stops serving for `seconds`, as under a long fork or a slow disk; returns once it has.

    DEBUG SLEEP, not CLIENT PAUSE: a paused client's command is dropped when the router hangs
    up, while a stalled server reads it afterwards and runs it, which is how ghosts were made.
    """
    sleeper = asyncio.create_task(redis_cli(redis, "debug", "sleep", str(seconds)))
    await asyncio.sleep(0.1)  # DEBUG SLEEP has reached Redis before the request below
    return sleeper


@pytest.mark.parametrize("skew_s", [0.0, -0.8 * CLOCK_SKEW_S, 0.8 * CLOCK_SKEW_S])
async def test_a_call_answered_503_during_a_stall_never_appears(
    own_redis: RedisServer, http: Http, skew_s: float
) -> None:
    # This router's wall clock is off from Redis's by up to the tolerated skew, either way.
    http.link.wall = lambda: time.time() + skew_s
    status, _, _ = await http.call("POST", "/v1/calls", {"call_id": "before", "caller": "+8613800000001"})
    assert status == 201  # also reads the tier meta and loads the library: the next route is one FCALL
    stalled = await stall(own_redis, 1.0)
    status, body, _ = await http.call("POST", "/v1/calls", {"call_id": "ghost", "caller": "+8613800000002"})
    assert (status, body["error"]["code"]) == (503, "store_unavailable")
    await stalled
    await asyncio.sleep(1.1)  # past the stall, and past the breaker's cool-down
    status, body, _ = await http.call("GET", "/v1/calls/ghost")
    assert (status, body["error"]["code"]) == (404, "call_not_found")
    assert await waiting_now(http) == 1  # only "before"
    status, _, _ = await http.call("POST", "/v1/calls", {"call_id": "after", "caller": "+8613800000003"})
    assert status == 201  # a skewed clock within the tolerance does not refuse healthy requests


# --- item 11: one deadline for all of a request's Redis calls -----------------------------------


async def test_the_second_call_of_a_request_is_cut_by_the_shared_deadline(own_redis: RedisServer) -> None:
    link = RedisLink(connect(own_redis.url, 0.25), timeout_s=0.25)
    client: Any = link.client
    await client.ping()
    with request_deadline(0.5):
        # Each call alone is well within its own 2 × 0.25 s; together they are not.
        assert await link.run(lambda: client.execute_command("DEBUG", "SLEEP", "0.3")) is not None
        with pytest.raises(Unavailable) as refused:
            await link.run(lambda: client.execute_command("DEBUG", "SLEEP", "0.3"))
    assert refused.type is Unavailable  # Redis's slowness, not this process's: the loop kept up
    await asyncio.sleep(0.2)
    assert await link.run(lambda: client.ping()) is True  # a call outside the request has its own deadline
    await link.close()


async def test_no_call_is_sent_once_the_request_deadline_has_passed(own_redis: RedisServer) -> None:
    link = RedisLink(connect(own_redis.url, 0.25), timeout_s=0.25)
    client: Any = link.client
    sent: list[str] = []

    async def marked() -> Any:
        sent.append("sent")
        return await client.ping()

    with request_deadline(0.2):
        await link.run(marked)
        await asyncio.sleep(0.25)  # the budget runs out between two calls (waiting, not loop backlog)
        with pytest.raises(Unavailable):
            await link.run(marked)
    assert sent == ["sent"]
    await link.close()


# --- item 8: the deadline measures Redis, not this process's event loop -------------------------


async def test_a_reply_that_arrived_while_the_loop_was_busy_is_not_a_redis_failure(own_redis: RedisServer) -> None:
    link = RedisLink(connect(own_redis.url, 0.05), timeout_s=0.05)
    client: Any = link.client
    await client.set("k", "v")
    loop = asyncio.get_running_loop()

    async def get_after_20ms() -> Any:
        # Redis takes 20 ms; 5 ms after the command is written this process becomes busy for
        # three deadlines (CPU saturation): the reply waits in the socket, the deadline falls due late.
        loop.call_later(0.005, time.sleep, 0.3)
        reply = await client.pipeline(transaction=False).execute_command("DEBUG", "SLEEP", "0.02").get("k").execute()
        return reply[1]

    for _ in range(4):  # more than the breaker's three
        assert await link.run(get_after_20ms) == b"v"
    assert link.healthy
    await link.close()


async def test_the_loop_s_own_backlog_stretches_a_deadline_and_past_that_is_overloaded_not_redis(
    own_redis: RedisServer,
) -> None:
    link = RedisLink(connect(own_redis.url, 0.05), timeout_s=0.05)
    client: Any = link.client
    # The connection is opened first, on a budget no busy machine misses: what follows times a
    # blocked loop, not a connect (which alone took over 50 ms once while other jobs ran).
    assert await link.run(lambda: client.ping(), deadline_s=5.0) is True
    for _ in range(3):  # as many as open the breaker when they are Redis failures
        with request_deadline(0.05):
            await link.run(lambda: client.ping())
            # This process is busy (its event loop blocked) past the request's deadline, not Redis:
            # the next call is still made, and Redis gets its time.
            time.sleep(0.3)  # noqa: ASYNC251
            assert await link.run(lambda: client.ping()) is True
        with request_deadline(0.05):
            await link.run(lambda: client.ping())
            time.sleep(1.4)  # noqa: ASYNC251  -- beyond what a backlog may stretch (25 budgets)
            with pytest.raises(Overloaded):
                await link.run(lambda: client.ping())
    assert link.healthy  # the breaker did not count the loop's backlog against Redis
    await link.close()


async def test_an_overloaded_process_sheds_call_path_requests_early_and_counts_them(own_redis: RedisServer) -> None:
    server, http = await start_http(own_redis, max_in_flight=2)
    try:
        status, _, _ = await http.call("POST", "/v1/calls", {"call_id": "warm", "caller": "+8613800000001"})
        assert status == 201
        # Redis holds every command a little while: two requests stay in progress, the rest arrive.
        await redis_cli(own_redis, "client", "pause", "200", "ALL")
        answers = await asyncio.gather(
            *(http.call("POST", "/v1/calls", {"call_id": f"c{i}", "caller": f"+861380000010{i}"}) for i in range(5))
        )
        assert Counter(status for status, _, _ in answers) == {201: 2, 503: 3}
        shed = [(body, headers) for status, body, headers in answers if status == 503]
        assert {body["error"]["code"] for body, _ in shed} == {"overloaded"}
        assert {headers["Retry-After"] for _, headers in shed} == {"1"}
        assert await waiting_now(http) == 3  # the shed requests changed nothing
        assert http.link.healthy
        status, text, _ = await http.call("GET", "/metrics")
        assert status == 200
        assert 'tierline_requests_shed_total{stage="admission"} 3.0' in text
        assert 'tierline_requests_shed_total{stage="deadline"} 0.0' in text
        status, _, _ = await http.call("GET", "/admin/sla?window=60m")
        assert status == 200  # admin routes are not counted against the call path's limit
    finally:
        await http.session.close()
        await server.close()


# --- item 7: a Redis restart costs the restart, not 1-2 s of 503s afterwards --------------------


async def test_the_first_requests_after_a_redis_restart_all_succeed(own_redis: RedisServer, http: Http) -> None:
    async def route(i: int) -> int:
        status, _, _ = await http.call("POST", "/v1/calls", {"call_id": f"c{i}", "caller": f"+86138{i:08d}"})
        return status

    # Several pooled connections, each of which the restart kills.
    assert set(await asyncio.gather(*(route(i) for i in range(20)))) == {201}
    own_redis.stop(kill=True)
    own_redis.start()  # same port; returns once it answers PING
    first = await asyncio.gather(*(route(100 + i) for i in range(20)))
    then = [await route(200 + i) for i in range(5)]
    assert first == [201] * 20 and then == [201] * 5
