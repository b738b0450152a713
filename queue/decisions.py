"""The rules both engines apply, as data: written once here, looked up by both stores.

- which move an action makes on a call, by its status and who asks (`CALL_MOVES`);
- what a callback outcome does, by the callback's status and who posts it (`OUTCOMES`);
- which counters each call event moves (`TALLY_MOVES`, `LIFETIME_FIELDS`, `HISTOGRAM_KIND`);
- tier ranks, the tiers that get a callback, who is admitted to a full queue, which callback
  statuses an inbound answer resolves;
- what an agent gets next, calls and callbacks interleaved (`NEXT_ORDER`, `next_pick`).

The memory store looks them up (`calls.decide`, `callbacks.decide_outcome`,
`service_level.record`, `metrics.record`). The Redis engine receives the same tables as Lua
(`redis_script.lua_tables`, prepended to redis_engine.lua when the script is registered) and
looks them up too. What it still writes a second time (who asks, `poster` and
`outcome_poster`; what each of the five `amount`s adds) is listed at the top of
redis_engine.lua. tests/queue/test_decision_tables.py runs every reachable entry on all three
stores and checks that the Lua the engine receives holds exactly these tables.

Refusal messages are templates: `{call}`, `{callback}`, `{holder}` and `{agent}` are filled
with quoted ids, `{status}` with the status, by each engine on the refusal path only.
"""

from __future__ import annotations

from typing import Final, Literal, NamedTuple, get_args

from tierline.tiers.model import TIER_RANK, TIERS, Tier

# `callback_requested`: the caller took the callback offer and left the line; the call's place
# stays in the line, held for its callback until it is first (issue 16 item 3).
CallStatus = Literal["waiting", "offered", "answered", "abandoned", "overflowed", "ended", "callback_requested"]
CallbackStatus = Literal["open", "assigned", "completed", "cancelled", "resolved_inbound", "unreached"]
Outcome = Literal["completed", "no_answer", "cancelled", "rescheduled"]
EventKind = Literal["arrived", "answered", "abandoned", "overflowed", "ended", "callback_requested", "resumed"]

CallAction = Literal["answer", "requeue", "abandon", "end", "callback"]
# Who asks for a call action, against the agent the call names: that agent, another one, or no
# agent at all (a requeue by the system, a hang-up, an end). See `poster`.
Poster = Literal["same", "other", "none"]
# Who posts a callback outcome: the same agent repeating the outcome that ended the last attempt
# (checked first), the agent holding the callback, another agent, or none. See `outcome_poster`.
OutcomePoster = Literal["repeat", "holder", "other", "none"]

CALL_STATUSES: Final[tuple[CallStatus, ...]] = get_args(CallStatus)
CALLBACK_STATUSES: Final[tuple[CallbackStatus, ...]] = get_args(CallbackStatus)
OUTCOME_NAMES: Final[tuple[Outcome, ...]] = get_args(Outcome)
EVENT_KINDS: Final[tuple[EventKind, ...]] = get_args(EventKind)


class Move(NamedTuple):
    """The action applies: the call moves to `to`. A requeued call whose wait has already run
    out overflows instead, as the sweep would have it."""

    to: CallStatus
    free_agent: bool = False  # the asking agent must hold no other work, else `agent_busy`


class Noop(NamedTuple):
    """A repeat of a move already made (a retried request): answered with the item as it is."""


class Refuse(NamedTuple):
    code: str
    message: str  # a template, see the module's docstring


class Apply(NamedTuple):
    """The outcome ends the callback's current attempt.

    `attempt`: it uses one of the callback's attempts. `closes`: the status it closes with;
    None sends it back to the pool (`RETRY_STATUS`) until its next attempt is due. `due`
    says when: "retry", after the retry delay, unless that was the last attempt or the retry
    would fall after the deadline (then `GIVE_UP_STATUS`); "asked", at the time the customer
    asked for (the outcome's `call_at`, checked by `CALL_AT_CHECKS` first).
    """

    attempt: bool
    closes: CallbackStatus | None
    due: Literal["retry", "asked"] = "retry"


CallDecision = Move | Noop | Refuse
OutcomeDecision = Apply | Noop | Refuse

NOOP: Final = Noop()

# --- call moves -----------------------------------------------------------------------------

POSTERS: Final[dict[CallAction, tuple[Poster, ...]]] = {
    "answer": ("same", "other"),  # always names an agent
    "requeue": ("same", "other", "none"),
    "abandon": ("none",),
    "end": ("none",),
    "callback": ("none",),
}


