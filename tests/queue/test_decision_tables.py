"""The decision tables (queue/decisions.py), entry by entry, on every store; and the Lua the
Redis engine receives holds exactly those tables and key names.

For each (action, call status, who asks) and each (outcome, callback status, who posts) the
test builds that state on a fresh queue of the store, applies the request and compares what
the store did (the new status, a no-op, or the refusal's code and message) with the table.
The combinations no request sequence can build are listed, each with its reason, and the
test checks that every other entry of the table was run.
"""

from __future__ import annotations

import itertools
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis

from tierline.queue import decisions as d
from tierline.queue import metrics as mx
from tierline.queue import redis_keys as rk
from tierline.queue.callbacks import Callback
from tierline.queue.clock import ManualClock
from tierline.queue.errors import Conflict
from tierline.queue.policy import CallbackPolicy, Policy, QueuePolicy
from tierline.queue.redis_script import lua_keys, lua_tables
from tierline.queue.redis_store import RedisCallStore
from tierline.queue.store import CallStore
from tierline.tiers.model import TIERS, Tier

from .helpers import MakeStore, record

# Each case runs in a queue of its own, so building one state never touches another's calls.
QUEUES = 160
RETRY_S = 60.0
POLICY = Policy(
    queues={f"q{i}": QueuePolicy(max_waiting=1) for i in range(QUEUES)},
    callbacks=CallbackPolicy(retry_delay_s=RETRY_S, max_attempts=2),
)


class Cases:
    """Hands out a fresh queue, caller and agent names per case."""

    def __init__(self) -> None:
        self._n = itertools.count()

    def next(self) -> tuple[str, str]:
        n = next(self._n)
        assert n < QUEUES
        return f"q{n}", str(n)


def builtins(value: Any) -> Any:
    return msgspec.to_builtins(value)


# --- calls ------------------------------------------------------------------------------------------

# A waiting call names no agent (a requeue clears it) and an overflowed one never had one or
# lost it when it went back to the queue: no agent can be "the same" for them.
# A call that took the callback offer was waiting, so it names no agent either.
UNREACHABLE_CALLS = {
    (a, s, "same") for a in ("answer", "requeue") for s in ("waiting", "overflowed", "callback_requested")
}


async def call_in(store: CallStore, status: d.CallStatus, queue: str, n: str) -> str:
    """A standard call in `status`, held (if at all) by agent h<n>. Returns its id."""
    call_id, holder = f"c{n}", f"h{n}"
    if status == "overflowed":
        await store.route(f"blocker{n}", record(f"+2{n}"), queue)
    await store.route(call_id, record(f"+1{n}"), queue)
    if status in ("offered", "abandoned"):
        work = await store.next_work(holder, [queue])
        assert work is not None and work.call is not None and work.call.call.call_id == call_id
    if status in ("answered", "ended"):
        await store.answer(call_id, holder)
    if status == "abandoned":
        await store.abandon(call_id)
    if status == "ended":
        await store.end(call_id)
    if status == "callback_requested":
        await store.request_callback(call_id)
    got = (await store.get_call(call_id)).call
    assert got.status == status
    return call_id


async def act(store: CallStore, action: d.CallAction, call_id: str, agent: str | None) -> Any:
    if action == "answer":
        assert agent is not None
        return await store.answer(call_id, agent)
    if action == "requeue":
        return await store.requeue(call_id, agent)
    if action == "abandon":
        return await store.abandon(call_id)
    if action == "callback":
        return await store.request_callback(call_id)
    return await store.end(call_id)


