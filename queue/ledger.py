"""The memory store's service-level tallies: per queue × tier, by minute and by 15-minute interval.

Minutes serve the rolling windows (kept an hour), intervals serve today and its chart (kept
two days). Both are filled from the same event through `service_level.record`. A lifetime
tally per queue × tier (never pruned) feeds `/metrics` through `metrics.record`.
"""

from __future__ import annotations

from collections import defaultdict

import msgspec

from tierline.queue import metrics as mx
from tierline.queue import service_level as sl
from tierline.queue.policy import Policy
from tierline.tiers.model import TIERS, Tier

Key = tuple[str, Tier]


class Ledger:
    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._minutes: defaultdict[Key, dict[int, sl.Tally]] = defaultdict(dict)
        self._intervals: defaultdict[Key, dict[int, sl.Tally]] = defaultdict(dict)
        self.wait_bounds = mx.policy_wait_bounds(policy)
        self._lifetime: dict[Key, mx.LifetimeTally] = {}
        self._threshold = {tier: policy.tier(tier).sla_threshold_s for tier in TIERS}
        # Per queue × tier, the minute last recorded into with its minute and interval tallies:
        # nearly every event falls in the same minute as the one before (every route records one).
        self._current: dict[Key, tuple[int, sl.Tally, sl.Tally, mx.LifetimeTally]] = {}

    def record(self, queue: str, tier: Tier, kind: sl.EventKind, at: float, value: float = 0.0) -> None:
        key = (queue, tier)
        minute = sl.minute_of(at)
        current = self._current.get(key)
        if current is None or current[0] != minute:
            current = self._current[key] = (minute, *self._tallies(key, at))
        threshold, short = self._threshold[tier], self._policy.short_abandon_s
        sl.record(current[1], kind, value, threshold, short)
        sl.record(current[2], kind, value, threshold, short)
        mx.record(current[3], kind, value, threshold, short, self.wait_bounds)

    def _tallies(self, key: Key, at: float) -> tuple[sl.Tally, sl.Tally, mx.LifetimeTally]:
        """The minute, interval and lifetime tallies `at` falls in, made if missing."""
        found: list[sl.Tally] = []
        for buckets, slot in ((self._minutes, sl.minute_of(at)), (self._intervals, sl.interval_of(at))):
            by_slot = buckets[key]
            tally = by_slot.get(slot)
            if tally is None:
                tally = by_slot[slot] = sl.Tally()
            found.append(tally)
        lifetime = self._lifetime.get(key)
        if lifetime is None:
            lifetime = self._lifetime[key] = mx.LifetimeTally()
        return found[0], found[1], lifetime

    def lifetime(self, queue: str, tier: Tier) -> mx.LifetimeTally:
        """Counts since this store began (for /metrics); a copy, zero if nothing happened."""
        found = self._lifetime.get((queue, tier))
        if found is None:
            return mx.LifetimeTally(answer_wait_buckets=[0] * (len(self.wait_bounds) + 1))
        return msgspec.structs.replace(found, answer_wait_buckets=list(found.answer_wait_buckets))

    def rolling(self, queue: str, tier: Tier, window: str, now: float) -> sl.Tally:
        return self.over_minutes(queue, tier, sl.rolling_minutes(window, now))

    def over_minutes(self, queue: str, tier: Tier, minutes: range) -> sl.Tally:
        by_minute = self._minutes.get((queue, tier), {})
        return sl.total(t for m in minutes if (t := by_minute.get(m)) is not None)

    def intervals(self, queue: str, tier: Tier, now: float) -> list[tuple[int, sl.Tally]]:
        by_interval = self._intervals.get((queue, tier), {})
        return [(i, by_interval.get(i) or sl.Tally()) for i in sl.today_intervals(now, self._policy.timezone)]

    def interval(self, queue: str, tier: Tier, interval: int) -> sl.Tally:
        """One interval's tally (the live one, not a copy; empty if nothing happened)."""
        return self._intervals.get((queue, tier), {}).get(interval) or sl.Tally()

    def today(self, queue: str, tier: Tier, now: float) -> sl.Tally:
        return sl.total(t for _, t in self.intervals(queue, tier, now))

    def prune(self, now: float) -> None:
        oldest_minute = sl.minute_of(now) - 61
        oldest_interval = sl.interval_of(now) - 2 * 96
        self._current.clear()  # it may hold a tally about to be dropped
        for buckets, oldest in ((self._minutes, oldest_minute), (self._intervals, oldest_interval)):
            for by_slot in buckets.values():
                for slot in [s for s in by_slot if s < oldest]:
                    del by_slot[slot]
