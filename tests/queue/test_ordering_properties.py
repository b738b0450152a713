"""Property tests: the call stores against a brute-force model of the queues, on a manual clock.

Hypothesis drives random arrivals (vip/mid/standard/blacklisted, two queues, one of them
bounded), clock moves, offers, answers, ring-no-answer, requeues, abandons, ends and refused
moves. The model keeps every call in a plain dict and finds the best waiting call by sorting
all of them, so it shares no code with the store's sorted lanes. After every step:

(a) an offered call is the model's best waiting call of the served queues (tier rank, then
    arrival, then arrival counter; with aging, an aged standard ranks as mid);
(b) a call is held by at most one agent, an agent holds at most one thing, and next_work
    only ever offers a call that was waiting;
(c) every accepted call is in exactly the state the model says, and the SLA ledger counts
    answered / abandoned / overflowed add up to the calls that left the queue;
(d) position is the brute-force rank among the waiting calls of the queue, ahead = position − 1.

The memory store never awaits inside a method, so its coroutines are driven to completion
with one `send(None)`: that also checks that every step is atomic on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.conftest import new_namespace
from tierline.queue.clock import ManualClock
from tierline.queue.errors import Conflict, EngineError, Invalid
from tierline.queue.memory_store import MemoryCallStore
from tierline.queue.policy import Policy, QueuePolicy
from tierline.queue.redis_link import RedisLink, connect
from tierline.queue.redis_store import RedisCallStore
from tierline.queue.store import CallStore
from tierline.router.plumbing.messages import call_view
from tierline.tiers.model import Tier

from .helpers import T0, counter_ids, record

R = TypeVar("R")

TIER_LIST: tuple[Tier, ...] = ("vip", "mid", "standard", "blacklisted")
RANK = {"vip": 0, "mid": 1, "standard": 2, "blacklisted": 3}
QUEUES = ("q1", "q2")
MAX_WAITING = {"q1": None, "q2": 3}
AGENTS = ("a1", "a2", "a3")
CALLERS = tuple(f"+86138000000{i:02d}" for i in range(6))
OFFER_TIMEOUT = 30
MID_LIMIT = 60  # overflow_after_s of mid; the other tiers never overflow on wait


def run(coro: Coroutine[Any, Any, R]) -> R:
    """Drive a store coroutine that must not suspend: one step, then it has to be done."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise AssertionError("the memory store awaited inside a method: a step is not atomic")


@dataclass
class MCall:
    call_id: str
    caller: str
    tier: Tier
    queue: str
    arrived_at: int
    seq: int
    status: str = "waiting"
    agent: str | None = None
    offered_at: int | None = None
    ever_answered: bool = False


