"""Exact per-tier waits under strict non-preemptive priority on one pool (Erlang C per tier).

Model: every class (tier) k arrives as its own Poisson stream λ_k, classes are served in
priority order (highest first, FIFO within a class, no pre-emption), N agents, exponential
handle times with one mean AHT whatever the class (μ = 1/AHT, ν = Nμ the pool's completion
rate while every agent is busy). σ_k = (λ_1 + … + λ_k)/ν, σ_0 = 0.

The wait of a class-k call, exactly:
* It finds an agent free with probability 1 − P(wait), P(wait) = Erlang C(N, A) with every
  class's load in A (PASTA; the number of busy agents does not depend on the order). When the
  pool is overloaded (N ≤ A) the lowest classes' queue grows without bound, every agent is
  always busy, and P(wait) = 1 for the classes that are still stable.
* Finding every agent busy, it has J calls of its own or higher classes ahead of it, with
  P(J = j) = (1 − σ_k)·σ_k^j: while all agents are busy that count rises at rate λ_1+…+λ_k and
  falls at rate ν, and a cut between j and j+1 gives the geometric law.
* It is answered when an M/M/1 busy period opened by J + 1 calls ends: calls ahead leave at
  rate ν and the higher classes (rate λ_1+…+λ_{k−1}) keep arriving ahead of it. So the
  conditional wait G_k is the first passage to 0 of a birth–death walk (up λ_1+…+λ_{k−1},
  down ν) started at J + 1.
* Uniformisation (rate q = λ_1+…+λ_{k−1} + ν): P(G_k > t) = Σ_n Poisson(n; q·t)·P(τ > n), where
  τ is the number of steps the discrete walk (up with p, down with r = 1 − p) takes to reach 0
  from the geometric start. Its generating function H(z) = E[z^τ] solves
  (z(p + rσ²) − σ)·2H = (1 − σ)(1 − 2rσz − √(1 − 4prz²)), which gives P(τ = n) by a two-term
  recurrence that is stable forward (its homogeneous factor (p + rσ_k²)/σ_k < 1 since
  σ_{k−1} < σ_k). The Poisson sum is cut where its tail is below 1e-16 and the walk's
  survival below 1e-13, so figures are within 1e-9 (checked against a truncated CTMC of the
  priority queue in tests/staffing/test_priority_exact.py). Cost: O(q·t + √(q·t)) per class,
  about 1 ms at N = 1,000, T = 60 s, 98 % load (BENCHMARKS.md "staffing").
* SL_k(T) = 1 − P(wait)·P(G_k > T); with one class this is Erlang C exactly.
  Mean wait over all of the class's calls (Cobham, exact): P(wait)/(ν(1 − σ_{k−1})(1 − σ_k)).
* Class k is stable while σ_k < 1, whatever the classes below it do.

The former approximation (the waiting time taken as exponential with Cobham's mean) understated
the lowest tier's service level by several points (up to 6.4 in issue 18's measurements): its
true conditional wait is more variable, with more calls answered quickly and a longer tail.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import msgspec

from tierline.admin.staffing import checks
from tierline.admin.staffing.erlang_c import erlang_c

POISSON_SPREAD: Final = 9.0  # the uniformised sum runs to q·t + 9·√(q·t): its tail is < 1e-18
SURVIVAL_FLOOR: Final = 1e-13  # the walk's survival below this counts as 0


class ClassWait(msgspec.Struct, frozen=True, kw_only=True):
    """One class's figures at N agents. `stable` False: σ_k ≥ 1, every other figure None;
    a class without arrivals has no figures either (None), only `stable`."""

    stable: bool
    p_wait: float | None  # P(every agent busy) as the class's calls find it
    service_level: float | None  # P(wait ≤ threshold) over all of the class's calls
    mean_wait_s: float | None  # over all of the class's calls, those answered at once included


def conditional_wait_tail(higher_per_s: float, pool_per_s: float, sigma: float, t: float) -> float:
    """P(G > t) for a call that waits: G the first passage to 0 of a walk up at `higher_per_s`,
    down at `pool_per_s`, started at J + 1 with P(J = j) = (1 − σ)σ^j (0 < σ < 1)."""
    if t <= 0:
        return 1.0
    if higher_per_s == 0.0:  # the top class: an exponential wait, Erlang C's
        return math.exp(-pool_per_s * (1.0 - sigma) * t)
    q = higher_per_s + pool_per_s
    p, r = higher_per_s / q, pool_per_s / q
    qt = q * t
    spread = POISSON_SPREAD * math.sqrt(qt)
    first = max(0, int(qt - spread) - 5)
    last = qt + spread + 10
    weight = math.exp(-qt + first * math.log(qt) - math.lgamma(first + 1)) if first > 0 else math.exp(-qt)
    grow = (p + r * sigma * sigma) / sigma
    kick = (1.0 - sigma) / (2.0 * sigma)
    x = 4.0 * p * r
    sqrt_coef = 1.0  # the coefficient of x^k in √(1 − x), times x^k
    absorbed = 0.0  # P(τ ≤ n)
    previous = 0.0  # P(τ = n − 1)
    total = weight if first == 0 else 0.0  # n = 0: P(τ > 0) = 1
    n = 0
    while n < last:
        n += 1
        if n == 1:
            step = (1.0 - sigma) * r
        elif n % 2 == 0:
            k = n // 2
            sqrt_coef *= (k - 1.5) / k * x
            step = grow * previous + kick * sqrt_coef
        else:
            step = grow * previous
        previous = step
        absorbed += step
        survival = 1.0 - absorbed
        if survival < SURVIVAL_FLOOR:
            break
        if n >= first:
            if n > first:
                weight *= qt / n
            total += weight * survival
    return min(max(total, 0.0), 1.0)


def class_waits(
    agents: int, rates_per_s: Sequence[float], aht_s: float, thresholds_s: Sequence[float]
) -> list[ClassWait]:
    """Every class's figures at N agents, classes in priority order (highest first).

    Cost: O(N) for P(wait) plus O(q·T) per class (see the module docstring).
    """
    checks.agents(agents)
    checks.aht(aht_s)
    checks.rates(rates_per_s)
    for threshold in thresholds_s:
        checks.seconds(threshold, "a threshold")
    if len(thresholds_s) != len(rates_per_s):
        raise ValueError("one threshold per class")
    pool = agents / aht_s
    load = math.fsum(rates_per_s) * aht_s
    p_wait = erlang_c(agents, load) if agents > load else 1.0
    out = []
    above = 0.0  # arrivals per second of the classes above
    for rate, threshold in zip(rates_per_s, thresholds_s, strict=True):
        upto = above + rate
        sigma_before, sigma = above / pool, upto / pool
        if sigma >= 1.0:
            out.append(ClassWait(stable=False, p_wait=None, service_level=None, mean_wait_s=None))
        elif rate == 0.0:
            out.append(ClassWait(stable=True, p_wait=None, service_level=None, mean_wait_s=None))
        else:
            tail = conditional_wait_tail(above, pool, sigma, threshold)
            out.append(
                ClassWait(
                    stable=True,
                    p_wait=p_wait,
                    service_level=1.0 - p_wait * tail,
                    mean_wait_s=p_wait / (pool * (1.0 - sigma_before) * (1.0 - sigma)),
                )
            )
        above = upto
    return out
