"""Service level: a hand-computed scenario through the memory store, windows, and the pure rules."""

from __future__ import annotations

import random

import pytest

from tierline.queue import service_level as sl
from tierline.queue.clock import ManualClock
from tierline.queue.policy import Policy, ResolvedTierPolicy, SlaFormula, TierPolicy
from tierline.queue.store import CallStore, SlaReport, SlaRow
from tierline.tiers.model import Tier

from .helpers import T0, MakeStore, record

# One behaviour suite, three stores: a test that takes `make_store` runs on memory, a real Redis
# and a real Redis Cluster.
HOUR = 3600.0


def row(report: SlaReport, tier: Tier, queue: str = "default") -> SlaRow:
    [found] = [r for r in report.rows if r.queue == queue and r.tier == tier]
    return found


def scenario_policy(**kw: object) -> Policy:
    # Standard calls overflow after 50 s here, so the scenario has one overflow.
    tiers = {"standard": TierPolicy(overflow_after_s=50.0)}
    return Policy(tiers=tiers, **kw)  # type: ignore[arg-type]


async def at(clock: ManualClock, second: float) -> None:
    clock.set(T0 + second)


async def run_scenario(store: CallStore, clock: ManualClock) -> None:
    """Every wait ends inside the first minute (T0 .. T0+59), threshold 20 s, short abandon < 5 s.

    call  tier      arrives  wait ends         wait  counts as
    v1    vip       0        answered at 10    10    answered, within
    v2    vip       0        answered at 20    20    answered, within (<= 20)
    v3    vip       5        answered at 35    30    answered, beyond
    v4    vip       10       abandoned at 13   3     abandon, short (< 5), within 20
    v5    vip       10       abandoned at 40   30    abandon, long, beyond 20
    s1    standard  0        answered at 15    15    answered, within
    s2    standard  1        answered at 45    44    answered, beyond
    s3    standard  2        abandoned at 4    2     abandon, short, within 20
    s4    standard  3        overflowed at 53  50    overflow (max_wait, 50 s)
    v1 is ended at 50: one handled call of 40 s.
    """
    route = store.route
    await at(clock, 0)
    await route("v1", record("+1001", "vip"), "default")
    await route("v2", record("+1002", "vip"), "default")
    await route("s1", record("+2001", "standard"), "default")
    await at(clock, 1)
    await route("s2", record("+2002", "standard"), "default")
    await at(clock, 2)
    await route("s3", record("+2003", "standard"), "default")
    await at(clock, 3)
    await route("s4", record("+2004", "standard"), "default")
    await at(clock, 4)
    await store.abandon("s3")
    await at(clock, 5)
    await route("v3", record("+1003", "vip"), "default")
    await at(clock, 10)
    await store.answer("v1", "a1")
    await route("v4", record("+1004", "vip"), "default")
    await route("v5", record("+1005", "vip"), "default")
    await at(clock, 13)
    await store.abandon("v4")
    await at(clock, 15)
    await store.answer("s1", "a2")
    await at(clock, 20)
    await store.answer("v2", "a3")
    await at(clock, 35)
    await store.answer("v3", "a4")
    await at(clock, 40)
    await store.abandon("v5")
    await at(clock, 45)
    await store.answer("s2", "a5")
    await at(clock, 50)
    await store.end("v1")
    await at(clock, 59)
    await store.sweep()
    assert (await store.get_call("s4")).call.left_at == T0 + 53


# Per formula: (vip service level, standard service level), from the table above.
#   vip:      answered 3, within 2, abandoned 2 (1 short, 1 within), overflowed 0, offered 5
#   standard: answered 2, within 1, abandoned 1 (1 short, 1 within), overflowed 1, offered 4
EXPECTED_LEVEL: dict[SlaFormula, tuple[float, float]] = {
    # within / (answered + abandoned + overflowed - short)
    "default": (2 / (3 + 2 + 0 - 1), 1 / (2 + 1 + 1 - 1)),  # 0.5, 0.333333
    # within / answered
    "answered_only": (2 / 3, 1 / 2),  # 0.666667, 0.5
    # within / offered
    "all_offered": (2 / 5, 1 / 4),  # 0.4, 0.25
    # (within + abandoned within) / offered
    "abandons_in_threshold_good": ((2 + 1) / 5, (1 + 1) / 4),  # 0.6, 0.5
}


