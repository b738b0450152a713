"""Estimated wait time for a waiting caller, from the queue's recent answer rate.

Method: over the last `EWT_WINDOW_S` (15 min, or since the store started if that is
shorter) the queue answered `n` calls, so one answer came every `span / n` seconds on
average; a caller at position p is expected to wait p such gaps. Throughput already
reflects how many agents work the queue and their handle time, so no staffing input is
needed. Null when the queue has answered nothing in the window: no history, no guess.
"""

from __future__ import annotations

from typing import Final

EWT_WINDOW_S: Final = 15 * 60.0


def estimated_wait(position: int, answered_in_window: int, span_s: float) -> float | None:
    if answered_in_window <= 0 or span_s <= 0:
        return None
    return round(position * min(span_s, EWT_WINDOW_S) / answered_in_window, 1)
