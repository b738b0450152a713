"""Input checks shared by the staffing formulas: each raises ValueError with a sentence a
planner can read (the HTTP layer has already refused what a query can get wrong; these
guard direct callers such as the simulator and the interval plan)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def agents(value: int, minimum: int = 1) -> None:
    if value < minimum:
        raise ValueError(f"agents must be at least {minimum}, not {value}")


def load(value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"the offered load must be a finite number ≥ 0, not {value!r}")


def aht(value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"the average handle time must be a finite number > 0, not {value!r}")


def patience(value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"the mean patience must be a finite number > 0, not {value!r}")


def seconds(value: float, what: str) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{what} must be a finite number of seconds ≥ 0, not {value!r}")


def rates(values: Sequence[float]) -> None:
    for rate in values:
        if not (math.isfinite(rate) and rate >= 0):
            raise ValueError(f"an arrival rate must be a finite number ≥ 0, not {rate!r}")
