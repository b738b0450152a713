"""One grading run as a library call: read the files, grade, compare with the previous run,
and decide whether the result may go live; plus the tier file it hands to the reload path.

`run_grading` is what `tierline grade` calls; the pieces it joins are pure (`grade`,
`migration`) or own their I/O (`inputs`). Nothing here writes to a store: applying is the
existing reload's job (atomic swap, reject threshold, rollback), fed the file `write_tier_file` makes.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

import msgspec

from tierline.tiers import codec
from tierline.tiers.grading import migration
from tierline.tiers.grading.config import EXPLAIN_FIELDS, PREFIX, GradingSettings
from tierline.tiers.grading.grade import (
    Graded,
    RfmReport,
    ScorecardReport,
    ValueShareReport,
    default_as_of,
    grade_population,
    tier_counts,
)
from tierline.tiers.grading.inputs import BadInput, Population, Problem, read_aggregates, read_transactions
from tierline.tiers.model import Tier
from tierline.tiers.parse import TierFileFormat, parse_tier_file

Step = Callable[[str], None]
Records = dict[str, tuple[Tier, dict[str, str]]]
_NO_STEP: Final[Step] = lambda _: None  # noqa: E731


class GradingReport(msgspec.Struct, kw_only=True):
    """What a run found and decided: printed by `tierline grade`, kept as JSON with `--report`."""

    as_of: str
    timezone: str
    customers: int
    callers: int
    data_rows: int
    rejected_rows: int
    max_reject_ratio: float
    problems: list[Problem]
    problem_count: int
    conflicts: list[str]
    conflict_count: int
    tiers: dict[str, int]
    rules: dict[str, int]
    rfm: RfmReport | None = None
    scorecard: ScorecardReport | None = None
    value_share: ValueShareReport | None = None
    migration: migration.Migration | None = None
    refused: list[str] = []
    """Why the run must not go live: bad rows over the ratio (never forced past)."""
    guard: list[str] = []
    """Why the guard holds the run back (`--force` goes past these)."""


@dataclass(slots=True)
class GradingRun:
    report: GradingReport
    records: Records

    def may_apply(self, force: bool = False) -> bool:
        return not self.report.refused and (force or not self.report.guard)


def run_grading(
    settings: GradingSettings,
    *,
    aggregates: Path | None = None,
    transactions: Path | None = None,
    customers: Path | None = None,
    previous: Path | None = None,
    as_of: dt.date | None = None,
    today: dt.date | None = None,
    step: Step = _NO_STEP,
) -> GradingRun:
    """Grade the files. Raises `inputs.BadInput` (or `MissingEngine`) when a file cannot be read at all.

    `as_of`: the argument, else the config's, else the day before `today` in the config's zone.
    """
    if as_of is None:
        as_of = settings.as_of
    if as_of is None:
        as_of = default_as_of(today or dt.datetime.now(ZoneInfo(settings.timezone)).date())
    step("reading")
    if aggregates is not None:
        if transactions is not None or customers is not None:
            raise BadInput("give customer aggregates, or transactions with a customer file, not both")
        population = read_aggregates(aggregates, settings)
    elif transactions is not None and customers is not None:
        population = read_transactions(transactions, customers, settings)
    else:
        raise BadInput("give --aggregates FILE, or --transactions FILE with --customers FILE")
    step("grading")
    graded = grade_population(population, settings, as_of)
    report = _report(population, graded, settings)
    if previous is not None:
        step("comparing")
        before = read_tier_file(previous)
        report.migration = migration.compare(
            {caller: tier for caller, (tier, _) in before.items()},
            {caller: tier for caller, (tier, _) in graded.records.items()},
            settings.guard,
        )
        report.migration.psi = _psi(before, graded)
        report.guard = list(report.migration.refusals)
    return GradingRun(report=report, records=graded.records)


def _report(population: Population, graded: Graded, settings: GradingSettings) -> GradingReport:
    refused = []
    allowed = Fraction(str(settings.max_reject_ratio)) * population.data_rows
    if population.rejected_rows > allowed:
        refused.append(
            f"{population.rejected_rows} of {population.data_rows} rows are rejected"
            f" (more than max_reject_ratio {settings.max_reject_ratio:g})"
        )
    if not graded.records:
        refused.append("no customer with a caller number was graded")
    return GradingReport(
        as_of=graded.as_of.isoformat(),
        timezone=settings.timezone,
        customers=len(population),
        callers=len(graded.records),
        data_rows=population.data_rows,
        rejected_rows=population.rejected_rows,
        max_reject_ratio=settings.max_reject_ratio,
        problems=population.problems,
        problem_count=population.problem_count,
        conflicts=graded.conflicts,
        conflict_count=graded.conflict_count,
        tiers=tier_counts(graded.records),
        rules=graded.rule_counts,
        rfm=graded.rfm,
        scorecard=graded.scorecard,
        value_share=graded.value_share,
        refused=refused,
    )


def _psi(before: Records, graded: Graded) -> dict[str, float]:
    """PSI of the RFM total and the scorecard total against the previous run's explanation fields."""
    found: dict[str, float] = {}
    old_rfm = [total for _, crm in before.values() if (total := _rfm_total(crm.get(PREFIX + "rfm", ""))) is not None]
    if old_rfm and graded.rfm_totals:
        found["rfm_total"] = migration.psi(old_rfm, graded.rfm_totals, migration.RFM_TOTAL_EDGES)
    old_scores = []
    for _, crm in before.values():
        try:
            old_scores.append(float(crm[PREFIX + "score"]))
        except (KeyError, ValueError):
            continue
    if old_scores and graded.score_totals:
        found["score_total"] = migration.psi(old_scores, graded.score_totals, migration.SCORE_EDGES)
    return found


def _rfm_total(text: str) -> int | None:
    """ "R5 F4 M3" -> 12."""
    parts = text.split()
    if len(parts) != 3:
        return None
    try:
        return sum(int(part[1:]) for part in parts)
    except ValueError:
        return None


def read_tier_file(path: Path) -> Records:
    """A tier file (a previous run's output, or any reload file) as caller -> (tier, CRM)."""
    fmt: TierFileFormat = "csv" if path.suffix.lower() == ".csv" else "ndjson"
    with path.open("rb") as stream:
        parsed = parse_tier_file(stream, fmt)
    records: Records = {}
    for caller, blob in parsed.records.items():
        record = codec.decode(caller, blob, parsed.fields)
        records[caller] = (record.tier, dict(record.crm))
    return records


def write_tier_file(records: Mapping[str, tuple[Tier, dict[str, str]]], path: Path, settings: GradingSettings) -> int:
    """A CSV tier file `reload-tiers` reads: caller, tier, the CRM columns that travel, grading.*."""
    columns = ["customer_id", *settings.crm_columns, *(PREFIX + name for name in EXPLAIN_FIELDS)]
    present: set[str] = set()
    for _, crm in records.values():
        present.update(crm)
        if len(present) >= len(columns):
            break
    columns = [column for column in columns if column in present]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["caller", "tier", *columns])
        for caller, (tier, crm) in records.items():
            writer.writerow([caller, tier, *(crm.get(column, "") for column in columns)])
    return len(records)
