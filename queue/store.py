"""The call store's contract: what the HTTP layer may ask of any store (memory now, Redis next).

Every method is one atomic step of the engine: it sweeps what is due at that instant
(overflows, ring-no-answer, callback retries), then acts, or refuses before changing
anything. Results are plain structs; turning them into HTTP bodies is the router's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol

import msgspec

from tierline.queue.callbacks import Callback, Outcome
from tierline.queue.calls import Call
from tierline.queue.history import events as ev
from tierline.queue.metrics import MetricsSnapshot
from tierline.queue.service_level import MINUTE, Figures, Tally, Window
from tierline.queue.wait_accuracy import AccuracyFigures
from tierline.tiers.model import Tier, TierRecord

CallbackFilter = Literal["open", "overdue", "done"]
# `next` restricted to one kind of work: "callbacks" (the back office) never takes a call.
WorkKind = Literal["callbacks"]


class CallSnapshot(msgspec.Struct, kw_only=True):
    """A call as it is at `now`, with what is derived from the queue around it."""

    call: Call
    now: float
    position: int | None = None
    estimated_wait_s: float | None = None
    # The position to announce: the true one, but never higher than announced before (VIPs
    # arriving push the true position up; a caller hears it only go down).
    announce_position: int | None = None
    callback: Callback | None = None
    # The callback offer (decisions.offers_callback): shown while the wait quoted exceeds the
    # tier's offer_callback_after_s and the caller holds no active callback.
    offer_callback: bool = False


class Work(msgspec.Struct, kw_only=True):
    """What an agent is given: a call (with the caller's record) or a callback."""

    call: CallSnapshot | None = None
    record: TierRecord | None = None
    callback: Callback | None = None


class IntervalFigures(msgspec.Struct, kw_only=True):
    start: float
    figures: Figures


class SlaRow(msgspec.Struct, kw_only=True):
    queue: str
    tier: Tier
    figures: Figures
    waiting_now: int
    oldest_wait_now_s: float | None
    intervals: list[IntervalFigures] | None = None
    # Places held in line for a requested callback (issue 16 item 3): not in waiting_now, but in
    # the positions of the calls behind them and in max_waiting.
    held: int = 0
    # Callbacks of this queue × tier now, active (open or assigned) and active past their
    # deadline: kept by the engine as indexes that move with each callback, read in O(log n).
    callbacks_open: int = 0
    callbacks_overdue: int = 0
    # How right the quoted waits of answered calls were, since the store began (queue/wait_accuracy.py).
    estimate_accuracy: AccuracyFigures | None = None


class SlaReport(msgspec.Struct, kw_only=True):
    window: Window
    start: float
    now: float
    rows: list[SlaRow]


class QueueWorkload(msgspec.Struct, kw_only=True):
    """One queue's active (open or assigned) callbacks for the team lead (issue 20 item 3)."""

    queue: str
    active: int
    overdue: int  # past their deadline now
    at_risk: int  # flagged at creation: too little opening time before the deadline
    by_hour: list[int]  # deadline in [edges[i], edges[i + 1]) of the Workload's edges
    later: int  # deadline after the last edge


class HeldCallback(msgspec.Struct, kw_only=True):
    agent_id: str
    callback: Callback


class Workload(msgspec.Struct, kw_only=True):
    """Who holds what now, and the active callbacks per queue by hour of deadline.

    `edges`: now, then the next whole hours (UTC) up to 24 h ahead (`callback_index.workload_edges`)."""

    now: float
    edges: list[float]
    queues: list[QueueWorkload]
    holders: list[HeldCallback]


class CallbackPage(msgspec.Struct, kw_only=True):
    """One page of a callback list (by deadline, then callback_id) and the cursor of the next
    page, None on the last one (`queue/paging.py`)."""

    callbacks: list[Callback]
    next_cursor: str | None = None


class CallbackSummary(msgspec.Struct, kw_only=True):
    open: int
    assigned: int
    overdue: int
    completed: int
    completed_in_time: int
    unreached: int
    cancelled: int
    resolved_inbound: int
    service_level: float | None
    # Active (open or assigned) callbacks flagged at creation: too little opening time before the deadline.
    at_risk: int = 0

    @classmethod
    def of(cls, counts: Mapping[str, int], overdue: int, completed_in_time: int) -> CallbackSummary:
        """From callbacks counted by status: the callback service level is completed by the
        deadline / (completed + unreached + overdue), null when nothing is decided yet."""
        completed, unreached = counts.get("completed", 0), counts.get("unreached", 0)
        decided = completed + unreached + overdue
        return cls(
            open=counts.get("open", 0),
            assigned=counts.get("assigned", 0),
            overdue=overdue,
            completed=completed,
            completed_in_time=completed_in_time,
            unreached=unreached,
            cancelled=counts.get("cancelled", 0),
            resolved_inbound=counts.get("resolved_inbound", 0),
            at_risk=counts.get("at_risk", 0),
            service_level=round(completed_in_time / decided, 6) if decided else None,
        )


class Traffic(msgspec.Struct, kw_only=True):
    """The load a queue (or all queues) carried over a recent window: the forecast's observed input.

    Straight from the ledger's per-minute tallies, summed over the window's whole minutes:
    `arrived` per tier (Tally.arrived) and, over every tier, the calls ended (Tally.ended)
    with their total handle seconds (Tally.handle_sum). Rates are counts / `span_s`.
    """

    start: float  # the first counted minute's start, or when the store began counting if later
    now: float
    arrived: dict[Tier, int]  # every tier present, 0 when none arrived
    ended: int
    handle_sum_s: float

    @property
    def span_s(self) -> float:
        return max(self.now - self.start, 0.0)

    @classmethod
    def of(cls, by_tier: Mapping[Tier, Tally], minutes: range, now: float, started_at: float) -> Traffic:
        """From each tier's tally over `minutes`; counting starts no earlier than the store did."""
        return cls(
            start=max(float(minutes.start * MINUTE), started_at),
            now=now,
            arrived={tier: t.arrived for tier, t in by_tier.items()},
            ended=sum(t.ended for t in by_tier.values()),
            handle_sum_s=sum(t.handle_sum for t in by_tier.values()),
        )


class CallStore(Protocol):
    async def route(self, call_id: str, record: TierRecord, queue: str) -> tuple[CallSnapshot, bool]:
        """Queue a new call (True) or return the existing one with that id (False)."""
        ...

    async def get_call(self, call_id: str) -> CallSnapshot: ...

    async def answer(self, call_id: str, agent_id: str) -> CallSnapshot: ...

    async def requeue(self, call_id: str, agent_id: str | None) -> CallSnapshot: ...

    async def abandon(self, call_id: str) -> CallSnapshot: ...

    async def end(self, call_id: str) -> CallSnapshot: ...

    async def request_callback(self, call_id: str) -> CallSnapshot:
        """The waiting caller takes the callback offer: the call leaves the line as
        `callback_requested`, a callback (reason `requested`) keeps its place (issue 16 item 3).
        Idempotent; `Conflict` not_waiting or callback_exists, before anything changes."""
        ...

    async def next_work(self, agent_id: str, queues: list[str] | None, only: WorkKind | None = None) -> Work | None:
        """`only` "callbacks": the callback due soonest that may be handed out now, never a
        call (`agent_busy` for an agent holding one); such an agent is not counted idle."""
        ...

    async def callback_outcome(
        self,
        callback_id: str,
        outcome: Outcome,
        agent_id: str | None,
        note: str | None,
        call_at: float | None = None,
    ) -> Callback:
        """`call_at`: when the customer asked to be called (a `rescheduled` outcome)."""
        ...

    async def callbacks(self, which: CallbackFilter, limit: int) -> list[Callback]:
        """The first page of `callback_page` (limit ≤ paging.MAX_PAGE)."""
        ...

    async def callback_page(self, which: CallbackFilter, limit: int, cursor: str | None) -> CallbackPage:
        """At most `limit` (1..paging.MAX_PAGE, else `Invalid`) callbacks by (deadline,
        callback_id), after `cursor` (a `next_cursor` of this list, else `Invalid`
        invalid_cursor). Bounded work whatever the backlog: O(log n) to find the cursor's
        place, then one read per callback returned."""
        ...

    async def callback_summary(self) -> CallbackSummary: ...

    async def callback_workload(self) -> Workload:
        """The team lead's view: per queue, active callbacks by hour of deadline over the next
        24 h, overdue and at risk; every agent holding a callback. O(queues · tiers · 24 · log n
        + agents holding one)."""
        ...

    async def sla(self, queue: str | None, window: Window) -> SlaReport: ...

    async def traffic(self, queue: str | None, window_s: float) -> Traffic:
        """Arrivals per tier, calls ended and their handle seconds over the last `window_s`
        (0 < window_s ≤ 3600) as whole minutes: the current one and those before it
        (`service_level.window_minutes`). `queue` None sums every queue; an undeclared
        queue is `Invalid` (unknown_queue)."""
        ...

    async def metrics(self) -> MetricsSnapshot:
        """Lifetime counters and answered-wait histogram per queue × tier, waiting now, callbacks (/metrics)."""
        ...

    async def sweep(self) -> None:
        """Do what is due now; the service calls it at least once a second."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...

    async def read_events(self, after: ev.EventId | None, limit: int) -> list[ev.Event]:
        """Up to `limit` of the store's events (queue/history/events.py) after the id `after`,
        oldest first (from the oldest still held when None), in id order; leaves them held.
        Each was recorded in the same atomic step as the change it describes."""
        ...

    async def events_dropped(self) -> int:
        """Events dropped unread because the store's bound on held events was reached."""
        ...
