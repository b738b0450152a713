"""Every HTTP request and response body, as msgspec Structs, and the domain → body conversions.

Request structs forbid unknown fields and carry their limits (lengths, patterns), so decoding
is validation. Response structs are what `/openapi.json` describes; optional parts are UNSET
and so left out of the JSON when they do not apply.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from tierline.queue.callbacks import Attempt, Callback, CallbackReason, CallbackStatus, Outcome
from tierline.queue.calls import CallStatus, OverflowReason
from tierline.queue.service_level import Figures, Window
from tierline.queue.store import CallbackSummary, CallSnapshot, IntervalFigures, SlaReport, Work
from tierline.queue.wait_accuracy import Accuracy, AccuracyFigures
from tierline.queue.wait_accuracy import figures as accuracy_figures
from tierline.tiers.model import MAX_CRM_FIELDS, MAX_CRM_NAME, MAX_CRM_VALUE, Tier, TierRecord

# An id (call, agent, callback) wherever it appears: in a body here, in a path in params.py.
IDENT_CHARS = "A-Za-z0-9._:@-"
IDENT_MAX = 128
Ident = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=IDENT_MAX,
        pattern=f"^[{IDENT_CHARS}]+$",
        description=f"1-{IDENT_MAX} of {IDENT_CHARS}",
    ),
]
QueueName = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:@-]+$")]
CallerNumber = Annotated[
    str, Meta(min_length=1, max_length=64, description="phone number; normalised, then +? and 3-15 digits")
]
Note = Annotated[str, Meta(max_length=2000)]
CrmFields = Annotated[
    dict[
        # Not starting with NUL: the tier codec marks its shared values so (tiers/codec.py).
        Annotated[str, Meta(min_length=1, max_length=MAX_CRM_NAME, pattern=r"^[^\x00]")],
        Annotated[str, Meta(max_length=MAX_CRM_VALUE)],
    ],
    Meta(max_length=MAX_CRM_FIELDS),
]


_last_ts: list[tuple[float, datetime]] = [(-1.0, datetime.fromtimestamp(0, UTC))]


def ts(epoch: float) -> datetime:
    """RFC 3339 in UTC, to the millisecond.

    The last one made is kept: a busy router stamps many answers within one millisecond (a new
    call's arrival is "now"), and making a datetime costs more than the rest of a view field."""
    ms = round(epoch, 3)
    last = _last_ts[0]
    if last[0] == ms:
        return last[1]
    stamp = datetime.fromtimestamp(ms, UTC)
    _last_ts[0] = (ms, stamp)
    return stamp


def opt_ts(epoch: float | None) -> datetime | None:
    return None if epoch is None else ts(epoch)


# --- requests -------------------------------------------------------------------------------


class Request(Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class RouteCallBody(Request):
    call_id: Ident
    caller: CallerNumber
    queue: QueueName = "default"


class AnswerBody(Request):
    agent_id: Ident


class RequeueBody(Request):
    agent_id: Ident | None = None


class EmptyBody(Request):
    pass


class NextBody(Request):
    queues: Annotated[list[QueueName], Meta(max_length=64)] | None = None
    only: Annotated[
        Literal["callbacks"] | None,
        Meta(
            description="callbacks: only the callback due soonest that this agent may work (the back office), "
            "never a call, whatever the next order; the backoffice token must send it"
        ),
    ] = None


class OutcomeBody(Request):
    outcome: Outcome
    agent_id: Annotated[
        Ident | None,
        Meta(
            description="the agent holding the callback (handed it by next); anyone else, or none, "
            "is 409 not_assigned. The same agent posting the same outcome again before the callback "
            "is handed out anew is a retry: 200 with the callback as it is, no second attempt"
        ),
    ] = None
    note: Note | None = None
    call_at: Annotated[
        Annotated[datetime, Meta(tz=True)] | None,
        Meta(
            description="rescheduled only, and required there: when the customer asked to be called; after now, "
            "not after the deadline, inside the queue's opening hours (else 422 call_at_past, "
            "call_at_after_deadline, call_at_closed)"
        ),
    ] = None


class TierEditBody(Request):
    tier: Annotated[str, Meta(description="vip, mid, standard or blacklisted (any case)")]
    crm: CrmFields = {}


# --- responses ------------------------------------------------------------------------------


class ErrorDetail(Struct):
    code: str
    message: str


class ErrorBody(Struct):
    error: ErrorDetail


class TierRecordView(Struct, kw_only=True):
    caller: str
    tier: Tier
    known: bool
    crm: dict[str, str]
    degraded: bool | UnsetType = UNSET


class OverflowedCallView(Struct, kw_only=True):
    """The call that left the callback, as it was when it overflowed (kept after the call is forgotten)."""

    call_id: str
    queue: str
    reason: CallbackReason
    overflowed_at: datetime
    arrived_at: datetime | UnsetType = UNSET
    waited_s: float | UnsetType = UNSET


class AttemptView(Struct, kw_only=True):
    at: Annotated[datetime, Meta(description="when the outcome was posted")]
    agent_id: str
    outcome: Outcome
    taken_at: datetime | UnsetType = UNSET
    note: str | UnsetType = UNSET
    next_attempt_at: Annotated[
        datetime | UnsetType,
        Meta(description="when the callback is due again: the retry after no_answer, the customer's time"),
    ] = UNSET


class CallbackView(Struct, kw_only=True):
    callback_id: str
    caller: str
    tier: Tier
    queue: str
    call_id: str
    reason: CallbackReason
    status: CallbackStatus
    created_at: datetime
    deadline: datetime
    attempts: int
    next_attempt_at: datetime
    agent_id: str | None
    record: TierRecordView
    at_risk: Annotated[
        bool, Meta(description="its deadline leaves less than callbacks.min_open_s of the queue's opening hours")
    ]
    closed_at: datetime | UnsetType = UNSET
    note: str | UnsetType = UNSET
    assigned_at: Annotated[datetime | UnsetType, Meta(description="when the agent holding it took it")] = UNSET
    overflowed_call: OverflowedCallView | UnsetType = UNSET
    attempt_log: Annotated[
        list[AttemptView],
        Meta(description="the ended attempts and reschedules, oldest first (the last 20)"),
    ] = []
    held: Annotated[
        bool,
        Meta(
            description="a requested callback whose place still waits in line: handed out when the place is first "
            "(README: Callback offer that keeps the place)"
        ),
    ] = False


class CallView(Struct, kw_only=True):
    call_id: str
    caller: str
    tier: Tier
    queue: str
    status: CallStatus
    position: int | None
    ahead: int | None
    estimated_wait_s: Annotated[
        float | None,
        Meta(
            description="the median wait (s) the model expects for this caller from now: agents on calls and idle, "
            "handle time, calls of higher tiers still to arrive; 0 when an idle agent is there for the caller; "
            "null when not waiting or before any call of the queue ended (README: Estimated wait)"
        ),
    ]
    announce_position: Annotated[
        int | None,
        Meta(
            description="the position to announce to the caller: the true position, but never higher than "
            "announced before while the call waits (VIPs arriving do not move it up); null when not waiting"
        ),
    ] = None
    offer_callback: Annotated[
        bool,
        Meta(
            description="offer the caller a callback that keeps the place (POST /v1/calls/{call_id}/callback): the "
            "tier is offered one, the call waits, estimated_wait_s exceeds the tier's offer_callback_after_s and "
            "the caller has no active callback"
        ),
    ] = False
    resumed_from: Annotated[
        str | UnsetType,
        Meta(description="the abandoned call whose place and tier this call took back (resume_window_s)"),
    ] = UNSET
    arrived_at: datetime
    waited_s: float
    agent_id: str | None
    answered_at: datetime | UnsetType = UNSET
    wait_s: float | UnsetType = UNSET
    ended_at: datetime | UnsetType = UNSET
    handle_s: float | UnsetType = UNSET
    overflow_reason: OverflowReason | UnsetType = UNSET
    callback: CallbackView | UnsetType = UNSET


class WorkView(Struct, kw_only=True):
    kind: Literal["call", "callback"]
    call: CallView | UnsetType = UNSET
    caller: TierRecordView | UnsetType = UNSET
    callback: CallbackView | UnsetType = UNSET


class IntervalView(Figures, kw_only=True):
    start: datetime


class SlaRowView(Figures, kw_only=True):
    queue: str
    tier: Tier
    waiting_now: int
    held: Annotated[
        int,
        Meta(
            description="places held in line now for a requested callback: not in waiting_now, but counted in the "
            "positions of the callers behind them and in max_waiting"
        ),
    ]
    oldest_wait_now_s: float | None
    callbacks_open: Annotated[int, Meta(description="callbacks of this queue × tier open or assigned now")]
    callbacks_overdue: Annotated[int, Meta(description="of those, the ones past their deadline")]
    estimate_accuracy: Annotated[
        AccuracyFigures,
        Meta(
            description="how right the waits quoted on arrival were for the answered calls of this queue × tier, "
            "since the store began (whatever the window): mean absolute error, median ratio real/quoted, "
            "share within ±50 %"
        ),
    ]
    intervals: list[IntervalView] | UnsetType = UNSET


class SlaView(Struct, kw_only=True):
    window: Window
    formula: str
    formula_text: str
    timezone: str
    start: datetime
    generated_at: datetime
    rows: list[SlaRowView]
    callbacks: CallbackSummary


class CallbackListView(Struct, kw_only=True):
    status: Literal["open", "overdue", "done"]
    callbacks: list[CallbackView]
    next_cursor: Annotated[str | None, Meta(description="pass as cursor= for the next page; null on the last page")] = (
        None
    )


class HistoryHealth(Struct, kw_only=True):
    """The call history archiver as /readyz shows it: details only, never a reason to be unready
    (routing does not wait for history)."""

    lag_events: int  # events held by the store, not yet archived
    dropped_events: int  # dropped unarchived past the store's cap, since it started
    archived_events: int  # inserted by this process's archiver
    last_commit_at: float | None  # Unix time of this process's last committed batch
    last_error: str | None  # the archiver's last failure, while it is failing


class Health(Struct, kw_only=True):
    status: Literal["ok", "unavailable"]
    store: str
    tiers_version: int | UnsetType = UNSET
    tiers_loaded: int | UnsetType = UNSET
    history: HistoryHealth | UnsetType = UNSET


# --- conversions ----------------------------------------------------------------------------


def record_view(record: TierRecord) -> TierRecordView:
    return TierRecordView(
        caller=record.caller,
        tier=record.tier,
        known=record.known,
        crm=record.crm,
        degraded=True if record.degraded else UNSET,
    )


def attempt_view(attempt: Attempt) -> AttemptView:
    return AttemptView(
        at=ts(attempt.at),
        agent_id=attempt.agent_id,
        outcome=attempt.outcome,
        taken_at=UNSET if attempt.taken_at is None else ts(attempt.taken_at),
        note=UNSET if attempt.note is None else attempt.note,
        next_attempt_at=UNSET if attempt.next_attempt_at is None else ts(attempt.next_attempt_at),
    )


def callback_view(callback: Callback) -> CallbackView:
    return CallbackView(
        callback_id=callback.callback_id,
        caller=callback.caller,
        tier=callback.tier,
        queue=callback.queue,
        call_id=callback.call_id,
        reason=callback.reason,
        status=callback.status,
        created_at=ts(callback.created_at),
        deadline=ts(callback.deadline),
        attempts=callback.attempts,
        next_attempt_at=ts(callback.next_attempt_at),
        agent_id=callback.agent_id,
        record=record_view(callback.record),
        at_risk=callback.at_risk,
        closed_at=UNSET if callback.closed_at is None else ts(callback.closed_at),
        note=UNSET if callback.note is None else callback.note,
        assigned_at=UNSET if callback.assigned_at is None else ts(callback.assigned_at),
        overflowed_call=OverflowedCallView(
            call_id=callback.call_id,
            queue=callback.queue,
            reason=callback.reason,
            overflowed_at=ts(callback.created_at),
            arrived_at=UNSET if callback.call_arrived_at is None else ts(callback.call_arrived_at),
            waited_s=UNSET if callback.waited_s is None else round(callback.waited_s, 3),
        ),
        attempt_log=[attempt_view(a) for a in callback.attempt_log],
        held=callback.held,
    )


def call_view(snapshot: CallSnapshot) -> CallView:
    call, now = snapshot.call, snapshot.now
    view = CallView(
        call_id=call.call_id,
        caller=call.caller,
        tier=call.tier,
        queue=call.queue,
        status=call.status,
        position=snapshot.position,
        ahead=None if snapshot.position is None else snapshot.position - 1,
        estimated_wait_s=snapshot.estimated_wait_s,
        announce_position=snapshot.announce_position,
        offer_callback=snapshot.offer_callback,
        resumed_from=UNSET if call.resumed_from is None else call.resumed_from,
        arrived_at=ts(call.arrived_at),
        waited_s=round(call.waited(now), 3),
        agent_id=call.agent_id,
    )
    if call.answered_at is not None:
        view.answered_at = ts(call.answered_at)
        view.wait_s = round(call.answered_at - call.arrived_at, 3)
    if call.ended_at is not None and call.answered_at is not None:
        view.ended_at = ts(call.ended_at)
        view.handle_s = round(call.ended_at - call.answered_at, 3)
    if call.overflow_reason is not None:
        view.overflow_reason = call.overflow_reason
    if snapshot.callback is not None:
        view.callback = callback_view(snapshot.callback)
    return view


def work_view(work: Work) -> WorkView:
    if work.call is not None:
        record = work.record or TierRecord(caller=work.call.call.caller, tier=work.call.call.tier, known=False)
        return WorkView(kind="call", call=call_view(work.call), caller=record_view(record))
    assert work.callback is not None
    return WorkView(kind="callback", callback=callback_view(work.callback))


class _IntervalViews:
    """The views of each queue × tier's intervals of today, kept while an interval's figures are
    the same object. The stores keep a settled interval's figures once made (queue/settled.py),
    so a dashboard poll builds the view of the current interval or two, not of up to 96."""

    def __init__(self) -> None:
        self._kept: dict[tuple[str, str], dict[float, tuple[IntervalFigures, IntervalView]]] = {}

    def views(self, lane: tuple[str, str], intervals: list[IntervalFigures]) -> list[IntervalView]:
        kept = self._kept.get(lane, {})
        fresh: dict[float, tuple[IntervalFigures, IntervalView]] = {}
        out = []
        for interval in intervals:
            hit = kept.get(interval.start)
            if hit is not None and hit[0] is interval:
                view = hit[1]
            else:
                view = IntervalView(**msgspec.structs.asdict(interval.figures), start=ts(interval.start))
            fresh[interval.start] = (interval, view)
            out.append(view)
        self._kept[lane] = fresh  # only today's: an older day's views go with it
        return out


_interval_views = _IntervalViews()


def sla_view(report: SlaReport, formula: str, formula_text: str, timezone: str, callbacks: CallbackSummary) -> SlaView:
    rows = []
    for row in report.rows:
        intervals: list[IntervalView] | UnsetType = UNSET
        if row.intervals is not None:
            intervals = _interval_views.views((row.queue, row.tier), row.intervals)
        rows.append(
            SlaRowView(
                **msgspec.structs.asdict(row.figures),
                queue=row.queue,
                tier=row.tier,
                waiting_now=row.waiting_now,
                held=row.held,
                oldest_wait_now_s=row.oldest_wait_now_s,
                callbacks_open=row.callbacks_open,
                callbacks_overdue=row.callbacks_overdue,
                estimate_accuracy=row.estimate_accuracy or accuracy_figures(Accuracy()),
                intervals=intervals,
            )
        )
    return SlaView(
        window=report.window,
        formula=formula,
        formula_text=formula_text,
        timezone=timezone,
        start=ts(report.start),
        generated_at=ts(report.now),
        rows=rows,
        callbacks=callbacks,
    )
