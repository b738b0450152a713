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

A callback carries what the back office needs once the call behind it is forgotten (after
retention): the overflowed call's context, copied at creation (`call_arrived_at`, `waited_s`,
beside `queue`, `reason` and `created_at`, when it overflowed), and its attempt log: one
`Attempt` per ended attempt or reschedule (when, who, the outcome, the note, when it is due
again), at most `ATTEMPT_LOG_CAP`, oldest dropped first. `rescheduled` (the customer asked to be
called at `call_at`) uses no attempt: the callback is back in the pool from `call_at`, which
`CALL_AT_CHECKS` holds to the future, the deadline and the queue's opening hours.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import msgspec

from tierline.queue.decisions import (
    ATTEMPT_LOG_CAP,
    CALL_AT_CHECKS,
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
from tierline.queue.errors import Conflict, Invalid
from tierline.queue.hours import Window, after_open, is_open, next_open, open_seconds
from tierline.queue.policy import CallbackPolicy
from tierline.tiers.model import Tier, TierRecord

# `requested`: the caller took the callback offer from the line (issue 16 item 3).
CallbackReason = Literal["queue_full", "max_wait", "abandoned", "closed", "requested"]

ACTIVE: frozenset[CallbackStatus] = frozenset({"open", "assigned"})


class Attempt(msgspec.Struct, kw_only=True):
    """One ended attempt (or a reschedule) of a callback: when its outcome was posted, by whom."""

    at: float
    agent_id: str
    outcome: Outcome
    taken_at: float | None = None  # when the agent was handed the callback
    note: str | None = None
    # When the callback is due again: the retry of a no_answer, the customer's time of a
    # rescheduled; None when the outcome closed it.
    next_attempt_at: float | None = None


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
    # A requested callback whose place still waits in line: it is handed out when the place is
    # first (then, or when the place's wait runs out, it is an ordinary callback).
    held: bool = False
    agent_id: str | None = None
    closed_at: float | None = None
    note: str | None = None
    # The outcome that ended the last attempt and the agent that posted it, until the next hand-out.
    last_outcome: Outcome | None = None
    last_outcome_agent: str | None = None
    # The overflowed call, copied at creation: when it arrived and how long it waited.
    call_arrived_at: float | None = None
    waited_s: float | None = None
    assigned_at: float | None = None  # when the agent holding it now was handed it
    attempt_log: list[Attempt] = msgspec.field(default_factory=list)

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
    call_arrived_at: float | None = None,
    waited_s: float | None = None,
) -> Callback:
    """`given`: the terms from the queue's opening hours; by default those of a queue always open.
    `call_arrived_at`, `waited_s`: the overflowed call's arrival and wait."""
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
        call_arrived_at=call_arrived_at,
        waited_s=waited_s,
    )


def merge_overflow(existing: Callback, at: float, policy: CallbackPolicy, given: Terms | None = None) -> None:
    """A caller overflows again while a callback is active: one callback, the earliest deadline
    (its due time and at-risk flag stay those it was created with)."""
    given = given or terms(None, at, policy)
    existing.deadline = min(existing.deadline, given.deadline)


def assign(callback: Callback, agent_id: str, now: float) -> None:
    """A new attempt: the agent now holds the callback, and no outcome ended this attempt yet."""
    callback.status = "assigned"
    callback.agent_id = agent_id
    callback.assigned_at = now
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


def _instant(t: float) -> str:
    return f"{t:.17g}"


def call_at_fault(
    callback: Callback, call_at: float | None, now: float, window: Window | None
) -> tuple[str, str] | None:
    """The first of `CALL_AT_CHECKS` that `call_at` fails, as (code, message); None when it
    passes them all. `window`: the opening hours of the callback's queue (None: always open)."""
    for check, code, message in CALL_AT_CHECKS:
        if check == "given":
            failed = call_at is None
        else:
            assert call_at is not None
            if check == "future":
                failed = call_at <= now
            elif check == "by_deadline":
                failed = call_at > callback.deadline
            else:
                failed = window is not None and not is_open(window, call_at)
        if failed:
            text = message.format(
                call_at=_instant(call_at or 0.0),
                now=_instant(now),
                deadline=_instant(callback.deadline),
                queue=repr(callback.queue),
            )
            return code, text
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
    call_at: float | None = None,
    window: Window | None = None,
) -> bool:
    """End the current attempt (True), or change nothing for a retried outcome (False).
    `call_at`, `window`: a rescheduled outcome's asked time and its queue's opening hours;
    a `call_at` that fails `CALL_AT_CHECKS` is `Invalid`, before anything changes."""
    decision = decide_outcome(callback, outcome, agent_id)
    if decision is None:
        return False
    if decision.due == "asked" and (fault := call_at_fault(callback, call_at, now, window)) is not None:
        raise Invalid(fault[1], code=fault[0])
    assert agent_id is not None  # only the holder's outcome applies
    if note is not None:
        callback.note = note
    taken_at = callback.assigned_at
    callback.agent_id = None
    callback.assigned_at = None
    callback.last_outcome = outcome
    callback.last_outcome_agent = agent_id
    if decision.attempt:
        callback.attempts += 1
    due: float | None = None
    if decision.closes is not None:
        _close(callback, decision.closes, now)
    elif decision.due == "asked":
        assert call_at is not None
        callback.status = RETRY_STATUS
        callback.next_attempt_at = due = call_at
    elif callback.attempts >= policy.max_attempts or now + policy.retry_delay_s > callback.deadline:
        _close(callback, GIVE_UP_STATUS, now)
    else:
        callback.status = RETRY_STATUS
        callback.next_attempt_at = due = now + policy.retry_delay_s
    entry = Attempt(at=now, agent_id=agent_id, outcome=outcome, taken_at=taken_at, note=note, next_attempt_at=due)
    callback.attempt_log = [*callback.attempt_log[-(ATTEMPT_LOG_CAP - 1) :], entry]
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
