"""Redis stalling in a loop: every answer still within 500 ms (a stress script, not a test).

    .venv/bin/python loadtest/stress_deadline.py [--seconds 15] [--routers 2] [--workers 8] [--stall 0.35]

Starts a throwaway redis-server and `--routers` real `tierline serve --store redis://…`
processes, then for `--seconds` has `--workers` IVR loops route calls (`POST /v1/calls`, one
after another each) while a separate client stalls Redis with `DEBUG SLEEP --stall` over and
over (0.15 s free between stalls). Some routes take the slow path, which re-reads the tier
version, looks the caller up and then runs the engine script: several Redis calls that share
the request's one deadline.

Prints the answers by code, the p50/p99/max answer time and how many took over 500 ms, then
PASS when none did (MISS otherwise). Kills everything it started, however it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import redis.asyncio as aioredis
from aiohttp import ClientSession, ClientTimeout

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stress_support import error_code, fleet

BOUND_MS = 500.0


async def staller(port: int, stall_s: float, stop: asyncio.Event) -> int:
    client = aioredis.Redis(port=port, socket_timeout=stall_s + 5)
    stalls = 0
    while not stop.is_set():
        # redis-py leaves execute_command unannotated, and DEBUG has no typed method.
        await client.execute_command("DEBUG", "SLEEP", str(stall_s))  # type: ignore[no-untyped-call]
        stalls += 1
        await asyncio.sleep(0.15)
    await client.aclose()
    return stalls


async def worker(
    http: ClientSession, routers: list[str], n: int, until: float, times: list[float], codes: Counter[str]
) -> None:
    i = 0
    while time.monotonic() < until:
        body = {"call_id": f"w{n}-{i}", "caller": f"+86139{(n * 100_000 + i) % 10**8:08d}"}
        started = time.perf_counter()
        async with http.post(f"{routers[(n + i) % len(routers)]}/v1/calls", json=body) as resp:
            code = error_code(resp.status, await resp.json())
        times.append((time.perf_counter() - started) * 1000)
        codes[code] += 1
        i += 1


async def main(args: argparse.Namespace) -> int:
    with fleet(redis_extra=("--enable-debug-command", "local")) as f:
        routers = f.start_routers(args.routers)
        async with ClientSession(timeout=ClientTimeout(total=30)) as http:
            await f.wait_ready(http)
            times: list[float] = []
            codes: Counter[str] = Counter()
            stop = asyncio.Event()
            stalls = asyncio.create_task(staller(f.redis.port, args.stall, stop))
            until = time.monotonic() + args.seconds
            await asyncio.gather(*(worker(http, routers, n, until, times, codes) for n in range(args.workers)))
            stop.set()
            stalled = await stalls
    times.sort()
    over = sum(1 for t in times if t > BOUND_MS)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    stalled_note = f"{stalled} stalls of {args.stall} s"
    print(f"{len(times)} answers via {args.routers} routers in {args.seconds:.0f} s; {stalled_note}")
    print("answers: " + ", ".join(f"{code} {n}" for code, n in codes.most_common()))
    print(
        f"answer time: p50 {statistics.median(times):.1f} ms, p99 {p99:.1f} ms, max {times[-1]:.1f} ms, "
        f"over {BOUND_MS:.0f} ms: {over}"
    )
    verdict = "PASS" if over == 0 else "MISS"
    print(f"{verdict}: max answer {times[-1]:.1f} ms vs {BOUND_MS:.0f} ms")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--routers", type=int, default=2)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--stall", type=float, default=0.35)
    sys.exit(asyncio.run(main(parser.parse_args())))
