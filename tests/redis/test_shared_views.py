"""Two routers on one Redis show supervisors the same numbers: /admin/sla, /metrics, callbacks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import new_namespace
from tierline.queue.clock import ManualClock
from tierline.router.app import build_app, open_services
from tierline.router.config import load_settings


@pytest.fixture
async def two_routers(redis_url: str) -> AsyncIterator[tuple[list[str], ManualClock, ClientSession]]:
    namespace = new_namespace()
    clock = ManualClock(1_800_000_000.0)
    servers = []
    for _ in range(2):
        settings = load_settings(None, env={"TIERLINE_STORE": redis_url}, overrides={"redis_namespace": namespace})
        server = TestServer(build_app(open_services(settings, clock), sweeper=False), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
    async with ClientSession() as http:
        yield [f"http://127.0.0.1:{s.port}" for s in servers], clock, http
    for server in servers:
        await server.close()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_both_routers_report_the_same_figures(two_routers: tuple[list[str], ManualClock, ClientSession]) -> None:
    (one, two), clock, http = two_routers
    async with http.put(f"{one}/admin/tiers/+8613800000001", json={"tier": "vip"}) as resp:
        assert resp.status == 200
    for i, caller in enumerate(["+8613800000001", "+8613800000002", "+8613800000003"]):
        async with http.post(f"{one}/v1/calls", json={"call_id": f"c{i}", "caller": caller}) as resp:
            assert resp.status == 201
    clock.advance(12)
    async with http.post(f"{two}/v1/agents/a1/next", json={}) as resp:
        assert (await resp.json())["call"]["call_id"] == "c0"  # the VIP, routed through the other router
    async with http.post(f"{two}/v1/calls/c0/answer", json={"agent_id": "a1"}) as resp:
        assert resp.status == 200
    async with http.post(f"{one}/v1/calls/c1/abandon", json={}) as resp:
        assert resp.status == 200

    texts, reports = [], []
    for base in (one, two):
        async with http.get(f"{base}/metrics") as resp:
            texts.append(await resp.text())
        async with http.get(f"{base}/admin/sla?window=today") as resp:
            reports.append(await resp.json())
    # The requests each router answered are its own (tierline_http_*); every store figure is shared.
    shared = [{key: v for key, v in samples(text).items() if not key[0].startswith("tierline_http_")} for text in texts]
    assert shared[0] == shared[1]
    assert reports[0] == reports[1]
    got = samples(texts[0])
    assert got[("tierline_calls_answered_total", (("queue", "default"), ("tier", "vip")))] == 1
    assert got[("tierline_calls_abandoned_total", (("queue", "default"), ("tier", "standard")))] == 1
    assert got[("tierline_calls_waiting", (("queue", "default"), ("tier", "standard")))] == 1
    assert got[("tierline_answered_wait_seconds_bucket", (("le", "15"), ("queue", "default"), ("tier", "vip")))] == 1
    vip = next(r for r in reports[0]["rows"] if r["tier"] == "vip")
    assert (vip["answered"], vip["answered_within_threshold"], vip["asa_s"]) == (1, 1, 12.0)
