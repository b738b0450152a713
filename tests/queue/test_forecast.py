"""The staffing forecast, pure: Erlang B/C, the FACTS check case, Cobham's per-tier figures."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierline.queue import forecast as fc
from tierline.queue import service_level as sl
from tierline.tiers.model import TIERS, Tier

AHT = 180.0


def demands(erlangs: dict[Tier, float], threshold: float = 20.0, aht: float = AHT) -> list[fc.TierDemand]:
    targets: dict[Tier, float | None] = {"vip": 0.90, "mid": 0.85, "standard": 0.85, "blacklisted": None}
    return [
        fc.TierDemand(tier=t, arrivals_per_s=a / aht, threshold_s=threshold, target=targets[t])
        for t, a in erlangs.items()
    ]


# --- Erlang B / C and the pooled figures --------------------------------------------------------


@pytest.mark.parametrize(
    ("agents", "load", "expected"),
    [(5, 3.0, 0.1101), (1, 1.0, 0.5), (2, 1.0, 0.2), (10, 5.0, 0.0184), (0, 4.0, 1.0)],
)
def test_erlang_b_known_values(agents: int, load: float, expected: float) -> None:
    assert fc.erlang_b(agents, load) == pytest.approx(expected, abs=5e-5)


def test_erlang_c_known_value_and_single_server() -> None:
    assert fc.erlang_c(13, 10.0) == pytest.approx(0.2853, abs=5e-5)
    # M/M/1: P(wait) = ρ.
    assert fc.erlang_c(1, 0.7) == pytest.approx(0.7)
    assert fc.erlang_c(3, 0.0) == 0.0


def test_facts_check_case() -> None:
    """FACTS: A = 10, AHT = 180 s, T = 20 s → 13 agents ≈ 79.6%, 14 agents ≈ 88.8%."""
    assert fc.service_level(13, 10.0, AHT, 20.0) == pytest.approx(0.796, abs=0.001)
    assert fc.service_level(14, 10.0, AHT, 20.0) == pytest.approx(0.888, abs=0.001)
    assert fc.average_speed_of_answer(13, 10.0, AHT) == pytest.approx(0.28527 * 180 / 3, rel=1e-4)


def test_unstable_pool() -> None:
    assert fc.erlang_c(10, 10.0) == 1.0
    assert fc.service_level(10, 10.0, AHT, 20.0) == 0.0
    assert fc.average_speed_of_answer(9, 10.0, AHT) == math.inf
    assert fc.priority_waits(10, [10.0 / AHT], AHT) is None
    out = fc.outlook(10, demands({"standard": 10.0}), AHT)
    assert out.stable is False and out.p_wait is None and out.asa_s is None and out.occupancy is None
    row = out.tiers[0]
    assert row.service_level is None and row.mean_wait_s is None and row.met is None
    assert row.agents_needed == out.agents_needed == 14  # still says what it takes


def test_five_hundred_agents_stay_finite() -> None:
    load = 480.0
    p_wait = fc.erlang_c(500, load)
    assert 0.0 < p_wait < 1.0 and math.isfinite(p_wait)
    assert 0.0 < fc.service_level(500, load, AHT, 20.0) <= 1.0
    out = fc.outlook(500, demands({"vip": 100.0, "mid": 100.0, "standard": 270.0, "blacklisted": 10.0}), AHT)
    assert out.stable
    assert all(t.service_level is not None and math.isfinite(t.service_level) for t in out.tiers)
    assert out.agents_needed is not None and 480 < out.agents_needed <= 500


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        fc.erlang_c(0, 1.0)
    with pytest.raises(ValueError):
        fc.erlang_b(3, -1.0)
    with pytest.raises(ValueError):
        fc.outlook(5, demands({"vip": 1.0}), 0.0)
    with pytest.raises(ValueError):
        fc.outlook(5, [*demands({"vip": 1.0}), *demands({"vip": 2.0})], AHT)
    with pytest.raises(ValueError):
        fc.priority_waits(5, [math.nan], AHT)


# --- per tier (Cobham) -----------------------------------------------------------------------


def test_single_tier_is_exactly_erlang_c() -> None:
    for agents in (11, 13, 14, 20):
        out = fc.outlook(agents, demands({"standard": 10.0}), AHT)
        row = out.tiers[0]
        assert row.service_level == pytest.approx(fc.service_level(agents, 10.0, AHT, 20.0), rel=1e-12)
        assert row.service_level == pytest.approx(row.pooled_service_level, rel=1e-12)
        assert row.mean_wait_s == pytest.approx(fc.average_speed_of_answer(agents, 10.0, AHT), rel=1e-12)
        assert out.asa_s == pytest.approx(row.mean_wait_s, rel=1e-12)


def test_single_tier_agents_needed_matches_facts() -> None:
    # 85% needs 14 agents (13 give 79.6%), 79% needs 13, 90% needs 15.
    for target, agents in ((0.85, 14), (0.79, 13), (0.90, 15)):
        tier = [fc.TierDemand(tier="standard", arrivals_per_s=10.0 / AHT, threshold_s=20.0, target=target)]
        assert fc.agents_needed(tier, AHT) == {"standard": agents}
        assert fc.staffing(tier, AHT) == agents


def test_vip_better_than_pooled_and_standard_worse() -> None:
    out = fc.outlook(13, demands({"vip": 2.0, "mid": 3.0, "standard": 5.0}), AHT)
    rows = {t.tier: t for t in out.tiers}
    pooled = fc.service_level(13, 10.0, AHT, 20.0)
    asa = fc.average_speed_of_answer(13, 10.0, AHT)
    assert rows["vip"].service_level is not None and rows["standard"].service_level is not None
    assert rows["vip"].service_level > pooled > rows["standard"].service_level
    assert rows["vip"].mean_wait_s is not None and rows["standard"].mean_wait_s is not None
    assert rows["vip"].mean_wait_s < asa < rows["standard"].mean_wait_s
    assert all(r.pooled_service_level == pytest.approx(pooled) for r in rows.values())
    # The higher the tier, the better.
    levels = [rows[t].service_level or 0.0 for t in ("vip", "mid", "standard")]
    assert levels == sorted(levels, reverse=True)
    needed = [rows[t].agents_needed or 0 for t in ("vip", "mid", "standard")]
    assert needed == sorted(needed) and needed[0] > 10
    assert rows["standard"].agents_needed == out.agents_needed


def test_conservation_law_weighted_waits_equal_pooled_asa() -> None:
    """With one handle time, priorities reshuffle waits but keep their arrival-weighted mean."""
    mix = {"vip": 2.0, "mid": 3.0, "standard": 4.0, "blacklisted": 1.0}
    for agents in (11, 13, 17):
        waits = fc.priority_waits(agents, [mix[t] / AHT for t in TIERS], AHT)
        assert waits is not None
        weighted = sum(w * mix[t] for w, t in zip(waits, TIERS, strict=True)) / sum(mix.values())
        assert weighted == pytest.approx(fc.average_speed_of_answer(agents, 10.0, AHT), rel=1e-12)


def test_cobham_formula_by_hand() -> None:
    agents, rates = 13, [2.0 / AHT, 8.0 / AHT]
    p_wait = fc.erlang_c(13, 10.0)
    capacity = agents / AHT
    s1, s2 = rates[0] / capacity, sum(rates) / capacity
    waits = fc.priority_waits(agents, rates, AHT)
    assert waits == pytest.approx([p_wait / capacity / (1 - s1), p_wait / capacity / ((1 - s1) * (1 - s2))])
    levels = fc.priority_service_levels(agents, rates, AHT, [20.0, 20.0])
    assert levels is not None and waits is not None
    assert levels == pytest.approx([1 - p_wait * math.exp(-20.0 * p_wait / w) for w in waits])


def test_blacklisted_has_no_target_and_needs_nothing() -> None:
    out = fc.outlook(13, demands({"vip": 2.0, "standard": 7.0, "blacklisted": 1.0}), AHT)
    rows = {t.tier: t for t in out.tiers}
    assert rows["blacklisted"].agents_needed is None and rows["blacklisted"].met is None
    assert rows["blacklisted"].service_level is not None  # still forecast, at its 20 s threshold
    assert [t.tier for t in out.tiers] == ["vip", "standard", "blacklisted"]


def test_order_of_demands_does_not_matter() -> None:
    forward = fc.outlook(14, demands({"vip": 2.0, "mid": 3.0, "standard": 5.0}), AHT)
    backward = fc.outlook(14, list(reversed(demands({"vip": 2.0, "mid": 3.0, "standard": 5.0}))), AHT)
    assert forward == backward


def test_no_traffic_needs_one_agent() -> None:
    empty = demands({"vip": 0.0, "mid": 0.0, "standard": 0.0, "blacklisted": 0.0})
    out = fc.outlook(1, empty, AHT)
    assert out.stable and out.p_wait == 0.0 and out.agents_needed == 1
    assert all(t.service_level == 1.0 for t in out.tiers)


def test_no_target_at_all_staffs_for_stability() -> None:
    tier = [fc.TierDemand(tier="blacklisted", arrivals_per_s=10.0 / AHT, threshold_s=20.0, target=None)]
    assert fc.staffing(tier, AHT) == 11


def test_out_of_reach_is_none() -> None:
    assert fc.agents_needed(demands({"standard": 50.0}), AHT, max_agents=40) == {"standard": None}
    assert fc.staffing(demands({"standard": 50.0}), AHT, max_agents=40) is None


def test_agents_needed_is_monotonic_in_traffic_and_target() -> None:
    previous = 0
    for erlangs in (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0):
        needed = fc.staffing(demands({"vip": erlangs * 0.2, "standard": erlangs * 0.8}), AHT)
        assert needed is not None and needed >= previous and needed > erlangs
        previous = needed
    previous = 0
    for target in (0.5, 0.7, 0.8, 0.9, 0.95, 0.99):
        tier = [fc.TierDemand(tier="mid", arrivals_per_s=10.0 / AHT, threshold_s=20.0, target=target)]
        needed_for = fc.agents_needed(tier, AHT)["mid"]
        assert needed_for is not None and needed_for >= previous
        previous = needed_for


def test_agents_needed_is_the_smallest_that_meets_the_target() -> None:
    mix = demands({"vip": 3.0, "mid": 6.0, "standard": 12.0, "blacklisted": 1.0})
    needed = fc.agents_needed(mix, AHT)
    for d in mix:
        n = needed[d.tier]
        if d.target is None:
            assert n is None
            continue
        assert n is not None
        at = {t.tier: t for t in fc.outlook(n, mix, AHT).tiers}[d.tier]
        below = {t.tier: t for t in fc.outlook(n - 1, mix, AHT).tiers}[d.tier]
        assert at.met is True and below.met is not True


def test_window_minutes() -> None:
    now = 1_800_000_000.0 + 30  # 30 s into a minute
    assert len(sl.window_minutes(3600, now)) == 60 and sl.window_minutes(3600, now) == sl.rolling_minutes("60m", now)
    assert sl.window_minutes(900, now) == sl.rolling_minutes("15m", now)
    assert len(sl.window_minutes(61, now)) == 2
    with pytest.raises(ValueError):
        sl.window_minutes(3601, now)
    with pytest.raises(ValueError):
        sl.window_minutes(0, now)


# --- properties ------------------------------------------------------------------------------

rate = st.floats(min_value=0.0, max_value=30.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    vip=rate,
    mid=rate,
    standard=rate,
    blacklisted=rate,
    aht=st.floats(min_value=10.0, max_value=1200.0),
    threshold=st.floats(min_value=0.0, max_value=300.0),
    extra=st.integers(min_value=0, max_value=40),
)
def test_service_levels_rise_with_agents(
    vip: float, mid: float, standard: float, blacklisted: float, aht: float, threshold: float, extra: int
) -> None:
    mix = demands({"vip": vip, "mid": mid, "standard": standard, "blacklisted": blacklisted}, threshold, aht)
    load = vip + mid + standard + blacklisted
    first = math.floor(load) + 1 + extra
    low, high = fc.outlook(first, mix, aht), fc.outlook(first + 1, mix, aht)
    if not low.stable:  # rounding right at N ≈ A
        return
    assert high.stable
    for a, b in zip(low.tiers, high.tiers, strict=True):
        assert a.service_level is not None and b.service_level is not None
        assert 0.0 <= a.service_level <= b.service_level + 1e-12 <= 1.0 + 1e-12
        assert a.mean_wait_s is not None and b.mean_wait_s is not None
        assert b.mean_wait_s <= a.mean_wait_s + 1e-12
    assert fc.service_level(first, load, aht, threshold) <= fc.service_level(first + 1, load, aht, threshold) + 1e-12
    # Priority order within one N: a higher tier never does worse.
    levels = [t.service_level or 0.0 for t in low.tiers]
    assert all(x >= y - 1e-12 for x, y in itertools.pairwise(levels))
