"""The Erlang C staffing forecast per tier, from observed or given traffic: what
`GET /admin/forecast` answers (router/forecast_api.py reads the query and writes the view).

Inputs. By default everything is observed over the last `window` (60m, or 15m) of the queue
(or of all queues together, as one agent pool, when `queue` is left out):
- each tier's arrival rate λ_k = calls that arrived in the window / the window's length;
- AHT = total handle seconds / calls ended in the window (all tiers together).
The window is whole minutes (as in `/admin/sla`), cut short to when the store began
counting. Query parameters override what was observed:
- `aht_s`: the average handle time;
- `arrivals_per_hour`: the total arrival rate, split between tiers by the mix observed in the
  window (with no arrival observed, all of it counts as the default tier);
- or `vip_per_hour`, `mid_per_hour`, `standard_per_hour`, `blacklisted_per_hour`: those
  tiers' rates, the other tiers staying as observed (not together with `arrivals_per_hour`).
`agents` asks for the figures at that many agents; without it the answer uses the agents
needed to meet every tier's target. Every answer lists the inputs it used, where each came
from, and the model (`tierline.admin.staffing`). Without an AHT (nothing ended in the window
and no `aht_s`) the figures are null and `notes` says why.

`model`: `erlang_c` (the default: no abandons) or `erlang_a` (callers give up with exponential
patience). Erlang A's mean patience is `patience_s` when given, else observed in the window as
the total time every finished call waited / the number of abandons, from the history archive
(`waits_seen`; the maximum-likelihood estimate: answered and overflowed calls are censored
observations of patience, not patience); with history off or no abandon seen there is no
estimate and `notes` says so. Its service level follows the service's `sla_formula` (with
`short_abandon_s`), named in the answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from tierline.admin.staffing import erlang_a
from tierline.admin.staffing import outlook as so
from tierline.admin.staffing.patience import observed_patience
from tierline.queue.history import events as ev
from tierline.queue.policy import Policy
from tierline.queue.store import Traffic
from tierline.tiers.model import TIERS, Tier

ForecastWindow = Literal["15m", "60m"]
WINDOWS: Final[dict[str, float]] = {"15m": 15 * 60.0, "60m": 60 * 60.0}
MAX_PER_HOUR: Final = 1_000_000.0
MAX_AHT_S: Final = 86_400.0
MAX_PATIENCE_S: Final = 86_400.0
# Erlang A follows every caller who could be waiting, level by level, step by step: beyond this
# many arrivals in one mean patience, or this much work for one evaluation (levels × steps, see
# erlang_a._by_time; the whole forecast then takes up to a few seconds here), a query is
# refused (422) rather than left to run.
MAX_CALLS_PER_PATIENCE: Final = 2_000.0
MAX_ERLANG_A_WORK: Final = 2e6
Source = Literal["observed", "given", "split"]  # split: a share of the given total, by the observed mix


@dataclass(frozen=True)
class WaitSample:
    """What the window showed of patience: every finished wait's seconds, and the abandons."""

    wait_sum_s: float
    abandons: int


def waits_seen(events: Iterable[ev.Event], queue: str | None) -> WaitSample:
    """From archived events: answered, abandoned and overflowed calls' waits (one queue, or all)."""
    total = 0.0
    abandons = 0
    for event in events:
        if queue is not None and event.queue != queue:
            continue
        if isinstance(event, ev.Abandon):
            abandons += 1
            total += event.wait_s
        elif isinstance(event, ev.Answer | ev.Overflow):
            total += event.wait_s
    return WaitSample(total, abandons)


@dataclass(frozen=True)
class Plan:
    """The inputs used, where each came from, and the figures (None: no forecast, see notes)."""

    rates: dict[Tier, float]  # calls per hour
    sources: dict[Tier, Source]
    aht: float | None
    aht_source: Literal["observed", "given"]
    load: float | None  # Erlangs
    model: so.Model
    patience: float | None  # Erlang A's mean patience (s); None under erlang_c or when unknown
    patience_source: Literal["observed", "given"] | None
    formula: str  # the service-level formula the figures follow
    demands: list[so.TierDemand]
    outlook: so.Outlook | None
    notes: list[str]


