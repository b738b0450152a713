"""Erlang A (M/M/N+M): one pool of N agents whose waiting callers give up, pooled and per tier.

Model: Poisson arrivals λ (per class λ_k), exponential handle times (μ = 1/AHT, one for every
class), exponential patience with mean 1/θ for every caller; a caller whose patience runs out
before an agent takes the call abandons. Always stable (the queue sheds what it cannot carry).

Figures, each a probability per arriving call (or a mean), and what the service-level
formulas of queue/service_level.py make of them (`Fates.level`): answered within the
threshold, abandoned, abandoned within the threshold, abandoned within `short_abandon_s`
(a short abandon), the answered calls' mean wait (ASA). There are no overflows in the model.

Pooled (`pooled`, one FIFO line), in closed form. The number in the system is a birth–death
chain (birth λ, death min(n, N)μ + (n − N)⁺θ); an arrival that finds j callers waiting waits
V_j = Σ_{i=0..j} Exp(Nμ + iθ) unless it abandons first (patience P ~ Exp(θ)). So
P(answered) = E[e^(−θV_j)] = Nμ/(Nμ + (j+1)θ), P(answered within T) = that ×
P(Σ_{i=1..j+1} Exp(Nμ + iθ) ≤ T) (exponential tilting), and that sum's distribution is a
regularised incomplete beta with an integer first argument: 1 − e^(−bθT)·Σ_{k≤j} Γ(b+k)/(Γ(b)k!)
(1 − e^(−θT))^k, b = Nμ/θ + 1. Abandoned within s: Σ_{k≤j} b'/((b'+k)(b'+k+1))·P(Σ_{i=1..k+1}
Exp(Nμ + iθ) ≤ s), b' = Nμ/θ. Every sum is cumulative in j: O(N + queue) per call.
Check case (tests/staffing/test_erlang_a.py): 14 agents, 100 calls per 30 min, AHT 180 s,
patience 300 s, T = 20 s → answered within T / all arrivals 0.916792, P(abandon) 0.013984.

Per tier (`class_fates`), strict non-preemptive priority, exactly — not an approximation:
* The number of calls in the system moves as in the FIFO model whatever the order (every
  waiting caller abandons at θ, every agent finishes at μ), so P(every agent busy) is the
  pooled one.
* Classes 1..k waiting, Q, rises at λ_1+…+λ_k while every agent is busy and falls from j at
  Nμ + jθ; a cut gives P(Q = j | busy) ∝ Π_{i=1..j} (λ_1+…+λ_k)/(Nμ + iθ), what an arriving
  class-k call finds ahead of it.
* With i calls ahead it then moves up at λ_1+…+λ_{k−1} (higher classes arrive ahead), down
  at Nμ + iθ (an answer or an abandon ahead), is answered from 0 at Nμ, abandons at θ.
  The chances of ending answered or abandoned, and the mean wait of those answered, solve
  tridiagonal systems; the chances by a time T come by uniformisation (a Poisson sum over
  the steps of the discrete chain), both on levels 0..L with L where the start law is below
  1e-14 plus a margin (tests/staffing check against the closed form for one class and a
  simulation for several). What *is* outside the model: tiers with different patience,
  overflow after `overflow_after_s`, callbacks, aging.
Cost: O(L·q·T) per class (q the uniformisation rate): about 1–50 ms at tens of agents,
more at hundreds; the exact Erlang C figures (priority.py) are the fast ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final, Literal

import msgspec

from tierline.admin.staffing import checks

SlaFormula = Literal["default", "answered_only", "all_offered", "abandons_in_threshold_good"]

START_FLOOR: Final = 1e-14  # the queue-ahead law is cut where the rest of it falls below this share
LEVEL_MARGIN: Final = 40  # levels above the cut, room for the higher classes' arrivals
POISSON_SPREAD: Final = 9.0


class Fates(msgspec.Struct, frozen=True, kw_only=True):
    """What becomes of a class's calls, each a probability per arrival (ASA a mean)."""

    p_wait: float  # P(every agent busy) on arrival
    answered_within: float  # answered within the threshold
    abandoned: float
    abandoned_within: float  # abandoned within the threshold
    short_abandoned: float  # abandoned within short_abandon_s
    asa_s: float | None  # the answered calls' mean wait; None when none is answered

    def level(self, formula: SlaFormula) -> float | None:
        """The service level as queue/service_level.FORMULAS counts it (no overflows here)."""
        if formula == "answered_only":
            answered = 1.0 - self.abandoned
            return self.answered_within / answered if answered > 0 else None
        if formula == "all_offered":
            return self.answered_within
        if formula == "abandons_in_threshold_good":
            return self.answered_within + self.abandoned_within
        counted = 1.0 - self.short_abandoned
        return self.answered_within / counted if counted > 0 else None


