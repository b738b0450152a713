"""The weighted scorecard: each criterion's band gives points, the total (0-100) a grade A-E.

Pure. The bands were checked at load (`config.Criterion`): numeric bands are sorted, contiguous
and disjoint, so a value falls in at most one; a value no band holds (missing, unparsable,
unknown category) earns 0 points and is counted in the report.
"""

from __future__ import annotations

from collections.abc import Sequence

from tierline.tiers.grading.config import GRADES, Criterion, ScorecardSettings


def points(criterion: Criterion, value: str) -> float | None:
    """The criterion's points for one raw value, or None when no band holds it."""
    text = value.strip()
    if not text:
        return None
    if criterion.bands[0].values is not None:
        key = text.lower()
        for band in criterion.bands:
            if any(key == option.strip().lower() for option in band.values or ()):
                return band.points
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    for band in criterion.bands:
        if (band.min is None or number >= band.min) and (band.max is None or number < band.max):
            return band.points
    return None


def grade_of(total: float, cut_points: Sequence[float]) -> str:
    """A for a total at or above the first cut point, ..., E below the last."""
    reached = sum(1 for cut in cut_points if total >= cut)
    return GRADES[len(cut_points) - reached]


def total(earned: Sequence[float | None]) -> float:
    # Rounded: 0.1 + 0.2 must not miss a cut point of 0.3 by one bit.
    return round(sum(p for p in earned if p is not None), 6)


def score(card: ScorecardSettings, row: Sequence[str]) -> tuple[float, list[float | None]]:
    """The total and each criterion's points (None: no band), `row` in criteria order."""
    earned = [points(criterion, value) for criterion, value in zip(card.criteria, row, strict=True)]
    return total(earned), earned


class Scorer:
    """`points` for one criterion, remembering each distinct raw value: a column of a million rows
    holds few distinct categories, and a band look-up per row would cost most of a run."""

    __slots__ = ("criterion", "seen")

    def __init__(self, criterion: Criterion) -> None:
        self.criterion = criterion
        self.seen: dict[str, float | None] = {}

    def __call__(self, value: str) -> float | None:
        try:
            return self.seen[value]
        except KeyError:
            found = self.seen[value] = points(self.criterion, value)
            return found
