"""Estimated wait: position · span / answered, over the last 15 minutes (or since start)."""

from __future__ import annotations

import pytest

from tierline.queue.estimate import EWT_WINDOW_S, estimated_wait
from tierline.queue.policy import Policy, QueuePolicy

from .helpers import T0, MakeStore, record

# One behaviour suite, three stores: a test that takes `make_store` runs on memory, a real Redis
# and a real Redis Cluster.


def test_pure_estimate() -> None:
    assert EWT_WINDOW_S == 900.0
    assert estimated_wait(1, 0, 600.0) is None  # no answers: no guess
    assert estimated_wait(1, 3, 0.0) is None  # no time has passed
    assert estimated_wait(1, 3, 400.0) == 133.3  # 400 / 3 = 133.33…
    assert estimated_wait(2, 3, 400.0) == 266.7  # 800 / 3 = 266.66…
    assert estimated_wait(3, 4, 5000.0) == 675.0  # span capped at 900: 3 · 900 / 4
    assert estimated_wait(5, 10, 900.0) == 450.0


async def test_no_estimate_without_answer_history(make_store: MakeStore) -> None:
    store, clock = make_store()
    snap, _ = await store.route("c1", record("+1"), "default")
    assert snap.position == 1 and snap.estimated_wait_s is None
    clock.advance(300)
    assert (await store.get_call("c1")).estimated_wait_s is None


async def test_estimate_from_the_answers_of_the_last_15_minutes(make_store: MakeStore) -> None:
    store, clock = make_store()  # the store starts at T0
    for i in range(1, 6):
        await store.route(f"c{i}", record(f"+{i}"), "default")
    for i, second in ((1, 100), (2, 200), (3, 300)):
        clock.set(T0 + second)
        await store.answer(f"c{i}", f"a{i}")

    # At T0+400: 3 answers in the 400 s since start; c4 is 1st, c5 2nd.
    clock.set(T0 + 400)
    c4, c5 = await store.get_call("c4"), await store.get_call("c5")
    assert (c4.position, c4.estimated_wait_s) == (1, 133.3)  # 1 · 400 / 3
    assert (c5.position, c5.estimated_wait_s) == (2, 266.7)  # 2 · 400 / 3

    # At T0+1050: the window is (T0+150, T0+1050], 900 s holding the answers at 200 and 300.
    clock.set(T0 + 1050)
    assert (await store.get_call("c4")).estimated_wait_s == 450.0  # 1 · 900 / 2
    assert (await store.get_call("c5")).estimated_wait_s == 900.0  # 2 · 900 / 2

    # At T0+1200 the answer at T0+300 is exactly 900 s old: out. Nothing left, no estimate.
    clock.set(T0 + 1200)
    assert (await store.get_call("c4")).estimated_wait_s is None


@pytest.mark.parametrize("status", ["offered", "answered"])
async def test_no_estimate_for_a_call_that_is_not_waiting(make_store: MakeStore, status: str) -> None:
    store, clock = make_store()
    await store.route("c0", record("+0"), "default")
    clock.advance(10)
    await store.answer("c0", "a0")
    await store.route("c1", record("+1"), "default")
    await store.next_work("a1", None)
    if status == "answered":
        await store.answer("c1", "a1")
    snap = await store.get_call("c1")
    assert snap.call.status == status
    assert snap.position is None and snap.estimated_wait_s is None


async def test_answers_in_another_queue_do_not_count(make_store: MakeStore) -> None:
    store, clock = make_store(Policy(queues={"a": QueuePolicy(), "b": QueuePolicy()}))
    await store.route("x", record("+1"), "a")
    await store.route("y", record("+2"), "b")
    clock.advance(60)
    await store.answer("x", "a1")
    assert (await store.get_call("y")).estimated_wait_s is None
    await store.route("z", record("+3"), "a")
    assert (await store.get_call("z")).estimated_wait_s == 60.0  # 1 · 60 / 1
