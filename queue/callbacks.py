"""Callbacks for mid-tier callers the lines could not take: their record and life-cycle rules.

Pure: creation and its terms (`terms`: due from the queue's next opening, the deadline by the
policy's rule, `at_risk` when the opening hours leave too little time before it), merging a
second overflow into the caller's one open callback, and what an outcome does (retry later,
close, give up). Stores keep the callbacks; these rules decide.

Outcomes are owned and idempotent per attempt. An attempt is one hand-out (`assign`) to an
agent; only that agent ends it, naming itself in `agent_id` (anyone else, no agent_id, or a
callback no agent holds: `not_assigned`). The outcome that ended the last attempt is kept
with its agent until the callback is handed out again, so the same agent posting the same
outcome again — a retry after a lost answer, or two posts racing — is recognised and
answered with the callback as it is, changing nothing: no second attempt is used. The rule
is data, `decisions.OUTCOMES`, which the Redis engine (`ops.outcome` in redis_engine.lua)
receives and looks up as the memory store does here.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import msgspec

from tierline.queue.decisions import (
    GIVE_UP_STATUS,
    OUTCOMES,
    RESOLVED_BY_INBOUND,
    RETRY_STATUS,
    Apply,
    Refuse,
    outcome_poster,
)
from tierline.queue.decisions import CallbackStatus as CallbackStatus
from tierline.queue.decisions import Outcome as Outcome
from tierline.queue.errors import Conflict
from tierline.queue.hours import Window, after_open, next_open, open_seconds
from tierline.queue.policy import CallbackPolicy
from tierline.tiers.model import Tier, TierRecord

CallbackReason = Literal["queue_full", "max_wait", "abandoned", "closed"]

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
    # Its deadline leaves less than `min_open_s` of the queue's opening hours (set at creation).
    at_risk: bool = False
    agent_id: str | None = None
    closed_at: float | None = None
    note: str | None = None
    # The outcome that ended the last attempt and the agent that posted it, until the next hand-out.
    last_outcome: Outcome | None = None
    last_outcome_agent: str | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def overdue(self, now: float) -> bool:
        return self.active and now > self.deadline

    def completed_in_time(self) -> bool:
        return self.status == "completed" and self.closed_at is not None and self.closed_at <= self.deadline


class Terms(NamedTuple):
    """When a new callback may first be handed out, its deadline, and whether it is at risk."""

    due: float
    deadline: float
    at_risk: bool


def terms(window: Window | None, at: float, policy: CallbackPolicy) -> Terms:
    """The terms of a callback created at `at` in a queue with these opening hours (None:
    always open). Due from the next opening; the deadline by the policy's rule; at risk when
    less than `min_open_s` of open time lies before the deadline (or none is in reach).
    redis_engine.lua's `cb_terms` says the same."""
    open_rule = policy.deadline_rule == "open_hours"
    if window is None:
        return Terms(at, at + (policy.window_open_s if open_rule else policy.window_s), False)
    due = next_open(window, at)
    deadline = after_open(window, at, policy.window_open_s) if open_rule else at + policy.window_s
    if due is None or deadline is None:
        return Terms(at if due is None else due, at + policy.window_s if deadline is None else deadline, True)
    return Terms(due, deadline, open_seconds(window, at, deadline) < policy.min_open_s)


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
    given: Terms | None = None,
) -> Callback:
    """`given`: the terms from the queue's opening hours; by default those of a queue always open."""
    given = given or terms(None, at, policy)
    return Callback(
        callback_id=callback_id,
        caller=record.caller,
        tier=tier,
        queue=queue,
        call_id=call_id,
        reason=reason,
        status="open",
        created_at=at,
        deadline=given.deadline,
        next_attempt_at=given.due,
        record=record,
        at_risk=given.at_risk,
    )


def merge_overflow(existing: Callback, at: float, policy: CallbackPolicy, given: Terms | None = None) -> None:
    """A caller overflows again while a callback is active: one callback, the earliest deadline
    (its due time and at-risk flag stay those it was created with)."""
    given = given or terms(None, at, policy)
    existing.deadline = min(existing.deadline, given.deadline)


def assign(callback: Callback, agent_id: str) -> None:
    """A new attempt: the agent now holds the callback, and no outcome ended this attempt yet."""
    callback.status = "assigned"
    callback.agent_id = agent_id
    callback.last_outcome = None
    callback.last_outcome_agent = None


def decide_outcome(callback: Callback, outcome: Outcome, agent_id: str | None) -> Apply | None:
    """What the outcome does: an Apply that ends the current attempt; None when it repeats the
    outcome that ended the last one (same agent, same outcome, not handed out since): a no-op.
    Else `Conflict`, before anything changes. O(1)."""
    who = outcome_poster(agent_id, outcome, callback.agent_id, callback.last_outcome, callback.last_outcome_agent)
    decision = OUTCOMES[outcome][callback.status][who]
    if type(decision) is Apply:
        return decision
    if type(decision) is Refuse:
        message = decision.message.format(
            callback=repr(callback.callback_id),
            status=callback.status,
            holder=repr(callback.agent_id),
            agent=repr(agent_id),
        )
        raise Conflict(message, code=decision.code)
    return None


def check_outcome(callback: Callback, outcome: Outcome, agent_id: str | None) -> bool:
    """True: the outcome ends the current attempt. False: a retried outcome, a no-op. Else `Conflict`."""
    return decide_outcome(callback, outcome, agent_id) is not None


def apply_outcome(
    callback: Callback,
    outcome: Outcome,
    agent_id: str | None,
    now: float,
    policy: CallbackPolicy,
    note: str | None = None,
) -> bool:
    """End the current attempt (True), or change nothing for a retried outcome (False)."""
    decision = decide_outcome(callback, outcome, agent_id)
    if decision is None:
        return False
    if note is not None:
        callback.note = note
    callback.agent_id = None
    callback.last_outcome = outcome
    callback.last_outcome_agent = agent_id
    if decision.attempt:
        callback.attempts += 1
    if decision.closes is not None:
        _close(callback, decision.closes, now)
        return True
    retry_at = now + policy.retry_delay_s
    if callback.attempts >= policy.max_attempts or retry_at > callback.deadline:
        _close(callback, GIVE_UP_STATUS, now)
    else:
        callback.status = RETRY_STATUS
        callback.next_attempt_at = retry_at
    return True


def resolve_inbound(callback: Callback, now: float) -> bool:
    """The caller got through inbound: an open callback is moot. One already with an agent stays."""
    if callback.status not in RESOLVED_BY_INBOUND:
        return False
    _close(callback, "resolved_inbound", now)
    return True


def _close(callback: Callback, status: CallbackStatus, now: float) -> None:
    callback.status = status
    callback.closed_at = now
