"""Tier versions on Redis: a router's cached view never points at a deleted version.

Routers cache which version is live for META_TTL_S; a swap or a rollback that deleted a
version at once made callers unknown on every router still holding the old view. Here two
stores on separate connections play two routers: one reloads and rolls back, the other looks
callers up (and, on a single Redis, routes them with the look-up inside the engine script)
from a view it holds. "Old or new record, never nothing"; and what no router can still read
is dropped once its grace period is over.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import new_namespace
from tierline.queue.clock import ManualClock
from tierline.queue.policy import Policy
from tierline.queue.redis_link import RedisLink, connect
from tierline.queue.redis_store import RedisCallStore
from tierline.tiers.redis_store import GRACE_S, RedisTierStore

CALLERS = [f"+8613{i:09d}" for i in range(300)]


class StillClock:
    """A monotonic clock that stands still: the store's cached view stays within its TTL."""

    def __call__(self) -> float:
        return 100.0


def new_link(server: str, links: list[RedisLink]) -> RedisLink:
    link = RedisLink(connect(server, 1.0), timeout_s=1.0)
    links.append(link)
    return link


def tier_file(tmp_path: Path, tier: str) -> Path:
    """Every caller at one tier; none at the default tier, so a miss shows as `standard`."""
    path = tmp_path / f"{tier}.csv"
    path.write_text("caller,tier,customer_id\n" + "".join(f"{c},{tier},C{c[-4:]}\n" for c in CALLERS))
    return path


STEPS = [
    ("reload",),
    ("reload", "reload"),
    ("rollback",),
    ("reload", "rollback"),
    ("reload", "reload", "rollback"),
]


@pytest.mark.parametrize("steps", STEPS, ids=["-".join(s) for s in STEPS])
async def test_a_router_holding_an_old_view_still_finds_every_caller(
    server: str, links: list[RedisLink], tmp_path: Path, steps: tuple[str, ...]
) -> None:
    namespace = new_namespace()
    one = RedisTierStore(new_link(server, links), namespace)
    other = RedisTierStore(new_link(server, links), namespace, monotonic=StillClock())
    await one.reload_file(tier_file(tmp_path, "mid"), "csv")
    await one.reload_file(tier_file(tmp_path, "vip"), "csv")
    assert (await other.lookup(CALLERS[0])).tier == "vip"  # the other router's view: this version
    files = iter([tier_file(tmp_path, "blacklisted"), tier_file(tmp_path, "mid")])
    for step in steps:
        if step == "reload":
            assert (await one.reload_file(next(files), "csv")).swapped
        else:
            assert await one.rollback() is not None
    for caller in CALLERS:
        record = await other.lookup(caller)
        assert record.known, f"{caller} unknown after {steps} to a router holding the old view"
        assert record.tier == "vip" and record.crm == {"customer_id": f"C{caller[-4:]}"}
        assert (await one.lookup(caller)).known


@pytest.mark.parametrize("steps", STEPS, ids=["-".join(s) for s in STEPS])
async def test_the_one_script_route_from_an_old_view_queues_the_caller_at_its_tier(
    redis_url: str, tmp_path: Path, steps: tuple[str, ...]
) -> None:
    links: list[RedisLink] = []
    try:
        namespace = new_namespace()
        one = RedisTierStore(new_link(redis_url, links), namespace)
        link = new_link(redis_url, links)
        other = RedisTierStore(link, namespace, monotonic=StillClock())
        calls = RedisCallStore(link, Policy(), ManualClock(), namespace)
        await calls.open()
        await one.reload_file(tier_file(tmp_path, "mid"), "csv")
        await one.reload_file(tier_file(tmp_path, "vip"), "csv")
        await other.lookup(CALLERS[0])  # the other router's view: this version
        files = iter([tier_file(tmp_path, "blacklisted"), tier_file(tmp_path, "mid")])
        for step in steps:
            if step == "reload":
                await one.reload_file(next(files), "csv")
            else:
                await one.rollback()
        for i, caller in enumerate(CALLERS[:50]):
            located = other.locate(caller)
            assert located is not None
            snapshot, created = await calls.route_located(f"call-{i}", caller, "default", located, "standard")
            assert created and snapshot.call.tier == "vip", f"{caller} queued as {snapshot.call.tier} after {steps}"
    finally:
        for made in links:
            await made.close()


