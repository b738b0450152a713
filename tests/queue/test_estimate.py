"""Estimated wait per tier: the pure model (queue/estimate.py) and the figure every store quotes."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tierline.queue.estimate import (
    AHT_CALLS,
    MIN_WAIT_S,
    QueueLoad,
    announce,
    arrival_rate,
    bump,
    estimated_wait,
    next_aht,
)
from tierline.queue.policy import Policy, QueuePolicy

from .helpers import T0, MakeStore, record

# --- the pure model ---------------------------------------------------------------------------


def test_no_handle_time_no_estimate() -> None:
    assert estimated_wait(3, 5, 0, None, 0.0) is None


def test_an_idle_agent_for_the_caller_is_no_wait() -> None:
    assert estimated_wait(1, 0, 1, 180.0, 0.0) == 0.0
    assert estimated_wait(2, 4, 2, 180.0, 0.0) == 0.0
    assert (estimated_wait(3, 4, 2, 180.0, 0.0) or 0) > 0  # one more agent must free up


def test_a_vip_first_in_line_waits_the_median_first_free() -> None:
    # 20 agents on 180 s calls free up every 9 s on average; the first free is exponential, its
    # median is 9 · ln 2 = 6.24 s; Wilson–Hilferty's (1 − 1/9)³ · 9 = 6.32 s.
    assert estimated_wait(1, 20, 0, 180.0, 0.0) == 6.3


def test_higher_tiers_arriving_push_a_caller_back() -> None:
    alone = estimated_wait(5, 10, 0, 100.0, 0.0)
    behind_vips = estimated_wait(5, 10, 0, 100.0, 0.05)  # half the drain rate taken by VIPs
    assert alone is not None and behind_vips is not None
    assert behind_vips > 1.6 * alone  # the mean doubles; the median, of a more skewed wait, less


def test_never_zero_for_a_caller_who_must_wait() -> None:
    assert estimated_wait(1, 10_000, 0, 1.0, 0.0) == MIN_WAIT_S


def test_finite_when_higher_tiers_take_every_agent() -> None:
    wait = estimated_wait(2, 2, 0, 100.0, 5.0)  # 0.02 frees/s against 5 VIPs/s
    assert wait is not None and 0 < wait < float("inf")


@given(
    position=st.integers(1, 500),
    talking=st.integers(0, 300),
    idle=st.integers(0, 20),
    aht=st.floats(0.0, 3600.0),
    push=st.floats(0.0, 10.0),
    more=st.integers(1, 50),
    extra_push=st.floats(0.0, 1.0),
)
def test_monotone_in_position_and_push(
    position: int, talking: int, idle: int, aht: float, push: float, more: int, extra_push: float
) -> None:
    base = estimated_wait(position, talking, idle, aht, push)
    assert base is not None
    assert base >= (MIN_WAIT_S if position > idle else 0.0)
    further = estimated_wait(position + more, talking, idle, aht, push)
    assert further is not None and further >= base
    pushed = estimated_wait(position, talking, idle, aht, push + extra_push)
    assert pushed is not None and pushed >= base


@pytest.mark.parametrize(
    ("frees", "drain", "push"), [(1, 0.01, 0.0), (5, 0.01, 0.0), (3, 0.01, 0.003), (20, 0.01, 0.005), (2, 0.01, 0.006)]
)
def test_the_quote_is_the_median_of_the_modelled_wait(frees: int, drain: float, push: float) -> None:
    """Draw the model's wait (frees at rate `drain`, calls pushed ahead at rate `push`) and
    check that about half the draws wait longer than the quote."""
    rng = random.Random(7)
    waits = []
    for _ in range(4000):
        left, t = frees, 0.0
        while left > 0:
            t += rng.expovariate(drain + push)
            left += 1 if rng.random() < push / (drain + push) else -1
        waits.append(t)
    quote = estimated_wait(frees, 1, 0, 1 / drain, push)
    assert quote is not None
    assert 0.9 <= statistics.median(waits) / quote <= 1.1


def test_arrival_rate_of_a_steady_stream() -> None:
    count, at = 0.0, 0.0
    for i in range(1, 1081):  # one every 10 s for three hours
        at = T0 + 10 * i
        count = bump(count, at - 10, at) if i > 1 else bump(0.0, 0.0, at)
    assert arrival_rate(count, at, at, 3 * 3600) == pytest.approx(0.1, rel=0.02)
    # the first minutes: counted against the time there was, not the whole time constant
    assert arrival_rate(6.0, T0 + 60, T0 + 60, 60) == pytest.approx(0.1, rel=0.06)
    assert arrival_rate(0.0, 0.0, T0, 100) == 0.0


def test_handle_time_is_a_running_mean_of_the_last_calls() -> None:
    aht, n = 0.0, 0
    for handle in (100.0, 200.0, 300.0):
        aht, n = next_aht(aht, n, handle)
    assert (aht, n) == (200.0, 3)
    for _ in range(5 * AHT_CALLS):
        aht, n = next_aht(aht, n, 60.0)
    assert n == AHT_CALLS and aht == pytest.approx(60.0, abs=0.1)


@given(st.lists(st.integers(1, 100), min_size=1, max_size=40))
def test_the_announced_position_never_goes_up(positions: list[int]) -> None:
    said: int | None = None
    for position in positions:
        now = announce(said, position)
        assert now <= position and (said is None or now <= said)
        said = now


def test_queue_load_counts_idle_agents_until_they_take_work_or_go_quiet() -> None:
    load = QueueLoad()
    load.idle("a1", T0)
    load.idle("a2", T0 + 30)
    assert load.idle_count(T0 + 30) == 2
    assert load.idle_count(T0 + 61) == 1  # a1 asked more than a minute ago
    load.answered("a2")
    assert (load.idle_count(T0 + 31), load.idle_count(T0 + 61), load.talking) == (1, 0, 1)


# --- every store ------------------------------------------------------------------------------


async def test_no_estimate_before_a_call_of_the_queue_ended(make_store: MakeStore) -> None:
    store, clock = make_store()
    snap, _ = await store.route("c1", record("+1"), "default")
    assert snap.position == 1 and snap.estimated_wait_s is None
    await store.next_work("a1", None)
    await store.answer("c1", "a1")
    await store.route("c2", record("+2"), "default")
    clock.advance(300)
    assert (await store.get_call("c2")).estimated_wait_s is None


async def test_every_store_quotes_the_models_figure(make_store: MakeStore) -> None:
    """The same inputs give the Python model's very figure on every store (the Lua engine's own
    arithmetic on Redis): handle time, agents talking and idle, higher tiers' arrival rates."""
    store, clock = make_store()
    await store.route("v1", record("+1", "vip"), "default")  # a VIP arrives at T0
    await store.next_work("a1", None)
    await store.answer("v1", "a1")
    clock.set(T0 + 100)
    await store.end("v1")  # AHT 100 s; nobody talking now
    assert await store.next_work("a2", None) is None  # a2 is idle from now
    m1, _ = await store.route("m1", record("+2", "mid"), "default")
    s1, _ = await store.route("s1", record("+3"), "default")
    s2, _ = await store.route("s2", record("+4"), "default")
    assert (m1.position, s1.position, s2.position) == (1, 2, 3)
    now = T0 + 100
    vips = arrival_rate(1.0, T0, now, 100)
    mids = arrival_rate(1.0, now, now, 100)
    assert m1.estimated_wait_s == 0.0  # a2 is there for m1
    assert s1.estimated_wait_s == estimated_wait(2, 0, 1, 100.0, vips + mids)
    assert s2.estimated_wait_s == estimated_wait(3, 0, 1, 100.0, vips + mids)

    clock.set(T0 + 130)
    now = T0 + 130
    push = arrival_rate(1.0, T0, now, 130) + arrival_rate(1.0, T0 + 100, now, 130)
    work = await store.next_work("a2", ["default"])  # a2 takes m1
    assert work is not None and work.call is not None and work.call.call.call_id == "m1"
    got = await store.get_call("s2")
    assert (got.position, got.estimated_wait_s) == (2, estimated_wait(2, 0, 0, 100.0, push))
    await store.answer("m1", "a2")  # talking: 1
    assert (await store.get_call("s2")).estimated_wait_s == estimated_wait(2, 1, 0, 100.0, push)