def test_every_formula_is_covered_by_the_scenario() -> None:
    assert set(EXPECTED_LEVEL) == set(sl.FORMULAS)


@pytest.mark.parametrize("window", ["15m", "60m", "today"])
async def test_scenario_figures_under_the_default_formula(make_store: MakeStore, window: sl.Window) -> None:
    store, clock = make_store(scenario_policy())
    await run_scenario(store, clock)
    report = await store.sla(None, window)
    vip, std = row(report, "vip").figures, row(report, "standard").figures

    assert (vip.offered, vip.answered, vip.answered_within_threshold) == (5, 3, 2)
    assert (vip.abandoned, vip.short_abandoned, vip.overflowed, vip.arrived) == (2, 1, 0, 5)
    assert vip.asa_s == 20.0  # (10 + 20 + 30) / 3
    assert vip.longest_answered_wait_s == 30.0
    assert vip.average_handle_s == 40.0  # v1: answered at 10, ended at 50
    assert vip.service_level == 0.5
    assert (vip.threshold_s, vip.target, vip.met) == (20.0, 0.9, False)

    assert (std.offered, std.answered, std.answered_within_threshold) == (4, 2, 1)
    assert (std.abandoned, std.short_abandoned, std.overflowed, std.arrived) == (1, 1, 1, 4)
    assert std.asa_s == 29.5  # (15 + 44) / 2
    assert std.longest_answered_wait_s == 44.0
    assert std.average_handle_s is None  # nothing ended
    assert std.service_level == round(1 / 3, 6)
    assert (std.target, std.met) == (0.85, False)

    for empty_tier in ("mid", "blacklisted"):
        empty = row(report, empty_tier)
        assert empty.figures.offered == 0
        assert empty.figures.service_level is None  # zero denominator
        assert empty.figures.met is None
        assert empty.figures.asa_s is None and empty.figures.longest_answered_wait_s is None
        assert empty.waiting_now == 0 and empty.oldest_wait_now_s is None
    assert row(report, "blacklisted").figures.target is None
    assert row(report, "mid").figures.target == 0.85


@pytest.mark.parametrize("formula", sorted(EXPECTED_LEVEL))
async def test_scenario_under_each_formula(make_store: MakeStore, formula: SlaFormula) -> None:
    store, clock = make_store(scenario_policy(sla_formula=formula))
    await run_scenario(store, clock)
    report = await store.sla("default", "60m")
    want_vip, want_std = EXPECTED_LEVEL[formula]
    vip, std = row(report, "vip").figures, row(report, "standard").figures
    assert vip.service_level == round(want_vip, 6)
    assert std.service_level == round(want_std, 6)
    assert vip.met is (want_vip >= 0.9)
    assert std.met is (want_std >= 0.85)
    # The counts do not depend on the formula.
    assert (vip.offered, std.offered, vip.answered_within_threshold, std.answered_within_threshold) == (5, 4, 2, 1)


async def test_met_compares_the_level_with_the_configured_target(make_store: MakeStore) -> None:
    # standard default level is 1/3: a 0.3 target is met, a 0.34 one is not.
    for target, met in ((0.3, True), (0.34, False)):
        policy = Policy(tiers={"standard": TierPolicy(overflow_after_s=50.0, sla_target=target)})
        store, clock = make_store(policy)
        await run_scenario(store, clock)
        assert row(await store.sla(None, "15m"), "standard").figures.met is met