async def test_every_call_move_does_what_the_table_says(make_store: MakeStore) -> None:
    store, _ = make_store(POLICY)
    cases = Cases()
    ran = set()
    for action, by_status in d.CALL_MOVES.items():
        for status, by_poster in by_status.items():
            for who, decision in by_poster.items():
                queue, n = cases.next()
                call_id = await call_in(store, status, queue, n)
                before = (await store.get_call(call_id)).call
                agent = {"same": before.agent_id, "other": f"o{n}", "none": None}[who]
                if who == "same" and agent is None:
                    continue
                assert d.poster(agent, before.agent_id) == who
                case = (action, status, who)
                ran.add(case)
                if isinstance(decision, d.Refuse):
                    with pytest.raises(Conflict) as refused:
                        await act(store, action, call_id, agent)
                    assert refused.value.code == decision.code, case
                    message = decision.message.format(
                        call=repr(call_id), status=status, holder=repr(before.agent_id), agent=repr(agent)
                    )
                    assert refused.value.message == message, case
                    assert builtins((await store.get_call(call_id)).call) == builtins(before), case
                    continue
                after = (await act(store, action, call_id, agent)).call
                if isinstance(decision, d.Noop):
                    assert builtins(after) == builtins(before), case
                else:
                    assert after.status == decision.to, case
    assert (
        ran
        == {(a, s, w) for a, by_s in d.CALL_MOVES.items() for s, by_w in by_s.items() for w in by_w} - UNREACHABLE_CALLS
    )


async def test_a_move_that_needs_a_free_agent_refuses_a_busy_one(make_store: MakeStore) -> None:
    store, _ = make_store(POLICY)
    cases = Cases()
    needing = [
        (action, status, who)
        for action, by_status in d.CALL_MOVES.items()
        for status, by_poster in by_status.items()
        for who, decision in by_poster.items()
        if isinstance(decision, d.Move) and decision.free_agent
    ]
    assert needing  # answering a waiting call
    for action, status, who in needing:
        if (action, status, who) in UNREACHABLE_CALLS:
            continue
        queue, n = cases.next()
        busy = f"o{n}"
        await store.route(f"held{n}", record(f"+3{n}"), queue)
        await store.answer(f"held{n}", busy)  # the agent holds a call already
        other_queue, m = cases.next()
        call_id = await call_in(store, status, other_queue, m)
        before = (await store.get_call(call_id)).call
        with pytest.raises(Conflict) as refused:
            await act(store, action, call_id, busy)
        assert refused.value.code == "agent_busy"
        assert builtins((await store.get_call(call_id)).call) == builtins(before)


# --- callback outcomes ------------------------------------------------------------------------------

# The states a callback can be built into, with its status once built.
CALLBACK_STATES: dict[str, d.CallbackStatus] = {
    "open": "open",
    "assigned": "assigned",
    "open_after_no_answer": "open",
    "assigned_last_attempt": "assigned",
    "completed": "completed",
    "cancelled": "cancelled",
    "unreached": "unreached",
    "resolved_inbound": "resolved_inbound",  # after a no_answer, so a repeat of it can be posted
}

# Which outcome can have ended the last attempt of a callback in each status (see below).
LAST_OUTCOME_OF = {
    "open": "no_answer",
    "completed": "completed",
    "cancelled": "cancelled",
    "unreached": "no_answer",
    "resolved_inbound": "no_answer",
}
# Only an assigned callback has a holder, and a hand-out clears the last outcome, so an assigned
# one takes no repeat; elsewhere a repeat is of the outcome that led to the status.
UNREACHABLE_OUTCOMES = {(o, s, "holder") for o in d.OUTCOME_NAMES for s in d.CALLBACK_STATUSES if s != "assigned"} | {
    (o, s, "repeat") for o in d.OUTCOME_NAMES for s in d.CALLBACK_STATUSES if LAST_OUTCOME_OF.get(s) != o
}


