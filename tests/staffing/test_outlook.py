"""The staffing forecast, pure: Erlang B/C, the FACTS check case, per-tier figures under both
models, overload per tier, empty tiers, agents needed (moved from tests/queue/test_forecast.py)."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierline.admin.staffing import erlang_c as ec
from tierline.admin.staffing import outlook as so
from tierline.admin.staffing import priority
from tierline.queue import service_level as sl
from tierline.tiers.model import TIERS, Tier

AHT = 180.0
ERLANG_A = so.Assumptions(model="erlang_a", patience_s=300.0)


def demands(erlangs: dict[Tier, float], threshold: float = 20.0, aht: float = AHT) -> list[so.TierDemand]:
    targets: dict[Tier, float | None] = {"vip": 0.90, "mid": 0.85, "standard": 0.85, "blacklisted": None}
    return [
        so.TierDemand(tier=t, arrivals_per_s=a / aht, threshold_s=threshold, target=targets[t])
        for t, a in erlangs.items()
    ]


def rows(out: so.Outlook) -> dict[Tier, so.TierOutlook]:
    return {t.tier: t for t in out.tiers}


# --- Erlang B / C and the pooled figures --------------------------------------------------------


@pytest.mark.parametrize(
    ("agents", "load", "expected"),
    [(5, 3.0, 0.1101), (1, 1.0, 0.5), (2, 1.0, 0.2), (10, 5.0, 0.0184), (0, 4.0, 1.0)],
)
def test_erlang_b_known_values(agents: int, load: float, expected: float) -> None:
    assert ec.erlang_b(agents, load) == pytest.approx(expected, abs=5e-5)


def test_erlang_c_known_value_and_single_server() -> None:
    assert ec.erlang_c(13, 10.0) == pytest.approx(0.2853, abs=5e-5)
    assert ec.erlang_c(1, 0.7) == pytest.approx(0.7)  # M/M/1: P(wait) = ρ
    assert ec.erlang_c(3, 0.0) == 0.0


def test_facts_check_case() -> None:
    """FACTS: A = 10, AHT = 180 s, T = 20 s → 13 agents ≈ 79.6%, 14 agents ≈ 88.8%."""
    assert ec.service_level(13, 10.0, AHT, 20.0) == pytest.approx(0.796, abs=0.001)
    assert ec.service_level(14, 10.0, AHT, 20.0) == pytest.approx(0.888, abs=0.001)
    assert ec.average_speed_of_answer(13, 10.0, AHT) == pytest.approx(0.28527 * 180 / 3, rel=1e-4)


def test_five_hundred_agents_stay_finite() -> None:
    assert 0.0 < ec.erlang_c(500, 480.0) < 1.0
    out = so.outlook(500, demands({"vip": 100.0, "mid": 100.0, "standard": 270.0, "blacklisted": 10.0}), AHT)
    assert out.stable
    assert all(t.service_level is not None and math.isfinite(t.service_level) for t in out.tiers)
    assert out.agents_needed is not None and 480 < out.agents_needed <= 500


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        ec.erlang_c(0, 1.0)
    with pytest.raises(ValueError):
        ec.erlang_b(3, -1.0)
    with pytest.raises(ValueError):
        so.outlook(5, demands({"vip": 1.0}), 0.0)
    with pytest.raises(ValueError):
        so.outlook(5, [*demands({"vip": 1.0}), *demands({"vip": 2.0})], AHT)
    with pytest.raises(ValueError):
        priority.class_waits(5, [math.nan], AHT, [20.0])
    with pytest.raises(ValueError, match="patience"):
        so.Assumptions(model="erlang_a")
    with pytest.raises(ValueError, match="patience"):
        so.Assumptions(model="erlang_a", patience_s=-3.0)
    with pytest.raises(ValueError, match="threshold"):
        so.outlook(5, demands({"vip": 1.0}, threshold=-1.0), AHT)


# --- per tier -----------------------------------------------------------------------------------


@pytest.mark.parametrize("assumptions", [so.ERLANG_C, ERLANG_A], ids=["erlang_c", "erlang_a"])
def test_single_tier_is_the_pooled_model(assumptions: so.Assumptions) -> None:
    for agents in (11, 13, 14, 20):
        out = so.outlook(agents, demands({"standard": 10.0}), AHT, assumptions)
        row = out.tiers[0]
        assert row.service_level == pytest.approx(row.pooled_service_level, abs=1e-9)
        assert row.asa_s == pytest.approx(out.asa_s, abs=1e-9)
        if assumptions.model == "erlang_c":
            assert row.service_level == pytest.approx(ec.service_level(agents, 10.0, AHT, 20.0), abs=1e-12)


def test_single_tier_agents_needed_matches_facts() -> None:
    # 85% needs 14 agents (13 give 79.6%), 79% needs 13, 90% needs 15.
    for target, agents in ((0.85, 14), (0.79, 13), (0.90, 15)):
        tier = [so.TierDemand(tier="standard", arrivals_per_s=10.0 / AHT, threshold_s=20.0, target=target)]
        assert so.agents_needed(tier, AHT) == {"standard": agents}
        assert so.staffing(tier, AHT) == agents


def test_vip_better_than_pooled_and_standard_worse() -> None:
    out = so.outlook(13, demands({"vip": 2.0, "mid": 3.0, "standard": 5.0}), AHT)
    by = rows(out)
    pooled = ec.service_level(13, 10.0, AHT, 20.0)
    vip, standard = by["vip"].service_level, by["standard"].service_level
    assert vip is not None and standard is not None and vip > pooled > standard
    levels = [by[t].service_level or 0.0 for t in ("vip", "mid", "standard")]
    assert levels == sorted(levels, reverse=True)
    needed = [by[t].agents_needed or 0 for t in ("vip", "mid", "standard")]
    assert needed == sorted(needed) and needed[0] > 10
    assert by["standard"].agents_needed == out.agents_needed


def test_conservation_law_weighted_waits_equal_pooled_asa() -> None:
    """With one handle time, priorities reshuffle waits but keep their arrival-weighted mean."""
    mix = {"vip": 2.0, "mid": 3.0, "standard": 4.0, "blacklisted": 1.0}
    for agents in (11, 13, 17):
        waits = priority.class_waits(agents, [mix[t] / AHT for t in TIERS], AHT, [20.0] * 4)
        weighted = sum((w.mean_wait_s or 0.0) * mix[t] for w, t in zip(waits, TIERS, strict=True)) / 10.0
        assert weighted == pytest.approx(ec.average_speed_of_answer(agents, 10.0, AHT), rel=1e-12)


def test_blacklisted_has_no_target_and_needs_nothing() -> None:
    out = so.outlook(13, demands({"vip": 2.0, "standard": 7.0, "blacklisted": 1.0}), AHT)
    by = rows(out)
    assert by["blacklisted"].agents_needed is None and by["blacklisted"].met is None
    assert by["blacklisted"].service_level is not None  # still forecast, at its 20 s threshold
    assert [t.tier for t in out.tiers] == ["vip", "standard", "blacklisted"]


def test_order_of_demands_does_not_matter() -> None:
    forward = so.outlook(14, demands({"vip": 2.0, "mid": 3.0, "standard": 5.0}), AHT)
    backward = so.outlook(14, list(reversed(demands({"vip": 2.0, "mid": 3.0, "standard": 5.0}))), AHT)
    assert forward == backward


# --- overload per tier (item 2) and empty tiers (item 3) ----------------------------------------


def test_overload_leaves_the_upper_tiers_their_figures() -> None:
    # 12 Erlangs on 10 agents: vip + mid (6 Erlangs) stay stable, standard does not.
    out = so.outlook(10, demands({"vip": 2.0, "mid": 4.0, "standard": 6.0}), AHT)
    by = rows(out)
    assert out.stable is False and out.p_wait == 1.0 and out.asa_s is None
    for tier in ("vip", "mid"):
        row = by[tier]
        assert row.stable is True and row.service_level is not None and 0 < row.service_level < 1
        assert row.mean_wait_s is not None and math.isfinite(row.mean_wait_s) and row.met is not None
    assert by["standard"].stable is False
    assert by["standard"].service_level is None and by["standard"].met is None
    assert out.agents_needed is not None and out.agents_needed > 12
    # Every agent is busy, so vip's figures are those of P(wait) = 1 with σ_vip = 0.2.
    pool = 10 / AHT
    assert by["vip"].service_level == pytest.approx(1 - math.exp(-pool * 0.8 * 20.0), abs=1e-12)


def test_empty_tiers_have_no_figures_and_need_nothing() -> None:
    mix = demands({"vip": 0.0, "mid": 3.0, "standard": 0.0, "blacklisted": 1.0})
    out = so.outlook(6, mix, AHT)
    by = rows(out)
    for tier in ("vip", "standard"):
        assert by[tier].has_calls is False and by[tier].service_level is None
        assert by[tier].met is None and by[tier].agents_needed is None
    assert by["mid"].has_calls and by["mid"].service_level is not None
    # The headline is what mid needs (blacklisted has no target), whatever an empty tier's target.
    assert out.agents_needed == max(by["mid"].agents_needed or 0, 5)
    strict = [
        d if d.tier != "vip" else so.TierDemand(tier="vip", arrivals_per_s=0.0, threshold_s=1.0, target=0.999)
        for d in mix
    ]
    assert so.staffing(strict, AHT) == out.agents_needed


def test_no_traffic_needs_one_agent() -> None:
    out = so.outlook(1, demands({"vip": 0.0, "mid": 0.0, "standard": 0.0, "blacklisted": 0.0}), AHT)
    assert out.stable and out.p_wait == 0.0 and out.agents_needed == 1
    assert all(t.service_level is None and t.met is None for t in out.tiers)


def test_no_target_at_all_staffs_for_stability() -> None:
    tier = [so.TierDemand(tier="blacklisted", arrivals_per_s=10.0 / AHT, threshold_s=20.0, target=None)]
    assert so.staffing(tier, AHT) == 11


def test_out_of_reach_is_none() -> None:
    assert so.agents_needed(demands({"standard": 50.0}), AHT, max_agents=40) == {"standard": None}
    assert so.staffing(demands({"standard": 50.0}), AHT, max_agents=40) is None


@pytest.mark.parametrize("assumptions", [so.ERLANG_C, ERLANG_A], ids=["erlang_c", "erlang_a"])
def test_agents_needed_is_the_smallest_that_meets_the_target(assumptions: so.Assumptions) -> None:
    mix = demands({"vip": 3.0, "mid": 6.0, "standard": 12.0, "blacklisted": 1.0})
    needed = so.agents_needed(mix, AHT, assumptions)
    for i, d in enumerate(so.ordered_demands(mix)):
        n = needed[d.tier]
        if d.target is None:
            assert n is None
            continue
        assert n is not None
        at, below = so.tier_levels(n, mix, AHT, assumptions)[i], so.tier_levels(n - 1, mix, AHT, assumptions)[i]
        assert at is not None and at >= d.target
        assert below is None or below < d.target
    overall = so.staffing(mix, AHT, assumptions, needed=needed)
    assert overall == max(n for n in needed.values() if n is not None)


def test_erlang_a_needs_no_more_agents_than_erlang_c() -> None:
    mix = demands({"vip": 3.0, "mid": 6.0, "standard": 12.0})
    assumptions = so.Assumptions(model="erlang_a", patience_s=120.0, formula="all_offered")
    c, a = so.staffing(mix, AHT), so.staffing(mix, AHT, assumptions)
    assert c is not None and a is not None and a <= c


def test_agents_needed_is_monotonic_in_traffic_and_target() -> None:
    previous = 0
    for erlangs in (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0):
        needed = so.staffing(demands({"vip": erlangs * 0.2, "standard": erlangs * 0.8}), AHT)
        assert needed is not None and needed >= previous and needed > erlangs
        previous = needed
    previous = 0
    for target in (0.5, 0.7, 0.8, 0.9, 0.95, 0.99):
        tier = [so.TierDemand(tier="mid", arrivals_per_s=10.0 / AHT, threshold_s=20.0, target=target)]
        needed_for = so.agents_needed(tier, AHT)["mid"]
        assert needed_for is not None and needed_for >= previous
        previous = needed_for


def test_window_minutes() -> None:
    """The forecast's observation window is whole minutes, as /admin/sla's."""
    now = 1_800_000_000.0 + 30  # 30 s into a minute
    assert len(sl.window_minutes(3600, now)) == 60 and sl.window_minutes(3600, now) == sl.rolling_minutes("60m", now)
    assert sl.window_minutes(900, now) == sl.rolling_minutes("15m", now)
    assert len(sl.window_minutes(61, now)) == 2
    with pytest.raises(ValueError):
        sl.window_minutes(3601, now)
    with pytest.raises(ValueError):
        sl.window_minutes(0, now)


# --- properties ---------------------------------------------------------------------------------

rate = st.floats(min_value=0.0, max_value=30.0, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(
    vip=rate,
    mid=rate,
    standard=rate,
    blacklisted=rate,
    aht=st.floats(min_value=10.0, max_value=1200.0),
    threshold=st.floats(min_value=0.0, max_value=300.0),
    agents=st.integers(min_value=1, max_value=150),
)
def test_service_levels_rise_with_agents_and_rank(
    vip: float, mid: float, standard: float, blacklisted: float, aht: float, threshold: float, agents: int
) -> None:
    mix = demands({"vip": vip, "mid": mid, "standard": standard, "blacklisted": blacklisted}, threshold, aht)
    low, high = so.tier_levels(agents, mix, aht), so.tier_levels(agents + 1, mix, aht)
    for a, b in zip(low, high, strict=True):
        if a is not None:  # a tier stable at N stays stable at N + 1, and does no worse
            assert b is not None and 0.0 <= a <= b + 1e-9 <= 1.0 + 1e-9
    # Priority order within one N: a higher tier never does worse (same threshold everywhere).
    present = [x for x in low if x is not None]
    assert all(x >= y - 1e-9 for x, y in itertools.pairwise(present))
