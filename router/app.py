"""The composition root: the one place that picks the stores and assembles the app.

`open_services` opens the stores named by the settings; `build_app` wires given services
(tests pass their own clock) into the route tables of both surfaces, the gate around every handler and
the sweeper. Nothing else constructs a store or an application.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from importlib.metadata import PackageNotFoundError, version

import msgspec
from aiohttp import web

from tierline.queue.clock import Clock, SystemClock
from tierline.queue.memory_store import MemoryCallStore
from tierline.queue.redis_link import RedisLink, connect, is_redis_url
from tierline.queue.redis_store import RedisCallStore
from tierline.router import routing
from tierline.router.admin_api import admin
from tierline.router.config import Settings
from tierline.router.forecast_api import forecast_api
from tierline.router.plumbing.bodies import BODY_READ_TIMEOUT
from tierline.router.plumbing.context import SERVICES, Services
from tierline.router.plumbing.endpoints import Endpoint
from tierline.router.plumbing.gate import REQUEST_FIGURES, SHED, Gate, no_route
from tierline.router.plumbing.openapi import build_openapi
from tierline.router.public import OPENAPI, public
from tierline.router.v1 import v1
from tierline.tiers.memory import MemoryTierStore
from tierline.tiers.redis_store import RedisTierStore

log = logging.getLogger("tierline")

try:
    VERSION = version("tierline")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0.0.0"

TABLES = (v1, admin, forecast_api, public)
ENDPOINTS: list[Endpoint] = [endpoint for table in TABLES for endpoint in table.endpoints]


def open_services(settings: Settings, clock: Clock | None = None) -> Services:
    clock = clock or SystemClock()
    server = settings.server
    if server.store == "memory":
        calls = MemoryCallStore(settings, clock)
        tiers = MemoryTierStore(
            default_tier=settings.default_tier,
            max_reject_ratio=settings.reload_max_reject_ratio,
            on_event=calls.record_tier_event,
        )
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
    gate = Gate(
        server.api_token,
        server.admin_token,
        server.max_in_flight,
        2 * server.redis_timeout_s if is_redis_url(server.store) else None,
    )
    app = web.Application(client_max_size=server.max_body_bytes)
    app[SERVICES] = svc
    app[SHED] = gate.shed
    app[REQUEST_FIGURES] = gate.figures
    app[BODY_READ_TIMEOUT] = server.body_read_timeout_s
    app[OPENAPI] = msgspec.json.encode(build_openapi(ENDPOINTS, VERSION))
    for table in TABLES:
        table.add_to(app, gate.wrap)
    app.router.add_route("*", "/{path:.*}", gate.wrap(no_route, None, "/"))  # last: what no route matched
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
