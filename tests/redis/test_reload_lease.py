"""The tier reload lock is a lease, and a reload that dies or fails leaves nothing behind (issue 13, item 6).

A reloader killed with SIGKILL half-way used to hold the lock for an hour (`409
reload_in_progress` everywhere) and leave its half-written version's keys with nothing
referring to them; a reload failing on a Redis error leaked the same way. Now the lock is a
short lease renewed while its reload runs, only its owner renews or releases it, and the next
reload drops every version that is neither current, previous nor retired within its grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.exceptions import ResponseError

from tests.conftest import new_namespace, server_url
from tests.support.redis_servers import RedisServer
from tierline.queue.errors import Conflict, EngineError
from tierline.queue.redis_link import RedisLink, connect
from tierline.tiers.redis_store import RedisTierStore


def tier_file(path: Path, rows: int, tier: str = "mid") -> Path:
    path.write_text("caller,tier,customer_id\n" + "".join(f"+86139{i:08d},{tier},C{i}\n" for i in range(rows)))
    return path


async def data_ids(link: RedisLink, namespace: str) -> set[int]:
    """The data versions that have keys in Redis, by SCAN of the namespace (every node of a cluster)."""
    return {int(key.split(b":")[2]) async for key in link.client.scan_iter(match=f"{namespace}:t:*", count=1000)}


async def meta_ids(link: RedisLink, namespace: str) -> set[int]:
    names = await link.client.hkeys("{" + namespace + "}:tiers")
    # redis-py types a reply as bytes or str, by the client's decode_responses.
    raw = [name if isinstance(name, bytes) else name.encode() for name in names]
    return {int(name[1:].split(b":")[0]) for name in raw if name.startswith(b"v")}


def lock_key(namespace: str) -> str:
    return "{" + namespace + "}:tiers:lock"


def start_reload(path: Path, redis_url: str, namespace: str, lease_s: float) -> subprocess.Popen[bytes]:
    """`tierline reload-tiers FILE --store …` as the nightly job runs it, in its own process group."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tierline.router.cli",
            "reload-tiers",
            str(path),
            "--store",
            redis_url,
            "--namespace",
            namespace,
            "--lock-lease-s",
            str(lease_s),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


@pytest.fixture
async def link(redis_url: str) -> AsyncIterator[RedisLink]:
    made = RedisLink(connect(redis_url, 5.0), timeout_s=5.0)
    yield made
    await made.close()


async def test_a_reload_killed_mid_write_blocks_others_only_for_its_lease_and_leaves_no_orphan(
    redis_url: str, link: RedisLink, tmp_path: Path
) -> None:
    namespace, lease_s = new_namespace(), 1.0
    store = RedisTierStore(link, namespace)
    assert (await store.reload_file(tier_file(tmp_path / "monday.csv", 1000), "csv")).swapped  # data 1
    reloader = start_reload(tier_file(tmp_path / "tuesday.csv", 300_000, "vip"), redis_url, namespace, lease_s)
    try:
        deadline = time.monotonic() + 60
        while not await data_ids(link, namespace) - {1}:  # the new version is being written
            assert reloader.poll() is None, "the reload ended before it could be killed"
            assert time.monotonic() < deadline, "the reload never started writing"
            await asyncio.sleep(0.01)
        reloader.send_signal(signal.SIGKILL)
        reloader.wait()
        assert await data_ids(link, namespace) - {1}, "killed before writing anything"
        assert 0 < await link.client.pttl(lock_key(namespace)) <= lease_s * 1000  # not an hour
        with pytest.raises(Conflict) as refused:
            await store.reload_file(tier_file(tmp_path / "wed.csv", 1000, "blacklisted"), "csv")
        assert refused.value.code == "reload_in_progress"
        for _ in range(round(lease_s * 1000)):  # the lease lapses: nobody renews it
            if not await link.client.exists(lock_key(namespace)):
                break
            await asyncio.sleep(0.01)
        result = await store.reload_file(tier_file(tmp_path / "wed.csv", 1000, "blacklisted"), "csv")
        assert result.swapped and result.version == 2
        # Data 2 (half-written by the killed process) is gone; 3 is live, 1 kept for rollback.
        assert await data_ids(link, namespace) == {1, 3}
        assert await meta_ids(link, namespace) == {1, 3}
        assert (await store.lookup("+8613900000007")).tier == "blacklisted"
    finally:
        if reloader.poll() is None:
            reloader.kill()
        with contextlib.suppress(ProcessLookupError):  # its child (packing the file) too
            os.killpg(reloader.pid, signal.SIGKILL)


