"""The simulator against the analytic queueing figures, with fixed seeds.

Under Erlang C's assumptions (Poisson arrivals, exponential handle times with one AHT, nobody
hangs up or overflows, a flat staffing) the engine run by the simulator must reproduce the
exact steady-state figures within the 95% intervals of its replications: the pooled service
level (Erlang C), and each tier's service level and mean wait under strict priority
(admin/staffing/priority.py, exact for this model). Under Erlang A's (exponential patience)
the service level and the share abandoning of issue 18's reference case. The first hour is
left out as warm-up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import msgspec

from tierline.admin.simulation import scenario as sc
from tierline.admin.simulation.run import replicate
from tierline.admin.simulation.summary import estimate, summarise
from tierline.admin.staffing import erlang_a, erlang_c, priority
from tierline.queue import service_level as sl
from tierline.queue.policy import Policy, TierPolicy
from tierline.tiers.model import Tier

START = 1_800_000_000.0 - 1_800_000_000.0 % 900
AHT = 180.0
AGENTS = 10
RATES: dict[Tier, float] = {"vip": 2.0 / 180, "standard": 6.0 / 180}  # calls per second: 8 Erlangs on 10 agents
HOURS = 8
REPLICATIONS = 8
WARMUP = 4  # intervals


def erlang_c_scenario(seed: int) -> sc.Scenario:
    rows = ["start,vip,standard"] + [
        f"{i // 4:02d}:{i % 4 * 15:02d},{RATES['vip'] * 900},{RATES['standard'] * 900}" for i in range(HOURS * 4)
    ]
    curve = sc.parse_arrivals("\n".join(rows), START)
    staffing = sc.parse_staffing(f"start,end,agents\n00:00,{HOURS + 4:02d}:00,{AGENTS}", START)
    # Nobody overflows: Erlang C's callers wait as long as it takes.
    policy = Policy(tiers={"mid": TierPolicy(overflow_after_s=0)})
    return sc.scenario(
        curve,
        staffing,
        policy,
        aht_s=AHT,
        patience_s=None,
        callback_handle_s=None,
        callback_reach=1.0,
        seed=seed,
        replications=REPLICATIONS,
        warmup_intervals=WARMUP,
    )


def steady(tallies: Mapping[tuple[int, Tier], sl.Tally], tier: Tier | None = None) -> sl.Tally:
    return sl.total(t for (i, k), t in tallies.items() if i >= WARMUP and (tier is None or k == tier))


def test_steady_state_matches_erlang_c_and_cobham() -> None:
    scenario = erlang_c_scenario(seed=7)
    runs = [replicate(scenario, i) for i in range(REPLICATIONS)]
    load = sum(RATES.values()) * AHT
    p_wait = erlang_c.erlang_c(AGENTS, load)
    pooled_sl = erlang_c.service_level(AGENTS, load, AHT, 20.0)
    exact = dict(zip(RATES, priority.class_waits(AGENTS, list(RATES.values()), AHT, [20.0, 20.0]), strict=True))
    waits = {tier: w.mean_wait_s for tier, w in exact.items()}

    pooled = [steady(r.tallies) for r in runs]
    sim_sl = estimate(t.answered_within / t.answered for t in pooled)
    assert sim_sl.low is not None and sim_sl.high is not None
    assert sim_sl.low <= pooled_sl <= sim_sl.high, (sim_sl, pooled_sl)
    for tier, wait in waits.items():
        assert wait is not None
        asa = estimate(steady(r.tallies, tier).answer_wait_sum / steady(r.tallies, tier).answered for r in runs)
        assert asa.low is not None and asa.high is not None
        assert asa.low <= wait <= asa.high, (tier, asa, wait)
        level = estimate(steady(r.tallies, tier).answered_within / steady(r.tallies, tier).answered for r in runs)
        assert level.low is not None and level.high is not None
        assert level.low <= (exact[tier].service_level or 0) <= level.high, (tier, level, exact[tier])
    # Nobody left unanswered, and the vip line really is shorter: priority is the engine's.
    assert all(t.abandoned == 0 and t.overflowed == 0 for t in pooled)
    assert (waits["vip"] or 0) < p_wait * AHT / (AGENTS - load) < (waits["standard"] or 0)

    outcome = summarise(scenario, runs)
    vip, standard = (next(c for c in outcome.totals if c.tier == t) for t in ("vip", "standard"))
    assert vip.asa_s.mean is not None and standard.asa_s.mean is not None
    assert vip.asa_s.mean < standard.asa_s.mean
    assert outcome.totals[0].service_level.n == REPLICATIONS


def test_same_seed_same_figures_other_seed_other_figures() -> None:
    full = erlang_c_scenario(seed=3)
    short = sc.ArrivalCurve(start=full.arrivals.start, intervals=full.arrivals.intervals[:8])
    scenario = msgspec.structs.replace(full, arrivals=short)
    first, again = replicate(scenario, 0), replicate(scenario, 0)
    assert first.tallies == again.tallies
    other = replicate(scenario, 1)
    assert other.tallies != first.tallies
    assert math.isclose(sum(t.arrived for t in first.tallies.values()), first.calls)


def test_abandons_match_erlang_a_reference_case() -> None:
    """Issue 18's case: 14 agents, 100 calls per 30 min, AHT 180 s, mean patience 300 s, 20 s:
    service level 0.916792 (answered within 20 s / all arrivals), P(abandon) 0.013984."""
    rows = ["start,standard"] + [f"{i // 4:02d}:{i % 4 * 15:02d},50" for i in range(HOURS * 4)]
    curve = sc.parse_arrivals("\n".join(rows), START)
    staffing = sc.parse_staffing(f"start,end,agents\n00:00,{HOURS + 4:02d}:00,14", START)
    scenario = sc.scenario(
        curve,
        staffing,
        Policy(sla_formula="all_offered"),
        aht_s=AHT,
        patience_s=300.0,
        callback_handle_s=None,
        callback_reach=1.0,
        seed=11,
        replications=REPLICATIONS,
        warmup_intervals=WARMUP,
    )
    runs = [replicate(scenario, i) for i in range(REPLICATIONS)]
    fates = erlang_a.pooled(14, 100 / 1800, AHT, 300.0, 20.0)
    assert math.isclose(fates.answered_within, 0.916792, abs_tol=1e-6)
    level = estimate(steady(r.tallies).answered_within / steady(r.tallies).offered for r in runs)
    abandoned = estimate(steady(r.tallies).abandoned / steady(r.tallies).offered for r in runs)
    assert level.low is not None and level.high is not None and abandoned.low is not None and abandoned.high is not None
    assert level.low <= fates.answered_within <= level.high, (level, fates)
    assert abandoned.low <= fates.abandoned <= abandoned.high, (abandoned, fates)
    # The summary reports the same figure under the configured formula, and says which.
    outcome = summarise(scenario, runs)
    standard = next(c for c in outcome.totals if c.tier == "standard")
    assert outcome.formula == "all_offered"
    assert standard.service_level.mean is not None and standard.abandoned.mean
    assert level.mean is not None and math.isclose(standard.service_level.mean, level.mean, abs_tol=1e-6)