class QueueMachine(RuleBasedStateMachine):
    aging_s = 0

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(T0)
        policy = Policy(
            queues={q: QueuePolicy(max_waiting=MAX_WAITING[q] or 0) for q in QUEUES},
            aging_s=float(self.aging_s),
        )
        self.store: CallStore = self.make_store(policy)
        self.now = 0  # seconds since T0; always whole, so no float rounding at the edges
        self.calls: dict[str, MCall] = {}
        self.holding: dict[str, tuple[str, str]] = {}  # agent -> ("call" | "callback", id)
        self.seq = 0
        self.next_id = 0

    def make_store(self, policy: Policy) -> CallStore:
        return MemoryCallStore(policy, self.clock, new_id=counter_ids())

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        return run(coro)

    # --- the model ------------------------------------------------------------------------

    def key(self, c: MCall) -> tuple[int, int, int]:
        rank = RANK[c.tier]
        if self.aging_s and c.tier == "standard" and self.now - c.arrived_at > self.aging_s:
            rank = RANK["mid"]
        return (rank, c.arrived_at, c.seq)

    def waiting(self, queues: tuple[str, ...] | list[str] = QUEUES) -> list[MCall]:
        return sorted((c for c in self.calls.values() if c.status == "waiting" and c.queue in queues), key=self.key)

    def settle(self) -> None:
        """What falls due by `now`: ring-no-answer back to the queue, mid overflow at arrival + 60."""
        for c in self.calls.values():
            if c.status == "offered" and c.offered_at is not None and c.offered_at + OFFER_TIMEOUT <= self.now:
                back_at = c.offered_at + OFFER_TIMEOUT
                assert c.agent is not None
                del self.holding[c.agent]
                c.status, c.agent, c.offered_at = "waiting", None, None
                if c.tier == "mid" and back_at >= c.arrived_at + MID_LIMIT:
                    c.status = "overflowed"
            if c.status == "waiting" and c.tier == "mid" and self.now >= c.arrived_at + MID_LIMIT:
                c.status = "overflowed"

    def held_call(self, agent: str, status: str) -> MCall | None:
        held = self.holding.get(agent)
        if held is None or held[0] != "call":
            return None
        c = self.calls[held[1]]
        return c if c.status == status else None

    def expect_refusal(self, code: str, action: Any) -> None:
        before = self.snapshot_all()
        try:
            self.run(action)
        except EngineError as err:
            assert err.code == code, (err.code, code)
        else:
            raise AssertionError(f"expected {code}")
        assert self.snapshot_all() == before

    def snapshot_all(self) -> list[Any]:
        snaps = [self.run(self.store.get_call(i)) for i in sorted(self.calls)]
        return [(snap.call, snap.position) for snap in snaps]

    # --- rules ----------------------------------------------------------------------------

    ARRIVAL = st.tuples(st.sampled_from(TIER_LIST), st.sampled_from(QUEUES), st.sampled_from(CALLERS))

    @initialize(arrivals=st.lists(st.tuples(ARRIVAL, st.sampled_from([0, 1, 5, 10, 12])), min_size=3, max_size=10))
    def rush(self, arrivals: list[tuple[tuple[Tier, str, str], int]]) -> None:
        """A burst of arrivals a few seconds apart, so every run starts with calls to order."""
        for (tier, queue, caller), gap in arrivals:
            self.advance(gap)
            self.arrive(tier, queue, caller)

    # 40 steps of at most 61 s after a rush of at most 10 · 12 s: 2560 s, inside the rolling hour.
    @rule(seconds=st.sampled_from([0, 1, 2, 5, 10, 20, 29, 30, 31, 45, 59, 60, 61]))
    def advance(self, seconds: int) -> None:
        self.now += seconds
        self.clock.set(T0 + self.now)
        self.settle()
        if seconds and self.now % 7 == 0:
            self.run(self.store.sweep())

    @rule(tier=st.sampled_from(TIER_LIST), queue=st.sampled_from(QUEUES), caller=st.sampled_from(CALLERS))
    def arrive(self, tier: Tier, queue: str, caller: str) -> None:
        self.next_id += 1
        call_id = f"c{self.next_id}"
        limit = MAX_WAITING[queue]
        full = tier != "vip" and limit is not None and len(self.waiting([queue])) >= limit
        self.seq += 1
        snap, created = self.run(self.store.route(call_id, record(caller, tier), queue))
        assert created
        m = MCall(call_id, caller, tier, queue, self.now, self.seq)
        if full:
            m.status = "overflowed"
        self.calls[call_id] = m
        assert snap.call.seq == m.seq and snap.call.arrived_at == T0 + self.now
        assert snap.call.status == m.status
        if full:
            assert snap.call.overflow_reason == "queue_full"

    @precondition(lambda self: bool(self.calls))
    @rule(data=st.data())
    def arrive_again(self, data: st.DataObject) -> None:
        """The IVR retries a route: the same call back, or call_id_conflict when it is another call."""
        c = self.calls[data.draw(st.sampled_from(sorted(self.calls)))]
        caller = data.draw(st.sampled_from([c.caller, CALLERS[0], CALLERS[1]]))
        queue = data.draw(st.sampled_from(QUEUES))
        if caller == c.caller and queue == c.queue:
            before = self.snapshot_all()
            snap, created = self.run(self.store.route(c.call_id, record(caller, "vip"), queue))
            assert not created and snap.call.tier == c.tier and snap.call.seq == c.seq
            assert self.snapshot_all() == before
        else:
            self.expect_refusal("call_id_conflict", self.store.route(c.call_id, record(caller), queue))

    @rule()
    def arrive_in_unknown_queue(self) -> None:
        before = self.snapshot_all()
        try:
            self.run(self.store.route("never", record(CALLERS[0]), "nope"))
        except Invalid as err:
            assert err.code == "unknown_queue"
        else:
            raise AssertionError("unknown queue accepted")
        assert self.snapshot_all() == before

    @rule(agent=st.sampled_from(AGENTS), queues=st.sampled_from([None, ["q1"], ["q2"], ["q2", "q1"]]))
    def next_work(self, agent: str, queues: list[str] | None) -> None:
        served = tuple(queues or QUEUES)
        held = self.holding.get(agent)
        if held is not None and held[0] == "call" and self.calls[held[1]].status == "answered":
            self.expect_refusal("agent_busy", self.store.next_work(agent, queues))
            return
        candidates = self.waiting(served)
        work = self.run(self.store.next_work(agent, queues))
        if held is not None:
            # (b) a retried `next` returns the same item, offered no second time.
            assert work is not None
            if held[0] == "call":
                assert work.call is not None and work.call.call.call_id == held[1]
                assert work.call.call.offered_at == T0 + (self.calls[held[1]].offered_at or 0)
            else:
                assert work.callback is not None and work.callback.callback_id == held[1]
            return
        if work is None or work.call is None:
            # Inbound calls come before callbacks: no waiting call was passed over.
            assert candidates == [], [c.call_id for c in candidates]
            if work is not None:
                assert work.callback is not None
                self.holding[agent] = ("callback", work.callback.callback_id)
            return
        offered = work.call.call
        best = candidates[0]  # an IndexError here means a call was offered from nowhere
        # (a) nothing waiting in the served queues is strictly better than the offered call.
        assert offered.call_id == best.call_id, (offered.call_id, [(c.call_id, self.key(c)) for c in candidates])
        if offered.tier == "blacklisted":
            assert all(c.tier == "blacklisted" for c in candidates)
        if offered.tier != "vip":
            assert not any(c.tier == "vip" for c in candidates)
        # (b) it was waiting, not with another agent.
        assert best.status == "waiting" and best.agent is None
        assert offered.status == "offered" and offered.agent_id == agent
        best.status, best.agent, best.offered_at = "offered", agent, self.now
        self.holding[agent] = ("call", best.call_id)

    @rule(agent=st.sampled_from(AGENTS))
    def answer_offered(self, agent: str) -> None:
        c = self.held_call(agent, "offered")
        if c is None:
            return
        snap = self.run(self.store.answer(c.call_id, agent))
        assert snap.call.status == "answered" and snap.call.answered_at == T0 + self.now
        c.status, c.ever_answered = "answered", True

    @rule(agent=st.sampled_from(AGENTS), data=st.data())
    def answer_waiting(self, agent: str, data: st.DataObject) -> None:
        """An agent picks a waiting call directly (answer from `waiting`)."""
        waiting = self.waiting()
        if not waiting:
            return
        c = data.draw(st.sampled_from(waiting))
        if agent in self.holding:
            self.expect_refusal("agent_busy", self.store.answer(c.call_id, agent))
            return
        snap = self.run(self.store.answer(c.call_id, agent))
        assert snap.call.status == "answered"
        c.status, c.agent, c.ever_answered = "answered", agent, True
        self.holding[agent] = ("call", c.call_id)

    @rule(agent=st.sampled_from(AGENTS), by_agent=st.booleans())
    def requeue(self, agent: str, by_agent: bool) -> None:
        c = self.held_call(agent, "offered")
        if c is None:
            return
        snap = self.run(self.store.requeue(c.call_id, agent if by_agent else None))
        del self.holding[agent]
        c.agent, c.offered_at = None, None
        c.status = "overflowed" if c.tier == "mid" and self.now >= c.arrived_at + MID_LIMIT else "waiting"
        assert snap.call.status == c.status

    @rule(data=st.data())
    def abandon(self, data: st.DataObject) -> None:
        live = [c for c in self.calls.values() if c.status in ("waiting", "offered")]
        if not live:
            return
        c = data.draw(st.sampled_from(sorted(live, key=lambda c: c.seq)))
        self.run(self.store.abandon(c.call_id))
        if c.agent is not None:
            del self.holding[c.agent]
        c.status, c.agent, c.offered_at = "abandoned", None, None

    @rule(agent=st.sampled_from(AGENTS))
    def end(self, agent: str) -> None:
        c = self.held_call(agent, "answered")
        if c is None:
            return
        self.run(self.store.end(c.call_id))
        del self.holding[agent]
        c.status = "ended"

    @rule(agent=st.sampled_from(AGENTS))
    def callback_done(self, agent: str) -> None:
        held = self.holding.get(agent)
        if held is None or held[0] != "callback":
            return
        self.run(self.store.callback_outcome(held[1], "completed", agent, None))
        del self.holding[agent]

    @precondition(lambda self: bool(self.calls))
    @rule(data=st.data(), action=st.sampled_from(["answer", "requeue", "abandon", "end"]))
    def poke(self, data: st.DataObject, action: str) -> None:
        """Any move on any call by any agent: refused (changing nothing) exactly when the model says so."""
        c = self.calls[data.draw(st.sampled_from(sorted(self.calls)))]
        agent = data.draw(st.sampled_from(AGENTS))
        refused: str | None = None
        if action == "answer":
            if c.status == "waiting":
                refused = "agent_busy" if agent in self.holding else None
            elif c.status == "offered" or c.status == "answered":
                refused = None if c.agent == agent else "invalid_state"
            else:
                refused = "invalid_state"
        elif action == "requeue":
            refused = None if c.status == "waiting" or (c.status == "offered" and c.agent == agent) else "invalid_state"
        elif action == "abandon":
            refused = None if c.status in ("waiting", "offered", "abandoned") else "invalid_state"
        else:
            refused = None if c.status in ("answered", "ended") else "invalid_state"
        moves = {
            "answer": lambda: self.store.answer(c.call_id, agent),
            "requeue": lambda: self.store.requeue(c.call_id, agent),
            "abandon": lambda: self.store.abandon(c.call_id),
            "end": lambda: self.store.end(c.call_id),
        }
        if refused is not None:
            self.expect_refusal(refused, moves[action]())
            return
        self.run(moves[action]())
        # Mirror the allowed move in the model.
        if action == "answer" and c.status != "answered":
            c.status, c.agent, c.ever_answered = "answered", agent, True
            self.holding[agent] = ("call", c.call_id)
        elif action == "requeue" and c.status == "offered":
            del self.holding[agent]
            c.agent, c.offered_at = None, None
            c.status = "overflowed" if c.tier == "mid" and self.now >= c.arrived_at + MID_LIMIT else "waiting"
        elif action == "abandon" and c.status != "abandoned":
            if c.agent is not None:
                del self.holding[c.agent]
            c.status, c.agent, c.offered_at = "abandoned", None, None
        elif action == "end" and c.status == "answered":
            assert c.agent is not None
            del self.holding[c.agent]
            c.status = "ended"

    # --- invariants -------------------------------------------------------------------------

    @invariant()
    def states_positions_and_holders_match_the_model(self) -> None:
        held_by: dict[str, str] = {}
        waiting = {q: self.waiting([q]) for q in QUEUES}
        for call_id, m in self.calls.items():
            snap = self.run(self.store.get_call(call_id))
            call = snap.call
            # (c) exactly the model's state, one of the six.
            assert call.status == m.status, (call_id, call.status, m.status)
            assert (call.arrived_at, call.seq, call.tier, call.queue) == (T0 + m.arrived_at, m.seq, m.tier, m.queue)
            view = call_view(snap)
            if m.status == "waiting":
                # (d) brute-force rank among the waiting calls of its queue.
                rank = [c.call_id for c in waiting[m.queue]].index(call_id) + 1
                assert snap.position == rank, (call_id, snap.position, rank)
                assert view.ahead == rank - 1
                assert call.agent_id is None
            else:
                assert snap.position is None and view.ahead is None
            if m.status in ("offered", "answered"):
                # (b) one agent per call, one call per agent, the one the model says.
                assert call.agent_id is not None and call.agent_id == m.agent
                assert call.agent_id not in held_by, (call.agent_id, held_by)
                held_by[call.agent_id] = call_id
            if m.status == "overflowed":
                assert call.left_at is not None
                # Never later than arrival + 60 for a mid call that was waiting when it ran out.
                if call.overflow_reason == "max_wait":
                    assert call.tier == "mid" and call.left_at >= call.arrived_at + MID_LIMIT
        model_held = {a: h[1] for a, h in self.holding.items() if h[0] == "call"}
        assert held_by == model_held

    @invariant()
    def ledger_adds_up(self) -> None:
        assert self.now < 59 * 60
        report = self.run(self.store.sla(None, "60m"))
        answered = sum(r.figures.answered for r in report.rows)
        abandoned = sum(r.figures.abandoned for r in report.rows)
        overflowed = sum(r.figures.overflowed for r in report.rows)
        offered = sum(r.figures.offered for r in report.rows)
        arrived = sum(r.figures.arrived for r in report.rows)
        waiting_now = sum(r.waiting_now for r in report.rows)
        calls = self.calls.values()
        assert arrived == len(self.calls)
        assert answered == sum(c.ever_answered for c in calls)
        assert abandoned == sum(c.status == "abandoned" for c in calls)
        assert overflowed == sum(c.status == "overflowed" for c in calls)
        # Every call that left the queue counts once: offered = answered + abandoned + overflowed.
        left = sum(c.status in ("answered", "ended", "abandoned", "overflowed") for c in calls)
        assert offered == answered + abandoned + overflowed == left
        assert waiting_now == sum(c.status == "waiting" for c in calls)
        # Conservation: every accepted call is in exactly one of the six states.
        states = ("waiting", "offered", "answered", "ended", "abandoned", "overflowed")
        assert sum(sum(c.status == s for c in calls) for s in states) == len(self.calls)


