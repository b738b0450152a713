"""The embedded store: every call, agent, callback and tally in this process's memory.

Zero setup, one process. Each public method runs to completion without awaiting, so on the
event loop it is atomic: no call can be popped twice or half-moved. The rules themselves
live in the pure modules (ordering/waitlist, calls, callbacks, service_level); this module
keeps the indexes that make every step O(log n) and applies the rules to them; which move
each request makes is looked up in `decisions`, the tables the Redis engine receives too.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable
from typing import Literal

import msgspec
from sortedcontainers import SortedList

from tierline.queue import callbacks as cb
from tierline.queue import calls, paging
from tierline.queue import service_level as sl
from tierline.queue.callback_index import CallbackIndex, workload_edges
from tierline.queue.callbacks import Callback, CallbackReason, Outcome
from tierline.queue.calls import Call, OverflowReason
from tierline.queue.clock import Clock
from tierline.queue.decisions import (
    ADMITTED_WHEN_FULL,
    CALLBACK_TIERS,
    CLOSED_REASON,
    REQUESTED_REASON,
    next_pick,
    offers_callback,
)
from tierline.queue.errors import Conflict, Invalid, NotFound
from tierline.queue.estimate import QueueLoad, announce
from tierline.queue.history import events as ev
from tierline.queue.history.engine_events import EventBuffer
from tierline.queue.hours import is_open
from tierline.queue.ledger import Ledger
from tierline.queue.metrics import MetricsSnapshot, metrics_row
from tierline.queue.policy import Policy
from tierline.queue.settled import SettledDay
from tierline.queue.store import (
    CallbackFilter,
    CallbackPage,
    CallbackSummary,
    CallSnapshot,
    HeldCallback,
    QueueWorkload,
    SlaReport,
    SlaRow,
    Traffic,
    Work,
    WorkKind,
    Workload,
)
from tierline.queue.wait_accuracy import Accuracy, AccuracyRow
from tierline.queue.wait_accuracy import figures as accuracy_figures
from tierline.queue.waitlist import WaitList
from tierline.tiers.model import TIERS, Tier, TierRecord

Holding = tuple[Literal["call", "callback"], str]
ReadyKey = tuple[float, float, str]  # deadline, created_at, callback_id


# Events held until the archiver drains them (about 320 bytes each, measured: some 80 MB when
# full): at ~6 events a call, an hour of a busy center's calls; past it the oldest are dropped
# and counted (routing never waits for history).
DEFAULT_EVENT_CAP = 250_000


def _ready_key(callback: Callback) -> ReadyKey:
    return (callback.deadline, callback.created_at, callback.callback_id)


class MemoryCallStore:
    def __init__(
        self,
        policy: Policy,
        clock: Clock,
        new_id: Callable[[], str] | None = None,
        *,
        epoch: int | None = None,
        event_cap: int = DEFAULT_EVENT_CAP,
    ) -> None:
        """`epoch`: this store's event epoch (an archive's `claim_epoch`); by default the start
        time in milliseconds (`events.new_epoch`)."""
        self.policy = policy
        self.clock = clock
        self._new_id = new_id or (lambda: uuid.uuid4().hex)
        self._seq = 0
        self._started_at = clock.now()
        self.events = EventBuffer(ev.new_epoch(self._started_at, None) if epoch is None else epoch, event_cap)
        # Bound once: every change calls it in the same step (see queue/history/engine_events.py).
        self._emit = self.events.emit
        self._calls: dict[str, Call] = {}
        self._records: dict[str, TierRecord] = {}  # call_id -> caller's record at arrival, while active
        self._queues = {name: WaitList(policy.aging_s) for name in policy.queues}
        self._offers: SortedList = SortedList()  # (offered_at, call_id)
        self._holding: dict[str, Holding] = {}  # agent_id -> the one piece of work it holds
        self._callbacks: dict[str, Callback] = {}
        self._index = CallbackIndex()  # counts and deadline order for supervisors
        self._active_callback: dict[str, str] = {}  # caller -> callback_id while open or assigned
        self._ready: dict[str, SortedList] = {name: SortedList() for name in policy.queues}  # ReadyKey
        self._snoozed: SortedList = SortedList()  # (next_attempt_at, callback_id)
        # The estimated wait's inputs per queue, each call's quote and announced position while
        # it waits, and how right the quotes were per queue × tier (queue/estimate.py).
        self._loads = {name: QueueLoad() for name in policy.queues}
        self._quoted: dict[str, float] = {}
        self._announced: dict[str, int] = {}
        self._accuracy: dict[tuple[str, Tier], Accuracy] = {}
        self._finished: deque[tuple[float, Literal["call", "callback"], str]] = deque()
        self._ledger = Ledger(policy)
        self._overflow_limits: list[tuple[Tier, float]] = [
            (tier, limit) for tier in TIERS if (limit := policy.tier(tier).overflow_after_s) is not None
        ]
        self._settled = SettledDay(policy)
        self._last_prune = self._started_at
        self._hours = policy.hours_book()  # opening-hour windows per queue (queue/hours.py)
        # Places held in line for a requested callback (issue 16 item 3): call_id -> callback_id
        # while the place waits, and how many per queue × tier.
        self._held: dict[str, str] = {}
        self._held_count: dict[tuple[str, Tier], int] = {}
        # Abandoned calls a re-call may take the place of (issue 16 item 4): (queue, resume key)
        # -> (call_id, until when), and the same in time order for forgetting.
        self._resumable: dict[tuple[str, str], tuple[str, float]] = {}
        self._resume_expiry: deque[tuple[float, tuple[str, str]]] = deque()

    # --- IVR ------------------------------------------------------------------------------

    async def route(self, call_id: str, record: TierRecord, queue: str) -> tuple[CallSnapshot, bool]:
        waitlist = self._waitlist(queue)
        now = self._tick()
        existing = self._calls.get(call_id)
        if existing is not None:
            calls.check_same_call(existing, record.caller, queue)
            return self._snapshot(existing, now), False
        self._seq += 1
        call = Call(
            call_id=call_id,
            caller=record.caller,
            tier=record.tier,
            queue=queue,
            status="waiting",
            arrived_at=now,
            seq=self._seq,
        )
        self._calls[call_id] = call
        self._records[call_id] = record
        limit = self.policy.max_waiting(queue)
        closed = not self._open(queue, now)
        away = closed or (limit is not None and call.tier not in ADMITTED_WHEN_FULL and len(waitlist) >= limit)
        # A re-call admitted within resume_window_s of its abandon takes back that place and tier.
        resumed = None if away or not self._resumable else self._take_resume(call, record, now)
        self._ledger.record(queue, call.tier, "arrived", now)
        if away:
            # Position 0: turned away at the door, never in line.
            self._emit("enter", now, call_id, None, call.caller, call.tier, queue, None, 0)
            self._overflow(call, CLOSED_REASON if closed else "queue_full", now)
            return self._snapshot(call, now), True
        if resumed is not None and resumed.callback_id:
            # The callback the abandon opened or joined is moot; a place it held leaves first.
            callback = self._callbacks.get(resumed.callback_id)
            if callback is not None:
                self._resolve_callback(callback, now)
        position = waitlist.arrive(call.tier, call.place, now)
        self._loads[queue].arrived(call.tier, now)
        self._emit("enter", now, call_id, None, call.caller, call.tier, queue, None, position)
        if resumed is not None:
            self._resumed(call, resumed, position, now)
        snapshot = self._snapshot(call, now, position)
        if snapshot.estimated_wait_s is not None:
            self._quoted[call_id] = snapshot.estimated_wait_s  # compared with the real wait at answer
        return snapshot, True

    async def get_call(self, call_id: str) -> CallSnapshot:
        now = self._tick()
        return self._snapshot(self._call(call_id), now)

    async def abandon(self, call_id: str) -> CallSnapshot:
        now = self._tick()
        call = self._call(call_id)
        move = calls.decide("abandon", call)
        if move is not None:
            self._take_out(call)
            call.status = move.to
            call.left_at = now
            wait = call.waited(now)
            self._ledger.record(call.queue, call.tier, "abandoned", now, wait)
            short = wait < self.policy.short_abandon_s
            threshold = self.policy.tier(call.tier).sla_threshold_s
            self._emit("abandon", now, call_id, None, call.caller, call.tier, call.queue, None, wait, short, threshold)
            if call.tier in CALLBACK_TIERS and not short:
                self._open_callback(call, "abandoned", now)
            if self.policy.resume_window_s > 0:
                record = self._records.get(call_id)
                key = (call.queue, calls.resume_key(call.caller, {} if record is None else record.crm))
                until = now + self.policy.resume_window_s
                self._resumable[key] = (call_id, until)
                self._resume_expiry.append((until, key))
            self._finish("call", call_id)
        return self._snapshot(call, now)

    async def request_callback(self, call_id: str) -> CallSnapshot:
        now = self._tick()
        call = self._call(call_id)
        move = calls.decide("callback", call)
        if move is None:
            return self._snapshot(call, now)
        self._check_no_callback(call.caller)
        # The place stays in its lane: the call leaves the line, its callback keeps the place.
        call.status = move.to
        call.left_at = now
        wait = call.waited(now)
        self._ledger.record(call.queue, call.tier, "callback_requested", now, wait)
        self._emit("callback_request", now, call_id, None, call.caller, call.tier, call.queue, None, wait)
        self._open_callback(call, REQUESTED_REASON, now)
        assert call.callback_id is not None
        callback = self._callbacks[call.callback_id]
        # Not on a work list: it is handed out when its place is first (`next_work`).
        self._ready[callback.queue].discard(_ready_key(callback))
        self._snoozed.discard((callback.next_attempt_at, callback.callback_id))
        callback.held = True
        self._held[call_id] = callback.callback_id
        lane = (call.queue, call.tier)
        self._held_count[lane] = self._held_count.get(lane, 0) + 1
        self._quoted.pop(call_id, None)
        self._announced.pop(call_id, None)
        return self._snapshot(call, now)

    # --- agents ---------------------------------------------------------------------------

    async def answer(self, call_id: str, agent_id: str) -> CallSnapshot:
        now = self._tick()
        call = self._call(call_id)
        move = calls.decide("answer", call, agent_id)
        if move is not None:
            if move.free_agent:
                self._ensure_free(agent_id)
            self._take_out(call)
            call.status = move.to
            call.agent_id = agent_id
            call.answered_at = now
            self._holding[agent_id] = ("call", call_id)
            wait = call.waited(now)
            self._ledger.record(call.queue, call.tier, "answered", now, wait)
            threshold = self.policy.tier(call.tier).sla_threshold_s
            self._emit("answer", now, call_id, None, call.caller, call.tier, call.queue, agent_id, wait, threshold)
            self._loads[call.queue].answered(agent_id)
            quoted = self._quoted.pop(call_id, None)
            if quoted is not None:
                self._accuracy_of(call.queue, call.tier).record(wait, quoted)
            self._resolve_inbound(call.caller, now)
        return self._snapshot(call, now)

    async def requeue(self, call_id: str, agent_id: str | None) -> CallSnapshot:
        now = self._tick()
        call = self._call(call_id)
        if calls.decide("requeue", call, agent_id) is not None:
            self._back_to_queue(call, now)
        return self._snapshot(call, now)

    async def end(self, call_id: str) -> CallSnapshot:
        now = self._tick()
        call = self._call(call_id)
        move = calls.decide("end", call)
        if move is not None:
            assert call.answered_at is not None and call.agent_id is not None
            call.status = move.to
            call.ended_at = now
            self._holding.pop(call.agent_id, None)
            handle = now - call.answered_at
            self._loads[call.queue].ended(handle)
            self._ledger.record(call.queue, call.tier, "ended", now, handle)
            self._emit("end", now, call_id, None, call.caller, call.tier, call.queue, call.agent_id, handle)
            self._finish("call", call_id)
        return self._snapshot(call, now)

    async def next_work(self, agent_id: str, queues: list[str] | None, only: WorkKind | None = None) -> Work | None:
        names = self._queue_names(queues)
        now = self._tick()
        held = self._holding.get(agent_id)
        if held is not None:
            return self._held_work(agent_id, held, now, only)
        best = None
        for name in names if only != "callbacks" else ():
            head = self._queues[name].head_key(now)
            if head is not None and (best is None or head[0] < best[1][0]):
                best = (name, head)
        ready = self._best_ready(names, now)
        rank = None if best is None else best[1][0][0]
        pick = next_pick(rank, None if ready is None else ready[0][0], now, self.policy.callback_urgent_s)
        if pick == "callback":
            assert ready is not None
            if only is None:  # a back-office agent is no line agent of the wait estimate
                self._mark_agent(agent_id, names, False, now)
            return self._assign_callback(agent_id, ready, now)
        if best is not None:
            name, (_, tier, place) = best
            self._queues[name].remove(tier, place)
            call = self._calls[place.call_id]
            if call.status == "callback_requested":  # a held place is first: its callback is the work
                callback = self._release_hold(call, now, "handed_out")
                self._mark_agent(agent_id, names, False, now)
                key = _ready_key(callback)
                self._ready[name].add(key)  # handed out as any ready callback is
                return self._assign_callback(agent_id, (key, name), now)
            call.status = "offered"
            call.agent_id = agent_id
            call.offered_at = now
            self._offers.add((now, call.call_id))
            self._holding[agent_id] = ("call", call.call_id)
            self._emit("offer", now, call.call_id, None, call.caller, call.tier, name, agent_id)
            self._mark_agent(agent_id, names, False, now)
            return Work(call=self._snapshot(call, now), record=self._records.get(call.call_id))
        if only is None:
            self._mark_agent(agent_id, names, True, now)
        return None

    # --- callbacks ------------------------------------------------------------------------

    async def callback_outcome(
        self,
        callback_id: str,
        outcome: Outcome,
        agent_id: str | None,
        note: str | None,
        call_at: float | None = None,
    ) -> Callback:
        now = self._tick()
        callback = self._callbacks.get(callback_id)
        if callback is None:
            raise NotFound(f"no callback {callback_id!r}", code="callback_not_found")
        holder = callback.agent_id
        window = self._hours.window(callback.queue, now)
        if not cb.apply_outcome(callback, outcome, agent_id, now, self.policy.callbacks, note, call_at, window):
            return callback  # a retried outcome: the callback as it is
        # Only the holder's outcome is applied: the callback was assigned, on no work list.
        assert holder is not None
        self._index.status_changed(callback, "assigned")
        self._holding.pop(holder, None)
        self._emit_callback("callback_outcome", now, callback, agent_id, outcome, callback.attempts)
        if callback.status == "open":
            self._snoozed.add((callback.next_attempt_at, callback_id))
        else:
            self._close_callback(callback, now, agent_id)
        return callback

    async def callbacks(self, which: CallbackFilter, limit: int) -> list[Callback]:
        return (await self.callback_page(which, limit, None)).callbacks

    async def callback_page(self, which: CallbackFilter, limit: int, cursor: str | None) -> CallbackPage:
        paging.check_limit(limit)
        after = None if cursor is None else paging.decode_cursor(which, cursor)
        now = self._tick()
        ids, more = self._index.page(which, limit, after, now)
        return paging.page(which, [self._callbacks[i] for i in ids], more)

    async def callback_summary(self) -> CallbackSummary:
        return self._index.summary(self._tick())

    async def callback_workload(self) -> Workload:
        now = self._tick()
        edges = workload_edges(now)
        queues = []
        for name in self._queues:
            active, overdue, by_hour, at_risk = self._index.queue_load(name, now, edges)
            later = active - overdue - sum(by_hour)
            queues.append(
                QueueWorkload(queue=name, active=active, overdue=overdue, at_risk=at_risk, by_hour=by_hour, later=later)
            )
        holders = [
            HeldCallback(agent_id=agent, callback=self._callbacks[item_id])
            for agent, (kind, item_id) in sorted(self._holding.items())
            if kind == "callback"
        ]
        return Workload(now=now, edges=edges, queues=queues, holders=holders)

    # --- supervision ----------------------------------------------------------------------

    async def sla(self, queue: str | None, window: sl.Window) -> SlaReport:
        names = self._queue_names(None if queue is None else [queue])
        now = self._tick()
        formula = self.policy.sla_formula
        rows = []
        for name in names:
            waitlist = self._queues[name]
            for tier in TIERS:
                policy = self.policy.tier(tier)
                intervals = None
                if window == "today":
                    lane = (name, tier)
                    slots = sl.today_intervals(now, self.policy.timezone)
                    fetched = {i: self._ledger.interval(name, tier, i) for i in self._settled.wanted(lane, slots)}
                    tally, intervals = self._settled.row(lane, slots, now, fetched)
                else:
                    tally = self._ledger.rolling(name, tier, window, now)
                oldest = waitlist.oldest(tier)
                held = self._held_count.get((name, tier), 0)
                callbacks_open, callbacks_overdue = self._index.lane(name, tier, now)
                rows.append(
                    SlaRow(
                        queue=name,
                        tier=tier,
                        figures=sl.figures(tally, policy, formula),
                        waiting_now=waitlist.count(tier) - held,
                        held=held,
                        oldest_wait_now_s=None if oldest is None else round(now - oldest.arrived_at, 3),
                        intervals=intervals,
                        callbacks_open=callbacks_open,
                        callbacks_overdue=callbacks_overdue,
                        estimate_accuracy=accuracy_figures(self._accuracy.get((name, tier)) or Accuracy()),
                    )
                )
        return SlaReport(window=window, start=sl.window_start(window, now, self.policy.timezone), now=now, rows=rows)

    async def metrics(self) -> MetricsSnapshot:
        now = self._tick()
        bounds = self._ledger.wait_bounds
        rows = []
        for name, waitlist in self._queues.items():
            for tier in TIERS:
                policy = self.policy.tier(tier)
                oldest = waitlist.oldest(tier)
                held = self._held_count.get((name, tier), 0)
                rows.append(
                    metrics_row(
                        name,
                        tier,
                        self._ledger.lifetime(name, tier),
                        len(bounds),
                        threshold_s=policy.sla_threshold_s,
                        target=policy.sla_target,
                        waiting_now=waitlist.count(tier) - held,
                        oldest_wait_now_s=None if oldest is None else round(now - oldest.arrived_at, 3),
                        held_now=held,
                    )
                )
        return MetricsSnapshot(
            now=now,
            wait_bounds=list(bounds),
            rows=rows,
            callbacks_open=self._index.status_count("open"),
            callbacks_assigned=self._index.status_count("assigned"),
            callbacks_overdue=self._index.overdue(now),
            estimate_accuracy=[
                AccuracyRow(queue=name, tier=tier, accuracy=msgspec.structs.replace(acc, bins=dict(acc.bins)))
                for name in self._queues
                for tier in TIERS
                if (acc := self._accuracy.get((name, tier))) is not None
            ],
            callbacks_at_risk=self._index.at_risk(),
        )

    async def traffic(self, queue: str | None, window_s: float) -> Traffic:
        names = self._queue_names(None if queue is None else [queue])
        now = self._tick()
        minutes = sl.window_minutes(window_s, now)
        tallies = {tier: sl.total(self._ledger.over_minutes(n, tier, minutes) for n in names) for tier in TIERS}
        return Traffic.of(tallies, minutes, now, self._started_at)

    async def sweep(self) -> None:
        self._tick()

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None

    # --- history --------------------------------------------------------------------------

    async def read_events(self, after: ev.EventId | None, limit: int) -> list[ev.Event]:
        return self.events.read(after, limit)

    def drain_events(self, limit: int) -> list[ev.Event]:
        """Remove and return up to `limit` of the oldest events, for the archiver."""
        return list(self.events.drain(limit))

    def record_tier_event(self, kind: str, caller: str | None, tier: str | None, figures: tuple[object, ...]) -> None:
        """A tier store's change (tiers/memory.py's `TierEventSink`), into this store's trail."""
        self._emit(kind, self.clock.now(), None, None, caller, tier, None, None, *figures)

    async def events_dropped(self) -> int:
        """Events the full buffer pushed out before they were drained."""
        return self.events.dropped

    # --- internals ------------------------------------------------------------------------

    def _tick(self) -> float:
        """Apply everything that fell due up to now, oldest first; cheap when nothing did."""
        now = self.clock.now()
        timeout = self.policy.offer_timeout_s
        while self._offers and self._offers[0][0] + timeout <= now:
            offered_at, call_id = self._offers[0]
            # Back in the queue when the ringing stopped, so the overflow below lands on time.
            self._back_to_queue(self._calls[call_id], offered_at + timeout)
        for waitlist in self._queues.values():
            for tier, limit in self._overflow_limits:
                # The head of the lane first: most ticks find nothing due, and this is every request.
                oldest = waitlist.oldest(tier)
                if oldest is None or oldest.arrived_at > now - limit:
                    continue
                for place in waitlist.expire(tier, now - limit):
                    expired = self._calls[place.call_id]
                    if expired.status == "callback_requested":  # the place's wait ran out: an ordinary callback
                        self._release_hold(expired, place.arrived_at + limit, "expired")
                    else:
                        self._overflow(expired, "max_wait", place.arrived_at + limit)
        while self._snoozed and self._snoozed[0][0] <= now:
            _, callback_id = self._snoozed.pop(0)
            callback = self._callbacks[callback_id]
            self._ready[callback.queue].add(_ready_key(callback))
        expiry = self._resume_expiry
        while expiry and expiry[0][0] < now:
            _, key = expiry.popleft()
            found = self._resumable.get(key)
            if found is not None and found[1] < now:
                del self._resumable[key]
        keep_after = now - self.policy.retain_finished_s
        while self._finished and self._finished[0][0] <= keep_after:
            _, kind, item_id = self._finished.popleft()
            if kind == "call":
                self._calls.pop(item_id, None)
            elif (forgotten := self._callbacks.pop(item_id, None)) is not None:
                self._index.forgotten(forgotten)
        if now - self._last_prune >= 60:
            self._ledger.prune(now)
            self._last_prune = now
        return now

    def _open(self, queue: str, now: float) -> bool:
        window = self._hours.window(queue, now)
        return window is None or is_open(window, now)

    def _waitlist(self, queue: str) -> WaitList:
        waitlist = self._queues.get(queue)
        if waitlist is None:
            raise Invalid(f"queue {queue!r} is not declared in the configuration", code="unknown_queue")
        return waitlist

    def _queue_names(self, queues: list[str] | None) -> list[str]:
        if not queues:
            return list(self._queues)
        for name in queues:
            self._waitlist(name)
        return queues

    def _call(self, call_id: str) -> Call:
        call = self._calls.get(call_id)
        if call is None:
            raise NotFound(f"no call {call_id!r}", code="call_not_found")
        return call

    def _ensure_free(self, agent_id: str) -> None:
        held = self._holding.get(agent_id)
        if held is not None:
            raise Conflict(f"agent {agent_id!r} already holds {held[0]} {held[1]!r}", code="agent_busy")

    def _take_out(self, call: Call) -> None:
        """Remove a waiting or offered call from wherever it sits, freeing its agent."""
        if call.status == "waiting":
            self._queues[call.queue].remove(call.tier, call.place)
        elif call.status == "offered":
            assert call.offered_at is not None and call.agent_id is not None
            self._offers.remove((call.offered_at, call.call_id))
            self._holding.pop(call.agent_id, None)

    def _back_to_queue(self, call: Call, now: float) -> None:
        """Ring-no-answer: the call returns to its original place, unless its wait has run out."""
        self._emit("ring_no_answer", now, call.call_id, None, call.caller, call.tier, call.queue, call.agent_id)
        self._take_out(call)
        call.status = "waiting"
        call.agent_id = None
        call.offered_at = None
        limit = self.policy.tier(call.tier).overflow_after_s
        if limit is not None and now >= call.arrived_at + limit:
            self._overflow(call, "max_wait", now)
        else:
            self._queues[call.queue].add(call.tier, call.place)

    def _overflow(self, call: Call, reason: OverflowReason, at: float) -> None:
        call.status = "overflowed"
        call.overflow_reason = reason
        call.left_at = at
        wait = call.waited(at)
        self._ledger.record(call.queue, call.tier, "overflowed", at, wait)
        self._emit("overflow", at, call.call_id, None, call.caller, call.tier, call.queue, None, wait, reason)
        if call.tier in CALLBACK_TIERS:
            self._open_callback(call, reason, at)
        self._finish("call", call.call_id)

    def _finish(self, kind: Literal["call", "callback"], item_id: str) -> None:
        """Schedule a finished item for forgetting, `retain_finished_s` from now."""
        if kind == "call":
            self._records.pop(item_id, None)
            self._quoted.pop(item_id, None)
            self._announced.pop(item_id, None)
        self._finished.append((self.clock.now(), kind, item_id))

    def _open_callback(self, call: Call, reason: CallbackReason, at: float) -> None:
        existing_id = self._active_callback.get(call.caller)
        if existing_id is not None:
            existing = self._callbacks[existing_id]
            key = _ready_key(existing)
            ready = self._ready[existing.queue]
            was_ready = key in ready
            ready.discard(key)
            self._index.deadline_moving(existing)
            cb.merge_overflow(existing, at, self.policy.callbacks, self._terms(call.queue, at))
            self._index.deadline_moved(existing)
            if was_ready:
                ready.add(_ready_key(existing))
            call.callback_id = existing_id
            # The call joins the callback: its timeline shows it (not counted as created).
            e = existing
            self._emit(
                "callback_created",
                at,
                call.call_id,
                e.callback_id,
                e.caller,
                e.tier,
                e.queue,
                None,
                reason,
                e.deadline,
                True,
            )
            return
        record = self._records.get(call.call_id) or TierRecord(caller=call.caller, tier=call.tier, known=False)
        callback = cb.new_callback(
            self._new_id(),
            record=record,
            tier=call.tier,
            queue=call.queue,
            call_id=call.call_id,
            reason=reason,
            at=at,
            policy=self.policy.callbacks,
            given=self._terms(call.queue, at),
            call_arrived_at=call.arrived_at,
            waited_s=call.waited(at),
        )
        self._callbacks[callback.callback_id] = callback
        self._index.opened(callback)
        self._active_callback[call.caller] = callback.callback_id
        if callback.next_attempt_at <= self.clock.now():
            self._ready[callback.queue].add(_ready_key(callback))
        else:  # created while its queue is closed: due from the next opening
            self._snoozed.add((callback.next_attempt_at, callback.callback_id))
        call.callback_id = callback.callback_id
        self._emit_callback("callback_created", at, callback, None, reason, callback.deadline, False)

    def _take_resume(self, call: Call, record: TierRecord, now: float) -> Call | None:
        """The abandoned call `call` may take back, taken off the resumable ones; `call` then
        holds its tier, arrival and seq, and names it in `resumed_from`."""
        key = (call.queue, calls.resume_key(record.caller, record.crm))
        found = self._resumable.get(key)
        if found is None or found[1] < now:
            return None
        del self._resumable[key]
        old = self._calls.get(found[0])
        if old is None or old.status != "abandoned":
            return None
        call.tier, call.arrived_at, call.seq, call.resumed_from = old.tier, old.arrived_at, old.seq, old.call_id
        return old

    def _resumed(self, call: Call, old: Call, position: int, now: float) -> None:
        """Counters move forward: the abandon stays, a `resumed` is added (with the abandon's
        wait, so a short one is known; the event says so too, for the archive's tallies)."""
        wait = old.waited(now)
        self._ledger.record(call.queue, call.tier, "resumed", now, wait)
        short = wait < self.policy.short_abandon_s
        self._emit(
            "resume", now, call.call_id, None, call.caller, call.tier, call.queue, None, old.call_id, position, short
        )

    def _check_no_callback(self, caller: str) -> None:
        """One callback per caller: a caller with an active one is not given a second."""
        active = self._active_callback.get(caller)
        if active is not None:
            raise Conflict(f"caller {caller!r} already has callback {active!r} active", code="callback_exists")

    def _release_hold(self, call: Call, at: float, how: str) -> Callback:
        """The held place of `call` (already out of its lane) stops holding: its callback is
        handed out now (`handed_out`), goes to the callback lists by its deadline (`expired`:
        the place's wait ran out), or was closed (`resolved`: the caller got through)."""
        callback_id = self._held.pop(call.call_id)
        lane = (call.queue, call.tier)
        self._held_count[lane] -= 1
        callback = self._callbacks[callback_id]
        callback.held = False
        self._emit_callback("hold_released", at, callback, None, how)
        if how == "expired" and callback.active:
            if callback.next_attempt_at <= self.clock.now():
                self._ready[callback.queue].add(_ready_key(callback))
            else:
                self._snoozed.add((callback.next_attempt_at, callback_id))
        self._finish("call", call.call_id)
        return callback

    def _resolve_inbound(self, caller: str, now: float) -> None:
        callback_id = self._active_callback.get(caller)
        if callback_id is None:
            return
        self._resolve_callback(self._callbacks[callback_id], now)

    def _resolve_callback(self, callback: Callback, now: float) -> None:
        callback_id = callback.callback_id
        key, snooze = _ready_key(callback), (callback.next_attempt_at, callback_id)
        if cb.resolve_inbound(callback, now):
            self._index.status_changed(callback, "open")
            self._ready[callback.queue].discard(key)
            self._snoozed.discard(snooze)
            held = self._calls.get(callback.call_id)
            if callback.held and held is not None:  # its place leaves the line too
                self._queues[held.queue].remove(held.tier, held.place)
                self._release_hold(held, now, "resolved")
            self._close_callback(callback, now, None)

    def _close_callback(self, callback: Callback, now: float, agent_id: str | None) -> None:
        self._active_callback.pop(callback.caller, None)
        self._emit_callback("callback_closed", now, callback, agent_id, callback.status, callback.deadline)
        self._finish("callback", callback.callback_id)

    def _emit_callback(self, kind: str, at: float, callback: Callback, agent_id: str | None, *figures: object) -> None:
        b = callback
        self._emit(kind, at, b.call_id, b.callback_id, b.caller, b.tier, b.queue, agent_id, *figures)

    def _terms(self, queue: str, at: float) -> cb.Terms:
        # The window current at the clock's now: `at` may lie a little before it (an overflow
        # noticed by this tick), within the window's look-back.
        return cb.terms(self._hours.window(queue, self.clock.now()), at, self.policy.callbacks)

    def _best_ready(self, names: list[str], now: float) -> tuple[ReadyKey, str] | None:
        """The callback due soonest that may be handed out now: its next attempt has come and
        its queue is open. O(queues · log n)."""
        best: tuple[ReadyKey, str] | None = None
        for name in names:
            ready = self._ready[name]
            if ready and (best is None or ready[0] < best[0]) and self._open(name, now):
                best = (ready[0], name)
        return best

    def _assign_callback(self, agent_id: str, best: tuple[ReadyKey, str], now: float) -> Work:
        key, name = best
        self._ready[name].remove(key)
        callback = self._callbacks[key[2]]
        cb.assign(callback, agent_id, now)
        self._index.status_changed(callback, "open")
        self._holding[agent_id] = ("callback", callback.callback_id)
        self._emit_callback("callback_assigned", now, callback, agent_id, callback.attempts + 1)
        return Work(callback=callback)

    def _held_work(self, agent_id: str, held: Holding, now: float, only: WorkKind | None) -> Work:
        kind, item_id = held
        if kind == "callback":
            return Work(callback=self._callbacks[item_id])
        if only == "callbacks":
            raise Conflict(f"agent {agent_id!r} holds call {item_id!r}: not a callback", code="agent_busy")
        call = self._calls[item_id]
        if call.status != "offered":
            raise Conflict(f"agent {agent_id!r} is on call {item_id!r}: end it first", code="agent_busy")
        return Work(call=self._snapshot(call, now), record=self._records.get(item_id))

    def _snapshot(self, call: Call, now: float, position: int | None = None) -> CallSnapshot:
        """`position`: the call's, when the caller already knows it (a new arrival's)."""
        estimate = announced = None
        if call.status == "waiting":
            if position is None:
                position = self._queues[call.queue].position(call.tier, call.place, now)
            estimate = self._loads[call.queue].estimate(position, call.tier, now, now - self._started_at)
            announced = self._announced[call.call_id] = announce(self._announced.get(call.call_id), position)
        callback = self._callbacks.get(call.callback_id) if call.callback_id else None
        tier = self.policy.tier(call.tier)
        has_callback = call.caller in self._active_callback
        offer = offers_callback(tier.offer_callback, call.status, estimate, tier.offer_callback_after_s, has_callback)
        return CallSnapshot(
            call=call,
            now=now,
            position=position,
            estimated_wait_s=estimate,
            announce_position=announced,
            callback=callback,
            offer_callback=offer,
        )

    def _accuracy_of(self, queue: str, tier: Tier) -> Accuracy:
        found = self._accuracy.get((queue, tier))
        if found is None:
            found = self._accuracy[(queue, tier)] = Accuracy()
        return found

    def _mark_agent(self, agent_id: str, names: list[str], idle: bool, now: float) -> None:
        """An agent that `next` found nothing for is idle in those queues, until it takes work."""
        for name in names:
            if idle:
                self._loads[name].idle(agent_id, now)
            else:
                self._loads[name].busy(agent_id)
