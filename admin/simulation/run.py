"""One replication: the scenario's calls and agents driven through the real memory store.

A discrete-event loop on a virtual clock (`queue.clock.ManualClock`). The loop only decides
*when* things happen (arrivals, hang-ups, ends of calls and callbacks, shifts); *what*
happens — who is offered next, overflow, admission to a full queue, aging, which abandons
and overflows get a callback, retries — is `MemoryCallStore`'s own work, asked through its
public methods. What the store answers (a wait, a call's status, a callback) is tallied with
the engine's own rule (`service_level.record`) in the 15-minute interval where the wait ended.

The store's methods are coroutines that never await (queue/memory_store.py), so the loop
steps each one to completion by hand: no event loop, so none can be blocked by it.

Agents: a shift change adds agents at once; a smaller shift lets idle agents go first and
busy ones when their current work ends. An idle agent asks for work (`next_work`) whenever
work may have appeared: a call arrives, a shift starts, a callback is created or its retry
falls due. One with nothing to do also asks when it becomes idle and then every
`IDLE_POLL_S`, as an agent's client polls: the store counts an agent idle (one of the wait
estimate's inputs, queue/estimate.py) only while its last empty-handed ask is recent. A
call offered is answered at once (no ring time); a callback takes `callback_handle_s`
(exponential) and reaches the customer with probability `callback_reach`, else `no_answer`
(the store retries it as configured). At the plan's end agents finish what
they hold and leave; calls still waiting then are counted in `waiting_at_end`.

A waiting call of a tier with `overflow_after_s` gets a sweep at exactly arrival + limit, so
its overflow (and callback) happens on time, as the service's sweeper makes it happen.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Coroutine
from typing import Any, Final, TypeVar, cast

import msgspec

from tierline.admin.simulation.samples import draw_patience
from tierline.admin.simulation.scenario import INTERVAL_S, Scenario
from tierline.queue import service_level as sl
from tierline.queue.callbacks import Callback
from tierline.queue.calls import Call, CallStatus
from tierline.queue.clock import ManualClock
from tierline.queue.estimate import IDLE_AGENT_TTL_S
from tierline.queue.memory_store import MemoryCallStore
from tierline.queue.store import Work
from tierline.queue.wait_accuracy import Accuracy
from tierline.tiers.model import TIERS, Tier, TierRecord

T = TypeVar("T")

QUEUE: Final = "default"
# The loop's own agenda kinds, in the order they go at one instant: work ends (and its agent
# asks for more) before a shift change counts who is idle; overflow before a hang-up.
_END, _CALLBACK_DONE, _SHIFT, _OVERFLOW, _PATIENCE, _POKE, _POLL = range(7)
# An idle agent's ask while nothing arrives: well within the store's IDLE_AGENT_TTL_S.
IDLE_POLL_S: Final = IDLE_AGENT_TTL_S / 2


def step(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a memory-store method to completion: it never awaits, so one send finishes it."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coroutine.close()
    raise RuntimeError("a memory store method awaited: it cannot be stepped by hand")


def _status(call: Call) -> CallStatus:
    """The call's status now (read after a store step changed it under a narrowed name)."""
    return call.status


class CallbackFate(msgspec.Struct, kw_only=True):
    interval: int  # index of the interval it was created in
    tier: Tier
    deadline: float
    in_time: bool = False  # completed by its deadline
    closed: bool = False


class Replication(msgspec.Struct, kw_only=True):
    """One run's figures: tallies per (interval index, tier), callbacks by the interval that made them."""

    tallies: dict[tuple[int, Tier], sl.Tally]
    callbacks: list[CallbackFate]
    waiting_at_end: dict[Tier, int]
    calls: int
    end: float  # the virtual time the run stopped
    # The engine's own count of how right its quoted waits were (queue/wait_accuracy.py), per
    # tier over every queue, for the whole run (the warm-up included: the store keeps no intervals).
    estimates: dict[Tier, Accuracy] = msgspec.field(default_factory=dict)


