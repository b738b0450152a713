"""Met, at risk or missed: how the dashboard and `tierline sla` word a queue × tier's service level.

The rule (the dashboard's `static/dashboard.js` applies the same one, and its browser test
holds the two equal):

- `no target`: the tier has no target (blacklisted by default).
- `missed`: the service level is below the target.
- `at risk`: the service level meets the target by less than `AT_RISK_MARGIN` (5 points),
  or meets it while a call has already waited longer than the threshold (the next one to
  be answered will count as late), or there is no service level yet (nobody's wait ended
  in the window) while calls are waiting.
- `met`: at or above target + 5 points and nobody waiting beyond the threshold.
- `idle`: no service level yet and nobody waiting.
"""

from __future__ import annotations

from typing import Final, Literal

Status = Literal["met", "at risk", "missed", "idle", "no target"]

AT_RISK_MARGIN: Final = 0.05
EPSILON: Final = 1e-9  # service levels arrive rounded to 6 places


def sla_status(
    level: float | None, target: float | None, waiting_now: int, oldest_wait_s: float | None, threshold_s: float
) -> Status:
    if target is None:
        return "no target"
    late_waiter = oldest_wait_s is not None and oldest_wait_s > threshold_s
    if level is None:
        return "at risk" if waiting_now > 0 else "idle"
    if level < target - EPSILON:
        return "missed"
    if level < target + AT_RISK_MARGIN - EPSILON or late_waiter:
        return "at risk"
    return "met"
