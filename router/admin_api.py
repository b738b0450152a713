"""`/admin` and `/metrics`: what supervisors read (service level, callbacks, the dashboard,
Prometheus) and how the CRM feeds tiers. The forecast is forecast_api.py.

The reload streams its body to a temporary file, bounded by `max_reload_bytes`, and hands
the file to the tier store, which parses it off the event loop and swaps atomically.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal, cast, get_args

from aiohttp import web

from tierline.admin import dashboard, metrics
from tierline.queue.errors import Unavailable
from tierline.queue.paging import MAX_PAGE, in_turns
from tierline.queue.redis_link import open_links
from tierline.queue.service_level import FORMULAS, Window
from tierline.router.plumbing.bodies import json_response, query_choice, query_int, read_json, receiving
from tierline.router.plumbing.context import ARCHIVER, SERVICES, services
from tierline.router.plumbing.endpoints import EndpointTable, QueryParam
from tierline.router.plumbing.errors import ApiError
from tierline.router.plumbing.gate import LATENCY_BOUNDS, REQUEST_FIGURES, SHED
from tierline.router.plumbing.messages import (
    CallbackListView,
    SlaView,
    TierEditBody,
    TierRecordView,
    callback_view,
    record_view,
    sla_view,
)
from tierline.router.plumbing.params import path_param
from tierline.tiers.freshness import TierFreshness
from tierline.tiers.model import parse_tier
from tierline.tiers.parse import BadTierFile
from tierline.tiers.reload import ReloadResult

admin = EndpointTable()

WINDOWS: tuple[Window, ...] = get_args(Window)
CALLBACK_FILTERS = ("open", "overdue", "done")
LIMIT = QueryParam("limit", f"at most this many on the page (default and most: {MAX_PAGE})", integer=(1, MAX_PAGE))
CURSOR = QueryParam("cursor", "the next_cursor of the page before (default: the first page)")
TIER_FILE_TYPES = {"text/csv": "csv", "application/x-ndjson": "ndjson", "application/jsonl": "ndjson"}


@admin.route(
    "GET",
    "/admin/sla",
    summary="Service level per queue × tier against its target, with waits, abandons, overflows",
    role="admin",
    responses={200: SlaView},
    query=(
        QueryParam("queue", "one queue (default: all)"),
        QueryParam("window", "15m, 60m or today (today adds the 15-minute intervals)", enum=WINDOWS),
    ),
)
async def get_sla(request: web.Request) -> web.Response:
    svc = services(request)
    window = cast(Window, query_choice(request, "window", WINDOWS, "15m"))
    report = await svc.calls.sla(request.query.get("queue"), window)
    summary = await svc.calls.callback_summary()
    formula = svc.settings.sla_formula
    body = sla_view(report, formula, FORMULAS[formula][0], svc.settings.timezone, summary)
    return json_response(body)


@admin.route(
    "GET",
    "/admin/callbacks",
    summary="Callbacks by deadline, a page at a time: open (open or assigned), overdue, or done (closed)",
    role="admin",
    responses={200: CallbackListView},
    query=(
        QueryParam("status", "open, overdue or done", enum=CALLBACK_FILTERS),
        LIMIT,
        CURSOR,
    ),
)
async def list_callbacks(request: web.Request) -> web.Response:
    which = cast(Literal["open", "overdue", "done"], query_choice(request, "status", CALLBACK_FILTERS, "open"))
    limit = query_int(request, LIMIT, default=MAX_PAGE)
    found = await services(request).calls.callback_page(which, limit, request.query.get(CURSOR.name))
    views = await in_turns(callback_view, found.callbacks)
    return json_response(CallbackListView(status=which, callbacks=views, next_cursor=found.next_cursor))


@admin.route(
    "POST",
    "/admin/tiers/reload",
    summary="Replace the whole tier table from a CSV or JSON Lines file, atomically",
    role="admin",
    body_media=tuple(TIER_FILE_TYPES),
    responses={200: ReloadResult},
)
async def reload_tiers(request: web.Request) -> web.Response:
    svc = services(request)
    fmt = TIER_FILE_TYPES.get(request.content_type)
    if fmt is None:
        raise ApiError(415, "unsupported_media_type", "send the tier file as text/csv or application/x-ndjson")
    limit = svc.settings.server.max_reload_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "payload_too_large", f"the tier file is larger than {limit} bytes")
    with tempfile.TemporaryDirectory(prefix="tierline-reload-") as folder:
        path = Path(folder) / f"tiers.{fmt}"
        size = 0
        with path.open("wb") as out:
            while True:
                # The deadline is per MiB, not for the whole file: a big file may take minutes
                # to arrive, but a client that stops sending must not hold the reload open.
                async with receiving(request):
                    chunk = await request.content.read(1 << 20)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, "payload_too_large", f"the tier file is larger than {limit} bytes")
                out.write(chunk)
        try:
            result = await svc.tiers.reload_file(path, "csv" if fmt == "csv" else "ndjson")
        except BadTierFile as exc:
            raise ApiError(422, "invalid_tier_file", str(exc)) from None
    return json_response(result)


@admin.route(
    "PUT",
    "/admin/tiers/{caller}",
    summary="Set one caller's tier (lasts until the next full reload; listed as a hand edit a grading run keeps)",
    role="admin",
    body=TierEditBody,
    responses={200: TierRecordView},
)
async def put_tier(request: web.Request) -> web.Response:
    body = await read_json(request, TierEditBody)
    caller = path_param(request, "caller")
    tier = parse_tier(body.tier)
    if tier is None:
        raise ApiError(422, "invalid_tier", f"tier must be vip, mid, standard or blacklisted, not {body.tier!r}")
    record = await services(request).tiers.put(caller, tier, dict(body.crm))
    return json_response(record_view(record))


@admin.route(
    "DELETE",
    "/admin/tiers/{caller}",
    summary="Forget one caller: back to the default tier",
    role="admin",
    responses={204: None},
)
async def delete_tier(request: web.Request) -> web.Response:
    caller = path_param(request, "caller")
    await services(request).tiers.delete(caller)
    return web.Response(status=204)


# --- the live dashboard (pages and assets: admin/dashboard.py) and Prometheus (admin/metrics.py) --


@admin.route(
    "GET",
    "/admin/",
    summary="The live dashboard page (public; its script sends the admin token on its own requests)",
    role="public",
    responses={200: None},
    produces="text/html",
)
async def dashboard_page(request: web.Request) -> web.Response:
    return asset_response(dashboard.PAGE)


@admin.route("GET", "/admin", summary="Redirect to the dashboard, /admin/", role="public", responses={308: None})
async def dashboard_redirect(request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect("/admin/")


@admin.route(
    "GET",
    "/admin/static/{name}",
    summary="The dashboard's script and style sheet (public)",
    role="public",
    responses={200: None},
    produces="text/*",
)
async def dashboard_asset(request: web.Request) -> web.Response:
    return asset_response(path_param(request, "name"))


def asset_response(name: str) -> web.Response:
    """A page or asset of admin/static (the dashboard's, the workbench's) with the pages'
    security headers; 404 for a name that is not one."""
    found = dashboard.asset(name)
    if found is None:
        raise ApiError(404, "not_found", f"no dashboard asset {name!r}")
    body, kind = found
    return web.Response(body=body, content_type=kind, charset="utf-8", headers=dashboard.SECURITY_HEADERS)


@admin.route(
    "GET",
    "/metrics",
    summary=(
        "Prometheus text format: the store's call counters, waits, answered-wait histogram, callbacks and "
        "tier table freshness; this process's readiness and build"
    ),
    role="admin",
    responses={200: None},
    produces="text/plain",
)
async def get_metrics(request: web.Request) -> web.Response:
    svc = services(request)
    try:
        snapshot = await svc.calls.metrics()
        tiers = await svc.tiers.freshness()
        callbacks = await svc.calls.callback_summary()
    except Unavailable:
        # The process's own series still go out: an instance that cannot reach the store is
        # what the `TierlineStoreUnavailable` alert is for.
        body = metrics.render(None, _process_figures(request.app, ready=False))
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})
    body = metrics.render(snapshot, _process_figures(request.app, ready=True, tiers=tiers), callbacks)
    return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})


def _process_figures(app: web.Application, ready: bool, tiers: TierFreshness | None = None) -> metrics.ProcessFigures:
    """This process's series, read from the gate's counts and the Redis links (copied: a scrape
    never holds the live cells while it renders)."""
    figures = app.get(REQUEST_FIGURES)
    requests = (
        []
        if figures is None
        else [
            metrics.RouteRequests(method, row.route, list(row.by_class), list(row.buckets), row.seconds)
            for method, row in figures.rows(app)
        ]
    )
    return metrics.ProcessFigures(
        ready=ready,
        tiers=tiers,
        shed=app.get(SHED),
        requests=requests,
        latency_bounds=LATENCY_BOUNDS,
        store_errors=None if figures is None else dict(figures.store_errors),
        redis=[link.figures() for link in open_links()],
        alerts=app[SERVICES].settings.alerts,
        history=archiver.figures if (archiver := app.get(ARCHIVER)) is not None else None,
    )
