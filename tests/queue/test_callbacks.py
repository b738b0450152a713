"""Callbacks for mid-tier callers: creation, one per caller, inbound resolution, outcomes, reports."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from tierline.queue import callbacks as cb
from tierline.queue.callbacks import Callback, Outcome
from tierline.queue.clock import ManualClock
from tierline.queue.errors import Conflict, NotFound
from tierline.queue.policy import CallbackPolicy, Policy, QueuePolicy, TierPolicy
from tierline.queue.store import CallStore
from tierline.tiers.model import Tier

from .helpers import T0, MakeStore, record

# One behaviour suite, three stores: a test that takes `make_store` runs on memory, a real Redis
# and a real Redis Cluster.
DAY = 24 * 3600.0
RETRY = 30 * 60.0


async def overflow_mid(store: CallStore, clock: ManualClock, call_id: str, caller: str, **crm: str) -> Callback:
    """Route a mid call and let it wait out its 60 s; return the callback this created."""
    await store.route(call_id, record(caller, "mid", **crm), "default")
    clock.advance(60)
    snap = await store.get_call(call_id)
    assert snap.call.status == "overflowed"
    assert snap.callback is not None
    return snap.callback


async def take_callback(store: CallStore, agent_id: str, queues: list[str] | None = None) -> Callback:
    work = await store.next_work(agent_id, queues)
    assert work is not None and work.call is None and work.callback is not None
    return work.callback


async def readable(store: CallStore) -> Any:
    return msgspec.to_builtins(
        (await store.callbacks("open", 100), await store.callbacks("done", 100), await store.callback_summary())
    )


# --- creation ----------------------------------------------------------------------------------


async def test_mid_overflow_creates_a_callback_with_the_record_and_a_24h_deadline(make_store: MakeStore) -> None:
    store, clock = make_store()
    found = await overflow_mid(store, clock, "c1", "+1001", customer_id="C-1", name="Li Na")
    assert found.callback_id == "cb-1"
    assert found.caller == "+1001"
    assert (found.tier, found.queue, found.call_id, found.reason) == ("mid", "default", "c1", "max_wait")
    assert found.status == "open"
    assert found.created_at == T0 + 60
    assert found.deadline == T0 + 60 + DAY
    assert found.next_attempt_at == T0 + 60
    assert found.attempts == 0 and found.agent_id is None
    assert found.record == record("+1001", "mid", customer_id="C-1", name="Li Na")
    assert found.record.crm == {"customer_id": "C-1", "name": "Li Na"}
    assert (await store.get_call("c1")).call.callback_id == "cb-1"
    assert [c.callback_id for c in await store.callbacks("open", 10)] == ["cb-1"]


async def test_mid_full_queue_overflow_creates_a_callback_at_arrival(make_store: MakeStore) -> None:
    store, clock = make_store(Policy(queues={"default": QueuePolicy(max_waiting=1)}))
    await store.route("s1", record("+1000"), "default")
    clock.advance(5)
    snap, _ = await store.route("m1", record("+1001", "mid", customer_id="C-1"), "default")
    assert snap.call.status == "overflowed"
    assert snap.callback is not None
    assert snap.callback.reason == "queue_full"
    assert snap.callback.deadline == T0 + 5 + DAY
    assert snap.callback.record.crm == {"customer_id": "C-1"}


async def test_a_second_overflow_keeps_one_callback_and_the_earliest_deadline(make_store: MakeStore) -> None:
    store, clock = make_store()
    first = await overflow_mid(store, clock, "c1", "+1001")
    clock.advance(40)
    second = await overflow_mid(store, clock, "c2", "+1001")
    assert second.callback_id == first.callback_id
    assert second.deadline == T0 + 60 + DAY  # the first one's, the earliest
    assert (await store.get_call("c2")).call.callback_id == first.callback_id
    assert len(await store.callbacks("open", 10)) == 1
    # Another caller gets one of their own.
    third = await overflow_mid(store, clock, "c3", "+1002")
    assert third.callback_id != first.callback_id
    assert len(await store.callbacks("open", 10)) == 2


async def test_merge_keeps_the_earliest_deadline_whichever_comes_first() -> None:
    policy = CallbackPolicy()
    existing = cb.new_callback(
        "x", record=record("+1"), tier="mid", queue="q", call_id="c", reason="max_wait", at=1000.0, policy=policy
    )
    cb.merge_overflow(existing, 2000.0, policy)
    assert existing.deadline == 1000.0 + DAY
    existing.deadline = 500.0  # e.g. an earlier window setting
    cb.merge_overflow(existing, 100.0, CallbackPolicy(window_s=300.0))
    assert existing.deadline == 400.0


@pytest.mark.parametrize(("wait", "creates"), [(4.5, False), (5.0, True), (30.0, True)])
async def test_mid_abandon_creates_a_callback_only_after_short_abandon_s(
    make_store: MakeStore, wait: float, creates: bool
) -> None:
    store, clock = make_store()
    await store.route("c1", record("+1001", "mid"), "default")
    clock.advance(wait)
    snap = await store.abandon("c1")
    assert snap.call.status == "abandoned"
    if creates:
        assert snap.callback is not None
        assert snap.callback.reason == "abandoned"
        assert snap.callback.created_at == T0 + wait
        assert snap.callback.deadline == T0 + wait + DAY
    else:
        assert snap.callback is None
        assert await store.callbacks("open", 10) == []


async def test_mid_abandon_while_ringing_creates_a_callback(make_store: MakeStore) -> None:
    store, clock = make_store()
    await store.route("c1", record("+1001", "mid"), "default")
    clock.advance(10)
    await store.next_work("a1", None)
    clock.advance(3)
    snap = await store.abandon("c1")
    assert snap.callback is not None and snap.callback.reason == "abandoned"


async def test_only_mid_calls_get_callbacks(make_store: MakeStore) -> None:
    policy = Policy(
        queues={"default": QueuePolicy(max_waiting=1)},
        tiers={"standard": TierPolicy(overflow_after_s=30), "blacklisted": TierPolicy(overflow_after_s=30)},
    )
    store, clock = make_store(policy)
    await store.route("v0", record("+1000", "vip"), "default")  # fills the queue
    pairs: tuple[tuple[Tier, str], ...] = (("standard", "+1001"), ("blacklisted", "+1002"))
    for tier, caller in pairs:
        snap, _ = await store.route(f"full-{tier}", record(caller, tier), "default")
        assert snap.call.status == "overflowed" and snap.callback is None
    await store.abandon("v0")
    await store.route("s1", record("+1003", "standard"), "default")
    clock.advance(30)
    snap = await store.get_call("s1")
    assert snap.call.status == "overflowed" and snap.call.overflow_reason == "max_wait"
    assert snap.callback is None
    await store.route("v1", record("+1004", "vip"), "default")
    clock.advance(30)
    assert (await store.abandon("v1")).callback is None
    assert await store.callbacks("open", 10) == []
    assert (await store.callback_summary()).open == 0


# --- inbound resolution -----------------------------------------------------------------------------


async def test_inbound_answer_closes_an_open_callback_as_resolved_inbound(make_store: MakeStore) -> None:
    store, clock = make_store()
    first = await overflow_mid(store, clock, "c1", "+1001")
    await store.route("other", record("+1999", "mid"), "default")
    await store.answer("other", "a9")  # someone else getting through changes nothing
    assert (await store.callbacks("open", 10))[0].status == "open"
    clock.advance(100)
    await store.route("c2", record("+1001", "mid"), "default")
    clock.advance(3)
    await store.answer("c2", "a1")
    assert await store.callbacks("open", 10) == []
    done = await store.callbacks("done", 10)
    assert [(c.callback_id, c.status, c.closed_at) for c in done] == [(first.callback_id, "resolved_inbound", T0 + 163)]
    summary = await store.callback_summary()
    assert (summary.open, summary.resolved_inbound) == (0, 1)
    assert await store.next_work("a2", None) is None  # not handed out any more
    # The caller's next overflow opens a fresh callback.
    await store.end("c2")
    again = await overflow_mid(store, clock, "c3", "+1001")
    assert again.callback_id != first.callback_id and again.status == "open"


async def test_inbound_answer_leaves_an_assigned_callback_to_its_agent(make_store: MakeStore) -> None:
    store, clock = make_store()
    first = await overflow_mid(store, clock, "c1", "+1001")
    taken = await take_callback(store, "b1")
    assert taken.callback_id == first.callback_id and taken.status == "assigned" and taken.agent_id == "b1"
    await store.route("c2", record("+1001", "mid"), "default")
    await store.answer("c2", "a1")
    [still] = await store.callbacks("open", 10)
    assert (still.status, still.agent_id) == ("assigned", "b1")
    closed = await store.callback_outcome(first.callback_id, "completed", "b1", None)
    assert closed.status == "completed"


# --- handing out --------------------------------------------------------------------------------


async def test_next_work_while_holding_a_callback_returns_it_again(make_store: MakeStore) -> None:
    store, clock = make_store()
    first = await overflow_mid(store, clock, "c1", "+1001")
    await overflow_mid(store, clock, "c2", "+1002")
    taken = await take_callback(store, "b1")
    await store.route("s1", record("+1003"), "default")  # an inbound call waits now
    again = await take_callback(store, "b1")
    assert again.callback_id == taken.callback_id == first.callback_id
    # Another agent gets the inbound call first, then the other callback.
    work = await store.next_work("b2", None)
    assert work is not None and work.call is not None and work.call.call.call_id == "s1"
    other = await take_callback(store, "b3")
    assert other.caller == "+1002"


async def test_callbacks_are_handed_out_by_deadline_and_filtered_by_queue(make_store: MakeStore) -> None:
    store, clock = make_store(Policy(queues={"a": QueuePolicy(), "b": QueuePolicy()}))
    await store.route("c1", record("+1001", "mid"), "b")
    clock.advance(10)
    await store.route("c2", record("+1002", "mid"), "a")
    clock.advance(60)  # both overflowed: c1 at T0+60 (earlier deadline), c2 at T0+70
    assert [c.caller for c in await store.callbacks("open", 10)] == ["+1001", "+1002"]
    assert [c.caller for c in await store.callbacks("open", 1)] == ["+1001"]
    only_a = await take_callback(store, "x", ["a"])
    assert only_a.caller == "+1002"
    rest = await take_callback(store, "y", None)
    assert rest.caller == "+1001"
    assert await store.next_work("z", None) is None


# --- outcomes -------------------------------------------------------------------------------------


async def test_completed_closes_and_frees_the_agent(make_store: MakeStore) -> None:
    store, clock = make_store()
    first = await overflow_mid(store, clock, "c1", "+1001")
    await overflow_mid(store, clock, "c2", "+1002")
    await take_callback(store, "b1")
    clock.advance(600)
    done = await store.callback_outcome(first.callback_id, "completed", "b1", "sorted out")
    assert (done.status, done.attempts, done.closed_at, done.agent_id, done.note) == (
        "completed",
        1,
        clock.now(),
        None,
        "sorted out",
    )
    nxt = await take_callback(store, "b1")  # b1 is free again
    assert nxt.caller == "+1002"
    summary = await store.callback_summary()
    assert (summary.completed, summary.completed_in_time, summary.assigned) == (1, 1, 1)
    assert summary.service_level == 1.0


async def test_no_answer_is_retried_after_30_minutes_and_not_before(make_store: MakeStore) -> None:
    store, clock = make_store()
    first = await overflow_mid(store, clock, "c1", "+1001")
    await take_callback(store, "b1")
    after = await store.callback_outcome(first.callback_id, "no_answer", "b1", None)
    retry_at = clock.now() + RETRY
    assert (after.status, after.attempts, after.agent_id, after.next_attempt_at) == ("open", 1, None, retry_at)
    clock.set(retry_at - 1)
    assert await store.next_work("b1", None) is None
    assert [c.callback_id for c in await store.callbacks("open", 10)] == [first.callback_id]  # still listed
    clock.set(retry_at)
    again = await take_callback(store, "b2")
    assert again.callback_id == first.callback_id and again.attempts == 1


async def test_three_unanswered_attempts_close_as_unreached(make_store: MakeStore) -> None:
    store, clock = make_store()
    first = await overflow_mid(store, clock, "c1", "+1001")
    for attempt in (1, 2, 3):
        await take_callback(store, "b1")
        after = await store.callback_outcome(first.callback_id, "no_answer", "b1", None)
        assert after.attempts == attempt
        if attempt < 3:
            assert after.status == "open"
            clock.advance(RETRY)
    assert after.status == "unreached"
    assert after.closed_at == clock.now()
    clock.advance(RETRY)
    assert await store.next_work("b1", None) is None
    summary = await store.callback_summary()
    assert (summary.unreached, summary.open, summary.service_level) == (1, 0, 0.0)


async def test_no_answer_with_no_time_left_before_the_deadline_is_unreached(make_store: MakeStore) -> None:
    store, clock = make_store()
    first = await overflow_mid(store, clock, "c1", "+1001")
    clock.set(first.deadline - RETRY + 1)  # a retry would come after the deadline
    await take_callback(store, "b1")
    after = await store.callback_outcome(first.callback_id, "no_answer", "b1", None)
    assert (after.status, after.attempts) == ("unreached", 1)


async def test_no_answer_with_a_retry_exactly_at_the_deadline_is_still_retried(make_store: MakeStore) -> None:
    store, clock = make_store()
    first = await overflow_mid(store, clock, "c1", "+1001")
    clock.set(first.deadline - RETRY)
    await take_callback(store, "b1")
    after = await store.callback_outcome(first.callback_id, "no_answer", "b1", None)
    assert (after.status, after.next_attempt_at) == ("open", first.deadline)


async def test_cancelled_closes_without_an_attempt(make_store: MakeStore) -> None:
    store, clock = make_store()
    first = await overflow_mid(store, clock, "c1", "+1001")
    await take_callback(store, "b1")
    after = await store.callback_outcome(first.callback_id, "cancelled", "b1", "duplicate")
    assert (after.status, after.attempts, after.note) == ("cancelled", 0, "duplicate")
    assert await store.next_work("b1", None) is None
    summary = await store.callback_summary()
    assert (summary.cancelled, summary.service_level) == (1, None)


async def test_a_cancelled_attempt_takes_the_callback_off_the_work_list(make_store: MakeStore) -> None:
    store, clock = make_store()
    first = await overflow_mid(store, clock, "c1", "+1001")
    await take_callback(store, "b1")
    await store.callback_outcome(first.callback_id, "no_answer", "b1", None)
    clock.advance(RETRY)
    await take_callback(store, "b2")
    await store.callback_outcome(first.callback_id, "cancelled", "b2", None)
    clock.advance(RETRY)
    assert await store.next_work("b1", None) is None


async def test_outcomes_that_are_refused_change_nothing(make_store: MakeStore) -> None:
    store, clock = make_store()
    first = await overflow_mid(store, clock, "c1", "+1001")
    await take_callback(store, "b1")
    before = await readable(store)
    for agent in ("b2", None):  # not b2's; no agent named
        with pytest.raises(Conflict) as err:
            await store.callback_outcome(first.callback_id, "completed", agent, None)
        assert err.value.code == "not_assigned"
        assert await readable(store) == before
    with pytest.raises(NotFound) as missing:
        await store.callback_outcome("nope", "completed", None, None)
    assert missing.value.code == "callback_not_found"
    await store.callback_outcome(first.callback_id, "completed", "b1", None)
    before = await readable(store)
    closed_moves: list[tuple[Outcome, str | None]] = [
        ("no_answer", "b1"),
        ("cancelled", "b1"),
        ("completed", "b2"),
        ("completed", None),
    ]
    for outcome, agent in closed_moves:
        with pytest.raises(Conflict) as closed:
            await store.callback_outcome(first.callback_id, outcome, agent, None)
        assert closed.value.code == "invalid_state"
    assert await readable(store) == before


# --- outcomes are owned and idempotent per attempt (issue 13, item 4) ------------------------------


async def test_a_retried_no_answer_uses_no_second_attempt(make_store: MakeStore) -> None:
    store, clock = make_store()
    first = await overflow_mid(store, clock, "c1", "+1001")
    await take_callback(store, "b1")
    after = await store.callback_outcome(first.callback_id, "no_answer", "b1", "rang out")
    assert (after.status, after.attempts) == ("open", 1)
    before = await readable(store)
    for _ in range(2):  # the agent's desktop retries: same attempt, same outcome
        clock.advance(1)
        again = await store.callback_outcome(first.callback_id, "no_answer", "b1", "retried")
        assert (again.status, again.attempts, again.note, again.next_attempt_at) == (
            "open",
            1,
            "rang out",
            after.next_attempt_at,
        )
    assert await readable(store) == before


async def test_a_retried_completed_answers_the_closed_callback_as_it_is(make_store: MakeStore) -> None:
    store, clock = make_store()
    first = await overflow_mid(store, clock, "c1", "+1001")
    await take_callback(store, "b1")
    done = await store.callback_outcome(first.callback_id, "completed", "b1", None)
    before = await readable(store)
    clock.advance(5)
    again = await store.callback_outcome(first.callback_id, "completed", "b1", None)
    assert (again.status, again.attempts, again.closed_at) == ("completed", 1, done.closed_at)
    assert await readable(store) == before


async def test_an_open_callback_takes_no_outcome_from_anyone(make_store: MakeStore) -> None:
    store, clock = make_store()
    fresh = await overflow_mid(store, clock, "c1", "+1001")
    retried = await overflow_mid(store, clock, "c2", "+1002")
    await take_callback(store, "b1")
    await take_callback(store, "b1x")
    await store.callback_outcome(fresh.callback_id, "no_answer", "b1", None)
    await store.callback_outcome(retried.callback_id, "no_answer", "b1x", None)
    before = await readable(store)
    not_theirs: list[tuple[str, Outcome, str | None]] = [
        (fresh.callback_id, "completed", "b1"),  # the last agent, another outcome: not a retry
        (fresh.callback_id, "no_answer", "b2"),
        (fresh.callback_id, "cancelled", None),
        (retried.callback_id, "no_answer", None),
    ]
    for callback_id, outcome, agent in not_theirs:
        with pytest.raises(Conflict) as err:
            await store.callback_outcome(callback_id, outcome, agent, None)
        assert err.value.code == "not_assigned", (callback_id, outcome, agent)
    assert await readable(store) == before


async def test_after_a_new_hand_out_the_same_outcome_is_a_new_attempt(make_store: MakeStore) -> None:
    store, clock = make_store()
    first = await overflow_mid(store, clock, "c1", "+1001")
    for attempt in (1, 2):
        await take_callback(store, "b1")
        after = await store.callback_outcome(first.callback_id, "no_answer", "b1", None)
        assert after.attempts == attempt
        clock.advance(RETRY)


@pytest.mark.parametrize("note", ["\u0000", "", "a\u0000b", "\u0001\u001f\u007f", "line\nbreak", "中文 ☎"])
async def test_a_note_is_kept_as_given_on_every_store(make_store: MakeStore, note: str) -> None:
    """Issue 13, item 13: Redis once read a note of "\\0" as "no note"; any text is a note."""
    store, clock = make_store()
    first = await overflow_mid(store, clock, "c1", "+1001")
    await take_callback(store, "b1")
    after = await store.callback_outcome(first.callback_id, "no_answer", "b1", note)
    assert after.note == note
    [listed] = await store.callbacks("open", 10)
    assert listed.note == note
    clock.advance(RETRY)
    await take_callback(store, "b1")
    kept = await store.callback_outcome(first.callback_id, "completed", "b1", None)  # no note: the last one stays
    assert kept.note == note


OUTCOMES: tuple[Outcome, ...] = ("completed", "no_answer", "cancelled")


async def test_outcome_rule_is_the_same_on_every_store(make_store: MakeStore) -> None:
    """Every state × poster × outcome: the store does what callbacks.check_outcome says (apply,
    no-op, or which refusal). On Redis that is the Lua engine's second writing of the rule."""
    states = ("assigned", "open", "open_after_no_answer", "completed", "cancelled")
    for state in states:
        for agent in ("b1", "b2", None):
            for outcome in OUTCOMES:
                store, clock = make_store()
                made = await overflow_mid(store, clock, "c1", "+1001")
                if state != "open":
                    await take_callback(store, "b1")
                if state in ("open_after_no_answer", "completed", "cancelled"):
                    ended = {"open_after_no_answer": "no_answer"}.get(state, state)
                    await store.callback_outcome(made.callback_id, ended, "b1", None)  # type: ignore[arg-type]
                [now] = [c for c in await store.callbacks("open", 10) + await store.callbacks("done", 10)]
                case = (state, agent, outcome)
                seen = msgspec.to_builtins(now)  # the memory store hands out its own object
                try:
                    expected: Any = cb.check_outcome(msgspec.structs.replace(now), outcome, agent)
                except Conflict as refusal:
                    expected = refusal.code
                try:
                    after = await store.callback_outcome(made.callback_id, outcome, agent, None)
                    got: Any = msgspec.to_builtins(after) != seen  # True: applied, False: a no-op
                except Conflict as refusal:
                    got = refusal.code
                assert got == expected, case


