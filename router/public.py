"""The public routes (no token): liveness, readiness and this API's OpenAPI document."""

from __future__ import annotations

from aiohttp import web

from tierline.router.plumbing.bodies import json_response
from tierline.router.plumbing.context import ARCHIVER, services
from tierline.router.plumbing.endpoints import EndpointTable
from tierline.router.plumbing.messages import Health, HistoryHealth

public = EndpointTable()

OPENAPI = web.AppKey("openapi", bytes)  # the document, encoded once when the app is built


@public.route("GET", "/healthz", summary="Liveness: the process answers", role="public", responses={200: Health})
async def healthz(request: web.Request) -> web.Response:
    return json_response(Health(status="ok", store=services(request).settings.server.store.split("://")[0]))


@public.route(
    "GET",
    "/readyz",
    summary="Readiness: the store is reachable",
    role="public",
    responses={200: Health, 503: Health},
)
async def readyz(request: web.Request) -> web.Response:
    svc = services(request)
    store = svc.settings.server.store.split("://")[0]
    if not await svc.calls.ping():
        return json_response(Health(status="unavailable", store=store), 503)
    health = Health(
        status="ok", store=store, tiers_version=await svc.tiers.version(), tiers_loaded=await svc.tiers.count()
    )
    if (archiver := request.app.get(ARCHIVER)) is not None:
        figures = archiver.figures
        health.history = HistoryHealth(
            lag_events=figures.lag,
            dropped_events=figures.dropped,
            archived_events=figures.archived,
            last_commit_at=figures.last_commit_at,
            last_error=figures.last_error,
        )
    return json_response(health)


@public.route("GET", "/openapi.json", summary="This API's OpenAPI document", role="public", responses={200: None})
async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")