def plan(
    traffic: Traffic,
    window_s: float,
    policy: Policy,
    *,
    total: float | None,
    per_tier: dict[Tier, float],
    aht_given: float | None,
    agents: int | None,
    model: so.Model = so.DEFAULT_MODEL,
    patience_given: float | None = None,
    waits: WaitSample | None = None,
) -> Plan:
    """`total` (calls/hour, split by the observed mix) and `per_tier` are not both given.

    `waits`: what the history archive saw in the window, for Erlang A's observed patience
    (None: history is off). ValueError for a load no staffing up to MAX_AGENTS could carry,
    or one Erlang A cannot follow (MAX_CALLS_PER_PATIENCE).
    """
    notes: list[str] = []
    rates, sources = _arrival_rates(traffic, total, per_tier, policy.default_tier, notes)
    aht, aht_source = _handle_time(traffic, aht_given, notes)
    patience, patience_source = _patience(model, patience_given, waits, notes)
    longest = max(policy.tier(tier).sla_threshold_s for tier in TIERS)
    _refuse_absurd(sum(rates.values()) / 3600, aht, patience, agents, longest)
    formula = policy.sla_formula if model == "erlang_a" else "any (no abandons in Erlang C)"
    demands = [
        so.TierDemand(
            tier=tier,
            arrivals_per_s=rates[tier] / 3600,
            threshold_s=policy.tier(tier).sla_threshold_s,
            target=policy.tier(tier).sla_target,
        )
        for tier in TIERS
    ]
    if traffic.span_s < window_s - 60:
        notes.append(f"observed over {traffic.span_s:.0f} s only: the store began counting within the window")
    outlook = None
    load = None
    if aht is not None:
        load = sum(rates.values()) / 3600 * aht
    if aht is not None and (model == "erlang_c" or patience is not None):
        assumptions = so.Assumptions(
            model=model, patience_s=patience, formula=policy.sla_formula, short_abandon_s=policy.short_abandon_s
        )
        needed = so.agents_needed(demands, aht, assumptions)
        overall = so.staffing(demands, aht, assumptions, needed=needed)
        chosen = agents if agents is not None else overall
        if chosen is None:
            notes.append(f"no staffing up to {so.MAX_AGENTS} agents meets every target")
        else:
            outlook = so.outlook(chosen, demands, aht, assumptions)
            _overload_notes(outlook, notes)
    return Plan(
        rates, sources, aht, aht_source, load, model, patience, patience_source, formula, demands, outlook, notes
    )


def _overload_notes(outlook: so.Outlook, notes: list[str]) -> None:
    if outlook.stable:
        return
    unstable = [t.tier for t in outlook.tiers if not t.stable]
    notes.append(
        f"{outlook.agents} agents cannot carry {outlook.load_erlangs:.2f} Erlangs: no steady state for "
        f"{', '.join(unstable)} (its queue grows without bound), so that tier has no figures; "
        "the tiers above it are still served and keep theirs"
    )


def _refuse_absurd(
    per_s: float, aht: float | None, patience: float | None, agents: int | None, threshold_s: float
) -> None:
    if aht is not None and per_s * aht > so.MAX_AGENTS:
        raise ValueError(
            f"{per_s * aht:.0f} Erlangs of offered load: more than the {so.MAX_AGENTS} agents a forecast considers"
        )
    if patience is None or aht is None:
        return
    if per_s * patience > MAX_CALLS_PER_PATIENCE:
        raise ValueError(
            f"{per_s * patience:.0f} calls arrive within one mean patience: more than the "
            f"{MAX_CALLS_PER_PATIENCE:.0f} Erlang A can follow; check the rates and patience_s, or use erlang_c"
        )
    # Levels: the callers who could be waiting; steps: events within the longest threshold, or
    # what the Laplace inversion costs instead when that is less (erlang_a._by_time).
    pool = max(agents or 0, per_s * aht + 1) / aht
    steps = min((2 * per_s + pool) * threshold_s + 10, erlang_a.EULER_TERMS * erlang_a.EULER_COST)
    work = (per_s * patience + 60) * steps
    if work > MAX_ERLANG_A_WORK:
        raise ValueError(
            "Erlang A at this size would take too long here (calls in one patience × events within the "
            "threshold); use erlang_c, or the what-if simulator"
        )


def _patience(
    model: so.Model, given: float | None, waits: WaitSample | None, notes: list[str]
) -> tuple[float | None, Literal["observed", "given"] | None]:
    if model != "erlang_a":
        return None, None
    if given is not None:
        return given, "given"
    if waits is None:
        notes.append("history is off, so no patience was observed: pass patience_s for erlang_a")
        return None, "observed"
    observed = observed_patience(waits.wait_sum_s, waits.abandons)
    if observed is None:
        notes.append("no abandon observed in the window, so no patience was observed: pass patience_s for erlang_a")
    return observed, "observed"


def _arrival_rates(
    traffic: Traffic,
    total: float | None,
    per_tier: dict[Tier, float],
    default_tier: Tier,
    notes: list[str],
) -> tuple[dict[Tier, float], dict[Tier, Source]]:
    span = traffic.span_s
    observed = {tier: traffic.arrived.get(tier, 0) * 3600 / span if span > 0 else 0.0 for tier in TIERS}
    if total is not None:
        counted = sum(traffic.arrived.get(tier, 0) for tier in TIERS)
        if counted == 0:
            notes.append(f"no arrival observed in the window: all of arrivals_per_hour counts as {default_tier}")
            split = {tier: total if tier == default_tier else 0.0 for tier in TIERS}
        else:
            split = {tier: total * traffic.arrived.get(tier, 0) / counted for tier in TIERS}
        return split, dict.fromkeys(TIERS, "split")
    rates = {tier: per_tier.get(tier, observed[tier]) for tier in TIERS}
    sources: dict[Tier, Source] = {tier: "given" if tier in per_tier else "observed" for tier in TIERS}
    if not per_tier and sum(rates.values()) == 0:
        notes.append("no arrival observed in the window: pass arrivals_per_hour for a forecast with traffic")
    return rates, sources


def _handle_time(
    traffic: Traffic, given: float | None, notes: list[str]
) -> tuple[float | None, Literal["observed", "given"]]:
    if given is not None:
        return given, "given"
    if traffic.ended > 0 and traffic.handle_sum_s > 0:
        return traffic.handle_sum_s / traffic.ended, "observed"
    notes.append("no call ended in the window, so no handle time was observed: pass aht_s")
    return None, "observed"
