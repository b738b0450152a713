"""The IVR and agent API (`/v1`): route calls, follow them, hand agents their next work.

Each handler is the whole data flow of its request: decode the body, ask the store once
(for a new call: the caller's tier, then the queue; see routing.py), encode the answer.
"""

from __future__ import annotations

from aiohttp import web

from tierline.router.plumbing.bodies import json_response, read_json
from tierline.router.plumbing.context import services
from tierline.router.plumbing.endpoints import EndpointTable
from tierline.router.plumbing.errors import ApiError
from tierline.router.plumbing.gate import TOKEN
from tierline.router.plumbing.messages import (
    AnswerBody,
    CallbackView,
    CallView,
    EmptyBody,
    NextBody,
    OutcomeBody,
    RequeueBody,
    RouteCallBody,
    TierRecordView,
    WorkView,
    call_view,
    callback_view,
    record_view,
    work_view,
)
from tierline.router.plumbing.params import path_param
from tierline.tiers.phone import normalise_caller

v1 = EndpointTable()


@v1.route(
    "POST",
    "/v1/calls",
    summary="Route a new call: look up the caller's tier and queue it (idempotent per call_id)",
    role="api",
    body=RouteCallBody,
    responses={201: CallView, 200: CallView},
)
async def route_call(request: web.Request) -> web.Response:
    body = await read_json(request, RouteCallBody)
    svc = services(request)
    caller = normalise_caller(body.caller)
    snapshot, created = await svc.route(body.call_id, caller, body.queue)
    return json_response(call_view(snapshot), 201 if created else 200)


@v1.route("GET", "/v1/calls/{call_id}", summary="A call as it is now", role="api", responses={200: CallView})
async def get_call(request: web.Request) -> web.Response:
    snapshot = await services(request).calls.get_call(path_param(request, "call_id"))
    return json_response(call_view(snapshot))


@v1.route(
    "POST",
    "/v1/calls/{call_id}/answer",
    summary="An agent answered the call",
    role="api",
    body=AnswerBody,
    responses={200: CallView},
)
async def answer_call(request: web.Request) -> web.Response:
    body = await read_json(request, AnswerBody)
    snapshot = await services(request).calls.answer(path_param(request, "call_id"), body.agent_id)
    return json_response(call_view(snapshot))


@v1.route(
    "POST",
    "/v1/calls/{call_id}/requeue",
    summary="Ring-no-answer: the call goes back to its original place",
    role="api",
    body=RequeueBody,
    responses={200: CallView},
)
async def requeue_call(request: web.Request) -> web.Response:
    body = await read_json(request, RequeueBody)
    snapshot = await services(request).calls.requeue(path_param(request, "call_id"), body.agent_id)
    return json_response(call_view(snapshot))


@v1.route(
    "POST",
    "/v1/calls/{call_id}/abandon",
    summary="The caller hung up before being answered",
    role="api",
    body=EmptyBody,
    responses={200: CallView},
)
async def abandon_call(request: web.Request) -> web.Response:
    await read_json(request, EmptyBody)
    snapshot = await services(request).calls.abandon(path_param(request, "call_id"))
    return json_response(call_view(snapshot))


@v1.route(
    "POST",
    "/v1/calls/{call_id}/callback",
    summary="The waiting caller takes the callback offer: the call leaves the line as callback_requested and a "
    "callback (reason requested) keeps its place (idempotent; 409 not_waiting, 409 callback_exists)",
    role="api",
    body=EmptyBody,
    responses={200: CallView},
)
async def request_callback(request: web.Request) -> web.Response:
    await read_json(request, EmptyBody)
    snapshot = await services(request).calls.request_callback(path_param(request, "call_id"))
    return json_response(call_view(snapshot))


@v1.route(
    "POST",
    "/v1/calls/{call_id}/end",
    summary="An answered call ended",
    role="api",
    body=EmptyBody,
    responses={200: CallView},
)
async def end_call(request: web.Request) -> web.Response:
    await read_json(request, EmptyBody)
    snapshot = await services(request).calls.end(path_param(request, "call_id"))
    return json_response(call_view(snapshot))


@v1.route(
    "POST",
    "/v1/agents/{agent_id}/next",
    summary="A free agent asks for work: the best waiting call, else the callback due soonest; "
    "only: callbacks takes the callback due soonest and never a call (the back office; its token must send it)",
    role="backoffice",
    body=NextBody,
    responses={200: WorkView, 204: None},
)
async def next_work(request: web.Request) -> web.Response:
    body = await read_json(request, NextBody)
    agent_id = path_param(request, "agent_id")
    if body.only is None and request.get(TOKEN) == "backoffice":
        raise ApiError(403, "forbidden", "the backoffice token takes callbacks only: send only: callbacks")
    work = await services(request).calls.next_work(agent_id, body.queues, body.only)
    if work is None:
        return web.Response(status=204)
    return json_response(work_view(work))


@v1.route(
    "GET",
    "/v1/callers/{caller}",
    summary="The caller's tier record (unknown callers get the default tier, known: false)",
    role="backoffice",
    responses={200: TierRecordView},
)
async def get_caller(request: web.Request) -> web.Response:
    caller = path_param(request, "caller")
    record = await services(request).tiers.lookup(caller)
    return json_response(record_view(record))


@v1.route(
    "POST",
    "/v1/callbacks/{callback_id}/outcome",
    summary="Record what came of a callback attempt: only by the agent holding it (else 409 not_assigned); "
    "a retried outcome is a no-op 200; rescheduled takes call_at (the customer's time, uses no attempt)",
    role="backoffice",
    body=OutcomeBody,
    responses={200: CallbackView},
)
async def callback_outcome(request: web.Request) -> web.Response:
    body = await read_json(request, OutcomeBody)
    if body.call_at is not None and body.outcome != "rescheduled":
        raise ApiError(422, "invalid_field", "call_at is given only with the outcome rescheduled")
    callback = await services(request).calls.callback_outcome(
        path_param(request, "callback_id"),
        body.outcome,
        body.agent_id,
        body.note,
        None if body.call_at is None else body.call_at.timestamp(),
    )
    return json_response(callback_view(callback))
