"""`GET /admin/forecast`: the query in, the staffing forecast (admin/forecast.py) out as its view;
`GET /admin/forecast/plan`: a day's staffing per 15-minute interval (admin/simulation/interval_plan.py).

What the figures mean and where each input comes from: admin/forecast.py, admin/staffing/ and
the README. Erlang A's observed patience reads the history archive's waits when history is on.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Final, Literal

from aiohttp import web
from msgspec import Struct

from tierline.admin.forecast import (
    MAX_AHT_S,
    MAX_PATIENCE_S,
    MAX_PER_HOUR,
    WINDOWS,
    ForecastWindow,
    Plan,
    Source,
    plan,
    waits_seen,
)
from tierline.admin.simulation import curves
from tierline.admin.simulation.interval_plan import DayPlan, day_plan
from tierline.admin.simulation.scenario import ScenarioError
from tierline.admin.staffing import outlook as so
from tierline.queue.store import Traffic
from tierline.router.plumbing.bodies import json_response, query_choice, query_int, query_number
from tierline.router.plumbing.context import services
from tierline.router.plumbing.endpoints import EndpointTable, QueryParam
from tierline.router.plumbing.errors import ApiError
from tierline.router.plumbing.messages import ts
from tierline.tiers.model import TIERS, Tier

forecast_api = EndpointTable()

AGENTS = QueryParam(
    "agents", "the figures at this many agents (default: the agents needed)", integer=(1, so.MAX_AGENTS)
)
MODEL = QueryParam(
    "model",
    "erlang_c (default: no abandons) or erlang_a (callers give up with exponential patience)",
    enum=so.MODELS,
)
PATIENCE = QueryParam(
    "patience_s",
    "erlang_a: mean patience in seconds (default: observed, total waiting time / abandons)",
    number=(1.0, MAX_PATIENCE_S),
)
ARRIVALS = QueryParam(
    "arrivals_per_hour",
    "total calls per hour, split by the observed tier mix (default: observed)",
    number=(0.0, MAX_PER_HOUR),
)
AHT = QueryParam("aht_s", "average handle time in seconds (default: observed)", number=(1.0, MAX_AHT_S))
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
    patience_s: float | None  # erlang_a's mean patience; null under erlang_c or when unknown
    patience_source: Literal["observed", "given"] | None
    tiers: list[TierInputView]


class TierForecastView(Struct, kw_only=True):
    tier: Tier
    arrivals_per_hour: float
    threshold_s: float
    target: float | None
    has_calls: bool  # false: no arrivals, so no figures, met null, no part in agents_needed
    stable: bool | None  # false: this tier's and the higher tiers' load reach N (erlang_c); null: no forecast
    service_level: float | None  # exact, with strict tier priority, under service_level_formula
    pooled_service_level: float | None  # the same model as if every tier waited in one FIFO line
    mean_wait_s: float | None  # erlang_c: Cobham's mean wait over all of the tier's calls
    asa_s: float | None  # the answered calls' mean wait
    p_abandon: float | None  # erlang_a: the chance a call of this tier abandons
    met: bool | None
    agents_needed: int | None  # null: no target (blacklisted), no calls, or out of reach


class ForecastView(Struct, kw_only=True):
    queue: str | None  # null: every queue, as one agent pool
    model: so.Model
    model_text: str
    service_level_formula: str  # erlang_a: the service's sla_formula; erlang_c: every formula agrees
    generated_at: datetime
    inputs: ForecastInputsView
    agents: int | None
    agents_source: Literal["given", "needed"]
    agents_needed: int | None  # the smallest N meeting every tier's target
    stable: bool | None  # false: agents ≤ offered load, the lowest tiers have no steady state; null: no forecast
    p_wait: float | None  # 1.0 with the pool overloaded: every call waits
    asa_s: float | None
    p_abandon: float | None  # erlang_a only
    occupancy: float | None
    tiers: list[TierForecastView]
    notes: list[str]


@forecast_api.route(
    "GET",
    "/admin/forecast",
    summary="Staffing forecast per tier (Erlang C or A, strict tier priority): service level at N, agents needed",
    role="admin",
    responses={200: ForecastView},
    query=(
        QueryParam("queue", "one queue (default: all queues as one agent pool)"),
        AGENTS,
        QueryParam("window", "observation window, 15m or 60m (default 60m)", enum=tuple(WINDOWS)),
        ARRIVALS,
        *PER_TIER.values(),
        AHT,
        MODEL,
        PATIENCE,
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
    model, patience = _model_query(request, PATIENCE)
    traffic = await svc.calls.traffic(queue, WINDOWS[window])
    seen = None
    if model == "erlang_a" and patience is None and svc.history is not None:
        seen = waits_seen(await svc.history.events(traffic.start, traffic.now), queue)
    try:
        # The maths is CPU-bound (Erlang A at 1,000 agents: ~0.8 s of CPU): a thread keeps
        # the serving loop turning (it gets the GIL back every switch interval).
        outcome = await asyncio.to_thread(
            plan,
            traffic,
            WINDOWS[window],
            svc.settings,
            total=total,
            per_tier=per_tier,
            aht_given=aht_given,
            agents=agents,
            model=model,
            patience_given=patience,
            waits=seen,
        )
    except ValueError as exc:  # a combination the models cannot carry (see admin/forecast.py)
        raise ApiError(422, "invalid_forecast", str(exc)) from None
    return json_response(_view(queue, window, traffic, outcome, agents))


class DayPlanView(Struct, kw_only=True):
    date: date
    queue: str | None
    days_averaged: list[str]  # the same weekdays in the archive the curve averages
    aht_source: Literal["given", "archive"]
    plan: DayPlan


DATE = QueryParam("date", "the day to plan, YYYY-MM-DD (the archive's same weekdays before it make the curve)")
PLAN_AHT = QueryParam("aht_s", "average handle time in seconds (default: the archived days')", number=(1.0, MAX_AHT_S))
PLAN_PATIENCE = QueryParam("patience_s", "erlang_a: mean patience in seconds (required)", number=(1.0, MAX_PATIENCE_S))


@forecast_api.route(
    "GET",
    "/admin/forecast/plan",
    summary="Agents needed per 15-minute interval of a day, from the same weekday's average in the archive",
    role="admin",
    responses={200: DayPlanView, 422: None},
    query=(DATE, QueryParam("queue", "one queue (default: all queues as one pool)"), PLAN_AHT, MODEL, PLAN_PATIENCE),
)
async def get_day_plan(request: web.Request) -> web.Response:
    svc = services(request)
    day = _date(request.query.get("date"))
    queue = request.query.get("queue")
    model, patience = _model_query(request, PLAN_PATIENCE)
    if model == "erlang_a" and patience is None:
        raise ApiError(422, "invalid_query", "model=erlang_a needs patience_s")
    if svc.history is None:
        raise ApiError(
            422, "no_history", "the history archive is off: a plan needs past days (or use the CLI's --arrivals CSV)"
        )
    try:
        history = await curves.weekday_average(svc.history, day, svc.settings.timezone, queue)
    except ScenarioError as exc:
        raise ApiError(422, exc.code, exc.message) from None
    aht = query_number(request, PLAN_AHT)
    source: Literal["given", "archive"] = "given"
    if aht is None:
        if history.aht_s is None:
            raise ApiError(422, "no_aht", "no call ended on the archived days: give aht_s")
        aht, source = history.aht_s, "archive"
    try:
        # 96 intervals' staffing searches (seconds under Erlang A): off the serving loop.
        plan = await asyncio.to_thread(day_plan, history.curve, aht, svc.settings, model, patience)
    except ValueError as exc:
        raise ApiError(422, "invalid_query", str(exc)) from None
    return json_response(DayPlanView(date=day, queue=queue, days_averaged=history.days, aht_source=source, plan=plan))


def _date(raw: str | None) -> date:
    if raw is None:
        raise ApiError(422, "invalid_query", "date (YYYY-MM-DD) is required")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ApiError(422, "invalid_query", f"date must be YYYY-MM-DD, not {raw!r}") from None


def _model_query(request: web.Request, patience_param: QueryParam) -> tuple[so.Model, float | None]:
    """`model` and `patience_s` as both forecasts read them: patience only with erlang_a."""
    model: so.Model = (
        "erlang_a" if query_choice(request, MODEL.name, so.MODELS, so.DEFAULT_MODEL) == "erlang_a" else "erlang_c"
    )
    patience = query_number(request, patience_param)
    if patience is not None and model != "erlang_a":
        raise ApiError(422, "invalid_query", "patience_s goes with model=erlang_a")
    return model, patience


def _view(queue: str | None, window: ForecastWindow, traffic: Traffic, p: Plan, agents: int | None) -> ForecastView:
    inputs = ForecastInputsView(
        window=window,
        window_start=ts(traffic.start),
        window_s=round(traffic.span_s, 3),
        arrivals_per_hour=round(sum(p.rates.values()), 3),
        aht_s=None if p.aht is None else round(p.aht, 3),
        aht_source=p.aht_source,
        ended_in_window=traffic.ended,
        load_erlangs=None if p.load is None else round(p.load, 4),
        patience_s=None if p.patience is None else round(p.patience, 3),
        patience_source=p.patience_source,
        tiers=[
            TierInputView(
                tier=d.tier,
                arrivals_per_hour=round(p.rates[d.tier], 3),
                source=p.sources[d.tier],
                arrived_in_window=traffic.arrived.get(d.tier, 0),
                threshold_s=d.threshold_s,
                target=d.target,
            )
            for d in p.demands
        ],
    )
    by_tier = {} if p.outlook is None else {t.tier: t for t in p.outlook.tiers}
    rows = []
    for d in p.demands:
        figures = by_tier.get(d.tier)
        rows.append(
            TierForecastView(
                tier=d.tier,
                arrivals_per_hour=round(p.rates[d.tier], 3),
                threshold_s=d.threshold_s,
                target=d.target,
                has_calls=d.arrivals_per_s > 0,
                stable=None if figures is None else figures.stable,
                service_level=None if figures is None else _round(figures.service_level, 6),
                pooled_service_level=None if figures is None else _round(figures.pooled_service_level, 6),
                mean_wait_s=None if figures is None else _round(figures.mean_wait_s, 3),
                asa_s=None if figures is None else _round(figures.asa_s, 3),
                p_abandon=None if figures is None else _round(figures.p_abandon, 6),
                met=None if figures is None else figures.met,
                agents_needed=None if figures is None else figures.agents_needed,
            )
        )
    return ForecastView(
        queue=queue,
        model=p.model,
        model_text=so.MODEL_TEXT[p.model],
        service_level_formula=p.formula,
        generated_at=ts(traffic.now),
        inputs=inputs,
        agents=None if p.outlook is None else p.outlook.agents,
        agents_source="given" if agents is not None else "needed",
        agents_needed=None if p.outlook is None else p.outlook.agents_needed,
        stable=None if p.outlook is None else p.outlook.stable,
        p_wait=None if p.outlook is None else _round(p.outlook.p_wait, 6),
        asa_s=None if p.outlook is None else _round(p.outlook.asa_s, 3),
        p_abandon=None if p.outlook is None else _round(p.outlook.p_abandon, 6),
        occupancy=None if p.outlook is None else _round(p.outlook.occupancy, 6),
        tiers=rows,
        notes=p.notes,
    )


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
