"""The per-tier figures against a discrete-event simulation (ciw), fixed seeds, loads ≤ 90 %
for Erlang C and an overloaded pool with abandons for Erlang A: each analytic figure must lie
inside the simulation's 95 % interval (20 batch means after a warm-up). Time in units of AHT."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable

import ciw
import pytest

from tierline.admin.staffing import erlang_a as ea
from tierline.admin.staffing import priority

BATCHES = 20
T_975_19 = 2.093  # Student's t, 19 degrees of freedom


def simulate(
    agents: int, rates: list[float], horizon: float, seed: int, patience: float | None = None
) -> list[ciw.Record]:
    classes = [f"tier{i}" for i in range(len(rates))]
    extra = {}
    if patience is not None:
        extra["reneging_time_distributions"] = {c: [ciw.dists.Exponential(1 / patience)] for c in classes}
    network = ciw.create_network(
        arrival_distributions={c: [ciw.dists.Exponential(r)] for c, r in zip(classes, rates, strict=True)},
        service_distributions={c: [ciw.dists.Exponential(1.0)] for c in classes},
        number_of_servers=[agents],
        priority_classes={c: i for i, c in enumerate(classes)},  # non-preemptive by default
        **extra,
    )
    ciw.seed(seed)
    sim = ciw.Simulation(network)
    sim.simulate_until_max_time(horizon)
    return list(sim.get_all_records())


def interval(
    records: list[ciw.Record], tier: int, warm: float, horizon: float, hit: Callable[[ciw.Record], bool]
) -> tuple[float, float]:
    """95 % interval of the share of the tier's calls (by arrival batch) for which `hit` holds."""
    width = (horizon - warm) / BATCHES
    hits, counts = [0] * BATCHES, [0] * BATCHES
    for r in records:
        if r.customer_class != f"tier{tier}" or r.arrival_date < warm:
            continue
        b = min(int((r.arrival_date - warm) / width), BATCHES - 1)
        counts[b] += 1
        hits[b] += hit(r)
    means = [h / c for h, c in zip(hits, counts, strict=True)]
    mean = statistics.fmean(means)
    half = T_975_19 * statistics.stdev(means) / math.sqrt(BATCHES)
    return mean - half, mean + half


C_AGENTS, C_RATES, C_THRESHOLD, C_HORIZON, C_WARM = 4, [0.6, 1.0, 1.6], 0.25, 4000.0, 50.0  # 80 % load


@pytest.fixture(scope="module")
def erlang_c_run() -> list[ciw.Record]:
    return simulate(C_AGENTS, C_RATES, C_HORIZON, seed=18)


def test_erlang_c_tiers_inside_the_simulation_interval(erlang_c_run: list[ciw.Record]) -> None:
    threshold, horizon, warm = C_THRESHOLD, C_HORIZON, C_WARM
    exact = priority.class_waits(C_AGENTS, C_RATES, 1.0, [threshold] * 3)
    records = erlang_c_run
    for k, figures in enumerate(exact):
        low, high = interval(records, k, warm, horizon, lambda r: r.waiting_time <= threshold)
        assert figures.service_level is not None
        assert low <= figures.service_level <= high, (k, low, figures.service_level, high)


def test_erlang_a_tiers_inside_the_simulation_interval() -> None:
    agents, rates, threshold, patience, horizon, warm = 4, [1.2, 2.8], 0.25, 2.0, 3000.0, 50.0  # 100 % load
    fates = ea.class_fates(agents, rates, 1.0, patience, [threshold] * 2)
    records = simulate(agents, rates, horizon, seed=5, patience=patience)
    for k, fate in enumerate(fates):
        assert fate is not None
        low, high = interval(
            records, k, warm, horizon, lambda r: r.record_type == "service" and r.waiting_time <= threshold
        )
        assert low <= fate.answered_within <= high, (k, low, fate.answered_within, high)
        low, high = interval(records, k, warm, horizon, lambda r: r.record_type == "renege")
        assert low <= fate.abandoned <= high, (k, low, fate.abandoned, high)
