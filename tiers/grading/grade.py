"""One grading pass over a `Population`: every configured method, the rules, the explanation.

Pure (no files, no clock: `as_of` is given). The result holds one record per caller number,
ready to be written as a tier file, and the figures the report publishes.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import msgspec

from tierline.tiers.grading import rfm, scorecard, value_share
from tierline.tiers.grading.config import EXPLAIN_FIELDS, PREFIX, GradingSettings
from tierline.tiers.grading.inputs import BadInput, Population
from tierline.tiers.grading.rules import Facts, choose, is_flagged
from tierline.tiers.model import TIER_RANK, TIERS, Tier

# Columns a scorecard criterion may name besides the customer file's own.
DERIVED: Final = ("amount", "purchases", "profit", "recency_days")
SCORE_NAMES: Final = ("R", "F", "M")


class RfmReport(msgspec.Struct, kw_only=True):
    graded: int
    high_from: int
    cutoffs: dict[str, list[rfm.Cutoff]]
    notes: list[str]
    segments: dict[str, int]


class ScorecardReport(msgspec.Struct, kw_only=True):
    grades: dict[str, int]
    no_band: dict[str, int]
    """Per criterion: customers whose value no band holds (0 points)."""


class ValueShareReport(msgspec.Struct, kw_only=True):
    by: str
    total: float
    classes: dict[str, int]
    class_share: dict[str, float]


@dataclass(slots=True)
class Graded:
    as_of: dt.date
    customer_tier: list[Tier]
    records: dict[str, tuple[Tier, dict[str, str]]]
    """caller -> (tier, CRM fields incl. the grading.* explanation)."""
    rule_counts: dict[str, int]
    conflicts: list[str] = field(default_factory=list)
    conflict_count: int = 0
    rfm: RfmReport | None = None
    scorecard: ScorecardReport | None = None
    value_share: ValueShareReport | None = None
    rfm_totals: list[int] = field(default_factory=list)
    score_totals: list[float] = field(default_factory=list)


def default_as_of(today: dt.date) -> dt.date:
    """A nightly job grades up to yesterday: today's business is not over yet."""
    return today - dt.timedelta(days=1)


