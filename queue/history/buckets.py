"""Where report buckets lie: local clock quarter hours, hours, days, weeks and months as real instants.

Pure. Buckets are in an IANA zone: a 60-minute bucket is a local clock hour (so the repeated
hour of a fall-back day is two buckets, and a spring-forward day has 23), a day runs local
midnight to local midnight (23 or 25 hours on change days). Tallies are kept per 15-minute
interval counted from the Unix epoch, and a tally belongs to the bucket its interval starts
in: `bucket_of` is that rule, used by every place that places intervals in buckets (the
reports, SQLite's sums, PostgreSQL's daily sums).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

from tierline.queue.history.tallies import INTERVAL_S

By = Literal["15m", "30m", "60m", "day", "week", "month"]
BY: Final[tuple[By, ...]] = ("15m", "30m", "60m", "day", "week", "month")
MINUTES: Final[dict[str, int]] = {"15m": 15, "30m": 30, "60m": 60}
# Buckets whose bounds are local midnights: an archive may sum them from daily tallies.
WHOLE_DAYS: Final[frozenset[str]] = frozenset({"day", "week", "month"})


def local_midnight(day: date, zone: ZoneInfo) -> float:
    # On a day whose midnight is skipped (a spring-forward at 00:00) this is the change itself.
    return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()


def _first_day(day: date, by: By) -> date:
    if by == "week":
        return day - timedelta(days=day.weekday())  # ISO weeks start on Monday
    if by == "month":
        return day.replace(day=1)
    return day


def bucket_start(at: float, by: By, zone: ZoneInfo) -> float:
    """The instant the bucket holding `at` starts. Runtime: O(1)."""
    local = datetime.fromtimestamp(at, zone)
    if by in MINUTES:
        # Offsets are whole minutes, so going back the local minutes into the bucket is exact,
        # and stays in the same one of a repeated hour's two passes.
        return at - ((local.minute % MINUTES[by]) * 60 + local.second + local.microsecond / 1e6)
    return local_midnight(_first_day(local.date(), by), zone)


def bucket_end(start: float, by: By, zone: ZoneInfo) -> float:
    if by in MINUTES:
        return start + MINUTES[by] * 60
    first = datetime.fromtimestamp(start, zone).date()
    if by == "day":
        return local_midnight(first + timedelta(days=1), zone)
    if by == "week":
        return local_midnight(first + timedelta(days=7), zone)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return local_midnight(following, zone)


def bucket_starts(start: float, end: float, by: By, zone: ZoneInfo) -> list[float]:
    """Every bucket that overlaps [start, end), in order. Runtime: O(buckets)."""
    out = []
    at = bucket_start(start, by, zone)
    while at < end:
        out.append(at)
        at = bucket_end(at, by, zone)
    return out


def interval_bound(at: float) -> int:
    """A bucket bound in 15-minute intervals. Zones are offset by whole quarter hours, so bucket
    starts are interval starts (rounded up for safety, as an interval belongs to the bucket it
    starts in)."""
    return math.ceil(at / INTERVAL_S)


def bucket_of(bounds: Sequence[int], interval: int) -> int:
    """The bucket i with bounds[i] <= interval < bounds[i + 1], or -1 outside them all.
    Runtime: O(log buckets)."""
    index = bisect.bisect_right(bounds, interval) - 1
    return index if 0 <= index < len(bounds) - 1 else -1


def day_bounds(first: int, last: int, zone: ZoneInfo) -> list[int]:
    """The local days covering intervals [first, last] as interval bounds: day i holds
    [out[i], out[i + 1]). Runtime: O(days)."""
    starts = bucket_starts(first * INTERVAL_S, (last + 1) * INTERVAL_S, "day", zone)
    return [interval_bound(at) for at in starts] + [interval_bound(bucket_end(starts[-1], "day", zone))]
