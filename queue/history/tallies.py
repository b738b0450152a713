"""What archived events add to the 15-minute tallies: the one rule both archives apply.

Pure. An archive inserts a batch, keeps the events whose rows were actually new, and adds
`tally(new_events)` to its tally tables in the same transaction: so a re-sent batch moves
nothing. A tally belongs to the 15-minute interval (counted from the Unix epoch) in which its
event happened; every zone in use is offset by whole quarter hours, so local quarter hours are
these intervals too (reports.py builds longer buckets from them).

Callbacks: `callbacks_completed_in_time` counts closes as completed by the deadline;
`callbacks_overdue` counts callbacks decided (completed or unreached) after their deadline.
A callback still open past its deadline counts once it is closed.

As the live ledger (decisions.TALLY_MOVES): `callback_requested` counts calls that took the
callback offer and left the line (a `callback_request` event), in no formula; `resumed` counts
abandons a re-call took back (a `resume` event, in the re-call's interval) and `resumed_short`
those of them that were short abandons (the event's `short`), so the default formula leaves a
resumed abandon out once.

New fields go at the end (rows are read positionally) and into a new migration of each archive:
the shipped migrations name their own fields (sqlite_archive.FIELDS_V1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Final

import msgspec

from tierline.queue.history import events as ev
from tierline.queue.service_level import Tally

INTERVAL_S: Final = 900


class IntervalTally(msgspec.Struct):
    """Positional in TALLY_FIELDS order too: archives build one from each database row."""

    entered: int = 0
    answered: int = 0
    answered_within: int = 0
    abandoned: int = 0
    abandoned_within: int = 0
    short_abandoned: int = 0
    overflowed: int = 0
    callbacks_created: int = 0
    callbacks_completed_in_time: int = 0
    callbacks_overdue: int = 0
    answer_wait_sum: float = 0.0
    answer_wait_max: float = 0.0
    ended: int = 0
    handle_sum: float = 0.0
    callback_requested: int = 0
    resumed: int = 0
    resumed_short: int = 0

    @property
    def offered(self) -> int:
        """As in service_level.Tally: calls whose wait ended here, however it ended."""
        return self.answered + self.abandoned + self.overflowed

    def add(self, other: IntervalTally) -> None:
        # Field by field, written out: archiving adds one increment per event, and a loop of
        # getattr/setattr over the fields was most of a memory store's archiving cost.
        # tests/history/test_tallies.py holds that every field is added.
        self.entered += other.entered
        self.answered += other.answered
        self.answered_within += other.answered_within
        self.abandoned += other.abandoned
        self.abandoned_within += other.abandoned_within
        self.short_abandoned += other.short_abandoned
        self.overflowed += other.overflowed
        self.callbacks_created += other.callbacks_created
        self.callbacks_completed_in_time += other.callbacks_completed_in_time
        self.callbacks_overdue += other.callbacks_overdue
        self.answer_wait_sum += other.answer_wait_sum
        if other.answer_wait_max > self.answer_wait_max:
            self.answer_wait_max = other.answer_wait_max
        self.ended += other.ended
        self.handle_sum += other.handle_sum
        self.callback_requested += other.callback_requested
        self.resumed += other.resumed
        self.resumed_short += other.resumed_short

    def service_tally(self) -> Tally:
        """The engine's own tally shape, so its formulas apply unchanged."""
        return Tally(
            arrived=self.entered,
            answered=self.answered,
            answered_within=self.answered_within,
            abandoned=self.abandoned,
            abandoned_within=self.abandoned_within,
            short_abandoned=self.short_abandoned,
            overflowed=self.overflowed,
            answer_wait_sum=self.answer_wait_sum,
            answer_wait_max=self.answer_wait_max,
            ended=self.ended,
            handle_sum=self.handle_sum,
            callback_requested=self.callback_requested,
            resumed=self.resumed,
            resumed_short=self.resumed_short,
        )


class AgentTally(msgspec.Struct, kw_only=True):
    answered: int = 0
    ended: int = 0
    handle_sum: float = 0.0
    callbacks_completed: int = 0

    def add(self, other: AgentTally) -> None:
        self.answered += other.answered
        self.ended += other.ended
        self.handle_sum += other.handle_sum
        self.callbacks_completed += other.callbacks_completed


