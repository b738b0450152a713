"""The three methods by hand: RFM scores with ties at a score edge, the scorecard for three sample
customers, a Pareto split with ties; and the properties each must keep whatever the data."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tierline.tiers.grading import rfm, scorecard, value_share
from tierline.tiers.grading.config import Band, Criterion, ScorecardSettings

# --- RFM ---------------------------------------------------------------------------------------

# 20 customers: score = 1 + floor(5·k/20) = 1 + k // 4, k = customers with a strictly lower amount.
# The two 40s sit on positions 3 and 4 of the order (k = 3 for both): the second would start score
# 2 if it were a little larger, but a tie never splits, so both are 1. The two 90s (k = 8) start 3.
AMOUNTS = [10, 20, 30, 40, 40, 60, 70, 80, 90, 90, 110, 120, 130, 140, 150, 160, 170, 180, 190, 200]
EXPECTED_M = [1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5]


def test_rfm_monetary_scores_by_hand_with_a_tie_at_an_edge() -> None:
    assert rfm.scores(AMOUNTS) == EXPECTED_M
    cut = rfm.cutoffs([float(a) for a in AMOUNTS], EXPECTED_M)
    assert [(c.score, c.low, c.high, c.customers) for c in cut] == [
        (1, 10, 40, 5),
        (2, 60, 80, 3),
        (3, 90, 120, 4),
        (4, 130, 160, 4),
        (5, 170, 200, 4),
    ]


def test_recency_scores_count_strictly_older_purchases() -> None:
    # 10 customers: days since the last purchase. Recent is good: the 1-day customer has 9 older ones.
    days = [1, 2, 2, 5, 8, 13, 21, 34, 55, 89]
    # k (strictly older) = 9, 7, 7, 6, 5, 4, 3, 2, 1, 0 -> 1 + floor(5k/10)
    assert rfm.recency_scores(days) == [5, 4, 4, 4, 3, 3, 2, 2, 1, 1]


def test_few_distinct_values_yield_fewer_scores() -> None:
    # Frequency of 1 for 16 of 20, 2 for 4: the 2s have k = 16 -> 1 + 4 = 5; no 2, 3 or 4 is given.
    scores = rfm.scores([1] * 16 + [2] * 4)
    assert set(scores) == {1, 5}


@pytest.mark.parametrize(
    ("r", "f", "m", "name"),
    [
        (5, 5, 5, "important value"),
        (3, 2, 3, "important develop"),
        (2, 3, 3, "important keep"),
        (1, 1, 4, "important retain"),
        (3, 3, 2, "general value"),
        (4, 1, 1, "general develop"),
        (2, 5, 1, "general keep"),
        (2, 2, 2, "general retain"),
    ],
)
def test_the_eight_segments(r: int, f: int, m: int, name: str) -> None:
    assert rfm.segment(r, f, m, high_from=3) == name


values = st.lists(st.integers(min_value=0, max_value=50).map(float), min_size=1, max_size=60)


@given(values, st.randoms())
def test_rfm_scores_do_not_depend_on_row_order(amounts: list[float], rnd: random.Random) -> None:
    shuffled = list(enumerate(amounts))
    rnd.shuffle(shuffled)
    again = rfm.scores([a for _, a in shuffled])
    original = rfm.scores(amounts)
    assert [original[i] for i, _ in shuffled] == again


@given(values)
def test_equal_values_get_equal_scores_within_1_to_5(amounts: list[float]) -> None:
    scored = rfm.scores(amounts)
    by_value: dict[float, set[int]] = {}
    for amount, score in zip(amounts, scored, strict=True):
        by_value.setdefault(amount, set()).add(score)
    assert all(len(s) == 1 for s in by_value.values())
    assert all(1 <= s <= 5 for s in scored)
    # Monotone: a larger value never scores lower.
    ordered = sorted(zip(amounts, scored, strict=True))
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(ordered))


@given(values, st.data())
def test_raising_one_amount_never_lowers_its_m_score(amounts: list[float], data: st.DataObject) -> None:
    at = data.draw(st.integers(min_value=0, max_value=len(amounts) - 1))
    raised = list(amounts)
    raised[at] += data.draw(st.integers(min_value=1, max_value=100))
    assert rfm.scores(raised)[at] >= rfm.scores(amounts)[at]


# --- scorecard ---------------------------------------------------------------------------------


def classic_card() -> ScorecardSettings:
    """The README's B2B card: nature 15, strength 15, growth 15, profit 15, relationship 20, strategy 20."""
    return ScorecardSettings(
        criteria=[
            Criterion(
                name="nature",
                column="ownership",
                weight=15,
                bands=[
                    Band(values=["state", "listed"], points=15),
                    Band(values=["private"], points=10),
                    Band(values=["individual"], points=5),
                ],
            ),
            Criterion(
                name="strength",
                column="employees",
                weight=15,
                bands=[Band(max=50, points=3), Band(min=50, max=500, points=9), Band(min=500, points=15)],
            ),
            Criterion(
                name="growth",
                column="growth_pct",
                weight=15,
                bands=[Band(max=0, points=0), Band(min=0, max=10, points=8), Band(min=10, points=15)],
            ),
            Criterion(
                name="profit",
                column="profit",
                weight=15,
                bands=[Band(max=1000, points=0), Band(min=1000, max=10000, points=8), Band(min=10000, points=15)],
            ),
            Criterion(
                name="relationship",
                column="years",
                weight=20,
                bands=[Band(max=1, points=4), Band(min=1, max=5, points=12), Band(min=5, points=20)],
            ),
            Criterion(
                name="strategic",
                column="strategic",
                weight=20,
                bands=[
                    Band(values=["key"], points=20),
                    Band(values=["normal"], points=10),
                    Band(values=["low"], points=0),
                ],
            ),
        ]
    )


