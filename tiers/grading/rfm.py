"""RFM scoring: recency, frequency and monetary value each scored 1-5 against the population.

Pure. score = min(5, 1 + floor(5 · p)), p = the share of the population with a strictly lower
value (for recency: a strictly older last purchase), so equal values always score alike and a
column with few distinct values simply yields fewer scores. Runtime complexity: O(n log n).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Final

import msgspec

NO_PURCHASES: Final = "no purchases"

# (R high, F high, M high) -> segment
SEGMENTS: Final[dict[tuple[bool, bool, bool], str]] = {
    (True, True, True): "important value",
    (True, False, True): "important develop",
    (False, True, True): "important keep",
    (False, False, True): "important retain",
    (True, True, False): "general value",
    (True, False, False): "general develop",
    (False, True, False): "general keep",
    (False, False, False): "general retain",
}


class Cutoff(msgspec.Struct, frozen=True):
    """The values that got one score: published so a supervisor can check any customer by hand."""

    score: int
    low: float
    high: float
    customers: int


def scores(values: Sequence[float]) -> list[int]:
    """Score each value 1-5 by the share of values strictly below it."""
    n = len(values)
    if n == 0:
        return []
    ordered = sorted(values)
    # Integer arithmetic: 5·k/n exactly at an edge (k/n = 0.4) must not fall to 1.999... .
    return [min(5, 1 + (5 * bisect_left(ordered, value)) // n) for value in values]


def recency_scores(days: Sequence[int]) -> list[int]:
    """Fewer days since the last purchase score higher: a strictly older purchase is "lower"."""
    return scores([-day for day in days])


def cutoffs(values: Sequence[float], scored: Sequence[int]) -> list[Cutoff]:
    """Per score given: the lowest and highest value that got it, and how many customers."""
    spans: dict[int, list[float]] = {}
    counts: dict[int, int] = {}
    for value, score in zip(values, scored, strict=True):
        span = spans.get(score)
        if span is None:
            spans[score] = [value, value]
            counts[score] = 1
        else:
            span[0] = min(span[0], value)
            span[1] = max(span[1], value)
            counts[score] += 1
    return [Cutoff(score, spans[score][0], spans[score][1], counts[score]) for score in sorted(spans)]


def segment(r: int, f: int, m: int, high_from: int) -> str:
    return SEGMENTS[(r >= high_from, f >= high_from, m >= high_from)]
