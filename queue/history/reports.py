"""Reports from the archive: service level per bucket × queue × tier, per agent, one call's timeline.

Pure where possible: the bucketing, the figures, masking and CSV take rows and return rows;
the `*_from` functions only add the archive read. Buckets are in an IANA zone and are real
instants: a 60-minute bucket is a local clock hour (so the repeated hour of a fall-back day is
two buckets, and a spring-forward day has 23), a day runs local midnight to local midnight
(23 or 25 hours on change days). A 15-minute tally belongs to the bucket its start falls in.
Where buckets lie is buckets.py's rule (re-exported here).
The service level is the engine's own formula (service_level.FORMULAS via `figures`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from tierline.queue.errors import Invalid, NotFound
from tierline.queue.history import events as ev
from tierline.queue.history.archive import AgentRow, Archive, TallyRow, sum_rows
from tierline.queue.history.buckets import BY as BY
from tierline.queue.history.buckets import WHOLE_DAYS, bucket_of, interval_bound, local_midnight
from tierline.queue.history.buckets import By as By
from tierline.queue.history.buckets import bucket_end as bucket_end
from tierline.queue.history.buckets import bucket_start as bucket_start
from tierline.queue.history.buckets import bucket_starts as bucket_starts
from tierline.queue.history.tallies import INTERVAL_S, AgentTally, IntervalTally, interval_of
from tierline.queue.policy import Policy, ResolvedTierPolicy
from tierline.queue.service_level import FORMULAS, figures
from tierline.tiers.model import TIERS

LaneBucket = tuple[int, str, str]  # (bucket index, queue, tier)
# The shortest each bucket can be (a spring-forward day is 23 hours): bounds the bucket count.
_SHORTEST_S: Final[dict[str, int]] = {
    "15m": 900,
    "30m": 1800,
    "60m": 3600,
    "day": 23 * 3600,
    "week": 7 * 86_400 - 3600,
    "month": 28 * 86_400 - 3600,
}
MAX_BUCKETS: Final = 10_000  # a 15-minute report of about 104 days; a month report of 800 years
MAX_THRESHOLDS: Final = 8
MAX_THRESHOLD_S: Final = 86_400.0


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
    # Calls that took the callback offer and left the line (in no formula, nor in `offered`), and
    # abandons taken back by a re-call within resume_window_s (still in `abandoned`; the default
    # formula leaves them out as it does short ones): as /admin/sla counts them. Last, so the
    # CSV columns before them stay where they were.
    callback_requested: int
    resumed: int
    # Extra thresholds asked for (`thresholds=`): seconds (as "%g" text) -> answered within them.
    answered_within: dict[str, int] = msgspec.field(default_factory=dict)


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


def parse_instant(text: str, zone: ZoneInfo, name: str) -> float:
    """A report bound: an RFC 3339 time (`2026-06-01T08:00:00+02:00`, `…Z`), a local time
    without offset (`2026-06-01T08:00`, read in `zone`), or a date (`2026-06-01`: its local
    midnight in `zone`)."""
    try:
        if len(text) == 10:
            return local_midnight(date.fromisoformat(text), zone)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(
            f"{name} is a date (2026-06-01) or a time (2026-06-01T08:00:00+02:00), not {text!r}", code=f"invalid_{name}"
        ) from None
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)).timestamp()


def parse_thresholds(text: str | None) -> tuple[float, ...]:
    """`thresholds=10,30,60`: extra answer-time thresholds in seconds, each counted per row."""
    if not text:
        return ()
    try:
        found = tuple(sorted({float(part) for part in text.split(",")}))
    except ValueError:
        found = ()
    if not found or len(found) > MAX_THRESHOLDS or not all(0 < t <= MAX_THRESHOLD_S for t in found):
        raise Invalid(
            f"thresholds is up to {MAX_THRESHOLDS} numbers of seconds, each above 0 and at most"
            f" {MAX_THRESHOLD_S:g}, comma-separated (10,30,60), not {text!r}",
            code="invalid_thresholds",
        )
    return found


def threshold_key(seconds: float) -> str:
    return f"{seconds:g}"


def check_buckets(start: float, end: float, by: By) -> None:
    """Refuses a report of more than MAX_BUCKETS buckets before anything is read."""
    if (end - start) / _SHORTEST_S[by] > MAX_BUCKETS - 1:
        raise Invalid(
            f"a report by {by} holds at most {MAX_BUCKETS} buckets: ask for a shorter range or longer buckets",
            code="too_many_buckets",
        )


def check_range(start: float, end: float) -> tuple[int, int]:
    """The 15-minute intervals whose start lies in [start, end)."""
    if not (math.isfinite(start) and math.isfinite(end)) or start >= end:
        raise Invalid(f"a report needs from < to, not from={start!r} to={end!r}", code="invalid_range")
    return math.ceil(start / INTERVAL_S), math.ceil(end / INTERVAL_S)


# --- buckets ---------------------------------------------------------------------------------


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
    bounds = [max(first, interval_bound(at)) for at in starts] + [last]
    return starts, bounds


def sla_rows(
    bucketed: Iterable[TallyRow],
    starts: Sequence[float],
    by: By,
    zone: ZoneInfo,
    policy: Policy,
    extra: Mapping[LaneBucket, dict[str, int]] | None = None,
    thresholds: Sequence[float] = (),
) -> list[SlaRow]:
    """Rows from tallies summed per bucket (`interval` = the bucket's index in `starts`): every
    bucket for every lane that has data in the range, empty ones as zeros. `extra` holds the
    answers within each of `thresholds` per bucket × lane (`extra_within`).
    Runtime: O(buckets × lanes)."""
    sums = {(row.interval, row.queue, row.tier): row.tally for row in bucketed}
    lanes = sorted({(queue, tier) for _, queue, tier in sums})
    zeros = {threshold_key(t): 0 for t in thresholds}
    # Labels once per bucket, tier settings once per tier: a 31-day report by 15 minutes has
    # some 3,000 buckets × every lane.
    resolved = {tier: _resolved(tier, policy) for _, tier in lanes}
    empty = IntervalTally()
    out = []
    for index, at in enumerate(starts):
        start_label, end_label = _label(at, zone), _label(bucket_end(at, by, zone), zone)
        for queue, tier in lanes:
            tally = sums.get((index, queue, tier), empty)
            row = _sla_row(tally, start_label, end_label, queue, tier, resolved[tier], policy)
            if thresholds:
                row.answered_within = dict((extra or {}).get((index, queue, tier), zeros))
            out.append(row)
    return out


def extra_within(
    events: Iterable[ev.Event],
    bounds: Sequence[int],
    thresholds: Sequence[float],
    queues: Collection[str] | None = None,
    tiers: Collection[str] | None = None,
) -> dict[LaneBucket, dict[str, int]]:
    """Answers within each extra threshold per bucket × queue × tier, recounted from raw
    answer events (the tallies keep only the tier's own threshold). An answer belongs to the
    bucket its 15-minute interval does, as in the tallies. Runtime: O(events × thresholds)."""
    out: dict[LaneBucket, dict[str, int]] = {}
    keys = [(threshold_key(t), t) for t in thresholds]
    for event in events:
        if not isinstance(event, ev.Answer) or event.queue is None or event.tier is None:
            continue
        if (queues is not None and event.queue not in queues) or (tiers is not None and event.tier not in tiers):
            continue
        if (index := bucket_of(bounds, interval_of(event.at))) < 0:
            continue
        counts = out.setdefault((index, event.queue, event.tier), {key: 0 for key, _ in keys})
        for key, seconds in keys:
            counts[key] += event.wait_s <= seconds
    return out


def _resolved(tier: str, policy: Policy) -> ResolvedTierPolicy:
    return policy.tier(tier) if tier in TIERS else policy.tier(policy.default_tier)


def _sla_row(
    t: IntervalTally, start: str, end: str, queue: str, tier: str, resolved: ResolvedTierPolicy, policy: Policy
) -> SlaRow:
    known = tier in TIERS
    fig = figures(t.service_tally(), resolved, policy.sla_formula)
    return SlaRow(
        start=start,
        end=end,
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
        callback_requested=fig.callback_requested,
        resumed=fig.resumed,
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
    thresholds: Sequence[float] = (),
    all_queues: bool = False,
) -> list[SlaRow]:
    """Reads the bucketed tallies only (fast whatever the call count), plus the raw answer
    events of the range when extra thresholds are asked for."""
    step, zone = check_by(by), zone_of(tz)
    check_buckets(start, end, step)
    starts, bounds = bucket_bounds(start, end, step, zone)
    extra = None
    if thresholds:
        raw = await archive.events(bounds[0] * INTERVAL_S, bounds[-1] * INTERVAL_S)
        extra = extra_within(raw, bounds, thresholds, queues, tiers)
    tallies = await archive.bucket_tallies(bounds, queues, tiers, days_in=tz if step in WHOLE_DAYS else None)
    if all_queues:
        tallies, extra = queues_together(tallies, extra)
    return sla_rows(tallies, starts, step, zone, policy, extra, thresholds)


ALL_QUEUES: Final = "*"  # the queue of a row summed over every queue


def queues_together(
    bucketed: Iterable[TallyRow], extra: Mapping[LaneBucket, dict[str, int]] | None
) -> tuple[list[TallyRow], dict[LaneBucket, dict[str, int]] | None]:
    """Per bucket × tier, every queue summed (queue `*`): a tier's own service level across
    the center. The level is computed from the summed tallies, never averaged. Runtime: O(rows)."""
    rows = sum_rows(((row.interval, ALL_QUEUES, row.tier), row.tally) for row in bucketed)
    if extra is None:
        return rows, None
    merged: dict[LaneBucket, dict[str, int]] = {}
    for (index, _, tier), counts in extra.items():
        into = merged.setdefault((index, ALL_QUEUES, tier), dict.fromkeys(counts, 0))
        for key, n in counts.items():
            into[key] += n
    return rows, merged


class SlaReport(msgspec.Struct, kw_only=True):
    """`GET /admin/reports/sla` and `tierline report sla`: the range, how it was cut, the formula."""

    start: str  # the range asked for, local time with offset
    end: str
    by: By
    timezone: str
    formula: str
    formula_text: str
    thresholds: list[float]  # the extra thresholds counted in each row's `answered_within`
    rows: list[SlaRow]


class AgentReport(msgspec.Struct, kw_only=True):
    start: str
    end: str
    by: By
    timezone: str
    rows: list[AgentReportRow]


class CallHistory(msgspec.Struct, kw_only=True):
    """`GET /admin/calls/{call_id}/history`: every call that used the id, newest first."""

    call_id: str
    masked: bool
    calls: list[CallTimeline]


async def sla_report_of(
    archive: Archive,
    start: float,
    end: float,
    *,
    by: str,
    tz: str,
    policy: Policy,
    queues: Sequence[str] | None = None,
    tiers: Sequence[str] | None = None,
    thresholds: Sequence[float] = (),
    all_queues: bool = False,
) -> SlaReport:
    rows = await sla_report(
        archive,
        start,
        end,
        by=by,
        tz=tz,
        policy=policy,
        queues=queues,
        tiers=tiers,
        thresholds=thresholds,
        all_queues=all_queues,
    )
    zone = zone_of(tz)
    return SlaReport(
        start=_label(start, zone),
        end=_label(end, zone),
        by=check_by(by),
        timezone=tz,
        formula=policy.sla_formula,
        formula_text=FORMULAS[policy.sla_formula][0],
        thresholds=list(thresholds),
        rows=rows,
    )


async def agent_report_of(
    archive: Archive, start: float, end: float, *, by: str, tz: str, agents: Sequence[str] | None = None
) -> AgentReport:
    rows = await agent_report(archive, start, end, by=by, tz=tz, agents=agents)
    zone = zone_of(tz)
    return AgentReport(start=_label(start, zone), end=_label(end, zone), by=check_by(by), timezone=tz, rows=rows)


def sla_csv(report: SlaReport) -> str:
    """The rows as CSV, each extra threshold its own column (`answered_within_30s`)."""
    keys = [threshold_key(t) for t in report.thresholds]
    names = [*SLA_FIELDS, *(f"answered_within_{k}s" for k in keys)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(names)
    for row in report.rows:
        cells = ["" if (v := getattr(row, n)) is None else v for n in SLA_FIELDS]
        writer.writerow(cells + [row.answered_within.get(k, 0) for k in keys])
    return buffer.getvalue()


# --- agents ---------------------------------------------------------------------------------


def agent_rows(rows: Iterable[AgentRow], start: float, end: float, by: By, zone: ZoneInfo) -> list[AgentReportRow]:
    """Per bucket × agent, only where the agent has something. Runtime: O(rows)."""
    starts, bounds = bucket_bounds(start, end, by, zone)
    sums: dict[tuple[int, str], AgentTally] = {}
    for row in rows:
        if (index := bucket_of(bounds, row.interval)) >= 0:
            sums.setdefault((index, row.agent), AgentTally()).add(row.tally)
    return [
        AgentReportRow(
            start=_label(starts[index], zone),
            end=_label(bucket_end(starts[index], by, zone), zone),
            agent=agent,
            answered=t.answered,
            ended=t.ended,
            handle_s=round(t.handle_sum, 3),
            average_handle_s=round(t.handle_sum / t.ended, 3) if t.ended else None,
            callbacks_completed=t.callbacks_completed,
        )
        for (index, agent), t in sorted(sums.items())
    ]


async def agent_report(
    archive: Archive, start: float, end: float, *, by: str, tz: str, agents: Sequence[str] | None = None
) -> list[AgentReportRow]:
    step, zone = check_by(by), zone_of(tz)
    check_buckets(start, end, step)
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


# Every column but the extra thresholds, which `sla_csv` spreads one per column.
SLA_FIELDS: Final = tuple(f for f in SlaRow.__struct_fields__ if f != "answered_within")
AGENT_REPORT_FIELDS: Final = AgentReportRow.__struct_fields__
