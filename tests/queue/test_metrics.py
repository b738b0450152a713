"""Lifetime counters for /metrics: bucket edges, the one-bucket rule, and a hash round trip."""

from __future__ import annotations

from collections import defaultdict

from tierline.queue.metrics import (
    DEFAULT_WAIT_BOUNDS,
    LifetimeTally,
    apply_increments,
    bucket_index,
    lifetime_increments,
    wait_bounds,
)
from tierline.queue.service_level import EventKind


def test_thresholds_become_bucket_edges_once() -> None:
    assert wait_bounds([20.0, 20.0, 12.0, 0.0]) == (5.0, 10.0, 12.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0)
    assert wait_bounds([]) == DEFAULT_WAIT_BOUNDS


def test_a_wait_on_an_edge_counts_within_it() -> None:
    bounds = wait_bounds([20.0])
    assert bucket_index(bounds, 0.0) == 0
    assert bucket_index(bounds, 20.0) == bounds.index(20.0)  # "within threshold" is wait <= threshold
    assert bucket_index(bounds, 20.001) == bounds.index(30.0)
    assert bucket_index(bounds, 301.0) == len(bounds)  # +Inf


def test_increments_summed_as_a_hash_read_back_equal_the_tally() -> None:
    """What a shared store does (HINCRBY per field, HGETALL) gives what the memory store keeps."""
    bounds = wait_bounds([20.0])
    events: list[tuple[EventKind, float]] = [
        ("arrived", 0),
        ("answered", 4),
        ("answered", 20),
        ("answered", 400),
        ("abandoned", 2),
        ("abandoned", 30),
        ("overflowed", 60),
        ("ended", 95),
    ]
    tally = LifetimeTally()
    fields: defaultdict[str, float] = defaultdict(float)
    for kind, value in events:
        increments = lifetime_increments(kind, value, 20.0, 5.0, bounds)
        apply_increments(tally, increments, len(bounds))
        for name, amount in increments.items():
            fields[name] += amount
    as_redis = {name.encode(): str(amount).encode() for name, amount in fields.items()}
    assert LifetimeTally.from_fields(as_redis, len(bounds)) == tally
    assert (tally.arrived, tally.answered, tally.answered_within, tally.abandoned) == (1, 3, 2, 2)
    assert (tally.short_abandoned, tally.overflowed, tally.offered) == (1, 1, 6)
    assert tally.answer_wait_sum == 424
    assert sum(tally.answer_wait_buckets) == tally.answered
    assert tally.answer_wait_buckets[0] == 1 and tally.answer_wait_buckets[bounds.index(20.0)] == 1
    assert tally.answer_wait_buckets[-1] == 1