async def test_waiting_now_and_oldest_wait_now(make_store: MakeStore) -> None:
    store, clock = make_store()
    await store.route("s1", record("+1"), "default")
    clock.advance(7)
    await store.route("s2", record("+2"), "default")
    await store.route("b1", record("+3", "blacklisted"), "default")
    clock.advance(5)
    report = await store.sla(None, "15m")
    std = row(report, "standard")
    assert (std.waiting_now, std.oldest_wait_now_s) == (2, 12.0)
    assert (row(report, "blacklisted").waiting_now, row(report, "blacklisted").oldest_wait_now_s) == (1, 5.0)
    assert std.figures.arrived == 2 and std.figures.offered == 0


async def test_a_call_counts_in_the_minute_its_wait_ended(make_store: MakeStore) -> None:
    store, clock = make_store()
    await store.route("s1", record("+1"), "default")  # arrives in minute 0
    clock.set(T0 + 16 * 60 + 30)  # answered in minute 16, after waiting 990 s
    await store.answer("s1", "a1")
    fig = row(await store.sla(None, "15m"), "standard").figures  # minutes 2..16
    assert (fig.answered, fig.answered_within_threshold, fig.asa_s) == (1, 0, 990.0)
    assert fig.arrived == 0  # its arrival, in minute 0, is outside the window


async def test_rolling_15m_and_60m_windows(make_store: MakeStore) -> None:
    store, clock = make_store(scenario_policy())
    await run_scenario(store, clock)  # everything in minute 0
    clock.set(T0 + 10 * 60)  # minute 10: one more VIP, answered after 5 s
    await store.route("v6", record("+1006", "vip"), "default")
    clock.advance(5)
    await store.answer("v6", "a9")

    clock.set(T0 + 14 * 60 + 59)  # minute 14: the 15m window is minutes 0..14, all in
    report = await store.sla(None, "15m")
    assert report.start == T0
    assert row(report, "vip").figures.answered == 4

    clock.set(T0 + 15 * 60)  # minute 15: window is 1..15, minute 0 falls out
    fifteen = await store.sla(None, "15m")
    sixty = await store.sla(None, "60m")
    assert fifteen.start == T0 + 60 and sixty.start == T0 + 15 * 60 - 59 * 60
    vip15, vip60 = row(fifteen, "vip").figures, row(sixty, "vip").figures
    assert (vip15.offered, vip15.answered, vip15.answered_within_threshold) == (1, 1, 1)
    assert vip15.service_level == 1.0 and vip15.met is True and vip15.asa_s == 5.0
    assert row(fifteen, "standard").figures.offered == 0
    assert row(fifteen, "standard").figures.service_level is None
    # 60m: the scenario plus v6. default = (2 + 1) / (4 + 2 + 0 - 1) = 3/5
    assert (vip60.offered, vip60.answered, vip60.answered_within_threshold) == (6, 4, 3)
    assert vip60.service_level == 0.6
    assert vip60.asa_s == 16.25  # (10 + 20 + 30 + 5) / 4
    assert row(sixty, "standard").figures.offered == 4

    clock.set(T0 + 59 * 60 + 59)  # minute 59: minute 0 still in the hour
    assert row(await store.sla(None, "60m"), "standard").figures.offered == 4
    clock.set(T0 + 60 * 60)  # minute 60: out
    assert row(await store.sla(None, "60m"), "standard").figures.offered == 0
    assert row(await store.sla(None, "60m"), "vip").figures.offered == 1


async def test_today_in_utc_starts_at_utc_midnight_with_15_minute_intervals(make_store: MakeStore) -> None:
    store, clock = make_store(scenario_policy())
    await run_scenario(store, clock)
    report = await store.sla(None, "today")
    midnight = T0 - 8 * HOUR  # T0 is 08:00 UTC
    assert report.start == midnight
    vip = row(report, "vip")
    assert vip.intervals is not None
    assert len(vip.intervals) == 8 * 4 + 1  # 00:00 .. 08:00, the current one included
    assert [i.start for i in vip.intervals[:2]] == [midnight, midnight + 900]
    assert vip.intervals[-1].start == T0
    assert vip.intervals[-1].figures.offered == 5
    assert sum(i.figures.offered for i in vip.intervals) == vip.figures.offered == 5
    assert all(i.figures.service_level is None for i in vip.intervals[:-1])
    assert row(await store.sla(None, "15m"), "vip").intervals is None