def grade_population(population: Population, settings: GradingSettings, as_of: dt.date) -> Graded:
    n = len(population)
    columns = {name.strip().lower(): values for name, values in population.columns.items()}
    recency: list[int | None] = [None if last is None else max(0, (as_of - last).days) for last in population.last_date]
    segment: list[str | None] = [None] * n
    rfm_text: list[str | None] = [None] * n
    rfm_total: list[int | None] = [None] * n
    graded_rfm: RfmReport | None = None
    if settings.rfm is not None:
        graded_rfm = _grade_rfm(population, recency, settings.rfm.high_from, segment, rfm_text, rfm_total)
    grade: list[str | None] = [None] * n
    score: list[float | None] = [None] * n
    points_text: list[str | None] = [None] * n
    card_report: ScorecardReport | None = None
    if settings.scorecard is not None:
        card_report = _grade_scorecard(population, recency, columns, settings, grade, score, points_text)
    classes: list[str | None] = [None] * n
    share_report: ValueShareReport | None = None
    if settings.value_share is not None:
        share_report = _grade_value_share(population, settings, classes)
    blacklist = columns.get(settings.blacklist_column.strip().lower())
    pins = columns.get(settings.pin_column.strip().lower())
    travelling = [("customer_id", population.ids)]
    travelling += [(name, columns[name.lower()]) for name in settings.crm_columns if name.lower() in columns]
    explain = set(settings.explain)
    as_of_text = as_of.isoformat()
    customer_tier: list[Tier] = []
    rule_counts: Counter[str] = Counter()
    records: dict[str, tuple[Tier, dict[str, str]]] = {}
    owner: dict[str, int] = {}
    result = Graded(as_of=as_of, customer_tier=customer_tier, records=records, rule_counts={})
    # The rules see a handful of facts per customer, and those repeat across a million customers:
    # each distinct combination is decided once (a dict look-up for the rest).
    rule_columns = sorted({rule.column.strip().lower() for rule in settings.rules if rule.column})
    rule_values = [columns.get(name, [""] * n) for name in rule_columns]
    uses_score = any(rule.score_at_least is not None for rule in settings.rules)
    decided: dict[tuple[object, ...], tuple[Tier, str]] = {}
    explained = [name for name in EXPLAIN_FIELDS if name in explain]
    for at in range(n):
        flag = blacklist[at] if blacklist is not None else ""
        pin = pins[at] if pins is not None else ""
        key = (
            segment[at],
            grade[at],
            score[at] if uses_score else None,
            classes[at],
            rfm_total[at],
            flag,
            pin,
            *(values[at] for values in rule_values),
        )
        choice = decided.get(key)
        if choice is None:
            facts = Facts(
                segment=segment[at],
                grade=grade[at],
                score=score[at],
                value_class=classes[at],
                rfm_total=rfm_total[at],
                columns=_Row(columns, at),
            )
            choice = decided[key] = choose(
                settings.rules, facts, settings.default_tier, blacklisted=is_flagged(flag), pinned=pin
            )
        tier, rule = choice
        customer_tier.append(tier)
        rule_counts[rule] += 1
        crm: dict[str, str] = {}
        for name, values in travelling:
            value: str | None = values[at]
            if value:
                crm[name] = value
        for field_name in explained:
            if field_name == "as_of":
                value = as_of_text
            elif field_name == "rule":
                value = rule
            elif field_name == "segment":
                value = segment[at]
            elif field_name == "rfm":
                value = rfm_text[at]
            elif field_name == "grade":
                value = grade[at]
            elif field_name == "score":
                value = None if score[at] is None else f"{score[at]:g}"
            elif field_name == "points":
                value = points_text[at]
            elif field_name == "class":
                value = classes[at]
            elif field_name == "amount":
                value = f"{population.amount[at]:g}"
            else:
                profit = population.profit[at]
                value = None if profit is None else f"{profit:g}"
            if value is not None:
                crm[PREFIX + field_name] = value
        for caller in population.callers[at]:
            first = owner.get(caller)
            if first is None:
                owner[caller] = at
                records[caller] = (tier, crm)
                continue
            held = records[caller][0]
            winner = _precedence(settings.caller_precedence, held, tier)
            if winner != held:
                owner[caller] = at
                records[caller] = (tier, crm)
            result.conflict_count += 1
            if len(result.conflicts) < 1000:
                result.conflicts.append(
                    f"caller {caller} is on customers {population.ids[first]} ({held}) and"
                    f" {population.ids[at]} ({tier}): {winner} wins"
                )
    result.rule_counts = dict(rule_counts)
    result.rfm, result.scorecard, result.value_share = graded_rfm, card_report, share_report
    result.rfm_totals = [total for total in rfm_total if total is not None]
    result.score_totals = [total for total in score if total is not None]
    return result


def _precedence(order: Sequence[Tier], held: Tier, new: Tier) -> Tier:
    return held if order.index(held) <= order.index(new) else new


class _Row:
    """One customer's columns as a read-only mapping, without building a dict per customer."""

    __slots__ = ("at", "columns")

    def __init__(self, columns: dict[str, list[str]], at: int) -> None:
        self.columns, self.at = columns, at

    def get(self, name: str, default: str, /) -> str:
        values = self.columns.get(name.strip().lower())
        return default if values is None else values[self.at]


def _grade_rfm(
    population: Population,
    recency: list[int | None],
    high_from: int,
    segment: list[str | None],
    rfm_text: list[str | None],
    rfm_total: list[int | None],
) -> RfmReport:
    # The graded population: customers with at least one purchase.
    members = [at for at in range(len(population)) if population.purchases[at] > 0 and recency[at] is not None]
    days = [recency[at] or 0 for at in members]
    frequency = [float(population.purchases[at]) for at in members]
    money = [population.amount[at] for at in members]
    r_scores = rfm.recency_scores(days)
    f_scores = rfm.scores(frequency)
    m_scores = rfm.scores(money)
    segments: Counter[str] = Counter()
    for at, r, f, m in zip(members, r_scores, f_scores, m_scores, strict=True):
        name = rfm.segment(r, f, m, high_from)
        segment[at] = name
        rfm_text[at] = f"R{r} F{f} M{m}"
        rfm_total[at] = r + f + m
        segments[name] += 1
    for at in range(len(population)):
        if segment[at] is None:
            segment[at] = rfm.NO_PURCHASES
            segments[rfm.NO_PURCHASES] += 1
    cutoffs = {
        "R": rfm.cutoffs([float(day) for day in days], r_scores),
        "F": rfm.cutoffs(frequency, f_scores),
        "M": rfm.cutoffs(money, m_scores),
    }
    notes = []
    for name, found in cutoffs.items():
        given = [cutoff.score for cutoff in found]
        if members and len(given) < 5:
            notes.append(f"{name}: only scores {', '.join(map(str, given))} (few distinct values)")
    return RfmReport(graded=len(members), high_from=high_from, cutoffs=cutoffs, notes=notes, segments=dict(segments))


