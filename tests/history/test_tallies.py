"""The tally arithmetic archiving leans on: `add` moves every field, and the memory store's raw
events become the same structs msgspec's validating conversion makes of them."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from tierline.queue.history import events as ev
from tierline.queue.history.engine_events import FIGURES, from_raw
from tierline.queue.history.tallies import AGENT_FIELDS, TALLY_FIELDS, AgentTally, IntervalTally

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
    "resume": ("c0", 2),
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