def _refused(verb: str) -> Refuse:
    return Refuse("invalid_state", "call {call} is {status}: it cannot be " + verb)


_NOT_HOLDER: Final = Refuse("invalid_state", "call {call} is offered to agent {holder}, not {agent}")

# action → status → the decision, or poster → decision where who asks matters.
_CALL_RULES: Final[dict[CallAction, dict[CallStatus, CallDecision | dict[Poster, CallDecision]]]] = {
    "answer": {
        "waiting": Move("answered", free_agent=True),
        "offered": {"same": Move("answered"), "other": _NOT_HOLDER},
        "answered": {"same": NOOP, "other": _refused("answered")},
        "abandoned": _refused("answered"),
        "overflowed": _refused("answered"),
        "ended": _refused("answered"),
        "callback_requested": _refused("answered"),
    },
    "requeue": {
        "waiting": NOOP,
        "offered": {"same": Move("waiting"), "none": Move("waiting"), "other": _NOT_HOLDER},
        "answered": _refused("requeued"),
        "abandoned": _refused("requeued"),
        "overflowed": _refused("requeued"),
        "ended": _refused("requeued"),
        "callback_requested": _refused("requeued"),
    },
    "abandon": {
        "waiting": Move("abandoned"),
        "offered": Move("abandoned"),
        # An IVR retries on time-outs: a repeated hang-up report is answered, not refused.
        "abandoned": NOOP,
        # The IVR hangs up once the caller took the callback: that is the call's end, not an abandon.
        "callback_requested": NOOP,
        "answered": _refused("abandoned"),
        "overflowed": _refused("abandoned"),
        "ended": _refused("abandoned"),
    },
    "end": {
        "answered": Move("ended"),
        "ended": NOOP,
        "waiting": _refused("ended"),
        "offered": _refused("ended"),
        "abandoned": _refused("ended"),
        "overflowed": _refused("ended"),
        "callback_requested": _refused("ended"),
    },
    # The callback offer (issue 16 item 3): only a waiting call takes it; a repeat is answered.
    "callback": {
        "waiting": Move("callback_requested"),
        "callback_requested": NOOP,
        "offered": Refuse("not_waiting", "call {call} is offered to an agent: only a waiting call takes a callback"),
        "answered": Refuse("not_waiting", "call {call} is answered: only a waiting call takes a callback"),
        "abandoned": Refuse("not_waiting", "call {call} is abandoned: only a waiting call takes a callback"),
        "overflowed": Refuse("not_waiting", "call {call} is overflowed: only a waiting call takes a callback"),
        "ended": Refuse("not_waiting", "call {call} is ended: only a waiting call takes a callback"),
    },
}


def _expand_calls() -> dict[CallAction, dict[CallStatus, dict[Poster, CallDecision]]]:
    out: dict[CallAction, dict[CallStatus, dict[Poster, CallDecision]]] = {}
    for action, by_status in _CALL_RULES.items():
        out[action] = {}
        for status in CALL_STATUSES:
            rule = by_status[status]
            out[action][status] = {p: rule if not isinstance(rule, dict) else rule[p] for p in POSTERS[action]}
    return out


# action → status → poster → decision, every combination present (nested, so a look-up on the
# request path builds no key).
CALL_MOVES: Final = _expand_calls()


def poster(agent_id: str | None, holder: str | None) -> Poster:
    if agent_id is None:
        return "none"
    return "same" if agent_id == holder else "other"


# --- callback outcomes ----------------------------------------------------------------------

RETRY_STATUS: Final[CallbackStatus] = "open"
GIVE_UP_STATUS: Final[CallbackStatus] = "unreached"

_APPLY: Final[dict[Outcome, Apply]] = {
    "completed": Apply(attempt=True, closes="completed"),
    "no_answer": Apply(attempt=True, closes=None),
    "cancelled": Apply(attempt=False, closes="cancelled"),
    # The customer asked to be called at another time: back to the pool from then, no attempt used.
    "rescheduled": Apply(attempt=False, closes=None, due="asked"),
}
_TAKES_NONE: Final = Refuse("invalid_state", "callback {callback} is {status}: it takes no outcome")
_NOT_HANDED_OUT: Final = Refuse(
    "not_assigned",
    "callback {callback} is open: no agent holds it; the agent it is handed to (next) posts the outcome",
)
_HELD_BY_OTHER: Final = Refuse("not_assigned", "callback {callback} is held by agent {holder}, not {agent}")
_HELD_NO_AGENT: Final = Refuse("not_assigned", "callback {callback} is held by agent {holder}, no agent_id")


