"""Business hours of a queue: weekly opening ranges in a time zone, and whole-day holidays.

Pure (no clock, no I/O). A `Schedule` is built and validated from the config's text
(`Schedule.from_config`: ranges "HH:MM-HH:MM" per weekday, "24:00" as an end, dates
"YYYY-MM-DD"); it turns local wall-clock ranges into instants with zoneinfo, so a range keeps
its local times across daylight-saving changes (an 08:00–18:00 day is 10 h, 9 h or 11 h long
on the days the clocks move, as the clock on the wall says).

What the engines consult is a `Window`: the open intervals of one queue, as epoch seconds,
over a span around now (`Schedule.window`). The four questions (`is_open`, `next_open`,
`open_seconds`, `after_open`) are answered from a window by the pure functions below; the Redis
engine receives the same windows (queue/redis_store.py passes them with each request) and
answers the same four questions in Lua (`w_*` in redis_engine.lua: written twice, held equal
by tests/queue/test_hours.py's store tests on every store). So the calendar arithmetic
(zones, DST, holidays) is written once, here.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order

DAY: Final = 86400.0
# A window reaches this far back: a callback created by an overflow the engine notices late
# (the sweep runs at least once a second) still finds its interval. Earlier instants are read
# as the window's start.
LOOKBACK_S: Final = DAY
# How far ahead a window reaches at most while looking for enough open time (a year of
# holidays, a queue open one hour a week).
MAX_AHEAD_S: Final = 400 * DAY

_RANGE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


class HoursError(ValueError):
    """Opening hours or holidays that cannot be used: the message says which and why."""


class Window(NamedTuple):
    """Open intervals [starts[i], ends[i]) in time order, none touching another, over the span
    [start, end). Instants before `start` are read as `start`; after `end`, nothing is open."""

    start: float
    end: float
    starts: tuple[float, ...]
    ends: tuple[float, ...]

    def flat(self) -> list[float]:
        """[start, end, s1, e1, s2, e2, …]: the form the Lua engine receives."""
        out = [self.start, self.end]
        for s, e in zip(self.starts, self.ends, strict=True):
            out += [s, e]
        return out


# --- the four questions, from a window (redis_engine.lua's `w_*` say the same) --------------


def is_open(w: Window, t: float) -> bool:
    """O(log k) for k intervals."""
    t = max(t, w.start)
    i = bisect.bisect_right(w.starts, t) - 1
    return i >= 0 and t < w.ends[i]


def next_open(w: Window, t: float) -> float | None:
    """`t` if open then, else the next opening; None when none falls in the window."""
    t = max(t, w.start)
    i = bisect.bisect_right(w.starts, t) - 1
    if i >= 0 and t < w.ends[i]:
        return t
    return w.starts[i + 1] if i + 1 < len(w.starts) else None


def open_seconds(w: Window, a: float, b: float) -> float:
    """Open seconds in [a, b) (the window's part of it). O(k)."""
    a = max(a, w.start)
    total = 0.0
    for s, e in zip(w.starts, w.ends, strict=True):
        lo, hi = max(s, a), min(e, b)
        if hi > lo:
            total += hi - lo
    return total


def after_open(w: Window, t: float, seconds: float) -> float | None:
    """The instant at which `seconds` of open time have passed since `t`; None when the window
    ends first. O(k)."""
    t = max(t, w.start)
    left = seconds
    for s, e in zip(w.starts, w.ends, strict=True):
        if e <= t:
            continue
        lo = max(s, t)
        if e - lo >= left:
            return lo + left
        left -= e - lo
    return None


# --- the schedule ---------------------------------------------------------------------------


def _minute(hh: str, mm: str, text: str, day: str) -> int:
    h, m = int(hh), int(mm)
    if m > 59 or h > 24 or (h == 24 and m != 0):
        raise HoursError(f"hours.{day}: {text!r} is not a time range (HH:MM-HH:MM, 00:00 to 24:00)")
    return h * 60 + m


def parse_range(text: str, day: str = "day") -> tuple[int, int]:
    """ "HH:MM-HH:MM" as minutes since local midnight; the end after the start, 24:00 allowed."""
    found = _RANGE.match(text.strip()) if isinstance(text, str) else None
    if found is None:
        raise HoursError(f"hours.{day}: {text!r} is not a time range (HH:MM-HH:MM, 00:00 to 24:00)")
    start = _minute(found[1], found[2], text, day)
    end = _minute(found[3], found[4], text, day)
    if start == 24 * 60 or end <= start:
        raise HoursError(f"hours.{day}: {text!r} must end after it starts (a range past midnight is two ranges)")
    return start, end


def parse_day_ranges(day: str, texts: Sequence[str]) -> tuple[tuple[int, int], ...]:
    if isinstance(texts, str):
        raise HoursError(f'hours.{day}: a list of ranges, e.g. ["08:00-12:00", "13:00-18:00"]')
    ranges = sorted(parse_range(t, day) for t in texts)
    for (s1, e1), (s2, e2) in itertools.pairwise(ranges):
        if s2 < e1:
            raise HoursError(f"hours.{day}: ranges {_fmt(s1, e1)} and {_fmt(s2, e2)} overlap")
    return tuple(ranges)


def parse_holiday(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except (ValueError, AttributeError, TypeError):
        raise HoursError(f"holidays: {text!r} is not a date (YYYY-MM-DD)") from None


def holiday_lines(text: str) -> list[str]:
    """A holiday file's dates: one per line; blank lines and `#` comments skipped."""
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise HoursError(f"timezone: unknown time zone {name!r}") from None


def _fmt(start: int, end: int) -> str:
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


class Schedule:
    """A queue's weekly opening ranges (local minutes per weekday), holidays, and zone."""

    def __init__(
        self, weekly: Mapping[int, tuple[tuple[int, int], ...]], holidays: Iterable[date], tz: ZoneInfo
    ) -> None:
        self.weekly = {d: weekly.get(d, ()) for d in range(7)}
        self.holidays = frozenset(holidays)
        self.tz = tz
        if not any(self.weekly.values()):
            raise HoursError("hours: no opening range on any day (leave `hours` out for a queue always open)")

    @classmethod
    def from_config(cls, hours: Mapping[str, Sequence[str]], holidays: Sequence[str], timezone: str) -> Schedule:
        """Validated: unknown day names, ranges that are not times or overlap, bad dates and
        unknown zones are a HoursError naming the fault."""
        weekly: dict[int, tuple[tuple[int, int], ...]] = {}
        for day, texts in hours.items():
            if day not in DAYS:
                raise HoursError(f"hours: unknown day {day!r} (one of {', '.join(DAYS)})")
            weekly[DAYS.index(day)] = parse_day_ranges(day, texts)
        return cls(weekly, (parse_holiday(h) for h in holidays), zone(timezone))

    def _instant(self, day: date, minute: int) -> float:
        # Wall-clock arithmetic: the local time `minute` after that day's midnight, DST or not
        # (a time in a spring-forward gap reads as the same wall time after the jump).
        local = datetime.combine(day, time(0)) + timedelta(minutes=minute)
        return local.replace(tzinfo=self.tz).timestamp()

    def _day_intervals(self, day: date) -> list[tuple[float, float]]:
        if day in self.holidays:
            return []
        out = []
        for start, end in self.weekly[day.weekday()]:
            out.append((self._instant(day, start), self._instant(day, end)))
        return out

    def intervals(self, start: float, end: float) -> list[tuple[float, float]]:
        """Open intervals overlapping [start, end), clipped to it, touching ones merged
        (a range ending 24:00 and the next day's from 00:00 are one)."""
        first = datetime.fromtimestamp(start, self.tz).date() - timedelta(days=1)
        last = datetime.fromtimestamp(end, self.tz).date() + timedelta(days=1)
        merged: list[tuple[float, float]] = []
        day = first
        while day <= last:
            for s, e in self._day_intervals(day):
                s, e = max(s, start), min(e, end)
                if e <= s:
                    continue
                if merged and s <= merged[-1][1]:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], e))
                else:
                    merged.append((s, e))
            day += timedelta(days=1)
        return merged

    def window(self, now: float, span_s: float, open_s: float = 0.0) -> Window:
        """The intervals from `now − LOOKBACK_S` until at least `now + span_s`, through the
        first opening after that (so `next_open` answers for any instant in the span), and
        until `open_s` open seconds have passed after now; at most `MAX_AHEAD_S` ahead."""
        start = now - LOOKBACK_S
        end = now + max(span_s, DAY)
        while True:
            found = self.intervals(start, end)
            w = Window(start, end, tuple(s for s, _ in found), tuple(e for _, e in found))
            enough = bool(found) and found[-1][1] >= now + span_s
            if open_s > 0:
                enough = enough and after_open(w, now, open_s) is not None
            if enough or end >= now + MAX_AHEAD_S:
                return w
            end = min(end + 7 * DAY, now + MAX_AHEAD_S)


