"""Re-entry keeps the place (issue 16 item 4) over real HTTP, on the memory store and on a real
Redis, where a new call's tier look-up and enqueue are one script (`route_lookup`: the resume
key is built there from the tier record the script reads)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from tests.conftest import new_namespace
from tierline.queue.clock import ManualClock
from tierline.router.app import build_app, open_services
from tierline.router.config import load_settings

Router = tuple[str, ManualClock, ClientSession]


@pytest.fixture(params=["memory", "redis"])
async def router(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Router]:
    config = tmp_path / "tierline.toml"
    config.write_text("resume_window_s = 120.0\n[tiers.mid]\noverflow_after_s = 0.0\n")
    clock = ManualClock(1_800_000_000.0)
    env = {} if request.param == "memory" else {"TIERLINE_STORE": request.getfixturevalue("redis_url")}
    settings = load_settings(config, env=env, overrides={"redis_namespace": new_namespace(), "redis_timeout_s": 1.0})
    server = TestServer(build_app(open_services(settings, clock), sweeper=False), host="127.0.0.1")
    await server.start_server()
    async with ClientSession() as http:
        yield f"http://127.0.0.1:{server.port}", clock, http
    await server.close()


async def call(http: ClientSession, method: str, url: str, body: Any = None) -> tuple[int, Any]:
    async with http.request(method, url, json=body) as resp:
        return resp.status, (await resp.json() if resp.status != 204 else None)


async def test_a_re_call_within_the_window_takes_back_its_place(router: Router) -> None:
    base, clock, http = router
    edit = {"tier": "mid", "crm": {"customer_id": "C-77"}}
    assert (await call(http, "PUT", f"{base}/admin/tiers/+8613900000001", edit))[0] == 200
    status, first = await call(http, "POST", f"{base}/v1/calls", {"call_id": "first", "caller": "+8613900000001"})
    assert status == 201 and first["tier"] == "mid"
    clock.advance(1)
    await call(http, "POST", f"{base}/v1/calls", {"call_id": "other", "caller": "+8613800000002"})
    clock.advance(40)
    status, gone = await call(http, "POST", f"{base}/v1/calls/first/abandon", {})
    assert status == 200 and gone["callback"]["status"] == "open"
    # The tier table changed meanwhile: the original tier comes back with the place.
    edit = {"tier": "standard", "crm": {"customer_id": "C-77"}}
    assert (await call(http, "PUT", f"{base}/admin/tiers/+8613900000001", edit))[0] == 200
    clock.advance(30)
    status, back = await call(http, "POST", f"{base}/v1/calls", {"call_id": "again", "caller": "+86 139 0000 0001"})
    assert status == 201, back
    assert (back["resumed_from"], back["tier"], back["position"], back["waited_s"]) == ("first", "mid", 1, 71.0)
    status, gone = await call(http, "GET", f"{base}/v1/calls/first")
    assert gone["status"] == "abandoned" and gone["callback"]["status"] == "resolved_inbound"
    status, sla = await call(http, "GET", f"{base}/admin/sla?window=60m")
    mid = next(r for r in sla["rows"] if r["tier"] == "mid")
    assert (mid["abandoned"], mid["resumed"], mid["waiting_now"]) == (1, 1, 1)
    # A different customer on the same number does not take it back (nothing left to take anyway).
    status, plain = await call(http, "POST", f"{base}/v1/calls", {"call_id": "third", "caller": "+8613800000002"})
    assert status == 201 and "resumed_from" not in plain
