"""Routing latency while a what-if simulation runs (a benchmark, not a test).

    .venv/bin/python loadtest/bench_simulate_routing.py [--rounds 4] [--seconds 5] [--rate 200]
        [--calls 20000] [--replications 4] [--json PATH]

Starts `tierline serve` (memory store, history off) on a free loopback port, then routes calls
at a steady --rate (POST /v1/calls, one connection, paced) in --rounds rounds of two phases of
--seconds each: `idle`, then `during` (right after POST /admin/simulate of a --calls-call day
with --replications replications, checked to be still running when the phase ends; the next
round waits for it to finish). The phases take turns so that load from elsewhere on the
machine weighs on both alike. Prints p50 / p90 / p99 / max of each side pooled, the
during/idle ratios, and beside them the same ratios between the idle phases of the odd and
the even rounds: how far two samples of the same thing differ on this machine, the noise
any difference has to rise above. The simulation runs in the service's worker process, so
the serving loop is never blocked by it; what can still show is the two processes sharing
this machine's cores.
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


async def simulate(session: aiohttp.ClientSession, base: str, request: dict[str, Any]) -> str:
    """Start a simulation job; its poll link."""
    async with session.post(base + "/admin/simulate", json=request) as resp:
        job = await resp.json()
        assert resp.status == 202, job
    href: str = job["href"]
    return href


async def job_status(session: aiohttp.ClientSession, base: str, href: str) -> dict[str, Any]:
    async with session.get(base + href) as resp:
        body: dict[str, Any] = await resp.json()
        return body


async def run(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    env = dict(os.environ, TIERLINE_HISTORY="off")
    cmd = [sys.executable, "-m", "tierline.router.cli", "serve", "--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(cmd, env=env)  # noqa: ASYNC220 (started once, before any request)
    base = f"http://127.0.0.1:{port}"
    arrivals, staffing = csv_of(args.calls)
    request = {"arrivals_csv": arrivals, "staffing_csv": staffing, "aht_s": 180, "patience_s": 300,
               "replications": args.replications, "seed": 1}  # fmt: skip
    idle: list[list[float]] = []
    during: list[float] = []
    still_running, calls = [], []
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
            for turn in range(args.rounds):
                idle.append(await phase(session, base, f"idle{turn}", args.seconds, args.rate))
                href = await simulate(session, base, request)
                during += await phase(session, base, f"during{turn}", args.seconds, args.rate)
                still_running.append((await job_status(session, base, href))["status"] == "running")
                done = await job_status(session, base, href)
                for _ in range(3000):  # a poll link, not an event: up to 10 minutes
                    if done["status"] != "running":
                        break
                    await asyncio.sleep(0.2)
                    done = await job_status(session, base, href)
                assert done["status"] == "done", done
                calls.append(done["result"]["calls_simulated"])
    finally:
        server.terminate()
        server.wait(timeout=10)
    return {
        "idle": summary([x for lat in idle for x in lat]),
        "during": summary(during),
        "idle_odd": summary([x for lat in idle[0::2] for x in lat]),
        "idle_even": summary([x for lat in idle[1::2] for x in lat]),
        "simulation_still_running_when_during_ended": still_running,
        "calls_simulated": calls,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0, help="each phase")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--replications", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    for name in ("idle", "during", "idle_odd", "idle_even"):
        f = figures[name]
        print(
            f"{name:>9}: {f['requests']} routes, p50 {f['p50_ms']} ms, p90 {f['p90_ms']} ms, "
            f"p99 {f['p99_ms']} ms, max {f['max_ms']} ms"
        )

    def ratios(a: dict[str, float], b: dict[str, float]) -> str:
        return ", ".join(f"{p} x{a[p + '_ms'] / b[p + '_ms']:.2f}" for p in ("p50", "p90", "p99"))

    print(f"during/idle: {ratios(figures['during'], figures['idle'])}")
    print(f"idle odd/even rounds (the noise): {ratios(figures['idle_odd'], figures['idle_even'])}")
    print(
        "simulation still running at the end of each 'during': "
        f"{figures['simulation_still_running_when_during_ended']}; "
        f"calls simulated {figures['calls_simulated']}; load {figures['load_average']}"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
