"""Arrival curves (expected calls per tier per 15-minute interval) from what Tierline has seen:
a past day in the history archive, the same weekday's average there, or the rates of the
observed window held flat. Handle time comes along where the source has it.

Reads the archive through its contract (`queue.history.archive.Archive.interval_tallies`);
knows nothing of HTTP.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import msgspec

from tierline.admin.simulation.scenario import INTERVAL_S, ArrivalCurve, ScenarioError
from tierline.queue.history.archive import Archive
from tierline.queue.store import Traffic
from tierline.tiers.model import TIERS, Tier

WEEKS_BACK: Final = 8  # the weekday average looks at most this many weeks back


class History(msgspec.Struct, kw_only=True):
    """A curve with the handle time the same days had (None when no call ended in them)."""

    curve: ArrivalCurve
    aht_s: float | None
    days: list[str]  # the days that made the curve


def day_bounds(day: date, timezone: str) -> tuple[float, float]:
    """Local midnight to the next one, as epoch seconds (a DST day has 92 or 100 intervals)."""
    zone = ZoneInfo(timezone)
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    return start.timestamp(), end.timestamp()


async def _day(
    archive: Archive, day: date, timezone: str, queue: str | None
) -> tuple[list[dict[Tier, float]], int, float]:
    """That day's arrivals per interval and tier, and (calls ended, handle seconds)."""
    start, end = day_bounds(day, timezone)
    first = int(start // INTERVAL_S)
    count = int((end - start) // INTERVAL_S)
    rows = await archive.interval_tallies(first, first + count, None if queue is None else [queue], None)
    intervals: list[dict[Tier, float]] = [dict.fromkeys(TIERS, 0.0) for _ in range(count)]
    ended, handle = 0, 0.0
    for row in rows:
        if row.tier in intervals[0] and 0 <= row.interval - first < count:
            intervals[row.interval - first][row.tier] += row.tally.entered
        ended += row.tally.ended
        handle += row.tally.handle_sum
    return intervals, ended, handle


def _has_calls(intervals: list[dict[Tier, float]]) -> bool:
    return any(any(v > 0 for v in counts.values()) for counts in intervals)


async def past_day(archive: Archive, day: date, timezone: str, queue: str | None) -> History:
    """The arrivals the archive holds for `day` (local to `timezone`); ScenarioError no_history if none."""
    intervals, ended, handle = await _day(archive, day, timezone, queue)
    if not _has_calls(intervals):
        raise ScenarioError("no_history", f"the history archive holds no call for {day.isoformat()}")
    return History(
        curve=ArrivalCurve(start=day_bounds(day, timezone)[0], intervals=intervals, source=f"archive:{day}"),
        aht_s=handle / ended if ended else None,
        days=[day.isoformat()],
    )


async def weekday_average(archive: Archive, day: date, timezone: str, queue: str | None) -> History:
    """For `day`: the average, interval by interval, of the same weekday over the weeks before
    it (at most WEEKS_BACK) that had calls; ScenarioError no_history when none had any."""
    count = int((day_bounds(day, timezone)[1] - day_bounds(day, timezone)[0]) // INTERVAL_S)
    sums: list[dict[Tier, float]] = [dict.fromkeys(TIERS, 0.0) for _ in range(count)]
    used: list[str] = []
    ended, handle = 0, 0.0
    for weeks in range(1, WEEKS_BACK + 1):
        earlier = day - timedelta(weeks=weeks)
        intervals, e, h = await _day(archive, earlier, timezone, queue)
        if not _has_calls(intervals):
            continue
        used.append(earlier.isoformat())
        ended, handle = ended + e, handle + h
        # Aligned by interval from local midnight: on a day of a DST change (92 or 100 intervals)
        # the hours after the switch are an hour off against an ordinary week (a known limit).
        for i in range(count):
            source = intervals[min(i, len(intervals) - 1)]
            for tier in TIERS:
                sums[i][tier] += source[tier]
    if not used:
        raise ScenarioError(
            "no_history",
            f"the history archive holds no {day.strftime('%A')} with calls in the {WEEKS_BACK} weeks before {day}",
        )
    curve = [{tier: counts[tier] / len(used) for tier in TIERS} for counts in sums]
    return History(
        curve=ArrivalCurve(start=day_bounds(day, timezone)[0], intervals=curve, source=f"{day.strftime('%A')} average"),
        aht_s=handle / ended if ended else None,
        days=used,
    )


def observed(traffic: Traffic, start: float, intervals: int) -> ArrivalCurve:
    """The window's arrival rates held flat over `intervals` intervals from `start`."""
    span = traffic.span_s
    per_interval = {tier: traffic.arrived.get(tier, 0) * INTERVAL_S / span if span > 0 else 0.0 for tier in TIERS}
    if not any(per_interval.values()):
        raise ScenarioError("no_traffic", "no call arrived in the observed window: give an arrivals CSV instead")
    return ArrivalCurve(start=start, intervals=[dict(per_interval) for _ in range(intervals)], source="observed")