class AgingQueueMachine(QueueMachine):
    """The same model with aging on: a standard call older than 10 s ranks with mid by arrival.

    10 s is short next to the mid limit (60 s), so aged standards and younger mids often wait
    together, and whole-second clock moves often land exactly on the aging edge.
    """

    aging_s = 10

    @invariant()
    def aging_never_jumps_a_vip_nor_lifts_blacklisted(self) -> None:
        for q in QUEUES:
            order = self.waiting([q])
            tiers = [c.tier for c in order]
            # VIPs first, blacklisted last, whatever the ages.
            assert tiers == sorted(tiers, key=lambda t: (t != "vip", t == "blacklisted"))
            # Among the mid-ranked (mid and aged standard), arrival order.
            middle = [c for c in order if self.key(c)[0] == RANK["mid"]]
            assert [c.arrived_at for c in middle] == sorted(c.arrived_at for c in middle)
            for c in order:
                snap = self.run(self.store.get_call(c.call_id))
                assert snap.position == order.index(c) + 1


PROFILE = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

TestQueueMachine = QueueMachine.TestCase
TestQueueMachine.settings = PROFILE
TestAgingQueueMachine = AgingQueueMachine.TestCase
TestAgingQueueMachine.settings = PROFILE


# --- the same model against the Redis store ------------------------------------------------------
# A real Redis (the session's throwaway server); each example gets a fresh key namespace. Its
# steps do await (network I/O), so they run on one event loop; atomicity there comes from each
# step being one Lua script.

