"""The engines' event trail (issue 15 item 1) on the memory store, a real Redis and a real Redis
Cluster: each change emits exactly its event, in the same step, with its figures; a refused or
repeated request emits nothing; ids increase; the tallies rebuilt from the events equal the
engine's own service-level figures."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import CallStoreFactory
from tests.queue.helpers import T0, counter_ids, record
from tierline.queue import service_level as sl
from tierline.queue.clock import ManualClock
from tierline.queue.errors import Conflict
from tierline.queue.history import events as ev
from tierline.queue.history import tallies
from tierline.queue.memory_store import MemoryCallStore
from tierline.queue.policy import Policy, QueuePolicy
from tierline.queue.redis_store import RedisCallStore
from tierline.queue.store import CallStore
from tierline.tiers.memory import MemoryTierStore
from tierline.tiers.model import TIERS, Tier

POLICY = Policy(queues={"small": QueuePolicy(max_waiting=1)})


async def _store(make_call_store: CallStoreFactory, clock: ManualClock) -> CallStore:
    store = make_call_store.build(POLICY, clock, new_id=counter_ids())
    if isinstance(store, RedisCallStore):
        await store.open()
    return store


async def _all_events(store: CallStore) -> list[ev.Event]:
    out: list[ev.Event] = []
    after = None
    while page := await store.read_events(after, 4):  # small pages: the cursor is exercised too
        out += page
        after = page[-1].id
    return out


def _row(e: ev.Event) -> tuple[Any, ...]:
    return (ev.kind_of(e), e.call_id, e.callback_id, e.agent)


async def test_a_scripted_day_emits_exactly_its_events(make_call_store: CallStoreFactory) -> None:
    clock = ManualClock(T0)
    store = await _store(make_call_store, clock)
    await store.route("c1", record("+1"), "default")
    await store.next_work("a1", ["default"])
    clock.advance(30)  # the offer times out: ring-no-answer
    await store.sweep()
    await store.next_work("a2", ["default"])
    clock.advance(5)
    await store.answer("c1", "a2")
    clock.advance(100)
    await store.end("c1")
    await store.route("c2", record("+2"), "default")
    clock.advance(2)
    await store.abandon("c2")  # short
    await store.route("c3", record("+3", "mid"), "default")
    clock.advance(10)
    await store.abandon("c3")  # long: a mid caller gets a callback
    await store.route("c4", record("+4"), "small")
    await store.route("c5", record("+5", "mid"), "small")  # full: overflows at once
    await store.route("c6", record("+6", "mid"), "default")
    clock.advance(60)  # mid's overflow_after_s
    await store.sweep()
    work = await store.next_work("a3", ["default"])
    assert work is not None and work.callback is not None and work.callback.callback_id == "cb-1"
    await store.callback_outcome("cb-1", "completed", "a3", None)
    await store.next_work("a4", ["default"])  # cb-3, c6's
    await store.callback_outcome("cb-3", "no_answer", "a4", None)  # retried later: not closed
    await store.route("c7", record("+6", "mid"), "default")  # the same caller gets through
    await store.next_work("a5", ["default"])
    await store.answer("c7", "a5")  # resolves cb-3

    before = await _all_events(store)
    # Refused and repeated requests change nothing and emit nothing.
    with pytest.raises(Conflict):
        await store.answer("c1", "a9")
    with pytest.raises(Conflict):
        await store.callback_outcome("cb-3", "completed", "a4", None)
    await store.abandon("c2")  # a repeated hang-up: answered as it is
    await store.callback_outcome("cb-1", "completed", "a3", None)  # a retried outcome
    await store.route("c1", record("+1"), "default")  # a retried route
    await store.sweep()
    events = await _all_events(store)
    assert events == before

    assert [_row(e) for e in events] == [
        ("enter", "c1", None, None),
        ("offer", "c1", None, "a1"),
        ("ring_no_answer", "c1", None, "a1"),
        ("offer", "c1", None, "a2"),
        ("answer", "c1", None, "a2"),
        ("end", "c1", None, "a2"),
        ("enter", "c2", None, None),
        ("abandon", "c2", None, None),
        ("enter", "c3", None, None),
        ("abandon", "c3", None, None),
        ("callback_created", "c3", "cb-1", None),
        ("enter", "c4", None, None),
        ("enter", "c5", None, None),
        ("overflow", "c5", None, None),
        ("callback_created", "c5", "cb-2", None),
        ("enter", "c6", None, None),
        ("overflow", "c6", None, None),
        ("callback_created", "c6", "cb-3", None),
        ("callback_assigned", "c3", "cb-1", "a3"),
        ("callback_outcome", "c3", "cb-1", "a3"),
        ("callback_closed", "c3", "cb-1", "a3"),
        ("callback_assigned", "c6", "cb-3", "a4"),
        ("callback_outcome", "c6", "cb-3", "a4"),
        ("enter", "c7", None, None),
        ("offer", "c7", None, "a5"),
        ("answer", "c7", None, "a5"),
        ("callback_closed", "c6", "cb-3", None),
    ]
    ids = [e.id for e in events]
    assert ids == sorted(set(ids)) and len({i.epoch for i in ids}) == 1
    assert [i.seq for i in ids] == list(range(ids[0].seq, ids[0].seq + len(ids)))

    e = {(_row(x)[0], x.call_id or "", x.agent or ""): x for x in events}
    t1 = T0
    assert e["enter", "c1", ""] == ev.Enter(
        id=ids[0], at=t1, call_id="c1", caller="+1", tier="standard", queue="default", position=1
    )
    assert e["ring_no_answer", "c1", "a1"].at == t1 + 30
    assert e["answer", "c1", "a2"] == ev.Answer(
        id=e["answer", "c1", "a2"].id,
        at=t1 + 35,
        call_id="c1",
        caller="+1",
        tier="standard",
        queue="default",
        agent="a2",
        wait_s=35.0,
        threshold_s=20.0,
    )
    assert e["end", "c1", "a2"] == ev.End(
        id=e["end", "c1", "a2"].id,
        at=t1 + 135,
        call_id="c1",
        caller="+1",
        tier="standard",
        queue="default",
        agent="a2",
        handle_s=100.0,
    )
    short, long = e["abandon", "c2", ""], e["abandon", "c3", ""]
    assert isinstance(short, ev.Abandon) and isinstance(long, ev.Abandon)
    assert (short.wait_s, short.short, short.threshold_s) == (2.0, True, 20.0)
    assert (long.wait_s, long.short, long.tier) == (10.0, False, "mid")
    assert e["enter", "c4", ""] == ev.Enter(
        id=e["enter", "c4", ""].id, at=t1 + 147, call_id="c4", caller="+4", tier="standard", queue="small", position=1
    )
    door = e["enter", "c5", ""]
    assert isinstance(door, ev.Enter) and door.position == 0
    full, timed = e["overflow", "c5", ""], e["overflow", "c6", ""]
    assert isinstance(full, ev.Overflow) and (full.reason, full.wait_s, full.at) == ("queue_full", 0.0, t1 + 147)
    assert isinstance(timed, ev.Overflow) and (timed.reason, timed.wait_s, timed.at) == ("max_wait", 60.0, t1 + 207)
    created = [x for x in events if isinstance(x, ev.CallbackCreated)]
    assert [(c.reason, c.deadline, c.caller, c.queue) for c in created] == [
        ("abandoned", t1 + 147 + 86400, "+3", "default"),
        ("queue_full", t1 + 147 + 86400, "+5", "small"),
        ("max_wait", t1 + 207 + 86400, "+6", "default"),
    ]
    assigned = [x for x in events if isinstance(x, ev.CallbackAssigned)]
    assert [a.attempt for a in assigned] == [1, 1]
    outcomes = [x for x in events if isinstance(x, ev.CallbackOutcomeEvent)]
    assert [(o.outcome, o.attempts) for o in outcomes] == [("completed", 1), ("no_answer", 1)]
    closed = [x for x in events if isinstance(x, ev.CallbackClosed)]
    assert [(c.reason, c.deadline, c.at) for c in closed] == [
        ("completed", t1 + 147 + 86400, t1 + 207),
        ("resolved_inbound", t1 + 207 + 86400, t1 + 207),
    ]
    assert await store.events_dropped() == 0


async def test_reading_after_an_id_and_a_second_open_keeps_ids_increasing(
    make_call_store: CallStoreFactory, store_kind: str
) -> None:
    clock = ManualClock(T0)
    store = await _store(make_call_store, clock)
    for n in range(5):
        await store.route(f"c{n}", record(f"+{n}"), "default")
    events = await _all_events(store)
    assert [x.call_id for x in await store.read_events(events[1].id, 2)] == ["c2", "c3"]
    assert await store.read_events(events[-1].id, 10) == []
    if isinstance(store, RedisCallStore):
        # Another process opening the same store takes a later epoch: the stream's ids still increase.
        first_epoch = store.epoch
        await store.open()
        assert store.epoch is not None and first_epoch is not None and store.epoch > first_epoch
        await store.route("c9", record("+9"), "default")
        later = await _all_events(store)
        assert later[:-1] == events and later[-1].id > events[-1].id and later[-1].id.epoch == store.epoch


async def test_memory_buffer_drops_the_oldest_when_full_and_drains() -> None:
    clock = ManualClock(T0)
    store = MemoryCallStore(POLICY, clock, epoch=7, event_cap=3)
    for n in range(5):
        await store.route(f"c{n}", record(f"+{n}"), "default")  # routing never stops
    assert await store.events_dropped() == 2
    assert [x.call_id for x in store.drain_events(2)] == ["c2", "c3"]
    assert [(x.id, x.call_id) for x in await store.read_events(None, 10)] == [(ev.EventId(7, 5), "c4")]


# --- tallies from events equal the engine's own ------------------------------------------------

Step = tuple[str, int, float]  # action, call number, seconds to advance first

STEPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["route", "route_mid", "route_vip", "next", "answer", "abandon", "end", "outcome", "callback", "recall"]
        ),
        st.integers(0, 7),
        st.sampled_from([0.0, 1.0, 4.0, 15.0, 25.0, 70.0]),
    ),
    max_size=40,
)
TIER_OF: dict[str, Tier] = {"route": "standard", "route_mid": "mid", "route_vip": "vip"}


# Callers may take the callback offer, and an abandon may be taken back by a re-call (issue 16
# items 3 and 4): the archive counts both as the ledger does, a short abandon taken back too.
RESUMING = msgspec.structs.replace(POLICY, resume_window_s=100.0)


async def _play(store: MemoryCallStore, clock: ManualClock, steps: list[Step]) -> None:
    for k, (action, n, wait) in enumerate(steps):
        clock.advance(wait)
        try:
            if action in TIER_OF:
                await store.route(f"c{n}", record(f"+{n}", TIER_OF[action]), "small" if n % 3 == 0 else "default")
            elif action == "recall":  # the same caller again, as a new call: takes back an abandon in the window
                await store.route(f"c{n}-{k}", record(f"+{n}"), "small" if n % 3 == 0 else "default")
            elif action == "callback":
                await store.request_callback(f"c{n}")
            elif action == "next":
                await store.next_work(f"a{n % 3}", None)
            elif action == "answer":
                await store.answer(f"c{n}", f"a{n % 3}")
            elif action == "abandon":
                await store.abandon(f"c{n}")
            elif action == "end":
                await store.end(f"c{n}")
            else:
                await store.callback_outcome(f"cb-{n}", "completed" if n % 2 else "no_answer", f"a{n % 3}", None)
        except Exception as err:  # refusals are part of the random walk
            assert getattr(err, "code", None) is not None, err


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STEPS)
@example(  # an offer taken, a short and a long abandon each taken back (random walks seldom line them up)
    [
        ("route_mid", 1, 0.0), ("callback", 1, 25.0), ("route", 5, 0.0), ("answer", 5, 3.0),
        ("route", 2, 0.0), ("abandon", 2, 1.0), ("recall", 2, 4.0),
        ("route_mid", 4, 0.0), ("abandon", 4, 15.0), ("recall", 4, 25.0), ("answer", 4, 1.0),
    ]
)  # fmt: skip
def test_tallies_from_events_equal_the_engines_own(steps: list[Step]) -> None:
    clock = ManualClock(T0)
    store = MemoryCallStore(RESUMING, clock, new_id=counter_ids())
    asyncio.run(_play(store, clock, steps))
    report = asyncio.run(store.sla(None, "today"))
    lanes, _ = tallies.tally(asyncio.run(store.read_events(None, 10**6)))
    for row in report.rows:
        rebuilt = sl.Tally()
        for (_, queue, tier), inc in lanes.items():
            if queue == row.queue and tier == row.tier:
                rebuilt.add(inc.service_tally())
        expected = sl.figures(rebuilt, POLICY.tier(row.tier), POLICY.sla_formula)
        assert _approx(expected) == _approx(row.figures), (row.queue, row.tier)
    assert {t for _, _, t in lanes} <= set(TIERS)


def _approx(figures: sl.Figures) -> dict[str, object]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in msgspec.structs.asdict(figures).items()}


async def test_memory_tier_changes_join_the_call_stores_trail(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    calls = MemoryCallStore(POLICY, clock)
    tiers = MemoryTierStore(on_event=calls.record_tier_event)
    path = tmp_path / "tiers.csv"
    path.write_text("caller,tier\n+4930111,vip\n+4930222,mid\n+4930333,mid\n")
    await tiers.reload_file(path, "csv")
    await calls.route("c1", await tiers.lookup("+4930111"), "default")
    clock.advance(5)
    await tiers.put("+4930444", "standard")
    await tiers.put("+4930444", "standard")  # the same record again: no change, no event
    await tiers.put("+4930222", "vip")
    await tiers.delete("+4930333")
    await tiers.delete("+4930999")  # nobody: no change, no event
    path.write_text("caller,tier\n")  # no valid row: refused, the table stays
    await tiers.reload_file(path, "csv")
    got = await calls.read_events(None, 100)
    assert [ev.kind_of(x) for x in got] == ["tiers_reloaded", "enter", "tier_edited", "tier_edited", "tier_edited"]
    reloaded = got[0]
    assert isinstance(reloaded, ev.TiersReloaded)
    assert (reloaded.version, reloaded.counts, reloaded.at) == (
        "1",
        {"vip": 1, "mid": 2, "standard": 0, "blacklisted": 0},
        T0,
    )
    edits = [x for x in got if isinstance(x, ev.TierEdited)]
    assert [(x.edit, x.caller, x.tier, x.version, x.at) for x in edits] == [
        ("added", "+4930444", "standard", "1", T0 + 5),
        ("changed", "+4930222", "vip", "1", T0 + 5),
        ("removed", "+4930333", "mid", "1", T0 + 5),
    ]
