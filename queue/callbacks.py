"""Callbacks for mid-tier callers the lines could not take: their record and life-cycle rules.

Pure: creation, merging a second overflow into the caller's one open callback, and what an
outcome does (retry later, close, give up). Stores keep the callbacks; these rules decide.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from tierline.queue.errors import Conflict
from tierline.queue.policy import CallbackPolicy
from tierline.tiers.model import Tier, TierRecord

CallbackReason = Literal["queue_full", "max_wait", "abandoned"]
CallbackStatus = Literal["open", "assigned", "completed", "cancelled", "resolved_inbound", "unreached"]
Outcome = Literal["completed", "no_answer", "cancelled"]

ACTIVE: frozenset[CallbackStatus] = frozenset({"open", "assigned"})


class Callback(msgspec.Struct, kw_only=True):
    callback_id: str
    caller: str
    tier: Tier
    queue: str
    call_id: str
    reason: CallbackReason
    status: CallbackStatus
    created_at: float
    deadline: float
    next_attempt_at: float
    record: TierRecord
    attempts: int = 0
    agent_id: str | None = None
    closed_at: float | None = None
    note: str | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def overdue(self, now: float) -> bool:
        return self.active and now > self.deadline

    def completed_in_time(self) -> bool:
        return self.status == "completed" and self.closed_at is not None and self.closed_at <= self.deadline


def new_callback(
    callback_id: str,
    *,
    record: TierRecord,
    tier: Tier,
    queue: str,
    call_id: str,
    reason: CallbackReason,
    at: float,
    policy: CallbackPolicy,
) -> Callback:
    return Callback(
        callback_id=callback_id,
        caller=record.caller,
        tier=tier,
        queue=queue,
        call_id=call_id,
        reason=reason,
        status="open",
        created_at=at,
        deadline=at + policy.window_s,
        next_attempt_at=at,
        record=record,
    )


def merge_overflow(existing: Callback, at: float, policy: CallbackPolicy) -> None:
    """A caller overflows again while a callback is active: one callback, the earliest deadline."""
    existing.deadline = min(existing.deadline, at + policy.window_s)


def assign(callback: Callback, agent_id: str) -> None:
    callback.status = "assigned"
    callback.agent_id = agent_id


def apply_outcome(
    callback: Callback,
    outcome: Outcome,
    agent_id: str | None,
    now: float,
    policy: CallbackPolicy,
    note: str | None = None,
) -> None:
    if not callback.active:
        raise Conflict(f"callback {callback.callback_id!r} is {callback.status}: it takes no outcome")
    if callback.status == "assigned" and agent_id is not None and agent_id != callback.agent_id:
        raise Conflict(
            f"callback {callback.callback_id!r} is assigned to agent {callback.agent_id!r}, not {agent_id!r}"
        )
    if note is not None:
        callback.note = note
    callback.agent_id = None
    if outcome == "cancelled":
        _close(callback, "cancelled", now)
        return
    callback.attempts += 1
    if outcome == "completed":
        _close(callback, "completed", now)
        return
    retry_at = now + policy.retry_delay_s
    if callback.attempts >= policy.max_attempts or retry_at > callback.deadline:
        _close(callback, "unreached", now)
    else:
        callback.status = "open"
        callback.next_attempt_at = retry_at


def resolve_inbound(callback: Callback, now: float) -> bool:
    """The caller got through inbound: an open callback is moot. One already with an agent stays."""
    if callback.status != "open":
        return False
    _close(callback, "resolved_inbound", now)
    return True


def _close(callback: Callback, status: CallbackStatus, now: float) -> None:
    callback.status = status
    callback.closed_at = now
