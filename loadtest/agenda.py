"""The scripted days' event agenda (callback_day.py, estimate_steady.py): what happens next, in
time order, ties in the order pushed, so a seeded day repeats exactly."""

from __future__ import annotations

import heapq
import itertools


class Agenda:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str, str]] = []
        self._order = itertools.count()

    def push(self, at: float, kind: str, subject: str = "") -> None:
        heapq.heappush(self._heap, (at, next(self._order), kind, subject))

    def pop(self) -> tuple[float, str, str]:
        """(at, kind, subject) of the earliest event."""
        at, _, kind, subject = heapq.heappop(self._heap)
        return at, kind, subject

    def __bool__(self) -> bool:
        return bool(self._heap)
