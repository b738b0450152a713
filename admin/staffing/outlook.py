"""The staffing forecast per tier: every figure at N agents and the agents each tier needs,
under the chosen model (`erlang_c`, the default, or `erlang_a`). Pure: numbers in, numbers out.

Tiers share one pool under strict non-preemptive priority in rank order (vip > mid > standard
> blacklisted), one AHT for every tier. Per tier:
* `erlang_c` (priority.py): exact per-tier service level P(wait ≤ T) and Cobham's mean wait;
  a tier is stable while σ_k < 1 (its own and higher tiers' load below N), so with the pool
  overloaded the upper tiers keep finite figures and the others say `stable: False`.
  Every formula of queue/service_level.py gives the same figure (no abandons in the model).
* `erlang_a` (erlang_a.py): abandonment with exponential patience (mean `patience_s`), exact
  per tier too; always stable. The service level is computed under `Assumptions.formula`
  (the service's `sla_formula`), with `short_abandon_s` for the default formula.
* A tier without arrivals has no figures: `service_level` None, `met` None, no agents needed,
  and it does not count in the headline `agents_needed`.
* `agents_needed` per tier: the smallest N whose figure reaches the tier's target (None: no
  target, no calls, or beyond `max_agents`). The headline: the smallest N meeting the target of
  every tier that has calls — the largest of those needs; under Erlang C at least ⌊A⌋ + 1,
  so that the pool itself is stable (tiers without a target still have to be carried). The
  search starts at a cheap guess and gallops (levels rise with N), a handful of evaluations.

Limits: steady state at the window's average rates (no intraday peaks: see the interval plan);
Poisson arrivals; exponential handle times with one AHT; one patience for every tier; no
overflow after `overflow_after_s`, no callbacks, no aging; every agent fully available.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Final, Literal

import msgspec

from tierline.admin.staffing import checks, erlang_a, priority
from tierline.admin.staffing.erlang_a import SlaFormula
from tierline.admin.staffing.erlang_c import average_speed_of_answer, c_from_b, erlang_c
from tierline.admin.staffing.erlang_c import service_level as pooled_service_level
from tierline.tiers.model import TIER_RANK, Tier

Model = Literal["erlang_c", "erlang_a"]
MODELS: Final[tuple[Model, ...]] = ("erlang_c", "erlang_a")
DEFAULT_MODEL: Final[Model] = "erlang_c"
MAX_AGENTS: Final = 100_000  # the search for agents needed gives up (None) beyond this

MODEL_TEXT: Final[dict[Model, str]] = {
    "erlang_c": (
        "Erlang C (M/M/N) with strict non-preemptive priority vip > mid > standard > blacklisted, one AHT: "
        "per tier the exact P(wait <= T) (a geometric number of calls ahead, then an M/M/1 busy period of the "
        "higher tiers' arrivals at N/AHT, by uniformisation) and Cobham's mean wait; a tier is stable while "
        "its and the higher tiers' load stays below N. No abandons."
    ),
    "erlang_a": (
        "Erlang A (M/M/N+M) with strict non-preemptive priority, one AHT and one exponential patience: per tier "
        "the exact chances of being answered within T and of abandoning, and the answered calls' mean wait; "
        "the service level under the configured formula."
    ),
}


class TierDemand(msgspec.Struct, frozen=True, kw_only=True):
    """One tier's traffic and goal: calls per second, the service-level threshold and target."""

    tier: Tier
    arrivals_per_s: float
    threshold_s: float
    target: float | None  # None: no target (blacklisted)


class Assumptions(msgspec.Struct, frozen=True, kw_only=True):
    """Which model, and what it needs beyond the traffic: patience for Erlang A, the formula."""

    model: Model = DEFAULT_MODEL
    patience_s: float | None = None  # mean patience; required by erlang_a
    formula: SlaFormula = "default"
    short_abandon_s: float = 5.0

    def __post_init__(self) -> None:
        if self.model == "erlang_a":
            if self.patience_s is None:
                raise ValueError("the erlang_a model needs a mean patience (patience_s)")
            checks.patience(self.patience_s)
        checks.seconds(self.short_abandon_s, "short_abandon_s")


ERLANG_C: Final = Assumptions()


