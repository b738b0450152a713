"""Several real `tierline serve` processes on one real Redis act as one engine.

Callers arrive through every process at once, agents pull work through every process at
once, one process is killed with SIGKILL in the middle: no call is handed out twice, none is
lost, precedence holds, the counts add up. Also: a route decision costs two Redis commands,
and Redis with AOF keeps the state over a restart.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientError, ClientSession

from tests.support.redis_servers import RedisServer
from tests.support.serve_process import start_serve
from tierline.tiers.model import TIER_RANK

TIER_MIX = ["vip"] * 5 + ["mid"] * 20 + ["standard"] * 72 + ["blacklisted"] * 3


class Router:
    def __init__(self, port: int, process: subprocess.Popen[bytes]) -> None:
        self.port, self.process = port, process
        self.base = f"http://127.0.0.1:{port}"


def start_router(redis_url: str, config: Path) -> Router:
    return Router(*start_serve(redis_url, config))


async def wait_ready(http: ClientSession, router: Router) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            async with http.get(f"{router.base}/readyz") as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if router.process.poll() is not None:
            raise RuntimeError(router.process.stderr.read().decode() if router.process.stderr else "router died")
        await asyncio.sleep(0.05)
    raise RuntimeError("router not ready")


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    server = RedisServer(extra=("--appendonly", "yes", "--appendfsync", "everysec")).start()
    yield server
    server.cleanup()


@pytest.fixture
async def routers(redis: RedisServer, tmp_path: Path) -> AsyncIterator[list[Router]]:
    config = tmp_path / "tierline.toml"
    # No overflow on wait and a long ring time: the test controls every move itself.
    config.write_text("offer_timeout_s = 600.0\n[tiers.mid]\noverflow_after_s = 0\n")
    started = [start_router(redis.url, config) for _ in range(3)]
    async with ClientSession() as http:
        for router in started:
            await wait_ready(http, router)
    yield started
    for router in started:
        if router.process.poll() is None:
            router.process.terminate()
            router.process.wait(timeout=10)


async def post(http: ClientSession, url: str, body: Any) -> tuple[int, Any]:
    async with http.post(url, json=body) as resp:
        return resp.status, (None if resp.status == 204 else await resp.json())


async def test_three_routers_one_engine_even_when_one_is_killed(routers: list[Router], tmp_path: Path) -> None:
    rng = random.Random(7)
    callers = {f"+86139{i:08d}": rng.choice(TIER_MIX) for i in range(240)}
    tiers_csv = "caller,tier\n" + "".join(f"{c},{t}\n" for c, t in callers.items())
    async with ClientSession() as http:
        async with http.post(
            f"{routers[0].base}/admin/tiers/reload", data=tiers_csv, headers={"Content-Type": "text/csv"}
        ) as resp:
            assert resp.status == 200 and (await resp.json())["loaded"] == 240
        await asyncio.sleep(1.1)  # every router re-reads the tier meta within a second

        # Phase 1: every caller arrives through one of the three routers, all at once, each twice
        # (an IVR retry): one call per call_id, whichever router is asked.
        async def arrive(i: int, caller: str) -> tuple[int, Any]:
            body = {"call_id": f"call-{i}", "caller": caller}
            first = await post(http, f"{routers[i % 3].base}/v1/calls", body)
            again = await post(http, f"{routers[(i + 1) % 3].base}/v1/calls", body)
            assert again[0] == 200 and again[1]["call_id"] == first[1]["call_id"]
            return first

        arrived = await asyncio.gather(*(arrive(i, c) for i, c in enumerate(callers)))
        assert all(status == 201 for status, _ in arrived)
        assert [call["tier"] for _, call in arrived] == list(callers.values())

        # Positions now, read through any router: exactly 1..n, in precedence order.
        now_calls = []
        for i in range(len(callers)):
            async with http.get(f"{routers[i % 3].base}/v1/calls/call-{i}") as resp:
                now_calls.append(await resp.json())
        by_position = sorted(now_calls, key=lambda c: c["position"])
        assert [c["position"] for c in by_position] == list(range(1, len(callers) + 1))
        keys = [(TIER_RANK[c["tier"]], datetime.fromisoformat(c["arrived_at"])) for c in by_position]
        assert keys == sorted(keys)

        # Phase 2: eight agents pull through all three routers; the third is killed midway.
        served: list[dict[str, Any]] = []
        offers: dict[int, list[dict[str, Any]]] = {n: [] for n in range(8)}
        alive = list(routers)

        async def ask(n: int, turn: int, path: str) -> tuple[int, Any]:
            """One request, failing over to another router while one is dying (all are idempotent)."""
            while True:
                router = alive[turn % len(alive)]
                turn += 1
                try:
                    return await post(http, router.base + path, {"agent_id": f"agent-{n}"} if "answer" in path else {})
                except (OSError, ClientError):
                    await asyncio.sleep(0.01)

        async def agent(n: int) -> None:
            turn = n
            while True:
                turn += 1
                status, work = await ask(n, turn, f"/v1/agents/agent-{n}/next")
                if status == 204:
                    return
                assert status == 200, work
                call = work["call"]
                if not offers[n] or offers[n][-1]["call_id"] != call["call_id"]:
                    offers[n].append(call)
                status, answered = await ask(n, turn + 1, f"/v1/calls/{call['call_id']}/answer")
                assert status == 200, answered
                served.append(answered)
                if len(served) >= 60:
                    sixty_served.set()
                status, ended = await ask(n, turn + 2, f"/v1/calls/{call['call_id']}/end")
                assert status == 200 and ended["status"] == "ended", ended

        sixty_served = asyncio.Event()

        async def killer() -> None:
            await sixty_served.wait()
            victim = alive.pop()
            victim.process.send_signal(signal.SIGKILL)
            victim.process.wait(timeout=10)

        await asyncio.gather(killer(), *(agent(n) for n in range(8)))
        assert routers[2].process.returncode == -signal.SIGKILL

        ids = [call["call_id"] for call in served]
        assert len(ids) == len(set(ids)), "a call was handed out twice"
        assert set(ids) == {f"call-{i}" for i in range(len(callers))}, "a call was lost"
        # Everything waited from the start, so each agent's offers come in precedence order.
        for n, agent_offers in offers.items():
            # Compared as times: RFC 3339 text drops a zero fraction ("…37Z" sorts after "…37.003Z").
            keys = [(TIER_RANK[c["tier"]], datetime.fromisoformat(c["arrived_at"])) for c in agent_offers]
            assert keys == sorted(keys), f"agent-{n} was offered a call out of precedence order"

        async with http.get(f"{alive[0].base}/admin/sla?window=60m") as resp:
            report = await resp.json()
        answered = {row["tier"]: row["answered"] for row in report["rows"]}
        arrived_by_tier = {row["tier"]: row["arrived"] for row in report["rows"]}
        assert answered == dict(Counter(callers.values())) | {t: 0 for t in TIER_RANK if t not in answered}
        assert arrived_by_tier == answered
        assert all(row["waiting_now"] == 0 for row in report["rows"])
