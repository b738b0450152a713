"""A route decision costs one Redis round trip; with AOF, a Redis restart keeps every call."""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterator

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from tests.conftest import new_namespace
from tests.support.redis_servers import RedisServer
from tierline.queue.clock import ManualClock
from tierline.queue.policy import Policy
from tierline.queue.redis_link import RedisLink, connect
from tierline.queue.redis_store import RedisCallStore
from tierline.router.app import build_app, open_services
from tierline.router.config import load_settings
from tierline.tiers.model import Tier, TierRecord


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    server = RedisServer(extra=("--appendonly", "yes", "--appendfsync", "everysec")).start()
    yield server
    server.cleanup()


class Monitor:
    """`redis-cli monitor`: every command a client sent, apart from those a script ran inside."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process = subprocess.Popen(["redis-cli", "-p", str(port), "monitor"], stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "OK"

    def stop(self) -> Counter[str]:
        """Count what was seen up to a marker command sent now (stdout is block-buffered)."""
        marker = "tierline-monitor-end"
        subprocess.run(["redis-cli", "-p", str(self.port), "echo", marker], capture_output=True, check=True)
        assert self.process.stdout is not None
        counts: Counter[str] = Counter()
        for line in self.process.stdout:
            if marker in line:
                break
            if " lua] " not in line and '"' in line:
                counts[line.split('"')[1].lower()] += 1
        self.process.kill()
        self.process.wait()
        return counts


async def test_a_route_decision_is_one_round_trip_on_a_single_redis(redis: RedisServer) -> None:
    settings = load_settings(None, env={"TIERLINE_STORE": redis.url}, overrides={"redis_namespace": new_namespace()})
    services = open_services(settings, ManualClock(1_700_000_000.0))
    server = TestServer(build_app(services, sweeper=False), host="127.0.0.1")
    await server.start_server()
    base = f"http://127.0.0.1:{server.port}"
    async with ClientSession() as http:
        await services.tiers.put("+8613800000001", "vip", {"customer_id": "C-1", "name": "Li Na"})
        async with http.post(f"{base}/v1/calls", json={"call_id": "warm", "caller": "+8613800000001"}) as resp:
            assert resp.status == 201  # loads the script and reads the tier meta once
        monitor = Monitor(redis.port)
        for i in range(50):
            body = {"call_id": f"c{i}", "caller": f"+86138000000{i % 10:02d}"}
            async with http.post(f"{base}/v1/calls", json=body) as resp:
                assert resp.status == 201
        counts = monitor.stop()
        # What the agent gets back is the caller's whole record, decoded inside the script.
        async with http.post(f"{base}/v1/agents/a1/next", json={}) as resp:
            work = await resp.json()
        async with http.get(f"{base}/v1/calls/c7") as resp:
            unknown = await resp.json()
    await server.close()
    # One FCALL per call (tier look-up, sweep, enqueue, position and estimate in one script),
    # plus the tier meta re-read at most once a second while this ran (HGET ×2, LRANGE), and on
    # those requests the look-up as a separate HGET.
    meta_reads = counts.pop("lrange", 0)
    assert meta_reads <= 3
    assert counts.pop("hget", 0) <= 3 * meta_reads
    assert counts == {"fcall": 50}, counts
    assert work["caller"] == {
        "caller": "+8613800000001",
        "tier": "vip",
        "known": True,
        "crm": {"customer_id": "C-1", "name": "Li Na"},
    }
    assert (unknown["tier"], unknown["status"]) == ("standard", "waiting")


async def test_aof_keeps_the_queue_over_a_redis_restart(redis: RedisServer) -> None:
    clock = ManualClock(1_700_000_000.0)
    namespace = new_namespace()
    link = RedisLink(connect(redis.url, 1.0), timeout_s=1.0)
    store = RedisCallStore(link, Policy(), clock, namespace)
    tiers: list[Tier] = ["standard", "vip", "mid", "blacklisted"]
    for i, tier in enumerate(tiers):
        await store.route(f"c{i}", TierRecord(caller=f"+4930000{i}", tier=tier), "default")
    clock.advance(61)  # the mid caller overflows into a callback
    await store.sweep()
    await link.close()
    redis.stop()  # SIGTERM: Redis writes the AOF out before it exits
    redis.start()
    link = RedisLink(connect(redis.url, 1.0), timeout_s=1.0)
    store = RedisCallStore(link, Policy(), clock, namespace)
    positions = {f"c{i}": (await store.get_call(f"c{i}")).position for i in range(4)}
    assert positions == {"c1": 1, "c0": 2, "c3": 3, "c2": None}
    mid = await store.get_call("c2")
    assert mid.call.status == "overflowed" and mid.callback is not None
    assert [c.callback_id for c in await store.callbacks("open", 10)] == [mid.callback.callback_id]
    work = await store.next_work("agent-1", None)
    assert work is not None and work.call is not None and work.call.call.call_id == "c1"
    await link.close()


async def test_a_server_that_lost_the_engine_is_given_it_again(redis: RedisServer) -> None:
    """The engine is a function library: a server without it (flushed, or restarted with no
    persistence) gets it loaded by the call it refused, and that call then runs, once."""
    clock = ManualClock(1_700_000_000.0)
    link = RedisLink(connect(redis.url, 1.0), timeout_s=1.0)
    store = RedisCallStore(link, Policy(), clock, new_namespace())
    client = link.client
    try:
        await store.route("c1", TierRecord(caller="+49301", tier="standard"), "default")
        assert await client.function_list(library="tierline_*")
        assert await client.function_flush() in (True, b"OK", "OK")
        assert await client.function_list(library="tierline_*") == []
        await client.config_resetstat()
        second, created = await store.route("c2", TierRecord(caller="+49302", tier="vip"), "default")
        stats = await client.info("commandstats")
        assert created and second.position == 1
        assert stats["cmdstat_fcall"]["calls"] == 2  # the one refused, then the one that ran
        assert stats["cmdstat_fcall"]["failed_calls"] + stats["cmdstat_fcall"]["rejected_calls"] == 1
        assert stats["cmdstat_function|load"]["calls"] == 1
        assert (await store.get_call("c1")).position == 2  # the queue did not notice
    finally:
        await link.close()