class TierOutlook(msgspec.Struct, kw_only=True):
    tier: Tier
    has_calls: bool
    stable: bool  # σ_k < 1 (always under erlang_a)
    service_level: float | None  # None: no calls, or unstable
    pooled_service_level: float | None  # the same model as one FIFO line, at this tier's threshold
    mean_wait_s: float | None  # erlang_c: Cobham's mean over all of the tier's calls
    asa_s: float | None  # the answered calls' mean wait
    p_abandon: float | None  # erlang_a only
    met: bool | None  # None: no target, no calls, or unstable
    agents_needed: int | None  # None: no target, no calls, or more than max_agents


class Outlook(msgspec.Struct, kw_only=True):
    model: Model
    agents: int
    load_erlangs: float
    stable: bool  # the whole pool (erlang_c: N > A; erlang_a: always)
    p_wait: float | None  # P(every agent busy) on arrival (1.0 with the pool overloaded)
    asa_s: float | None  # pooled answered calls' mean wait; None when the pool is overloaded
    p_abandon: float | None  # erlang_a only
    occupancy: float | None  # carried load / N
    tiers: list[TierOutlook]
    agents_needed: int | None  # smallest N meeting the target of every tier with calls


def outlook(
    agents: int,
    demands: Sequence[TierDemand],
    aht_s: float,
    assumptions: Assumptions = ERLANG_C,
    max_agents: int = MAX_AGENTS,
) -> Outlook:
    """Every figure at N agents, plus the agents each tier (and all of them together) need."""
    checks.agents(agents)
    ordered = ordered_demands(demands)
    rates = [d.arrivals_per_s for d in ordered]
    checks.aht(aht_s)
    checks.rates(rates)
    needed = agents_needed(ordered, aht_s, assumptions, max_agents)
    overall = staffing(ordered, aht_s, assumptions, max_agents, needed)
    levels = tier_levels(agents, ordered, aht_s, assumptions)
    load = math.fsum(rates) * aht_s
    if assumptions.model == "erlang_a":
        return _outlook_a(agents, ordered, aht_s, assumptions, levels, needed, overall, load)
    stable = agents > load
    waits = priority.class_waits(agents, rates, aht_s, [d.threshold_s for d in ordered])
    tiers = []
    for demand, wait, level in zip(ordered, waits, levels, strict=True):
        calls = demand.arrivals_per_s > 0
        tiers.append(
            TierOutlook(
                tier=demand.tier,
                has_calls=calls,
                stable=wait.stable,
                service_level=level,
                pooled_service_level=pooled_service_level(agents, load, aht_s, demand.threshold_s)
                if stable and calls
                else None,
                mean_wait_s=wait.mean_wait_s,
                asa_s=wait.mean_wait_s,
                p_abandon=None,
                met=None if demand.target is None or level is None else level >= demand.target,
                agents_needed=needed[demand.tier],
            )
        )
    return Outlook(
        model="erlang_c",
        agents=agents,
        load_erlangs=load,
        stable=stable,
        p_wait=erlang_c(agents, load) if stable else 1.0,
        asa_s=average_speed_of_answer(agents, load, aht_s) if stable else None,
        p_abandon=None,
        occupancy=load / agents if stable else 1.0,
        tiers=tiers,
        agents_needed=overall,
    )


def _outlook_a(
    agents: int,
    ordered: list[TierDemand],
    aht_s: float,
    assumptions: Assumptions,
    levels: list[float | None],
    needed: dict[Tier, int | None],
    overall: int | None,
    load: float,
) -> Outlook:
    assert assumptions.patience_s is not None
    rates = [d.arrivals_per_s for d in ordered]
    fates = erlang_a.class_fates(
        agents, rates, aht_s, assumptions.patience_s, [d.threshold_s for d in ordered], assumptions.short_abandon_s
    )
    total = math.fsum(rates)
    tiers = []
    pool_fates = None
    for demand, fate, level in zip(ordered, fates, levels, strict=True):
        pooled = erlang_a.pooled(
            agents, total, aht_s, assumptions.patience_s, demand.threshold_s, assumptions.short_abandon_s
        )
        pool_fates = pooled
        tiers.append(
            TierOutlook(
                tier=demand.tier,
                has_calls=fate is not None,
                stable=True,
                service_level=level,
                pooled_service_level=pooled.level(assumptions.formula) if fate is not None else None,
                mean_wait_s=None,
                asa_s=None if fate is None else fate.asa_s,
                p_abandon=None if fate is None else fate.abandoned,
                met=None if demand.target is None or level is None else level >= demand.target,
                agents_needed=needed[demand.tier],
            )
        )
    if pool_fates is None:
        pool_fates = erlang_a.pooled(agents, total, aht_s, assumptions.patience_s, 0.0, assumptions.short_abandon_s)
    return Outlook(
        model="erlang_a",
        agents=agents,
        load_erlangs=load,
        stable=True,
        p_wait=pool_fates.p_wait,
        asa_s=pool_fates.asa_s,
        p_abandon=pool_fates.abandoned,
        occupancy=load * (1.0 - pool_fates.abandoned) / agents,
        tiers=tiers,
        agents_needed=overall,
    )


