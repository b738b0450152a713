"""A call's state and the moves SPEC allows between states, as pure checks.

Each `check_*` either says whether the move changes anything (False = an allowed no-op,
e.g. a retried request) or raises Conflict before anything is touched. Both stores apply
the same checks, so the state machine is written once.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from tierline.queue.errors import Conflict
from tierline.queue.ordering import Place
from tierline.tiers.model import Tier

CallStatus = Literal["waiting", "offered", "answered", "abandoned", "overflowed", "ended"]
OverflowReason = Literal["queue_full", "max_wait"]

FINISHED: frozenset[CallStatus] = frozenset({"abandoned", "overflowed", "ended"})


class Call(msgspec.Struct, kw_only=True):
    call_id: str
    caller: str
    tier: Tier
    queue: str
    status: CallStatus
    arrived_at: float
    seq: int
    agent_id: str | None = None
    offered_at: float | None = None
    answered_at: float | None = None
    left_at: float | None = None  # when an abandoned or overflowed call stopped waiting
    ended_at: float | None = None
    overflow_reason: OverflowReason | None = None
    callback_id: str | None = None

    @property
    def place(self) -> Place:
        return Place(self.arrived_at, self.seq, self.call_id)

    def waited(self, now: float) -> float:
        """Seconds waited so far, or in all once the wait is over."""
        end = self.answered_at if self.answered_at is not None else self.left_at
        return max(0.0, (now if end is None else end) - self.arrived_at)


def _refuse(call: Call, action: str) -> Conflict:
    return Conflict(f"call {call.call_id!r} is {call.status}: it cannot be {action}")


def check_answer(call: Call, agent_id: str) -> bool:
    if call.status == "waiting":
        return True
    if call.status == "offered":
        if call.agent_id != agent_id:
            raise Conflict(f"call {call.call_id!r} is offered to agent {call.agent_id!r}, not {agent_id!r}")
        return True
    if call.status == "answered" and call.agent_id == agent_id:
        return False
    raise _refuse(call, "answered")


def check_requeue(call: Call, agent_id: str | None) -> bool:
    if call.status == "waiting":
        return False
    if call.status == "offered":
        if agent_id is not None and agent_id != call.agent_id:
            raise Conflict(f"call {call.call_id!r} is offered to agent {call.agent_id!r}, not {agent_id!r}")
        return True
    raise _refuse(call, "requeued")


def check_abandon(call: Call) -> bool:
    if call.status in ("waiting", "offered"):
        return True
    # An IVR retries on time-outs: a repeated hang-up report is answered, not refused.
    if call.status == "abandoned":
        return False
    raise _refuse(call, "abandoned")


def check_end(call: Call) -> bool:
    if call.status == "answered":
        return True
    if call.status == "ended":
        return False
    raise _refuse(call, "ended")


def check_same_call(call: Call, caller: str, queue: str) -> None:
    """Posting an existing call_id again is safe only if it describes the same call."""
    if call.caller != caller or call.queue != queue:
        raise Conflict(
            f"call_id {call.call_id!r} is already used by a call from {call.caller!r} in queue {call.queue!r}",
            code="call_id_conflict",
        )
