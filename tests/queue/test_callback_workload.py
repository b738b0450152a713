"""The team lead's workload view (issue 20 item 3): per queue, active callbacks by hour of
deadline over the next 24 h, overdue and at risk, and who holds what; on the memory store, a
real Redis and a real Redis Cluster."""

from __future__ import annotations

from tierline.queue.callback_index import workload_edges
from tierline.queue.policy import CallbackPolicy, Policy, QueuePolicy
from tierline.queue.store import CallStore

from .helpers import T0, MakeStore, record

HOUR = 3600.0
# T0 is Friday 2027-01-15 08:00 UTC; "late" is open on Fridays 08:00-22:00 only.
POLICY = Policy(
    queues={"default": QueuePolicy(), "sales": QueuePolicy(), "late": QueuePolicy(hours={"fri": ["08:00-22:00"]})},
    callbacks=CallbackPolicy(window_s=12 * HOUR),
)


def test_the_edges_are_now_then_whole_hours() -> None:
    edges = workload_edges(T0 + 1800)
    assert edges[:3] == [T0 + 1800, T0 + HOUR, T0 + 2 * HOUR] and len(edges) == 26
    assert edges[-2:] == [T0 + 24 * HOUR, T0 + 1800 + 24 * HOUR]
    assert workload_edges(T0) == [T0 + i * HOUR for i in range(25)]


async def overflow(store: CallStore, call_id: str, caller: str, queue: str) -> None:
    await store.route(call_id, record(caller, "mid"), queue)


async def test_the_workload_by_queue_and_hour_and_who_holds_what(make_store: MakeStore) -> None:
    store, clock = make_store(POLICY)
    await overflow(store, "c1", "+8613900000001", "default")  # deadline 20:01
    clock.set(T0 + 2 * HOUR)
    await overflow(store, "c2", "+8613900000002", "sales")  # deadline 22:01
    clock.set(T0 + 3 * HOUR)
    await overflow(store, "c3", "+8613900000003", "default")  # deadline 23:01
    clock.advance(60)
    work = await store.next_work("b1", ["default"], "callbacks")
    assert work is not None and work.callback is not None and work.callback.call_id == "c1"
    clock.set(T0 + 13 * HOUR + 58 * 60)  # Friday 21:58: "late" closes in 2 minutes
    await overflow(store, "c4", "+8613900000004", "late")  # 21:59, deadline Saturday 09:59, at risk
    clock.advance(60)

    got = await store.callback_workload()
    now = T0 + 13 * HOUR + 59 * 60
    assert got.now == now and got.edges == workload_edges(now)
    by_queue = {q.queue: q for q in got.queues}
    assert set(by_queue) == {"default", "sales", "late"}
    default, sales, late = by_queue["default"], by_queue["sales"], by_queue["late"]
    assert (default.active, default.overdue, default.at_risk, default.later) == (2, 1, 0, 0)
    assert [i for i, n in enumerate(default.by_hour) if n] == [2] and sum(default.by_hour) == 1  # 23:01
    assert (sales.active, sales.overdue, sales.at_risk) == (1, 0, 0)
    assert [i for i, n in enumerate(sales.by_hour) if n] == [1]  # 22:01
    assert (late.active, late.overdue, late.at_risk) == (1, 0, 1)
    assert [i for i, n in enumerate(late.by_hour) if n] == [12]  # Saturday 09:59
    assert [(h.agent_id, h.callback.call_id, h.callback.status) for h in got.holders] == [("b1", "c1", "assigned")]

    # Closing moves the figures with it: the held callback completed, the at-risk one cancelled.
    await store.callback_outcome(work.callback.callback_id, "completed", "b1", None)
    taken = await store.next_work("b2", ["late"], "callbacks")
    assert taken is not None and taken.callback is not None
    await store.callback_outcome(taken.callback.callback_id, "cancelled", "b2", "asked not to be called")
    after = {q.queue: q for q in (await store.callback_workload()).queues}
    assert (after["default"].active, after["default"].overdue) == (1, 0)
    assert (after["late"].active, after["late"].at_risk) == (0, 0)
    assert (await store.callback_workload()).holders == []