def _check(agents: int, aht_s: float, patience_s: float, threshold_s: float, short_abandon_s: float) -> None:
    checks.agents(agents)
    checks.aht(aht_s)
    checks.patience(patience_s)
    checks.seconds(threshold_s, "a threshold")
    checks.seconds(short_abandon_s, "short_abandon_s")


def _log_below(agents: int, load: float) -> float:
    """log Σ_{n<N} π_n / π_N (the pool's states with an agent free, relative to all busy); +inf
    without load. In logs: with a light load π_N is tiny and the ratio overflows a float."""
    if load == 0.0:
        return math.inf
    log_ratio, acc = 0.0, -math.inf
    for n in range(agents, 0, -1):
        log_ratio += math.log(n / load)
        acc = _log_add(acc, log_ratio)
    return acc


def _queue_law(rate_per_s: float, pool_per_s: float, theta: float) -> tuple[list[float], float]:
    """π_{N+j} / π_N = Π_{i=1..j} rate/(pool + iθ) for j = 0.., as (terms / their largest, log of
    the largest), cut where the rest falls below START_FLOOR of the sum. In logs: an overloaded
    pool's terms climb past a float's range before they fall."""
    logs = [0.0]
    log_w, log_total = 0.0, 0.0
    floor = math.log(START_FLOOR)
    j = 0
    while True:
        j += 1
        ratio = rate_per_s / (pool_per_s + j * theta)
        if ratio == 0.0:
            break
        log_w += math.log(ratio)
        # Once the terms fall (ratio < 1) the rest is below w·ratio/(1 − ratio).
        if ratio < 1.0 and log_w + math.log(ratio / (1.0 - ratio)) < floor + log_total:
            break
        logs.append(log_w)
        log_total = _log_add(log_total, log_w)
    top = max(logs)
    return [math.exp(x - top) for x in logs], top


