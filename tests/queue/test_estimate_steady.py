"""A short seeded run of loadtest/estimate_steady.py: the quoted waits are calibrated on a steady
day (memory store, virtual clock; the full run and its figures are in BENCHMARKS.md)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from tierline.queue.wait_accuracy import figures

SCRIPT = Path(__file__).resolve().parents[2] / "loadtest" / "estimate_steady.py"


def _scenario() -> ModuleType:
    sys.path.insert(0, str(SCRIPT.parent))  # the script imports loadtest/tiermix.py beside it
    try:
        spec = importlib.util.spec_from_file_location("estimate_steady", SCRIPT)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(SCRIPT.parent))


async def test_quotes_are_calibrated_on_a_steady_day() -> None:
    scenario = _scenario()
    # 20 agents, 180 s calls, 90 % busy, four hours after half an hour of warm-up.
    out = await scenario.run(hours=4, agents=20, aht=180.0, occupancy=0.9, seed=3, warmup_s=1800)
    checked = []
    for (tier, bucket), acc in out.by_bucket.items():
        fig = figures(acc)
        if fig.calls >= 100:  # fewer calls say little about a median of random waits
            assert fig.median_ratio is not None
            assert scenario.GOAL[0] <= fig.median_ratio <= scenario.GOAL[1], (tier, bucket, fig)
            checked.append((tier, bucket))
    assert {("mid", "1"), ("standard", "1"), ("standard", "2-5"), ("standard", "6-20")} <= set(checked)
    # The engine counted every answered call that had a quote, warm-up included.
    assert sum(acc.n for acc in out.engine.values()) == out.answered - out.unquoted
