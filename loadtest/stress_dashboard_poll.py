"""Routes calls with and without a supervisor's dashboard polling, over a big callback backlog.

    .venv/bin/python loadtest/stress_dashboard_poll.py [--callbacks N] [--store redis|memory|both]

For each store (a throwaway redis-server and one real `tierline serve --store redis://…`
process, or one `tierline serve` on the memory store): opens N open callbacks (default
100,000) through the API — callers of the default tier `mid` arriving at the full `default`
queue each get one at once (`queue_full`), 32 requests in flight — then routes calls into a
second queue (`POST /v1/calls`, paced at `--rate` a second) for `--seconds` without any
poller, and as long again while a poller does every 2 s what the dashboard does
(`GET /admin/sla?window=today` and `?window=15m`, which carry the per queue × tier callback
counts) plus, harder than the dashboard, one full page of the callback list
(`GET /admin/callbacks?status=open&limit=100`, the largest page there is). The quiet and the
polled time each come in six phases that take turns (quiet, polled, quiet, …), so load from
elsewhere on the machine weighs on both sides alike. Prints route p50/p99/max both ways, how
long the poll's reads took, on Redis the longest script SLOWLOG saw (everything over 1 ms),
and PASS/MISS for p99 with the poller ≤ 2 × p99 without.
`--callbacks 2000 --seconds 30` is the short run for CI (loadtest/stress-check).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import ClientSession, ClientTimeout, TCPConnector

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: tests.support

from stress_support import wait_ready

from tests.support.redis_servers import RedisServer, free_port

CONFIG = """\
default_tier = "mid"

[tiers.mid]
overflow_after_s = 0   # the routed calls just wait: nothing else happens to them

[queues.default]
max_waiting = 1        # one waiting call fills it: every mid caller after it gets a callback

[queues.ivr]
"""
POLL_PATHS = (
    "/admin/sla?window=today",
    "/admin/sla?window=15m",
    "/admin/callbacks?status=open&limit=100",
)
POLL_EVERY_S = 2.0
PHASES = 6  # quiet and polled phases, each --seconds / PHASES long, taking turns


def start_router(store: str, config: Path) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    env = {**os.environ, "TIERLINE_STORE": store, "TIERLINE_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tierline.router.cli", "serve", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return f"http://127.0.0.1:{port}", process


async def open_callbacks(http: ClientSession, base: str, n: int) -> float:
    """n open callbacks: a blocker fills `default`, then n distinct mid callers overflow."""
    async with http.post(f"{base}/v1/calls", json={"call_id": "blocker", "caller": "+8613000000000"}) as resp:
        assert resp.status == 201, await resp.text()
    started = time.perf_counter()
    numbers = iter(range(n))
    failures: dict[str, int] = {}

    async def worker() -> None:
        for i in numbers:
            body = {"call_id": f"cb-{i}", "caller": f"+86139{i:08d}"}
            while True:
                async with http.post(f"{base}/v1/calls", json=body) as resp:
                    view = await resp.json()
                if resp.status != 503:
                    break
                await asyncio.sleep(0.05)  # shed by the process's admission limit: ask again
            if resp.status != 201 or view.get("status") != "overflowed":
                what = f"{resp.status} {view.get('status') or view.get('error', {}).get('code')}"
                failures[what] = failures.get(what, 0) + 1

    await asyncio.gather(*(worker() for _ in range(32)))
    if failures:
        raise SystemExit(f"callers that did not overflow into a callback: {failures}")
    async with http.get(f"{base}/admin/sla?window=15m") as resp:
        opened = (await resp.json())["callbacks"]["open"]
    if opened < n:
        raise SystemExit(f"only {opened} callbacks open, wanted {n}")
    return time.perf_counter() - started


async def route_for(http: ClientSession, base: str, tag: str, seconds: float, rate: float, workers: int) -> list[float]:
    """Paced route requests into `ivr` for `seconds`: each one's latency (a failure is a MISS)."""
    latencies: list[float] = []
    interval = workers / rate
    stop_at = time.perf_counter() + seconds
    counter = iter(range(10**9))

    async def worker(w: int) -> None:
        next_at = time.perf_counter() + w * interval / workers
        while time.perf_counter() < stop_at:
            next_at += interval
            i = next(counter)
            body = {"call_id": f"{tag}-{i}", "caller": f"+86137{i:08d}", "queue": "ivr"}
            started = time.perf_counter()
            async with http.post(f"{base}/v1/calls", json=body) as resp:
                await resp.read()
                if resp.status != 201:
                    raise SystemExit(f"a route answered {resp.status}")
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    await asyncio.gather(*(worker(w) for w in range(workers)))
    return latencies