def tier_levels(
    agents: int,
    demands: Sequence[TierDemand],
    aht_s: float,
    assumptions: Assumptions = ERLANG_C,
    only: int | None = None,
) -> list[float | None]:
    """Each tier's service level at N agents, tiers in rank order; None: no calls, or unstable.

    The one figure the interval plan and the agents-needed search compare with the targets.
    `only` (an index in rank order): Erlang A computes that tier alone (the others None).
    """
    ordered = ordered_demands(demands)
    rates = [d.arrivals_per_s for d in ordered]
    thresholds = [d.threshold_s for d in ordered]
    if assumptions.model == "erlang_a":
        assert assumptions.patience_s is not None
        fates = erlang_a.class_fates(
            agents, rates, aht_s, assumptions.patience_s, thresholds, assumptions.short_abandon_s, only
        )
        return [None if f is None else f.level(assumptions.formula) for f in fates]
    return [w.service_level for w in priority.class_waits(agents, rates, aht_s, thresholds)]


def agents_needed(
    demands: Sequence[TierDemand],
    aht_s: float,
    assumptions: Assumptions = ERLANG_C,
    max_agents: int = MAX_AGENTS,
) -> dict[Tier, int | None]:
    """Per tier, the smallest N (≥ 1) whose service level reaches the tier's target.

    None for a tier without a target or without calls, or when no N up to `max_agents`
    reaches it. Starts at the old exponential-wait estimate (one O(N) pass) and gallops from
    there: about 3–8 evaluations of the exact figures per tier.
    """
    ordered = ordered_demands(demands)
    rates = [d.arrivals_per_s for d in ordered]
    checks.aht(aht_s)
    checks.rates(rates)
    cache: dict[tuple[int, int | None], list[float | None]] = {}

    def levels_at(n: int, i: int) -> list[float | None]:
        key = (n, i if assumptions.model == "erlang_a" else None)  # Erlang C: every tier at once is cheap
        if key not in cache:
            cache[key] = tier_levels(n, ordered, aht_s, assumptions, only=key[1])
        return cache[key]

    guesses = _guesses(ordered, aht_s, max_agents)
    if assumptions.model == "erlang_a":
        guesses = _pooled_a_guesses(ordered, aht_s, assumptions, guesses, max_agents)
    found: dict[Tier, int | None] = {d.tier: None for d in ordered}
    for i, demand in enumerate(ordered):
        target = demand.target
        if target is None or demand.arrivals_per_s == 0:
            continue
        lowest = 1
        if assumptions.model == "erlang_c":
            lowest = math.floor(math.fsum(rates[: i + 1]) * aht_s) + 1

        def meets(n: int, i: int = i, target: float = target) -> bool:
            level = levels_at(n, i)[i]
            return level is not None and level >= target

        found[demand.tier] = _smallest(meets, lowest, max(guesses[i], lowest), max_agents)
    return found


def staffing(
    demands: Sequence[TierDemand],
    aht_s: float,
    assumptions: Assumptions = ERLANG_C,
    max_agents: int = MAX_AGENTS,
    needed: dict[Tier, int | None] | None = None,
) -> int | None:
    """The smallest N meeting the target of every tier that has calls: the largest of their needs.

    Under Erlang C at least ⌊A⌋ + 1 (the pool stable). With no such target at all, ⌊A⌋ + 1.
    None when some target is out of reach within `max_agents`.
    """
    ordered = ordered_demands(demands)
    needed = agents_needed(ordered, aht_s, assumptions, max_agents) if needed is None else needed
    load = math.fsum(d.arrivals_per_s for d in ordered) * aht_s
    floor = math.floor(load) + 1
    counted = [d for d in ordered if d.target is not None and d.arrivals_per_s > 0]
    if not counted:
        return floor if floor <= max_agents else None
    counts = [needed[d.tier] for d in counted]
    if any(c is None for c in counts):
        return None
    most = max(c for c in counts if c is not None)
    return max(most, floor) if assumptions.model == "erlang_c" else most


