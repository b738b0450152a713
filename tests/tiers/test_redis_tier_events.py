"""The Redis tier store's history events on a real Redis and a real 3-master cluster (issue 15
item 1): `tiers_reloaded` appended by the switch script itself, `tier_edited` through the
bucket's outbox, moved to the event stream once even when moved twice or left by a process
that died between its edit and its move. Read back through the call store's own reader."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import new_namespace
from tierline.queue.clock import ManualClock
from tierline.queue.history import events as ev
from tierline.queue.policy import Policy
from tierline.queue.redis_keys import tier_edits_key, tier_outbox_key
from tierline.queue.redis_link import RedisLink, connect
from tierline.queue.redis_store import RedisCallStore
from tierline.tiers import codec
from tierline.tiers.model import TIER_RANK, TIERS
from tierline.tiers.redis_store import RedisTierStore


async def _stores(server: str, links: list[RedisLink]) -> tuple[RedisTierStore, RedisCallStore]:
    link = RedisLink(connect(server, 2.0), timeout_s=2.0)
    links.append(link)
    namespace = new_namespace()
    calls = RedisCallStore(link, Policy(), ManualClock(), namespace)
    await calls.open()
    return RedisTierStore(link, namespace), calls


async def _tier_events(calls: RedisCallStore) -> list[ev.Event]:
    return [e for e in await calls.read_events(None, 1000) if isinstance(e, ev.TiersReloaded | ev.TierEdited)]


async def test_reloads_and_rollbacks_append_tiers_reloaded(server: str, links: list[RedisLink], tmp_path: Path) -> None:
    tiers, calls = await _stores(server, links)
    first = tmp_path / "a.csv"
    first.write_text("caller,tier\n+4930111,vip\n+4930222,vip\n+4930333,mid\n")
    second = tmp_path / "b.csv"
    second.write_text("caller,tier\n+4930444,standard\n")
    await tiers.reload_file(first, "csv")
    await tiers.reload_file(second, "csv")
    assert await tiers.rollback() == 3
    reloads = await _tier_events(calls)
    assert [(e.version, e.counts) for e in reloads if isinstance(e, ev.TiersReloaded)] == [
        ("1", {"vip": 2, "mid": 1, "standard": 0, "blacklisted": 0}),
        ("2", {"vip": 0, "mid": 0, "standard": 1, "blacklisted": 0}),
        ("3", {"vip": 2, "mid": 1, "standard": 0, "blacklisted": 0}),  # the rollback: the first table again
    ]
    assert [e.id for e in reloads] == sorted(e.id for e in reloads)


async def test_edits_append_tier_edited_once_each(server: str, links: list[RedisLink], tmp_path: Path) -> None:
    tiers, calls = await _stores(server, links)
    await tiers.put("+4930555", "mid")
    await tiers.put("+4930555", "mid")  # the same record again: no change, no event
    await tiers.put("+4930555", "vip", {"name": "Ada"})
    assert await tiers.delete("+4930555")
    assert not await tiers.delete("+4930555")
    edits = [e for e in await _tier_events(calls) if isinstance(e, ev.TierEdited)]
    assert [(e.caller, e.tier, e.edit, e.version) for e in edits] == [
        ("+4930555", "mid", "added", "0"),
        ("+4930555", "vip", "changed", "0"),
        ("+4930555", "vip", "removed", "0"),
    ]
    assert await tiers.count() == 0


async def test_an_outbox_left_behind_is_moved_once(server: str, links: list[RedisLink]) -> None:
    tiers, calls = await _stores(server, links)
    await tiers.put("+4930666", "standard")  # makes the table; its event moves at once
    meta = await tiers._current(force=True)
    bucket = tiers._key_of(meta, "+4930777")
    outbox = tier_outbox_key(bucket)
    box = tiers._outbox
    # A process that died right after its edit's script: the event waits in the outbox.
    blob = codec.encode(TIER_RANK["vip"], [])
    await box._link.client.sadd(box._index, outbox)
    await box._edit(keys=[bucket, outbox, tier_edits_key(bucket)], args=["put", "+4930777", blob, "tok-1", "0", *TIERS])
    assert [e.caller for e in await _tier_events(calls)] == ["+4930666"]
    entries = await box._link.client.lrange(outbox, 0, -1)
    # Two movers at once: the entry is appended once.
    assert await box._move(keys=box._stream_keys, args=entries) == 1
    assert await box._move(keys=box._stream_keys, args=entries) == 0
    # Another left behind, never moved: the sweep finds it through the outbox list.
    other = tiers._key_of(meta, "+4930888")
    await box._link.client.sadd(box._index, tier_outbox_key(other))
    await box._edit(
        keys=[other, tier_outbox_key(other), tier_edits_key(other)],
        args=["put", "+4930888", blob, "tok-2", "0", *TIERS],
    )
    assert await tiers.move_outboxes() == 1  # the first was moved already: only the second now
    for key in (outbox, tier_outbox_key(other)):
        assert await box._link.client.llen(key) == 0
        assert not await box._link.client.sismember(box._index, key)
    edits = [e for e in await _tier_events(calls) if isinstance(e, ev.TierEdited)]
    assert [(e.caller, e.edit) for e in edits] == [
        ("+4930666", "added"),
        ("+4930777", "added"),
        ("+4930888", "added"),
    ]
