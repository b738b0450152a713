"""Service-level accounting, pure: what each call event adds to a tally, windows, formulas.

A call counts in the interval in which its wait ended (answered, abandoned, overflowed);
wait = that moment − first arrival. Tallies are plain sums (plus one running maximum), so
they add across minutes, intervals and processes alike, and a store only has to keep them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import msgspec

from tierline.queue.decisions import TALLY_MOVES, amount
from tierline.queue.decisions import EventKind as EventKind
from tierline.queue.policy import ResolvedTierPolicy, SlaFormula

Window = Literal["15m", "60m", "today"]

MINUTE: Final = 60
INTERVAL: Final = 15 * MINUTE
ROLLING_MINUTES: Final[dict[str, int]] = {"15m": 15, "60m": 60}


class Tally(msgspec.Struct, kw_only=True):
    arrived: int = 0
    answered: int = 0
    answered_within: int = 0
    abandoned: int = 0  # every abandon, short ones included
    abandoned_within: int = 0
    short_abandoned: int = 0
    overflowed: int = 0
    answer_wait_sum: float = 0.0
    answer_wait_max: float = 0.0
    ended: int = 0
    handle_sum: float = 0.0
    # Calls that took the callback offer and left the line (issue 16 item 3): counted apart, in
    # no formula. Abandons taken back by a re-call within resume_window_s (item 4), and of
    # those the short ones (already left out as short abandons).
    callback_requested: int = 0
    resumed: int = 0
    resumed_short: int = 0

    @property
    def offered(self) -> int:
        """Calls whose wait ended here answered, abandoned or overflowed (a callback taken from
        the line is counted apart: `callback_requested`)."""
        return self.answered + self.abandoned + self.overflowed

    @property
    def resumed_long(self) -> int:
        """Resumed abandons that were not short: what the default formula leaves out beside the short ones."""
        return self.resumed - self.resumed_short

    def add(self, other: Tally) -> None:
        for field in _SUMMED:
            setattr(self, field, getattr(self, field) + getattr(other, field))
        self.answer_wait_max = max(self.answer_wait_max, other.answer_wait_max)


_SUMMED: Final = tuple(f for f in Tally.__struct_fields__ if f != "answer_wait_max")


def increments(kind: EventKind, value: float, threshold_s: float, short_abandon_s: float) -> dict[str, float]:
    """The counters one event adds, as `decisions.TALLY_MOVES` says. `value` is the wait (handle
    time for `ended`); `answer_wait_max` is a maximum, not a sum."""
    return {field: amount(how, value, threshold_s, short_abandon_s) for field, how in TALLY_MOVES[kind]}


def record(tally: Tally, kind: EventKind, value: float, threshold_s: float, short_abandon_s: float) -> None:
    for field, how in TALLY_MOVES[kind]:
        if how == "max":
            if value > getattr(tally, field):
                setattr(tally, field, value)
        else:
            setattr(tally, field, getattr(tally, field) + amount(how, value, threshold_s, short_abandon_s))


_FIELDS: Final = Tally.__struct_fields__
_MAX_AT: Final = _FIELDS.index("answer_wait_max")


def total(tallies: Iterable[Tally]) -> Tally:
    """The sum of `tallies` (their maximum for `answer_wait_max`): `Tally.add` over them, column
    by column (a dashboard poll sums 15 to 60 minutes for each queue × tier)."""
    columns = list(zip(*map(msgspec.structs.astuple, tallies), strict=True))
    if not columns:
        return Tally()
    values: list[Any] = [sum(column) for column in columns]
    values[_MAX_AT] = max(0.0, *columns[_MAX_AT])
    return Tally(**dict(zip(_FIELDS, values, strict=True)))


# --- formulas -------------------------------------------------------------------------------


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator > 0 else None


FORMULAS: Final[dict[SlaFormula, tuple[str, Callable[[Tally], float | None]]]] = {
    "default": (
        "answered within threshold / (answered + abandoned + overflowed - short abandons - resumed abandons)",
        lambda t: _ratio(
            t.answered_within, t.answered + t.abandoned + t.overflowed - t.short_abandoned - t.resumed_long
        ),
    ),
    "answered_only": (
        "answered within threshold / answered",
        lambda t: _ratio(t.answered_within, t.answered),
    ),
    "all_offered": (
        "answered within threshold / (answered + abandoned + overflowed)",
        lambda t: _ratio(t.answered_within, t.offered),
    ),
    "abandons_in_threshold_good": (
        "(answered within threshold + abandoned within threshold) / (answered + abandoned + overflowed)",
        lambda t: _ratio(t.answered_within + t.abandoned_within, t.offered),
    ),
}


class Figures(msgspec.Struct, kw_only=True):
    """One queue × tier over one window, as supervisors read it."""

    offered: int
    answered: int
    answered_within_threshold: int
    abandoned: int
    short_abandoned: int
    overflowed: int
    arrived: int
    callback_requested: int
    resumed: int
    service_level: float | None
    threshold_s: float
    target: float | None
    met: bool | None
    asa_s: float | None
    longest_answered_wait_s: float | None
    average_handle_s: float | None


def figures(tally: Tally, tier: ResolvedTierPolicy, formula: SlaFormula) -> Figures:
    level = FORMULAS[formula][1](tally)
    met = None if level is None or tier.sla_target is None else level >= tier.sla_target
    return Figures(
        offered=tally.offered,
        answered=tally.answered,
        answered_within_threshold=tally.answered_within,
        abandoned=tally.abandoned,
        short_abandoned=tally.short_abandoned,
        overflowed=tally.overflowed,
        arrived=tally.arrived,
        callback_requested=tally.callback_requested,
        resumed=tally.resumed,
        service_level=None if level is None else round(level, 6),
        threshold_s=tier.sla_threshold_s,
        target=tier.sla_target,
        met=met,
        asa_s=round(tally.answer_wait_sum / tally.answered, 3) if tally.answered else None,
        longest_answered_wait_s=round(tally.answer_wait_max, 3) if tally.answered else None,
        average_handle_s=round(tally.handle_sum / tally.ended, 3) if tally.ended else None,
    )


# --- windows --------------------------------------------------------------------------------


def minute_of(at: float) -> int:
    return math.floor(at / MINUTE)


def interval_of(at: float) -> int:
    return math.floor(at / INTERVAL)


def rolling_minutes(window: str, now: float) -> range:
    """Rolling windows are whole minutes: the current one and the ones before it."""
    current = minute_of(now)
    return range(current - ROLLING_MINUTES[window] + 1, current + 1)


def window_minutes(window_s: float, now: float) -> range:
    """The whole minutes covering the last `window_s` seconds: the current one and the ones before it.

    ceil(window_s / 60) minutes, so 3600 s is the same 60 minutes as the `60m` window. At most
    an hour: that is what the stores keep per minute.
    """
    if not 0 < window_s <= 3600:
        raise ValueError(f"a traffic window is 0 < window_s <= 3600 seconds, not {window_s!r}")
    current = minute_of(now)
    return range(current - math.ceil(window_s / MINUTE) + 1, current + 1)


def local_midnight(now: float, timezone: str) -> float:
    zone = ZoneInfo(timezone)
    local = datetime.fromtimestamp(now, zone)
    midnight = datetime(local.year, local.month, local.day, tzinfo=zone)
    return midnight.timestamp()


def today_intervals(now: float, timezone: str) -> range:
    """Today's 15-minute intervals so far (interval numbers since the epoch), in the configured zone.

    Every real zone offset is a whole number of quarter hours, so local quarter hours are
    epoch quarter hours.
    """
    return range(interval_of(local_midnight(now, timezone)), interval_of(now) + 1)


def interval_start(interval: int) -> float:
    return float(interval * INTERVAL)


def window_start(window: Window, now: float, timezone: str) -> float:
    if window == "today":
        return local_midnight(now, timezone)
    return float(rolling_minutes(window, now).start * MINUTE)


def valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (KeyError, ValueError):
        return False
    return True
