"""What an agent gets next (issue 16 item 2): VIP calls; mid calls (and aged standard calls);
callbacks within `callback_urgent_s` of their deadline; standard calls; blacklisted calls;
other callbacks. The rule (`decisions.NEXT_ORDER`) on every store, and as a property."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given, settings

from tierline.queue import decisions as d
from tierline.queue.clock import ManualClock
from tierline.queue.memory_store import MemoryCallStore
from tierline.queue.policy import CallbackPolicy, Policy
from tierline.queue.store import CallStore
from tierline.tiers.model import TIERS, Tier

from .helpers import T0, MakeStore, counter_ids, record

HOUR = 3600.0


async def drain(store: CallStore, agents: int) -> list[str]:
    """Each of `agents` fresh agents asks once: the call ids and callback ids handed out, in order."""
    out = []
    for n in range(agents):
        work = await store.next_work(f"agent-{n}", None)
        if work is None:
            break
        out.append(work.call.call.call_id if work.call is not None else f"callback:{work.callback.call_id}")  # type: ignore[union-attr]
    return out


async def one_callback(store: CallStore, clock: ManualClock, caller: str = "+1900") -> None:
    """A mid caller who waits out 60 s: a callback (the call id `cb-call`)."""
    await store.route("cb-call", record(caller, "mid"), "default")
    clock.advance(60)


async def one_of_each_tier(store: CallStore) -> None:
    for n, tier in enumerate(reversed(TIERS)):  # the worst first, so arrival order never decides
        await store.route(f"call-{tier}", record(f"+100{n}", tier), "default")


async def test_a_callback_near_its_deadline_goes_ahead_of_standard_calls(make_store: MakeStore) -> None:
    store, clock = make_store(Policy(callbacks=CallbackPolicy(window_s=3 * HOUR)))
    await one_callback(store, clock)
    clock.advance(HOUR + 1)  # 1 h 59 min left: within callback_urgent_s (2 h)
    await one_of_each_tier(store)
    assert await drain(store, 6) == [
        "call-vip",
        "call-mid",
        "callback:cb-call",
        "call-standard",
        "call-blacklisted",
    ]


async def test_other_callbacks_come_after_every_call(make_store: MakeStore) -> None:
    store, clock = make_store(Policy(callbacks=CallbackPolicy(window_s=3 * HOUR)))
    await one_callback(store, clock)
    clock.advance(HOUR - 1)  # 2 h 1 s left: not urgent yet
    await one_of_each_tier(store)
    assert await drain(store, 6) == [
        "call-vip",
        "call-mid",
        "call-standard",
        "call-blacklisted",
        "callback:cb-call",
    ]


async def test_urgent_off_is_the_order_before_issue_16(make_store: MakeStore) -> None:
    store, clock = make_store(Policy(callback_urgent_s=0, callbacks=CallbackPolicy(window_s=HOUR)))
    await one_callback(store, clock)
    clock.advance(2 * HOUR)  # past its deadline: still after every call
    await one_of_each_tier(store)
    assert (await drain(store, 6))[-1] == "callback:cb-call"


async def test_an_aged_standard_call_ranks_with_mid_ahead_of_an_urgent_callback(make_store: MakeStore) -> None:
    store, clock = make_store(Policy(aging_s=30, callbacks=CallbackPolicy(window_s=HOUR)))
    await one_callback(store, clock)  # urgent at once: 1 h < 2 h
    await store.route("old-standard", record("+1001", "standard"), "default")
    await store.route("new-standard", record("+1002", "standard"), "default")
    clock.advance(20)
    await store.route("late-standard", record("+1003", "standard"), "default")
    clock.advance(11)  # the first two are aged now
    assert await drain(store, 5) == ["old-standard", "new-standard", "callback:cb-call", "late-standard"]


# --- the invariant, as a property ----------------------------------------------------------


def model_class(item: tuple[str, float, float], now: float, urgent_s: float) -> int:
    """An item's step in NEXT_ORDER: ("call", rank, arrival) or ("callback", deadline, created)."""
    kind, key, _ = item
    if kind == "call":
        return d.NEXT_ORDER.index(("calls", int(key)))
    urgent = d.is_urgent(key, now, urgent_s)
    return d.NEXT_ORDER.index(("callbacks", "urgent" if urgent else "rest"))


@given(
    ranks=st.lists(st.sampled_from(sorted(d.TIER_OF)), max_size=12),
    deadlines=st.lists(st.floats(min_value=-3 * HOUR, max_value=30 * HOUR), max_size=8),
    urgent_s=st.sampled_from([0.0, 600.0, 2 * HOUR]),
)
def test_next_pick_hands_out_work_in_next_order_then_arrival_or_deadline(
    ranks: list[int], deadlines: list[float], urgent_s: float
) -> None:
    """Repeatedly picking between the best call and the best callback with `next_pick` yields
    every item sorted by its NEXT_ORDER step, then arrival (calls) or deadline (callbacks)."""
    now = 0.0
    calls = sorted((rank, n) for n, rank in enumerate(ranks))  # by rank, then arrival
    callbacks = sorted(deadlines)
    items = [("call", float(r), float(n)) for r, n in calls] + [("callback", dl, 0.0) for dl in callbacks]
    expected = sorted(items, key=lambda it: (model_class(it, now, urgent_s), it[1], it[2]))
    got = []
    while calls or callbacks:
        pick = d.next_pick(calls[0][0] if calls else None, callbacks[0] if callbacks else None, now, urgent_s)
        if pick == "call":
            rank, n = calls.pop(0)
            got.append(("call", float(rank), float(n)))
        else:
            assert pick == "callback"
            got.append(("callback", callbacks.pop(0), 0.0))
    assert got == expected


@settings(max_examples=40, deadline=None)
@given(
    tiers=st.lists(st.sampled_from(TIERS), max_size=10),
    callback_ages=st.lists(st.integers(min_value=0, max_value=6), max_size=5, unique=True),
)
async def test_the_memory_store_follows_the_rule(tiers: list[Tier], callback_ages: list[int]) -> None:
    """Callbacks created 0–6 h before now with a 7 h window (some within the 2 h urgency, some
    not), then calls of random tiers: the store hands them out in the model's order."""
    clock = ManualClock(T0)
    store = MemoryCallStore(Policy(callbacks=CallbackPolicy(window_s=7 * HOUR)), clock, new_id=counter_ids())
    created: list[tuple[float, str]] = []
    for n, age in enumerate(sorted(callback_ages, reverse=True)):
        clock.set(T0 + (6 - age) * HOUR)
        await store.route(f"mid-{n}", record(f"+190{n}", "mid"), "default")
        clock.advance(60)
        created.append((clock.now() + 7 * HOUR, f"callback:mid-{n}"))
    clock.set(T0 + 6 * HOUR + 120)
    now = clock.now()
    for n, tier in enumerate(tiers):
        await store.route(f"call-{n}", record(f"+100{n}", tier), "default")
    items: list[tuple[str, float, int, str]] = [("call", d.RANK[t], n, f"call-{n}") for n, t in enumerate(tiers)]
    items += [("callback", deadline, 0, name) for deadline, name in created]
    expected = [
        it[3] for it in sorted(items, key=lambda it: (model_class((it[0], it[1], it[2]), now, 2 * HOUR), it[1], it[2]))
    ]
    assert await drain(store, len(items) + 1) == expected
