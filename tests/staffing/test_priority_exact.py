"""Exact per-tier Erlang C (admin/staffing/priority.py) against the truncated chain of the
priority queue (tests/staffing/reference.py): within 1e-6 for 2–4 tiers, loads 50–98 %,
thresholds 10–60 s."""

from __future__ import annotations

import math

import pytest

from tests.staffing.reference import priority_tail
from tierline.admin.staffing import priority
from tierline.admin.staffing.erlang_c import erlang_c

AHT = 180.0

# (agents, each tier's share of the load, load / agents, threshold, calls waiting kept by the chain)
CASES = [
    (6, [0.3, 0.7], 0.50, 10.0, 150),
    (8, [0.2, 0.3, 0.5], 0.75, 20.0, 250),
    (10, [0.1, 0.25, 0.35, 0.3], 0.90, 45.0, 400),
    (5, [0.1, 0.3, 0.3, 0.3], 0.98, 60.0, 1100),
]


@pytest.mark.parametrize(("agents", "shares", "occupancy", "threshold", "extra"), CASES)
def test_each_tier_matches_the_markov_chain(
    agents: int, shares: list[float], occupancy: float, threshold: float, extra: int
) -> None:
    rates = [s * occupancy * agents / AHT for s in shares]
    got = priority.class_waits(agents, rates, AHT, [threshold] * len(rates))
    pool = agents / AHT
    for k, wait in enumerate(got):
        sigma = sum(rates[: k + 1]) / pool
        max_q = min(extra, int(math.log(1e-13) / math.log(sigma)) + 5)
        p_wait, tail = priority_tail(agents, rates, 1 / AHT, k, threshold, extra, max_q)
        assert wait.stable and wait.service_level is not None and wait.p_wait is not None
        assert wait.p_wait == pytest.approx(p_wait, abs=1e-6)
        assert wait.service_level == pytest.approx(1.0 - tail, abs=1e-6), (k, wait.service_level, 1.0 - tail)


def test_one_class_is_erlang_c() -> None:
    agents, load = 13, 10.0
    (wait,) = priority.class_waits(agents, [load / AHT], AHT, [20.0])
    p = erlang_c(agents, load)
    assert wait.service_level == pytest.approx(1 - p * math.exp(-(agents - load) * 20.0 / AHT), abs=1e-12)


def test_conditional_tail_by_brute_force_walk() -> None:
    """The recurrence against the walk stepped by hand (uniformised, truncated far away)."""
    higher, pool, sigma, t = 0.3, 1.0, 0.6, 3.0
    q = higher + pool
    p, r = higher / q, pool / q
    levels = 400
    v = [0.0] + [(1 - sigma) * sigma ** (m - 1) for m in range(1, levels)]
    total, weight = 0.0, math.exp(-q * t)
    for n in range(200):
        total += weight * sum(v[1:])
        weight *= q * t / (n + 1)
        nv = [0.0] * levels
        for i in range(1, levels):
            if i + 1 < levels:
                nv[i + 1] += p * v[i]
            nv[i - 1] += r * v[i]
        nv[0] = 0.0
        v = nv
    assert priority.conditional_wait_tail(higher, pool, sigma, t) == pytest.approx(total, abs=1e-12)


def test_the_old_approximation_understated_the_lowest_tier() -> None:
    """The exponential-wait approximation (before issue 18) against the exact figure."""
    agents, rates, t = 10, [0.2 * 9.0 / AHT, 0.3 * 9.0 / AHT, 0.5 * 9.0 / AHT], 60.0
    exact = priority.class_waits(agents, rates, AHT, [t] * 3)
    p_wait = erlang_c(agents, 9.0)
    pool = agents / AHT
    before, old = 0.0, []
    for rate in rates:
        upto = before + rate / pool
        old.append(1 - p_wait * math.exp(-t * pool * (1 - before) * (1 - upto)))
        before = upto
    low = exact[-1].service_level
    assert low is not None and low - old[-1] > 0.02  # several points more than the old figure said
