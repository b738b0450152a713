"""A day's interval plan: agents needed in each 15-minute interval of an arrival curve, so
that every tier with calls in that interval meets its service-level target, and the day's
agent-hours. Pure: a curve, a handle time and the policy in; numbers out.

Each interval is taken as its own steady state at that interval's average rate (the usual
planning assumption; peaks inside an interval are not seen). The staffing model is the
forecast's (`tierline.admin.staffing.outlook.staffing`: Erlang C, or Erlang A with a mean
patience, both with strict tier priority); the service level is counted under the configured
formula. A tier with no calls in an interval sets no need there; an interval without calls
needs 0 agents.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec

from tierline.admin.simulation.scenario import INTERVAL_S, ArrivalCurve
from tierline.admin.staffing import outlook as staffing
from tierline.queue.policy import Policy
from tierline.tiers.model import TIERS, Tier


class IntervalNeed(msgspec.Struct, kw_only=True):
    start: float
    time: str  # local HH:MM (the configured time zone) the interval starts at
    arrivals: dict[Tier, float]  # expected calls in the interval
    load_erlangs: float
    agents: int | None  # None: no staffing up to the model's limit meets every target


class DayPlan(msgspec.Struct, kw_only=True):
    model: staffing.Model
    model_text: str
    aht_s: float
    patience_s: float | None  # erlang_a's mean patience
    formula: str  # the service-level formula the targets are held to
    source: str  # where the curve came from
    intervals: list[IntervalNeed]
    agent_hours: float | None  # None when some interval is out of reach
    peak_agents: int | None
    notes: list[str]


def day_plan(
    curve: ArrivalCurve,
    aht_s: float,
    policy: Policy,
    model: staffing.Model = staffing.DEFAULT_MODEL,
    patience_s: float | None = None,
) -> DayPlan:
    """ValueError for a model without what it needs (erlang_a without patience) or bad numbers."""
    assumptions = staffing.Assumptions(
        model=model, patience_s=patience_s, formula=policy.sla_formula, short_abandon_s=policy.short_abandon_s
    )
    zone = ZoneInfo(policy.timezone)
    rows = []
    notes: list[str] = []
    for index, counts in enumerate(curve.intervals):
        demands = [
            staffing.TierDemand(
                tier=tier,
                arrivals_per_s=counts[tier] / INTERVAL_S,
                threshold_s=policy.tier(tier).sla_threshold_s,
                target=policy.tier(tier).sla_target,
            )
            for tier in TIERS
            if counts.get(tier, 0.0) > 0
        ]
        load = sum(d.arrivals_per_s for d in demands) * aht_s
        agents = staffing.staffing(demands, aht_s, assumptions) if demands else 0
        at = curve.start + index * INTERVAL_S
        clock = _clock(at, zone)
        if agents is None:
            notes.append(f"{clock}: no staffing up to {staffing.MAX_AGENTS} agents meets every target")
        rows.append(
            IntervalNeed(
                start=at,
                time=clock,
                arrivals={tier: round(counts.get(tier, 0.0), 3) for tier in TIERS},
                load_erlangs=round(load, 4),
                agents=agents,
            )
        )
    needs = [r.agents for r in rows]
    complete = [n for n in needs if n is not None]
    return DayPlan(
        model=model,
        model_text=staffing.MODEL_TEXT[model],
        aht_s=aht_s,
        patience_s=patience_s if model == "erlang_a" else None,
        formula=policy.sla_formula,
        source=curve.source,
        intervals=rows,
        agent_hours=None if len(complete) < len(needs) else sum(complete) * INTERVAL_S / 3600,
        peak_agents=max(complete, default=0) if len(complete) == len(needs) else None,
        notes=notes,
    )


def _clock(at: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(at, zone).strftime("%H:%M")
