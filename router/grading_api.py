"""`/admin/grading`: the last applied grading run's report (issue 17), kept in the tier store.

`tierline grade --apply` saves it after the reload swapped: through the service (`--url`) with
PUT, straight into Redis (`--store`) with the store's `save_grading`. Every process of a shared
store then serves the same report; the memory store keeps it until the process ends.

A run through the service also reads here what it would read from the store directly: the live
table it compares with (`/admin/grading/table`, streamed CSV) and the hand edits it keeps
(`/admin/grading/edits`; DELETE once a `--reset-edits` run is applied).
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from tierline.router.plumbing.bodies import json_response, read_json
from tierline.router.plumbing.context import services
from tierline.router.plumbing.endpoints import EndpointTable
from tierline.router.plumbing.errors import ApiError
from tierline.router.plumbing.gate import begin_stream
from tierline.tiers.grading.run import GradingReport
from tierline.tiers.model import Tier

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


# --- what a grading run reads through the service (`tierline grade --url`) ---------------------


class EditView(msgspec.Struct, frozen=True):
    caller: str
    tier: Tier


class EditListView(msgspec.Struct, frozen=True):
    """The hand edits a grading run keeps: callers set by `PUT /admin/tiers/{caller}` since a run
    last reset them (a `DELETE` of the caller takes it out), by number."""

    edits: list[EditView]
    count: int


class EditsClearedView(msgspec.Struct, frozen=True):
    cleared: int


TABLE_HEADER = b"caller,tier\n"


@grading_api.route(
    "GET",
    "/admin/grading/table",
    summary="The live tier table as CSV (caller,tier), streamed a batch at a time: what a grading run"
    " through the service compares with (tierline grade --url)",
    role="admin",
    responses={200: None},
    produces="text/csv",
)
async def get_live_table(request: web.Request) -> web.StreamResponse:
    # Streamed: a million rows never become one body in memory (one batch of ~16,000 at a time).
    # A store error after the first batch cuts the chunked body short: the client sees an
    # incomplete payload, never a short table passed off as whole.
    rows = services(request).tiers.table_rows()
    first = await anext(rows, None)  # a store that cannot answer at all still gets its 503
    response = web.StreamResponse(headers={"Content-Type": "text/csv; charset=utf-8"})
    response.enable_chunked_encoding()
    await begin_stream(request, response)
    try:
        await response.write(TABLE_HEADER)
        if first is not None:
            await response.write("".join(f"{caller},{tier}\n" for caller, tier in first).encode())
            async for batch in rows:
                await response.write("".join(f"{caller},{tier}\n" for caller, tier in batch).encode())
    except Exception:
        # The answer has begun: no error body can follow it. The connection is dropped before
        # the last chunk, so the client reads a body cut short, never a smaller table.
        if request.transport is not None:
            request.transport.abort()
        raise
    await response.write_eof()
    return response


@grading_api.route(
    "GET",
    "/admin/grading/edits",
    summary="The hand edits (PUT /admin/tiers/{caller}) since a grading run last reset them: a grading"
    " run keeps their tiers, after the blacklist flag",
    role="admin",
    responses={200: EditListView},
)
async def get_edits(request: web.Request) -> web.Response:
    found = await services(request).tiers.edits()
    edits = [EditView(caller, tier) for caller, tier in sorted(found.items())]
    return json_response(EditListView(edits=edits, count=len(edits)))


@grading_api.route(
    "DELETE",
    "/admin/grading/edits",
    summary="Forget the hand edits (tierline grade --reset-edits, once its run is applied): the next run's"
    " rules decide those callers",
    role="admin",
    responses={200: EditsClearedView},
)
async def clear_edits(request: web.Request) -> web.Response:
    return json_response(EditsClearedView(cleared=await services(request).tiers.clear_edits()))
