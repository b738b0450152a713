"""The mean patience observed over a window, for Erlang A: its maximum-likelihood estimate.

With exponential patience every call that waited is an observation: an abandon shows its
patience, an answered or overflowed call shows only that its patience was longer than its
wait (censored). The likelihood Π θe^(−θ·wait) over abandons × Π e^(−θ·wait) over the rest
peaks at θ̂ = abandons / total waiting time, so the mean patience is
    total time every call spent waiting / number of abandons.
Calls still waiting when the window closes are censored too; the tallies leave them out,
which shortens the estimate a little while queues are long. No abandon: no estimate (None).
"""

from __future__ import annotations

import math


def observed_patience(total_wait_s: float, abandons: int) -> float | None:
    """Total waiting seconds of every call (answered, abandoned, overflowed) / abandons."""
    if not (math.isfinite(total_wait_s) and total_wait_s >= 0) or abandons < 0:
        raise ValueError("waiting time and abandons must be finite and ≥ 0")
    if abandons == 0 or total_wait_s == 0:
        return None
    return total_wait_s / abandons