TALLY_FIELDS: Final[tuple[str, ...]] = IntervalTally.__struct_fields__
# The tally columns as the archives' migrations made them, written out: a shipped migration
# never changes, whatever fields IntervalTally gains (tests/history/test_tallies.py holds that
# they add up to TALLY_FIELDS, in order). Version 1 made the tables; the callback offer and
# resume counts (issue 16 items 3 and 4) came after.
TALLY_FIELDS_V1: Final[tuple[str, ...]] = (
    "entered",
    "answered",
    "answered_within",
    "abandoned",
    "abandoned_within",
    "short_abandoned",
    "overflowed",
    "callbacks_created",
    "callbacks_completed_in_time",
    "callbacks_overdue",
    "answer_wait_sum",
    "answer_wait_max",
    "ended",
    "handle_sum",
)
TALLY_FIELDS_HOLD_RESUME: Final[tuple[str, ...]] = ("callback_requested", "resumed", "resumed_short")
AGENT_FIELDS_V1: Final[tuple[str, ...]] = ("answered", "ended", "handle_sum", "callbacks_completed")
SUMMED: Final[tuple[str, ...]] = tuple(f for f in TALLY_FIELDS if f != "answer_wait_max")
AGENT_FIELDS: Final[tuple[str, ...]] = AgentTally.__struct_fields__
# Counts (the rest are seconds): databases store them as integers.
COUNT_FIELDS: Final[frozenset[str]] = frozenset(
    name
    for cls in (IntervalTally, AgentTally)
    for name, kind in zip(cls.__struct_fields__, msgspec.structs.fields(cls), strict=True)
    if kind.type is int
)

LaneKey = tuple[int, str, str]  # (interval, queue, tier)
AgentKey = tuple[int, str]  # (interval, agent)


def interval_of(at: float) -> int:
    return math.floor(at / INTERVAL_S)


def _lane_increment(event: ev.Event) -> IntervalTally | None:
    match event:
        case ev.Enter():
            return IntervalTally(entered=1)
        case ev.Answer(wait_s=wait, threshold_s=threshold):
            within = int(wait <= threshold)
            return IntervalTally(answered=1, answered_within=within, answer_wait_sum=wait, answer_wait_max=wait)
        case ev.Abandon(wait_s=wait, short=short, threshold_s=threshold):
            return IntervalTally(abandoned=1, abandoned_within=int(wait <= threshold), short_abandoned=int(short))
        case ev.Overflow():
            return IntervalTally(overflowed=1)
        case ev.End(handle_s=handle):
            return IntervalTally(ended=1, handle_sum=handle)
        case ev.CallbackRequest():
            return IntervalTally(callback_requested=1)
        case ev.Resume(short=short):
            return IntervalTally(resumed=1, resumed_short=int(short))
        case ev.CallbackCreated(merged=False):
            return IntervalTally(callbacks_created=1)
        case ev.CallbackClosed(reason=reason, deadline=deadline, at=at):
            in_time = reason == "completed" and at <= deadline
            late = reason in ("completed", "unreached") and at > deadline
            return IntervalTally(callbacks_completed_in_time=int(in_time), callbacks_overdue=int(late))
    return None


def hold_resume_lanes(rows: Iterable[Sequence[Any]]) -> dict[LaneKey, IntervalTally]:
    """Rows of (interval, queue, tier, callback_requested, resumed, resumed_short), as the
    archives count them from archived events when adding these columns, as tallies."""
    return {
        (int(i), str(q), str(t)): IntervalTally(callback_requested=int(c), resumed=int(r), resumed_short=int(s))
        for i, q, t, c, r, s in rows
    }


def _agent_increment(event: ev.Event) -> AgentTally | None:
    match event:
        case ev.Answer():
            return AgentTally(answered=1)
        case ev.End(handle_s=handle):
            return AgentTally(ended=1, handle_sum=handle)
        case ev.CallbackClosed(reason="completed"):
            return AgentTally(callbacks_completed=1)
    return None


def tally(events: Iterable[ev.Event]) -> tuple[dict[LaneKey, IntervalTally], dict[AgentKey, AgentTally]]:
    """The increments of these events per interval × queue × tier, and per interval × agent.

    Events without a queue and tier (tier reloads and edits) add to no lane; events without an
    agent add to no agent. Runtime: O(len(events)).
    """
    lanes: dict[LaneKey, IntervalTally] = {}
    agents: dict[AgentKey, AgentTally] = {}
    for event in events:
        interval = interval_of(event.at)
        if event.queue is not None and event.tier is not None and (inc := _lane_increment(event)) is not None:
            key = (interval, event.queue, event.tier)
            if (current := lanes.get(key)) is None:
                lanes[key] = inc
            else:
                current.add(inc)
        if event.agent is not None and (agent_inc := _agent_increment(event)) is not None:
            agent_key = (interval, event.agent)
            if (existing := agents.get(agent_key)) is None:
                agents[agent_key] = agent_inc
            else:
                existing.add(agent_inc)
    return lanes, agents