_loop = asyncio.new_event_loop()


class RedisQueueMachine(QueueMachine):
    """The model against a Redis store on the server at `url` (given by the test, per machine)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.links: list[RedisLink] = []
        super().__init__()  # builds the store: url and links are needed first

    def make_store(self, policy: Policy) -> CallStore:
        link = RedisLink(connect(self.url, 2.0), timeout_s=2.0)
        self.links.append(link)
        return RedisCallStore(link, policy, self.clock, namespace=new_namespace())

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        return _loop.run_until_complete(coro)

    def teardown(self) -> None:
        while self.links:
            _loop.run_until_complete(self.links.pop().close())


class RedisAgingQueueMachine(RedisQueueMachine, AgingQueueMachine):
    pass


REDIS_PROFILE = settings(PROFILE, max_examples=25)


@pytest.mark.parametrize("machine", [RedisQueueMachine, RedisAgingQueueMachine])
def test_the_redis_store_against_the_model(machine: type[RedisQueueMachine], redis_url: str) -> None:
    # Hypothesis only calls its first argument with no arguments (its docs: `state_machine_factory`),
    # though the annotation asks for a class.
    run_state_machine_as_test(lambda: machine(redis_url), settings=REDIS_PROFILE)  # type: ignore[arg-type]


def test_run_refuses_a_coroutine_that_suspends() -> None:
    import asyncio

    async def suspends() -> None:
        await asyncio.sleep(0)

    try:
        run(suspends())
    except AssertionError:
        pass
    else:
        raise AssertionError("run() accepted a suspending coroutine")


def test_a_refused_move_is_detected_as_such() -> None:
    # Guards expect_refusal itself: a move that is allowed must not pass as refused.
    machine = QueueMachine()
    machine.arrive("standard", "q1", CALLERS[0])
    try:
        machine.expect_refusal("invalid_state", machine.store.abandon("c1"))
    except AssertionError:
        pass
    else:
        raise AssertionError("an allowed move passed as a refusal")
    try:
        machine.expect_refusal("invalid_state", machine.store.end("c1"))  # refused: fine
    except AssertionError as err:
        raise AssertionError("a refused move was not recognised") from err
    assert isinstance(Conflict("x"), EngineError)
