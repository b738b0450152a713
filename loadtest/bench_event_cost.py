"""What recording the event trail costs the route hot path, per store (a benchmark, not a test).

    .venv/bin/python loadtest/bench_event_cost.py [--calls 500] [--chunks 20] [--concurrency 32]
        [--stores memory,redis,cluster] [--json PATH]

Each call is the hot path's four engine steps: route → next (offer) → answer → end, run
directly on the call store (no HTTP: the cost measured is the engine's; over HTTP it is a
smaller share of a larger whole). The same store code runs twice per round, events on and
events off, alternating, and the figure per store is the median of the rounds' ratios
(off/on throughput), so the machine's noise (2 cores shared by other sessions) hits both
sides of each ratio alike. "Off" is a switch for this benchmark only: the memory store's
bound `_emit` replaced by a no-op, the Redis engine registered with `emit` a no-op function.
The product has no such switch. Redis and the cluster are throwaway servers started here.
Goal (issue 15): recording costs ≤ 10% of route throughput on each store.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/ when run as a script

from tests.support.redis_servers import RedisCluster, RedisServer
from tierline.queue.clock import SystemClock
from tierline.queue.memory_store import MemoryCallStore
from tierline.queue.policy import Policy, QueuePolicy
from tierline.queue.redis_link import RedisLink, connect
from tierline.queue.redis_script import engine_library, engine_script
from tierline.queue.redis_store import RedisCallStore
from tierline.queue.store import CallStore
from tierline.router.cli.serve import GC_YOUNG_THRESHOLD
from tierline.tiers.model import TierRecord

POLICY = Policy(queues={"default": QueuePolicy(max_waiting=100_000)})
EMIT = "local function emit(kind, at, call_id, callback_id, caller, tier, queue, agent, ...)"
NO_EMIT = "local function emit(...) end\n" + EMIT.replace("function emit(", "function emit_recorded(")
RECORD = TierRecord(caller="+4930000000", tier="standard", known=True)


def events_off(store: CallStore) -> None:
    """The benchmark-only switch: the store records no events."""
    if isinstance(store, MemoryCallStore):
        store._emit = lambda *args: None
        return
    assert isinstance(store, RedisCallStore)
    text = engine_script(store.policy, store._namespace)
    assert text.count(EMIT) == 1, "the engine's emit moved: update this benchmark"
    store._engine = engine_library(store.policy, store._namespace, text.replace(EMIT, NO_EMIT))


async def one_call(store: CallStore, n: int, tag: str) -> None:
    call_id, agent = f"{tag}-{n}", f"agent-{tag}-{n}"
    await store.route(call_id, RECORD, "default")
    work = await store.next_work(agent, ["default"])
    if work is not None and work.call is not None:
        offered = work.call.call.call_id
        await store.answer(offered, agent)
        await store.end(offered)


async def run(store: CallStore, calls: int, concurrency: int, tag: str) -> float:
    """Calls per second over `calls` calls, `concurrency` at a time."""
    numbers = iter(range(calls))

    async def worker() -> None:
        for n in numbers:
            await one_call(store, n, tag)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return calls / (time.perf_counter() - started)


async def make(kind: str, url: str, namespace: str, recording: bool) -> tuple[CallStore, RedisLink | None]:
    if kind == "memory":
        memory = MemoryCallStore(POLICY, SystemClock(), event_cap=10_000_000)
        if not recording:
            events_off(memory)
        return memory, None
    link = RedisLink(connect(url, 1.0), timeout_s=1.0)
    redis = RedisCallStore(link, POLICY, SystemClock(), namespace)
    await redis.open()
    if not recording:
        events_off(redis)
    return redis, link


async def measure(kind: str, url: str, calls: int, chunks: int, concurrency: int) -> dict[str, Any]:
    """Both variants side by side, in alternating chunks of `calls` calls (the order swapped
    each chunk), so load that comes and goes on the machine falls on both alike."""
    stores = {recording: await make(kind, url, f"bench-{recording}", recording) for recording in (True, False)}
    seconds = {True: 0.0, False: 0.0}
    ratios = []
    try:
        for store, link in stores.values():
            await run(store, min(200, calls), concurrency if link else 1, "warm")  # scripts loaded, pools open
        for chunk in range(chunks):
            rates = {}
            for recording in (True, False) if chunk % 2 == 0 else (False, True):
                store, link = stores[recording]
                rate = await run(store, calls, concurrency if link else 1, f"c{chunk}")
                seconds[recording] += calls / rate
                rates[recording] = rate
                if isinstance(store, MemoryCallStore) and recording and chunk < chunks - 1:
                    # What the archiver does between batches (its own cost, not timed here): in a
                    # service the buffer never holds more than a few batches while the archive is up.
                    store.drain_events(len(store.events))
            ratios.append(rates[True] / rates[False])
        for recording, (store, _) in stores.items():
            held = len(await store.read_events(None, 10))
            assert bool(held) == recording, "the switch did not do what it says"
    finally:
        for _, link in stores.values():
            if link is not None:
                await link.client.flushall()
                await link.close()
    on, off = calls * chunks / seconds[True], calls * chunks / seconds[False]
    return {
        "store": kind,
        "calls_per_s_events_on": round(on),
        "calls_per_s_events_off": round(off),
        "cost_share": round(1 - on / off, 4),
        "median_chunk_cost_share": round(1 - statistics.median(ratios), 4),
        "ratios": [round(x, 3) for x in ratios],
    }


def settle_garbage_collector() -> None:
    """As `tierline serve` does at start (router/cli/serve.py): what is loaded stays frozen, and
    young collections are rarer; without it the collector's passes would dominate both sides."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=500, help="calls per chunk")
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight on the Redis stores")
    parser.add_argument("--stores", default="memory,redis,cluster")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    settle_garbage_collector()
    results = []
    for kind in args.stores.split(","):
        server: Any = None
        url = ""
        if kind == "redis":
            server = RedisServer().start()
            url = server.url
        elif kind == "cluster":
            server = RedisCluster().start()
            url = server.url
        try:
            result = await measure(kind, url, args.calls, args.chunks, args.concurrency)
        finally:
            if server is not None:
                server.cleanup()
        results.append(result)
        on, off = result["calls_per_s_events_on"], result["calls_per_s_events_off"]
        cost = 100 * result["cost_share"]
        median = 100 * result["median_chunk_cost_share"]
        print(f"{kind:8} events on {on:>6} calls/s, off {off:>6} calls/s: recording costs {cost:.1f}%", flush=True)
        print(f"         (median chunk {median:.1f}%; on/off per chunk {result['ratios']})", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