async def test_today_in_shanghai(make_store: MakeStore) -> None:
    # T0 is 16:00 in Shanghai (UTC+8). Local midnight is at T0 + 8 h.
    store, clock = make_store(Policy(timezone="Asia/Shanghai"))
    local_midnight = T0 + 8 * HOUR
    assert sl.local_midnight(T0, "Asia/Shanghai") == T0 - 16 * HOUR

    clock.set(local_midnight - 120)  # 23:58 local
    await store.route("late", record("+1", "vip"), "default")
    clock.set(local_midnight - 30)  # 23:59:30: answered after 90 s, yesterday
    await store.answer("late", "a1")
    clock.set(local_midnight + 300)  # 00:05
    await store.route("early", record("+2", "vip"), "default")
    clock.set(local_midnight + 310)
    await store.answer("early", "a2")
    clock.set(local_midnight + 20 * 60)  # 00:20

    today = await store.sla(None, "today")
    assert today.start == local_midnight
    vip = row(today, "vip")
    assert (vip.figures.answered, vip.figures.answered_within_threshold, vip.figures.asa_s) == (1, 1, 10.0)
    assert vip.intervals is not None
    assert [i.start for i in vip.intervals] == [local_midnight, local_midnight + 900]
    assert [i.figures.answered for i in vip.intervals] == [1, 0]
    # The rolling hour does not care about midnight.
    hour = row(await store.sla(None, "60m"), "vip").figures
    assert (hour.answered, hour.answered_within_threshold, hour.longest_answered_wait_s) == (2, 1, 90.0)

    # A fresh store one second before local midnight is still in the previous local day.
    other, _ = make_store(Policy(timezone="Asia/Shanghai"), start=local_midnight - 1)
    assert (await other.sla(None, "today")).start == local_midnight - 24 * HOUR
    assert len(row(await other.sla(None, "today"), "vip").intervals or []) == 96


async def test_sla_for_one_queue_and_for_an_unknown_one(make_store: MakeStore) -> None:
    from tierline.queue.errors import Invalid
    from tierline.queue.policy import QueuePolicy

    store, _clock = make_store(Policy(queues={"a": QueuePolicy()}))
    await store.route("x", record("+1"), "a")
    await store.answer("x", "a1")
    only_a = await store.sla("a", "15m")
    assert {r.queue for r in only_a.rows} == {"a"}
    assert [r.tier for r in only_a.rows] == ["vip", "mid", "standard", "blacklisted"]
    both = await store.sla(None, "15m")
    assert {r.queue for r in both.rows} == {"a", "default"}
    assert row(both, "standard", "a").figures.answered == 1
    assert row(both, "standard", "default").figures.answered == 0
    with pytest.raises(Invalid) as err:
        await store.sla("nope", "15m")
    assert err.value.code == "unknown_queue"


# --- pure functions ---------------------------------------------------------------------------


def test_increments_per_event() -> None:
    assert sl.increments("answered", 20.0, 20.0, 5.0) == {
        "answered": 1,
        "answered_within": 1,
        "answer_wait_sum": 20.0,
        "answer_wait_max": 20.0,
    }
    assert sl.increments("answered", 20.5, 20.0, 5.0)["answered_within"] == 0
    assert sl.increments("abandoned", 4.9, 20.0, 5.0) == {"abandoned": 1, "abandoned_within": 1, "short_abandoned": 1}
    assert sl.increments("abandoned", 5.0, 20.0, 5.0) == {"abandoned": 1, "abandoned_within": 1, "short_abandoned": 0}
    assert sl.increments("abandoned", 20.0, 20.0, 5.0)["abandoned_within"] == 1  # at the threshold: within
    assert sl.increments("abandoned", 21.0, 20.0, 5.0) == {"abandoned": 1, "abandoned_within": 0, "short_abandoned": 0}
    assert sl.increments("overflowed", 60.0, 20.0, 5.0) == {"overflowed": 1}
    assert sl.increments("ended", 42.0, 20.0, 5.0) == {"ended": 1, "handle_sum": 42.0}
    assert sl.increments("arrived", 0.0, 20.0, 5.0) == {"arrived": 1}


