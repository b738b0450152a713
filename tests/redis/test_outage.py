"""Redis stops and comes back: look-ups degrade, queue operations fail fast with 503, all recover."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from tests.conftest import new_namespace
from tests.support.redis_servers import RedisServer
from tierline.queue.clock import ManualClock
from tierline.queue.redis_link import RedisLink, connect
from tierline.router.app import build_app, open_services
from tierline.router.config import load_settings
from tierline.tiers.redis_store import RedisTierStore

FAST = 0.5  # the bound on any answer while Redis is down


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.cleanup()


async def test_tier_lookups_degrade_fast_and_recover(own_redis: RedisServer, tmp_path: Path) -> None:
    link = RedisLink(connect(own_redis.url, 0.2), timeout_s=0.2, cooldown_s=0.3)
    store = RedisTierStore(link, new_namespace())
    path = tmp_path / "t.csv"
    path.write_text("caller,tier,customer_id\n+111222333,vip,C-1\n")
    await store.reload_file(path, "csv")
    assert (await store.lookup("+111222333")).tier == "vip"
    own_redis.stop(kill=True)
    started = time.monotonic()
    cached = await store.lookup("+111222333")
    unknown = await store.lookup("+999888777")
    assert time.monotonic() - started < 2 * FAST
    assert (cached.tier, cached.degraded, cached.crm) == ("vip", True, {"customer_id": "C-1"})
    assert (unknown.tier, unknown.known, unknown.degraded) == ("standard", False, True)
    assert not await link.ping()
    own_redis.start()  # same port; this one keeps nothing, so the caller is unknown again
    await asyncio.sleep(0.35)
    again = await store.lookup("+999888777")
    assert (again.degraded, again.known) == (False, False)
    await link.close()


@pytest.fixture
async def http_on_redis(own_redis: RedisServer) -> AsyncIterator[tuple[str, ClientSession]]:
    settings = load_settings(
        None, env={"TIERLINE_STORE": own_redis.url}, overrides={"redis_namespace": new_namespace()}
    )
    services = open_services(settings, ManualClock(1_700_000_000.0))
    server = TestServer(build_app(services, sweeper=False), host="127.0.0.1")
    await server.start_server()
    session = ClientSession()
    yield f"http://127.0.0.1:{server.port}", session
    await session.close()
    await server.close()


async def test_http_answers_503_fast_while_redis_is_down_then_recovers(
    own_redis: RedisServer, http_on_redis: tuple[str, ClientSession]
) -> None:
    base, http = http_on_redis
    async with http.post(f"{base}/v1/calls", json={"call_id": "c1", "caller": "+111222333"}) as resp:
        assert resp.status == 201
    own_redis.stop(kill=True)
    for method, path, body in [
        ("POST", "/v1/calls", {"call_id": "c2", "caller": "+111222334"}),
        ("GET", "/v1/calls/c1", None),
        ("POST", "/v1/agents/a1/next", {}),
    ]:
        started = time.monotonic()
        async with http.request(method, base + path, json=body) as resp:
            assert resp.status == 503, path
            error = (await resp.json())["error"]
        assert time.monotonic() - started < FAST, path
        assert error["code"] == "store_unavailable"
    started = time.monotonic()
    async with http.get(f"{base}/v1/callers/+111222333") as resp:
        assert resp.status == 200
        assert (await resp.json())["degraded"] is True
    assert time.monotonic() - started < FAST
    async with http.get(f"{base}/readyz") as resp:
        assert resp.status == 503
    own_redis.start()
    deadline = time.monotonic() + 5
    while True:
        async with http.get(f"{base}/readyz") as resp:
            if resp.status == 200:
                break
        assert time.monotonic() < deadline, "/readyz never became ready again"
        await asyncio.sleep(0.1)
    async with http.post(f"{base}/v1/calls", json={"call_id": "c3", "caller": "+111222335"}) as resp:
        assert resp.status == 201
        assert (await resp.json())["status"] == "waiting"


async def test_a_slow_redis_costs_a_caller_at_most_half_a_second(
    own_redis: RedisServer, http_on_redis: tuple[str, ClientSession]
) -> None:
    base, http = http_on_redis
    async with http.post(f"{base}/v1/calls", json={"call_id": "c1", "caller": "+111222333"}) as resp:
        assert resp.status == 201
    # CLIENT PAUSE holds every client's commands, as a stalled server (long fork, slow disk) would.
    cli = ("redis-cli", "-p", str(own_redis.port))
    pause = await asyncio.create_subprocess_exec(*cli, "client", "pause", "1500", "ALL")
    assert await pause.wait() == 0
    started = time.monotonic()
    async with http.get(f"{base}/v1/calls/c1") as resp:
        assert resp.status == 503
        assert (await resp.json())["error"]["code"] == "store_unavailable"
    assert time.monotonic() - started < FAST
    await asyncio.sleep(2.0)  # the pause is over, and so is any breaker cool-down
    async with http.get(f"{base}/v1/calls/c1") as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "waiting"
