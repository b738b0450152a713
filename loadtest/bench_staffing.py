"""Measures the staffing maths (a benchmark, not a test): issue 18 item 8's first goal.

    .venv/bin/python loadtest/bench_staffing.py [--repeat 7] [--json PATH]

For N = 10, 100, 500 and 1,000 agents, four tiers (vip 10 %, mid 20 %, standard 60 %,
blacklisted 10 % of the calls), AHT 180 s, thresholds 20/30/60/60 s, the pool at 95 % and at
98 % occupancy:
1. `figures`: every tier's exact figures at N (priority.class_waits: P(wait), the exact
   service level by uniformisation, Cobham's mean wait). Goal: <= 50 ms at N <= 1,000.
2. `forecast`: what GET /admin/forecast computes (outlook: the figures plus each tier's agents
   needed and the headline, a galloping search over N), Erlang C.
3. `erlang_a`: the same forecast under Erlang A (patience 300 s), per tier by its walk: no goal,
   shown so a planner knows what the model costs.
Each figure is the median of --repeat runs in one process, in this process's CPU time (the
machine is shared with other work: wall time would mostly measure the others).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tierline.admin.staffing import outlook as so
from tierline.admin.staffing import priority
from tierline.tiers.model import Tier

AHT = 180.0
GOAL_MS = 50.0
MIX: dict[Tier, tuple[float, float, float | None]] = {  # share of calls, threshold, target
    "vip": (0.1, 20.0, 0.9),
    "mid": (0.2, 30.0, 0.85),
    "standard": (0.6, 60.0, 0.8),
    "blacklisted": (0.1, 60.0, None),
}


def demands(agents: int, occupancy: float) -> list[so.TierDemand]:
    per_s = occupancy * agents / AHT
    return [
        so.TierDemand(tier=t, arrivals_per_s=share * per_s, threshold_s=threshold, target=target)
        for t, (share, threshold, target) in MIX.items()
    ]


def median_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        run()
        times.append((time.process_time() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows: list[dict[str, float | int | None]] = []
    worst = 0.0
    print("CPU time, median of runs")
    print(f"{'agents':>6} {'occ':>5} {'figures ms':>11} {'forecast ms':>12} {'erlang_a ms':>12}  needed C/A")
    for agents in (10, 100, 500, 1000):
        for occupancy in (0.95, 0.98):
            mix = demands(agents, occupancy)
            rates = [d.arrivals_per_s for d in mix]
            thresholds = [d.threshold_s for d in mix]
            erlang_a = so.Assumptions(model="erlang_a", patience_s=300.0)
            figures = median_ms(lambda: priority.class_waits(agents, rates, AHT, thresholds), args.repeat)  # noqa: B023
            forecast = median_ms(lambda: so.outlook(agents, mix, AHT), args.repeat)  # noqa: B023
            slow = median_ms(lambda: so.outlook(agents, mix, AHT, erlang_a), max(1, args.repeat // 3))  # noqa: B023
            needed = (so.staffing(mix, AHT), so.staffing(mix, AHT, erlang_a))
            worst = max(worst, figures)
            rows.append(
                {
                    "agents": agents,
                    "occupancy": occupancy,
                    "figures_ms": round(figures, 2),
                    "forecast_ms": round(forecast, 2),
                    "erlang_a_forecast_ms": round(slow, 1),
                    "needed_erlang_c": needed[0],
                    "needed_erlang_a": needed[1],
                }
            )
            line = f"{agents:>6} {occupancy:>5.2f} {figures:>11.2f} {forecast:>12.2f} {slow:>12.1f}"
            print(f"{line}  {needed[0]}/{needed[1]}")
    print(f"exact per-tier figures, N <= 1,000: worst median {worst:.2f} ms (goal <= {GOAL_MS:.0f} ms)")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "worst_figures_ms": worst, "goal_ms": GOAL_MS}, indent=2))
    return 0 if worst <= GOAL_MS else 1


if __name__ == "__main__":
    sys.exit(main())
