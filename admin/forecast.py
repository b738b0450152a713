"""`GET /admin/forecast`: the Erlang C staffing forecast per tier, from observed or given traffic.

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

from datetime import datetime
from typing import Final, Literal

from aiohttp import web
from msgspec import Struct

from tierline.queue import forecast as fc
from tierline.queue.store import Traffic
from tierline.router.bodies import json_response, query_choice, query_int, query_number
from tierline.router.context import services
from tierline.router.endpoints import EndpointTable, QueryParam
from tierline.router.errors import ApiError
from tierline.router.messages import ts
from tierline.tiers.model import TIERS, Tier

forecast_api = EndpointTable()

ForecastWindow = Literal["15m", "60m"]
WINDOWS: Final[dict[str, float]] = {"15m": 15 * 60.0, "60m": 60 * 60.0}
MAX_PER_HOUR: Final = 1_000_000.0
Source = Literal["observed", "given", "split"]

AGENTS = QueryParam(
    "agents", "the figures at this many agents (default: the agents needed)", integer=(1, fc.MAX_AGENTS)
)
ARRIVALS = QueryParam(
    "arrivals_per_hour",
    "total calls per hour, split by the observed tier mix (default: observed)",
    number=(0.0, MAX_PER_HOUR),
)
AHT = QueryParam("aht_s", "average handle time in seconds (default: observed)", number=(1.0, 86_400.0))
PER_TIER: Final[dict[Tier, QueryParam]] = {
    tier: QueryParam(
        f"{tier}_per_hour",
        f"{tier} calls per hour (default: observed); not with arrivals_per_hour",
        number=(0.0, MAX_PER_HOUR),
    )
    for tier in TIERS
}


class TierInputView(Struct, kw_only=True):
    tier: Tier
    arrivals_per_hour: float
    source: Source  # split: a share of the given arrivals_per_hour, by the observed mix
    arrived_in_window: int
    threshold_s: float
    target: float | None


class ForecastInputsView(Struct, kw_only=True):
    window: ForecastWindow
    window_start: datetime
    window_s: float  # the length actually observed (shorter while the store is young)
    arrivals_per_hour: float
    aht_s: float | None
    aht_source: Literal["observed", "given"]
    ended_in_window: int
    load_erlangs: float | None
    tiers: list[TierInputView]


class TierForecastView(Struct, kw_only=True):
    tier: Tier
    arrivals_per_hour: float
    threshold_s: float
    target: float | None
    service_level: float | None  # with strict tier priority (approximation, see model_text)
    pooled_service_level: float | None  # plain Erlang C, as if every tier waited in one FIFO line
    mean_wait_s: float | None  # Cobham's mean wait over all of the tier's calls
    met: bool | None
    agents_needed: int | None  # null: no target (blacklisted) or out of reach


class ForecastView(Struct, kw_only=True):
    queue: str | None  # null: every queue, as one agent pool
    model: str
    model_text: str
    generated_at: datetime
    inputs: ForecastInputsView
    agents: int | None
    agents_source: Literal["given", "needed"]
    agents_needed: int | None  # the smallest N meeting every tier's target
    stable: bool | None  # false: agents ≤ offered load, no steady state; null: no forecast
    p_wait: float | None
    asa_s: float | None
    occupancy: float | None
    tiers: list[TierForecastView]
    notes: list[str]


@forecast_api.route(
    "GET",
    "/admin/forecast",
    summary="Erlang C staffing forecast per tier (strict tier priority): service level at N agents, agents needed",
    role="admin",
    responses={200: ForecastView},
    query=(
        QueryParam("queue", "one queue (default: all queues as one agent pool)"),
        AGENTS,
        QueryParam("window", "observation window, 15m or 60m (default 60m)", enum=tuple(WINDOWS)),
        ARRIVALS,
        *PER_TIER.values(),
        AHT,
    ),
)
async def get_forecast(request: web.Request) -> web.Response:
    svc = services(request)
    queue = request.query.get("queue")
    agents = query_int(request, AGENTS, default=0) if AGENTS.name in request.query else None
    window: ForecastWindow = "15m" if query_choice(request, "window", tuple(WINDOWS), "60m") == "15m" else "60m"
    total = query_number(request, ARRIVALS)
    per_tier = {tier: value for tier, param in PER_TIER.items() if (value := query_number(request, param)) is not None}
    if total is not None and per_tier:
        raise ApiError(422, "invalid_query", "give either arrivals_per_hour or per-tier rates (vip_per_hour, ...)")
    aht_given = query_number(request, AHT)
    traffic = await svc.calls.traffic(queue, WINDOWS[window])
    notes: list[str] = []
    rates, sources = _arrival_rates(traffic, total, per_tier, svc.settings.default_tier, notes)
    aht, aht_source = _handle_time(traffic, aht_given, notes)
    demands = [
        fc.TierDemand(
            tier=tier,
            arrivals_per_s=rates[tier] / 3600,
            threshold_s=svc.settings.tier(tier).sla_threshold_s,
            target=svc.settings.tier(tier).sla_target,
        )
        for tier in TIERS
    ]
    if traffic.span_s < WINDOWS[window] - 60:
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
    body = _view(queue, window, traffic, rates, sources, aht, aht_source, load, demands, agents, outlook, notes)
    return json_response(body)


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


def _view(
    queue: str | None,
    window: ForecastWindow,
    traffic: Traffic,
    rates: dict[Tier, float],
    sources: dict[Tier, Source],
    aht: float | None,
    aht_source: Literal["observed", "given"],
    load: float | None,
    demands: list[fc.TierDemand],
    agents: int | None,
    outlook: fc.Outlook | None,
    notes: list[str],
) -> ForecastView:
    inputs = ForecastInputsView(
        window=window,
        window_start=ts(traffic.start),
        window_s=round(traffic.span_s, 3),
        arrivals_per_hour=round(sum(rates.values()), 3),
        aht_s=None if aht is None else round(aht, 3),
        aht_source=aht_source,
        ended_in_window=traffic.ended,
        load_erlangs=None if load is None else round(load, 4),
        tiers=[
            TierInputView(
                tier=d.tier,
                arrivals_per_hour=round(rates[d.tier], 3),
                source=sources[d.tier],
                arrived_in_window=traffic.arrived.get(d.tier, 0),
                threshold_s=d.threshold_s,
                target=d.target,
            )
            for d in demands
        ],
    )
    by_tier = {} if outlook is None else {t.tier: t for t in outlook.tiers}
    rows = []
    for d in demands:
        figures = by_tier.get(d.tier)
        rows.append(
            TierForecastView(
                tier=d.tier,
                arrivals_per_hour=round(rates[d.tier], 3),
                threshold_s=d.threshold_s,
                target=d.target,
                service_level=None if figures is None else _round(figures.service_level, 6),
                pooled_service_level=None if figures is None else _round(figures.pooled_service_level, 6),
                mean_wait_s=None if figures is None else _round(figures.mean_wait_s, 3),
                met=None if figures is None else figures.met,
                agents_needed=None if figures is None else figures.agents_needed,
            )
        )
    return ForecastView(
        queue=queue,
        model=fc.MODEL,
        model_text=fc.MODEL_TEXT,
        generated_at=ts(traffic.now),
        inputs=inputs,
        agents=None if outlook is None else outlook.agents,
        agents_source="given" if agents is not None else "needed",
        agents_needed=None if outlook is None else outlook.agents_needed,
        stable=None if outlook is None else outlook.stable,
        p_wait=None if outlook is None else _round(outlook.p_wait, 6),
        asa_s=None if outlook is None else _round(outlook.asa_s, 3),
        occupancy=None if outlook is None else _round(outlook.occupancy, 6),
        tiers=rows,
        notes=notes,
    )


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