def arrivals(scenario: Scenario, rng: random.Random) -> list[tuple[float, Tier]]:
    """Poisson arrivals, piecewise constant rate per interval and tier, in time order."""
    out: list[tuple[float, Tier]] = []
    start = scenario.arrivals.start
    for index, counts in enumerate(scenario.arrivals.intervals):
        begin = start + index * INTERVAL_S
        end = begin + INTERVAL_S
        for tier in TIERS:
            expected = counts.get(tier, 0.0)
            if expected <= 0:
                continue
            rate = expected / INTERVAL_S
            at = begin + rng.expovariate(rate)
            while at < end:
                out.append((at, tier))
                at += rng.expovariate(rate)
    out.sort()
    return out


def replicate(scenario: Scenario, index: int) -> Replication:
    """Replication `index` of the scenario: the same seed and index give the same figures.
    Arrivals, handle times and patience draw from separate streams, so a policy change
    is tried on the very same calls."""
    calls_in = arrivals(scenario, random.Random(f"{scenario.seed}:{index}:arrivals"))
    handles = random.Random(f"{scenario.seed}:{index}:handle")
    patience = random.Random(f"{scenario.seed}:{index}:patience")
    return _Loop(scenario, handles, patience).run(calls_in)


class _Loop:
    # An agent is idle only when its last `next_work` found nothing: no call waiting, no callback
    # ready. A call arriving then is the only one waiting, so `next_work` would offer it and
    # nothing else: it is answered straight from the queue (an allowed move, SPEC "Agents and
    # call states"), one engine step fewer. tests/simulation/test_run.py holds both ways equal.
    shortcut = True

    def __init__(self, scenario: Scenario, handles: random.Random, patience: random.Random) -> None:
        self.s = scenario
        self.policy = scenario.policy
        self.clock = ManualClock(scenario.staffing[0].start)
        serial = iter(range(1, 1 << 62))
        # The event trail is not read here: a small buffer that drops its oldest costs least.
        self.store = MemoryCallStore(
            scenario.policy, self.clock, new_id=lambda: f"cb{next(serial)}", epoch=1, event_cap=1024
        )
        self.handles = handles
        self.patience = patience
        # Handle times and patience: drawn from the archive's samples where the scenario has
        # them (admin/simulation/samples.py), else exponential with the scenario's mean.
        sample = scenario.handle_sample
        if sample is not None:
            choice = handles.choice
            self.handle_time: Callable[[], float] = lambda: choice(sample)
        else:
            rate, draw = 1.0 / scenario.aht_s, handles.expovariate
            self.handle_time = lambda: draw(rate)
        law = scenario.patience_law
        self.patience_of: Callable[[], float] | None = None
        if law is not None:
            self.patience_of = lambda: draw_patience(law, patience)
        elif scenario.patience_s is not None:
            rate_p, draw_p = 1.0 / scenario.patience_s, patience.expovariate
            self.patience_of = lambda: draw_p(rate_p)
        # (at, kind, order, subject, agent): agent only for the ends of work
        self.agenda: list[tuple[float, int, int, str, str]] = []
        self.order = 0
        self.idle: list[str] = []
        self.polling: set[str] = set()  # idle agents with an ask due (`_POLL`)
        self.on_duty = 0
        self.wanted = 0
        self.agent_serial = 0
        self.waiting: dict[str, Call] = {}  # every call that may still wait (checked on use)
        self.ready = 0  # callbacks that may be ready to hand out (an over-count only costs an ask)
        self.tallies: dict[tuple[int, Tier], sl.Tally] = {}
        self.fates: dict[str, CallbackFate] = {}
        self.first_interval = int(scenario.arrivals.start // INTERVAL_S)
        self.overflow_after = {tier: scenario.policy.tier(tier).overflow_after_s for tier in TIERS}
        self.thresholds = {tier: scenario.policy.tier(tier).sla_threshold_s for tier in TIERS}
        self.short_abandon_s = scenario.policy.short_abandon_s

    def push(self, at: float, kind: int, subject: str, agent: str = "") -> None:
        self.order += 1
        heapq.heappush(self.agenda, (at, kind, self.order, subject, agent))

    def count(self, tier: Tier, kind: sl.EventKind, at: float, value: float = 0.0) -> None:
        key = (int(at // INTERVAL_S) - self.first_interval, tier)
        tally = self.tallies.get(key)
        if tally is None:
            tally = self.tallies[key] = sl.Tally()
        sl.record(tally, kind, value, self.thresholds[tier], self.short_abandon_s)

    def run(self, calls_in: list[tuple[float, Tier]]) -> Replication:
        s, store, clock = self.s, self.store, self.clock
        for shift in s.staffing:
            self.push(shift.start, _SHIFT, str(shift.agents))
        self.push(s.staffing[-1].end, _SHIFT, "end")
        patience = self.patience_of
        route, agenda, waiting, push = store.route, self.agenda, self.waiting, self.push
        i, n = 0, len(calls_in)
        while i < n or agenda:
            if i < n and (not agenda or calls_in[i][0] < agenda[0][0]):
                at, tier = calls_in[i]
                i += 1
                clock.set(at)
                call_id = f"c{i}"
                snap, _ = step(route(call_id, TierRecord(caller=f"+1{i:010d}", tier=tier), QUEUE))
                self.count(tier, "arrived", at)
                call = snap.call
                if call.status == "overflowed":  # turned away at a full queue
                    self.left(call, "overflowed", snap.callback)
                    continue
                waiting[call_id] = call
                if self.idle:
                    if self.shortcut and len(waiting) == 1:
                        self.take(self.idle.pop(), call, at)
                    else:
                        self.dispatch()
                if call.status == "waiting":
                    limit = self.overflow_after[tier]
                    if limit is not None:
                        push(at + limit, _OVERFLOW, call_id)
                    if patience is not None:
                        push(at + patience(), _PATIENCE, call_id)
                continue
            at, kind, _, subject, agent = heapq.heappop(agenda)
            clock.set(at)
            if kind == _END:
                step(store.end(subject))
                self.freed(agent)
            elif kind == _CALLBACK_DONE:
                self.callback_done(agent, subject)
            elif kind == _SHIFT:
                self.shift(subject)
            elif kind == _OVERFLOW:
                due = waiting.get(subject)
                if due is not None and due.status == "waiting":
                    step(store.sweep())
                    if _status(due) == "overflowed":
                        del waiting[subject]
                        self.left(due, "overflowed", step(store.get_call(subject)).callback)
                        if self.idle:
                            self.dispatch()
            elif kind == _PATIENCE:
                gone = waiting.pop(subject, None)
                if gone is not None and gone.status == "waiting":
                    snap = step(store.abandon(subject))
                    self.left(gone, "abandoned", snap.callback)
                    if self.idle and snap.callback is not None:
                        self.dispatch()
            elif kind == _POLL:
                self.polling.discard(subject)
                if subject in self.idle:
                    self.poll(subject)
            else:  # _POKE: a callback retry fell due
                self.ready += 1
                if self.idle:
                    self.dispatch()
        step(store.sweep())
        return self.figures(clock.now())

    def left(self, call: Call, kind: sl.EventKind, callback: Callback | None) -> None:
        """A call stopped waiting without an answer; a callback it made joins the work."""
        assert call.left_at is not None
        self.count(call.tier, kind, call.left_at, call.waited(call.left_at))
        if callback is not None and callback.callback_id not in self.fates:
            self.ready += 1
            self.fates[callback.callback_id] = CallbackFate(
                interval=int((callback.created_at - self.s.arrivals.start) // INTERVAL_S),
                tier=callback.tier,
                deadline=callback.deadline,
            )

    # --- agents ---------------------------------------------------------------------------

    def dispatch(self) -> None:
        """Idle agents ask for work until one finds none (not asking when surely nothing is there)."""
        idle, store, waiting = self.idle, self.store, self.waiting
        now = self.clock.now()
        while idle and (waiting or self.ready > 0):
            agent = idle[-1]
            work = step(store.next_work(agent, None))
            if work is None:
                self.ready = 0
                return
            idle.pop()
            self.work_on(agent, work, now)

    def work_on(self, agent: str, work: Work, now: float) -> None:
        if work.call is not None:
            self.take(agent, work.call.call, now)
        elif work.callback is not None:
            self.ready -= 1
            took = self.handles.expovariate(1.0 / self.s.callback_handle_s)
            self.push(now + took, _CALLBACK_DONE, work.callback.callback_id, agent)

    def poll(self, agent: str) -> None:
        """An idle agent asks for work although nothing seems there; it asks again in
        `IDLE_POLL_S` while it stays idle."""
        now = self.clock.now()
        work = step(self.store.next_work(agent, None))
        if work is not None:
            self.idle.remove(agent)
            self.work_on(agent, work, now)
        elif agent not in self.polling:
            self.polling.add(agent)
            self.push(now + IDLE_POLL_S, _POLL, agent)

    def take(self, agent: str, call: Call, now: float) -> None:
        """`agent` answers `call` (offered to it, or the one call waiting) and talks for a while."""
        self.waiting.pop(call.call_id, None)
        step(self.store.answer(call.call_id, agent))
        assert call.answered_at is not None
        self.count(call.tier, "answered", now, call.answered_at - call.arrived_at)
        self.push(now + self.handle_time(), _END, call.call_id, agent)

    def freed(self, agent: str) -> None:
        if self.on_duty > self.wanted:
            self.on_duty -= 1  # leaves at the end of this piece of work
            return
        self.idle.append(agent)
        self.dispatch()
        if self.idle and self.idle[-1] == agent:  # nothing for it: idle, asking now and then
            self.poll(agent)

    def callback_done(self, agent: str, callback_id: str) -> None:
        reached = self.handles.random() < self.s.callback_reach
        callback = step(self.store.callback_outcome(callback_id, "completed" if reached else "no_answer", agent, None))
        fate = self.fates.get(callback_id)
        if callback.status == "open":
            self.push(callback.next_attempt_at, _POKE, callback_id)
        elif fate is not None:
            fate.closed = True
            fate.in_time = callback.status == "completed" and self.clock.now() <= callback.deadline
        self.freed(agent)

    def shift(self, subject: str) -> None:
        self.wanted = 0 if subject == "end" else int(subject)
        while self.on_duty > self.wanted and self.idle:
            self.idle.pop()
            self.on_duty -= 1
        while self.on_duty < self.wanted:
            self.on_duty += 1
            self.agent_serial += 1
            self.idle.append(f"a{self.agent_serial}")
        if self.idle:
            self.dispatch()
        for agent in [a for a in self.idle if a not in self.polling]:
            self.poll(agent)

    # --- figures --------------------------------------------------------------------------

    def figures(self, end: float) -> Replication:
        left: dict[Tier, int] = dict.fromkeys(TIERS, 0)
        for call in self.waiting.values():
            if call.status == "waiting":
                left[call.tier] += 1
        estimates: dict[Tier, Accuracy] = {}
        for row in step(self.store.metrics()).estimate_accuracy:
            estimates.setdefault(cast(Tier, row.tier), Accuracy()).merge(row.accuracy)
        return Replication(
            tallies=self.tallies,
            callbacks=list(self.fates.values()),
            waiting_at_end=left,
            calls=sum(t.arrived for t in self.tallies.values()),
            end=end,
            estimates=estimates,
        )