@pytest.mark.parametrize(
    ("row", "points", "total", "grade"),
    [
        # A listed company, 800 staff, growing 12 %, 2,400 profit, 6 years, key account: 15+15+15+8+20+20.
        (["Listed", "800", "12", "2400", "6", "key"], [15, 15, 15, 8, 20, 20], 93, "A"),
        # A private firm, 100 staff, 5 %, 50 profit, 2 years, normal: 10+9+8+0+12+10 = 49 -> D (35 <= 49 < 50).
        (["private", "100", "5", "50", "2", "normal"], [10, 9, 8, 0, 12, 10], 49, "D"),
        # An individual, growth exactly 10 (the band [10, inf)), no profit given: 5+3+15+None+4+0 = 27 -> E.
        (["individual", "3", "10", "", "0.5", "low"], [5, 3, 15, None, 4, 0], 27, "E"),
    ],
)
def test_three_sample_customers(row: list[str], points: list[float | None], total: float, grade: str) -> None:
    card = classic_card()
    got_total, got_points = scorecard.score(card, row)
    assert got_points == points
    assert got_total == total
    assert scorecard.grade_of(got_total, card.cut_points) == grade


@pytest.mark.parametrize(
    ("total", "grade"), [(100, "A"), (80, "A"), (79.99, "B"), (65, "B"), (50, "C"), (35, "D"), (0, "E")]
)
def test_grade_cut_points_are_inclusive_lower_bounds(total: float, grade: str) -> None:
    assert scorecard.grade_of(total, [80, 65, 50, 35]) == grade


# --- value share -------------------------------------------------------------------------------


def test_pareto_split_with_ties_by_hand() -> None:
    profits = [60, 60, 40, 40, 10, 10, 5, 0, -5]
    # Positives total 225: a = 0.8·225 = 180, b = 0.95·225 = 213.75. Held by strictly greater values:
    # 60: 0 < 180 A; 40: 120 < 180 A; 10: 200 >= 180, < 213.75 B; 5: 220 >= 213.75 C; 0 and -5: C.
    assert value_share.classes(profits, 0.8, 0.95) == ["A", "A", "A", "A", "B", "B", "C", "C", "C"]


def test_a_tie_straddling_the_edge_stays_together() -> None:
    # Total 100: the 20s have 60 above them (< 80): every 20 is A, though they carry the total to 100.
    assert value_share.classes([30, 30, 20, 20], 0.8, 0.95) == ["A", "A", "A", "A"]


@given(st.lists(st.integers(min_value=-10, max_value=1000).map(float), min_size=1, max_size=80))
def test_value_share_classes_cover_the_stated_share(profits: list[float]) -> None:
    found = value_share.classes(profits, 0.8, 0.95)
    total = sum(p for p in profits if p > 0)
    held_a = sum(p for p, c in zip(profits, found, strict=True) if c == "A" and p > 0)
    held_ab = sum(p for p, c in zip(profits, found, strict=True) if c in "AB" and p > 0)
    assert held_a >= 0.8 * total - 1e-6
    assert held_ab >= 0.95 * total - 1e-6
    # Ties share a class, and a larger value never has a worse class.
    ordered = sorted(zip(profits, found, strict=True), key=lambda pair: -pair[0])
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(ordered))
