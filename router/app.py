"""The aiohttp application: routes from the v1 and admin tables, middlewares, the sweeper.

`build_app` wires given stores (tests pass their own clock); `open_services` picks the
stores named by the settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from importlib.metadata import PackageNotFoundError, version

import msgspec
from aiohttp import web

from tierline.admin.forecast import forecast_api
from tierline.admin.routes import admin
from tierline.queue.clock import Clock, SystemClock
from tierline.queue.memory_store import MemoryCallStore
from tierline.queue.redis_link import RedisLink, connect, is_redis_url
from tierline.queue.redis_store import RedisCallStore
from tierline.router import routing
from tierline.router.admission import SHED, Shed, make_admission_middleware
from tierline.router.auth import make_auth_middleware
from tierline.router.bodies import BODY_READ_TIMEOUT, json_response
from tierline.router.config import Settings
from tierline.router.context import SERVICES, Services, services
from tierline.router.endpoints import Endpoint, EndpointTable
from tierline.router.errors import error_middleware
from tierline.router.messages import Health
from tierline.router.openapi import build_openapi
from tierline.router.v1 import v1
from tierline.tiers.memory import MemoryTierStore
from tierline.tiers.redis_store import RedisTierStore

log = logging.getLogger("tierline")

public = EndpointTable()

try:
    VERSION = version("tierline")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0.0.0"


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


ENDPOINTS: list[Endpoint] = [*v1.endpoints, *admin.endpoints, *forecast_api.endpoints, *public.endpoints]
OPENAPI = web.AppKey("openapi", bytes)


def open_services(settings: Settings, clock: Clock | None = None) -> Services:
    clock = clock or SystemClock()
    server = settings.server
    if server.store == "memory":
        tiers = MemoryTierStore(default_tier=settings.default_tier, max_reject_ratio=settings.reload_max_reject_ratio)
        calls = MemoryCallStore(settings, clock)
        return Services(settings, tiers, calls, clock, routing.two_steps(tiers, calls))
    if is_redis_url(server.store):
        link = RedisLink(connect(server.store, server.redis_timeout_s), server.redis_timeout_s)
        redis_tiers = RedisTierStore(
            link,
            server.redis_namespace,
            default_tier=settings.default_tier,
            max_reject_ratio=settings.reload_max_reject_ratio,
        )
        redis_calls = RedisCallStore(link, settings, clock, server.redis_namespace)
        route = (
            routing.two_steps(redis_tiers, redis_calls)
            if link.cluster
            else routing.one_script(redis_tiers, redis_calls, settings.default_tier)
        )
        return Services(settings, redis_tiers, redis_calls, clock, route)
    raise ValueError(f"unknown store {server.store!r}: use 'memory', redis://host:port/db or redis+cluster://host:port")


def build_app(svc: Services, sweeper: bool = True) -> web.Application:
    server = svc.settings.server
    shed = Shed()
    app = web.Application(
        client_max_size=server.max_body_bytes,
        middlewares=[
            error_middleware,
            make_auth_middleware(server.api_token, server.admin_token),
            make_admission_middleware(
                server.max_in_flight, 2 * server.redis_timeout_s if is_redis_url(server.store) else None, shed
            ),
        ],
    )
    app[SERVICES] = svc
    app[SHED] = shed
    app[BODY_READ_TIMEOUT] = server.body_read_timeout_s
    app[OPENAPI] = msgspec.json.encode(build_openapi(ENDPOINTS, VERSION))
    for table in (v1, admin, forecast_api, public):
        table.add_to(app)
    if sweeper:
        app.cleanup_ctx.append(_sweeper)
    app.on_cleanup.append(_close_stores)
    return app


async def _sweeper(app: web.Application) -> AsyncIterator[None]:
    """Overflows and ring-no-answer happen on time even when nobody asks (at most 1 s late)."""
    svc = app[SERVICES]

    async def loop() -> None:
        while True:
            try:
                await svc.calls.sweep()
            except Exception:
                log.exception("sweep failed; retrying")
            await asyncio.sleep(svc.settings.server.sweep_interval_s)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _close_stores(app: web.Application) -> None:
    await app[SERVICES].calls.close()