async def test_a_reload_failing_on_a_redis_error_leaves_nothing_after_the_next_reload(tmp_path: Path) -> None:
    """Redis refuses writes half-way (maxmemory): the failed version does not outlive the next reload."""
    server = RedisServer().start()
    links = [RedisLink(connect(server.url, 5.0), timeout_s=5.0) for _ in range(2)]
    namespace, lease_s = new_namespace(), 0.5
    store = RedisTierStore(links[0], namespace, lease_s=lease_s)
    try:
        await store.reload_file(tier_file(tmp_path / "monday.csv", 1000), "csv")
        used = int((await links[0].client.info("memory"))["used_memory"])
        await links[0].client.config_set("maxmemory", used + 1_000_000)  # room for a part of the file only
        with pytest.raises((ResponseError, EngineError)):
            await store.reload_file(tier_file(tmp_path / "tuesday.csv", 100_000, "vip"), "csv")
        plain = links[1].client
        await plain.config_set("maxmemory", 0)
        for _ in range(round(lease_s * 1000)):  # released, or lapsed within the lease
            if not await plain.exists(lock_key(namespace)):
                break
            await asyncio.sleep(0.01)
        other = RedisTierStore(links[1], namespace)  # another reloader: its own connection
        assert (await other.lookup("+8613900000007")).tier == "mid"
        result = await other.reload_file(tier_file(tmp_path / "w.csv", 1000, "vip"), "csv")  # drops what is left
        assert result.swapped and result.version == 2
        assert await data_ids(links[1], namespace) == {1, 3}
        assert await meta_ids(links[1], namespace) == {1, 3}
    finally:
        for link in links:
            await link.close()
        server.cleanup()


@pytest.fixture(params=["redis", "cluster"])
async def two_links(request: pytest.FixtureRequest) -> AsyncIterator[list[RedisLink]]:
    url = server_url(request, request.param)
    made = [RedisLink(connect(url, 5.0), timeout_s=5.0) for _ in range(2)]
    yield made
    for each in made:
        await each.close()


async def test_a_long_reload_keeps_its_lease_renewed_and_others_refused(
    two_links: list[RedisLink], tmp_path: Path
) -> None:
    namespace, lease_s = new_namespace(), 1.0
    one = RedisTierStore(two_links[0], namespace, lease_s=lease_s)
    other = RedisTierStore(two_links[1], namespace, lease_s=lease_s)
    small = tier_file(tmp_path / "small.csv", 10)
    reload = asyncio.create_task(one.reload_file(tier_file(tmp_path / "big.csv", 150_000, "vip"), "csv"))
    ttls: list[int] = []
    while not reload.done():
        ttl = await two_links[1].client.pttl(lock_key(namespace))
        assert ttl <= lease_s * 1000  # a lease, never an hour
        if ttl > 0:
            ttls.append(ttl)
            with pytest.raises(Conflict):
                await other.reload_file(small, "csv")
        await asyncio.sleep(0.05)
    result = await reload
    assert result.swapped and result.loaded == 150_000
    assert any(later > earlier for earlier, later in itertools.pairwise(ttls)), "the lease was never renewed"
    assert not await two_links[1].client.exists(lock_key(namespace))
    assert (await other.reload_file(small, "csv")).swapped


async def test_a_reload_whose_lock_was_taken_stops_switches_nothing_and_leaves_the_new_owner_its_lock(
    two_links: list[RedisLink], tmp_path: Path
) -> None:
    namespace = new_namespace()
    one = RedisTierStore(two_links[0], namespace, lease_s=2.0)
    client = two_links[1].client
    await one.reload_file(tier_file(tmp_path / "monday.csv", 1000), "csv")
    reload = asyncio.create_task(one.reload_file(tier_file(tmp_path / "big.csv", 150_000, "vip"), "csv"))
    while not await data_ids(two_links[1], namespace) - {1}:  # writing the new version
        assert not reload.done()
        await asyncio.sleep(0.01)
    # As if its lease had lapsed (a long pause) and another reloader had taken the lock.
    await client.set(lock_key(namespace), "someone-else", px=60_000)
    with pytest.raises(Conflict):
        await reload
    assert await client.get(lock_key(namespace)) == b"someone-else"
    assert await one.version() == 1
    assert (await one.lookup("+8613900000007")).tier == "mid"
    assert await data_ids(two_links[1], namespace) == {1}
    assert await meta_ids(two_links[1], namespace) == {1}
