"""A call's record, and the look-up of the move an action makes on it.

The state machine itself is data, `decisions.CALL_MOVES`: `decide` looks the move up and
turns a refusal into a Conflict before anything is touched. The memory store calls it; the
Redis engine looks the same table up in Lua (see the header of redis_engine.lua).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from tierline.queue.decisions import CALL_MOVES, CallAction, Move, Refuse, poster
from tierline.queue.decisions import CallStatus as CallStatus
from tierline.queue.errors import Conflict
from tierline.queue.ordering import Place
from tierline.tiers.model import Tier

OverflowReason = Literal["queue_full", "max_wait", "closed"]

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
    # The abandoned call whose place and tier this call took back (issue 16 item 4).
    resumed_from: str | None = None

    @property
    def place(self) -> Place:
        return Place(self.arrived_at, self.seq, self.call_id)

    def waited(self, now: float) -> float:
        """Seconds waited so far, or in all once the wait is over."""
        end = self.answered_at if self.answered_at is not None else self.left_at
        return max(0.0, (now if end is None else end) - self.arrived_at)


def decide(action: CallAction, call: Call, agent_id: str | None = None) -> Move | None:
    """The move `action` (asked by `agent_id`, if any) makes on `call`; None for an allowed no-op
    (e.g. a retried request); Conflict, before anything is touched, for a refusal. O(1)."""
    decision = CALL_MOVES[action][call.status][poster(agent_id, call.agent_id)]
    if type(decision) is Move:
        return decision
    if type(decision) is Refuse:
        message = decision.message.format(
            call=repr(call.call_id), status=call.status, holder=repr(call.agent_id), agent=repr(agent_id)
        )
        raise Conflict(message, code=decision.code)
    return None


def check_answer(call: Call, agent_id: str) -> bool:
    return decide("answer", call, agent_id) is not None


def check_requeue(call: Call, agent_id: str | None) -> bool:
    return decide("requeue", call, agent_id) is not None


def check_abandon(call: Call) -> bool:
    return decide("abandon", call) is not None


def check_end(call: Call) -> bool:
    return decide("end", call) is not None


def check_callback(call: Call) -> bool:
    return decide("callback", call) is not None


def resume_key(caller: str, crm: dict[str, str]) -> str:
    """What a re-call must match to take back an abandoned call's place (issue 16 item 4): the
    caller number and the tier record's customer id ("" without one), in the same queue.
    redis_engine.lua's `route_lookup` builds the same text from the record it reads."""
    return caller + "|" + str(crm.get("customer_id", ""))


def check_same_call(call: Call, caller: str, queue: str) -> None:
    """Posting an existing call_id again is safe only if it describes the same call."""
    if call.caller != caller or call.queue != queue:
        raise Conflict(
            f"call_id {call.call_id!r} is already used by a call from {call.caller!r} in queue {call.queue!r}",
            code="call_id_conflict",
        )
