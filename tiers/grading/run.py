"""One grading run as a library call: read the files, grade, compare with the previous run,
and decide whether the result may go live; plus the tier file it hands to the reload path.

`run_grading` is what `tierline grade` calls; the pieces it joins are pure (`grade`,
`migration`) or own their I/O (`inputs`). Nothing here writes to a store: applying is the
existing reload's job (atomic swap, reject threshold, rollback), fed the file `write_tier_file` makes.
"""

from __future__ import annotations

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
from tierline.tiers.grading.config import PREFIX, GradingSettings
from tierline.tiers.grading.engine import Graded, KeptEdit, grade
from tierline.tiers.grading.figures import RfmReport, ScorecardReport, ValueShareReport
from tierline.tiers.grading.grade import default_as_of
from tierline.tiers.grading.inputs import BadInput, Loaded, Problem, read_aggregates, read_transactions
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
    edits_kept: int = 0
    """Hand edits (`PUT /admin/tiers/{caller}` since the last run) whose tier this run keeps."""
    edits: list[KeptEdit] = []
    """Every hand edit the run met, by number, and whether it stands (a blacklist flag overrules one)."""
    edits_reset: int = 0
    """Hand edits this run dropped (`--reset-edits`): their numbers take the run's own tier."""


@dataclass(slots=True)
class GradingRun:
    report: GradingReport
    graded: Graded
    """The records, held in DuckDB until `close`."""

    def may_apply(self, force: bool = False) -> bool:
        return not self.report.refused and (force or not self.report.guard)

    @property
    def records(self) -> Records:
        """Every record fetched into Python (small runs: tests, a look by hand)."""
        return self.graded.records

    def write_tier_file(self, path: Path) -> int:
        return self.graded.write_csv(path)

    def close(self) -> None:
        self.graded.close()


def run_grading(
    settings: GradingSettings,
    *,
    aggregates: Path | None = None,
    transactions: Path | None = None,
    customers: Path | None = None,
    previous: Path | None = None,
    live: Mapping[str, Tier] | None = None,
    edits: Mapping[str, Tier] | None = None,
    as_of: dt.date | None = None,
    today: dt.date | None = None,
    step: Step = _NO_STEP,
) -> GradingRun:
    """Grade the files. Raises `inputs.BadInput` (or `MissingEngine`) when a file cannot be read at all.

    `as_of`: the argument, else the config's, else the day before `today` in the config's zone.
    The migration report compares with `previous` (a tier file, with PSI from its explanation),
    else with `live` (the store's caller -> tier table), else it is left out.
    `edits` (the store's hand edits, caller -> tier) are laid over the graded tiers before the
    comparison: after the blacklist flag, before the rules (`Graded.keep_edits`).
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
    graded = grade(population, settings, as_of)
    try:
        met = graded.keep_edits(edits) if edits else []
    except BaseException:
        graded.close()
        raise
    report = _report(population, graded, settings)
    report.edits = met
    report.edits_kept = sum(1 for edit in met if edit.kept)
    if previous is not None:
        step("comparing")
        before = read_tier_file(previous)
        report.migration = migration.compare(
            {caller: tier for caller, (tier, _) in before.items()}, graded.tier_of(), settings.guard
        )
        report.migration.psi = _psi(before, graded)
        report.guard = list(report.migration.refusals)
    elif live is not None:
        step("comparing with the live table")
        report.migration = migration.compare(live, graded.tier_of(), settings.guard)
        report.guard = list(report.migration.refusals)
    return GradingRun(report=report, graded=graded)


def _report(population: Loaded, graded: Graded, settings: GradingSettings) -> GradingReport:
    refused = []
    allowed = Fraction(str(settings.max_reject_ratio)) * population.data_rows
    if population.rejected_rows > allowed:
        refused.append(
            f"{population.rejected_rows} of {population.data_rows} rows are rejected"
            f" (more than max_reject_ratio {settings.max_reject_ratio:g})"
        )
    if not graded.callers:
        refused.append("no customer with a caller number was graded")
    return GradingReport(
        as_of=graded.as_of.isoformat(),
        timezone=settings.timezone,
        customers=len(population),
        callers=graded.callers,
        data_rows=population.data_rows,
        rejected_rows=population.rejected_rows,
        max_reject_ratio=settings.max_reject_ratio,
        problems=population.problems,
        problem_count=population.problem_count,
        conflicts=graded.conflicts,
        conflict_count=graded.conflict_count,
        tiers=graded.tiers,
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
    new_rfm = graded.rfm_totals()
    if old_rfm and new_rfm:
        found["rfm_total"] = migration.psi(old_rfm, new_rfm, migration.RFM_TOTAL_EDGES)
    old_scores = []
    for _, crm in before.values():
        try:
            old_scores.append(float(crm[PREFIX + "score"]))
        except (KeyError, ValueError):
            continue
    new_scores = graded.score_totals()
    if old_scores and new_scores:
        found["score_total"] = migration.psi(old_scores, new_scores, migration.SCORE_EDGES)
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
