"""`redis+sentinel://`: calls keep being routed through a Sentinel failover, without a restart.

A real primary, replica and three Sentinels; a real Tierline app routes calls while the
primary is failed over with `SENTINEL FAILOVER`. Replication is asynchronous, so the README
promises only this much, and the test holds it to exactly that: every call acknowledged
before the replica's promotion is kept, every call acknowledged once this router has had
`PRIMARY_POLL_S` to hear of the new primary is kept, and only calls acknowledged in between
(the old primary still took them) may be lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from tests.conftest import new_namespace
from tests.support.redis_servers import SentinelGroup, cli
from tierline.queue.clock import ManualClock
from tierline.queue.redis_link import PRIMARY_POLL_S
from tierline.router.app import build_app, open_services
from tierline.router.config import load_settings

RESUME_WITHIN_S = 10.0  # the bound, from the new primary's promotion
IN_FLIGHT_S = 0.5  # a request already sent on an old connection when the router moved


@pytest.fixture
def group() -> Iterator[SentinelGroup]:
    started = SentinelGroup().start()
    yield started
    started.cleanup()


async def _cli(port: int, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        "redis-cli", "-p", str(port), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    out, _ = await process.communicate()
    return out.decode()


async def lookup(http: ClientSession, url: str) -> bool:
    """Whether the call is there (a 503 while the new primary settles is asked again)."""
    deadline = time.monotonic() + RESUME_WITHIN_S
    while True:
        async with http.get(url) as resp:
            if resp.status in (200, 404):
                return resp.status == 200
            assert resp.status == 503 and time.monotonic() < deadline, await resp.text()
        await asyncio.sleep(0.1)


def engine_libraries(port: int) -> int:
    """The engine's function libraries this server has (FUNCTION LIST; one per configuration)."""
    return cli(port, "function", "list", "libraryname", "tierline_*").count("library_name")


class Watch:
    """When a replica became primary (which), and when the Sentinel that ran the failover first named it."""

    def __init__(self, group: SentinelGroup) -> None:
        self.group = group
        self.new: int | None = None
        self.still_replica = time.monotonic()  # the last instant every replica was known to be one
        self.promoted: float | None = None
        self.named: float | None = None

    async def run(self) -> None:
        while self.named is None:
            asked = time.monotonic()
            for replica in self.group.replicas:
                if self.promoted is None and (await _cli(replica.port, "role")).startswith("master"):
                    self.promoted, self.new = time.monotonic(), replica.port
            if self.promoted is None:
                self.still_replica = asked
            named = await _cli(self.group.sentinels[0].port, "sentinel", "get-master-addr-by-name", self.group.service)
            port = int(named.split()[1])
            if self.group.primary is not None and port != self.group.primary.port:
                self.named, self.new = time.monotonic(), port
                self.promoted = self.promoted or self.named
            await asyncio.sleep(0.02)


async def test_calls_are_routed_through_a_sentinel_failover_without_a_restart(group: SentinelGroup) -> None:
    assert group.primary is not None
    old = group.primary.port
    settings = load_settings(None, env={"TIERLINE_STORE": group.url}, overrides={"redis_namespace": new_namespace()})
    server = TestServer(build_app(open_services(settings, ManualClock(1_700_000_000.0)), sweeper=False))
    await server.start_server()
    base = f"http://127.0.0.1:{server.port}"
    acked: dict[str, float] = {}  # call id -> when the router answered 201
    refused = 0
    async with ClientSession() as http:

        async def route(n: int) -> None:
            nonlocal refused
            call_id = f"c{n}"
            async with http.post(f"{base}/v1/calls", json={"call_id": call_id, "caller": f"+1555{n:07d}"}) as resp:
                if resp.status == 201:
                    acked[call_id] = time.monotonic()
                else:
                    assert resp.status == 503, await resp.text()
                    assert (await resp.json())["error"]["code"] in ("store_unavailable", "overloaded")
                    refused += 1

        for n in range(20):
            await route(n)
        assert len(acked) == 20
        # The engine's library reaches the replica with the data (a replica refuses FUNCTION
        # FLUSH; tests/redis/test_hot_path_and_restart.py has a server lose it). WAIT: until
        # every replica has acknowledged what the primary was sent, the library included.
        assert int(cli(group.primary.port, "wait", str(len(group.replicas)), "5000")) == len(group.replicas)
        for replica in group.replicas:
            assert engine_libraries(replica.port) == 1
        watch = Watch(group)
        watching = asyncio.create_task(watch.run())
        issued = time.monotonic()
        assert "OK" in await _cli(group.sentinels[0].port, "sentinel", "failover", group.service)
        n = 20
        while watch.named is None or time.monotonic() < watch.named + 3.0:
            assert time.monotonic() < issued + 20, "the Sentinels never named the new primary"
            await route(n)
            n += 1
            await asyncio.sleep(0.005)
        await watching
        new = watch.new
        assert watch.promoted is not None and watch.named is not None and new is not None
        assert group.primary_port() == new
        found: dict[str, bool] = {}
        for call_id in acked:
            found[call_id] = await lookup(http, f"{base}/v1/calls/{call_id}")
    await server.close()

    promoted, named = watch.promoted, watch.named
    switched = named + PRIMARY_POLL_S + IN_FLIGHT_S
    lost = [call_id for call_id, ok in found.items() if not ok]
    before = [c for c, at in acked.items() if at < watch.still_replica]
    after = [c for c, at in acked.items() if at > switched]
    print(
        f"\n{len(group.replicas)} replica(s): acknowledged {len(acked)} (refused {refused}); lost {len(lost)},"
        " all acknowledged within"
        f" {watch.still_replica - issued:.2f}..{switched - issued:.2f} s of SENTINEL FAILOVER;"
        f" promotion -> Sentinel names it {named - promoted:.2f} s"
    )
    assert all(found[c] for c in before), "a call acknowledged before the promotion was lost"
    assert after and all(found[c] for c in after), "a call acknowledged after the router moved was lost"
    assert all(watch.still_replica <= acked[c] <= switched for c in lost)
    resumed = min(at for c, at in acked.items() if at > promoted and found[c])
    print(f"routing on the new primary {resumed - promoted:.2f} s after its promotion")
    assert resumed - promoted < RESUME_WITHIN_S
    assert engine_libraries(new) == 1  # the new primary runs the engine it was given
    assert cli(old, "ping").strip() == "PONG"  # the old primary was failed over, not killed