def test_record_total_and_add() -> None:
    a, b = sl.Tally(), sl.Tally()
    for wait in (10.0, 30.0):
        sl.record(a, "answered", wait, 20.0, 5.0)
    sl.record(b, "answered", 25.0, 20.0, 5.0)
    sl.record(b, "abandoned", 2.0, 20.0, 5.0)
    sl.record(b, "overflowed", 60.0, 20.0, 5.0)
    assert (a.answered, a.answered_within, a.answer_wait_sum, a.answer_wait_max) == (2, 1, 40.0, 30.0)
    both = sl.total([a, b])
    assert (both.answered, both.answered_within, both.abandoned, both.short_abandoned, both.overflowed) == (
        3,
        1,
        1,
        1,
        1,
    )
    assert both.answer_wait_sum == 65.0
    assert both.answer_wait_max == 30.0  # a maximum, not a sum
    assert both.offered == 5
    assert a.answered == 2  # total() does not change its inputs
    assert sl.total([]) == sl.Tally()


def test_formulas_by_hand_and_zero_denominators() -> None:
    t = sl.Tally(answered=8, answered_within=6, abandoned=3, abandoned_within=2, short_abandoned=1, overflowed=1)
    fn = {name: entry[1] for name, entry in sl.FORMULAS.items()}
    assert fn["default"](t) == 6 / (8 + 3 + 1 - 1)
    assert fn["answered_only"](t) == 6 / 8
    assert fn["all_offered"](t) == 6 / 12
    assert fn["abandons_in_threshold_good"](t) == (6 + 2) / 12
    for f in fn.values():
        assert f(sl.Tally()) is None
    # Only short abandons: the default denominator is 0, the others are not.
    only_short = sl.Tally(abandoned=2, abandoned_within=2, short_abandoned=2)
    assert fn["default"](only_short) is None
    assert fn["answered_only"](only_short) is None
    assert fn["all_offered"](only_short) == 0.0
    assert fn["abandons_in_threshold_good"](only_short) == 1.0
    text = "answered within threshold / (answered + abandoned + overflowed - short abandons - resumed abandons)"
    assert sl.FORMULAS["default"][0] == text
    # Resumed abandons (issue 16 item 4) leave the default denominator as short ones do, each
    # once; the other formulas count them as abandons. Callbacks taken from the line
    # (item 3) are in no formula.
    resumed = sl.Tally(
        answered=4, answered_within=3, abandoned=3, short_abandoned=1, resumed=2, resumed_short=1, callback_requested=5
    )
    assert fn["default"](resumed) == 3 / (4 + 3 - 1 - 1)
    assert fn["all_offered"](resumed) == 3 / 7
    assert fn["answered_only"](resumed) == 3 / 4


def test_figures_rounding_and_met() -> None:
    tier = ResolvedTierPolicy(sla_threshold_s=20.0, sla_target=0.5, overflow_after_s=None)
    t = sl.Tally(answered=3, answered_within=2, answer_wait_sum=10.0, answer_wait_max=5.1234, ended=2, handle_sum=7.0)
    fig = sl.figures(t, tier, "default")
    assert fig.service_level == round(2 / 3, 6)
    assert fig.met is True
    assert fig.asa_s == 3.333
    assert fig.longest_answered_wait_s == 5.123
    assert fig.average_handle_s == 3.5
    exact = sl.figures(sl.Tally(answered=2, answered_within=1), tier, "default")
    assert exact.service_level == 0.5 and exact.met is True  # at the target counts as met
    no_target = ResolvedTierPolicy(sla_threshold_s=20.0, sla_target=None, overflow_after_s=None)
    assert sl.figures(t, no_target, "default").met is None