async def callback_in(store: CallStore, clock: ManualClock, state: str, queue: str, n: str) -> tuple[str, str]:
    """A mid caller's callback built into `state`, handed (if at all) to agent h<n>: (call id, callback id)."""
    holder, call_id = f"h{n}", f"m{n}"
    await store.route(f"blocker{n}", record(f"+2{n}"), queue)
    await store.route(call_id, record(f"+1{n}", "mid"), queue)  # the queue is full: overflowed, a callback
    await store.abandon(f"blocker{n}")
    snap = await store.get_call(call_id)
    assert snap.callback is not None
    callback_id = snap.callback.callback_id
    if state != "open":
        work = await store.next_work(holder, [queue])
        assert work is not None and work.callback is not None and work.callback.callback_id == callback_id
    ended = {"completed": "completed", "cancelled": "cancelled"}.get(state, "no_answer")
    if state not in ("open", "assigned"):
        await store.callback_outcome(callback_id, ended, holder, None)  # type: ignore[arg-type]
    if state in ("assigned_last_attempt", "unreached"):
        clock.advance(RETRY_S)
        work = await store.next_work(holder, [queue])
        assert work is not None and work.callback is not None and work.callback.callback_id == callback_id
    if state == "unreached":
        await store.callback_outcome(callback_id, "no_answer", holder, None)
    if state == "resolved_inbound":
        await store.route(f"again{n}", record(f"+1{n}", "mid"), queue)
        await store.answer(f"again{n}", f"x{n}")
    return call_id, callback_id


async def current(store: CallStore, call_id: str) -> Callback:
    callback = (await store.get_call(call_id)).callback
    assert callback is not None
    return msgspec.structs.replace(callback)  # the memory store hands out its own object


async def test_every_callback_outcome_does_what_the_table_says(make_store: MakeStore) -> None:
    store, clock = make_store(POLICY)
    cases = Cases()
    ran = set()
    for state, status in CALLBACK_STATES.items():
        for outcome, poster_name in itertools.product(d.OUTCOME_NAMES, ("holder", "other", "none")):
            queue, n = cases.next()
            call_id, callback_id = await callback_in(store, clock, state, queue, n)
            before = await current(store, call_id)
            assert before.status == status
            agent = {"holder": f"h{n}", "other": f"o{n}", "none": None}[poster_name]
            who = d.outcome_poster(agent, outcome, before.agent_id, before.last_outcome, before.last_outcome_agent)
            decision = d.OUTCOMES[outcome][status][who]
            case = (state, outcome, poster_name, who)
            ran.add((outcome, status, who))
            call_at = clock.now() + 60 if outcome == "rescheduled" else None
            if isinstance(decision, d.Refuse):
                with pytest.raises(Conflict) as refused:
                    await store.callback_outcome(callback_id, outcome, agent, None, call_at)
                assert refused.value.code == decision.code, case
                message = decision.message.format(
                    callback=repr(callback_id), status=status, holder=repr(before.agent_id), agent=repr(agent)
                )
                assert refused.value.message == message, case
                assert builtins(await current(store, call_id)) == builtins(before), case
                continue
            after = await store.callback_outcome(callback_id, outcome, agent, None, call_at)
            if isinstance(decision, d.Noop):
                assert builtins(after) == builtins(before), case
                continue
            assert after.attempts == before.attempts + decision.attempt, case
            if decision.closes is not None:
                expected = decision.closes
            elif decision.due == "asked":
                expected = d.RETRY_STATUS
                assert after.next_attempt_at == call_at, case
            elif after.attempts >= POLICY.callbacks.max_attempts:
                expected = d.GIVE_UP_STATUS
            else:
                expected = d.RETRY_STATUS
            assert after.status == expected, case
            assert (after.last_outcome, after.last_outcome_agent, after.agent_id) == (outcome, agent, None), case
    everything = {(o, s, w) for o, by_s in d.OUTCOMES.items() for s, by_w in by_s.items() for w in by_w}
    assert ran == everything - UNREACHABLE_OUTCOMES


# --- routing rules and tallies ----------------------------------------------------------------------