async def test_the_announced_position_stays_down_when_vips_arrive(make_store: MakeStore) -> None:
    store, _ = make_store()
    for i in (1, 2, 3):
        await store.route(f"s{i}", record(f"+{i}"), "default")
    s3 = await store.get_call("s3")
    assert (s3.position, s3.announce_position) == (3, 3)
    await store.route("v1", record("+9", "vip"), "default")
    await store.route("v2", record("+8", "vip"), "default")
    s3 = await store.get_call("s3")
    assert (s3.position, s3.announce_position) == (5, 3)  # the true position as it is
    for agent in ("a1", "a2", "a3"):
        work = await store.next_work(agent, None)
        assert work is not None and work.call is not None
        await store.answer(work.call.call.call_id, agent)  # v1, v2, s1
    s3 = await store.get_call("s3")
    assert (s3.position, s3.announce_position) == (2, 2)
    await store.answer("s3", "a4")
    assert (await store.get_call("s3")).announce_position is None  # not waiting


@pytest.mark.parametrize("status", ["offered", "answered"])
async def test_no_estimate_for_a_call_that_is_not_waiting(make_store: MakeStore, status: str) -> None:
    store, clock = make_store()
    await store.route("c0", record("+0"), "default")
    await store.next_work("a0", None)
    await store.answer("c0", "a0")
    clock.advance(10)
    await store.end("c0")
    await store.route("c1", record("+1"), "default")
    await store.next_work("a1", None)
    if status == "answered":
        await store.answer("c1", "a1")
    snap = await store.get_call("c1")
    assert snap.call.status == status
    assert snap.position is None and snap.estimated_wait_s is None and snap.announce_position is None


async def test_each_queue_has_its_own_handle_time(make_store: MakeStore) -> None:
    store, clock = make_store(Policy(queues={"a": QueuePolicy(), "b": QueuePolicy()}))
    await store.route("x", record("+1"), "a")
    await store.next_work("a1", ["a"])
    await store.answer("x", "a1")
    clock.advance(60)
    await store.end("x")
    await store.route("y", record("+2"), "b")
    assert (await store.get_call("y")).estimated_wait_s is None
    z, _ = await store.route("z", record("+3"), "a")
    assert z.estimated_wait_s == estimated_wait(1, 0, 0, 60.0, 0.0)
