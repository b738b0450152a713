"""The SQL engine against the pure reference: for any population, DuckDB's scores, classes,
points, grades and tiers are those `rfm`, `value_share`, `scorecard` and `rules.choose` give."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("duckdb")  # the extra tierline[grading]; the dev lock installs it

from tests.grading.test_grade_population import AS_OF, SETTINGS, build, customer
from tierline.tiers.grading import rfm, scorecard, value_share
from tierline.tiers.grading.grade import grade_population
from tierline.tiers.grading.rules import Facts, choose, is_flagged


@settings(max_examples=40, deadline=None)
@given(st.lists(customer, min_size=1, max_size=40))
def test_sql_equals_the_pure_reference(rows: list[tuple[int, int, int, str, str, str, int]]) -> None:
    population = build(rows)
    graded = grade_population(population, SETTINGS, AS_OF)
    try:
        records = graded.records
        tiers = graded.customer_tier
    finally:
        graded.close()
    members = [at for at, row in enumerate(rows) if row[0] > 0]
    r = rfm.recency_scores([rows[at][1] for at in members])
    f = rfm.scores([float(rows[at][0]) for at in members])
    m = rfm.scores([float(rows[at][2]) for at in members])
    expected_rfm = {at: (r[k], f[k], m[k]) for k, at in enumerate(members)}
    classes = value_share.classes(population.amount, 0.80, 0.95)
    card = SETTINGS.scorecard
    assert card is not None
    for at, row in enumerate(rows):
        crm = records[population.callers[at][0]][1]
        scores = expected_rfm.get(at)
        segment = rfm.NO_PURCHASES if scores is None else rfm.segment(*scores, 3)
        assert crm["grading.segment"] == segment
        assert crm.get("grading.rfm") == (None if scores is None else "R{} F{} M{}".format(*scores))
        assert crm["grading.class"] == classes[at]
        total, earned = scorecard.score(card, [repr(population.amount[at]), row[3]])
        assert crm["grading.score"] == f"{total:g}"
        assert crm["grading.grade"] == scorecard.grade_of(total, card.cut_points)
        assert crm["grading.points"] == ", ".join(
            f"{c.name} {'-' if got is None else f'{got:g}'}" for c, got in zip(card.criteria, earned, strict=True)
        )
        facts = Facts(
            segment=segment,
            grade=crm["grading.grade"],
            score=total,
            value_class=classes[at],
            rfm_total=None if scores is None else sum(scores),
            columns={"vip_flag": row[4], "years": row[3], "blacklist": row[5]},
        )
        tier, rule = choose(SETTINGS.rules, facts, SETTINGS.default_tier, blacklisted=is_flagged(row[5]))
        assert (tiers[at], crm["grading.rule"]) == (tier, rule)
