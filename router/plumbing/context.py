"""What a handler can reach: the settings, the two stores, the clock and the history archive, held by the app."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from tierline.queue.clock import Clock
from tierline.queue.history.archive import Archive
from tierline.queue.history.archiver import Archiver
from tierline.queue.store import CallStore
from tierline.router.config import Settings
from tierline.router.routing import RouteCall
from tierline.tiers.store import TierStore


@dataclass(frozen=True)
class Services:
    settings: Settings
    tiers: TierStore
    calls: CallStore
    clock: Clock
    route: RouteCall  # the caller's tier, then the enqueue (routing.py)
    history: Archive | None = None  # the call history archive; None with --history off


SERVICES = web.AppKey("services", Services)
# This process's archiver, while history is on and the app runs its background tasks
# (router/app.py): /metrics and /readyz read its figures.
ARCHIVER = web.AppKey("archiver", Archiver)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]
