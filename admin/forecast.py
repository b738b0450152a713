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
from, and the model (`tierline.queue.forecast`). Without an AHT (nothing ended in the window
and no `aht_s`) the figures are null and `notes` says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from tierline.queue import forecast as fc
from tierline.queue.policy import Policy
from tierline.queue.store import Traffic
from tierline.tiers.model import TIERS, Tier

ForecastWindow = Literal["15m", "60m"]
WINDOWS: Final[dict[str, float]] = {"15m": 15 * 60.0, "60m": 60 * 60.0}
MAX_PER_HOUR: Final = 1_000_000.0
MAX_AHT_S: Final = 86_400.0
Source = Literal["observed", "given", "split"]  # split: a share of the given total, by the observed mix


@dataclass(frozen=True)
class Plan:
    """The inputs used, where each came from, and the figures (None: no forecast, see notes)."""

    rates: dict[Tier, float]  # calls per hour
    sources: dict[Tier, Source]
    aht: float | None
    aht_source: Literal["observed", "given"]
    load: float | None  # Erlangs
    demands: list[fc.TierDemand]
    outlook: fc.Outlook | None
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
) -> Plan:
    """`total` (calls/hour, split by the observed mix) and `per_tier` are not both given."""
    notes: list[str] = []
    rates, sources = _arrival_rates(traffic, total, per_tier, policy.default_tier, notes)
    aht, aht_source = _handle_time(traffic, aht_given, notes)
    demands = [
        fc.TierDemand(
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
        chosen = agents if agents is not None else fc.staffing(demands, aht)
        if chosen is None:
            notes.append(f"no staffing up to {fc.MAX_AGENTS} agents meets every target")
        else:
            outlook = fc.outlook(chosen, demands, aht)
            if not outlook.stable:
                notes.append(
                    f"{chosen} agents cannot carry {outlook.load_erlangs:.2f} Erlangs: "
                    "the queue grows without bound (no steady state), so there are no figures"
                )
    return Plan(rates, sources, aht, aht_source, load, demands, outlook, notes)


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
