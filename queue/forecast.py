"""Staffing forecast, pure: Erlang C for the shared agent pool, Cobham's priority waits per tier.

No I/O, no clock: numbers in, numbers out. The HTTP layer (`tierline.admin.forecast`) feeds
it the arrival rates and handle time a store observed (`CallStore.traffic`) or that an
operator gave.

Model
-----
Every tier's calls arrive as an independent Poisson stream (λ_k calls per second) and share
one pool of N agents; handle times are exponential with one mean AHT whatever the tier
(μ = 1/AHT). Offered load A = Σ λ_k · AHT Erlangs.

* Pooled, as if all calls waited in one FIFO line (FACTS "Staffing arithmetic"):
  P(wait) = Erlang C(N, A), computed from the Erlang B recursion
  B₀ = 1, B_k = A·B_{k−1} / (k + A·B_{k−1}), then C = B / (1 − (A/N)(1 − B)): it stays
  finite for hundreds of thousands of agents, where factorials overflow.
  SL(T) = 1 − P(wait)·e^(−(N−A)·T/AHT), ASA = P(wait)·AHT/(N−A).
* Per tier, strict non-preemptive priority in the order the queue serves
  (vip > mid > standard > blacklisted). Every tier finds all agents busy with the same
  probability P(wait) (Poisson arrivals see time averages); its mean wait (over all of
  its calls, those answered at once included) is Cobham's
  W_k = P(wait)/(Nμ) / ((1 − σ_{k−1})(1 − σ_k)),  σ_k = Σ_{i≤k} λ_i/(Nμ),  σ_0 = 0.
  This mean is exact for the M/M/N priority model.
* Per-tier service level — an APPROXIMATION: the wait of a tier-k call that does wait is
  taken as exponential with the right mean, W_k / P(wait), so
  SL_k(T) = 1 − P(wait)·exp(−T·P(wait)/W_k) = 1 − P(wait)·exp(−T·Nμ(1 − σ_{k−1})(1 − σ_k)).
  With a single tier (σ_0 = 0, σ_1 = A/N) the rate is Nμ − λ = (N − A)/AHT and this *is*
  Erlang C, exactly. With several tiers the true conditional wait of a lower tier is more
  variable than an exponential (it contains the busy periods that the tiers above it
  start), so for thresholds well above its mean wait the formula somewhat flatters the
  lower tiers; the top tier is close to exact.
* Agents needed for a tier: the smallest N whose SL_k reaches the tier's target (the whole
  mix is in the pool, so every tier needs N > A). SL_k rises with N (P(wait) falls and
  Nμ(1 − σ_{k−1})(1 − σ_k) = μ(N − a_{k−1})(N − a_k)/N grows for N > A), so the search
  walks N upward once, carrying the Erlang B recursion along. A tier without a target
  (blacklisted) needs nothing: None.

Limits
------
Steady state over the window's average rate (no intraday peaks); Poisson arrivals;
exponential handle times with one AHT for every tier; infinitely patient callers (no
abandons, no mid overflow after `overflow_after_s`, no callback work); no mid/standard
aging; every agent fully available (put after-call work in AHT, shrinkage on top).
With N ≤ A the model has no steady state: `stable` is False and every figure is None (the
queue grows without bound; in reality the top tiers would still be served while the lower
ones abandon or overflow).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import msgspec

from tierline.tiers.model import TIER_RANK, Tier

MAX_AGENTS: Final = 100_000  # the search for agents needed gives up (None) beyond this

MODEL: Final = "erlang_c_priority"
MODEL_TEXT: Final = (
    "Erlang C (M/M/N) for the pooled figures; per tier, strict non-preemptive priority "
    "vip > mid > standard > blacklisted with one AHT: mean wait W_k = P(wait)/(N/AHT) / "
    "((1 - s_(k-1))(1 - s_k)), s_k = sum of the arrival rates of tier k and above x AHT / N (Cobham); "
    "tier service level approximated as 1 - P(wait) * exp(-T * P(wait) / W_k), "
    "exact Erlang C when there is one tier"
)


def erlang_b(agents: int, load: float) -> float:
    """Erlang B blocking probability B(N, A) by the recursion B₀ = 1, B_k = A·B_{k−1}/(k + A·B_{k−1})."""
    _check_agents(agents, minimum=0)
    _check_load(load)
    b = 1.0
    for k in range(1, agents + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(agents: int, load: float) -> float:
    """P(wait) = Erlang C(N, A); 1.0 when N ≤ A (no steady state: every call waits)."""
    _check_agents(agents)
    _check_load(load)
    if agents <= load:
        return 1.0
    return _c_from_b(erlang_b(agents, load), agents, load)


def service_level(agents: int, load: float, aht_s: float, threshold_s: float) -> float:
    """Pooled SL(T) = 1 − P(wait)·e^(−(N−A)·T/AHT); 0.0 when N ≤ A."""
    _check_aht(aht_s)
    if agents <= load:
        _check_agents(agents)
        return 0.0
    p_wait = erlang_c(agents, load)
    return 1.0 - p_wait * math.exp(-(agents - load) * threshold_s / aht_s)


def average_speed_of_answer(agents: int, load: float, aht_s: float) -> float:
    """Pooled ASA = P(wait)·AHT/(N−A); infinity when N ≤ A."""
    _check_aht(aht_s)
    if agents <= load:
        _check_agents(agents)
        return math.inf
    return erlang_c(agents, load) * aht_s / (agents - load)


def _priority_state(agents: int, rates_per_s: Sequence[float], aht_s: float) -> tuple[float, list[float]] | None:
    """P(wait) and each class's decay rate, the two things every per-class figure needs; None when unstable."""
    load = _load(rates_per_s, aht_s)
    if agents <= load:
        _check_agents(agents)
        return None
    decays = _decay_rates(agents, rates_per_s, aht_s)
    if decays is None:
        return None
    return erlang_c(agents, load), decays


