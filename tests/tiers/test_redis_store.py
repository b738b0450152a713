"""The Redis tier store on a real Redis and a real 3-master cluster: look-ups, edits, versioned reloads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import new_namespace
from tierline.queue.redis_link import RedisLink, connect
from tierline.tiers.redis_store import RedisTierStore


@pytest.fixture
async def stores(server: str, links: list[RedisLink]) -> list[RedisTierStore]:
    """Two stores on one namespace, as two router processes would have."""
    namespace = new_namespace()
    out = []
    for _ in range(2):
        link = RedisLink(connect(server, 1.0), timeout_s=1.0)
        links.append(link)
        out.append(RedisTierStore(link, namespace))
    return out


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


async def test_reload_then_lookup_from_another_process(stores: list[RedisTierStore], tmp_path: Path) -> None:
    one, other = stores
    text = "caller,tier,customer_id,name\n+8613800000001,VIP,C-1,Li Na\n8613800000002,mid,C-2,\n"
    path = write(tmp_path, "t.csv", text)
    result = await one.reload_file(path, "csv")
    assert (result.version, result.loaded, result.swapped) == (1, 2, True)
    vip = await other.lookup("+8613800000001")
    assert (vip.tier, vip.known, vip.crm) == ("vip", True, {"customer_id": "C-1", "name": "Li Na"})
    assert (await other.lookup("8613800000002")).crm == {"customer_id": "C-2"}
    unknown = await other.lookup("+4930123456")
    assert (unknown.tier, unknown.known, unknown.degraded) == ("standard", False, False)
    assert await other.count() == 2
    assert await other.version() == 1


async def test_edits_apply_to_the_live_version_and_count(stores: list[RedisTierStore], tmp_path: Path) -> None:
    one, other = stores
    await one.reload_file(write(tmp_path, "t.csv", "caller,tier\n+111222333,standard\n"), "csv")
    record = await one.put("+86 138-0000-0009", "vip", {"customer_id": "C-9", "region": "Hubei", "empty": ""})
    assert (record.caller, record.tier) == ("+8613800000009", "vip")
    assert record.crm == {"customer_id": "C-9", "region": "Hubei"}
    found = await other.lookup("+8613800000009")
    assert (found.tier, found.crm) == ("vip", {"customer_id": "C-9", "region": "Hubei"})
    assert await other.count() == 2
    assert await other.delete("+8613800000009") is True
    assert await other.delete("+8613800000009") is False
    assert (await one.lookup("+8613800000009")).known is False
    assert await one.count() == 1
    assert await one.version() == 1  # edits are not swaps


async def test_a_file_over_the_reject_ratio_changes_nothing(stores: list[RedisTierStore], tmp_path: Path) -> None:
    one, _ = stores
    await one.reload_file(write(tmp_path, "good.csv", "caller,tier\n+111222333,vip\n"), "csv")
    bad = write(tmp_path, "bad.csv", "caller,tier\n+111222333,standard\nnot-a-number,vip\n+222333444,gold\n")
    result = await one.reload_file(bad, "csv")
    assert result.swapped is False
    assert [r.line for r in result.rejected] == [3, 4]
    assert result.rejected_count == 2
    assert (await one.lookup("+111222333")).tier == "vip"
    assert await one.version() == 1


async def test_rollback_restores_the_previous_table_then_there_is_none(
    stores: list[RedisTierStore], tmp_path: Path
) -> None:
    one, other = stores
    await one.reload_file(write(tmp_path, "a.csv", "caller,tier\n+111222333,vip\n"), "csv")
    await one.reload_file(write(tmp_path, "b.csv", "caller,tier\n+111222333,blacklisted\n+222333444,mid\n"), "csv")
    assert (await other.lookup("+111222333")).tier in ("blacklisted", "vip")  # other may hold meta ≤ 1 s
    assert (await one.lookup("+111222333")).tier == "blacklisted"
    assert await one.rollback() == 3
    assert (await one.lookup("+111222333")).tier == "vip"
    assert (await one.lookup("+222333444")).known is False
    assert await one.count() == 1
    assert await one.rollback() is None


async def test_lookups_during_a_reload_always_answer_old_or_new(stores: list[RedisTierStore], tmp_path: Path) -> None:
    one, other = stores
    callers = [f"+8613{i:09d}" for i in range(20_000)]
    old = write(tmp_path, "old.csv", "caller,tier\n" + "".join(f"{c},mid\n" for c in callers))
    new = write(tmp_path, "new.csv", "caller,tier\n" + "".join(f"{c},vip\n" for c in callers))
    await one.reload_file(old, "csv")
    seen: set[str] = set()
    done = asyncio.Event()

    async def look() -> None:
        i = 0
        while not done.is_set():
            record = await other.lookup(callers[i % len(callers)])
            assert record.known, "a look-up during a reload found nothing"
            seen.add(record.tier)
            other._meta = None if i % 50 == 0 else other._meta  # re-read the meta often
            i += 7

    looker = asyncio.create_task(look())
    result = await one.reload_file(new, "csv")
    await asyncio.sleep(0.05)
    other._meta = None
    await asyncio.sleep(0.05)
    done.set()
    await looker
    assert result.swapped
    assert seen <= {"mid", "vip"} and "vip" in seen
    assert (await other.lookup(callers[0])).tier == "vip"


async def test_one_reload_at_a_time(stores: list[RedisTierStore], tmp_path: Path) -> None:
    one, other = stores
    path = write(tmp_path, "t.csv", "caller,tier\n" + "".join(f"+8613{i:09d},mid\n" for i in range(50_000)))
    first = asyncio.create_task(one.reload_file(path, "csv"))
    lock = "{" + one._ns + "}:tiers:lock"
    for _ in range(2000):  # until the first reload holds the lock
        if await other._client.exists(lock):
            break
        await asyncio.sleep(0.005)
    from tierline.queue.errors import Conflict

    with pytest.raises(Conflict) as refused:
        await other.reload_file(path, "csv")
    assert refused.value.code == "reload_in_progress"
    assert (await first).swapped
