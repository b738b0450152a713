"""A short seeded run of loadtest/callback_day.py (issue 16 item 2): with the lines saturated by
inbound calls, the tiered order completes the callbacks by their deadline; the order before
issue 16 (every call first) lets them miss it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

LOADTEST = Path(__file__).resolve().parents[2] / "loadtest"


def load() -> ModuleType:
    sys.path.insert(0, str(LOADTEST))
    spec = importlib.util.spec_from_file_location("callback_day", LOADTEST / "callback_day.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["callback_day"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


async def test_urgent_callbacks_meet_their_deadline_on_a_saturated_day() -> None:
    day = load()
    short = {
        "agents": 5,
        "occupancy": 1.05,  # more inbound work than agents: callbacks get a turn only by the rule
        "callbacks_per_hour": 3.0,
        "no_answer": 0.0,
        "hours": 6.0,
        "warmup_h": 3.0,
        "window_h": 6.0,
        "seed": 7,
    }
    tiered = await day.run(day.RULES["tiered"], **short)
    calls_first = await day.run(day.RULES["calls first"], **short)
    assert tiered.callbacks >= 5 and calls_first.callbacks >= 5
    assert tiered.in_time_share >= 0.95
    assert calls_first.in_time_share < 0.5
    # The urgent callbacks went ahead of standard calls, never of VIP or mid ones.
    assert len(tiered.waits["vip"]) > 0 and len(tiered.waits["mid"]) > 0
