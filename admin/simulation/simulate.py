"""The simulator's front door: a scenario in, its replications run and summarised out.

Runs in whatever process calls it (the CLI's, or the service's worker process, see
`worker.py`); it touches no file, socket, archive or metric.
"""

from __future__ import annotations

from tierline.admin.simulation.run import replicate
from tierline.admin.simulation.scenario import Scenario
from tierline.admin.simulation.summary import Outcome, summarise


def simulate(scenario: Scenario) -> Outcome:
    """Every replication (index 0..n−1, each seeded from `scenario.seed` and its index) in turn.
    Runtime: about linear in the calls simulated (see BENCHMARKS.md)."""
    runs = [replicate(scenario, index) for index in range(scenario.replications)]
    return summarise(scenario, runs)
