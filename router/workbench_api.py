"""`/workbench/`: the back office's callback workbench (issue 20), a public page and assets like
the dashboard's: its script, style sheet and language catalogues are the dashboard's assets
(`/admin/static/…`, public), served by admin/dashboard.py with the same strict headers.

The page holds no data: its script asks for the agent id and token (kept in the tab) and does
everything through the API with that token — `POST /v1/agents/{id}/next` with `only:
"callbacks"` and `POST /v1/callbacks/{id}/outcome`, both open to the backoffice token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aiohttp import web
from msgspec import UNSET, Meta, Struct, UnsetType

from tierline.admin import dashboard
from tierline.router.admin_api import asset_response
from tierline.router.plumbing.bodies import json_response
from tierline.router.plumbing.context import services
from tierline.router.plumbing.endpoints import EndpointTable
from tierline.router.plumbing.messages import ts
from tierline.tiers.model import Tier

workbench_api = EndpointTable()


@workbench_api.route(
    "GET",
    "/workbench/",
    summary="The back office's callback workbench (public; its script sends the agent's token on its own requests)",
    role="public",
    responses={200: None},
    produces="text/html",
)
async def workbench_page(request: web.Request) -> web.Response:
    return asset_response(dashboard.WORKBENCH_PAGE)


@workbench_api.route(
    "GET", "/workbench", summary="Redirect to the workbench, /workbench/", role="public", responses={308: None}
)
async def workbench_redirect(request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect("/workbench/")


# --- the team lead's workload view (issue 20 item 3) -------------------------------------------


class QueueWorkloadView(Struct, kw_only=True):
    queue: str
    active: Annotated[int, Meta(description="callbacks open or with an agent")]
    overdue: Annotated[int, Meta(description="of those, past their deadline")]
    at_risk: Annotated[int, Meta(description="of those, with too little opening time before the deadline")]
    by_hour: Annotated[
        list[int],
        Meta(description="by deadline, one count per span of `hours` (the rest of this hour, then each hour)"),
    ]
    later: Annotated[int, Meta(description="deadline beyond the last span")]


class HolderView(Struct, kw_only=True):
    agent_id: str
    callback_id: str
    caller: str
    queue: str
    tier: Tier
    deadline: datetime
    assigned_at: datetime | UnsetType = UNSET


class WorkloadView(Struct, kw_only=True):
    generated_at: datetime
    timezone: Annotated[str, Meta(description="the service's zone, for showing the hours")]
    hours: Annotated[
        list[datetime], Meta(description="the edges of the by_hour spans: now, then each whole hour up to 24 h ahead")
    ]
    queues: list[QueueWorkloadView]
    holders: Annotated[list[HolderView], Meta(description="every agent holding a callback now, and which")]


@workbench_api.route(
    "GET",
    "/admin/workload",
    summary="The team lead's view of callbacks: per queue, open by hour of deadline over the next 24 h, at risk and "
    "overdue; who holds what now",
    role="admin",
    responses={200: WorkloadView},
)
async def workload(request: web.Request) -> web.Response:
    svc = services(request)
    got = await svc.calls.callback_workload()
    view = WorkloadView(
        generated_at=ts(got.now),
        timezone=svc.settings.timezone,
        hours=[ts(edge) for edge in got.edges],
        queues=[
            QueueWorkloadView(
                queue=q.queue, active=q.active, overdue=q.overdue, at_risk=q.at_risk, by_hour=q.by_hour, later=q.later
            )
            for q in got.queues
        ],
        holders=[
            HolderView(
                agent_id=h.agent_id,
                callback_id=h.callback.callback_id,
                caller=h.callback.caller,
                queue=h.callback.queue,
                tier=h.callback.tier,
                deadline=ts(h.callback.deadline),
                assigned_at=UNSET if h.callback.assigned_at is None else ts(h.callback.assigned_at),
            )
            for h in got.holders
        ],
    )
    return json_response(view)