def _outcome_rule(outcome: Outcome, status: CallbackStatus, who: OutcomePoster) -> OutcomeDecision:
    # Owned and idempotent per attempt: see queue/callbacks.py's docstring.
    if who == "repeat":
        return NOOP
    if status == "assigned":
        if who == "holder":
            return _APPLY[outcome]
        return _HELD_BY_OTHER if who == "other" else _HELD_NO_AGENT
    if status == "open":
        return _NOT_HANDED_OUT
    return _TAKES_NONE


# outcome → status → poster → decision, every combination present.
OUTCOMES: Final[dict[Outcome, dict[CallbackStatus, dict[OutcomePoster, OutcomeDecision]]]] = {
    outcome: {
        status: {who: _outcome_rule(outcome, status, who) for who in get_args(OutcomePoster)}
        for status in CALLBACK_STATUSES
    }
    for outcome in OUTCOME_NAMES
}


def outcome_poster(
    agent_id: str | None, outcome: Outcome, holder: str | None, last_outcome: str | None, last_agent: str | None
) -> OutcomePoster:
    if agent_id is None:
        return "none"
    if last_outcome == outcome and last_agent == agent_id:
        return "repeat"
    return "holder" if agent_id == holder else "other"


# What the `call_at` of an outcome whose Apply is due "asked" must satisfy, checked in this order
# after the outcome is found to apply (a refused or repeated one is not checked): the check's
# name, the code of the refusal (422) and its message. `{call_at}`, `{now}` and `{deadline}` are
# filled with instants as epoch seconds, `{queue}` with the quoted queue. Each engine tests
# the named condition (callbacks.call_at_fault, redis_engine.lua's `call_at_fault`).
CallAtCheck = Literal["given", "future", "by_deadline", "open"]
CALL_AT_CHECKS: Final[tuple[tuple[CallAtCheck, str, str], ...]] = (
    ("given", "call_at_missing", "a rescheduled outcome needs call_at: when the customer asked to be called"),
    ("future", "call_at_past", "call_at {call_at} is not after now ({now})"),
    ("by_deadline", "call_at_after_deadline", "call_at {call_at} is after the callback's deadline {deadline}"),
    ("open", "call_at_closed", "queue {queue} is closed at call_at {call_at}"),
)

# A callback keeps the entries of its last this many ended attempts (and reschedules) in its
# attempt log, oldest dropped first: a log read with every hand-out stays bounded.
ATTEMPT_LOG_CAP: Final = 20

# Callback statuses an inbound answer from the same caller closes as `resolved_inbound`: an open
# callback is moot; one an agent holds stays with the agent.
RESOLVED_BY_INBOUND: Final[frozenset[CallbackStatus]] = frozenset({"open"})

# --- tallies --------------------------------------------------------------------------------

# How much a counter moves for an event of wait (or handle time) `value`: one; the value; one
# when value <= the tier's SLA threshold; one when value < short_abandon_s; a running maximum.
Amount = Literal["one", "value", "within", "short", "max"]

TALLY_MOVES: Final[dict[EventKind, tuple[tuple[str, Amount], ...]]] = {
    "arrived": (("arrived", "one"),),
    "answered": (
        ("answered", "one"),
        ("answered_within", "within"),
        ("answer_wait_sum", "value"),
        ("answer_wait_max", "max"),
    ),
    "abandoned": (("abandoned", "one"), ("abandoned_within", "within"), ("short_abandoned", "short")),
    "overflowed": (("overflowed", "one"),),
    "ended": (("ended", "one"), ("handle_sum", "value")),
    # Counted apart: in no service-level formula's numerator or denominator (service_level.FORMULAS).
    "callback_requested": (("callback_requested", "one"),),
    # A caller who abandoned came back within resume_window_s and took the place back (issue 16
    # item 4); the value is the abandoned call's wait. The abandon stays counted; the default
    # formula leaves resumed abandons out (short ones are out already: `resumed_short`).
    "resumed": (("resumed", "one"), ("resumed_short", "short")),
}

# The fields of TALLY_MOVES the lifetime (/metrics) tally keeps. The Redis engine adds every
# move to its lifetime hash; the others lie there unread.
LIFETIME_FIELDS: Final = (
    "arrived",
    "answered",
    "answered_within",
    "abandoned",
    "short_abandoned",
    "overflowed",
    "callback_requested",
    "resumed",
)
LIFETIME_SUMS: Final = ("answer_wait_sum",)
LIFETIME_MOVES: Final[dict[EventKind, tuple[tuple[str, Amount], ...]]] = {
    kind: tuple(m for m in moves if m[0] in LIFETIME_FIELDS + LIFETIME_SUMS) for kind, moves in TALLY_MOVES.items()
}
# The event whose value also goes into the lifetime histogram of waits (queue/metrics.py).
HISTOGRAM_KIND: Final[EventKind] = "answered"


