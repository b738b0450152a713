"""Reports from the archive: service level per bucket × queue × tier, per agent, one call's timeline.

Pure where possible: the bucketing, the figures, masking and CSV take rows and return rows;
the `*_from` functions only add the archive read. Buckets are in an IANA zone and are real
instants: a 60-minute bucket is a local clock hour (so the repeated hour of a fall-back day is
two buckets, and a spring-forward day has 23), a day runs local midnight to local midnight
(23 or 25 hours on change days). A 15-minute tally belongs to the bucket its start falls in.
The service level is the engine's own formula (service_level.FORMULAS via `figures`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Final, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from tierline.queue.errors import Invalid, NotFound
from tierline.queue.history import events as ev
from tierline.queue.history.archive import AgentRow, Archive, TallyRow
from tierline.queue.history.tallies import INTERVAL_S, AgentTally, IntervalTally
from tierline.queue.policy import Policy
from tierline.queue.service_level import figures
from tierline.tiers.model import TIERS, Tier

By = Literal["15m", "30m", "60m", "day", "week", "month"]
BY: Final[tuple[By, ...]] = ("15m", "30m", "60m", "day", "week", "month")
_MINUTES: Final[dict[str, int]] = {"15m": 15, "30m": 30, "60m": 60}


class SlaRow(msgspec.Struct, kw_only=True):
    start: str  # the bucket's local start, ISO 8601 with its offset
    end: str
    queue: str
    tier: str
    offered: int
    answered: int
    answered_within_threshold: int
    abandoned: int
    short_abandoned: int
    overflowed: int
    entered: int
    callbacks_created: int
    callbacks_completed_in_time: int
    callbacks_overdue: int
    asa_s: float | None
    longest_wait_s: float | None
    average_handle_s: float | None
    service_level: float | None
    threshold_s: float | None
    target: float | None
    met: bool | None


class AgentReportRow(msgspec.Struct, kw_only=True):
    start: str
    end: str
    agent: str
    answered: int
    ended: int
    handle_s: float
    average_handle_s: float | None
    callbacks_completed: int


class CallTimeline(msgspec.Struct, kw_only=True):
    """One call that used the id, with the events of the callbacks it created, in time order."""

    call_id: str
    started_at: float
    events: list[ev.Event]


# --- arguments ------------------------------------------------------------------------------


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise Invalid(f"unknown time zone {name!r}: an IANA name such as Europe/Berlin", code="invalid_tz") from error


def check_by(by: str) -> By:
    if by not in BY:
        raise Invalid(f"by is one of {', '.join(BY)}, not {by!r}", code="invalid_by")
    return by


def check_range(start: float, end: float) -> tuple[int, int]:
    """The 15-minute intervals whose start lies in [start, end)."""
    if not (math.isfinite(start) and math.isfinite(end)) or start >= end:
        raise Invalid(f"a report needs from < to, not from={start!r} to={end!r}", code="invalid_range")
    return math.ceil(start / INTERVAL_S), math.ceil(end / INTERVAL_S)


# --- buckets --------------------------------------------------------------------------------


def _midnight(day: date, zone: ZoneInfo) -> float:
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
    if by in _MINUTES:
        # Offsets are whole minutes, so going back the local minutes into the bucket is exact,
        # and stays in the same one of a repeated hour's two passes.
        return at - ((local.minute % _MINUTES[by]) * 60 + local.second + local.microsecond / 1e6)
    return _midnight(_first_day(local.date(), by), zone)


def bucket_end(start: float, by: By, zone: ZoneInfo) -> float:
    if by in _MINUTES:
        return start + _MINUTES[by] * 60
    first = datetime.fromtimestamp(start, zone).date()
    if by == "day":
        return _midnight(first + timedelta(days=1), zone)
    if by == "week":
        return _midnight(first + timedelta(days=7), zone)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return _midnight(following, zone)


def bucket_starts(start: float, end: float, by: By, zone: ZoneInfo) -> list[float]:
    """Every bucket that overlaps [start, end), in order. Runtime: O(buckets)."""
    out = []
    at = bucket_start(start, by, zone)
    while at < end:
        out.append(at)
        at = bucket_end(at, by, zone)
    return out


def _label(at: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(at, zone).isoformat()


# --- service level --------------------------------------------------------------------------


def bucket_bounds(start: float, end: float, by: By, zone: ZoneInfo) -> tuple[list[float], list[int]]:
    """The buckets overlapping [start, end) and, in 15-minute intervals, where each one's
    tallies begin, plus the range's end: what `Archive.bucket_tallies` sums by. The first
    bucket takes intervals from `start` on only. Zones are offset by whole quarter hours, so
    bucket starts are interval starts (rounded up for safety)."""
    first, last = check_range(start, end)
    starts = bucket_starts(start, end, by, zone)
    bounds = [max(first, math.ceil(at / INTERVAL_S)) for at in starts] + [last]
    return starts, bounds


def sla_rows(
    bucketed: Iterable[TallyRow], starts: Sequence[float], by: By, zone: ZoneInfo, policy: Policy
) -> list[SlaRow]:
    """Rows from tallies summed per bucket (`interval` = the bucket's index in `starts`): every
    bucket for every lane that has data in the range, empty ones as zeros.
    Runtime: O(buckets × lanes)."""
    sums = {(row.interval, row.queue, row.tier): row.tally for row in bucketed}
    lanes = sorted({(queue, tier) for _, queue, tier in sums})
    out = []
    for index, at in enumerate(starts):
        end_at = bucket_end(at, by, zone)
        for queue, tier in lanes:
            tally = sums.get((index, queue, tier), IntervalTally())
            out.append(_sla_row(tally, at, end_at, queue, tier, zone, policy))
    return out


def _sla_row(
    t: IntervalTally, start: float, end: float, queue: str, tier: str, zone: ZoneInfo, policy: Policy
) -> SlaRow:
    known = tier in TIERS
    resolved = policy.tier(cast(Tier, tier)) if known else policy.tier(policy.default_tier)
    fig = figures(t.service_tally(), resolved, policy.sla_formula)
    return SlaRow(
        start=_label(start, zone),
        end=_label(end, zone),
        queue=queue,
        tier=tier,
        offered=fig.offered,
        answered=fig.answered,
        answered_within_threshold=fig.answered_within_threshold,
        abandoned=fig.abandoned,
        short_abandoned=fig.short_abandoned,
        overflowed=fig.overflowed,
        entered=t.entered,
        callbacks_created=t.callbacks_created,
        callbacks_completed_in_time=t.callbacks_completed_in_time,
        callbacks_overdue=t.callbacks_overdue,
        asa_s=fig.asa_s,
        longest_wait_s=fig.longest_answered_wait_s,
        average_handle_s=fig.average_handle_s,
        service_level=fig.service_level,
        threshold_s=fig.threshold_s if known else None,
        target=fig.target if known else None,
        met=fig.met if known else None,
    )


async def sla_report(
    archive: Archive,
    start: float,
    end: float,
    *,
    by: str,
    tz: str,
    policy: Policy,
    queues: Sequence[str] | None = None,
    tiers: Sequence[str] | None = None,
) -> list[SlaRow]:
    step, zone = check_by(by), zone_of(tz)
    starts, bounds = bucket_bounds(start, end, step, zone)
    return sla_rows(await archive.bucket_tallies(bounds, queues, tiers), starts, step, zone, policy)


# --- agents ---------------------------------------------------------------------------------


def agent_rows(rows: Iterable[AgentRow], start: float, end: float, by: By, zone: ZoneInfo) -> list[AgentReportRow]:
    """Per bucket × agent, only where the agent has something. Runtime: O(rows)."""
    first, last = check_range(start, end)
    sums: dict[tuple[float, str], AgentTally] = {}
    for row in rows:
        if first <= row.interval < last:
            sums.setdefault((bucket_start(row.interval * INTERVAL_S, by, zone), row.agent), AgentTally()).add(row.tally)
    return [
        AgentReportRow(
            start=_label(at, zone),
            end=_label(bucket_end(at, by, zone), zone),
            agent=agent,
            answered=t.answered,
            ended=t.ended,
            handle_s=round(t.handle_sum, 3),
            average_handle_s=round(t.handle_sum / t.ended, 3) if t.ended else None,
            callbacks_completed=t.callbacks_completed,
        )
        for (at, agent), t in sorted(sums.items())
    ]


async def agent_report(
    archive: Archive, start: float, end: float, *, by: str, tz: str, agents: Sequence[str] | None = None
) -> list[AgentReportRow]:
    step, zone = check_by(by), zone_of(tz)
    first, last = check_range(start, end)
    return agent_rows(await archive.agent_tallies(first, last, agents), start, end, step, zone)


# --- one call's timeline --------------------------------------------------------------------


def timelines(call_id: str, events: Iterable[ev.Event]) -> list[CallTimeline]:
    """Split the events of a call id into its calls, newest first.

    Each `enter` of this call id starts a call (a call enters once; an id seen again after
    retention is another call). A callback's events go with the call that created it.
    Runtime: O(n log n).
    """
    ordered = sorted(events, key=lambda e: (e.at, e.id))
    calls: list[CallTimeline] = []
    owner: dict[str, CallTimeline] = {}  # callback id -> the call that created it
    for event in ordered:
        own = event.call_id == call_id and not isinstance(
            event, ev.CallbackAssigned | ev.CallbackOutcomeEvent | ev.CallbackClosed
        )
        if own:
            if isinstance(event, ev.Enter) or not calls:
                calls.append(CallTimeline(call_id=call_id, started_at=event.at, events=[]))
            calls[-1].events.append(event)
            if isinstance(event, ev.CallbackCreated) and event.callback_id is not None:
                owner[event.callback_id] = calls[-1]
        elif event.callback_id is not None and (call := owner.get(event.callback_id)) is not None:
            call.events.append(event)
    return calls[::-1]


async def call_history(archive: Archive, call_id: str, *, mask: bool = False) -> list[CallTimeline]:
    found = timelines(call_id, await archive.call_events(call_id))
    if not found:
        raise NotFound(f"no archived events for call {call_id!r}")
    if mask:
        for call in found:
            call.events = [mask_event(e) for e in call.events]
    return found


# --- privacy and export ---------------------------------------------------------------------


def mask_caller(number: str) -> str:
    """Every digit but the last four becomes `*`; other characters (`+`, spaces) stay."""
    digits = sum(c.isdigit() for c in number)
    hide = max(0, digits - 4)
    out = []
    for c in number:
        if c.isdigit() and hide > 0:
            out.append("*")
            hide -= 1
        else:
            out.append(c)
    return "".join(out)


def mask_event(event: ev.Event) -> ev.Event:
    return event if event.caller is None else msgspec.structs.replace(event, caller=mask_caller(event.caller))


def to_csv(rows: Sequence[msgspec.Struct], fields: Sequence[str] | None = None) -> str:
    """A header line and one line per row; null as an empty cell. An empty report is its header
    only when `fields` are given (a row type names them otherwise)."""
    names = list(fields) if fields is not None else (list(rows[0].__struct_fields__) if rows else [])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if names:
        writer.writerow(names)
    for row in rows:
        writer.writerow(["" if (v := getattr(row, n)) is None else v for n in names])
    return buffer.getvalue()


SLA_FIELDS: Final = SlaRow.__struct_fields__
AGENT_REPORT_FIELDS: Final = AgentReportRow.__struct_fields__