def ordered_demands(demands: Sequence[TierDemand]) -> list[TierDemand]:
    """The demands in rank order (vip first); each tier at most once."""
    ordered = sorted(demands, key=lambda d: TIER_RANK[d.tier])
    if len({d.tier for d in ordered}) != len(ordered):
        raise ValueError("each tier may appear once")
    for d in ordered:
        checks.seconds(d.threshold_s, "a threshold")
        if d.target is not None and not (0.0 <= d.target <= 1.0):
            raise ValueError(f"a target must lie between 0 and 1, not {d.target!r}")
    return ordered


# --- internals ------------------------------------------------------------------------------


def _guesses(ordered: list[TierDemand], aht_s: float, max_agents: int) -> list[int]:
    """Per tier, where the search starts: the smallest N meeting the target by the old
    exponential-wait estimate, 1 − P(wait)·exp(−T·Nμ(1 − σ_{k−1})(1 − σ_k)), found in one
    upward pass carrying the Erlang B recursion. Only a starting point."""
    rates = [d.arrivals_per_s for d in ordered]
    load = math.fsum(rates) * aht_s
    out = [math.floor(load) + 1] * len(ordered)
    pending = {i for i, d in enumerate(ordered) if d.target is not None and d.arrivals_per_s > 0}
    b = 1.0
    n = 0
    while pending and n < max_agents:
        n += 1
        b = load * b / (n + load * b)
        if n <= load:
            continue
        p_wait = c_from_b(b, n, load)
        capacity = n / aht_s
        before = 0.0
        for i, d in enumerate(ordered):
            upto = before + d.arrivals_per_s / capacity
            if i in pending and upto < 1.0:
                decay = capacity * (1.0 - before) * (1.0 - upto)
                assert d.target is not None
                if 1.0 - p_wait * math.exp(-d.threshold_s * decay) >= d.target:
                    out[i] = n
                    pending.discard(i)
            before = upto
    return out


def _pooled_a_guesses(
    ordered: list[TierDemand], aht_s: float, assumptions: Assumptions, start: list[int], max_agents: int
) -> list[int]:
    """Per tier, the smallest N at which pooled Erlang A (closed form, cheap) meets the tier's
    target at its threshold: where the exact per-tier search starts."""
    assert assumptions.patience_s is not None
    patience = assumptions.patience_s
    total = math.fsum(d.arrivals_per_s for d in ordered)
    out = list(start)
    for i, d in enumerate(ordered):
        target = d.target
        if target is None or d.arrivals_per_s == 0:
            continue

        def meets(n: int, threshold: float = d.threshold_s, target: float = target) -> bool:
            level = erlang_a.pooled(n, total, aht_s, patience, threshold, assumptions.short_abandon_s).level(
                assumptions.formula
            )
            return level is not None and level >= target

        out[i] = _smallest(meets, 1, start[i], max_agents) or start[i]
    return out


def _smallest(meets: Callable[[int], bool], lowest: int, guess: int, highest: int) -> int | None:
    """The smallest N in [lowest, highest] with meets(N), assuming meets is monotone in N."""
    if lowest > highest:
        return None
    guess = min(max(guess, lowest), highest)
    if meets(guess):
        good, step = guess, 1
        while True:  # gallop down to a failing N
            probe = good - step
            if probe < lowest:
                bad = lowest - 1
                break
            if not meets(probe):
                bad = probe
                break
            good, step = probe, step * 2
    else:
        bad, step = guess, 1
        while True:  # gallop up to a passing N
            probe = min(bad + step, highest)
            if meets(probe):
                good = probe
                break
            if probe == highest:
                return None
            bad, step = probe, step * 2
    while good - bad > 1:
        mid = (good + bad) // 2
        if meets(mid):
            good = mid
        else:
            bad = mid
    return good