async def test_who_gets_a_callback_and_who_is_admitted_to_a_full_queue(make_store: MakeStore) -> None:
    store, _ = make_store(POLICY)
    cases = Cases()
    for tier in TIERS:
        queue, n = cases.next()
        await store.route(f"blocker{n}", record(f"+2{n}"), queue)
        snap, _ = await store.route(f"c{n}", record(f"+1{n}", tier), queue)
        admitted = tier in d.ADMITTED_WHEN_FULL
        assert snap.call.status == ("waiting" if admitted else "overflowed"), tier
        if not admitted:
            assert (snap.callback is not None) == (tier in d.CALLBACK_TIERS), tier


async def test_each_event_moves_the_counters_the_table_names(make_store: MakeStore) -> None:
    """The lifetime counters of /metrics after one event of each kind, per tier, against
    decisions.LIFETIME_MOVES applied by hand (the Redis engine reads RULES.tally)."""
    store, clock = make_store(POLICY)
    cases = Cases()
    bounds = mx.policy_wait_bounds(POLICY)
    expected: dict[tuple[str, Tier], mx.LifetimeTally] = {}
    # (event kinds in order, wait before the last one) for a call of each kind of ending
    stories: list[tuple[tuple[d.EventKind, ...], float]] = [
        (("arrived",), 0.0),
        (("arrived", "answered"), 3.0),
        (("arrived", "answered"), 25.0),
        (("arrived", "answered", "ended"), 40.0),
        (("arrived", "abandoned"), 2.0),
        (("arrived", "abandoned"), 30.0),
        (("arrived", "overflowed"), 0.0),
    ]
    tiers: tuple[Tier, ...] = ("standard", "vip")
    for tier in tiers:
        threshold = POLICY.tier(tier).sla_threshold_s
        for kinds, wait in stories:
            if "overflowed" in kinds and tier in d.ADMITTED_WHEN_FULL:
                continue
            queue, n = cases.next()
            tally = expected.setdefault((queue, tier), mx.LifetimeTally())
            call_id = f"c{n}"
            if "overflowed" in kinds:
                await store.route(f"blocker{n}", record(f"+2{n}"), queue)
                mx.record(expected.setdefault((queue, "standard"), mx.LifetimeTally()), "arrived", 0, 20, 5, bounds)
            await store.route(call_id, record(f"+1{n}", tier), queue)
            clock.advance(wait)
            if "answered" in kinds:
                await store.answer(call_id, f"h{n}")
            if "ended" in kinds:
                await store.end(call_id)
            if "abandoned" in kinds:
                await store.abandon(call_id)
            for kind in kinds:
                mx.record(tally, kind, wait, threshold, POLICY.short_abandon_s, bounds)
    rows = {(row.queue, row.tier): row for row in (await store.metrics()).rows}
    for (queue, tier), tally in expected.items():
        row = rows[(queue, tier)]
        assert row.answer_wait_buckets == (tally.answer_wait_buckets or [0] * (len(bounds) + 1)), (queue, tier)
        got = {f: getattr(row, f) for f in (*d.LIFETIME_FIELDS, "answer_wait_sum")}
        assert got == {f: getattr(tally, f) for f in (*d.LIFETIME_FIELDS, "answer_wait_sum")}, (queue, tier)


# --- what the Lua engine receives -------------------------------------------------------------------

# Hands the whole of RULES back as msgpack.
_DUMP_RULES = """
return cmsgpack.pack(RULES)
"""


def _decision(decision: object) -> dict[str, object]:
    """A decision as the engine reads it: its kind and fields, an absent field as nil."""
    if isinstance(decision, d.Move):
        return {"kind": "move", "to": decision.to, "free_agent": decision.free_agent}
    if isinstance(decision, d.Refuse):
        return {"kind": "refuse", "code": decision.code, "message": decision.message}
    if isinstance(decision, d.Apply):
        fields: dict[str, object] = {"kind": "apply", "attempt": decision.attempt, "due": decision.due}
        return fields if decision.closes is None else {**fields, "closes": decision.closes}
    assert isinstance(decision, d.Noop)
    return {"kind": "noop"}


