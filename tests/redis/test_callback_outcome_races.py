"""Callback outcomes over real HTTP: owned and idempotent per attempt (issue 13, item 4).

An agent's desktop that posts `no_answer` again after a lost answer, or twice at once, must
use one attempt, not three; an outcome from an agent that does not hold the callback is
`409 not_assigned`. Real servers on real ports: one on the memory store, and two routers
sharing one real Redis (the concurrent posts go through both).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from tests.conftest import new_namespace
from tierline.queue.clock import ManualClock
from tierline.router.app import build_app, open_services
from tierline.router.config import load_settings

Routers = tuple[list[str], ManualClock, ClientSession]


@pytest.fixture(params=["memory", "redis"])
async def routers(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Routers]:
    config = tmp_path / "tierline.toml"
    config.write_text("[queues.default]\nmax_waiting = 1\n")
    clock = ManualClock(1_800_000_000.0)
    if request.param == "memory":
        env, count = {}, 1
    else:
        env, count = {"TIERLINE_STORE": request.getfixturevalue("redis_url")}, 2
    namespace = new_namespace()
    servers = []
    for _ in range(count):
        # This test is about ownership and idempotence, not deadlines: a generous Redis budget
        # keeps a loaded CI machine from turning a cold router's first burst into 503s.
        settings = load_settings(config, env=env, overrides={"redis_namespace": namespace, "redis_timeout_s": 1.0})
        server = TestServer(build_app(open_services(settings, clock), sweeper=False), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
    async with ClientSession() as http:
        for server in servers:  # warm: connections open and the engine script loaded, as in service
            async with http.get(f"http://127.0.0.1:{server.port}/readyz") as resp:
                assert resp.status == 200
        yield [f"http://127.0.0.1:{s.port}" for s in servers], clock, http
    for server in servers:
        await server.close()


async def call(http: ClientSession, method: str, url: str, body: Any = None) -> tuple[int, Any]:
    async with http.request(method, url, json=body) as resp:
        return resp.status, (await resp.json() if resp.status != 204 else None)


async def handed_callback(http: ClientSession, base: str, agent: str) -> str:
    """A mid caller overflows at a full queue; `agent` is handed its callback."""
    assert (await call(http, "PUT", f"{base}/admin/tiers/+8613900000001", {"tier": "mid"}))[0] == 200
    assert (await call(http, "POST", f"{base}/v1/calls", {"call_id": "block", "caller": "+8613800000009"}))[0] == 201
    status, routed = await call(http, "POST", f"{base}/v1/calls", {"call_id": "m1", "caller": "+8613900000001"})
    assert status == 201 and routed["status"] == "overflowed"
    status, abandoned = await call(http, "POST", f"{base}/v1/calls/block/abandon", {})
    assert status == 200, abandoned
    status, work = await call(http, "POST", f"{base}/v1/agents/{agent}/next", {})
    assert status == 200 and work["kind"] == "callback", work
    return str(work["callback"]["callback_id"])


async def test_sequential_retries_use_one_attempt(routers: Routers) -> None:
    bases, _, http = routers
    callback_id = await handed_callback(http, bases[0], "agentA")
    url = f"{bases[0]}/v1/callbacks/{callback_id}/outcome"
    answers = [await call(http, "POST", url, {"outcome": "no_answer", "agent_id": "agentA"}) for _ in range(3)]
    assert [status for status, _ in answers] == [200, 200, 200]
    assert {(b["status"], b["attempts"]) for _, b in answers} == {("open", 1)}
    for body in ({"outcome": "no_answer", "agent_id": "agentB"}, {"outcome": "no_answer"}):
        status, refused = await call(http, "POST", url, body)
        assert status == 409 and refused["error"]["code"] == "not_assigned", refused
    _, listed = await call(http, "GET", f"{bases[-1]}/admin/callbacks?status=open")
    assert [(c["callback_id"], c["attempts"], c["status"]) for c in listed["callbacks"]] == [(callback_id, 1, "open")]


async def test_concurrent_posts_use_one_attempt(routers: Routers) -> None:
    bases, _, http = routers
    callback_id = await handed_callback(http, bases[0], "agentA")
    body = {"outcome": "no_answer", "agent_id": "agentA"}
    answers = await asyncio.gather(
        *(call(http, "POST", f"{bases[i % len(bases)]}/v1/callbacks/{callback_id}/outcome", body) for i in range(12))
    )
    assert [status for status, _ in answers] == [200] * 12
    assert {b["attempts"] for _, b in answers} == {1}
    _, listed = await call(http, "GET", f"{bases[0]}/admin/callbacks?status=open")
    assert [(c["attempts"], c["status"], c["agent_id"]) for c in listed["callbacks"]] == [(1, "open", None)]


async def test_a_callback_no_agent_holds_takes_no_outcome(routers: Routers) -> None:
    bases, clock, http = routers
    callback_id = await handed_callback(http, bases[0], "agentA")
    url = f"{bases[-1]}/v1/callbacks/{callback_id}/outcome"
    assert (await call(http, "POST", url, {"outcome": "no_answer", "agent_id": "agentA"}))[0] == 200
    for body in (
        {"outcome": "completed", "agent_id": "agentA"},  # the same agent, another outcome: not a retry
        {"outcome": "cancelled"},
        {"outcome": "completed", "agent_id": "agentC"},
    ):
        status, refused = await call(http, "POST", url, body)
        assert status == 409 and refused["error"]["code"] == "not_assigned", (body, refused)
    clock.advance(30 * 60)  # the retry is due: a new attempt, the same outcome counts again
    status, work = await call(http, "POST", f"{bases[0]}/v1/agents/agentA/next", {})
    assert status == 200 and work["callback"]["callback_id"] == callback_id
    status, after = await call(http, "POST", url, {"outcome": "no_answer", "agent_id": "agentA"})
    assert status == 200 and after["attempts"] == 2


async def test_a_note_of_nul_reads_back_the_same_on_every_store(routers: Routers) -> None:
    bases, _, http = routers
    callback_id = await handed_callback(http, bases[0], "agentA")
    body = {"outcome": "completed", "agent_id": "agentA", "note": "\u0000"}
    status, done = await call(http, "POST", f"{bases[-1]}/v1/callbacks/{callback_id}/outcome", body)
    assert status == 200 and done["note"] == "\u0000"
    _, listed = await call(http, "GET", f"{bases[0]}/admin/callbacks?status=done")
    assert [c["note"] for c in listed["callbacks"]] == ["\u0000"]