def test_windows_arithmetic() -> None:
    assert sl.minute_of(T0) == T0 // 60
    assert sl.minute_of(T0 + 59.9) == T0 // 60
    assert sl.minute_of(T0 + 60) == T0 // 60 + 1
    assert sl.interval_of(T0 + 899) == sl.interval_of(T0) == T0 // 900
    assert sl.interval_of(T0 + 900) == T0 // 900 + 1
    fifteen = sl.rolling_minutes("15m", T0 + 30)
    assert len(fifteen) == 15 and fifteen[-1] == T0 // 60 and fifteen[0] == T0 // 60 - 14
    assert len(sl.rolling_minutes("60m", T0)) == 60
    assert sl.window_start("15m", T0 + 30, "UTC") == T0 - 14 * 60
    assert sl.window_start("60m", T0 + 30, "UTC") == T0 - 59 * 60
    assert sl.window_start("today", T0 + 30, "UTC") == T0 - 8 * HOUR
    assert sl.interval_start(int(T0 // 900)) == T0
    assert sl.local_midnight(T0, "UTC") == T0 - 8 * HOUR
    assert sl.local_midnight(T0, "Asia/Shanghai") == T0 - 16 * HOUR
    assert sl.local_midnight(T0 + 8 * HOUR, "Asia/Shanghai") == T0 + 8 * HOUR
    day = sl.today_intervals(T0, "Asia/Shanghai")
    assert len(day) == 16 * 4 + 1
    assert sl.interval_start(day[0]) == T0 - 16 * HOUR
    # A quarter-hour zone: local midnight is still on an epoch quarter hour.
    kathmandu = sl.local_midnight(T0, "Asia/Kathmandu")  # UTC+5:45
    assert kathmandu == T0 - 13.75 * HOUR  # T0 is 13:45 there
    assert kathmandu % 900 == 0
    assert sl.interval_start(sl.today_intervals(T0, "Asia/Kathmandu")[0]) == kathmandu
    assert sl.valid_timezone("Asia/Shanghai")
    assert not sl.valid_timezone("Mars/Olympus_Mons")
    assert not sl.valid_timezone("")


async def test_today_kept_across_polls_equals_today_read_afresh(make_store: MakeStore) -> None:
    """The settled intervals a store keeps between polls (queue/settled.py) change no figure:
    over a day of arrivals, answers, abandons and overflows (some dated at their due time,
    in an interval already past), each poll equals a read by a store that kept nothing."""
    from tierline.queue.settled import SettledDay

    policy = scenario_policy()
    store, clock = make_store(policy)
    rng = random.Random(20261130)
    waiting: list[str] = []
    for step in range(160):
        clock.advance(rng.choice([5.0, 40.0, 200.0, 900.0, 2400.0]))
        call_id = f"c{step}"
        tier: Tier = rng.choice(["vip", "mid", "standard", "blacklisted"])
        await store.route(call_id, record(f"+86100{step:05d}", tier), "default")
        waiting.append(call_id)
        if rng.random() < 0.5 and waiting:
            done = waiting.pop(rng.randrange(len(waiting)))
            snapshot = await store.get_call(done)
            if snapshot.call.status == "waiting":
                await (store.answer(done, f"a{step}") if rng.random() < 0.7 else store.abandon(done))
        if step % 7 == 0:
            kept = await store.sla(None, "today")
            settled = store._settled  # type: ignore[attr-defined]
            store._settled = SettledDay(policy)  # type: ignore[attr-defined]
            fresh = await store.sla(None, "today")
            store._settled = settled  # type: ignore[attr-defined]
            assert kept.rows == fresh.rows, f"step {step}"
            assert sum(r.figures.offered for r in kept.rows) > 0 or step == 0