def priority_waits(agents: int, rates_per_s: Sequence[float], aht_s: float) -> list[float] | None:
    """Cobham's mean wait per class, classes in priority order (highest first); None when unstable."""
    state = _priority_state(agents, rates_per_s, aht_s)
    if state is None:
        return None
    p_wait, decays = state
    return [p_wait / decay for decay in decays]


def priority_service_levels(
    agents: int, rates_per_s: Sequence[float], aht_s: float, thresholds_s: Sequence[float]
) -> list[float] | None:
    """The approximate SL_k(T_k) per class (see the module docstring); None when unstable."""
    state = _priority_state(agents, rates_per_s, aht_s)
    if state is None:
        return None
    p_wait, decays = state
    return [1.0 - p_wait * math.exp(-t * d) for t, d in zip(thresholds_s, decays, strict=True)]


# --- per tier -------------------------------------------------------------------------------


class TierDemand(msgspec.Struct, frozen=True, kw_only=True):
    """One tier's traffic and goal: calls per second, the service-level threshold and target."""

    tier: Tier
    arrivals_per_s: float
    threshold_s: float
    target: float | None  # None: no target (blacklisted)


class TierOutlook(msgspec.Struct, kw_only=True):
    tier: Tier
    service_level: float | None  # priority figure at the tier's threshold; None when unstable
    pooled_service_level: float | None  # Erlang C at the same threshold, as if one FIFO line
    mean_wait_s: float | None  # Cobham's W_k over all of the tier's calls
    met: bool | None  # None: no target, or unstable figures
    agents_needed: int | None  # None: no target, or more than MAX_AGENTS


class Outlook(msgspec.Struct, kw_only=True):
    agents: int
    load_erlangs: float
    stable: bool
    p_wait: float | None
    asa_s: float | None  # pooled average speed of answer
    occupancy: float | None  # A / N
    tiers: list[TierOutlook]
    agents_needed: int | None  # smallest N meeting every tier's target


def outlook(agents: int, demands: Sequence[TierDemand], aht_s: float, max_agents: int = MAX_AGENTS) -> Outlook:
    """Every figure at N agents, plus the agents each tier (and all of them together) need."""
    _check_agents(agents)
    ordered = _ordered(demands)
    rates = [d.arrivals_per_s for d in ordered]
    load = _load(rates, aht_s)
    needed = agents_needed(ordered, aht_s, max_agents)
    overall = staffing(ordered, aht_s, max_agents, needed)
    decays = _decay_rates(agents, rates, aht_s) if agents > load else None
    if decays is None:
        return Outlook(
            agents=agents,
            load_erlangs=load,
            stable=False,
            p_wait=None,
            asa_s=None,
            occupancy=None,
            tiers=[
                TierOutlook(
                    tier=d.tier,
                    service_level=None,
                    pooled_service_level=None,
                    mean_wait_s=None,
                    met=None,
                    agents_needed=needed[d.tier],
                )
                for d in ordered
            ],
            agents_needed=overall,
        )
    p_wait = erlang_c(agents, load)
    spare_rate = (agents - load) / aht_s  # the pooled decay rate, (N − A)/AHT
    tiers = []
    for demand, decay in zip(ordered, decays, strict=True):
        level = 1.0 - p_wait * math.exp(-demand.threshold_s * decay)
        tiers.append(
            TierOutlook(
                tier=demand.tier,
                service_level=level,
                pooled_service_level=1.0 - p_wait * math.exp(-demand.threshold_s * spare_rate),
                mean_wait_s=p_wait / decay,
                met=None if demand.target is None else level >= demand.target,
                agents_needed=needed[demand.tier],
            )
        )
    return Outlook(
        agents=agents,
        load_erlangs=load,
        stable=True,
        p_wait=p_wait,
        asa_s=p_wait / spare_rate,
        occupancy=load / agents,
        tiers=tiers,
        agents_needed=overall,
    )


