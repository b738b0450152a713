"""The in-process tier store: look-ups, single edits, and whole-table reloads from real files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tierline.tiers.memory import MemoryTierStore
from tierline.tiers.model import TierRecord
from tierline.tiers.parse import BadTierFile, Rejection
from tierline.tiers.phone import InvalidCaller
from tierline.tiers.reload import ReloadResult
from tierline.tiers.store import TierStore

pytestmark = pytest.mark.asyncio


def caller(i: int) -> str:
    return f"+86139{i:08d}"


def write_csv(path: Path, rows: int, tier: str, tag: str) -> Path:
    with path.open("w") as out:
        out.write("caller,tier,customer_id\n")
        out.writelines(f"{caller(i)},{tier},{tag}{i}\n" for i in range(rows))
    return path


async def test_memory_store_is_a_tier_store() -> None:
    store: TierStore = MemoryTierStore()  # what mypy checks; at run time, that it answers
    assert (await store.lookup("111222")).known is False


async def test_an_unknown_caller_gets_the_default_tier() -> None:
    assert await MemoryTierStore().lookup("111222") == TierRecord(caller="111222", tier="standard", known=False, crm={})
    assert (await MemoryTierStore(default_tier="mid").lookup("111222")).tier == "mid"


async def test_put_and_delete_edit_single_callers() -> None:
    store = MemoryTierStore()
    put = await store.put("+86 139 1234 5678", "vip", {"customer_id": "C1", "name": ""})
    assert put == TierRecord(caller="+8613912345678", tier="vip", crm={"customer_id": "C1"})
    assert await store.lookup("+8613912345678") == put
    assert (await store.put("+8613912345678", "blacklisted")).crm == {}
    assert await store.lookup("+8613912345678") == TierRecord(caller="+8613912345678", tier="blacklisted")
    assert await store.count() == 1
    assert await store.version() == 0  # single edits are not reloads
    assert await store.delete("0086 139 1234 5678") is True
    assert await store.delete("+8613912345678") is False
    assert (await store.lookup("+8613912345678")).known is False
    assert await store.count() == 0


async def test_put_refuses_a_number_no_lookup_could_find() -> None:
    with pytest.raises(InvalidCaller):
        await MemoryTierStore().put("not a number", "vip")


async def test_a_reload_replaces_the_table_and_edits_last_until_then(tmp_path: Path) -> None:
    store = MemoryTierStore()
    first = await store.reload_file(write_csv(tmp_path / "a.csv", 3, "vip", "A"), "csv")
    assert first == ReloadResult(version=1, loaded=3, rejected=[], rejected_count=0, swapped=True)
    await store.put(caller(0), "blacklisted", {"note": "abusive"})
    await store.put("999888777", "mid")
    assert await store.lookup(caller(0)) == TierRecord(caller=caller(0), tier="blacklisted", crm={"note": "abusive"})

    second = await store.reload_file(write_csv(tmp_path / "b.csv", 2, "mid", "B"), "csv")
    assert (second.version, second.loaded, second.swapped) == (2, 2, True)
    assert await store.lookup(caller(0)) == TierRecord(caller=caller(0), tier="mid", crm={"customer_id": "B0"})
    assert (await store.lookup(caller(2))).known is False
    assert (await store.lookup("999888777")).known is False
    assert await store.count() == 2


async def test_a_reload_from_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "tiers.ndjson"
    path.write_text('{"caller": "111222", "tier": "VIP", "customer_id": 42}\n\n{"caller": "x", "tier": "vip"}\n')
    result = await MemoryTierStore(max_reject_ratio=0.5).reload_file(path, "ndjson")
    assert (result.loaded, result.rejected_count, result.swapped) == (1, 1, True)
    assert result.rejected[0].line == 3


async def test_a_broken_file_keeps_the_old_table_and_version(tmp_path: Path) -> None:
    store = MemoryTierStore()
    await store.reload_file(write_csv(tmp_path / "good.csv", 5, "vip", "G"), "csv")
    broken = tmp_path / "broken.csv"
    broken.write_text("caller,customer_id\n111222,C1\n")
    with pytest.raises(BadTierFile, match="no tier column"):
        await store.reload_file(broken, "csv")
    with pytest.raises(FileNotFoundError):
        await store.reload_file(tmp_path / "missing.csv", "csv")
    assert await store.version() == 1
    assert await store.count() == 5
    assert (await store.lookup(caller(4))).crm == {"customer_id": "G4"}


async def test_a_file_over_the_reject_ratio_changes_nothing(tmp_path: Path) -> None:
    store = MemoryTierStore(max_reject_ratio=0.01)
    await store.reload_file(write_csv(tmp_path / "good.csv", 5, "vip", "G"), "csv")
    path = write_csv(tmp_path / "bad.csv", 99, "mid", "B")
    with path.open("a") as out:
        out.write("12,mid,short\n")  # 1 bad row in 100: still swaps
    assert (await store.reload_file(path, "csv")).swapped is True
    with path.open("a") as out:
        out.write("34,mid,short\n")  # 2 in 101: over 1%
    result = await store.reload_file(path, "csv")
    assert result.swapped is False
    assert result.version == 2 == await store.version()
    assert (result.loaded, result.rejected_count) == (99, 2)
    assert result.rejected[1] == Rejection(line=102, reason="caller number '34' has 2 digits; at least 3 are needed")
    assert (await store.lookup(caller(0))).tier == "mid"  # still the table of the swap before
    assert await store.count() == 99


async def test_an_empty_file_never_wipes_the_table(tmp_path: Path) -> None:
    store = MemoryTierStore(max_reject_ratio=1.0)
    await store.reload_file(write_csv(tmp_path / "good.csv", 5, "vip", "G"), "csv")
    result = await store.reload_file(write_csv(tmp_path / "empty.csv", 0, "vip", "E"), "csv")
    assert (result.swapped, result.version, await store.count()) == (False, 1, 5)


async def test_concurrent_reloads_take_turns(tmp_path: Path) -> None:
    store = MemoryTierStore()
    a = write_csv(tmp_path / "a.csv", 1000, "vip", "A")
    b = write_csv(tmp_path / "b.csv", 1000, "mid", "B")
    results = await asyncio.gather(store.reload_file(a, "csv"), store.reload_file(b, "csv"))
    assert sorted(result.version for result in results) == [1, 2]
    assert await store.version() == 2


async def test_lookups_during_a_reload_see_the_old_or_the_new_table_never_neither(tmp_path: Path) -> None:
    rows = 200_000
    store = MemoryTierStore()
    old = write_csv(tmp_path / "old.csv", rows, "vip", "OLD")
    new = write_csv(tmp_path / "new.csv", rows, "mid", "NEW")
    assert (await store.reload_file(old, "csv")).version == 1

    reload = asyncio.create_task(store.reload_file(new, "csv"))
    answered_during_reload = 0
    seen_new = False
    i = 0
    while not reload.done():
        i = (i + 7919) % rows
        record = await store.lookup(caller(i))
        # Tier and CRM always come from the same table: old with old, new with new.
        assert record in (
            TierRecord(caller=caller(i), tier="vip", crm={"customer_id": f"OLD{i}"}),
            TierRecord(caller=caller(i), tier="mid", crm={"customer_id": f"NEW{i}"}),
        )
        if record.tier == "mid":
            seen_new = True
        else:
            assert not seen_new, "the old table came back after the new one was seen"
        answered_during_reload += 1
        await asyncio.sleep(0)

    result = await reload
    assert result == ReloadResult(version=2, loaded=rows, rejected=[], rejected_count=0, swapped=True)
    # The parse ran in a worker thread: the event loop kept answering all along.
    assert answered_during_reload >= 10
    for j in range(0, rows, 997):
        assert (await store.lookup(caller(j))).crm == {"customer_id": f"NEW{j}"}
    assert await store.count() == rows


async def test_the_reject_ratio_must_be_a_ratio() -> None:
    with pytest.raises(ValueError, match="max_reject_ratio"):
        MemoryTierStore(max_reject_ratio=2.0)
