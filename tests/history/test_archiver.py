"""The archiver (issue 15 item 2): events move from each store to a real archive in batches,
exactly once; on Redis through a consumer group whose members share the work, acknowledge
only after commit, take over a dead member's pending batch and trim only what was acknowledged.
The stores are real (memory, a real Redis, the real 3-master cluster), the archives real
(SQLite files, PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from tests.conftest import CallStoreFactory, new_namespace, server_url
from tests.queue.helpers import T0, record
from tierline.queue.clock import ManualClock
from tierline.queue.errors import Conflict
from tierline.queue.history import events as ev
from tierline.queue.history.archive import Archive
from tierline.queue.history.archiver import Archiver, EventSource, MemorySource, adopt_epoch, next_retry
from tierline.queue.history.archiver_redis import RedisStreamSource, StreamFigures, dropped_of
from tierline.queue.history.sqlite_archive import SqliteArchive
from tierline.queue.memory_store import MemoryCallStore
from tierline.queue.policy import Policy, QueuePolicy
from tierline.queue.redis_link import RedisLink, connect
from tierline.queue.redis_store import RedisCallStore
from tierline.queue.store import CallStore
from tierline.tiers.model import Tier

POLICY = Policy(queues={"default": QueuePolicy(), "small": QueuePolicy(max_waiting=2)})
TIERS: tuple[Tier, ...] = ("vip", "mid", "standard")


async def drive(store: CallStore, clock: ManualClock, calls: int, prefix: str = "c") -> None:
    """Calls of every fate: answered and ended, abandoned (short and long), overflowed (mid
    callers get callbacks), so every event kind a call makes is in the trail."""
    for n in range(calls):
        call_id = f"{prefix}{n}"
        await store.route(call_id, record(f"+49{n:06d}", TIERS[n % 3]), "small" if n % 5 == 0 else "default")
        clock.advance(3)
        fate = n % 4
        if fate == 0:
            work = await store.next_work(f"a{n % 3}", ["default"])
            if work is not None and work.call is not None:
                clock.advance(2)
                await store.answer(work.call.call.call_id, f"a{n % 3}")
                clock.advance(30)
                await store.end(work.call.call.call_id)
        elif fate == 1:
            clock.advance(n % 20)
            with contextlib.suppress(Conflict):  # unless it overflowed at the door
                await store.abandon(call_id)
    clock.advance(400)  # past every overflow limit: the sweep overflows what still waits
    await store.sweep()


async def emitted(store: CallStore) -> list[ev.Event]:
    out: list[ev.Event] = []
    after = None
    while page := await store.read_events(after, 1000):
        out += page
        after = page[-1].id
    return out


def kinds(events: list[ev.Event]) -> Counter[str]:
    return Counter(ev.kind_of(e) for e in events)


def _source_of(store: CallStore) -> EventSource:
    if isinstance(store, MemoryCallStore):
        return MemorySource(store.events)
    assert isinstance(store, RedisCallStore)
    return RedisStreamSource(store._link, store._namespace)


async def archived(archive: Archive) -> list[ev.Event]:
    return await archive.events(0, 4e9)  # up to 2096


# --- pure parts -------------------------------------------------------------------------------


def test_retries_back_off_doubling_to_a_ceiling() -> None:
    pauses: list[float | None] = [None]
    for _ in range(8):
        pauses.append(next_retry(pauses[-1]))
    assert pauses[1:] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_drops_are_what_left_the_stream_unarchived() -> None:
    assert dropped_of(length=10, added=100, archived=90) == 0
    assert dropped_of(length=10, added=100, archived=60) == 30
    assert dropped_of(length=0, added=0, archived=0) == 0


# --- the memory store -------------------------------------------------------------------------


async def test_memory_store_events_reach_the_archive_once_in_batches(archive: Archive) -> None:
    clock = ManualClock(T0)
    store = MemoryCallStore(POLICY, clock)
    assert adopt_epoch(store.events, await archive.claim_epoch(T0))
    await drive(store, clock, 40)
    trail = await emitted(store)
    archiver = Archiver(MemorySource(store.events), archive, batch=7)
    assert await archiver.drain() == len(trail)
    assert archiver.figures.archived == len(trail) and archiver.figures.batches >= len(trail) // 7
    assert (archiver.figures.lag, archiver.figures.dropped) == (0, 0)
    stored = await archived(archive)
    assert sorted(e.id for e in stored) == [e.id for e in trail]
    assert kinds(stored) == kinds(trail)


async def test_a_failed_ingest_keeps_the_memory_batch_and_sends_it_again(tmp_path: object) -> None:
    archive = SqliteArchive(f"{tmp_path}/h.db")
    await archive.open()
    clock = ManualClock(T0)
    store = MemoryCallStore(POLICY, clock)
    await drive(store, clock, 10)
    total = store.events.last_seq
    archiver = Archiver(MemorySource(store.events), archive, batch=5)
    await archiver.step()
    await archive.close()  # the archive goes away mid-run
    with pytest.raises(RuntimeError):
        await archiver.step()
    await drive(store, clock, 3, prefix="late")  # routing goes on meanwhile
    await archive.open()
    await archiver.drain()
    assert await archive.count_events() == store.events.last_seq > total
    assert archiver.figures.lag == 0
    await archive.close()


async def test_a_restarted_memory_store_takes_an_epoch_above_every_archived_one(archive: Archive) -> None:
    clock = ManualClock(T0)
    first = MemoryCallStore(POLICY, clock)
    adopt_epoch(first.events, await archive.claim_epoch(T0))
    await drive(first, clock, 3)
    await Archiver(MemorySource(first.events), archive).drain()
    clock.set(T0 - 3600)  # the clock stepped back before the restart
    second = MemoryCallStore(POLICY, clock)
    assert adopt_epoch(second.events, await archive.claim_epoch(clock.now()))
    assert second.events.epoch > first.events.epoch
    await drive(second, clock, 3, prefix="r")
    await Archiver(MemorySource(second.events), archive).drain()
    assert await archive.count_events() == first.events.last_seq + second.events.last_seq
    assert not adopt_epoch(second.events, 1)  # ids already handed out keep theirs


# --- the Redis stream ---------------------------------------------------------------------------


@pytest.fixture(params=["redis", "cluster"])
async def redis_store(request: pytest.FixtureRequest) -> AsyncIterator[tuple[RedisCallStore, RedisLink, str]]:
    url = server_url(request, str(request.param))
    link = RedisLink(connect(url, 2.0), timeout_s=2.0)
    namespace = new_namespace()
    store = RedisCallStore(link, POLICY, ManualClock(T0), namespace)
    await store.open()
    yield store, link, namespace
    await link.close()


def source(link: RedisLink, namespace: str, name: str, claim_idle_s: float = 30.0) -> RedisStreamSource:
    return RedisStreamSource(link, namespace, consumer=name, claim_idle_s=claim_idle_s)


async def test_archivers_in_one_group_share_the_stream_and_trim_what_they_acked(
    redis_store: tuple[RedisCallStore, RedisLink, str], archive: Archive
) -> None:
    store, link, namespace = redis_store
    assert isinstance(store.clock, ManualClock)
    await drive(store, store.clock, 30)
    trail = await emitted(store)
    one = Archiver(source(link, namespace, "one"), archive, batch=9)
    two = Archiver(source(link, namespace, "two"), archive, batch=9)
    while await one.step() + await two.step():
        pass
    assert one.figures.sent > 0 and two.figures.sent > 0  # both took a share
    assert one.figures.sent + two.figures.sent == len(trail)
    assert sorted(e.id for e in await archived(archive)) == [e.id for e in trail]
    # Everything acknowledged was trimmed, nothing counts as dropped.
    assert await StreamFigures(link, namespace).read() == (0, 0)
    assert await store.events_dropped() == 0
    # New events after the trim go on from where the stream was.
    await drive(store, store.clock, 4, prefix="more")
    more = await emitted(store)
    await one.drain()
    assert more and more[0].id > trail[-1].id
    assert await archive.count_events() == len(more) + len(trail)


async def test_a_dead_consumers_pending_batch_is_taken_over_and_stored_once(
    redis_store: tuple[RedisCallStore, RedisLink, str], sqlite_archive: Archive
) -> None:
    archive = sqlite_archive  # the group's logic; both archives' idempotence is test_archive.py's
    store, link, namespace = redis_store
    assert isinstance(store.clock, ManualClock)
    await drive(store, store.clock, 12)
    trail = await emitted(store)
    dead = Archiver(source(link, namespace, "dead"), archive, batch=10)
    await dead.source.start()
    batch = await dead.source.fetch(10)  # read, and (say) committed, but never acknowledged
    await archive.ingest(batch.events)
    survivor = Archiver(source(link, namespace, "survivor", claim_idle_s=0.0), archive, batch=10)
    await survivor.drain()
    stored = await archived(archive)
    assert sorted(e.id for e in stored) == [e.id for e in trail]
    assert survivor.figures.sent == len(trail)  # the claimed batch went again, the archive kept it once
    assert survivor.figures.archived == len(trail) - len(batch.events)
    assert (survivor.figures.lag, survivor.figures.dropped) == (0, 0)


async def test_events_past_the_cap_are_dropped_and_counted(
    redis_store: tuple[RedisCallStore, RedisLink, str], sqlite_archive: Archive
) -> None:
    archive = sqlite_archive  # the group's logic; both archives' idempotence is test_archive.py's
    store, link, namespace = redis_store
    assert isinstance(store.clock, ManualClock)
    await drive(store, store.clock, 10)
    archiver = Archiver(source(link, namespace, "a"), archive, batch=5)
    await archiver.drain()
    before = await archive.count_events()
    await drive(store, store.clock, 10, prefix="x")
    held = await emitted(store)
    # The engine's cap (XADD MAXLEN ~) trims the same way: the oldest entries go, archived or not.
    await link.client.xtrim(store._events_key, maxlen=4, approximate=False)
    await archiver.drain()
    assert archiver.figures.dropped == len(held) - 4
    assert await store.events_dropped() == len(held) - 4
    assert await archive.count_events() == before + 4


async def test_a_failed_ingest_is_not_acknowledged_and_goes_again(
    redis_store: tuple[RedisCallStore, RedisLink, str], tmp_path: object
) -> None:
    store, link, namespace = redis_store
    assert isinstance(store.clock, ManualClock)
    archive = SqliteArchive(f"{tmp_path}/h.db")
    await drive(store, store.clock, 6)
    archiver = Archiver(source(link, namespace, "a"), archive, batch=1000)
    with pytest.raises(RuntimeError):  # the archive is not open
        await archiver.step()
    pending = await link.client.xpending(store._events_key, "tierline-archive")
    assert pending["pending"] == len(await emitted(store))  # delivered, not acknowledged
    await archive.open()
    stop = asyncio.Event()
    task = asyncio.create_task(archiver.run(stop))
    for _ in range(200):
        if archiver.figures.lag == 0 and archiver.figures.sent:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await task
    assert await archive.count_events() == archiver.figures.sent
    assert (await link.client.xpending(store._events_key, "tierline-archive"))["pending"] == 0
    await archive.close()


# --- a second overflow of the same caller (issue 15 item 1) -----------------------------------


async def test_a_second_overflow_joins_the_callback_and_shows_in_the_calls_timeline(
    make_call_store: CallStoreFactory, sqlite_archive: Archive
) -> None:
    clock = ManualClock(T0)
    store = make_call_store.build(POLICY, clock)
    if isinstance(store, RedisCallStore):
        await store.open()
    for call_id in ("s1", "s2"):  # the small queue full of standard callers
        await store.route(call_id, record(f"+1{call_id}"), "small")
    first, _ = await store.route("m1", record("+4977", "mid"), "small")  # full: overflows, a callback
    clock.advance(60)
    second, _ = await store.route("m2", record("+4977", "mid"), "small")  # again: the same callback
    assert first.callback is not None and second.call.callback_id == first.callback.callback_id
    callback_id = first.callback.callback_id
    created = [e for e in await emitted(store) if isinstance(e, ev.CallbackCreated)]
    assert [(e.call_id, e.callback_id, e.merged) for e in created] == [
        ("m1", callback_id, False),
        ("m2", callback_id, True),
    ]
    assert created[1].deadline == created[0].deadline  # the earlier of the two
    await Archiver(_source_of(store), sqlite_archive).drain()
    tallies = await sqlite_archive.interval_tallies(0, 2**31)
    assert sum(t.tally.callbacks_created for t in tallies) == 1  # one callback, however many calls joined it
    timeline = await sqlite_archive.call_events("m2")
    assert {e.callback_id for e in timeline} == {None, callback_id} and len(timeline) > 2
