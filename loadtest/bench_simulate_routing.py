"""Routing latency while a what-if simulation runs (a benchmark, not a test).

    .venv/bin/python loadtest/bench_simulate_routing.py [--seconds 10] [--rate 200] [--calls 20000]
        [--replications 4] [--json PATH]

Starts `tierline serve` (memory store, history off) on a free loopback port, then routes calls
at a steady --rate (POST /v1/calls, one connection, paced) for --seconds in three phases:
`before` (idle), `during` (right after POST /admin/simulate of a --calls-call day with
--replications replications, checked to be still running when the phase ends) and `after`.
Prints p50 / p90 / p99 / max per phase and the during/before ratios. The simulation runs in
the service's worker process, so the serving loop is never blocked by it; what can still
show is the two processes sharing this machine's cores (2 here, with other work on them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from tierline.tiers.model import TIERS

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_simulate import day  # noqa: E402  (a loadtest script next to this one)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def csv_of(calls: int) -> tuple[str, str]:
    """The benchmark day's arrivals and staffing as the CSVs the API takes."""
    scenario = day(calls)
    tiers = TIERS
    rows = ["start," + ",".join(tiers)]
    for i, counts in enumerate(scenario.arrivals.intervals):
        minutes = 8 * 60 + 15 * i
        rows.append(f"{minutes // 60:02d}:{minutes % 60:02d}," + ",".join(f"{counts[t]:.3f}" for t in tiers))
    base = scenario.arrivals.start - 8 * 3600

    def hhmm(at: float) -> str:
        minutes = int((at - base) // 60)
        return f"{minutes // 60:02d}:{minutes % 60:02d}"

    plan = ["start,end,agents"] + [f"{hhmm(s.start)},{hhmm(s.end)},{s.agents}" for s in scenario.staffing]
    return "\n".join(rows), "\n".join(plan)


async def phase(session: aiohttp.ClientSession, base: str, name: str, seconds: float, rate: float) -> list[float]:
    latencies = []
    gap = 1.0 / rate
    began = time.perf_counter()
    n = 0
    while (now := time.perf_counter()) - began < seconds:
        n += 1
        body = {"call_id": f"{name}-{n}", "caller": f"+4930{n:07d}"}
        t0 = time.perf_counter()
        async with session.post(base + "/v1/calls", json=body) as resp:
            await resp.read()
            assert resp.status == 201, resp.status
        latencies.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(max(0.0, began + n * gap - time.perf_counter()))
        del now
    return latencies


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)

    def q(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 3)

    return {
        "requests": len(ordered),
        "p50_ms": q(0.5),
        "p90_ms": q(0.9),
        "p99_ms": q(0.99),
        "max_ms": round(ordered[-1], 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    env = dict(os.environ, TIERLINE_HISTORY="off")
    cmd = [sys.executable, "-m", "tierline.router.cli", "serve", "--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(cmd, env=env)  # noqa: ASYNC220 (started once, before any request)
    base = f"http://127.0.0.1:{port}"
    arrivals, staffing = csv_of(args.calls)
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(base + "/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            await phase(session, base, "warm", 2, args.rate)
            before = await phase(session, base, "before", args.seconds, args.rate)
            request = {"arrivals_csv": arrivals, "staffing_csv": staffing, "aht_s": 180, "patience_s": 300,
                       "replications": args.replications, "seed": 1}  # fmt: skip
            async with session.post(base + "/admin/simulate", json=request) as resp:
                job = await resp.json()
                assert resp.status == 202, job
            during = await phase(session, base, "during", args.seconds, args.rate)
            async with session.get(base + job["href"]) as resp:
                still = (await resp.json())["status"]
            while True:
                async with session.get(base + job["href"]) as resp:
                    done = await resp.json()
                if done["status"] != "running":
                    break
                await asyncio.sleep(0.5)
            after = await phase(session, base, "after", args.seconds, args.rate)
    finally:
        server.terminate()
        server.wait(timeout=10)
    figures = {
        "before": summary(before),
        "during": summary(during),
        "after": summary(after),
        "simulation_still_running_when_during_ended": still == "running",
        "simulation_status": done["status"],
        "calls_simulated": done["result"]["calls_simulated"] if done.get("result") else None,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--replications", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    for name in ("before", "during", "after"):
        f = figures[name]
        print(
            f"{name:>7}: {f['requests']} routes, p50 {f['p50_ms']} ms, p90 {f['p90_ms']} ms, "
            f"p99 {f['p99_ms']} ms, max {f['max_ms']} ms"
        )
    b, d = figures["before"], figures["during"]
    print(
        f"during/before: p50 x{d['p50_ms'] / b['p50_ms']:.2f}, p99 x{d['p99_ms'] / b['p99_ms']:.2f}; "
        f"simulation still running at the end of 'during': {figures['simulation_still_running_when_during_ended']}, "
        f"then {figures['simulation_status']} ({figures['calls_simulated']} calls); load {figures['load_average']}"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