# A window is rebuilt when the clock has moved this far past the instant it was built for.
REFRESH_S: Final = 3600.0


class HoursBook:
    """Every queue's current window, rebuilt at most once per `REFRESH_S` of clock time.

    `span_s` and `open_s`: how far ahead the callback deadlines reach (the wall-clock window,
    the open-hours window). A queue without a schedule is always open: its window is None.
    """

    def __init__(self, schedules: Mapping[str, Schedule | None], span_s: float, open_s: float) -> None:
        self._schedules = {name: s for name, s in schedules.items() if s is not None}
        self._ahead = (span_s + REFRESH_S, open_s)
        self._built_at: float | None = None
        self._windows: dict[str, Window] = {}

    def __bool__(self) -> bool:
        """False when no queue has opening hours (every question is then answered 'open')."""
        return bool(self._schedules)

    def windows(self, now: float) -> dict[str, Window]:
        """The window of each queue with opening hours, valid at `now`. O(1) but once an hour."""
        built = self._built_at
        if built is None or not built <= now < built + REFRESH_S:
            span, open_s = self._ahead
            # open_s counted from the end of the refresh period: a deadline set an hour from now still fits.
            self._windows = {
                name: s.window(now, span, open_s + REFRESH_S) if open_s else s.window(now, span)
                for name, s in self._schedules.items()
            }
            self._built_at = now
        return self._windows

    def window(self, queue: str, now: float) -> Window | None:
        return self.windows(now).get(queue) if self._schedules else None
