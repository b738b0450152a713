"""The event schema: one decoder reads every kind, ids order as (epoch, seq), epochs never repeat."""

from __future__ import annotations

import msgspec
import pytest

from tierline.queue.history import events as ev

ID = ev.EventId(1_800_000_000_000, 7)
ONE_OF_EACH: list[ev.Event] = [
    ev.Enter(id=ID, at=1.0, call_id="c", caller="+4930123", tier="vip", queue="q", position=3),
    ev.Offer(id=ID, at=1.0, call_id="c", agent="a"),
    ev.RingNoAnswer(id=ID, at=1.0, call_id="c", agent="a"),
    ev.Answer(id=ID, at=1.0, call_id="c", agent="a", wait_s=4.5, threshold_s=20.0),
    ev.Abandon(id=ID, at=1.0, call_id="c", wait_s=3.0, short=True, threshold_s=20.0),
    ev.Overflow(id=ID, at=1.0, call_id="c", wait_s=60.0, reason="max_wait"),
    ev.End(id=ID, at=1.0, call_id="c", agent="a", handle_s=120.0),
    ev.CallbackCreated(id=ID, at=1.0, call_id="c", callback_id="k", reason="max_wait", deadline=2.0),
    ev.CallbackAssigned(id=ID, at=1.0, callback_id="k", agent="a", attempt=1),
    ev.CallbackOutcomeEvent(id=ID, at=1.0, callback_id="k", agent="a", outcome="no_answer", attempts=1),
    ev.CallbackClosed(id=ID, at=1.0, callback_id="k", reason="unreached", deadline=2.0),
    ev.CallbackRequest(id=ID, at=1.0, call_id="c", wait_s=31.5),
    ev.HoldReleased(id=ID, at=1.0, call_id="c", callback_id="k", how="handed_out"),
    ev.Resume(id=ID, at=1.0, call_id="c2", resumed_from="c", position=2, short=True),
    ev.TiersReloaded(id=ID, at=1.0, version="v9", counts={"vip": 3, "mid": 5}),
    ev.TierEdited(id=ID, at=1.0, caller="+4930123", tier="vip", edit="changed", version="v9"),
]


def test_every_kind_named_in_the_issue_has_a_struct_and_round_trips() -> None:
    assert set(ev.KINDS) == {
        "enter", "offer", "ring_no_answer", "answer", "abandon", "overflow", "end", "callback_created",
        "callback_assigned", "callback_outcome", "callback_closed", "tiers_reloaded", "tier_edited",
        # issue 16: a caller taking the callback offer, its held place leaving, an abandon taken back
        "callback_request", "hold_released", "resume",
    }  # fmt: skip
    assert sorted(ev.kind_of(e) for e in ONE_OF_EACH) == sorted(ev.KINDS)
    for event in ONE_OF_EACH:
        data = ev.encode(event)
        assert msgspec.json.decode(data)["kind"] == ev.kind_of(event)
        assert ev.decode(data) == event
    assert ev.BATCH_DECODER.decode(msgspec.json.encode(ONE_OF_EACH)) == ONE_OF_EACH


def test_unknown_kinds_and_missing_figures_are_refused() -> None:
    with pytest.raises(msgspec.ValidationError, match="Invalid value 'teleport'"):
        ev.decode(b'{"kind": "teleport", "id": [1, 1], "at": 1.0}')
    with pytest.raises(msgspec.ValidationError, match="wait_s"):
        ev.decode(b'{"kind": "answer", "id": [1, 1], "at": 1.0, "threshold_s": 20}')
    with pytest.raises(msgspec.ValidationError, match="outcome"):
        ev.decode(b'{"kind": "callback_outcome", "id": [1, 1], "at": 1.0, "outcome": "maybe", "attempts": 1}')


def test_ids_order_by_epoch_then_sequence_and_print_as_epoch_dash_seq() -> None:
    ids = ev.IdSequence(5)
    first, second = ids.next(), ids.next()
    assert (first, second) == (ev.EventId(5, 1), ev.EventId(5, 2))
    assert first < second < ev.EventId(6, 1)
    assert sorted([ev.EventId(6, 1), ev.EventId(5, 10), ev.EventId(5, 9)]) == [
        ev.EventId(5, 9),
        ev.EventId(5, 10),
        ev.EventId(6, 1),
    ]
    assert str(second) == "5-2"
    assert ev.IdSequence(5, last=41).next() == ev.EventId(5, 42)


def test_an_epoch_is_the_start_millisecond_unless_the_archive_already_holds_a_later_one() -> None:
    assert ev.new_epoch(1_800_000_000.1234, None) == 1_800_000_000_123
    assert ev.new_epoch(1_800_000_000.1234, 1_700_000_000_000) == 1_800_000_000_123
    # A clock stepped back, or two starts in one millisecond: still above everything archived.
    assert ev.new_epoch(1_800_000_000.1234, 1_800_000_000_123) == 1_800_000_000_124
    assert ev.new_epoch(1_700_000_000.0, 1_800_000_000_500) == 1_800_000_000_501
