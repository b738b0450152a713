"""Supervisors' callback reads: bounded pages with a cursor, and counters that equal the lists.

Runs on memory, a real Redis and a real Redis Cluster (the `make_store` fixture). The counts the
dashboard shows (per queue × tier open and overdue, the summary, /metrics) are indexes the
engine moves with each callback; the property test holds them equal to what walking the
lists page by page finds, after random creates, hand-outs, outcomes, inbound answers and
clock moves.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tierline.queue import paging
from tierline.queue.callbacks import Callback
from tierline.queue.clock import ManualClock
from tierline.queue.errors import EngineError, Invalid
from tierline.queue.policy import CallbackPolicy, Policy, QueuePolicy
from tierline.queue.store import CallbackFilter, CallStore

from .helpers import MakeStore, record

QUEUES = ("q1", "q2")
POLICY = Policy(
    queues={"q1": QueuePolicy(), "q2": QueuePolicy()},
    callbacks=CallbackPolicy(window_s=3600.0, retry_delay_s=600.0),
    retain_finished_s=7200.0,
)


async def overflow(store: CallStore, clock: ManualClock, call_id: str, caller: str, queue: str = "q1") -> None:
    """A mid call that waits out its 60 s: a callback (or a merge into the caller's open one)."""
    await store.route(call_id, record(caller, "mid"), queue)
    clock.advance(60)
    assert (await store.get_call(call_id)).call.status == "overflowed"


async def walk(store: CallStore, which: CallbackFilter, limit: int) -> list[Callback]:
    """Every page of a list, following next_cursor; each page holds at most `limit`."""
    found: list[Callback] = []
    cursor = None
    while True:
        got = await store.callback_page(which, limit, cursor)
        assert len(got.callbacks) <= limit
        found += got.callbacks
        if got.next_cursor is None:
            return found
        assert len(got.callbacks) == limit, "a page before the last is full"
        cursor = got.next_cursor


def order(found: list[Callback]) -> list[tuple[float, str]]:
    return [(c.deadline, c.callback_id) for c in found]


async def test_pages_list_every_callback_once_in_deadline_order_with_ties(make_store: MakeStore) -> None:
    store, clock = make_store(POLICY)
    # Five callers per round overflow at the same instant: equal deadlines, ordered by id.
    for round_ in range(3):
        for i in range(5):
            await store.route(f"c{round_}-{i}", record(f"+10{round_}{i}", "mid"), "q1")
        clock.advance(60)
    everything = await store.callbacks("open", 100)
    assert len(everything) == 15
    assert order(everything) == sorted(order(everything))
    for limit in (1, 2, 4, 5, 15, 16):
        assert order(await walk(store, "open", limit)) == order(everything), limit
    last = await store.callback_page("open", 15, None)
    assert last.next_cursor is None  # exactly a page: no empty page after it


async def test_a_cursor_survives_changes_between_pages(make_store: MakeStore) -> None:
    store, clock = make_store(POLICY)
    for i in range(6):
        await store.route(f"c{i}", record(f"+100{i}", "mid"), "q1")
    clock.advance(60)
    first = await store.callback_page("open", 2, None)
    assert first.next_cursor is not None
    # The page's callbacks close, so does the first of the next page, a new one opens.
    held = await store.next_work("a1", None)
    assert held is not None and held.callback is not None
    assert held.callback.callback_id == first.callbacks[0].callback_id
    await store.callback_outcome(first.callbacks[0].callback_id, "completed", "a1", None)
    for agent in ("a2", "a3"):  # the page's second callback, then the next page's first
        work = await store.next_work(agent, None)
        assert work is not None and work.callback is not None
        await store.callback_outcome(work.callback.callback_id, "completed", agent, None)
    await overflow(store, clock, "late", "+1999")
    rest: list[Callback] = []
    cursor: str | None = first.next_cursor
    while cursor is not None:
        page = await store.callback_page("open", 2, cursor)
        rest += page.callbacks
        cursor = page.next_cursor
    still = order(await store.callbacks("open", 100))
    after_first = [k for k in still if k > (first.callbacks[-1].deadline, first.callbacks[-1].callback_id)]
    assert order(rest) == after_first  # none twice, none of those still open skipped


async def test_overdue_and_done_pages(make_store: MakeStore) -> None:
    store, clock = make_store(POLICY)
    for i in range(5):
        await overflow(store, clock, f"c{i}", f"+100{i}")
    clock.advance(3600 - 60 * 2 + 1)  # past the first three deadlines, not the last two
    overdue = await walk(store, "overdue", 2)
    assert len(overdue) == 3 and all(c.deadline < clock.now() for c in overdue)
    summary = await store.callback_summary()
    assert summary.overdue == 3
    for i in range(4):
        work = await store.next_work(f"a{i}", None)
        assert work is not None and work.callback is not None
        await store.callback_outcome(work.callback.callback_id, "completed", f"a{i}", None)
    done = await walk(store, "done", 3)
    assert len(done) == 4 and order(done) == sorted(order(done))
    assert len(await walk(store, "overdue", 2)) == 0


@pytest.mark.parametrize("limit", [0, paging.MAX_PAGE + 1, 10_000])
async def test_a_page_larger_than_the_bound_is_refused(make_store: MakeStore, limit: int) -> None:
    store, _ = make_store(POLICY)
    with pytest.raises(Invalid) as refused:
        await store.callback_page("open", limit, None)
    assert refused.value.code == "invalid_query"


@pytest.mark.parametrize(
    "cursor",
    ["", "not base64!", "bm9wZQ", paging.encode_cursor("done", (1.0, "cb-1")), "WyJvcGVuIiwxLjAsIiJd"],
)
async def test_a_cursor_not_made_for_this_list_is_refused(make_store: MakeStore, cursor: str) -> None:
    store, _ = make_store(POLICY)
    with pytest.raises(Invalid) as refused:
        await store.callback_page("open", 10, cursor)
    assert refused.value.code == "invalid_cursor"


# --- counters equal the lists ---------------------------------------------------------------------

CALLERS = tuple(f"+8613900000{i:02d}" for i in range(6))
AGENTS = ("a1", "a2", "a3")
STEP = st.one_of(
    st.tuples(st.just("overflow"), st.sampled_from(CALLERS), st.sampled_from(QUEUES)),
    st.tuples(st.just("take"), st.sampled_from(AGENTS), st.sampled_from([None, ["q1"], ["q2"]])),
    st.tuples(st.just("outcome"), st.sampled_from(AGENTS), st.sampled_from(["completed", "no_answer", "cancelled"])),
    st.tuples(st.just("inbound"), st.sampled_from(CALLERS), st.sampled_from(AGENTS)),
    st.tuples(st.just("wait"), st.sampled_from([1.0, 59.0, 600.0, 1800.0, 3600.0, 7200.0])),
)


async def check_counters(store: CallStore, clock: ManualClock) -> None:
    now = clock.now()
    active = await walk(store, "open", 2)
    overdue = await walk(store, "overdue", 2)
    assert [c.callback_id for c in overdue] == [c.callback_id for c in active if c.deadline < now]
    assert all(c.active for c in active)
    report = await store.sla(None, "15m")
    lanes_open = Counter((c.queue, c.tier) for c in active)
    lanes_overdue = Counter((c.queue, c.tier) for c in overdue)
    for row in report.rows:
        key = (row.queue, row.tier)
        assert (row.callbacks_open, row.callbacks_overdue) == (lanes_open[key], lanes_overdue[key]), key
    summary = await store.callback_summary()
    statuses = Counter(c.status for c in active)
    done = Counter(c.status for c in await walk(store, "done", 3))
    assert (summary.open, summary.assigned, summary.overdue) == (statuses["open"], statuses["assigned"], len(overdue))
    assert (summary.completed, summary.cancelled, summary.unreached, summary.resolved_inbound) == (
        done["completed"],
        done["cancelled"],
        done["unreached"],
        done["resolved_inbound"],
    )
    metrics = await store.metrics()
    assert (metrics.callbacks_open, metrics.callbacks_assigned, metrics.callbacks_overdue) == (
        statuses["open"],
        statuses["assigned"],
        len(overdue),
    )


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEP, min_size=1, max_size=25))
async def test_counters_equal_what_the_lists_hold(make_store: MakeStore, steps: list[tuple[Any, ...]]) -> None:
    store, clock = make_store(POLICY)
    holding: dict[str, str] = {}  # agent -> callback id it was handed
    for calls, step in enumerate(steps):
        kind = step[0]
        try:
            if kind == "overflow":
                await store.route(f"o{calls}", record(step[1], "mid"), step[2])
                clock.advance(60)
            elif kind == "take" and step[1] not in holding:
                work = await store.next_work(step[1], step[2])
                if work is not None and work.callback is not None:
                    holding[step[1]] = work.callback.callback_id
            elif kind == "outcome" and step[1] in holding:
                await store.callback_outcome(holding.pop(step[1]), step[2], step[1], None)
            elif kind == "inbound" and step[2] not in holding:
                await store.route(f"i{calls}", record(step[1], "mid"), "q1")
                await store.answer(f"i{calls}", step[2])
                await store.end(f"i{calls}")
            elif kind == "wait":
                clock.advance(step[1])
        except EngineError:
            pass  # a refused step changes nothing; the counters are checked all the same
        await check_counters(store, clock)
