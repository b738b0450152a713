"""The event schema: one event per change the engine makes to a call, a callback or the tiers.

Pure (no I/O). Every kind is a frozen msgspec Struct tagged by `kind`, so one decoder
(`EVENT_DECODER`) reads any event and a new kind is one class added to `Event`.

Event ids are `(epoch, seq)` pairs, ordered. `seq` counts up from 1 within one store epoch;
an epoch is handed out once per store start by `new_epoch`: at least the start time in
milliseconds and above every epoch the archive already holds (the archive's `claim_epoch`
does both atomically, across every process sharing that archive). The time keeps ids from
different starts roughly in time order; the archive's maximum makes reuse impossible even
after a clock step back or a restart within the same millisecond. Without a reachable
archive at start the time alone still differs per start unless the clock went back.
"""

from __future__ import annotations

import math
from typing import Final, Literal

import msgspec

CallbackCloseReason = Literal["completed", "cancelled", "resolved_inbound", "unreached"]
CallbackOutcome = Literal["completed", "no_answer", "cancelled"]
OverflowReason = Literal["queue_full", "max_wait", "closed"]
TierEditKind = Literal["added", "changed", "removed"]


class EventId(msgspec.Struct, frozen=True, order=True, array_like=True):
    """Encoded as `[epoch, seq]`; compares as the pair."""

    epoch: int
    seq: int

    def __str__(self) -> str:
        return f"{self.epoch}-{self.seq}"


class EventBase(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, tag_field="kind"):
    id: EventId
    at: float  # seconds since the Unix epoch (UTC), from the store's clock
    call_id: str | None = None
    callback_id: str | None = None
    caller: str | None = None
    tier: str | None = None
    queue: str | None = None
    agent: str | None = None


class Enter(EventBase, frozen=True, tag="enter"):
    """A call joined a queue; `position` is its place in line (1 = next)."""

    position: int


class Offer(EventBase, frozen=True, tag="offer"):
    """The call was offered to `agent`."""


class RingNoAnswer(EventBase, frozen=True, tag="ring_no_answer"):
    """The offer to `agent` timed out or was declined; the call waits again."""


class Answer(EventBase, frozen=True, tag="answer"):
    """`wait_s` from entering to the answer; `threshold_s` is the tier's service-level
    threshold in force then, so the archive counts "within threshold" without the policy."""

    wait_s: float
    threshold_s: float


class Abandon(EventBase, frozen=True, tag="abandon"):
    """The caller hung up while waiting; `short` when under the short-abandon limit."""

    wait_s: float
    short: bool
    threshold_s: float


class Overflow(EventBase, frozen=True, tag="overflow"):
    """The call left its queue unanswered after `wait_s`: full, waited too long, or closed."""

    wait_s: float
    reason: OverflowReason


class End(EventBase, frozen=True, tag="end"):
    """An answered call ended after `handle_s` with `agent`."""

    handle_s: float


class CallbackCreated(EventBase, frozen=True, tag="callback_created"):
    """`merged`: the caller overflowed again while their callback was active, so no new
    callback: this call (`call_id`) joined `callback_id`, whose deadline is now `deadline`
    (the earlier of the two). Counted as created only when not merged."""

    reason: str
    deadline: float
    merged: bool = False


class CallbackAssigned(EventBase, frozen=True, tag="callback_assigned"):
    """`agent` took the callback for its `attempt`-th try."""

    attempt: int


class CallbackOutcomeEvent(EventBase, frozen=True, tag="callback_outcome"):
    """`agent` posted what came of the attempt; `attempts` made so far."""

    outcome: CallbackOutcome
    attempts: int


class CallbackClosed(EventBase, frozen=True, tag="callback_closed"):
    """`deadline` is repeated here so a single row says whether the deadline was kept."""

    reason: CallbackCloseReason
    deadline: float


class CallbackRequest(EventBase, frozen=True, tag="callback_request"):
    """The waiting caller took the callback offer after `wait_s`: the call left the line, its
    place stays held for the callback (a `callback_created` with reason `requested` follows)."""

    wait_s: float


HoldHow = Literal["handed_out", "expired", "resolved"]


class HoldReleased(EventBase, frozen=True, tag="hold_released"):
    """A held place left the line: it was first and its callback went to `agent` (`handed_out`,
    a `callback_assigned` follows), its wait ran out and the callback joined the others by
    deadline (`expired`), or the caller got through inbound (`resolved`)."""

    how: HoldHow


class Resume(EventBase, frozen=True, tag="resume"):
    """A caller who abandoned `resumed_from` called the same queue again within
    resume_window_s: this call took back that call's place and tier, at `position`. `short`:
    the abandon taken back was a short one (its wait under short_abandon_s), so the archive
    leaves it out of the default formula once, as the live ledger does (`resumed_short`).
    False when absent (events recorded before the field)."""

    resumed_from: str
    position: int
    short: bool = False


class TiersReloaded(EventBase, frozen=True, tag="tiers_reloaded"):
    """A full tier reload swapped in `version`; `counts` holds its callers per tier."""

    version: str
    counts: dict[str, int]


class TierEdited(EventBase, frozen=True, tag="tier_edited"):
    """One customer's tier set (`tier`) or removed, by an admin edit; `caller` names them."""

    edit: TierEditKind
    version: str | None = None


Event = (
    Enter
    | Offer
    | RingNoAnswer
    | Answer
    | Abandon
    | Overflow
    | End
    | CallbackCreated
    | CallbackAssigned
    | CallbackOutcomeEvent
    | CallbackClosed
    | CallbackRequest
    | HoldReleased
    | Resume
    | TiersReloaded
    | TierEdited
)

KINDS: Final[tuple[str, ...]] = tuple(
    str(cls.__struct_config__.tag)
    for cls in (
        Enter,
        Offer,
        RingNoAnswer,
        Answer,
        Abandon,
        Overflow,
        End,
        CallbackCreated,
        CallbackAssigned,
        CallbackOutcomeEvent,
        CallbackClosed,
        CallbackRequest,
        HoldReleased,
        Resume,
        TiersReloaded,
        TierEdited,
    )
)

EVENT_ENCODER: Final = msgspec.json.Encoder()
EVENT_DECODER: Final = msgspec.json.Decoder(Event)
BATCH_DECODER: Final = msgspec.json.Decoder(list[Event])


def kind_of(event: Event) -> str:
    return str(type(event).__struct_config__.tag)


def encode(event: Event) -> bytes:
    return EVENT_ENCODER.encode(event)


def decode(data: bytes | str) -> Event:
    return EVENT_DECODER.decode(data)


def new_epoch(now: float, archived_max: int | None) -> int:
    """The epoch for a store starting at `now`: its start in milliseconds, or one past the
    largest epoch the archive holds when that is later (a clock stepped back, two starts in
    one millisecond). See the module docstring for why both."""
    from_clock = math.floor(now * 1000)
    return from_clock if archived_max is None else max(from_clock, archived_max + 1)


class IdSequence:
    """Hands out the ids of one store epoch, increasing. Not thread-safe: one per store."""

    def __init__(self, epoch: int, last: int = 0) -> None:
        self.epoch = epoch
        self._last = last

    def next(self) -> EventId:
        self._last += 1
        return EventId(self.epoch, self._last)
