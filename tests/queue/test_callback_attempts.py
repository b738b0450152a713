"""The back office's callback (issue 20): the overflowed call's context copied onto the
callback, the attempt log, the `rescheduled` outcome and its call_at checks, and `next`
restricted to callbacks. On the memory store, a real Redis and a real Redis Cluster."""

from __future__ import annotations

import msgspec
import pytest

from tierline.queue import decisions as d
from tierline.queue.callbacks import Attempt, Callback
from tierline.queue.clock import ManualClock
from tierline.queue.errors import Conflict, Invalid
from tierline.queue.policy import CallbackPolicy, Policy, QueuePolicy
from tierline.queue.store import CallStore

from .helpers import T0, MakeStore, record

HOUR = 3600.0
DAY = 24 * HOUR
RETRY = CallbackPolicy().retry_delay_s
# T0 is Friday 2027-01-15 08:00 UTC; the queue is open 08:00-20:00 on weekdays.
WEEKDAYS = {day: ["08:00-20:00"] for day in ("mon", "tue", "wed", "thu", "fri")}


async def overflowed(store: CallStore, clock: ManualClock, call_id: str, caller: str) -> Callback:
    """A mid call that waits out its 60 s: the callback it leaves."""
    await store.route(call_id, record(caller, "mid", customer_id="C-" + caller[-3:]), "default")
    clock.advance(60)
    snap = await store.get_call(call_id)
    assert snap.callback is not None
    return snap.callback


async def take(store: CallStore, agent: str) -> Callback:
    work = await store.next_work(agent, None, "callbacks")
    assert work is not None and work.call is None and work.callback is not None
    return work.callback


async def test_the_callback_carries_the_overflowed_call_and_its_attempt_log(make_store: MakeStore) -> None:
    store, clock = make_store()
    created = await overflowed(store, clock, "c1", "+8613900000001")
    assert (created.queue, created.reason, created.created_at) == ("default", "max_wait", T0 + 60)
    assert (created.call_arrived_at, created.waited_s, created.attempt_log) == (T0, 60.0, [])
    clock.advance(5)
    held = await take(store, "b1")
    assert (held.agent_id, held.assigned_at) == ("b1", T0 + 65)
    clock.advance(100)
    missed = await store.callback_outcome(held.callback_id, "no_answer", "b1", "voicemail, left a message")
    retry_at = T0 + 165 + RETRY
    assert (missed.status, missed.next_attempt_at, missed.assigned_at) == ("open", retry_at, None)
    first = Attempt(
        at=T0 + 165,
        agent_id="b1",
        outcome="no_answer",
        taken_at=T0 + 65,
        note="voicemail, left a message",
        next_attempt_at=retry_at,
    )
    assert missed.attempt_log == [first]
    # Nobody gets it before its retry time, then the next agent does.
    clock.set(retry_at - 1)
    assert await store.next_work("b2", None, "callbacks") is None
    clock.set(retry_at)
    again = await take(store, "b2")
    assert again.callback_id == held.callback_id and again.attempt_log == [first]
    clock.advance(30)
    done = await store.callback_outcome(held.callback_id, "completed", "b2", None)
    assert done.status == "completed" and done.attempts == 2
    second = Attempt(at=retry_at + 30, agent_id="b2", outcome="completed", taken_at=retry_at)
    assert done.attempt_log == [first, second]
    # The context and log are read back the same through the supervisors' list.
    (listed,) = await store.callbacks("done", 10)
    assert (listed.call_arrived_at, listed.waited_s, listed.attempt_log) == (T0, 60.0, [first, second])


async def test_a_retried_outcome_adds_no_second_entry(make_store: MakeStore) -> None:
    store, clock = make_store()
    made = await overflowed(store, clock, "c1", "+8613900000001")
    await take(store, "b1")
    first = await store.callback_outcome(made.callback_id, "cancelled", "b1", "wrong number")
    repeat = await store.callback_outcome(made.callback_id, "cancelled", "b1", "wrong number")
    assert len(first.attempt_log) == len(repeat.attempt_log) == 1
    assert repeat.attempt_log[0].note == "wrong number" and repeat.attempt_log[0].next_attempt_at is None


