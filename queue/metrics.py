"""Lifetime counters for `/metrics`: what each call event adds, kept as plain integer fields.

The service-level ledger keeps tallies by minute and interval for the windows; Prometheus
wants monotonic counters since the store began, plus a histogram of answered waits. Every
figure here is a named integer counter (one float: the sum of answered waits), so a shared
store keeps them as hash fields with HINCRBY / HINCRBYFLOAT and every process reads the
same numbers. Which counters an event moves is `decisions.LIFETIME_MOVES`, which the Redis
engine receives too; the histogram's bucket rule (`bucket_index`) stays written a second
time in redis_engine.lua's `record`, as its header says.

Histogram buckets are *not* cumulative here: an answered wait increments exactly one
`wait_le_<i>` field (the first bound it is ≤ to, or the last, "+Inf", field). Prometheus's
cumulative `le` buckets are summed up when the text is written (`admin/metrics.py`).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from typing import Any, Final

import msgspec

from tierline.queue.decisions import HISTOGRAM_KIND, LIFETIME_FIELDS, LIFETIME_MOVES, amount
from tierline.queue.policy import Policy
from tierline.queue.service_level import EventKind
from tierline.queue.wait_accuracy import AccuracyRow
from tierline.tiers.model import TIERS, Tier

# Upper bounds (seconds) of the answered-wait histogram; each tier's SLA threshold is added.
DEFAULT_WAIT_BOUNDS: Final = (5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0)

COUNTERS: Final = LIFETIME_FIELDS


def wait_bounds(thresholds: Iterable[float]) -> tuple[float, ...]:
    """The histogram's bucket edges: the defaults plus every configured SLA threshold."""
    return tuple(sorted({*DEFAULT_WAIT_BOUNDS, *(float(t) for t in thresholds if t > 0)}))


def policy_wait_bounds(policy: Policy) -> tuple[float, ...]:
    """The bucket edges a configuration gives: the defaults plus each tier's SLA threshold."""
    return wait_bounds(policy.tier(tier).sla_threshold_s for tier in TIERS)


def bucket_field(index: int) -> str:
    return f"wait_le_{index}"


def bucket_index(bounds: tuple[float, ...], wait: float) -> int:
    """The one bucket a wait falls in: the first bound ≥ wait, else len(bounds) (+Inf)."""
    return bisect.bisect_left(bounds, wait)


class LifetimeTally(msgspec.Struct, kw_only=True):
    """One queue × tier since the store began. `offered` = answered + abandoned + overflowed."""

    arrived: int = 0
    answered: int = 0
    answered_within: int = 0
    abandoned: int = 0  # short abandons included
    short_abandoned: int = 0
    overflowed: int = 0
    callback_requested: int = 0  # took the callback offer: counted apart (issue 16 item 3)
    resumed: int = 0  # abandons taken back by a re-call within resume_window_s (item 4)
    answer_wait_sum: float = 0.0
    answer_wait_buckets: list[int] = msgspec.field(default_factory=list)  # len(bounds) + 1, not cumulative

    @property
    def offered(self) -> int:
        return self.answered + self.abandoned + self.overflowed

    @classmethod
    def from_fields(cls, fields: Mapping[Any, Any], n_bounds: int) -> LifetimeTally:
        """Read back a hash of `lifetime_increments` fields, as a Redis HGETALL gives them
        (names and values as str or bytes; a missing field is 0)."""
        text = {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in fields.items()}

        def num(name: str) -> float:
            raw = text.get(name, 0)
            return float(raw.decode() if isinstance(raw, bytes) else raw)

        return cls(
            **{name: int(num(name)) for name in COUNTERS},
            answer_wait_sum=num("answer_wait_sum"),
            answer_wait_buckets=[int(num(bucket_field(i))) for i in range(n_bounds + 1)],
        )


def lifetime_increments(
    kind: EventKind, value: float, threshold_s: float, short_abandon_s: float, bounds: tuple[float, ...]
) -> dict[str, float]:
    """The fields one event adds to its queue × tier. `value` is the wait (unused for arrivals)."""
    out = {field: amount(how, value, threshold_s, short_abandon_s) for field, how in LIFETIME_MOVES[kind]}
    if kind == HISTOGRAM_KIND:
        out[bucket_field(bucket_index(bounds, value))] = 1
    return out


