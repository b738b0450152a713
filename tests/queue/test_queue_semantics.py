"""The call stores (memory, Redis, Redis Cluster) against SPEC "Queue semantics" and "Agents and call
states", on a manual clock."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from tierline.queue.clock import ManualClock
from tierline.queue.errors import Conflict, Invalid, NotFound
from tierline.queue.policy import Policy, QueuePolicy
from tierline.queue.store import CallStore
from tierline.tiers.model import Tier

from .helpers import T0, MakeStore, record

# One behaviour suite, three stores: a test that takes `make_store` runs on memory, a real Redis
# and a real Redis Cluster.


def two_queues(**queues: QueuePolicy) -> Policy:
    return Policy(queues={"a": QueuePolicy(), "b": QueuePolicy(), **queues})


async def state_of(store: CallStore, call_id: str | None = None) -> Any:
    """Everything a client can read without changing anything: the call, the SLA, the callbacks."""
    call = None if call_id is None else msgspec.to_builtins(await store.get_call(call_id))
    sla = msgspec.to_builtins(await store.sla(None, "today"))
    summary = msgspec.to_builtins(await store.callback_summary())
    return call, sla, summary


async def waiting_standard_count(store: CallStore, queue: str = "default") -> int:
    report = await store.sla(queue, "15m")
    return sum(row.waiting_now for row in report.rows)


def test_each_store_is_a_call_store(make_store: MakeStore, store_kind: str) -> None:
    store: CallStore = make_store()[0]  # checked by mypy; at run time, that it builds the right kind
    assert type(store).__name__ == ("MemoryCallStore" if store_kind == "memory" else "RedisCallStore")


# --- route --------------------------------------------------------------------------------------


async def test_route_queues_a_new_call(make_store: MakeStore) -> None:
    store, _clock = make_store()
    snap, created = await store.route("c1", record("+1001", "mid"), "default")
    assert created is True
    call = snap.call
    assert (call.call_id, call.caller, call.tier) == ("c1", "+1001", "mid")
    assert (call.queue, call.status) == ("default", "waiting")
    assert call.arrived_at == T0
    assert snap.position == 1
    assert snap.estimated_wait_s is None  # no answer history yet
    assert snap.callback is None


async def test_route_is_idempotent_per_call_id(make_store: MakeStore) -> None:
    store, clock = make_store()
    first, created = await store.route("c1", record("+1001"), "default")
    assert created
    clock.advance(7)
    again, created_again = await store.route("c1", record("+1001"), "default")
    assert created_again is False
    assert again.call.arrived_at == first.call.arrived_at == T0
    assert again.call.seq == first.call.seq
    assert again.position == 1
    assert await waiting_standard_count(store) == 1
    row = next(r for r in (await store.sla("default", "15m")).rows if r.tier == "standard")
    assert row.figures.arrived == 1  # counted once


@pytest.mark.parametrize(
    ("caller", "queue"),
    [("+1002", "a"), ("+1001", "b"), ("+1002", "b")],
)
async def test_route_same_id_for_another_call_is_a_conflict(make_store: MakeStore, caller: str, queue: str) -> None:
    store, _clock = make_store(two_queues())
    await store.route("c1", record("+1001"), "a")
    before = await state_of(store, "c1")
    with pytest.raises(Conflict) as err:
        await store.route("c1", record(caller), queue)
    assert err.value.code == "call_id_conflict"
    assert await state_of(store, "c1") == before


async def test_route_to_an_unknown_queue_is_refused_and_changes_nothing(make_store: MakeStore) -> None:
    store, _clock = make_store()
    await store.route("c0", record("+1000"), "default")
    before = await state_of(store, "c0")
    with pytest.raises(Invalid) as err:
        await store.route("c1", record("+1001"), "nope")
    assert err.value.code == "unknown_queue"
    with pytest.raises(NotFound):
        await store.get_call("c1")
    assert await state_of(store, "c0") == before
    # The refused call did not take an arrival number either: the next call is seq 2.
    snap, _ = await store.route("c2", record("+1002"), "default")
    assert snap.call.seq == 2


async def test_unknown_call_is_not_found(make_store: MakeStore) -> None:
    store, _ = make_store()
    for action in (store.get_call, store.abandon, store.end):
        with pytest.raises(NotFound) as err:
            await action("ghost")
        assert err.value.code == "call_not_found"
    with pytest.raises(NotFound):
        await store.answer("ghost", "a1")
    with pytest.raises(NotFound):
        await store.requeue("ghost", None)


async def test_a_call_keeps_the_tier_it_arrived_with(make_store: MakeStore) -> None:
    store, _clock = make_store()
    await store.route("c1", record("+1001", "standard"), "default")
    # The caller became VIP since; the same call_id posted again describes the same call.
    snap, created = await store.route("c1", record("+1001", "vip"), "default")
    assert not created
    assert snap.call.tier == "standard"


# --- order, position, requeue -------------------------------------------------------------------


async def test_vip_now_is_ahead_of_a_standard_who_waited_ten_minutes(make_store: MakeStore) -> None:
    store, clock = make_store()
    await store.route("s", record("+1001", "standard"), "default")
    clock.advance(600)
    await store.route("v", record("+1002", "vip"), "default")
    assert (await store.get_call("v")).position == 1
    assert (await store.get_call("s")).position == 2
    work = await store.next_work("a1", None)
    assert work is not None and work.call is not None
    assert work.call.call.call_id == "v"


async def test_position_is_null_for_calls_that_are_not_waiting(make_store: MakeStore) -> None:
    store, _clock = make_store()
    await store.route("c1", record("+1001"), "default")
    await store.next_work("a1", None)
    snap = await store.get_call("c1")
    assert snap.call.status == "offered"
    assert snap.position is None
    assert snap.estimated_wait_s is None


async def test_requeue_keeps_the_original_place(make_store: MakeStore) -> None:
    store, clock = make_store()
    for i in (1, 2, 3):
        await store.route(f"s{i}", record(f"+100{i}"), "default")
        clock.advance(1)
    work = await store.next_work("a1", None)
    assert work is not None and work.call is not None and work.call.call.call_id == "s1"
    assert (await store.get_call("s2")).position == 1
    clock.advance(10)
    snap = await store.requeue("s1", "a1")
    assert snap.call.status == "waiting"
    assert snap.call.agent_id is None and snap.call.offered_at is None
    assert snap.call.arrived_at == T0
    assert snap.position == 1
    assert [(await store.get_call(c)).position for c in ("s2", "s3")] == [2, 3]
    # The agent is free again, and the requeued call is still the best one.
    work = await store.next_work("a2", None)
    assert work is not None and work.call is not None and work.call.call.call_id == "s1"


async def test_ring_no_answer_requeues_at_the_original_place_after_offer_timeout(make_store: MakeStore) -> None:
    store, clock = make_store()  # offer_timeout_s = 30
    await store.route("s1", record("+1001"), "default")
    clock.advance(1)
    await store.route("s2", record("+1002"), "default")
    work = await store.next_work("a1", None)
    assert work is not None and work.call is not None and work.call.call.call_id == "s1"
    offered_at = clock.now()
    clock.set(offered_at + 29.5)
    assert (await store.get_call("s1")).call.status == "offered"
    clock.set(offered_at + 30)
    snap = await store.get_call("s1")
    assert snap.call.status == "waiting"
    assert snap.call.agent_id is None
    assert snap.position == 1
    assert (await store.get_call("s2")).position == 2
    # a1 no longer holds it: asking again gives it the best call, which is s1 once more.
    again = await store.next_work("a1", None)
    assert again is not None and again.call is not None and again.call.call.call_id == "s1"
    assert again.call.call.offered_at == offered_at + 30


async def test_ring_no_answer_noticed_late_still_overflows_at_arrival_plus_limit(make_store: MakeStore) -> None:
    # A mid call rings at an agent from T0+10 to T0+40 (offer_timeout_s 30), is back in the
    # queue, and so overflows at exactly T0+60 (overflow_after_s), even though the engine
    # only looks again at T0+100.
    store, clock = make_store()
    await store.route("m1", record("+1001", "mid"), "default")
    clock.advance(10)
    await store.next_work("a1", None)
    clock.set(T0 + 100)
    await store.sweep()
    call = (await store.get_call("m1")).call
    assert call.status == "overflowed"
    assert call.overflow_reason == "max_wait"
    assert call.left_at == T0 + 60


async def test_ring_no_answer_past_the_limit_overflows_when_the_ringing_stops(make_store: MakeStore) -> None:
    # Offered at T0+50, before its limit; it rings until T0+80 and cannot come back to wait.
    store, clock = make_store()
    await store.route("m1", record("+1001", "mid"), "default")
    clock.advance(50)
    await store.next_work("a1", None)
    clock.set(T0 + 80)
    call = (await store.get_call("m1")).call
    assert call.status == "overflowed"
    assert call.left_at == T0 + 80
    work = await store.next_work("a2", None)  # only its callback can be handed out, never the call
    assert work is not None and work.call is None and work.callback is not None
    assert work.callback.call_id == "m1"
    assert work.callback.deadline == T0 + 80 + 24 * 3600


async def test_a_requeue_at_exactly_arrival_plus_limit_overflows_at_once(make_store: MakeStore) -> None:
    store, clock = make_store()
    await store.route("m1", record("+1001", "mid"), "default")
    clock.set(T0 + 50)
    await store.next_work("a1", None)
    clock.set(T0 + 60)  # the agent hands it back in the very second its wait runs out
    snap = await store.requeue("m1", "a1")
    assert snap.call.status == "overflowed"
    assert snap.call.overflow_reason == "max_wait"
    assert snap.call.left_at == T0 + 60
    assert snap.position is None


async def test_an_offered_call_answered_before_the_timeout_is_answered(make_store: MakeStore) -> None:
    store, clock = make_store()
    await store.route("c1", record("+1001"), "default")
    await store.next_work("a1", None)
    clock.advance(29)
    snap = await store.answer("c1", "a1")
    assert snap.call.status == "answered"
    assert snap.call.answered_at == T0 + 29
    clock.advance(60)
    assert (await store.get_call("c1")).call.status == "answered"  # no timeout once answered


# --- max_waiting and overflow ---------------------------------------------------------------------


async def test_full_queue_overflows_non_vips_exactly_at_the_limit_and_admits_vips(make_store: MakeStore) -> None:
    store, clock = make_store(Policy(queues={"default": QueuePolicy(max_waiting=3)}))
    await store.route("s1", record("+1001"), "default")
    await store.route("s2", record("+1002"), "default")
    snap, _ = await store.route("s3", record("+1003"), "default")  # 2 waiting = limit - 1: admitted
    assert snap.call.status == "waiting" and snap.position == 3
    clock.advance(2)
    snap, created = await store.route("s4", record("+1004"), "default")  # 3 waiting = limit: overflow
    assert created
    assert snap.call.status == "overflowed"
    assert snap.call.overflow_reason == "queue_full"
    assert snap.call.left_at == T0 + 2
    assert snap.position is None
    assert snap.callback is None  # standard overflow: no callback
    pairs: tuple[tuple[Tier, str], ...] = (("blacklisted", "+1005"), ("mid", "+1006"))
    for tier, caller in pairs:
        snap, _ = await store.route(f"x-{tier}", record(caller, tier), "default")
        assert snap.call.status == "overflowed" and snap.call.overflow_reason == "queue_full"
    snap, _ = await store.route("v1", record("+1007", "vip"), "default")
    assert snap.call.status == "waiting"
    assert snap.position == 1
    assert await waiting_standard_count(store) == 4
    # An offered call no longer waits: the queue has room for one again.
    await store.next_work("a1", None)  # takes v1
    await store.next_work("a2", None)  # takes s1
    snap, _ = await store.route("s5", record("+1008"), "default")
    assert snap.call.status == "waiting" and snap.position == 3


async def test_mid_overflows_at_exactly_arrival_plus_60_by_a_sweep(make_store: MakeStore) -> None:
    store, clock = make_store()
    await store.route("m1", record("+1001", "mid"), "default")
    await store.route("s1", record("+1002", "standard"), "default")
    clock.set(T0 + 59.5)
    await store.sweep()
    assert (await store.get_call("m1")).call.status == "waiting"
    clock.set(T0 + 60)
    await store.sweep()
    call = (await store.get_call("m1")).call
    assert call.status == "overflowed"
    assert call.overflow_reason == "max_wait"
    assert call.left_at == T0 + 60
    assert call.waited(T0 + 1000) == 60
    # The standard caller never overflows on wait (no limit by default).
    clock.set(T0 + 3600)
    await store.sweep()
    assert (await store.get_call("s1")).call.status == "waiting"


async def test_mid_overflow_nobody_polling_lands_at_arrival_plus_60_in_the_books(make_store: MakeStore) -> None:
    store, clock = make_store()
    await store.route("m1", record("+1001", "mid"), "default")
    clock.set(T0 + 1000)  # nobody looked for 1000 s: interval T0+900.. is not the overflow's
    report = await store.sla("default", "today")
    row = next(r for r in report.rows if r.tier == "mid")
    assert row.waiting_now == 0
    assert row.figures.overflowed == 1
    assert row.intervals is not None
    by_start = {i.start: i.figures for i in row.intervals}
    assert by_start[T0].overflowed == 1  # T0+60 is in the interval starting at T0
    assert by_start[T0 + 900].overflowed == 0
    call = (await store.get_call("m1")).call
    assert call.left_at == T0 + 60


async def test_an_overflowed_call_is_never_offered(make_store: MakeStore) -> None:
    store, clock = make_store()
    await store.route("m1", record("+1001", "mid"), "default")
    clock.set(T0 + 60)
    work = await store.next_work("a1", None)  # the same instant as the overflow
    assert work is None or work.call is None
    assert (await store.get_call("m1")).call.status == "overflowed"
    with pytest.raises(Conflict) as err:
        await store.answer("m1", "a2")
    assert err.value.code == "invalid_state"


async def test_a_call_just_before_its_limit_is_still_offered(make_store: MakeStore) -> None:
    store, clock = make_store()
    await store.route("m1", record("+1001", "mid"), "default")
    clock.set(T0 + 59)
    work = await store.next_work("a1", None)
    assert work is not None and work.call is not None and work.call.call.call_id == "m1"
    clock.set(T0 + 61)
    assert (await store.get_call("m1")).call.status == "offered"  # ringing: not overflowed
    await store.answer("m1", "a1")
    assert (await store.get_call("m1")).call.status == "answered"


async def test_vips_never_overflow_on_wait_even_if_configured(make_store: MakeStore) -> None:
    from tierline.queue.policy import TierPolicy

    store, clock = make_store(Policy(tiers={"vip": TierPolicy(overflow_after_s=10)}))
    await store.route("v1", record("+1001", "vip"), "default")
    clock.advance(3600)
    assert (await store.get_call("v1")).call.status == "waiting"


# --- state moves ------------------------------------------------------------------------------------

STATES = ("waiting", "offered", "answered", "ended", "abandoned", "overflowed")


async def call_in(make_store: MakeStore, state: str) -> tuple[CallStore, ManualClock]:
    """A store holding call `c1` (mid, caller +1001) in `state`; offered/answered by agent a1."""
    store, clock = make_store()
    await store.route("c1", record("+1001", "mid"), "default")
    clock.advance(2)  # a short wait: an abandon creates no callback
    if state in ("offered", "answered", "ended"):
        await store.next_work("a1", None)
    if state in ("answered", "ended"):
        await store.answer("c1", "a1")
    if state == "ended":
        await store.end("c1")
    if state == "abandoned":
        await store.abandon("c1")
    if state == "overflowed":
        clock.set(T0 + 60)
    assert (await store.get_call("c1")).call.status == state
    clock.advance(1)
    return store, clock


# (action, from state) -> the state after, "noop" for an allowed repeat, None for a refusal.
MOVES: dict[tuple[str, str], str | None] = {
    ("answer", "waiting"): "answered",
    ("answer", "offered"): "answered",
    ("answer", "answered"): "noop",
    ("answer", "ended"): None,
    ("answer", "abandoned"): None,
    ("answer", "overflowed"): None,
    ("requeue", "waiting"): "noop",
    ("requeue", "offered"): "waiting",
    ("requeue", "answered"): None,
    ("requeue", "ended"): None,
    ("requeue", "abandoned"): None,
    ("requeue", "overflowed"): None,
    ("abandon", "waiting"): "abandoned",
    ("abandon", "offered"): "abandoned",
    ("abandon", "answered"): None,
    ("abandon", "ended"): None,
    ("abandon", "abandoned"): "noop",
    ("abandon", "overflowed"): None,
    ("end", "waiting"): None,
    ("end", "offered"): None,
    ("end", "answered"): "ended",
    ("end", "ended"): "noop",
    ("end", "abandoned"): None,
    ("end", "overflowed"): None,
}


async def act(store: CallStore, action: str, agent_id: str = "a1") -> Any:
    if action == "answer":
        return await store.answer("c1", agent_id)
    if action == "requeue":
        return await store.requeue("c1", agent_id)
    if action == "abandon":
        return await store.abandon("c1")
    return await store.end("c1")


@pytest.mark.parametrize(("action", "state"), sorted(MOVES))
async def test_each_state_move(make_store: MakeStore, action: str, state: str) -> None:
    store, _clock = await call_in(make_store, state)
    before = await state_of(store, "c1")
    expected = MOVES[(action, state)]
    if expected is None:
        with pytest.raises(Conflict) as err:
            await act(store, action)
        assert err.value.code == "invalid_state"
        assert await state_of(store, "c1") == before
    elif expected == "noop":
        snap = await act(store, action)
        assert snap.call.status == state
        assert await state_of(store, "c1") == before
    else:
        snap = await act(store, action)
        assert snap.call.status == expected
        assert (await store.get_call("c1")).call.status == expected
        assert await state_of(store, "c1") != before


@pytest.mark.parametrize(("action", "state"), [("answer", "offered"), ("requeue", "offered"), ("answer", "answered")])
async def test_moves_by_another_agent_are_refused_and_change_nothing(
    make_store: MakeStore, action: str, state: str
) -> None:
    store, _clock = await call_in(make_store, state)
    before = await state_of(store, "c1")
    with pytest.raises(Conflict) as err:
        await act(store, action, agent_id="a2")
    assert err.value.code == "invalid_state"
    assert await state_of(store, "c1") == before
    # ... and a1 still holds its work.
    work = await store.next_work("a1", None) if state == "offered" else None
    if state == "offered":
        assert work is not None and work.call is not None and work.call.call.call_id == "c1"


async def test_requeue_without_agent_id_is_allowed_for_an_offered_call(make_store: MakeStore) -> None:
    store, _clock = await call_in(make_store, "offered")
    snap = await store.requeue("c1", None)
    assert snap.call.status == "waiting" and snap.position == 1


async def test_answer_an_abandoned_call_is_refused_and_changes_nothing(make_store: MakeStore) -> None:
    store, _clock = await call_in(make_store, "abandoned")
    before = await state_of(store, "c1")
    with pytest.raises(Conflict) as err:
        await store.answer("c1", "a1")
    assert err.value.code == "invalid_state"
    after = await state_of(store, "c1")
    assert after == before
    mid = next(r for r in (await store.sla("default", "today")).rows if r.tier == "mid")
    assert (mid.figures.answered, mid.figures.abandoned) == (0, 1)


async def test_answer_repeat_by_the_same_agent_counts_once(make_store: MakeStore) -> None:
    store, clock = make_store()
    await store.route("c1", record("+1001"), "default")
    clock.advance(4)
    first = await store.answer("c1", "a1")
    clock.advance(3)
    again = await store.answer("c1", "a1")
    assert again.call.answered_at == first.call.answered_at == T0 + 4
    row = next(r for r in (await store.sla("default", "today")).rows if r.tier == "standard")
    assert row.figures.answered == 1
    assert row.figures.asa_s == 4.0


async def test_answer_a_waiting_call_while_holding_work_is_agent_busy(make_store: MakeStore) -> None:
    store, _clock = make_store()
    await store.route("c1", record("+1001"), "default")
    await store.route("c2", record("+1002"), "default")
    await store.next_work("a1", None)  # a1 holds c1 (offered)
    before = await state_of(store, "c2")
    with pytest.raises(Conflict) as err:
        await store.answer("c2", "a1")
    assert err.value.code == "agent_busy"
    assert await state_of(store, "c2") == before


async def test_abandon_or_end_frees_the_agent(make_store: MakeStore) -> None:
    store, _clock = make_store()
    for i in (1, 2, 3):
        await store.route(f"c{i}", record(f"+100{i}"), "default")
    await store.next_work("a1", None)
    await store.abandon("c1")  # the caller hung up while it rang
    work = await store.next_work("a1", None)
    assert work is not None and work.call is not None and work.call.call.call_id == "c2"
    await store.answer("c2", "a1")
    await store.end("c2")
    work = await store.next_work("a1", None)
    assert work is not None and work.call is not None and work.call.call.call_id == "c3"


# --- next_work ------------------------------------------------------------------------------------


async def test_next_work_with_an_offered_call_returns_the_same_call(make_store: MakeStore) -> None:
    store, clock = make_store(two_queues())
    await store.route("c1", record("+1001"), "a")
    await store.route("c2", record("+1002", "vip"), "b")
    first = await store.next_work("a1", ["a"])
    assert first is not None and first.call is not None and first.call.call.call_id == "c1"
    clock.advance(5)
    for queues in (None, ["b"], ["a"]):
        again = await store.next_work("a1", queues)
        assert again is not None and again.call is not None
        assert again.call.call.call_id == "c1"
        assert again.call.call.offered_at == T0  # not offered anew
        assert again.record == record("+1001")
    assert (await store.get_call("c2")).call.status == "waiting"


async def test_next_work_on_an_answered_call_is_agent_busy(make_store: MakeStore) -> None:
    store, _clock = make_store()
    await store.route("c1", record("+1001"), "default")
    await store.route("c2", record("+1002"), "default")
    await store.next_work("a1", None)
    await store.answer("c1", "a1")
    before = await state_of(store, "c2")
    with pytest.raises(Conflict) as err:
        await store.next_work("a1", None)
    assert err.value.code == "agent_busy"
    assert await state_of(store, "c2") == before


async def test_next_work_gives_the_callers_record(make_store: MakeStore) -> None:
    store, _clock = make_store()
    rec = record("+1001", "vip", customer_id="C-1", name="Li Na")
    await store.route("c1", rec, "default")
    work = await store.next_work("a1", None)
    assert work is not None and work.call is not None
    assert work.record == rec
    assert work.callback is None
    assert work.call.call.status == "offered" and work.call.call.agent_id == "a1"


async def test_next_work_with_nothing_waiting_is_none(make_store: MakeStore) -> None:
    store, _clock = make_store()
    assert await store.next_work("a1", None) is None


async def test_next_work_picks_the_best_across_queues_and_honours_the_filter(make_store: MakeStore) -> None:
    store, clock = make_store(two_queues())
    await store.route("s-a", record("+1001", "standard"), "a")
    clock.advance(1)
    await store.route("m-b1", record("+1002", "mid"), "b")
    clock.advance(1)
    await store.route("m-a", record("+1003", "mid"), "a")
    clock.advance(1)
    await store.route("m-b2", record("+1004", "mid"), "b")
    only_a = await store.next_work("x", ["a"])
    assert only_a is not None and only_a.call is not None and only_a.call.call.call_id == "m-a"
    order = []
    for agent in ("p", "q", "r"):
        work = await store.next_work(agent, None)
        assert work is not None and work.call is not None
        order.append(work.call.call.call_id)
    assert order == ["m-b1", "m-b2", "s-a"]


async def test_next_work_with_an_unknown_queue_is_refused(make_store: MakeStore) -> None:
    store, _clock = make_store()
    await store.route("c1", record("+1001"), "default")
    with pytest.raises(Invalid) as err:
        await store.next_work("a1", ["default", "nope"])
    assert err.value.code == "unknown_queue"
    assert (await store.get_call("c1")).call.status == "waiting"


async def test_next_work_serves_inbound_before_callbacks(make_store: MakeStore) -> None:
    store, clock = make_store()
    await store.route("m1", record("+1001", "mid"), "default")
    clock.set(T0 + 60)  # m1 overflows: a callback is due now
    await store.route("s1", record("+1002", "blacklisted"), "default")
    work = await store.next_work("a1", None)
    assert work is not None and work.call is not None and work.callback is None
    assert work.call.call.call_id == "s1"  # even a blacklisted inbound call comes first
    work = await store.next_work("a2", None)
    assert work is not None and work.call is None and work.callback is not None
    assert work.callback.call_id == "m1"


# --- retention ----------------------------------------------------------------------------------------


async def test_finished_calls_are_forgotten_after_retention_and_the_id_can_be_reused(make_store: MakeStore) -> None:
    store, clock = make_store()
    await store.route("c1", record("+1001"), "default")
    await store.abandon("c1")
    clock.advance(24 * 3600 - 1)
    assert (await store.get_call("c1")).call.status == "abandoned"
    clock.advance(1)
    with pytest.raises(NotFound):
        await store.get_call("c1")
    snap, created = await store.route("c1", record("+1999"), "default")
    assert created and snap.call.caller == "+1999" and snap.call.status == "waiting"