# --- reports ----------------------------------------------------------------------------------------


async def test_overdue_callbacks_and_the_callback_service_level(make_store: MakeStore) -> None:
    # A one-hour callback window keeps every closed callback within the 24 h retention.
    store, clock = make_store(Policy(callbacks=CallbackPolicy(window_s=3600.0)))
    in_time = await overflow_mid(store, clock, "c1", "+1001")  # deadline T0+60+3600
    late = await overflow_mid(store, clock, "c2", "+1002")  # T0+120+3600
    lost = await overflow_mid(store, clock, "c3", "+1003")  # T0+180+3600
    pending = await overflow_mid(store, clock, "c4", "+1004")  # T0+240+3600
    assert pending.deadline == T0 + 240 + 3600
    await take_callback(store, "b1")
    await store.callback_outcome(in_time.callback_id, "completed", "b1", None)
    assert (await take_callback(store, "b2")).callback_id == late.callback_id  # b2 holds it from now on
    assert (await take_callback(store, "b3")).callback_id == lost.callback_id
    await store.callback_outcome(lost.callback_id, "cancelled", "b3", None)
    assert await store.callbacks("overdue", 10) == []
    clock.set(late.deadline)  # exactly at the deadline: not yet overdue
    assert await store.callbacks("overdue", 10) == []
    clock.set(late.deadline + 1)
    assert [c.callback_id for c in await store.callbacks("overdue", 10)] == [late.callback_id]
    clock.set(pending.deadline + 1)
    overdue = await store.callbacks("overdue", 10)
    assert [c.callback_id for c in overdue] == [late.callback_id, pending.callback_id]
    assert [c.callback_id for c in await store.callbacks("overdue", 1)] == [late.callback_id]
    await take_callback(store, "b2")  # an overdue callback is still worked: late one first
    await store.callback_outcome(late.callback_id, "completed", "b2", None)  # completed, but late
    summary = await store.callback_summary()
    # decided = completed 2 + unreached 0 + overdue 1 (pending); in time: only in_time.
    assert (summary.completed, summary.completed_in_time, summary.overdue, summary.open) == (2, 1, 1, 1)
    assert summary.cancelled == 1
    assert summary.service_level == round(1 / 3, 6)
    assert [c.callback_id for c in await store.callbacks("done", 10)] == [
        in_time.callback_id,
        late.callback_id,
        lost.callback_id,
    ]


