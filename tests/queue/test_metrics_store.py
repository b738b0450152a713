"""Every store's /metrics snapshot equals the pure rule (`metrics.lifetime_increments`) applied by hand.

The Redis store counts inside its Lua script; this holds that copy of the rule to the Python one,
on waits that sit exactly on bucket edges.
"""

from __future__ import annotations

import pytest

from tierline.queue.metrics import LifetimeTally, apply_increments, lifetime_increments, wait_bounds
from tierline.queue.policy import Policy, TierPolicy

from .helpers import MakeStore, record

WAITS = [0.0, 5.0, 12.0, 12.001, 20.0, 301.0]  # 12 s: a configured threshold, so also an edge


async def test_lifetime_counters_and_histogram_follow_the_pure_rule(make_store: MakeStore) -> None:
    policy = Policy(tiers={"vip": TierPolicy(sla_threshold_s=12.0)})
    store, clock = make_store(policy)
    bounds = wait_bounds(policy.tier(t).sla_threshold_s for t in ("vip", "mid", "standard", "blacklisted"))
    expected = LifetimeTally(answer_wait_buckets=[0] * (len(bounds) + 1))
    for i, wait in enumerate(WAITS):
        await store.route(f"c{i}", record(f"+4930000{i}", "vip"), "default")
        apply_increments(expected, lifetime_increments("arrived", 0, 12.0, 5.0, bounds), len(bounds))
        clock.advance(wait)
        work = await store.next_work(f"a{i}", None)
        assert work is not None and work.call is not None and work.call.call.call_id == f"c{i}"
        await store.answer(f"c{i}", f"a{i}")
        apply_increments(expected, lifetime_increments("answered", wait, 12.0, 5.0, bounds), len(bounds))
        await store.end(f"c{i}")
    await store.route("gone", record("+49300009", "vip"), "default")
    clock.advance(3)
    await store.abandon("gone")  # a short abandon
    apply_increments(expected, lifetime_increments("arrived", 0, 12.0, 5.0, bounds), len(bounds))
    apply_increments(expected, lifetime_increments("abandoned", 3, 12.0, 5.0, bounds), len(bounds))

    snapshot = await store.metrics()
    assert snapshot.wait_bounds == list(bounds)
    vip = next(r for r in snapshot.rows if (r.queue, r.tier) == ("default", "vip"))
    assert (vip.arrived, vip.answered, vip.answered_within, vip.abandoned, vip.short_abandoned) == (
        expected.arrived,
        expected.answered,
        expected.answered_within,
        expected.abandoned,
        expected.short_abandoned,
    )
    assert vip.answer_wait_buckets == expected.answer_wait_buckets
    assert vip.answer_wait_sum == pytest.approx(sum(WAITS))
    assert vip.answered_within == 3  # 0, 5 and 12 s; 12.001 is over the threshold
    others = [r for r in snapshot.rows if r.tier != "vip"]
    assert all(r.arrived == 0 and sum(r.answer_wait_buckets) == 0 for r in others)
