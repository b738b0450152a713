"""Every id in a path is held to one rule (router/plumbing/params.py), before any store is asked.

An id (call_id, agent_id, callback_id) that could never have been accepted in a body is
422 `invalid_field` naming the parameter, on every route that takes one; a caller that is
not a phone number is 422 `invalid_caller`. Nothing changes on a refusal.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web

from tests.http.conftest import Api
from tierline.router.app import ENDPOINTS
from tierline.router.plumbing.endpoints import EndpointTable, path_params
from tierline.router.plumbing.params import PATH_PARAMS

# A body each route accepts, so only the path can be at fault.
BODIES: dict[str, Any] = {
    "/v1/calls/{call_id}/answer": {"agent_id": "a1"},
    "/v1/callbacks/{callback_id}/outcome": {"outcome": "completed", "agent_id": "a1"},
    "/admin/tiers/{caller}": {"tier": "vip"},
}
BAD_IDS = ["has space", "x" * 129, "semi;colon", "quote's", "é", "hash#"]
IDS = {"call_id", "agent_id", "callback_id"}


def with_ids(path: str, bad: str, name_of_bad: str) -> str:
    return re.sub(r"{(\w+)}", lambda m: quote(bad, safe="") if m.group(1) == name_of_bad else "ok-1", path)


def test_every_path_parameter_has_a_rule() -> None:
    names = {name for endpoint in ENDPOINTS for name in path_params(endpoint.path)}
    assert names <= set(PATH_PARAMS)
    assert names >= IDS


def test_a_route_with_a_parameter_of_no_rule_is_refused_at_start() -> None:
    table = EndpointTable()

    @table.route("GET", "/v1/things/{thing_id}", summary="-", role="api", responses={200: None})
    async def thing(request: web.Request) -> web.Response:
        return web.Response()

    with pytest.raises(ValueError, match="thing_id"):
        table.add_to(web.Application(), lambda handler, role, path: handler)


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_a_malformed_id_is_422_on_every_route_and_changes_nothing(api: Api, bad: str) -> None:
    status, _ = await api.post("/v1/calls", {"call_id": "ok-1", "caller": "+8613800000001"})
    assert status == 201
    before = await api.get("/admin/sla?window=15m")
    checked = 0
    for endpoint in ENDPOINTS:
        for name in set(path_params(endpoint.path)) & IDS:
            path = with_ids(endpoint.path, bad, name)
            kwargs = {"json": BODIES.get(endpoint.path, {})} if endpoint.method != "GET" else {}
            status, body = await api.call(endpoint.method, path, **kwargs)
            assert status == 422, (endpoint.method, path, body)
            assert body["error"]["code"] == "invalid_field" and name in body["error"]["message"]
            checked += 1
    # get, answer, requeue, abandon, end, callback, history (call_id); next (agent_id); outcome (callback_id)
    assert checked == 9
    assert (await api.get("/v1/calls/ok-1"))[1]["status"] == "waiting"
    assert await api.get("/admin/sla?window=15m") == before


async def test_a_well_formed_unknown_id_is_still_404(api: Api) -> None:
    status, body = await api.get("/v1/calls/never-routed")
    assert status == 404 and body["error"]["code"] == "call_not_found"
    status, body = await api.post("/v1/callbacks/cb-never/outcome", {"outcome": "completed", "agent_id": "a1"})
    assert status == 404 and body["error"]["code"] == "callback_not_found"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/callers/{caller}"), ("PUT", "/admin/tiers/{caller}"), ("DELETE", "/admin/tiers/{caller}")],
)
async def test_a_caller_that_is_no_phone_number_is_422_invalid_caller(api: Api, method: str, path: str) -> None:
    kwargs = {"json": BODIES[path]} if method == "PUT" else {}
    status, body = await api.call(method, path.replace("{caller}", "not-a-number"), **kwargs)
    assert status == 422 and body["error"]["code"] == "invalid_caller"


async def test_the_openapi_document_states_the_same_rule(api: Api) -> None:
    _, doc = await api.get("/openapi.json")
    for endpoint in ENDPOINTS:
        operation = doc["paths"][endpoint.path][endpoint.method.lower()]
        for param in operation.get("parameters", []):
            if param["in"] == "path":
                assert param["schema"] == PATH_PARAMS[param["name"]].schema
