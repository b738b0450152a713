"""Erlang A (admin/staffing/erlang_a.py): the reference case, the closed form against the
per-class walk, per-tier figures against the priority queue's chain with abandonment."""

from __future__ import annotations

import math

import pytest

from tests.staffing.reference import abandonment_fates
from tierline.admin.staffing import erlang_a as ea
from tierline.admin.staffing import outlook as so
from tierline.admin.staffing.patience import observed_patience

AHT = 180.0


def test_reference_case() -> None:
    """14 agents, 100 calls per 30 min, AHT 180 s, patience 300 s, T = 20 s."""
    fates = ea.pooled(14, 100 / 1800, AHT, 300.0, 20.0, short_abandon_s=5.0)
    assert fates.level("all_offered") == pytest.approx(0.916792, abs=1e-6)
    assert fates.abandoned == pytest.approx(0.013984, abs=1e-6)
    # The default formula leaves short abandons out of the denominator: a higher figure.
    default = fates.level("default")
    assert default is not None and default > fates.answered_within
    (one,) = ea.class_fates(14, [100 / 1800], AHT, 300.0, [20.0], short_abandon_s=5.0)
    assert one is not None
    assert one.level("all_offered") == pytest.approx(0.916792, abs=1e-6)
    assert one.abandoned == pytest.approx(0.013984, abs=1e-6)


@pytest.mark.parametrize(
    ("agents", "per_hour", "patience", "threshold", "short"),
    [
        (14, 200.0, 300.0, 20.0, 5.0),
        (5, 150.0, 60.0, 10.0, 3.0),
        (30, 700.0, 120.0, 60.0, 10.0),
        (3, 200.0, 30.0, 15.0, 2),
    ],
)
def test_the_walk_agrees_with_the_closed_form(
    agents: int, per_hour: float, patience: float, threshold: float, short: float
) -> None:
    closed = ea.pooled(agents, per_hour / 3600, AHT, patience, threshold, short)
    (walked,) = ea.class_fates(agents, [per_hour / 3600], AHT, patience, [threshold], short)
    assert walked is not None
    for field in ("p_wait", "answered_within", "abandoned", "abandoned_within", "short_abandoned", "asa_s"):
        assert getattr(walked, field) == pytest.approx(getattr(closed, field), abs=1e-9), field


def test_abandons_are_conserved_across_priorities() -> None:
    """Every waiting caller abandons at the same rate whatever the order: the tiers' abandons
    add up to the pooled ones."""
    rates = [30 / 3600, 60 / 3600, 110 / 3600]
    fates = ea.class_fates(12, rates, AHT, 200.0, [20.0] * 3, 5.0)
    pooled = ea.pooled(12, sum(rates), AHT, 200.0, 20.0, 5.0)
    weighted = sum(r * (f.abandoned if f else 0.0) for r, f in zip(rates, fates, strict=True)) / sum(rates)
    assert weighted == pytest.approx(pooled.abandoned, abs=1e-9)
    abandoned = [f.abandoned for f in fates if f is not None]
    assert abandoned == sorted(abandoned)  # the lower the tier, the more it abandons


@pytest.mark.parametrize(
    ("agents", "shares", "occupancy", "patience", "threshold"),
    [(6, [0.3, 0.7], 0.8, 120.0, 20.0), (8, [0.2, 0.3, 0.5], 1.1, 300.0, 45.0)],
)
def test_each_tier_matches_the_chain_with_abandonment(
    agents: int, shares: list[float], occupancy: float, patience: float, threshold: float
) -> None:
    rates = [s * occupancy * agents / AHT for s in shares]
    fates = ea.class_fates(agents, rates, AHT, patience, [threshold] * len(rates))
    for k, fate in enumerate(fates):
        assert fate is not None
        within, abandon = abandonment_fates(agents, rates, 1 / AHT, 1 / patience, k, threshold, 90, 90)
        assert fate.answered_within == pytest.approx(within, abs=1e-6), k
        assert fate.abandoned == pytest.approx(abandon, abs=1e-6), k


def test_erlang_a_is_always_stable_and_abandons_grow_as_agents_fall() -> None:
    mix = [so.TierDemand(tier="standard", arrivals_per_s=12 / AHT, threshold_s=20.0, target=0.8)]
    assumptions = so.Assumptions(model="erlang_a", patience_s=120.0)
    previous = 0.0
    for agents in (16, 13, 11, 9, 6):
        out = so.outlook(agents, mix, AHT, assumptions)
        assert out.stable and out.p_abandon is not None and out.p_abandon >= previous
        assert out.tiers[0].service_level is not None
        previous = out.p_abandon
    assert previous > 0.3  # half the load's agents: many give up


def test_formulas() -> None:
    f = ea.Fates(p_wait=0.5, answered_within=0.6, abandoned=0.2, abandoned_within=0.1, short_abandoned=0.05, asa_s=1.0)
    assert f.level("all_offered") == 0.6
    assert f.level("answered_only") == pytest.approx(0.6 / 0.8)
    assert f.level("default") == pytest.approx(0.6 / 0.95)
    assert f.level("abandons_in_threshold_good") == pytest.approx(0.7)


def test_observed_patience_is_the_censored_maximum_likelihood() -> None:
    import random

    rng = random.Random(7)
    patience, total, abandons = 200.0, 0.0, 0
    for _ in range(20_000):
        wait = rng.expovariate(1 / 60.0)  # the wait the call would have had
        give_up = rng.expovariate(1 / patience)
        total += min(wait, give_up)
        abandons += give_up < wait
    estimate = observed_patience(total, abandons)
    assert estimate is not None and estimate == pytest.approx(patience, rel=0.05)
    assert observed_patience(100.0, 0) is None
    with pytest.raises(ValueError):
        observed_patience(-1.0, 3)
    with pytest.raises(ValueError):
        observed_patience(math.nan, 3)


@pytest.mark.parametrize(
    ("agents", "occupancy", "k", "threshold"),
    [(14, 0.7, 2, 60.0), (100, 0.95, 3, 60.0), (500, 0.98, 3, 30.0), (1000, 0.95, 3, 60.0), (700, 3.0, 1, 120.0)],
)
def test_the_laplace_inversion_agrees_with_uniformisation(
    agents: int, occupancy: float, k: int, threshold: float
) -> None:
    """The two ways to the walk's law by a time (erlang_a._by_time picks the cheaper) agree, from
    a handful of agents to a thousand and an overloaded pool."""
    shares = [0.1, 0.2, 0.6, 0.1]
    rates = [s * occupancy * agents / AHT for s in shares]
    theta, pool = 1 / 300.0, agents / AHT
    start, _ = ea._queue_law(sum(rates[: k + 1]), pool, theta)
    start = [w / math.fsum(start) for w in start]
    levels = len(start) + ea.LEVEL_MARGIN
    down = [pool + i * theta for i in range(levels)]
    (uniformised,) = ea._by_time_uniformised(start, levels, sum(rates[:k]), down, theta, [threshold])
    inverted = ea._by_time_inverted(start, levels, sum(rates[:k]), down, theta, threshold)
    assert inverted == pytest.approx(uniformised, abs=1e-10)
