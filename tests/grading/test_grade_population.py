"""A whole grading pass, pure (no files): every customer gets exactly one tier and every number
one record; equal customers get equal grades; the explanation fields say what chose the tier."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("duckdb")  # the extra tierline[grading]; the dev lock installs it

from tierline.router.config import load_settings
from tierline.tiers.grading.config import (
    Band,
    Criterion,
    GradingSettings,
    RfmSettings,
    Rule,
    ScorecardSettings,
    ValueShareSettings,
)
from tierline.tiers.grading.grade import grade_population
from tierline.tiers.grading.inputs import Population
from tierline.tiers.model import TIERS

AS_OF = dt.date(2026, 11, 30)
SETTINGS = GradingSettings(
    rfm=RfmSettings(),
    value_share=ValueShareSettings(by="amount"),
    scorecard=ScorecardSettings(
        criteria=[
            Criterion(
                name="spend", column="amount", weight=60, bands=[Band(max=100, points=0), Band(min=100, points=60)]
            ),
            Criterion(name="tenure", column="years", weight=40, bands=[Band(max=2, points=10), Band(min=2, points=40)]),
        ]
    ),
    rules=[
        Rule(segment=["important value"], tier="vip"),
        Rule(grade=["A"], tier="mid"),
        Rule(column="vip_flag", values=["y"], tier="vip"),
    ],
)

customer = st.tuples(
    st.integers(min_value=0, max_value=5),  # purchases
    st.integers(min_value=0, max_value=400),  # days ago
    st.integers(min_value=-50, max_value=500),  # amount
    st.sampled_from(["", "1", "3"]),  # years
    st.sampled_from(["", "y"]),  # vip flag
    st.sampled_from(["", "yes"]),  # blacklist
    st.integers(min_value=1, max_value=3),  # numbers
)


def build(rows: list[tuple[int, int, int, str, str, str, int]]) -> Population:
    population = Population(columns={"years": [], "vip_flag": [], "blacklist": []})
    for at, (purchases, days, amount, years, flag, black, numbers) in enumerate(rows):
        population.ids.append(f"C{at}")
        population.callers.append([f"+86138{at:05d}{n:03d}" for n in range(numbers)])
        population.purchases.append(purchases)
        population.last_date.append(AS_OF - dt.timedelta(days=days) if purchases else None)
        population.amount.append(float(amount))
        population.profit.append(None)
        population.columns["years"].append(years)
        population.columns["vip_flag"].append(flag)
        population.columns["blacklist"].append(black)
    return population


@settings(max_examples=60, deadline=None)
@given(st.lists(customer, min_size=1, max_size=40))
def test_every_customer_one_tier_every_number_one_record(rows: list[tuple[int, int, int, str, str, str, int]]) -> None:
    population = build(rows)
    graded = grade_population(population, SETTINGS, AS_OF)
    assert len(graded.customer_tier) == len(rows)
    assert all(tier in TIERS for tier in graded.customer_tier)
    assert len(graded.records) == sum(row[-1] for row in rows)
    for at, numbers in enumerate(population.callers):
        for caller in numbers:
            tier, crm = graded.records[caller]
            assert tier == graded.customer_tier[at] and crm["customer_id"] == f"C{at}"
            assert crm["grading.as_of"] == "2026-11-30" and crm["grading.rule"]
    # The blacklist flag always wins; a customer with no purchase is in "no purchases".
    for at, row in enumerate(rows):
        if row[5] == "yes":
            assert graded.customer_tier[at] == "blacklisted"
        crm = graded.records[population.callers[at][0]][1]
        assert (crm["grading.segment"] == "no purchases") == (row[0] == 0)
        assert ("grading.rfm" in crm) == (row[0] > 0)
        assert "grading.amount" not in crm


@settings(max_examples=40, deadline=None)
@given(st.lists(customer, min_size=1, max_size=30), st.data())
def test_equal_customers_get_equal_grades(
    rows: list[tuple[int, int, int, str, str, str, int]], data: st.DataObject
) -> None:
    twin = data.draw(st.integers(min_value=0, max_value=len(rows) - 1))
    rows = [*rows, rows[twin]]
    population = build(rows)
    graded = grade_population(population, SETTINGS, AS_OF)
    first = graded.records[population.callers[twin][0]]
    second = graded.records[population.callers[-1][0]]
    assert first[0] == second[0]
    strip = {"customer_id"}
    assert {k: v for k, v in first[1].items() if k not in strip} == {
        k: v for k, v in second[1].items() if k not in strip
    }


def test_the_explanation_by_hand() -> None:
    population = build([(3, 1, 400, "3", "", "", 1), (1, 300, 20, "1", "", "", 1), (0, 0, 0, "", "y", "", 1)])
    graded = grade_population(population, SETTINGS, AS_OF)
    top = graded.records[population.callers[0][0]]
    assert top[0] == "vip"
    # 3 customers, 2 with purchases: C0 has 1 strictly older/lower -> 1 + floor(5·1/2) = 3 on R, F and M.
    assert top[1] == {
        "customer_id": "C0",
        "grading.as_of": "2026-11-30",
        "grading.rule": "segment important value -> vip",
        "grading.segment": "important value",
        "grading.rfm": "R3 F3 M3",
        "grading.grade": "A",
        "grading.score": "100",
        "grading.points": "spend 60, tenure 40",
        "grading.class": "A",
    }
    flagged = graded.records[population.callers[2][0]]
    assert flagged[0] == "vip" and flagged[1]["grading.rule"] == "vip_flag=y -> vip"
    assert flagged[1]["grading.points"] == "spend 0, tenure -"


def test_the_service_accepts_a_config_with_a_grading_table() -> None:
    example = Path(__file__).parents[2] / "deploy/grading/grading.example.toml"
    found = load_settings(example, env={})
    assert found.grading is not None and found.grading.timezone == "Asia/Shanghai"