async def test_closed_callbacks_are_forgotten_after_retention(make_store: MakeStore) -> None:
    store, clock = make_store()
    first = await overflow_mid(store, clock, "c1", "+1001")
    await take_callback(store, "b1")
    await store.callback_outcome(first.callback_id, "cancelled", "b1", None)
    clock.advance(DAY)
    assert await store.callbacks("done", 10) == []
    with pytest.raises(NotFound):
        await store.callback_outcome(first.callback_id, "completed", None, None)


# --- the pure rules ---------------------------------------------------------------------------------


def test_pure_outcome_rules() -> None:
    policy = CallbackPolicy(window_s=3600.0, retry_delay_s=600.0, max_attempts=2)
    made = cb.new_callback(
        "x", record=record("+1"), tier="mid", queue="q", call_id="c", reason="abandoned", at=0.0, policy=policy
    )
    assert (made.deadline, made.next_attempt_at, made.active) == (3600.0, 0.0, True)
    cb.assign(made, "b1", 0.0)
    assert made.active and made.status == "assigned"
    assert not cb.resolve_inbound(made, 10.0)  # assigned: left alone
    cb.apply_outcome(made, "no_answer", "b1", 100.0, policy)
    assert (made.status, made.attempts, made.next_attempt_at, made.agent_id) == ("open", 1, 700.0, None)
    assert not cb.apply_outcome(made, "no_answer", "b1", 101.0, policy)  # a retry: no second attempt
    assert made.attempts == 1
    with pytest.raises(Conflict) as unheld:
        cb.apply_outcome(made, "no_answer", "b2", 800.0, policy)
    assert unheld.value.code == "not_assigned"
    cb.assign(made, "b2", 0.0)
    assert cb.apply_outcome(made, "no_answer", "b2", 800.0, policy)
    assert (made.status, made.attempts, made.closed_at) == ("unreached", 2, 800.0)
    assert not made.active and not made.overdue(1e9)
    with pytest.raises(Conflict):
        cb.apply_outcome(made, "completed", "b2", 900.0, policy)

    fresh = cb.new_callback(
        "y", record=record("+2"), tier="mid", queue="q", call_id="c", reason="max_wait", at=0.0, policy=policy
    )
    assert fresh.overdue(3600.5) and not fresh.overdue(3600.0)
    assert cb.resolve_inbound(fresh, 5.0)
    assert (fresh.status, fresh.closed_at) == ("resolved_inbound", 5.0)
    assert not fresh.completed_in_time()

    late = cb.new_callback(
        "z", record=record("+3"), tier="mid", queue="q", call_id="c", reason="max_wait", at=0.0, policy=policy
    )
    cb.assign(late, "b3", 0.0)
    cb.apply_outcome(late, "completed", "b3", 3600.0, policy)
    assert late.completed_in_time()  # at the deadline counts as in time
    late.closed_at = 3600.5
    assert not late.completed_in_time()
