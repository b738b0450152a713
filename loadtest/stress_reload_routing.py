"""Routes calls through the router that is reloading a big tier file (a stress script, not a test).

    .venv/bin/python loadtest/stress_reload_routing.py [ROWS] [--rate N] [--limit-ms MS]

Starts a throwaway redis-server and one real `tierline serve --store redis://…` process,
loads a first small table (the callers it routes, present in both versions), then posts a
generated tier file of ROWS rows (default 10^6) to `POST /admin/tiers/reload` of that same
process while routing calls through it (`POST /v1/calls`, about `--rate` a second, paced,
not as fast as possible: the question is what the reload costs a caller, not what the
machine can carry). Prints route p50/p99/max before and during the reload, the calls queued
at another tier than their caller's (must be 0: each caller has the same tier in both
versions, so a wrong tier means a look-up found nothing), and PASS/MISS for the
during-reload p99 against `--limit-ms` (50 ms). ROWS of 100000 runs in well under a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import ClientSession, ClientTimeout

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: tests.support

from stress_support import wait_ready

from tests.support.redis_servers import RedisServer, free_port

TIERS = ("vip", "mid", "standard", "blacklisted")
ROUTED = 5_000  # the first rows: loaded before the big reload and routed during it


def caller(i: int) -> str:
    return f"+86139{i:08d}"


def write_tier_file(path: Path, rows: int) -> None:
    with path.open("w") as out:
        out.write("caller,tier,customer_id,region\n")
        for start in range(0, rows, 100_000):
            chunk = range(start, min(rows, start + 100_000))
            out.write("".join(f"{caller(i)},{TIERS[i % 4]},C{i:07d},R{i % 31}\n" for i in chunk))


def start_router(redis_url: str, config: Path, log: Path) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    env = {**os.environ, "TIERLINE_STORE": redis_url, "TIERLINE_PORT": str(port)}
    with log.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "tierline.router.cli", "serve", "--config", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    return f"http://127.0.0.1:{port}", process


async def reload(http: ClientSession, base: str, path: Path) -> dict[str, object]:
    with path.open("rb") as body:
        async with http.post(f"{base}/admin/tiers/reload", data=body, headers={"Content-Type": "text/csv"}) as resp:
            payload = await resp.json()
            if resp.status != 200 or not payload.get("swapped"):
                raise SystemExit(f"reload failed: {resp.status} {payload}")
            return dict(payload)


class Routes:
    """Paced route requests: each answer's latency, and whether it started before/during the reload."""

    def __init__(self) -> None:
        self.before: list[float] = []
        self.during: list[float] = []
        self.wrong = 0
        self.errors = 0
        self.phase = "before"
        self.stop = False

    async def run(self, http: ClientSession, base: str, rate: float, workers: int) -> None:
        interval = workers / rate
        counter = iter(range(10**9))

        async def worker(w: int) -> None:
            next_at = time.perf_counter() + w * interval / workers
            while not self.stop:
                next_at += interval
                i = next(counter)
                phase = self.phase
                started = time.perf_counter()
                row = i % ROUTED
                body = {"call_id": f"stress-{w}-{i}", "caller": caller(row)}
                try:
                    async with http.post(f"{base}/v1/calls", json=body) as resp:
                        view = await resp.json()
                        ok = resp.status == 201
                except (TimeoutError, OSError):
                    ok, view = False, {}
                elapsed = time.perf_counter() - started
                if not ok:
                    self.errors += 1
                elif view["tier"] != TIERS[row % 4]:  # the same tier in both versions
                    self.wrong += 1
                (self.before if phase == "before" else self.during if phase == "during" else []).append(elapsed)
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

        await asyncio.gather(*(worker(w) for w in range(workers)))


def figures(samples: list[float]) -> tuple[str, float]:
    """A line of p50/p99/max, and the p99 in seconds (infinite with no samples: a MISS)."""
    if not samples:
        return "no samples", float("inf")
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    line = (
        f"n={len(ordered)} p50={statistics.median(ordered) * 1000:.1f} ms "
        f"p99={p99 * 1000:.1f} ms max={ordered[-1] * 1000:.1f} ms"
    )
    return line, p99


async def stress(base: str, rows: int, folder: Path, rate: float, workers: int, limit_ms: float) -> bool:
    small, big = folder / "first.csv", folder / "big.csv"
    write_tier_file(small, ROUTED)
    write_tier_file(big, rows)
    print(f"tier file: {rows:,} rows, {big.stat().st_size / 1e6:.1f} MB")
    async with ClientSession(timeout=ClientTimeout(total=600)) as http:
        await wait_ready(http, base)
        await reload(http, base, small)
        await asyncio.sleep(1.2)  # the router's cached tier version is the first table by now
        routes = Routes()
        routing = asyncio.create_task(routes.run(http, base, rate, workers))
        await asyncio.sleep(3.0)
        routes.phase = "during"
        started = time.perf_counter()
        result = await reload(http, base, big)
        took = time.perf_counter() - started
        routes.phase = "after"
        await asyncio.sleep(0.5)
        routes.stop = True
        await routing
    before, _ = figures(routes.before)
    during, p99 = figures(routes.during)
    print(f"reload: {result['loaded']:,} rows in {took:.1f} s through the routing process")
    print(f"route before the reload: {before}")
    print(f"route during the reload: {during}")
    print(f"calls queued at another tier than the caller's: {routes.wrong}; failed routes: {routes.errors}")
    passed = p99 * 1000 <= limit_ms and routes.wrong == 0 and routes.errors == 0
    verdict = "PASS" if passed else "MISS"
    print(f"{verdict}: route p99 during a {rows:,}-row reload {p99 * 1000:.1f} ms (limit {limit_ms:.0f} ms)")
    return passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=200.0, help="route requests a second (default %(default)s)")
    parser.add_argument("--workers", type=int, default=8, help="concurrent route clients (default %(default)s)")
    parser.add_argument("--limit-ms", type=float, default=50.0, help="p99 bound during the reload")
    args = parser.parse_args()
    server = RedisServer().start()
    router = None
    try:
        with tempfile.TemporaryDirectory(prefix="tierline-stress-") as folder:
            config = Path(folder) / "tierline.toml"
            # No overflow on wait: the calls routed here just wait, nothing else happens to them.
            config.write_text("[tiers.mid]\noverflow_after_s = 0\n")
            log = Path(folder) / "router.log"
            base, router = start_router(server.url, config, log)
            try:
                passed = asyncio.run(stress(base, args.rows, Path(folder), args.rate, args.workers, args.limit_ms))
            except BaseException:
                print("the router's log ends:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:]))
                raise
    finally:
        if router is not None:
            router.terminate()
            router.wait(timeout=10)
        server.cleanup()
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