def apply_increments(tally: LifetimeTally, increments: Mapping[str, float], n_bounds: int) -> None:
    if len(tally.answer_wait_buckets) != n_bounds + 1:
        tally.answer_wait_buckets = [0] * (n_bounds + 1)
    for name, added in increments.items():
        if name.startswith("wait_le_"):
            tally.answer_wait_buckets[int(name.removeprefix("wait_le_"))] += int(added)
        elif name == "answer_wait_sum":
            tally.answer_wait_sum += added
        else:
            setattr(tally, name, getattr(tally, name) + int(added))


def record(
    tally: LifetimeTally,
    kind: EventKind,
    value: float,
    threshold_s: float,
    short_abandon_s: float,
    bounds: tuple[float, ...],
) -> None:
    """`apply_increments(tally, lifetime_increments(...))` without building the dict: the memory
    store's per-event path."""
    if len(tally.answer_wait_buckets) != len(bounds) + 1:
        tally.answer_wait_buckets = [0] * (len(bounds) + 1)
    for field, how in LIFETIME_MOVES[kind]:
        added = amount(how, value, threshold_s, short_abandon_s)
        setattr(tally, field, getattr(tally, field) + (added if field == "answer_wait_sum" else int(added)))
    if kind == HISTOGRAM_KIND:
        tally.answer_wait_buckets[bucket_index(bounds, value)] += 1


class MetricsRow(msgspec.Struct, kw_only=True):
    """One queue × tier: lifetime counters, the answered-wait histogram, and the queue right now."""

    queue: str
    tier: Tier
    arrived: int
    offered: int
    answered: int
    answered_within: int
    abandoned: int
    short_abandoned: int
    overflowed: int
    answer_wait_sum: float
    answer_wait_buckets: list[int]  # per bound of MetricsSnapshot.wait_bounds, then +Inf; not cumulative
    threshold_s: float
    target: float | None
    waiting_now: int
    oldest_wait_now_s: float | None
    callback_requested: int = 0
    resumed: int = 0
    held_now: int = 0  # places held in line for a callback (issue 16 item 3), not in waiting_now


class MetricsSnapshot(msgspec.Struct, kw_only=True):
    """Everything `/metrics` shows, read from the store (so every process shows the same)."""

    now: float
    wait_bounds: list[float]
    rows: list[MetricsRow]
    callbacks_open: int  # status open (waiting for an agent or for its retry time)
    callbacks_assigned: int  # with an agent now
    callbacks_overdue: int  # open or assigned, past the deadline
    # Per queue × tier, how right the quoted waits of answered calls were (queue/wait_accuracy.py).
    estimate_accuracy: list[AccuracyRow] = msgspec.field(default_factory=list)
    callbacks_at_risk: int = 0  # open or assigned, flagged at_risk at creation (opening hours)


def metrics_row(
    queue: str,
    tier: Tier,
    tally: LifetimeTally,
    n_bounds: int,
    threshold_s: float,
    target: float | None,
    waiting_now: int,
    oldest_wait_now_s: float | None,
    held_now: int = 0,
) -> MetricsRow:
    buckets = list(tally.answer_wait_buckets) or [0] * (n_bounds + 1)
    return MetricsRow(
        queue=queue,
        tier=tier,
        arrived=tally.arrived,
        offered=tally.offered,
        answered=tally.answered,
        answered_within=tally.answered_within,
        abandoned=tally.abandoned,
        short_abandoned=tally.short_abandoned,
        overflowed=tally.overflowed,
        answer_wait_sum=round(tally.answer_wait_sum, 6),
        answer_wait_buckets=buckets,
        threshold_s=threshold_s,
        target=target,
        waiting_now=waiting_now,
        oldest_wait_now_s=oldest_wait_now_s,
        callback_requested=tally.callback_requested,
        resumed=tally.resumed,
        held_now=held_now,
    )