async def test_lookups_racing_reloads_and_rollbacks_never_find_nothing(
    server: str, links: list[RedisLink], tmp_path: Path
) -> None:
    """Real clocks: the looking store re-reads the live version every second, as a router does."""
    namespace = new_namespace()
    one = RedisTierStore(new_link(server, links), namespace)
    other = RedisTierStore(new_link(server, links), namespace)
    files = [tier_file(tmp_path, tier) for tier in ("mid", "vip", "blacklisted")]
    await one.reload_file(files[0], "csv")
    looked, missed = 0, 0
    done = asyncio.Event()

    async def look() -> None:
        nonlocal looked, missed
        i = 0
        while not done.is_set():
            # A few at once, as a router's concurrent requests do (more than ~8 at once makes
            # redis-py's async cluster client drop connections: not what this test is about).
            records = await asyncio.gather(*(other.lookup(CALLERS[(i + k) % len(CALLERS)]) for k in range(4)))
            answered = [r for r in records if not r.degraded]  # Redis slow on a busy machine: not this test
            looked += len(answered)
            missed += sum(not r.known for r in answered)
            i += 4

    looker = asyncio.create_task(look())
    for round_ in range(4):
        await asyncio.sleep(0.3)  # the looker's view is some version of the last round
        await one.reload_file(files[1 + round_ % 2], "csv")
        await one.reload_file(files[round_ % 2], "csv")
        await asyncio.sleep(0.05)
        await one.rollback()
    await asyncio.sleep(1.1)
    done.set()
    await looker
    assert looked > 0 and missed == 0, f"{missed} of {looked} look-ups found nothing"


async def data_ids(store: RedisTierStore, namespace: str) -> set[int]:
    """The data versions that still have keys, by SCAN of the namespace (every node of a cluster)."""
    client = store._client
    found = {int(key.split(b":")[2]) async for key in client.scan_iter(match=f"{namespace}:t:*", count=1000)}
    return found


async def age(store: RedisTierStore, namespace: str, data_id: int, seconds: float) -> None:
    """Move a retired version's retirement back in time (Redis TIME is the clock it is kept by)."""
    meta = "{" + namespace + "}:tiers"
    retired = int(await store._client.hget(meta, f"v{data_id}:retired"))
    await store._client.hset(meta, f"v{data_id}:retired", retired - round(seconds * 1000))


async def test_a_retired_version_is_dropped_by_a_later_reload_or_rollback_once_its_grace_is_over(
    server: str, links: list[RedisLink], tmp_path: Path
) -> None:
    namespace = new_namespace()
    one = RedisTierStore(new_link(server, links), namespace)
    for tier in ("mid", "vip", "blacklisted", "mid"):
        await one.reload_file(tier_file(tmp_path, tier), "csv")
    # Live 4, previous 3 (kept for rollback), 2 and 1 retired within grace: still readable.
    assert await data_ids(one, namespace) == {1, 2, 3, 4}
    await age(one, namespace, 1, GRACE_S)
    await age(one, namespace, 2, GRACE_S - 1)
    assert await one.rollback() == 5  # 3 live again, 4 retires now; 1 is past grace, 2 is not
    assert await data_ids(one, namespace) == {2, 3, 4}
    assert (await one.lookup(CALLERS[0])).tier == "blacklisted"
    await age(one, namespace, 2, 1)
    await age(one, namespace, 4, GRACE_S)
    await one.reload_file(tier_file(tmp_path, "vip"), "csv")  # 5 live, 3 previous, 2 and 4 past grace
    assert await data_ids(one, namespace) == {3, 5}
    meta = await one._client.hgetall("{" + namespace + "}:tiers")
    assert not any(name.startswith((b"v1:", b"v2:", b"v4:")) for name in meta)
    assert await one.count() == len(CALLERS)
