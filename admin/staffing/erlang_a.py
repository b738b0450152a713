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
Cost: per class O(L·min(q·T, 66·2.6)) (q the uniformisation rate): short horizons go by
uniformisation, long ones (hundreds of agents: q·T in the hundreds) by inverting the walk's
Laplace transform (`_by_time_inverted`, Euler's algorithm, 66 terms), both to about 1e-11.
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
RESCALE: Final = 1e250  # sums that could overflow a float are divided down by this, their scale kept apart
LOG_RESCALE: Final = math.log(RESCALE)
# Laplace inversion (Abate & Whitt's Euler algorithm): A sets the discretisation error e^(−A),
# n + m + 1 terms; measured ≤ 7e-12 against uniformisation. One term costs about this many
# uniformisation steps of the same width (measured: 0.73 against 0.28 µs per level).
EULER_A: Final = 26.0
EULER_M: Final = 15
EULER_TERMS: Final = 66  # n = 50 terms of the series, then m = 15 more averaged
EULER_COST: Final = 2.6


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
    without load. A light load makes π_N tiny and the sum overflow a float: it is summed with
    its scale kept apart (RESCALE), a multiply and an add a term."""
    if load == 0.0:
        return math.inf
    ratio, acc, log_scale = 1.0, 0.0, 0.0
    for n in range(agents, 0, -1):
        ratio *= n / load
        acc += ratio
        if acc > RESCALE:
            ratio /= RESCALE
            acc /= RESCALE
            log_scale += LOG_RESCALE
    return log_scale + math.log(acc)


def _queue_law(rate_per_s: float, pool_per_s: float, theta: float) -> tuple[list[float], float]:
    """π_{N+j} / π_N = Π_{i=1..j} rate/(pool + iθ) for j = 0.., as (terms / their largest, log of
    the largest), cut where the rest falls below START_FLOOR of the sum. An overloaded pool's
    terms climb past a float's range before they fall: all are kept on one scale, divided down
    by RESCALE when they near the top (rare; terms far below the largest underflow to 0, where
    they add nothing)."""
    terms = [1.0]
    w, total, log_scale = 1.0, 1.0, 0.0
    j = 0
    while True:
        j += 1
        ratio = rate_per_s / (pool_per_s + j * theta)
        if ratio == 0.0:
            break
        w *= ratio
        # Once the terms fall (ratio < 1) the rest is below w·ratio/(1 − ratio).
        if ratio < 1.0 and w * ratio < START_FLOOR * total * (1.0 - ratio):
            break
        terms.append(w)
        total += w
        if w > RESCALE:
            terms = [x / RESCALE for x in terms]
            w /= RESCALE
            total /= RESCALE
            log_scale += LOG_RESCALE
    top = max(terms)
    return [x / top for x in terms], log_scale + math.log(top)


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
    # P(answered within T | j ahead) and abandoned within T both need the tilted sum's law at T.
    within = _tilted_cdfs(b, theta, threshold_s, len(above))
    short = _tilted_cdfs(b, theta, short_abandon_s, len(above))
    answered_within = below / z
    abandoned = abandoned_within = short_abandoned = asa_sum = 0.0
    inverse_rates = 0.0
    cum_short = cum_t = 0.0
    for j, weight in enumerate(above):
        share = weight / z
        served = pool / (pool + (j + 1) * theta)
        answered_within += share * served * within[j]
        c_j = (b - 1.0) / ((b - 1.0 + j) * (b + j))
        cum_short += c_j * short[j]
        cum_t += c_j * within[j]
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


def _tilted_cdfs(b: float, theta: float, t: float, count: int) -> list[float]:
    """P(Σ_{i=1..m} Exp(Nμ + iθ) ≤ t) for m = 1..count: 1 − e^(−bθt)·Σ_{k<m} Γ(b+k)/(Γ(b)k!)·u^k,
    u = 1 − e^(−θt). The terms are a negative binomial law's (they sum to 1): each from the one
    before by a multiply, in logs only while they are below a float's range (add nothing)."""
    u = -math.expm1(-theta * t)
    if u <= 0.0:
        return [0.0] * count
    out: list[float] = []
    log_term = -b * theta * t
    k = 0
    while k < count and log_term < -700.0:
        out.append(1.0)
        k += 1
        log_term += math.log((b + k - 1) / k * u)
    term, total = math.exp(log_term), 0.0
    while k < count:
        total += term
        out.append(min(max(1.0 - total, 0.0), 1.0))
        k += 1
        term *= (b + k - 1) / k * u
    return out


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
    """(P(answered by t), P(abandoned by t)) for each t: by uniformisation while its steps are
    few, by inverting the walk's Laplace transform (`_by_time_inverted`) when they would cost
    more than the inversion's nodes; the two agree to about 1e-11 (tests/staffing)."""
    q = up + down[-1] + theta
    by: dict[float, tuple[float, float]] = {}
    for t in times:
        if t > 0 and q * t + POISSON_SPREAD * math.sqrt(q * t) + 10 > EULER_TERMS * EULER_COST:
            by[t] = _by_time_inverted(start, levels, up, down, theta, t)
    rest = [t for t in times if t not in by]
    if rest:
        by.update(zip(rest, _by_time_uniformised(start, levels, up, down, theta, rest), strict=True))
    return [by[t] for t in times]


def _by_time_inverted(
    start: list[float], levels: int, up: float, down: list[float], theta: float, t: float
) -> tuple[float, float]:
    """(P(answered by t), P(abandoned by t)) by inverting their Laplace transforms.

    The walk is skip-free downwards, so the time τ to an answer from level i is the sum of the
    passage times j → j − 1 for j = i..0, each with transform φ_j(z) = d_j / (z + u + d_j −
    u·φ_{j+1}(z)) (u the higher classes' arrivals, none at the top level): a continued fraction
    from the top. The caller's own patience is independent of the walk, so with
    A(z) = Σ_i start_i·Π_{j≤i} φ_j(z) (Horner, in the same pass from the top):
        answered by t  ↔ A(s + θ) / s,    abandoned by t ↔ θ·(1 − A(s + θ)) / (s·(s + θ)).
    Inverted by Abate & Whitt's Euler algorithm (1995): the Bromwich integral on Re s = A/(2t)
    as an alternating series, its last m + 1 partial sums averaged binomially. On that line
    every |φ_j| < 1, so nothing grows; the error is about e^(−A) from the discretisation plus
    e^(A/2)·ε from rounding: about 1e-12 here (measured against uniformisation, ≤ 7e-12).
    O(levels · (n + m)) complex operations, against O(levels · q·t) for uniformisation.
    """
    padded = start + [0.0] * (levels - len(start))
    top_d, top_p = down[levels - 1], padded[levels - 1]
    rest = list(zip(reversed(down[: levels - 1]), reversed(padded[: levels - 1]), strict=True))
    partial_answered: list[float] = []
    partial_abandoned: list[float] = []
    answered = abandoned = 0.0
    for k in range(EULER_TERMS):
        s = complex(EULER_A, 2.0 * k * math.pi) / (2.0 * t)
        z = s + theta
        zu = z + up
        phi = top_d / (z + top_d)
        acc = phi * top_p
        for d, p in rest:
            phi = d / (zu + d - up * phi)
            acc = phi * (p + acc)
        weight = (0.5 if k == 0 else 1.0) * (-1.0 if k % 2 else 1.0)
        answered += weight * (acc / s).real
        abandoned += weight * (theta * (1.0 - acc) / (s * z)).real
        partial_answered.append(answered)
        partial_abandoned.append(abandoned)
    scale = math.exp(EULER_A / 2.0) / t / 2.0**EULER_M
    n = EULER_TERMS - EULER_M - 1
    binomials = [math.comb(EULER_M, j) for j in range(EULER_M + 1)]
    answered_by = scale * math.fsum(c * partial_answered[n + j] for j, c in enumerate(binomials))
    abandoned_by = scale * math.fsum(c * partial_abandoned[n + j] for j, c in enumerate(binomials))
    # Probabilities: a rounding error must not show as a service level above 1.
    return min(max(answered_by, 0.0), 1.0), min(max(abandoned_by, 0.0), 1.0)


def _by_time_uniformised(
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