def agents_needed(demands: Sequence[TierDemand], aht_s: float, max_agents: int = MAX_AGENTS) -> dict[Tier, int | None]:
    """Per tier, the smallest N (≥ 1) whose priority service level reaches the tier's target.

    None for a tier without a target, or when no N up to `max_agents` reaches it. One pass
    upward in N, carrying the Erlang B recursion, so the cost is O(answer), not O(answer²).
    """
    ordered = _ordered(demands)
    rates = [d.arrivals_per_s for d in ordered]
    load = _load(rates, aht_s)
    found: dict[Tier, int | None] = {d.tier: None for d in ordered}
    pending = [(i, d) for i, d in enumerate(ordered) if d.target is not None]
    b = 1.0
    n = 0
    while pending and n < max_agents:
        n += 1
        b = load * b / (n + load * b)
        if n <= load:
            continue
        decays = _decay_rates(n, rates, aht_s)
        if decays is None:
            continue
        p_wait = _c_from_b(b, n, load)
        still = []
        for i, demand in pending:
            assert demand.target is not None
            if 1.0 - p_wait * math.exp(-demand.threshold_s * decays[i]) >= demand.target:
                found[demand.tier] = n
            else:
                still.append((i, demand))
        pending = still
    return found


def staffing(
    demands: Sequence[TierDemand],
    aht_s: float,
    max_agents: int = MAX_AGENTS,
    needed: dict[Tier, int | None] | None = None,
) -> int | None:
    """The smallest N meeting every tier's target: the largest of the tiers' needs.

    With no target at all, the smallest N that keeps the pool stable. None when some
    target is out of reach within `max_agents`.
    """
    ordered = _ordered(demands)
    needed = agents_needed(ordered, aht_s, max_agents) if needed is None else needed
    load = _load([d.arrivals_per_s for d in ordered], aht_s)
    floor = math.floor(load) + 1
    with_target = [d for d in ordered if d.target is not None]
    if not with_target:
        return floor if floor <= max_agents else None
    counts = [needed[d.tier] for d in with_target]
    if any(c is None for c in counts):
        return None
    return max(max(c for c in counts if c is not None), floor)


# --- internals ------------------------------------------------------------------------------


def _c_from_b(b: float, agents: int, load: float) -> float:
    return b / (1.0 - (load / agents) * (1.0 - b))


def _decay_rates(agents: int, rates_per_s: Sequence[float], aht_s: float) -> list[float] | None:
    """Per class Nμ(1 − σ_{k−1})(1 − σ_k) = P(wait)/W_k; None if some σ_k ≥ 1 (rounding at N ≈ A)."""
    capacity = agents / aht_s
    out = []
    before = 0.0
    for rate in rates_per_s:
        upto = before + rate / capacity
        if upto >= 1.0:
            return None
        out.append(capacity * (1.0 - before) * (1.0 - upto))
        before = upto
    return out


def _load(rates_per_s: Sequence[float], aht_s: float) -> float:
    _check_aht(aht_s)
    for rate in rates_per_s:
        if not (math.isfinite(rate) and rate >= 0):
            raise ValueError(f"an arrival rate must be a finite number ≥ 0, not {rate!r}")
    return math.fsum(rates_per_s) * aht_s


def _ordered(demands: Sequence[TierDemand]) -> list[TierDemand]:
    ordered = sorted(demands, key=lambda d: TIER_RANK[d.tier])
    if len({d.tier for d in ordered}) != len(ordered):
        raise ValueError("each tier may appear once")
    return ordered


def _check_agents(agents: int, minimum: int = 1) -> None:
    if agents < minimum:
        raise ValueError(f"agents must be at least {minimum}, not {agents}")


def _check_load(load: float) -> None:
    if not (math.isfinite(load) and load >= 0):
        raise ValueError(f"the offered load must be a finite number ≥ 0, not {load!r}")


def _check_aht(aht_s: float) -> None:
    if not (math.isfinite(aht_s) and aht_s > 0):
        raise ValueError(f"the average handle time must be a finite number > 0, not {aht_s!r}")