async def poll(http: ClientSession, base: str, stop: asyncio.Event, took: list[float]) -> None:
    """What the dashboard does every 2 s (its requests in parallel), and one full page more."""

    async def read(path: str) -> None:
        async with http.get(base + path) as resp:
            await resp.read()
            if resp.status != 200:
                raise SystemExit(f"{path} answered {resp.status}")

    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.gather(*(read(p) for p in POLL_PATHS))
        took.append(time.perf_counter() - started)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), POLL_EVERY_S)


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def line(samples: list[float]) -> str:
    ordered = sorted(samples)
    return (
        f"n={len(ordered)} p50={statistics.median(ordered) * 1000:.1f} ms "
        f"p99={p99(ordered) * 1000:.1f} ms max={ordered[-1] * 1000:.1f} ms"
    )


async def longest_command(redis_url: str) -> str:
    """The slowest command SLOWLOG kept (over 1 ms), with the engine op when it is a script."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        entries = await client.slowlog_get(1000)
    finally:
        await client.aclose()
    if not entries:
        return "none over 1 ms"
    top = max(entries, key=lambda e: e["duration"])
    words = [w.decode(errors="replace") if isinstance(w, bytes) else str(w) for w in top["command"].split()]
    engine = words[0].upper() in ("FCALL", "EVALSHA") and len(words) > 4
    what = f"{words[0].upper()} op {words[4]}" if engine else " ".join(words[:3])
    return f"{top['duration'] / 1000:.2f} ms ({what}); {len(entries)} commands over 1 ms"


async def slowlog_reset(redis_url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        await client.config_set("slowlog-log-slower-than", 1000)
        await client.config_set("slowlog-max-len", 1000)
        await client.slowlog_reset()
    finally:
        await client.aclose()


async def stress(kind: str, base: str, redis_url: str | None, args: argparse.Namespace) -> bool:
    connector = TCPConnector(limit=128)
    async with ClientSession(timeout=ClientTimeout(total=60), connector=connector) as http:
        await wait_ready(http, base)
        took = await open_callbacks(http, base, args.callbacks)
        print(f"[{kind}] {args.callbacks:,} open callbacks in {took:.1f} s")
        await route_for(http, base, "warm", 1.0, args.rate, args.workers)
        if redis_url:
            await slowlog_reset(redis_url)
        # Quiet and polled phases take turns, so a spell of load from elsewhere on the machine
        # (a 2-core CI runner) falls on both sides rather than on one.
        quiet, busy, polls = list[float](), list[float](), list[float]()
        phase_s = args.seconds / PHASES
        for turn in range(PHASES):
            quiet += await route_for(http, base, f"quiet{turn}", phase_s, args.rate, args.workers)
            stop = asyncio.Event()
            poller = asyncio.create_task(poll(http, base, stop, polls))
            busy += await route_for(http, base, f"polled{turn}", phase_s, args.rate, args.workers)
            stop.set()
            await poller
    print(f"[{kind}] route without the dashboard: {line(quiet)}")
    print(f"[{kind}] route with the dashboard polling: {line(busy)}")
    print(f"[{kind}] each poll ({len(POLL_PATHS)} reads in parallel): {line(polls)}")
    if redis_url:
        slowest = await longest_command(redis_url)
        print(f"[{kind}] longest Redis command in the run (SLOWLOG): {slowest}")
    base_p99, busy_p99 = p99(quiet), p99(busy)
    passed = busy_p99 <= 2 * base_p99
    print(
        f"{'PASS' if passed else 'MISS'} [{kind}]: route p99 with {args.callbacks:,} open callbacks and a "
        f"dashboard polling {busy_p99 * 1000:.1f} ms vs {base_p99 * 1000:.1f} ms without "
        f"(limit 2× = {2 * base_p99 * 1000:.1f} ms)"
    )
    return passed


def run_one(kind: str, args: argparse.Namespace) -> bool:
    server = RedisServer().start() if kind == "redis" else None
    router = None
    try:
        with tempfile.TemporaryDirectory(prefix="tierline-poll-") as folder:
            config = Path(folder) / "tierline.toml"
            config.write_text(CONFIG)
            base, router = start_router(server.url if server else "memory", config)
            return asyncio.run(stress(kind, base, server.url if server else None, args))
    finally:
        if router is not None:
            router.terminate()
            router.wait(timeout=10)
        if server is not None:
            server.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callbacks", type=int, default=100_000, help="open callbacks (default %(default)s)")
    parser.add_argument("--store", choices=("redis", "memory", "both"), default="both")
    parser.add_argument("--seconds", type=float, default=20.0, help="routing time each way (default %(default)s)")
    parser.add_argument("--rate", type=float, default=200.0, help="route requests a second (default %(default)s)")
    parser.add_argument("--workers", type=int, default=8, help="concurrent route clients (default %(default)s)")
    args = parser.parse_args()
    kinds = ("redis", "memory") if args.store == "both" else (args.store,)
    results = [run_one(kind, args) for kind in kinds]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
