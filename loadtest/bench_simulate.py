"""Measures the what-if simulator (a benchmark, not a test): a day of 20,000 calls over 4 tiers.

    .venv/bin/python loadtest/bench_simulate.py [--calls 20000] [--runs 3] [--profile] [--json PATH]

The day: 08:00-18:00, 40 intervals with a midday peak, tiers 10% vip / 30% mid / 55% standard /
5% blacklisted, AHT 180 s, mean patience 300 s, mid overflow after 60 s (callbacks worked by
idle agents, 80% reached). Staffing: the interval plan's agents (Erlang C) minus 5% (so calls
wait, abandon and overflow: every rule of the engine is exercised), till 18:30. One
replication per run, the median of --runs printed with the goal (issue 18 item 8: <= 2 s),
as wall time and as this process's CPU time (on a shared, busy machine the wall time mostly
measures the other processes; compare runs of one sitting), with the machine's load.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import pstats
import statistics
import time
from pathlib import Path

from tierline.admin.simulation import scenario as sc
from tierline.admin.simulation.interval_plan import day_plan
from tierline.admin.simulation.run import replicate
from tierline.queue.policy import Policy

GOAL_S = 2.0
START = 1_800_000_000.0 - 1_800_000_000.0 % 86_400  # a UTC midnight
MIX = {"vip": 0.10, "mid": 0.30, "standard": 0.55, "blacklisted": 0.05}


def day(calls: int) -> sc.Scenario:
    weights = [1.0 + 0.8 * math.sin(math.pi * i / 40) for i in range(40)]  # a midday peak
    scale = calls / sum(weights)
    rows = ["start," + ",".join(MIX)]
    for i, w in enumerate(weights):
        rows.append(
            f"{8 + i // 4:02d}:{i % 4 * 15:02d}," + ",".join(f"{w * scale * share:.3f}" for share in MIX.values())
        )
    curve = sc.parse_arrivals("\n".join(rows), START)
    policy = Policy()
    plan = day_plan(curve, 180.0, policy)
    lines = ["start,end,agents"]
    for i, need in enumerate(plan.intervals):
        agents = max(1, int((need.agents or 1) * 0.95))
        end = "18:30" if i == len(plan.intervals) - 1 else f"{8 + (i + 1) // 4:02d}:{(i + 1) % 4 * 15:02d}"
        lines.append(f"{need.time},{end},{agents}")
    shifts = sc.parse_staffing("\n".join(lines), START)
    return sc.scenario(
        curve,
        shifts,
        policy,
        aht_s=180.0,
        patience_s=300.0,
        callback_handle_s=None,
        callback_reach=0.8,
        seed=1,
        replications=1,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print where one run spends its time")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    scenario = day(args.calls)
    if args.profile:
        cProfile.runctx("replicate(scenario, 0)", globals(), {"scenario": scenario}, "/tmp/bench_simulate.prof")
        pstats.Stats("/tmp/bench_simulate.prof").sort_stats("tottime").print_stats(20)
    times, cpu = [], []
    run = None
    for index in range(args.runs):
        began, began_cpu = time.perf_counter(), time.process_time()
        run = replicate(scenario, index)
        times.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    assert run is not None
    median = statistics.median(times)
    median_cpu = statistics.median(cpu)
    totals = {
        k: sum(getattr(t, k) for t in run.tallies.values()) for k in ("arrived", "answered", "abandoned", "overflowed")
    }
    figures = {
        "calls": run.calls,
        "runs_s": [round(t, 3) for t in times],
        "median_s": round(median, 3),
        "cpu_s": [round(t, 3) for t in cpu],
        "median_cpu_s": round(median_cpu, 3),
        "calls_per_s": round(run.calls / median),
        "goal_s": GOAL_S,
        "met": median <= GOAL_S,
        "met_in_cpu_time": median_cpu <= GOAL_S,
        "outcomes": totals,
        "callbacks": len(run.callbacks),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    print(
        f"a day of {run.calls} calls over 4 tiers: median {median:.2f} s wall, {median_cpu:.2f} s CPU of {args.runs} "
        f"runs ({figures['calls_per_s']} calls/s wall); goal <= {GOAL_S:.0f} s: "
        f"wall {'met' if figures['met'] else 'NOT met'}, CPU {'met' if figures['met_in_cpu_time'] else 'NOT met'}"
    )
    print(f"outcomes {totals}, callbacks {len(run.callbacks)}")
    print(
        f"load average {figures['load_average']} on {os.cpu_count()} CPUs (wall time is shared; CPU time is this run's)"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