def _log_add(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    return a if b == -math.inf else a + math.log1p(math.exp(b - a))


def _busy_share(log_below: float, terms: list[float], log_top: float) -> float:
    """The weight of the free-agent states on the scale of `terms` (0.0 when negligible)."""
    gap = log_below - log_top
    return math.inf if gap > 700 else math.exp(gap)


def pooled(
    agents: int,
    arrivals_per_s: float,
    aht_s: float,
    patience_s: float,
    threshold_s: float,
    short_abandon_s: float = 0.0,
) -> Fates:
    """Erlang A for one FIFO line, in closed form (see the module docstring)."""
    _check(agents, aht_s, patience_s, threshold_s, short_abandon_s)
    checks.rates([arrivals_per_s])
    theta = 1.0 / patience_s
    pool = agents / aht_s
    load = arrivals_per_s * aht_s
    above, log_top = _queue_law(arrivals_per_s, pool, theta)
    below = _busy_share(_log_below(agents, load), above, log_top)
    if math.isinf(below):
        return Fates(
            p_wait=0.0,
            answered_within=1.0,
            abandoned=0.0,
            abandoned_within=0.0,
            short_abandoned=0.0,
            asa_s=0.0,
        )
    z = below + math.fsum(above)
    b = pool / theta + 1.0
    within = _TiltedSum(b, theta, threshold_s)
    short = _TiltedSum(b, theta, short_abandon_s)
    short_at_t = _TiltedSum(b, theta, threshold_s)
    answered_within = below / z
    abandoned = abandoned_within = short_abandoned = asa_sum = 0.0
    inverse_rates = 0.0
    cum_short = cum_t = 0.0
    for j, weight in enumerate(above):
        share = weight / z
        served = pool / (pool + (j + 1) * theta)
        answered_within += share * served * within.cdf_next()
        c_j = (b - 1.0) / ((b - 1.0 + j) * (b + j))
        cum_short += c_j * short.cdf_next()
        cum_t += c_j * short_at_t.cdf_next()
        abandoned += share * (1.0 - served)
        short_abandoned += share * cum_short
        abandoned_within += share * cum_t
        inverse_rates += 1.0 / (pool + (j + 1) * theta)
        asa_sum += share * served * inverse_rates
    answered = 1.0 - abandoned
    return Fates(
        p_wait=math.fsum(above) / z,
        answered_within=answered_within,
        abandoned=abandoned,
        abandoned_within=abandoned_within,
        short_abandoned=short_abandoned,
        asa_s=asa_sum / answered if answered > 0 else None,
    )


class _TiltedSum:
    """P(Σ_{i=1..m} Exp(Nμ + iθ) ≤ t) for m = 1, 2, … in turn: 1 − e^(−bθt)·Σ_{k<m} Γ(b+k)/(Γ(b)k!)·u^k."""

    def __init__(self, b: float, theta: float, t: float) -> None:
        self._b = b
        self._k = 0
        self._u = -math.expm1(-theta * t)
        self._log_term = -b * theta * t  # log of e^(−bθt)·Γ(b+k)/(Γ(b)k!)·u^k at k
        self._sum = 0.0

    def cdf_next(self) -> float:
        if self._u <= 0.0:
            return 0.0
        self._sum += math.exp(self._log_term)
        self._k += 1
        self._log_term += math.log((self._b + self._k - 1) / self._k * self._u)
        return min(max(1.0 - self._sum, 0.0), 1.0)


def class_fates(
    agents: int,
    rates_per_s: Sequence[float],
    aht_s: float,
    patience_s: float,
    thresholds_s: Sequence[float],
    short_abandon_s: float = 0.0,
    only: int | None = None,
) -> list[Fates | None]:
    """Each class's fates under strict priority (highest first); None for a class without arrivals
    (and for every class but `only`, when given: a search that needs one class's figure)."""
    checks.agents(agents)
    checks.aht(aht_s)
    checks.patience(patience_s)
    checks.rates(rates_per_s)
    checks.seconds(short_abandon_s, "short_abandon_s")
    for threshold in thresholds_s:
        checks.seconds(threshold, "a threshold")
    if len(thresholds_s) != len(rates_per_s):
        raise ValueError("one threshold per class")
    theta = 1.0 / patience_s
    pool = agents / aht_s
    load = math.fsum(rates_per_s) * aht_s
    above_all, log_top = _queue_law(math.fsum(rates_per_s), pool, theta)
    below = _busy_share(_log_below(agents, load), above_all, log_top)
    total_above = math.fsum(above_all)
    p_busy = 0.0 if math.isinf(below) else total_above / (below + total_above)
    out: list[Fates | None] = []
    above = 0.0
    for k, (rate, threshold) in enumerate(zip(rates_per_s, thresholds_s, strict=True)):
        upto = above + rate
        if rate == 0.0 or (only is not None and k != only):
            out.append(None)
        elif p_busy == 0.0:
            out.append(
                Fates(
                    p_wait=0.0, answered_within=1.0, abandoned=0.0, abandoned_within=0.0, short_abandoned=0.0, asa_s=0.0
                )
            )
        else:
            start, _ = _queue_law(upto, pool, theta)
            norm = math.fsum(start)
            out.append(_walk(p_busy, [w / norm for w in start], above, pool, theta, threshold, short_abandon_s))
        above = upto
    return out


def _walk(
    p_busy: float,
    start: list[float],
    higher_per_s: float,
    pool: float,
    theta: float,
    threshold_s: float,
    short_abandon_s: float,
) -> Fates:
    """A waiting call's fates from the law of the calls ahead of it (see the module docstring)."""
    levels = len(start) + LEVEL_MARGIN
    down = [pool + i * theta for i in range(levels)]  # at 0: the call itself is answered
    out_rate = [higher_per_s + d + theta for d in down]
    served, answer_wait = _absorption(levels, higher_per_s, down, out_rate, theta)
    p_served = math.fsum(w * s for w, s in zip(start, served, strict=False))
    wait_served = math.fsum(w * m for w, m in zip(start, answer_wait, strict=False))
    by_t = _by_time(start, levels, higher_per_s, down, theta, (threshold_s, short_abandon_s))
    (served_t, abandoned_t), (_, abandoned_short) = by_t
    answered = 1.0 - p_busy * (1.0 - p_served)
    return Fates(
        p_wait=p_busy,
        answered_within=(1.0 - p_busy) + p_busy * served_t,
        abandoned=p_busy * (1.0 - p_served),
        abandoned_within=p_busy * abandoned_t,
        short_abandoned=p_busy * abandoned_short,
        asa_s=p_busy * wait_served / answered if answered > 0 else None,
    )


def _absorption(
    levels: int, up: float, down: list[float], out_rate: list[float], theta: float
) -> tuple[list[float], list[float]]:
    """From each level: P(answered) s_i and E[wait; answered] m_i, by two tridiagonal solves.

    R_i s_i = up·s_{i+1} + d_i·s_{i−1} (s_{−1} = 1: answered), R_i m_i = s_i + up·m_{i+1} + d_i·m_{i−1}
    (m_{−1} = 0); the top level reflects its up-move (its mass is below START_FLOOR).
    """
    diag = [out_rate[i] - (up if i == levels - 1 else 0.0) for i in range(levels)]
    lower = [-down[i] for i in range(levels)]  # coefficient of x_{i−1}
    upper = [-up] * levels  # coefficient of x_{i+1}
    rhs_s = [down[0]] + [0.0] * (levels - 1)
    s = _thomas(lower, diag, upper, rhs_s)
    m = _thomas(lower, diag, upper, s)
    return s, m


def _thomas(lower: list[float], diag: list[float], upper: list[float], rhs: list[float]) -> list[float]:
    n = len(diag)
    c = [0.0] * n
    d = [0.0] * n
    c[0] = upper[0] / diag[0]
    d[0] = rhs[0] / diag[0]
    for i in range(1, n):
        denom = diag[i] - lower[i] * c[i - 1]
        c[i] = upper[i] / denom if i < n - 1 else 0.0
        d[i] = (rhs[i] - lower[i] * d[i - 1]) / denom
    x = [0.0] * n
    x[-1] = d[-1]
    for i in range(n - 2, -1, -1):
        x[i] = d[i] - c[i] * x[i + 1]
    return x


def _by_time(
    start: list[float],
    levels: int,
    up: float,
    down: list[float],
    theta: float,
    times: Sequence[float],
) -> list[tuple[float, float]]:
    """(P(answered by t), P(abandoned by t)) for each t, by uniformisation of the walk.

    Every caller abandons at the same θ whatever its level, so the surviving mass is carried as
    one number and the level vector only as far as the remaining steps can still bring a call
    down to an answer: the work is Σ_n min(L, steps − n), one list comprehension a step.
    """
    q = up + down[-1] + theta
    horizon = max(times)
    qt_max = q * horizon
    steps = int(qt_max + POISSON_SPREAD * math.sqrt(qt_max) + 10)
    p_up, p_kill = up / q, theta / q
    p_down = [d / q for d in down]
    stay = [1.0 - (up + d + theta) / q for d in down]
    down_next = [*p_down[1:], 0.0]  # at i: what comes down from i + 1
    v = start + [0.0] * (levels - len(start))
    served_by = [0.0]
    abandoned_by = [0.0]
    served = abandoned = 0.0
    alive = 1.0
    for n in range(steps):
        if alive < 1e-15:
            break
        width = min(len(v), steps - n + 1)
        if width < len(v):
            v = v[:width]
        answered_now = v[0] * p_down[0]
        served += answered_now
        abandoned += alive * p_kill
        alive -= answered_now + alive * p_kill
        below = [0.0, *v[:-1]]
        above = [*v[1:], 0.0]
        v = [x * st + a * pd + b * p_up for x, st, a, pd, b in zip(v, stay, above, down_next, below, strict=False)]
        served_by.append(served)
        abandoned_by.append(abandoned)
    out = []
    for t in times:
        out.append((_poisson_mix(served_by, q * t), _poisson_mix(abandoned_by, q * t)))
    return out


def _poisson_mix(by_step: list[float], qt: float) -> float:
    """Σ_n Poisson(n; qt)·by_step[n], by_step constant after its end."""
    if qt <= 0:
        return by_step[0]
    last = len(by_step) - 1
    total = 0.0
    spread = POISSON_SPREAD * math.sqrt(qt)
    first = max(0, int(qt - spread) - 5)
    end = int(qt + spread) + 10
    if first > last:
        return by_step[last]
    weight = math.exp(-qt + first * math.log(qt) - math.lgamma(first + 1)) if first > 0 else math.exp(-qt)
    mass = 0.0
    for n in range(first, min(end, last) + 1):
        if n > first:
            weight *= qt / n
        total += weight * by_step[n]
        mass += weight
    if end > last:  # the rest of the Poisson mass sees the final value
        total += max(1.0 - mass, 0.0) * by_step[last]
    return total
