"""Today's 15-minute intervals for the service-level report, with what can no longer change kept.

A supervisor's dashboard asks for `today` every two seconds: up to 96 intervals per queue ×
tier, each read (on Redis, one hash each), summed and turned into figures. Most of them can
never change again. Every store read first applies whatever fell due up to its `now` (an
overflow is dated at its due time, which may be in the past, but it is recorded by the first
read or sweep after that time), and the store's clock does not run backwards (the memory
store's one clock; on Redis the engine's `max(given, last seen)`). So once a report at `now`
has been made, no event dated before `now` can still arrive: an interval that ended before
`now - SETTLE_S` is final. The margin covers a wall clock stepped back by NTP.

This keeps, per process, each settled interval's tally and figures and the running total of
the day's settled prefix, so a poll reads and sums only the current interval or two: O(1)
store work instead of O(intervals). Pure and synchronous; both stores use it the same way:
`wanted` names the intervals to read, `row` assembles the day from those and the kept ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from tierline.queue import service_level as sl
from tierline.queue.policy import Policy
from tierline.queue.store import IntervalFigures

# Far more than a wall clock is ever stepped back, or routers' clocks differ (the README asks for 100 ms).
SETTLE_S: Final = 60.0

Lane = tuple[str, str]  # (queue, tier)


class _Day:
    """One queue × tier's settled intervals of one day, and the total of the first `upto` of them."""

    __slots__ = ("figures", "first", "tallies", "total", "upto")

    def __init__(self, first: int) -> None:
        self.first = first
        self.upto = first  # intervals [first, upto) are in `total`
        self.total = sl.Tally()
        self.tallies: dict[int, sl.Tally] = {}
        self.figures: dict[int, IntervalFigures] = {}


class SettledDay:
    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._days: dict[Lane, _Day] = {}

    @staticmethod
    def settled(interval: int, now: float) -> bool:
        return sl.interval_start(interval + 1) + SETTLE_S <= now

    def _day(self, lane: Lane, slots: range) -> _Day:
        day = self._days.get(lane)
        if day is None or day.first != slots.start:
            day = self._days[lane] = _Day(slots.start)  # a new day: yesterday's are not needed
        return day

    def wanted(self, lane: Lane, slots: range) -> list[int]:
        """The intervals of `slots` (today's so far, as `service_level.today_intervals`) to read.

        Runtime complexity: O(1) once the day's settled intervals are kept (the last one or two).
        """
        day = self._day(lane, slots)
        return [i for i in range(day.upto, slots.stop) if i not in day.tallies]

    def row(
        self, lane: Lane, slots: range, now: float, fetched: Mapping[int, sl.Tally]
    ) -> tuple[sl.Tally, list[IntervalFigures]]:
        """Today's total and per-interval figures, from `fetched` (what `wanted` named) and the kept ones."""
        day = self._day(lane, slots)
        tier = self._policy.tier(lane[1])  # type: ignore[arg-type]
        formula = self._policy.sla_formula
        for interval in range(day.upto, slots.stop):
            if interval in fetched and self.settled(interval, now):
                tally = fetched[interval]
                day.tallies[interval] = tally
                day.figures[interval] = IntervalFigures(
                    start=sl.interval_start(interval), figures=sl.figures(tally, tier, formula)
                )
        # Extend the settled prefix's total over the intervals that settled since the last poll.
        while day.upto in day.tallies:
            day.total.add(day.tallies[day.upto])
            day.upto += 1
        total = sl.total([day.total, *(fetched[i] for i in range(day.upto, slots.stop) if i in fetched)])
        intervals = [
            kept
            if (kept := day.figures.get(i)) is not None
            else IntervalFigures(start=sl.interval_start(i), figures=sl.figures(fetched[i], tier, formula))
            for i in slots
        ]
        return total, intervals
