"""The tally arithmetic archiving leans on: `add` moves every field, the archive counts what the
live ledger counts, the shipped migrations' fields stay as they were, and the memory store's raw
events become the same structs msgspec's validating conversion makes of them."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from tierline.queue import service_level as sl
from tierline.queue.history import events as ev
from tierline.queue.history.engine_events import FIGURES, from_raw
from tierline.queue.history.tallies import (
    AGENT_FIELDS,
    AGENT_FIELDS_V1,
    TALLY_FIELDS,
    TALLY_FIELDS_HOLD_RESUME,
    TALLY_FIELDS_V1,
    AgentTally,
    IntervalTally,
    tally,
)

counts = st.integers(min_value=0, max_value=10**6)
seconds = st.floats(min_value=0, max_value=1e6, allow_nan=False)


def _tally(draw: st.DrawFn, cls: type[msgspec.Struct]) -> dict[str, float]:
    return {
        name: draw(counts if field.type is int else seconds)
        for name, field in zip(cls.__struct_fields__, msgspec.structs.fields(cls), strict=True)
    }


@settings(deadline=None)  # a loaded 2-core machine stalls single examples past the 200 ms default
@given(st.data())
def test_interval_add_sums_every_field_and_keeps_the_longest_wait(data: st.DataObject) -> None:
    one, two = (data.draw(st.composite(lambda d: _tally(d, IntervalTally))()) for _ in range(2))
    total = IntervalTally(**one)  # type: ignore[arg-type]
    total.add(IntervalTally(**two))  # type: ignore[arg-type]
    for name in TALLY_FIELDS:
        want = max(one[name], two[name]) if name == "answer_wait_max" else one[name] + two[name]
        assert getattr(total, name) == want, name


@settings(deadline=None)  # a loaded 2-core machine stalls single examples past the 200 ms default
@given(st.data())
def test_agent_add_sums_every_field(data: st.DataObject) -> None:
    one, two = (data.draw(st.composite(lambda d: _tally(d, AgentTally))()) for _ in range(2))
    total = AgentTally(**one)  # type: ignore[arg-type]
    total.add(AgentTally(**two))  # type: ignore[arg-type]
    assert all(getattr(total, name) == one[name] + two[name] for name in AGENT_FIELDS)


RAW_FIGURES: dict[str, tuple[object, ...]] = {
    "enter": (3,),
    "offer": (),
    "ring_no_answer": (),
    "answer": (12.5, 20.0),
    "abandon": (4.0, True, 20.0),
    "overflow": (30.0, "max_wait"),
    "end": (180.25,),
    "callback_created": ("abandoned", 1_700_086_400.0, False),
    "callback_assigned": (1,),
    "callback_outcome": ("no_answer", 2),
    "callback_closed": ("completed", 1_700_086_400.0),
    "callback_request": (41.5,),
    "hold_released": ("expired",),
    "resume": ("c0", 2, True),
    "tiers_reloaded": ("7", {"vip": 2, "standard": 5}),
    "tier_edited": ("changed", "8"),
}


def test_raw_events_become_what_the_validating_conversion_makes() -> None:
    assert set(RAW_FIGURES) == set(FIGURES)
    for seq, (kind, figures) in enumerate(RAW_FIGURES.items(), start=1):
        raw = (seq, kind, 1_700_000_000.5, "c1", "b1", "+4930000000", "mid", "default", "a1", figures)
        fields = dict(zip(FIGURES[kind], figures, strict=True))
        expected = msgspec.convert(
            {"kind": kind, "id": (9, seq), "at": 1_700_000_000.5, "call_id": "c1", "callback_id": "b1",
             "caller": "+4930000000", "tier": "mid", "queue": "default", "agent": "a1", **fields},
            ev.Event,
        )  # fmt: skip
        made = from_raw(9, raw)
        assert made == expected
        assert ev.encode(made) == ev.encode(expected)


def test_every_tally_field_is_in_exactly_one_migration_in_order() -> None:
    """A field added to IntervalTally needs a migration of its own in both archives: the shipped
    ones name theirs literally and never change."""
    assert TALLY_FIELDS == TALLY_FIELDS_V1 + TALLY_FIELDS_HOLD_RESUME
    assert AGENT_FIELDS == AGENT_FIELDS_V1
    assert TALLY_FIELDS_V1 == (
        "entered", "answered", "answered_within", "abandoned", "abandoned_within", "short_abandoned", "overflowed",
        "callbacks_created", "callbacks_completed_in_time", "callbacks_overdue", "answer_wait_sum",
        "answer_wait_max", "ended", "handle_sum",
    )  # fmt: skip


@settings(deadline=None)
@given(
    waits=st.lists(st.tuples(st.sampled_from(["abandon", "request", "resume"]), st.floats(0, 60)), max_size=30),
    short_abandon_s=st.sampled_from([0.0, 5.0, 20.0]),
)
def test_offers_taken_and_resumed_abandons_count_as_the_live_ledger_counts_them(
    waits: list[tuple[str, float]], short_abandon_s: float
) -> None:
    """What the archive adds for `abandon`, `callback_request` and `resume` events is what
    service_level.record adds for `abandoned`, `callback_requested` and `resumed`, and the
    formulas give the same level from either."""
    live = sl.Tally()
    events: list[ev.Event] = []
    lane = {"queue": "q", "tier": "mid", "call_id": "c"}
    for seq, (what, wait) in enumerate(waits, start=1):
        at, short = 1_800_000_000.0 + seq, wait < short_abandon_s
        if what == "abandon":
            sl.record(live, "abandoned", wait, 20.0, short_abandon_s)
            events.append(ev.Abandon(id=ev.EventId(1, seq), at=at, wait_s=wait, short=short, threshold_s=20.0, **lane))
        elif what == "request":
            sl.record(live, "callback_requested", wait, 20.0, short_abandon_s)
            events.append(ev.CallbackRequest(id=ev.EventId(1, seq), at=at, wait_s=wait, **lane))
        else:
            sl.record(live, "resumed", wait, 20.0, short_abandon_s)
            events.append(ev.Resume(id=ev.EventId(1, seq), at=at, resumed_from="c0", position=1, short=short, **lane))
    archived = IntervalTally()
    for increment in tally(events)[0].values():
        archived.add(increment)
    assert archived.service_tally() == live
    for _, formula in sl.FORMULAS.values():
        assert formula(archived.service_tally()) == formula(live)
