"""The public routes (no token): liveness, readiness and this API's OpenAPI document."""

from __future__ import annotations

from aiohttp import web

from tierline.router.plumbing.bodies import json_response
from tierline.router.plumbing.context import services
from tierline.router.plumbing.endpoints import EndpointTable
from tierline.router.plumbing.messages import Health

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
    return json_response(
        Health(status="ok", store=store, tiers_version=await svc.tiers.version(), tiers_loaded=await svc.tiers.count())
    )


@public.route("GET", "/openapi.json", summary="This API's OpenAPI document", role="public", responses={200: None})
async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")