def amount(how: Amount, value: float, threshold_s: float, short_abandon_s: float) -> float:
    """What one move adds (for "max": the candidate maximum). The Lua engine's `record` reads
    the same five words; see the list of what stays written twice in redis_engine.lua."""
    if how == "one":
        return 1
    if how == "within":
        return int(value <= threshold_s)
    if how == "short":
        return int(value < short_abandon_s)
    return value


# --- tiers ----------------------------------------------------------------------------------

RANK: Final[dict[Tier, int]] = dict(TIER_RANK)
TIER_OF: Final[dict[int, Tier]] = {rank: tier for tier, rank in TIER_RANK.items()}

# Tiers whose calls get a callback when they overflow, or abandon after a non-short wait.
CALLBACK_TIERS: Final[frozenset[Tier]] = frozenset({"mid"})
# Tiers admitted to a queue already at its max_waiting (the rest overflow as `queue_full`).
ADMITTED_WHEN_FULL: Final[frozenset[Tier]] = frozenset({"vip"})

# Tiers offered a callback that keeps their place (issue 16 item 3) by default; policy.TierPolicy's
# `offer_callback` changes it per tier. The offer is shown when the wait quoted exceeds the tier's
# `offer_callback_after_s` (`offers_callback`).
OFFER_TIERS: Final[frozenset[Tier]] = frozenset({"mid"})
# The reason of a callback the caller asked for from the line.
REQUESTED_REASON: Final = "requested"

# The reason a call that arrives while its queue is closed overflows with (every tier: no agent
# works a closed queue); a tier of CALLBACK_TIERS gets a callback due from the next opening.
CLOSED_REASON: Final = "closed"

assert set(RANK) == set(TIERS)

# --- what an agent gets next ----------------------------------------------------------------

# Best first. ("calls", r): the best waiting call when its effective rank is r (aged standard
# calls rank as mid, ordering.effective_rank), across the asked queues by tier then arrival.
# ("callbacks", "urgent"): the callback due soonest among those handed out now (next attempt
# come, queue open) when it is within `callback_urgent_s` of its deadline; ("callbacks",
# "rest"): that callback whatever its deadline. A held place (issue 16 item 3) is an entry of
# the waiting line in its tier lane, so it is picked by its ("calls", rank) step and becomes a
# callback task (handed to the agent as the callback's attempt) when it is first: no step of its own.
NextStep = tuple[Literal["calls"], int] | tuple[Literal["callbacks"], Literal["urgent", "rest"]]
NEXT_ORDER: Final[tuple[NextStep, ...]] = (
    ("calls", RANK["vip"]),
    ("calls", RANK["mid"]),
    ("callbacks", "urgent"),
    ("calls", RANK["standard"]),
    ("calls", RANK["blacklisted"]),
    ("callbacks", "rest"),
)
assert {step[1] for step in NEXT_ORDER if step[0] == "calls"} == set(TIER_OF)


def is_urgent(deadline: float, now: float, urgent_s: float) -> bool:
    """A callback within `urgent_s` of its deadline (or past it); never when urgent_s is 0."""
    return urgent_s > 0 and deadline - now <= urgent_s


def next_pick(call_rank: int | None, callback_deadline: float | None, now: float, urgent_s: float) -> str | None:
    """ "call", "callback" or None: which of the best waiting call (its effective rank) and the
    best callback handed out now (its deadline) an agent gets, by `NEXT_ORDER`. O(1).
    redis_engine.lua's `ops.next` walks RULES.next_order the same way."""
    for kind, which in NEXT_ORDER:
        if kind == "calls":
            if call_rank == which:
                return "call"
        elif callback_deadline is not None and (which == "rest" or is_urgent(callback_deadline, now, urgent_s)):
            return "callback"
    return None


# --- the callback offer (issue 16 item 3) ----------------------------------------------------


def offers_callback(
    offered: bool, status: CallStatus, estimate: float | None, after_s: float, caller_has_callback: bool
) -> bool:
    """Whether a call's answer carries `offer_callback: true`: its tier is offered one, it
    waits, the wait quoted exceeds `after_s`, and the caller holds no active callback already
    (one callback per caller). Applied in Python to what either engine answers."""
    return offered and status == "waiting" and estimate is not None and estimate > after_s and not caller_has_callback
