"""The composition root: the one place that picks the stores and assembles the app.

`open_services` opens the stores named by the settings; `build_app` wires given services
(tests pass their own clock) into the route tables of both surfaces, the gate around every handler and
the sweeper. Nothing else constructs a store or an application.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from importlib.metadata import PackageNotFoundError, version

import msgspec
from aiohttp import web

from tierline.queue.clock import Clock, SystemClock
from tierline.queue.history.archive import Archive
from tierline.queue.history.archive_worker import ArchiveWorker
from tierline.queue.history.archiver import Archiver, EventSource, Ingester, MemorySource, adopt_epoch, next_retry
from tierline.queue.history.archiver_redis import RedisStreamSource
from tierline.queue.memory_store import MemoryCallStore
from tierline.queue.redis_link import RedisLink, connect, is_redis_url
from tierline.queue.redis_store import RedisCallStore
from tierline.queue.store import CallStore
from tierline.router import routing
from tierline.router.admin_api import admin
from tierline.router.archives import open_archive, worker_command
from tierline.router.config import Settings, history_target
from tierline.router.forecast_api import forecast_api
from tierline.router.grading_api import grading_api
from tierline.router.plumbing.bodies import BODY_READ_TIMEOUT
from tierline.router.plumbing.context import ARCHIVER, SERVICES, Services
from tierline.router.plumbing.endpoints import Endpoint
from tierline.router.plumbing.gate import REQUEST_FIGURES, SHED, Gate, no_route
from tierline.router.plumbing.openapi import build_openapi
from tierline.router.public import OPENAPI, public
from tierline.router.reports_api import reports_api
from tierline.router.simulate_api import simulate_api, simulation_jobs
from tierline.router.v1 import v1
from tierline.router.workbench_api import workbench_api
from tierline.tiers.memory import MemoryTierStore
from tierline.tiers.redis_store import RedisTierStore

log = logging.getLogger("tierline")

try:
    VERSION = version("tierline")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0.0.0"

HISTORY_REDIS_TIMEOUT_S = 2.0  # the archiver's own Redis link: batches, not calls, so a longer deadline
HISTORY_START_S = 5.0  # how long start-up waits for the archive before serving without it
OUTBOX_SWEEP_S = 30.0  # how often the sweeper looks for tier-edit events left in outboxes

TABLES = (v1, admin, forecast_api, grading_api, reports_api, simulate_api, workbench_api, public)
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
        return Services(settings, tiers, calls, clock, routing.two_steps(tiers, calls), open_history(settings))
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
        return Services(settings, redis_tiers, redis_calls, clock, route, open_history(settings))
    raise ValueError(f"unknown store {server.store!r}: use 'memory', redis://host:port/db or redis+cluster://host:port")


def open_history(settings: Settings) -> Archive | None:
    """The archive the settings name (not yet opened), or None with history off."""
    target = history_target(settings.server)
    return None if target is None else open_archive(target, settings.timezone)


def history_ingester(settings: Settings, calls: CallStore) -> Ingester | None:
    """The memory store's batches are committed by a worker process (archive_worker.py: the
    archive's work is then off the serving process's core); None: the archiver commits them."""
    target = history_target(settings.server)
    if target is None or not isinstance(calls, MemoryCallStore) or not settings.server.history_worker:
        return None
    return ArchiveWorker(worker_command(target, settings.timezone))


def history_source(settings: Settings, calls: CallStore) -> EventSource:
    """Where this process's archiver reads events: the memory store's buffer, or the Redis
    stream through a link of its own (a slow archive batch never trips the call path's breaker)."""
    if isinstance(calls, MemoryCallStore):
        return MemorySource(calls.events)
    server = settings.server
    link = RedisLink(connect(server.store, HISTORY_REDIS_TIMEOUT_S), HISTORY_REDIS_TIMEOUT_S, purpose="history")
    return RedisStreamSource(link, server.redis_namespace, claim_idle_s=server.history_claim_idle_s)


def open_archiver(settings: Settings) -> Archiver:
    """`tierline archive`: an archiver on the Redis stream the settings name, without a call store."""
    archive = open_history(settings)
    if archive is None or not is_redis_url(settings.server.store):
        raise ValueError("an archiver of its own needs a Redis store and a history archive")
    server = settings.server
    link = RedisLink(connect(server.store, HISTORY_REDIS_TIMEOUT_S), HISTORY_REDIS_TIMEOUT_S, purpose="history")
    source = RedisStreamSource(link, server.redis_namespace, claim_idle_s=server.history_claim_idle_s)
    return Archiver(source, archive, batch=server.history_batch)


def build_app(svc: Services, sweeper: bool = True) -> web.Application:
    server = svc.settings.server
    gate = Gate(
        server.api_token,
        server.admin_token,
        server.max_in_flight,
        2 * server.redis_timeout_s if is_redis_url(server.store) else None,
        server.backoffice_token,
    )
    app = web.Application(client_max_size=server.max_body_bytes)
    app[SERVICES] = svc
    app[SHED] = gate.shed
    app[REQUEST_FIGURES] = gate.figures
    app[BODY_READ_TIMEOUT] = server.body_read_timeout_s
    app[OPENAPI] = msgspec.json.encode(build_openapi(ENDPOINTS, VERSION))
    app.cleanup_ctx.append(simulation_jobs)  # what-if runs' worker process, started on first use
    for table in TABLES:
        table.add_to(app, gate.wrap)
    app.router.add_route("*", "/{path:.*}", gate.wrap(no_route, None, "/"))  # last: what no route matched
    if sweeper and svc.history is not None:
        # Before the sweeper: the store's event epoch is claimed from the archive first.
        app[ARCHIVER] = Archiver(
            history_source(svc.settings, svc.calls),
            svc.history,
            batch=server.history_batch,
            ingester=history_ingester(svc.settings, svc.calls),
        )
        app.cleanup_ctx.append(_history)
    if sweeper:
        app.cleanup_ctx.append(_sweeper)
    app.on_cleanup.append(_close_stores)
    return app


async def _sweeper(app: web.Application) -> AsyncIterator[None]:
    """Overflows and ring-no-answer happen on time even when nobody asks (at most 1 s late)."""
    svc = app[SERVICES]

    async def loop() -> None:
        outboxes_due = 0.0
        while True:
            try:
                await svc.calls.sweep()
            except Exception:
                log.exception("sweep failed; retrying")
            if isinstance(svc.tiers, RedisTierStore) and (now := time.monotonic()) >= outboxes_due:
                # Tier-edit events a process left in outboxes when it died (tiers/redis_events.py).
                outboxes_due = now + OUTBOX_SWEEP_S
                try:
                    await svc.tiers.move_outboxes()
                except Exception as error:
                    log.warning("moving tier-edit outboxes failed; retrying: %s", error)
            await asyncio.sleep(svc.settings.server.sweep_interval_s)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _history(app: web.Application) -> AsyncIterator[None]:
    """Opens the archive, claims the store's event epoch from it, and archives in the background.

    The claim is waited for (briefly) before the app serves, so the memory store's first event
    already carries the claimed epoch; an archive unreachable at start delays nothing: the
    store keeps its clock-based epoch and the loop keeps trying (queue/history/events.py).
    """
    svc, archiver = app[SERVICES], app[ARCHIVER]
    archive = archiver.archive

    async def claim() -> None:
        await archive.open()
        epoch = await archive.claim_epoch(svc.clock.now())
        if isinstance(svc.calls, MemoryCallStore):
            adopt_epoch(svc.calls.events, epoch)
        elif isinstance(svc.calls, RedisCallStore):
            await svc.calls.open(epoch_floor=epoch)

    async def loop(claimed: bool) -> None:
        retry: float | None = None
        while not claimed:
            try:
                await claim()
                claimed = True
            except Exception as error:
                if retry is None:
                    log.warning("the history archive is unreachable, retrying: %s", error)
                retry = next_retry(retry)
                await asyncio.sleep(retry)
        await archiver.run()

    try:
        await asyncio.wait_for(claim(), HISTORY_START_S)
        claimed = True
    except Exception as error:
        log.warning("the history archive did not open at start (%s); archiving once it does", error)
        claimed = False
    task = asyncio.create_task(loop(claimed))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    with contextlib.suppress(Exception):  # what is left, if the archive is there
        await asyncio.wait_for(archiver.drain(), HISTORY_START_S)
    await archiver.close()


async def _close_stores(app: web.Application) -> None:
    await app[SERVICES].calls.close()
