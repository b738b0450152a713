"""Issue 16 item 3, the callback offer that keeps the place ("virtual hold"), on every store.

A waiting caller takes the offer (`request_callback`): the call leaves the line as
`callback_requested`, counted apart from abandons and overflows; a callback (reason
`requested`) holds the call's place, which still counts in the positions behind it and in
max_waiting and shows as `held` beside `waiting_now`; when the place is first, an agent's
`next` hands out the callback. A hypothesis machine holds the order against a brute-force model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from tests.conftest import new_namespace
from tierline.queue.clock import ManualClock
from tierline.queue.errors import Conflict, NotFound
from tierline.queue.memory_store import MemoryCallStore
from tierline.queue.policy import Policy, QueuePolicy, TierPolicy
from tierline.queue.redis_link import RedisLink, connect
from tierline.queue.redis_store import RedisCallStore
from tierline.queue.store import CallStore, SlaRow
from tierline.tiers.model import Tier

from .helpers import T0, MakeStore, counter_ids, record

R = TypeVar("R")

NO_OVERFLOW = Policy(tiers={"mid": TierPolicy(overflow_after_s=0)})


async def sla_row(store: CallStore, tier: Tier, queue: str = "default") -> SlaRow:
    report = await store.sla(queue, "60m")
    return next(row for row in report.rows if row.tier == tier)


async def test_the_held_place_keeps_its_rank_and_is_handed_out_first(make_store: MakeStore) -> None:
    store, clock = make_store(NO_OVERFLOW)
    await store.route("a", record("+100", "mid"), "default")
    clock.advance(1)
    await store.route("b", record("+200", "mid"), "default")
    clock.advance(1)
    await store.route("c", record("+300", "standard"), "default")
    clock.advance(10)

    taken = await store.request_callback("a")
    assert taken.call.status == "callback_requested"
    assert taken.position is None and taken.estimated_wait_s is None and not taken.offer_callback
    callback = taken.callback
    assert callback is not None
    assert (callback.reason, callback.status, callback.held, callback.call_id) == ("requested", "open", True, "a")
    assert callback.deadline == pytest.approx(T0 + 12 + 24 * 3600)
    # The place still counts for the callers behind it.
    assert (await store.get_call("b")).position == 2
    assert (await store.get_call("c")).position == 3
    mid = await sla_row(store, "mid")
    assert (mid.waiting_now, mid.held) == (1, 1)
    assert (mid.figures.callback_requested, mid.figures.abandoned, mid.figures.overflowed) == (1, 0, 0)
    assert mid.figures.offered == 0
    # On no callback work list while its place waits: the place is first, so its callback is the work.
    work = await store.next_work("agent-1", None)
    assert work is not None and work.call is None and work.callback is not None
    assert work.callback.callback_id == callback.callback_id
    assert (work.callback.status, work.callback.agent_id, work.callback.held) == ("assigned", "agent-1", False)
    assert (await store.get_call("b")).position == 1
    mid = await sla_row(store, "mid")
    assert (mid.waiting_now, mid.held) == (1, 0)
    await store.callback_outcome(callback.callback_id, "completed", "agent-1", None)
    work = await store.next_work("agent-1", None)
    assert work is not None and work.call is not None and work.call.call.call_id == "b"
    metrics = await store.metrics()
    row = next(r for r in metrics.rows if r.tier == "mid")
    assert (row.callback_requested, row.abandoned, row.held_now) == (1, 0, 0)


async def test_a_held_place_behind_others_waits_its_turn(make_store: MakeStore) -> None:
    store, _ = make_store(NO_OVERFLOW)
    await store.route("v", record("+1", "vip"), "default")
    await store.route("m1", record("+2", "mid"), "default")
    await store.route("m2", record("+3", "mid"), "default")
    await store.request_callback("m1")
    first = await store.next_work("x", None)
    assert first is not None and first.call is not None and first.call.call.call_id == "v"
    second = await store.next_work("y", None)
    assert second is not None and second.callback is not None and second.callback.call_id == "m1"
    third = await store.next_work("z", None)
    assert third is not None and third.call is not None and third.call.call.call_id == "m2"


async def test_a_repeated_request_and_the_hang_up_after_it_change_nothing(make_store: MakeStore) -> None:
    store, clock = make_store(NO_OVERFLOW)
    await store.route("a", record("+100", "mid"), "default")
    clock.advance(30)
    first = await store.request_callback("a")
    clock.advance(5)
    again = await store.request_callback("a")
    assert again.call == first.call and again.callback == first.callback
    hung_up = await store.abandon("a")  # the IVR reports the hang-up once the caller took the offer
    assert hung_up.call.status == "callback_requested"
    mid = await sla_row(store, "mid")
    assert (mid.figures.callback_requested, mid.figures.abandoned, mid.held) == (1, 0, 1)
    summary = await store.callback_summary()
    assert summary.open == 1


async def test_bad_requests_are_refused_and_change_nothing(make_store: MakeStore) -> None:
    store, _ = make_store(NO_OVERFLOW)
    with pytest.raises(NotFound) as missing:
        await store.request_callback("nope")
    assert missing.value.code == "call_not_found"
    await store.route("a", record("+100", "mid"), "default")
    await store.route("b", record("+200", "mid"), "default")
    offered = await store.next_work("agent-1", None)
    assert offered is not None and offered.call is not None and offered.call.call.call_id == "a"
    with pytest.raises(Conflict) as ringing:
        await store.request_callback("a")
    assert ringing.value.code == "not_waiting"
    await store.answer("a", "agent-1")
    with pytest.raises(Conflict) as answered:
        await store.request_callback("a")
    assert answered.value.code == "not_waiting"
    assert (await store.get_call("a")).call.status == "answered"
    # One callback per caller: "+300" took one on an earlier call, which still holds its place.
    await store.route("b2", record("+300", "mid"), "default")
    await store.request_callback("b2")
    await store.route("b3", record("+300", "mid"), "default")
    before = await store.get_call("b3")
    assert not before.offer_callback  # never offered to a caller who already has a callback
    with pytest.raises(Conflict) as twice:
        await store.request_callback("b3")
    assert twice.value.code == "callback_exists"
    after = await store.get_call("b3")
    assert after.call == before.call and after.position == before.position
    mid = await sla_row(store, "mid")
    assert (mid.figures.callback_requested, mid.held) == (1, 1)


async def test_the_held_place_counts_in_max_waiting(make_store: MakeStore) -> None:
    store, _ = make_store(Policy(queues={"default": QueuePolicy(max_waiting=2)}, tiers=NO_OVERFLOW.tiers))
    await store.route("a", record("+1", "mid"), "default")
    await store.route("b", record("+2", "mid"), "default")
    await store.request_callback("a")
    turned_away = (await store.route("c", record("+3", "standard"), "default"))[0]
    assert (turned_away.call.status, turned_away.call.overflow_reason) == ("overflowed", "queue_full")


async def test_when_the_places_wait_runs_out_it_is_an_ordinary_callback(make_store: MakeStore) -> None:
    store, clock = make_store()  # mid overflows after 60 s
    await store.route("a", record("+1", "mid"), "default")
    clock.advance(25)
    await store.request_callback("a")
    await store.route("s", record("+2", "standard"), "default")
    clock.advance(36)  # a's place has waited 61 s
    mid = await sla_row(store, "mid")
    assert (mid.held, mid.figures.overflowed, mid.figures.callback_requested) == (0, 0, 1)
    page = await store.callbacks("open", 10)
    assert [(b.call_id, b.held) for b in page] == [("a", False)]
    assert (await store.get_call("s")).position == 1
    # Standard calls come before callbacks not yet urgent (NEXT_ORDER): the callback after s.
    work = await store.next_work("x", None)
    assert work is not None and work.call is not None and work.call.call.call_id == "s"
    work = await store.next_work("y", None)
    assert work is not None and work.callback is not None and work.callback.call_id == "a"


async def test_the_caller_getting_through_closes_the_callback_and_frees_the_place(make_store: MakeStore) -> None:
    store, _ = make_store(NO_OVERFLOW)
    await store.route("a", record("+1", "mid"), "default")
    await store.route("b", record("+2", "mid"), "default")
    await store.request_callback("a")
    # The caller calls in again (a VIP line this time) and is answered first.
    await store.route("a2", record("+1", "vip"), "default")
    work = await store.next_work("x", None)
    assert work is not None and work.call is not None and work.call.call.call_id == "a2"
    await store.answer("a2", "x")
    done = await store.callbacks("done", 10)
    assert [(b.call_id, b.status, b.held) for b in done] == [("a", "resolved_inbound", False)]
    assert (await store.get_call("b")).position == 1
    assert (await sla_row(store, "mid")).held == 0
    work = await store.next_work("y", None)
    assert work is not None and work.call is not None and work.call.call.call_id == "b"


async def test_the_offer_is_shown_once_the_quoted_wait_exceeds_the_tiers_limit(make_store: MakeStore) -> None:
    policy = Policy(tiers={"mid": TierPolicy(overflow_after_s=0, offer_callback_after_s=100)})
    store, clock = make_store(policy)
    # One agent, a handle time of 300 s measured: a mid caller behind others waits minutes.
    await store.route("w", record("+9", "standard"), "default")
    await store.next_work("agent", None)
    await store.answer("w", "agent")
    clock.advance(300)
    await store.end("w")
    await store.route("w2", record("+8", "standard"), "default")
    await store.next_work("agent", None)
    await store.answer("w2", "agent")
    first, _ = await store.route("m1", record("+1", "mid"), "default")
    assert first.estimated_wait_s is not None
    second, _ = await store.route("m2", record("+2", "mid"), "default")
    std, _ = await store.route("s1", record("+3", "standard"), "default")
    assert second.estimated_wait_s is not None and second.estimated_wait_s > 100
    assert second.offer_callback
    assert first.offer_callback == (first.estimated_wait_s > 100)
    assert not std.offer_callback  # standard is not offered one by default
    assert (await store.get_call("m2")).offer_callback


def test_the_offer_is_configured_per_tier() -> None:
    default = Policy()
    assert [t for t in ("vip", "mid", "standard", "blacklisted") if default.tier(t).offer_callback] == ["mid"]
    assert default.tier("mid").offer_callback_after_s == default.tier("mid").sla_threshold_s
    custom = Policy(tiers={"standard": TierPolicy(offer_callback=True, sla_threshold_s=45)})
    assert custom.tier("standard").offer_callback and custom.tier("standard").offer_callback_after_s == 45


# --- the order, against a brute-force model --------------------------------------------------------

TIER_LIST: tuple[Tier, ...] = ("vip", "mid", "standard", "blacklisted")
RANK = {"vip": 0, "mid": 1, "standard": 2, "blacklisted": 3}
CALLERS = tuple(f"+4930000{i:02d}" for i in range(5))


def run(coro: Coroutine[Any, Any, R]) -> R:
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise AssertionError("the memory store awaited inside a method")


@dataclass
class Entry:
    call_id: str
    caller: str
    tier: Tier
    seq: int
    arrived: float
    held: bool = False  # the place is held for the caller's callback
    callback_id: str | None = None  # the callback held for it, or the one its abandon opened or joined


RESUME_S = 40


class HoldMachine(RuleBasedStateMachine):
    """One queue, every tier offered a callback, nothing overflows on wait, callers abandon and
    call again (resume_window_s = 40 s), one agent that finishes each piece of work at once. The
    model: the line as entries sorted by (tier rank, arrival), waiting or held; the callers with
    an active callback and the open callbacks on the work list; the abandons a re-call may take
    back."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(T0)
        tiers = {t: TierPolicy(overflow_after_s=0, offer_callback=True) for t in TIER_LIST}
        self.store: CallStore = self.make_store(Policy(tiers=tiers, resume_window_s=RESUME_S))
        self.line: list[Entry] = []
        self.active: dict[str, str] = {}  # caller -> callback_id (open or assigned)
        self.ready: set[str] = set()  # open callbacks not held by a place: an agent may get them
        self.resumable: dict[str, tuple[Entry, float]] = {}  # caller -> abandoned entry, until when
        self.seq = 0
        self.requested = 0
        self.abandoned = 0
        self.resumed = 0

    def make_store(self, policy: Policy) -> CallStore:
        return MemoryCallStore(policy, self.clock, new_id=counter_ids())

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        return run(coro)

    def order(self) -> list[Entry]:
        return sorted(self.line, key=lambda e: (RANK[e.tier], e.seq))

    def close_callback(self, caller: str, callback_id: str) -> None:
        """The caller got through (or took the place back): their open callback closes, and a
        place it held leaves the line."""
        if self.active.get(caller) == callback_id:
            del self.active[caller]
            self.ready.discard(callback_id)
            self.line = [e for e in self.line if not (e.held and e.callback_id == callback_id)]

    @rule(gap=st.sampled_from([2, 7, 30]))
    def wait(self, gap: int) -> None:
        self.clock.advance(gap)

    @rule(tier=st.sampled_from(TIER_LIST), caller=st.sampled_from(CALLERS), gap=st.sampled_from([0, 1, 3]))
    def arrive(self, tier: Tier, caller: str, gap: int) -> None:
        self.clock.advance(gap)
        now = self.clock.now()
        self.seq += 1
        call_id = f"c{self.seq}"
        snap, created = self.run(self.store.route(call_id, record(caller, tier), "default"))
        assert created and snap.call.status == "waiting"
        old, until = self.resumable.pop(caller, (None, 0.0))
        if old is not None and now <= until:  # a re-call within the window takes the place back
            assert snap.call.resumed_from == old.call_id
            self.resumed += 1
            self.line.append(Entry(call_id, caller, old.tier, old.seq, old.arrived))
            if old.callback_id is not None:
                self.close_callback(caller, old.callback_id)
            return
        assert snap.call.resumed_from is None
        self.line.append(Entry(call_id, caller, tier, self.seq, now))

    @precondition(lambda self: any(not e.held for e in self.line))
    @rule(data=st.data())
    def abandon(self, data: st.DataObject) -> None:
        entry = data.draw(st.sampled_from([e for e in self.order() if not e.held]))
        snap = self.run(self.store.abandon(entry.call_id))
        assert snap.call.status == "abandoned"
        self.line.remove(entry)
        self.abandoned += 1
        self.resumable[entry.caller] = (entry, self.clock.now() + RESUME_S)
        if entry.tier == "mid" and self.clock.now() - entry.arrived >= 5:  # a mid abandon leaves a callback
            assert snap.callback is not None
            entry.callback_id = snap.callback.callback_id
            if entry.caller not in self.active:  # else it joined the caller's one callback
                self.active[entry.caller] = entry.callback_id
                self.ready.add(entry.callback_id)
            assert self.active[entry.caller] == entry.callback_id

    @precondition(lambda self: any(not e.held for e in self.line))
    @rule(data=st.data())
    def take_offer(self, data: st.DataObject) -> None:
        entry = data.draw(st.sampled_from([e for e in self.order() if not e.held]))
        if entry.caller in self.active:
            before = self.run(self.store.get_call(entry.call_id))
            with pytest.raises(Conflict) as refused:
                self.run(self.store.request_callback(entry.call_id))
            assert refused.value.code == "callback_exists"
            assert self.run(self.store.get_call(entry.call_id)).call == before.call
            return
        snap = self.run(self.store.request_callback(entry.call_id))
        assert snap.call.status == "callback_requested" and snap.callback is not None and snap.callback.held
        entry.held, entry.callback_id = True, snap.callback.callback_id
        self.active[entry.caller] = snap.callback.callback_id
        self.requested += 1

    @rule()
    def agent_next(self) -> None:
        work = self.run(self.store.next_work("agent", None))
        expected = self.order()[0] if self.line else None
        if expected is None:  # no call: a callback on the work list, if any
            if not self.ready:
                assert work is None
                return
            assert work is not None and work.callback is not None and work.callback.callback_id in self.ready
            self.run(self.store.callback_outcome(work.callback.callback_id, "completed", "agent", None))
            self.ready.discard(work.callback.callback_id)
            del self.active[work.callback.caller]
            return
        assert work is not None
        self.line.remove(expected)
        if expected.held:
            assert work.call is None and work.callback is not None
            assert work.callback.callback_id == expected.callback_id and work.callback.call_id == expected.call_id
            self.run(self.store.callback_outcome(work.callback.callback_id, "completed", "agent", None))
            del self.active[expected.caller]
            return
        assert work.call is not None and work.call.call.call_id == expected.call_id
        self.run(self.store.answer(expected.call_id, "agent"))
        self.run(self.store.end(expected.call_id))
        # The caller got through: an open callback of theirs is closed, its held place leaves.
        callback_id = self.active.get(expected.caller)
        if callback_id is not None:
            self.close_callback(expected.caller, callback_id)

    @invariant()
    def positions_count_held_places(self) -> None:
        for ahead, entry in enumerate(self.order()):  # held places count as entries ahead
            if not entry.held:
                snap = self.run(self.store.get_call(entry.call_id))
                assert snap.call.status == "waiting" and snap.position == ahead + 1, (entry, snap.position, ahead)

    @invariant()
    def counts(self) -> None:
        report = self.run(self.store.sla("default", "60m"))
        for row in report.rows:
            mine = [e for e in self.line if e.tier == row.tier]
            assert row.held == sum(e.held for e in mine)
            assert row.waiting_now == sum(not e.held for e in mine)
        assert sum(row.figures.callback_requested for row in report.rows) == self.requested
        assert sum(row.figures.abandoned for row in report.rows) == self.abandoned
        assert sum(row.figures.resumed for row in report.rows) == self.resumed
        assert sum(row.figures.overflowed for row in report.rows) == 0


PROFILE = settings(max_examples=60, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_the_memory_store_against_the_model() -> None:
    run_state_machine_as_test(HoldMachine, settings=PROFILE)


_loop = asyncio.new_event_loop()


class RedisHoldMachine(HoldMachine):
    url = ""

    def __init__(self) -> None:
        self.links: list[RedisLink] = []
        super().__init__()

    def make_store(self, policy: Policy) -> CallStore:
        link = RedisLink(connect(self.url, 2.0), timeout_s=2.0)
        self.links.append(link)
        return RedisCallStore(link, policy, self.clock, namespace=new_namespace())

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        return _loop.run_until_complete(coro)

    def teardown(self) -> None:
        while self.links:
            _loop.run_until_complete(self.links.pop().close())


def test_the_redis_store_against_the_model(redis_url: str) -> None:
    machine = type("RedisHoldMachineAt", (RedisHoldMachine,), {"url": redis_url})
    run_state_machine_as_test(machine, settings=settings(PROFILE, max_examples=20))
