"""Tokens and roles on every route: none 401, the other role's 403, the right one passes."""

from __future__ import annotations

import re

import pytest

from tests.http.conftest import Api, ApiFactory
from tierline.router.app import ENDPOINTS

TOKENS = {"api": "ivr-secret-1", "admin": "boss-secret-2"}


def concrete(path: str) -> str:
    return re.sub(r"{(\w+)}", lambda m: "+123456" if m.group(1) == "caller" else "x1", path)


@pytest.fixture
async def guarded(make_api: ApiFactory) -> Api:
    api: Api = await make_api(env={"TIERLINE_API_TOKEN": TOKENS["api"], "TIERLINE_ADMIN_TOKEN": TOKENS["admin"]})
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
    checked = 0
    for endpoint in ENDPOINTS:
        if endpoint.role == "public":
            continue
        url = guarded.base + concrete(endpoint.path)
        other = "admin" if endpoint.role == "api" else "api"
        cases = [
            ({}, 401),
            ({"Authorization": "Bearer nope"}, 401),
            ({"Authorization": "Basic " + TOKENS[endpoint.role]}, 401),
            ({"Authorization": f"Bearer {TOKENS[other]}"}, 403),
        ]
        for headers, expected in cases:
            async with guarded.session.request(endpoint.method, url, headers=headers) as resp:
                assert resp.status == expected, (endpoint.method, endpoint.path, headers)
                body = await resp.json()
                assert body["error"]["code"] == ("unauthorized" if expected == 401 else "forbidden")
        headers = {"Authorization": f"Bearer {TOKENS[endpoint.role]}"}
        async with guarded.session.request(endpoint.method, url, headers=headers) as resp:
            assert resp.status not in (401, 403), (endpoint.method, endpoint.path)
        checked += 1
    assert checked >= 14


async def test_public_routes_need_no_token(guarded: Api) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json"):
        status, _ = await guarded.get(path)
        assert status == 200, path
