"""`/admin/grading`: the last applied grading run's report (issue 17), kept in the tier store.

`tierline grade --apply` saves it after the reload swapped: through the service (`--url`) with
PUT, straight into Redis (`--store`) with the store's `save_grading`. Every process of a shared
store then serves the same report; the memory store keeps it until the process ends.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from tierline.router.plumbing.bodies import read_json
from tierline.router.plumbing.context import services
from tierline.router.plumbing.endpoints import EndpointTable
from tierline.router.plumbing.errors import ApiError
from tierline.tiers.grading.run import GradingReport

grading_api = EndpointTable()


@grading_api.route(
    "GET",
    "/admin/grading",
    summary="The last applied grading run's report: as_of, methods, cut-offs, counts per tier and segment,"
    " migration against the table it replaced",
    role="admin",
    responses={200: GradingReport, 404: None},
)
async def get_grading(request: web.Request) -> web.Response:
    found = await services(request).tiers.grading()
    if found is None:
        raise ApiError(404, "no_grading", "no grading run has been applied yet (tierline grade ... --apply)")
    return web.Response(body=found, headers={"Content-Type": "application/json"})


@grading_api.route(
    "PUT",
    "/admin/grading",
    summary="Keep a grading run's report (tierline grade --apply --url sends it once the reload swapped)",
    role="admin",
    body=GradingReport,
    responses={204: None},
)
async def put_grading(request: web.Request) -> web.Response:
    report = await read_json(request, GradingReport)
    await services(request).tiers.save_grading(msgspec.json.encode(report))
    return web.Response(status=204)