def _grade_scorecard(
    population: Population,
    recency: list[int | None],
    columns: dict[str, list[str]],
    settings: GradingSettings,
    grade: list[str | None],
    score: list[float | None],
    points_text: list[str | None],
) -> ScorecardReport:
    assert settings.scorecard is not None
    card = settings.scorecard
    n = len(population)
    inputs: list[list[str]] = []
    for criterion in card.criteria:
        key = criterion.column.strip().lower()
        if key in columns:
            inputs.append(columns[key])
        elif key == "amount":
            inputs.append([f"{value!r}" for value in population.amount])
        elif key == "purchases":
            inputs.append([str(value) for value in population.purchases])
        elif key == "profit":
            inputs.append(["" if value is None else f"{value!r}" for value in population.profit])
        elif key == "recency_days":
            inputs.append(["" if value is None else str(value) for value in recency])
        else:
            raise BadInput(
                f"scorecard criterion {criterion.name!r} reads column {criterion.column!r}, which the customer"
                f" file does not have (nor is it one of {', '.join(DERIVED)})"
            )
    grades: Counter[str] = Counter()
    no_band: Counter[str] = Counter()
    scorers = [scorecard.Scorer(criterion) for criterion in card.criteria]
    described: dict[tuple[float | None, ...], str] = {}
    for at in range(n):
        earned = [scorer(values[at]) for scorer, values in zip(scorers, inputs, strict=True)]
        total = scorecard.total(earned)
        score[at] = total
        letter = scorecard.grade_of(total, card.cut_points)
        grade[at] = letter
        grades[letter] += 1
        shape = tuple(earned)
        text = described.get(shape)
        if text is None:
            text = described[shape] = ", ".join(
                f"{criterion.name} {'-' if got is None else f'{got:g}'}"
                for criterion, got in zip(card.criteria, earned, strict=True)
            )
        for criterion, got in zip(card.criteria, earned, strict=True):
            if got is None:
                no_band[criterion.name] += 1
        points_text[at] = text
    return ScorecardReport(grades={letter: grades.get(letter, 0) for letter in "ABCDE"}, no_band=dict(no_band))


def _grade_value_share(
    population: Population, settings: GradingSettings, classes: list[str | None]
) -> ValueShareReport:
    assert settings.value_share is not None
    share = settings.value_share
    if share.by == "profit":
        if population.ids and all(value is None for value in population.profit):
            raise BadInput("value_share.by = 'profit' but no customer has a profit; give profit or use by = 'amount'")
        values = [value or 0.0 for value in population.profit]
    else:
        values = list(population.amount)
    found = value_share.classes(values, share.a_share, share.b_share)
    counts: Counter[str] = Counter(found)
    total = sum(value for value in values if value > 0)
    held: dict[str, float] = dict.fromkeys("ABC", 0.0)
    for at, letter in enumerate(found):
        classes[at] = letter
        if values[at] > 0:
            held[letter] += values[at]
    return ValueShareReport(
        by=share.by,
        total=total,
        classes={letter: counts.get(letter, 0) for letter in "ABC"},
        class_share={letter: (held[letter] / total if total else 0.0) for letter in "ABC"},
    )


def tier_counts(records: dict[str, tuple[Tier, dict[str, str]]]) -> dict[str, int]:
    counts = Counter(tier for tier, _ in records.values())
    return {tier: counts.get(tier, 0) for tier in sorted(TIERS, key=TIER_RANK.__getitem__)}
