"""The compact forms the engines record events in, and the event structs built from them.

The engines record an event in the same step as its change, so recording must cost little:
the memory store appends a plain tuple (`Raw`) to a bounded buffer (`EventBuffer`), the Redis
engine writes the event's fields as a stream entry (`from_fields`). Either becomes an
`events.Event` only when read, off the hot path. Both forms name an event's figures by the
field names of its struct, in the order of `FIGURES`.
"""

from __future__ import annotations

import itertools
import typing
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final, overload

import msgspec

from tierline.queue.history import events as ev

# kind → its figures' field names, in the order a raw tuple carries them.
FIGURES: Final[dict[str, tuple[str, ...]]] = {
    "enter": ("position",),
    "offer": (),
    "ring_no_answer": (),
    "answer": ("wait_s", "threshold_s"),
    "abandon": ("wait_s", "short", "threshold_s"),
    "overflow": ("wait_s", "reason"),
    "end": ("handle_s",),
    "callback_created": ("reason", "deadline", "merged"),
    "callback_assigned": ("attempt",),
    "callback_outcome": ("outcome", "attempts"),
    "callback_closed": ("reason", "deadline"),
    "callback_request": ("wait_s",),
    "hold_released": ("how",),
    "resume": ("resumed_from", "position", "short"),
    "tiers_reloaded": ("version", "counts"),
    "tier_edited": ("edit", "version"),
}
assert set(FIGURES) == set(ev.KINDS)

# (seq, kind, at, call_id, callback_id, caller, tier, queue, agent, figures)
Raw = tuple[int, str, float, str | None, str | None, str | None, str | None, str | None, str | None, tuple[object, ...]]


# kind → its struct, for building events straight from the engines' raw tuples.
CLASSES: Final[dict[str, type[ev.Event]]] = {str(cls.__struct_config__.tag): cls for cls in typing.get_args(ev.Event)}
assert set(CLASSES) == set(ev.KINDS)


def from_raw(epoch: int, raw: Raw) -> ev.Event:
    seq, kind, at, call_id, callback_id, caller, tier, queue, agent, figures = raw
    named: dict[str, Any] = dict(zip(FIGURES[kind], figures, strict=True))  # typed by the kind's struct
    # Built by the struct itself, not by msgspec.convert from a dict: the engine made these
    # values (there is no text to parse or check), and converting cost more than all else of
    # archiving a memory store's event. tests/history/test_tallies.py holds the two equal.
    return CLASSES[kind](
        id=ev.EventId(epoch, seq),
        at=at,
        call_id=call_id,
        callback_id=callback_id,
        caller=caller,
        tier=tier,
        queue=queue,
        agent=agent,
        **named,
    )


class RawEvents(Sequence[ev.Event]):
    """A batch of one store epoch's events as the memory store recorded them; each becomes an
    `events.Event` only when read. An archive worker (archive_worker.py) sends `raw` as it is,
    so the serving process never builds the structs of the events it archives."""

    __slots__ = ("epoch", "raw")

    def __init__(self, epoch: int, raw: list[Raw]) -> None:
        self.epoch = epoch
        self.raw = raw

    def __len__(self) -> int:
        return len(self.raw)

    @overload
    def __getitem__(self, index: int) -> ev.Event: ...
    @overload
    def __getitem__(self, index: slice) -> list[ev.Event]: ...
    def __getitem__(self, index: int | slice) -> ev.Event | list[ev.Event]:
        if isinstance(index, slice):
            return [from_raw(self.epoch, r) for r in self.raw[index]]
        return from_raw(self.epoch, self.raw[index])

    def __iter__(self) -> Iterator[ev.Event]:
        epoch = self.epoch
        return (from_raw(epoch, r) for r in self.raw)

    @property
    def last_seq(self) -> int:
        """The seq of the newest event held (0: none)."""
        return self.raw[-1][0] if self.raw else 0


def from_fields(event_id: ev.EventId, fields: Mapping[str, str]) -> ev.Event:
    """An event from a Redis stream entry: every value is text (msgspec's lax mode reads
    numbers and "1"/"0" booleans); `counts` is JSON text; an absent field is None."""
    data: dict[str, object] = dict(fields)
    data["id"] = (event_id.epoch, event_id.seq)
    if "counts" in data:
        data["counts"] = msgspec.json.decode(str(data["counts"]))
    event: ev.Event = msgspec.convert(data, ev.Event, strict=False)
    return event


class EventBuffer:
    """The memory store's events, oldest first, until drained. Bounded: routing never waits
    for history, so when full the oldest event is dropped and counted in `dropped`.

    `emit` is a closure over the deque's append and a counter, built once: it is on every
    change of the hot path, and attribute look-ups and a fullness check there cost a measurable
    share of a route (loadtest/bench_event_cost.py). What the bound pushed out is worked out
    when asked: every id up to the last one was emitted once, and is held, drained or dropped.
    """

    def __init__(self, epoch: int, cap: int) -> None:
        self.epoch = epoch
        self.cap = cap
        self._raw: deque[Raw] = deque(maxlen=cap)
        self._drained = 0
        self._last_drained = 0  # the seq of the newest event drained (what `last_seq` is when none is held)
        append, seq = self._raw.append, itertools.count(1).__next__

        def emit(
            kind: str,
            at: float,
            call_id: str | None,
            callback_id: str | None,
            caller: str | None,
            tier: str | None,
            queue: str | None,
            agent: str | None,
            *figures: object,
        ) -> None:
            append((seq(), kind, at, call_id, callback_id, caller, tier, queue, agent, figures))

        self.emit = emit

    @property
    def last_seq(self) -> int:
        """The seq of the newest event emitted (0: none yet)."""
        return self._raw[-1][0] if self._raw else self._last_drained

    @property
    def dropped(self) -> int:
        return self.last_seq - len(self._raw) - self._drained

    def __len__(self) -> int:
        return len(self._raw)

    def drain(self, limit: int) -> RawEvents:
        """Remove and return up to `limit` of the oldest events."""
        raw = self._raw
        taken = [raw.popleft() for _ in range(min(limit, len(raw)))]
        if taken:
            self._drained += len(taken)
            self._last_drained = taken[-1][0]
        return RawEvents(self.epoch, taken)

    def read(self, after: ev.EventId | None, limit: int) -> list[ev.Event]:
        """Up to `limit` events after `after` (from the oldest held when None or older), leaving them."""
        raw, epoch = self._raw, self.epoch
        if not raw:
            return []
        first = raw[0][0]
        start = 0
        if after is not None:
            if after.epoch > epoch:
                return []
            if after.epoch == epoch:
                start = max(0, after.seq - first + 1)
        return [from_raw(epoch, r) for r in itertools.islice(raw, start, start + limit)]
