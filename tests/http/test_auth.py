"""Tokens and roles on every route: none 401, the other role's 403, the right one passes."""

from __future__ import annotations

import re

import pytest

from tests.http.conftest import Api, ApiFactory
from tierline.router.app import ENDPOINTS
from tierline.router.plumbing.endpoints import TOKENS_OF

TOKENS = {"api": "ivr-secret-1", "admin": "boss-secret-2", "backoffice": "back-office-3"}


def concrete(path: str) -> str:
    return re.sub(r"{(\w+)}", lambda m: "+123456" if m.group(1) == "caller" else "x1", path)


@pytest.fixture
async def guarded(make_api: ApiFactory) -> Api:
    api: Api = await make_api(
        env={
            "TIERLINE_API_TOKEN": TOKENS["api"],
            "TIERLINE_ADMIN_TOKEN": TOKENS["admin"],
            "TIERLINE_BACKOFFICE_TOKEN": TOKENS["backoffice"],
        }
    )
    return api


async def test_a_path_no_route_matches_takes_the_role_of_its_surface(guarded: Api) -> None:
    """Auth reads each route's declared role; an unknown path under /v1 or /admin still needs
    that surface's token before it learns the route does not exist."""
    for path, method, expected in (
        ("/v1/nope", "GET", 401),
        ("/admin/nope", "GET", 401),
        ("/admin/static/", "GET", 401),
        ("/admin/tiers/reload", "GET", 401),  # a route, but not for this method (405 once authorised)
        ("/nope", "GET", 404),
    ):
        async with guarded.session.request(method, guarded.base + path) as resp:
            assert resp.status == expected, path
    async with guarded.session.get(
        guarded.base + "/admin/nope", headers={"Authorization": f"Bearer {TOKENS['admin']}"}
    ) as resp:
        assert resp.status == 404
    headers = {"Authorization": f"Bearer {TOKENS['admin']}"}
    async with guarded.session.get(guarded.base + "/admin/tiers/reload", headers=headers) as resp:
        assert resp.status == 405


async def test_every_guarded_route_checks_its_token(guarded: Api) -> None:
    """Each role's tokens pass (the IVR token on the back office's routes too); every other
    configured token is 403."""
    checked = 0
    by_role: dict[str, int] = {}
    for endpoint in ENDPOINTS:
        if endpoint.role == "public":
            continue
        url = guarded.base + concrete(endpoint.path)
        accepted = TOKENS_OF[endpoint.role]
        cases = [
            ({}, 401),
            ({"Authorization": "Bearer nope"}, 401),
            ({"Authorization": "Basic " + TOKENS[accepted[0]]}, 401),
        ] + [({"Authorization": f"Bearer {token}"}, 403) for name, token in TOKENS.items() if name not in accepted]
        for headers, expected in cases:
            async with guarded.session.request(endpoint.method, url, headers=headers) as resp:
                assert resp.status == expected, (endpoint.method, endpoint.path, headers)
                body = await resp.json()
                assert body["error"]["code"] == ("unauthorized" if expected == 401 else "forbidden")
        for name in accepted:
            headers = {"Authorization": f"Bearer {TOKENS[name]}"}
            async with guarded.session.request(
                endpoint.method, url, headers=headers, json={"only": "callbacks"}
            ) as resp:
                assert resp.status not in (401, 403), (endpoint.method, endpoint.path, name)
        checked += 1
        by_role[endpoint.role] = by_role.get(endpoint.role, 0) + 1
    assert checked >= 14
    # The back office may take and close callbacks and read caller records, nothing else.
    assert {e.path for e in ENDPOINTS if e.role == "backoffice"} == {
        "/v1/agents/{agent_id}/next",
        "/v1/callbacks/{callback_id}/outcome",
        "/v1/callers/{caller}",
    }


async def test_the_backoffice_token_takes_callbacks_only(guarded: Api) -> None:
    back = {"Authorization": f"Bearer {TOKENS['backoffice']}"}
    ivr = {"Authorization": f"Bearer {TOKENS['api']}"}
    status, body = await guarded.post("/v1/agents/b1/next", {}, headers=back)
    assert status == 403 and "only: callbacks" in body["error"]["message"]
    status, _ = await guarded.post("/v1/agents/b1/next", {"only": "callbacks"}, headers=back)
    assert status == 204
    status, _ = await guarded.post("/v1/agents/a1/next", {}, headers=ivr)  # the IVR token as before
    assert status == 204
    status, _ = await guarded.post("/v1/calls", {"call_id": "c1", "caller": "+123456"}, headers=back)
    assert status == 403


async def test_public_routes_need_no_token(guarded: Api) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json"):
        status, _ = await guarded.get(path)
        assert status == 200, path
