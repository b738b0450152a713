"""Issue 16 item 4, re-entry keeps the place (`resume_window_s`), on every store.

A caller who abandoned and calls the same queue again within the window takes back the
original place with the original tier; the new call names the old in `resumed_from`; the
abandon stays counted, a `resumed` is added and the default formula leaves it out; a callback
the abandon opened is closed `resolved_inbound`. Keyed on the caller number and the customer id.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from tierline.queue import service_level as sl
from tierline.queue.policy import Policy, QueuePolicy, TierPolicy
from tierline.queue.store import CallStore, SlaRow
from tierline.router.config import ConfigError, load_settings
from tierline.tiers.model import Tier

from .helpers import T0, MakeStore, record

RESUME = Policy(
    resume_window_s=120,
    queues={"default": QueuePolicy(), "other": QueuePolicy()},
    tiers={"mid": TierPolicy(overflow_after_s=0)},
)


async def sla_row(store: CallStore, tier: Tier) -> SlaRow:
    report = await store.sla("default", "60m")
    return next(row for row in report.rows if row.tier == tier)


async def test_a_quick_re_call_takes_back_the_place_and_tier(make_store: MakeStore) -> None:
    store, clock = make_store(RESUME)
    await store.route("a", record("+100", "mid", customer_id="C-1"), "default")
    clock.advance(1)
    await store.route("b", record("+200", "mid"), "default")
    clock.advance(1)
    await store.route("s", record("+300", "standard"), "default")
    clock.advance(28)
    gone = await store.abandon("a")
    assert gone.callback is not None and gone.callback.status == "open"  # a mid abandon after 30 s
    clock.advance(60)
    # The tier table says standard now: the place and the tier are the original ones.
    back, created = await store.route("a2", record("+100", "standard", customer_id="C-1"), "default")
    assert created
    assert (back.call.tier, back.call.resumed_from, back.call.arrived_at) == ("mid", "a", T0)
    assert back.position == 1 and back.call.waited(back.now) == 90
    assert (await store.get_call("b")).position == 2
    assert (await store.get_call("s")).position == 3
    done = await store.callbacks("done", 10)
    assert [(c.call_id, c.status) for c in done] == [("a", "resolved_inbound")]
    mid = await sla_row(store, "mid")
    assert (mid.figures.abandoned, mid.figures.resumed, mid.figures.arrived) == (1, 1, 3)
    assert mid.waiting_now == 2
    metrics = await store.metrics()
    row = next(r for r in metrics.rows if r.tier == "mid")
    assert (row.abandoned, row.resumed) == (1, 1)
    # Answered now, after 90 s: the default formula leaves the resumed abandon out.
    await store.answer("a2", "agent")
    mid = await sla_row(store, "mid")
    assert mid.figures.service_level == 0.0  # 0 within 20 s / (1 answered + 1 abandoned - 1 resumed)
    assert mid.figures.answered == 1


async def test_only_within_the_window_once_and_for_the_same_customer_and_queue(make_store: MakeStore) -> None:
    store, clock = make_store(RESUME)
    await store.route("a", record("+100", "standard", customer_id="C-1"), "default")
    await store.route("b", record("+200", "standard"), "default")
    await store.route("c", record("+300", "standard"), "default")
    clock.advance(10)
    for call_id in ("a", "b", "c"):
        await store.abandon(call_id)
    # Another customer on the same number (the number changed hands): a new place.
    other, _ = await store.route("a2", record("+100", "standard", customer_id="C-9"), "default")
    assert other.call.resumed_from is None and other.call.arrived_at == T0 + 10
    # Another queue: a new place.
    elsewhere, _ = await store.route("b2", record("+200", "standard"), "other")
    assert elsewhere.call.resumed_from is None
    back, _ = await store.route("a3", record("+100", "standard", customer_id="C-1"), "default")
    assert back.call.resumed_from == "a" and back.position == 1
    again, _ = await store.route("a4", record("+100", "standard", customer_id="C-1"), "default")
    assert again.call.resumed_from is None  # taken back once
    clock.advance(121)  # past the window of c's abandon
    late, _ = await store.route("c2", record("+300", "standard"), "default")
    assert late.call.resumed_from is None and late.call.arrived_at == T0 + 131
    assert (await sla_row(store, "standard")).figures.resumed == 1


async def test_off_by_default(make_store: MakeStore) -> None:
    store, clock = make_store()
    await store.route("a", record("+100"), "default")
    await store.route("b", record("+200"), "default")
    clock.advance(10)
    await store.abandon("a")
    back, _ = await store.route("a2", record("+100"), "default")
    assert back.call.resumed_from is None and back.position == 2


async def test_a_resumed_call_abandoned_again_can_be_taken_back_again(make_store: MakeStore) -> None:
    store, clock = make_store(RESUME)
    await store.route("a", record("+100"), "default")
    await store.route("b", record("+200"), "default")
    clock.advance(3)
    await store.abandon("a")  # short: no callback, still resumable
    clock.advance(1)
    back, _ = await store.route("a2", record("+100"), "default")
    assert back.call.resumed_from == "a" and back.position == 1
    clock.advance(5)
    await store.abandon("a2")
    clock.advance(5)
    third, _ = await store.route("a3", record("+100"), "default")
    assert (third.call.resumed_from, third.call.arrived_at, third.position) == ("a2", T0, 1)
    row = await sla_row(store, "standard")
    assert (row.figures.abandoned, row.figures.short_abandoned, row.figures.resumed) == (2, 1, 2)


def test_the_default_formula_leaves_resumed_abandons_out_once() -> None:
    fn = sl.FORMULAS["default"][1]
    # 2 abandons, both resumed, one of them short: neither stays in the denominator.
    tally = sl.Tally(answered=1, answered_within=1, abandoned=2, short_abandoned=1, resumed=2, resumed_short=1)
    assert fn(tally) == 1.0
    assert sl.FORMULAS["all_offered"][1](tally) == 1 / 3


def test_a_resume_window_below_zero_is_refused(tmp_path: Path) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"resume_window_s": -1}, Policy)
    path = tmp_path / "bad.toml"
    path.write_text("resume_window_s = -5\n")
    with pytest.raises(ConfigError) as refused:
        load_settings(path, env={})
    assert "resume_window_s" in str(refused.value)


async def test_taking_a_place_back_frees_a_place_held_by_the_callback_the_abandon_joined(make_store: MakeStore) -> None:
    store, clock = make_store(RESUME)
    await store.route("held", record("+100", "mid"), "default")
    await store.route("other", record("+200", "mid"), "default")
    await store.request_callback("held")  # +100's one callback holds the first place
    await store.route("b", record("+100", "mid"), "default")
    clock.advance(10)
    gone = await store.abandon("b")  # a mid abandon: it joins +100's callback
    assert gone.callback is not None and gone.callback.held
    back, _ = await store.route("b2", record("+100", "mid"), "default")
    assert back.call.resumed_from == "b" and back.position == 2  # behind "other": the held place left
    done = await store.callbacks("done", 10)
    assert [(c.call_id, c.status, c.held) for c in done] == [("held", "resolved_inbound", False)]
    row = await sla_row(store, "mid")
    assert (row.held, row.waiting_now) == (0, 2)
    assert (await store.get_call("other")).position == 1
