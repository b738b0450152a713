"""Replications into figures: per interval × tier and per tier over the period, each a mean
with its 95% interval (Student's t over the replications; none with a single replication).

Pure. Service level uses the configured formula (`service_level.FORMULAS`) on each
replication's tally; a replication where the formula's denominator is 0 adds nothing to that
mean. Calls count in the interval in which their wait ended, as in every Tierline report.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

import msgspec

from tierline.admin.simulation.run import Replication
from tierline.admin.simulation.samples import Sources
from tierline.admin.simulation.scenario import INTERVAL_S, Scenario
from tierline.queue import service_level as sl
from tierline.queue.wait_accuracy import AccuracyFigures, figures, merged
from tierline.tiers.model import TIERS, Tier

# Student's t, two-sided 95%, by degrees of freedom (1..30); beyond, the normal 1.96 is near enough.
_T95: Final = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t95(df: int) -> float:
    return _T95[df - 1] if df <= len(_T95) else 1.96


class Estimate(msgspec.Struct, kw_only=True):
    """Mean over the replications that had a figure, and its 95% interval (null with fewer than 2)."""

    mean: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0


def estimate(values: Iterable[float | None], digits: int = 6) -> Estimate:
    have = [v for v in values if v is not None]
    if not have:
        return Estimate(mean=None)
    mean = statistics.fmean(have)
    if len(have) < 2:
        return Estimate(mean=round(mean, digits), n=1)
    half = t95(len(have) - 1) * statistics.stdev(have) / math.sqrt(len(have))
    return Estimate(
        mean=round(mean, digits), low=round(mean - half, digits), high=round(mean + half, digits), n=len(have)
    )


class Cell(msgspec.Struct, kw_only=True):
    """One interval × tier (or one tier over the period), averaged over the replications."""

    tier: Tier
    arrived: Estimate
    service_level: Estimate
    asa_s: Estimate
    abandoned: Estimate
    overflowed: Estimate
    callbacks_created: Estimate
    callbacks_worked_in_time: Estimate  # of those created here: completed by their deadline
    # True: every callback created here was completed by its deadline in every replication;
    # False: some were not (late, unreached, or still open when the plan ended); null: none.
    callbacks_workable: bool | None
    target: float | None
    met: bool | None  # the mean service level against the target


class IntervalRow(msgspec.Struct, kw_only=True):
    start: float
    time: str  # local HH:MM (the configured time zone) the interval starts at
    agents: int
    tiers: list[Cell]


class TierEstimates(AccuracyFigures, kw_only=True):
    """How right the engine's quoted waits were for one tier: every replication's answered
    calls pooled, the whole run (the warm-up intervals included)."""

    tier: Tier


class Outcome(msgspec.Struct, kw_only=True):
    seed: int
    replications: int
    formula: str
    formula_text: str
    start: float
    end: float
    intervals: list[IntervalRow]
    totals: list[Cell]  # per tier over the period after the warm-up intervals
    warmup_intervals: int
    waiting_at_end: dict[Tier, float]  # mean calls still waiting when the plan ended
    calls_simulated: int  # over all replications
    sources: Sources  # where handle times and patience came from (exponential, archive, none)
    # Per tier with quoted calls answered: the estimated wait against the real one (issue 16 item 5).
    estimate_accuracy: list[TierEstimates] = msgspec.field(default_factory=list)


def _cell(
    tier: Tier, tallies: Sequence[sl.Tally], callbacks: Sequence[tuple[int, int, int]], scenario: Scenario
) -> Cell:
    """`callbacks`: per replication (created, worked in time, closed) for this cell."""
    policy = scenario.policy.tier(tier)
    formula = sl.FORMULAS[scenario.policy.sla_formula][1]
    levels = [formula(t) for t in tallies]
    mean_level = estimate(levels)
    created = sum(c for c, _, _ in callbacks)
    worked = sum(w for _, w, _ in callbacks)
    return Cell(
        tier=tier,
        arrived=estimate((t.arrived for t in tallies), 3),
        service_level=mean_level,
        asa_s=estimate((t.answer_wait_sum / t.answered if t.answered else None for t in tallies), 3),
        abandoned=estimate((t.abandoned for t in tallies), 3),
        overflowed=estimate((t.overflowed for t in tallies), 3),
        callbacks_created=estimate((c for c, _, _ in callbacks), 3),
        callbacks_worked_in_time=estimate((w for _, w, _ in callbacks), 3),
        callbacks_workable=None if created == 0 else worked == created,
        target=policy.sla_target,
        met=None if mean_level.mean is None or policy.sla_target is None else mean_level.mean >= policy.sla_target,
    )


def summarise(scenario: Scenario, runs: Sequence[Replication]) -> Outcome:
    count = len(scenario.arrivals.intervals)
    # The run may go past the last arrival interval (calls finishing): those count in the last row.
    last = count - 1

    def row_of(index: int) -> int:
        return min(max(index, 0), last)

    per_cell: dict[tuple[int, Tier], list[sl.Tally]] = {}
    per_tier: dict[Tier, list[sl.Tally]] = {tier: [] for tier in TIERS}
    cb_cell: dict[tuple[int, Tier], list[tuple[int, int, int]]] = {}
    cb_tier: dict[Tier, list[tuple[int, int, int]]] = {tier: [] for tier in TIERS}
    for run in runs:
        cells: dict[tuple[int, Tier], sl.Tally] = {(i, t): sl.Tally() for i in range(count) for t in TIERS}
        for (index, tier), t in run.tallies.items():
            cells[(row_of(index), tier)].add(t)
        whole = {tier: sl.Tally() for tier in TIERS}
        for (index, tier), t in cells.items():
            if index >= scenario.warmup_intervals:
                whole[tier].add(t)
        fates: dict[tuple[int, Tier], list[int]] = {key: [0, 0, 0] for key in cells}
        for fate in run.callbacks:
            counts = fates[(row_of(fate.interval), fate.tier)]
            counts[0] += 1
            counts[1] += int(fate.in_time)
            counts[2] += int(fate.closed)
        for key, t in cells.items():
            per_cell.setdefault(key, []).append(t)
            c = fates[key]
            cb_cell.setdefault(key, []).append((c[0], c[1], c[2]))
        for tier in TIERS:
            per_tier[tier].append(whole[tier])
            mine = [c for (i, t), c in fates.items() if t == tier and i >= scenario.warmup_intervals]
            cb_tier[tier].append((sum(c[0] for c in mine), sum(c[1] for c in mine), sum(c[2] for c in mine)))
    start = scenario.arrivals.start
    zone = ZoneInfo(scenario.policy.timezone)
    rows = []
    for index in range(count):
        at = start + index * INTERVAL_S
        rows.append(
            IntervalRow(
                start=at,
                time=_clock(at, zone),
                agents=_agents_at(scenario, at),
                tiers=[_cell(tier, per_cell[(index, tier)], cb_cell[(index, tier)], scenario) for tier in TIERS],
            )
        )
    formula = scenario.policy.sla_formula
    return Outcome(
        seed=scenario.seed,
        replications=len(runs),
        formula=formula,
        formula_text=sl.FORMULAS[formula][0],
        start=start,
        end=scenario.arrivals.end,
        intervals=rows,
        totals=[_cell(tier, per_tier[tier], cb_tier[tier], scenario) for tier in TIERS],
        warmup_intervals=scenario.warmup_intervals,
        waiting_at_end={tier: round(statistics.fmean(r.waiting_at_end[tier] for r in runs), 3) for tier in TIERS},
        calls_simulated=sum(r.calls for r in runs),
        sources=scenario.sources,
        estimate_accuracy=[
            TierEstimates(tier=tier, **msgspec.structs.asdict(figures(pooled)))
            for tier in TIERS
            if (pooled := merged(r.estimates[tier] for r in runs if tier in r.estimates)).n
        ],
    )


def _agents_at(scenario: Scenario, at: float) -> int:
    for shift in scenario.staffing:
        if shift.start <= at < shift.end:
            return shift.agents
    return 0


def _clock(at: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(at, zone).strftime("%H:%M")