async def test_rescheduled_uses_no_attempt_and_comes_back_at_the_asked_time(make_store: MakeStore) -> None:
    store, clock = make_store(Policy(queues={"default": QueuePolicy(hours=WEEKDAYS)}))
    made = await overflowed(store, clock, "c1", "+8613900000001")
    await take(store, "b1")
    asked = T0 + 6 * HOUR  # Friday 14:00
    moved = await store.callback_outcome(made.callback_id, "rescheduled", "b1", "after lunch", asked)
    assert (moved.status, moved.attempts, moved.next_attempt_at, moved.agent_id) == ("open", 0, asked, None)
    assert moved.attempt_log == [
        Attempt(
            at=T0 + 60,
            agent_id="b1",
            outcome="rescheduled",
            taken_at=T0 + 60,
            note="after lunch",
            next_attempt_at=asked,
        )
    ]
    clock.set(asked - 1)
    assert await store.next_work("b2", None, "callbacks") is None
    clock.set(asked)
    assert (await take(store, "b2")).callback_id == made.callback_id


CHECKS = {code: check for check, code, _ in d.CALL_AT_CHECKS}


@pytest.mark.parametrize(
    ("call_at", "code"),
    [
        (None, "call_at_missing"),
        (T0 + 60, "call_at_past"),  # now exactly: not after now
        (T0 - HOUR, "call_at_past"),
        (T0 + 60 + DAY + 1, "call_at_after_deadline"),
        (T0 + 13 * HOUR, "call_at_closed"),  # Friday 21:00
    ],
)
async def test_a_bad_call_at_is_refused_and_changes_nothing(
    make_store: MakeStore, call_at: float | None, code: str
) -> None:
    assert code in CHECKS
    store, clock = make_store(Policy(queues={"default": QueuePolicy(hours=WEEKDAYS)}))
    made = await overflowed(store, clock, "c1", "+8613900000001")
    await take(store, "b1")
    before = msgspec.to_builtins((await store.callbacks("open", 10), await store.callback_summary()))
    with pytest.raises(Invalid) as refused:
        await store.callback_outcome(made.callback_id, "rescheduled", "b1", "typed", call_at)
    assert refused.value.code == code
    assert msgspec.to_builtins((await store.callbacks("open", 10), await store.callback_summary())) == before
    # Ownership is checked first: another agent's reschedule is 409 whatever its call_at.
    with pytest.raises(Conflict) as other:
        await store.callback_outcome(made.callback_id, "rescheduled", "b9", None, call_at)
    assert other.value.code == "not_assigned"


async def test_the_deadline_itself_is_a_valid_call_at(make_store: MakeStore) -> None:
    store, clock = make_store()
    made = await overflowed(store, clock, "c1", "+8613900000001")
    await take(store, "b1")
    moved = await store.callback_outcome(made.callback_id, "rescheduled", "b1", None, made.deadline)
    assert moved.next_attempt_at == made.deadline


async def test_next_for_callbacks_never_hands_out_a_call(make_store: MakeStore) -> None:
    store, clock = make_store()
    made = await overflowed(store, clock, "c1", "+8613900000001")
    await store.route("v1", record("+8613900000009", "vip"), "default")
    # Every call goes first by the next order; the back office gets the callback anyway.
    assert (await take(store, "b1")).callback_id == made.callback_id
    assert await store.next_work("b2", None, "callbacks") is None  # the call stays for a line agent
    line = await store.next_work("a1", None)
    assert line is not None and line.call is not None and line.call.call.call_id == "v1"
    # An agent holding a call asks for callbacks only: refused, not handed the call.
    with pytest.raises(Conflict) as busy:
        await store.next_work("a1", None, "callbacks")
    assert busy.value.code == "agent_busy"


async def test_the_log_keeps_its_last_entries(make_store: MakeStore) -> None:
    store, clock = make_store(Policy(callbacks=CallbackPolicy(window_s=100 * DAY)))
    made = await overflowed(store, clock, "c1", "+8613900000001")
    for n in range(d.ATTEMPT_LOG_CAP + 3):
        await take(store, "b1")
        clock.advance(10)
        await store.callback_outcome(made.callback_id, "rescheduled", "b1", f"n{n}", clock.now() + 5)
        clock.advance(5)
    (listed,) = await store.callbacks("open", 10)
    assert [a.note for a in listed.attempt_log] == [f"n{n}" for n in range(3, d.ATTEMPT_LOG_CAP + 3)]
    assert listed.attempts == 0