async def test_the_lua_engine_receives_exactly_the_python_tables(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        packed = await client.eval(lua_tables() + _DUMP_RULES, 0)
        keys = await client.eval(lua_keys("ns") + "return cmsgpack.pack({ KEY, SLOTS })", 0)
    finally:
        await client.aclose()
    rules = msgspec.msgpack.decode(packed)
    assert rules["rank"] == d.RANK
    assert rules["tier_of"] == d.TIER_OF
    assert rules["callback_tier"] == {t: True for t in d.CALLBACK_TIERS}
    assert rules["admitted_when_full"] == {t: True for t in d.ADMITTED_WHEN_FULL}
    assert rules["resolved_by_inbound"] == {s: True for s in d.RESOLVED_BY_INBOUND}
    assert rules["tally"] == {kind: [x for move in moves for x in move] for kind, moves in d.TALLY_MOVES.items()}
    assert (rules["histogram_kind"], rules["retry_status"], rules["give_up_status"]) == (
        d.HISTOGRAM_KIND,
        d.RETRY_STATUS,
        d.GIVE_UP_STATUS,
    )
    assert rules["closed_reason"] == d.CLOSED_REASON
    assert rules["requested_reason"] == d.REQUESTED_REASON
    assert rules["next_order"] == [list(step) for step in d.NEXT_ORDER]
    assert rules["call"] == {
        action: {status: {who: _decision(x) for who, x in by_who.items()} for status, by_who in by_status.items()}
        for action, by_status in d.CALL_MOVES.items()
    }
    assert rules["call_at_checks"] == [list(check) for check in d.CALL_AT_CHECKS]
    assert rules["attempt_log_cap"] == d.ATTEMPT_LOG_CAP
    assert rules["outcome"] == {
        outcome: {status: {who: _decision(x) for who, x in by_who.items()} for status, by_who in by_status.items()}
        for outcome, by_status in d.OUTCOMES.items()
    }
    assert set(rules) == {
        "rank",
        "tier_of",
        "callback_tier",
        "admitted_when_full",
        "resolved_by_inbound",
        "tally",
        "histogram_kind",
        "retry_status",
        "give_up_status",
        "closed_reason",
        "requested_reason",
        "next_order",
        "call",
        "outcome",
        "call_at_checks",
        "attempt_log_cap",
    }
    key, slots = msgspec.msgpack.decode(keys)
    assert key == {name: rk.engine_key("ns", name) for name in rk.ENGINE} | {
        name: rk.family_key("ns", name) for name in rk.FAMILIES
    }
    assert slots == [[rk.family_key("ns", family), width, ttl] for family, width, ttl in rk.TALLY_SLOTS]


async def test_every_key_the_engine_writes_is_named_in_the_key_layout(make_store: MakeStore, store_kind: str) -> None:
    """After a busy little day, every key in the store's namespace is one queue/redis_keys.py names."""
    if store_kind == "memory":
        pytest.skip("the memory store has no keys")
    store, clock = make_store(POLICY)
    assert isinstance(store, RedisCallStore)
    cases = Cases()
    for state in ("resolved_inbound", "unreached", "open"):
        queue, n = cases.next()
        await callback_in(store, clock, state, queue, n)
    for status in ("ended", "offered", "waiting"):
        queue, n = cases.next()
        await call_in(store, status, queue, n)
    namespace = store._namespace
    found = {k.decode() async for k in store._link.client.scan_iter(match=rk.tag(namespace) + ":*", count=500)}
    singles = {rk.engine_key(namespace, name) for name in rk.ENGINE} | {rk.started_key(namespace)}
    prefixes = tuple(rk.family_key(namespace, family) + ":" for family in rk.FAMILIES)
    assert found
    assert {k for k in found if k not in singles and not k.startswith(prefixes)} == set()
    # and each family the day touched is there
    for family in ("call", "callback", "lane", "ready", "cb_lane", "est", "minute", "interval", "life"):
        assert any(k.startswith(rk.family_key(namespace, family) + ":") for k in found), family
