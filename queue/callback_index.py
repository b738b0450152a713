"""The memory store's supervision indexes of callbacks: counts by status and deadline order.

What supervisors read — counts per status, per queue × tier, overdue now, a page of a list —
comes from these indexes, each moved in the same step as the callback it counts, so every
read is O(log n) or one page long, never a pass over every callback (the Redis engine keeps
the same indexes as sorted sets and hash counters).
"""

from __future__ import annotations

from itertools import islice

from sortedcontainers import SortedList

from tierline.queue.callbacks import Callback, CallbackStatus
from tierline.queue.paging import PageKey
from tierline.queue.store import CallbackFilter, CallbackSummary
from tierline.tiers.model import Tier


def _key(callback: Callback) -> PageKey:
    return (callback.deadline, callback.callback_id)


HOUR = 3600.0


def workload_edges(now: float, hours: int = 24) -> list[float]:
    """now, each whole hour (of epoch time, UTC) after it, and now + `hours` hours: the team
    lead's spans of deadline (the first and the last are the parts of an hour around now)."""
    end = now + hours * HOUR
    edge = (now // HOUR + 1) * HOUR
    edges = [now]
    while edge < end:
        edges.append(edge)
        edge += HOUR
    return [*edges, end]


def _before(index: SortedList, now: float) -> int:
    """Entries with a deadline strictly before now: (now,) sorts ahead of every (now, id)."""
    return int(index.bisect_left((now,)))


class CallbackIndex:
    def __init__(self) -> None:
        # by status; "in_time": completed by the deadline; "at_risk": active and flagged at_risk
        # ("at_risk:<queue>": those of one queue)
        self._counts: dict[str, int] = {}
        self._active: SortedList = SortedList()  # PageKey of open and assigned callbacks
        self._lanes: dict[tuple[str, Tier], SortedList] = {}  # the same, per queue × tier
        self._done: SortedList = SortedList()  # PageKey of closed callbacks not yet forgotten

    # --- moves (the store calls these in the step that changes the callback) -----------------

    def opened(self, callback: Callback) -> None:
        self._count(callback.status, 1)
        if callback.at_risk:
            self._count("at_risk", 1)
            self._count("at_risk:" + callback.queue, 1)
        self._add_active(callback)

    def deadline_moving(self, callback: Callback) -> None:
        """Before an active callback's deadline changes; `deadline_moved` after."""
        self._remove_active(callback)

    def deadline_moved(self, callback: Callback) -> None:
        self._add_active(callback)

    def status_changed(self, callback: Callback, before: CallbackStatus) -> None:
        """After any status change; a close moves the callback from the active to the done list."""
        if before == callback.status:
            return
        self._count(before, -1)
        self._count(callback.status, 1)
        if not callback.active:
            self._remove_active(callback)
            self._done.add(_key(callback))
            if callback.at_risk:
                self._count("at_risk", -1)
                self._count("at_risk:" + callback.queue, -1)
            if callback.completed_in_time():
                self._count("in_time", 1)

    def forgotten(self, callback: Callback) -> None:
        """A closed callback leaves the store after retention."""
        self._count(callback.status, -1)
        if callback.completed_in_time():
            self._count("in_time", -1)
        self._done.discard(_key(callback))

    # --- reads ------------------------------------------------------------------------------

    def summary(self, now: float) -> CallbackSummary:
        return CallbackSummary.of(self._counts, _before(self._active, now), self._counts.get("in_time", 0))

    def status_count(self, status: CallbackStatus) -> int:
        return self._counts.get(status, 0)

    def at_risk(self) -> int:
        """Active callbacks flagged at_risk. O(1)."""
        return self._counts.get("at_risk", 0)

    def queue_load(self, queue: str, now: float, edges: list[float]) -> tuple[int, int, list[int], int]:
        """A queue's active callbacks: (all, overdue, per [edges[i], edges[i+1]) of deadline,
        at risk). O(tiers · edges · log n)."""
        total = overdue = 0
        spans = [0] * (len(edges) - 1)
        for (name, _), lane in self._lanes.items():
            if name != queue:
                continue
            total += len(lane)
            overdue += _before(lane, now)
            cuts = [_before(lane, edge) for edge in edges]
            for i in range(len(spans)):
                spans[i] += cuts[i + 1] - cuts[i]
        return total, overdue, spans, self._counts.get("at_risk:" + queue, 0)

    def overdue(self, now: float) -> int:
        return _before(self._active, now)

    def lane(self, queue: str, tier: Tier, now: float) -> tuple[int, int]:
        """Active callbacks of a queue × tier, and those of them past their deadline."""
        lane = self._lanes.get((queue, tier))
        return (0, 0) if lane is None else (len(lane), _before(lane, now))

    def page(self, which: CallbackFilter, limit: int, after: PageKey | None, now: float) -> tuple[list[str], bool]:
        """Ids of at most `limit` callbacks after `after`, and whether more follow."""
        index = self._done if which == "done" else self._active
        found = index.irange(minimum=after, inclusive=(False, True)) if after is not None else iter(index)
        keys: list[PageKey] = list(islice(found, limit + 1))
        if which == "overdue":
            keys = [k for k in keys if k[0] < now]  # a prefix: the index is in deadline order
        return [k[1] for k in keys[:limit]], len(keys) > limit

    # --- internals --------------------------------------------------------------------------

    def _count(self, status: str, by: int) -> None:
        self._counts[status] = self._counts.get(status, 0) + by

    def _add_active(self, callback: Callback) -> None:
        key = _key(callback)
        self._active.add(key)
        self._lanes.setdefault((callback.queue, callback.tier), SortedList()).add(key)

    def _remove_active(self, callback: Callback) -> None:
        key = _key(callback)
        self._active.discard(key)
        lane = self._lanes.get((callback.queue, callback.tier))
        if lane is not None:
            lane.discard(key)
