"""Business hours (issue 16 item 1): the pure schedule and window questions, the config's
validation, and the engines' behaviour on every store (closed arrivals, callbacks handed out
only while open, deadline rules, `at_risk`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import hypothesis.strategies as st
import msgspec
import pytest
from hypothesis import given, settings

from tierline.queue import callbacks as cb
from tierline.queue import hours as h
from tierline.queue.policy import CallbackPolicy, Policy, QueuePolicy
from tierline.router.config import ConfigError, load_settings
from tierline.tiers.model import Tier

from .helpers import T0, MakeStore, record

HOUR = 3600.0
DAY = 24 * HOUR
WEEKDAYS = {day: ["08:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
# T0 is Friday 2027-01-15 08:00 UTC.
FRI_18 = T0 + 10 * HOUR
MON_08 = T0 + 3 * DAY


def utc(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def weekdays(tz: str = "UTC", holidays: tuple[str, ...] = ()) -> h.Schedule:
    return h.Schedule.from_config(WEEKDAYS, list(holidays), tz)


# --- the schedule, pure ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "holidays", "tz", "fault"),
    [
        ({"mon": ["08:00-12:00", "11:30-14:00"]}, [], "UTC", "ranges 08:00-12:00 and 11:30-14:00 overlap"),
        ({"mon": ["8-12"]}, [], "UTC", "'8-12' is not a time range"),
        ({"mon": ["08:00-25:00"]}, [], "UTC", "'08:00-25:00' is not a time range"),
        ({"mon": ["08:61-09:00"]}, [], "UTC", "is not a time range"),
        ({"mon": ["18:00-08:00"]}, [], "UTC", "must end after it starts"),
        ({"mon": ["08:00-08:00"]}, [], "UTC", "must end after it starts"),
        ({"mon": "08:00-18:00"}, [], "UTC", "a list of ranges"),
        ({"monday": ["08:00-18:00"]}, [], "UTC", "unknown day 'monday'"),
        ({"mon": []}, [], "UTC", "no opening range on any day"),
        ({"mon": ["08:00-18:00"]}, ["2027-02-30"], "UTC", "'2027-02-30' is not a date"),
        ({"mon": ["08:00-18:00"]}, [], "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_bad_hours_are_a_clear_error(hours: dict[str, list[str]], holidays: list[str], tz: str, fault: str) -> None:
    with pytest.raises(h.HoursError, match=fault.replace("(", r"\(")):
        h.Schedule.from_config(hours, holidays, tz)


def test_the_config_names_the_queue_at_fault_and_a_queue_without_hours_is_always_open() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"queues\.sales\.hours\.tue: ranges .* overlap"):
        msgspec.convert({"queues": {"sales": {"hours": {"tue": ["09:00-12:00", "10:00-11:00"]}}}}, Policy)
    with pytest.raises(msgspec.ValidationError, match=r"queues\.sales\.timezone: unknown time zone"):
        msgspec.convert({"queues": {"sales": {"hours": {"tue": ["09:00-12:00"]}, "timezone": "Nowhere/X"}}}, Policy)
    policy = Policy(queues={"sales": QueuePolicy(hours={"mon": ["09:00-17:00"]})})
    assert policy.schedules["default"] is None and policy.schedules["sales"] is not None
    assert policy.hours_book().window("default", T0) is None


def test_weekly_hours_holidays_and_the_four_questions() -> None:
    w = weekdays(holidays=("2027-01-18",)).window(T0, 7 * DAY)  # Monday the 18th is a holiday
    assert h.is_open(w, T0) and h.is_open(w, FRI_18 - 1) and not h.is_open(w, FRI_18)
    assert h.next_open(w, T0 + HOUR) == T0 + HOUR
    assert h.next_open(w, FRI_18) == MON_08 + DAY  # Saturday, Sunday, the holiday
    assert h.open_seconds(w, T0, MON_08 + DAY + HOUR) == 11 * HOUR
    assert h.after_open(w, FRI_18 - HOUR, 3 * HOUR) == MON_08 + DAY + 2 * HOUR
    assert h.after_open(w, T0, 1000 * HOUR) is None  # beyond the window's reach
    assert h.next_open(w, w.end) is None


def test_ranges_keep_their_local_times_across_a_dst_change() -> None:
    # Europe/Berlin moves to summer time on Sunday 2027-03-28: 08:00 local is 07:00 UTC before, 06:00 after.
    berlin = h.Schedule.from_config({"fri": ["08:00-18:00"], "mon": ["08:00-18:00"]}, [], "Europe/Berlin")
    found = berlin.intervals(utc("2027-03-26T00:00:00+00:00"), utc("2027-03-30T00:00:00+00:00"))
    assert found == [
        (utc("2027-03-26T07:00:00+00:00"), utc("2027-03-26T17:00:00+00:00")),
        (utc("2027-03-29T06:00:00+00:00"), utc("2027-03-29T16:00:00+00:00")),
    ]
    # A day open round the clock is 23 hours long on the day the clocks go forward.
    always = h.Schedule.from_config({"sun": ["00:00-24:00"]}, [], "Europe/Berlin")
    day = datetime(2027, 3, 28, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
    assert always.window(day, DAY).ends[0] - always.window(day, DAY).starts[0] == 23 * HOUR


def test_ranges_that_touch_across_midnight_are_one_interval() -> None:
    night = h.Schedule.from_config({"fri": ["20:00-24:00"], "sat": ["00:00-02:00"]}, [], "UTC")
    w = night.window(T0, 2 * DAY)
    assert (w.starts[0], w.ends[0]) == (T0 + 12 * HOUR, T0 + 18 * HOUR)
    assert w.starts[1] == T0 + 7 * DAY + 12 * HOUR  # the next Friday


def test_holiday_file_lines() -> None:
    assert h.holiday_lines("# closed\n2027-01-01\n\n2027-12-25  # Christmas\n") == ["2027-01-01", "2027-12-25"]


def test_the_book_rebuilds_its_windows_hourly() -> None:
    book = Policy(queues={"default": QueuePolicy(hours=WEEKDAYS)}).hours_book()
    first = book.windows(T0)
    assert book.windows(T0 + HOUR - 1) is first
    assert book.windows(T0 + HOUR) is not first


def test_callback_terms_under_both_deadline_rules() -> None:
    w = weekdays().window(FRI_18, 7 * DAY, 20 * HOUR)
    wall = CallbackPolicy()
    # Friday 18:30, closed all weekend: due Monday 08:00, the 24 h promise has no open time left.
    assert cb.terms(w, FRI_18 + 1800, wall) == cb.Terms(MON_08, FRI_18 + 1800 + DAY, True)
    # Friday 17:50: ten open minutes before the deadline, more than min_open_s (300 s).
    assert cb.terms(w, FRI_18 - 600, wall) == cb.Terms(FRI_18 - 600, FRI_18 - 600 + DAY, False)
    assert cb.terms(w, FRI_18 - 600, CallbackPolicy(min_open_s=900)).at_risk
    # Eight open hours from Friday 17:00: one on Friday, seven on Monday.
    open_rule = CallbackPolicy(deadline_rule="open_hours")
    assert cb.terms(w, FRI_18 - HOUR, open_rule) == cb.Terms(FRI_18 - HOUR, MON_08 + 7 * HOUR, False)
    assert cb.terms(None, T0, open_rule) == cb.Terms(T0, T0 + 8 * HOUR, False)


# --- on every store ----------------------------------------------------------------------------


def hours_policy(**callbacks: object) -> Policy:
    return Policy(
        queues={"default": QueuePolicy(hours=WEEKDAYS), "late": QueuePolicy(hours={"fri": ["08:00-22:00"]})},
        callbacks=CallbackPolicy(**callbacks),  # type: ignore[arg-type]
    )


async def test_a_call_arriving_while_its_queue_is_closed_overflows_as_closed(make_store: MakeStore) -> None:
    store, clock = make_store(hours_policy(), start=FRI_18 + 1800)
    arrivals: tuple[tuple[str, Tier], ...] = (("v", "vip"), ("s", "standard"))
    for call_id, tier in arrivals:
        snap, created = await store.route(call_id, record("+10" + call_id[0] + "1", tier), "default")
        assert created and (snap.call.status, snap.call.overflow_reason, snap.position) == (
            "overflowed",
            "closed",
            None,
        )
        assert snap.callback is None
    late, _ = await store.route("l", record("+1031", "standard"), "late")  # open until 22:00
    assert late.call.status == "waiting"

    mid, _ = await store.route("m", record("+1041", "mid"), "default")
    assert (mid.call.status, mid.call.overflow_reason) == ("overflowed", "closed")
    made = mid.callback
    assert made is not None and made.reason == "closed"
    # Due from the next opening; the 24 h promise runs out on Saturday: at risk.
    assert (made.next_attempt_at, made.deadline, made.at_risk) == (MON_08, FRI_18 + 1800 + DAY, True)
    assert (await store.callback_summary()).at_risk == 1
    assert (await store.metrics()).callbacks_at_risk == 1

    # Closed: an agent gets the open queue's call, never the callback.
    work = await store.next_work("a1", None)
    assert work is not None and work.call is not None and work.call.call.call_id == "l"
    assert await store.next_work("a2", ["default"]) is None
    clock.advance(MON_08 - clock.now() - 1)
    assert await store.next_work("a2", ["default"]) is None
    clock.advance(1)
    work = await store.next_work("a2", ["default"])
    assert work is not None and work.callback is not None and work.callback.callback_id == made.callback_id
    await store.callback_outcome(made.callback_id, "completed", "a2", None)
    summary = await store.callback_summary()
    assert (summary.at_risk, summary.completed, summary.completed_in_time) == (0, 1, 0)


async def test_callbacks_are_handed_out_only_while_their_queue_is_open(make_store: MakeStore) -> None:
    store, clock = make_store(hours_policy(), start=FRI_18 - 120)
    await store.route("m", record("+1051", "mid"), "default")
    clock.advance(60)  # overflows on wait at 17:59: an open queue, due at once
    snap = await store.get_call("m")
    assert snap.callback is not None and snap.callback.next_attempt_at == FRI_18 - 60
    assert snap.callback.at_risk  # a minute open before its deadline (none on the weekend): under min_open_s
    clock.advance(60)  # 18:00: closed
    assert await store.next_work("a1", None) is None
    clock.advance(MON_08 - clock.now())
    work = await store.next_work("a1", None)
    assert work is not None and work.callback is not None and work.callback.call_id == "m"


async def test_the_open_hours_deadline_rule(make_store: MakeStore) -> None:
    store, clock = make_store(hours_policy(deadline_rule="open_hours", window_open_s=4 * HOUR), start=FRI_18 - 2 * HOUR)
    await store.route("m", record("+1061", "mid"), "default")
    clock.advance(60)
    snap = await store.get_call("m")
    assert snap.callback is not None
    # Created 16:01 Friday: 1 h 59 min open on Friday, the rest on Monday.
    assert (snap.callback.deadline, snap.callback.at_risk) == (MON_08 + 2 * HOUR + 60, False)


# --- the config file -----------------------------------------------------------------------


def test_a_config_file_with_hours_and_a_holiday_file(tmp_path: Path) -> None:
    (tmp_path / "holidays.txt").write_text("# national\n2027-01-18\n")
    path = tmp_path / "tierline.toml"
    path.write_text(
        '[queues.sales]\nholidays = ["2027-01-19"]\nholidays_file = "holidays.txt"\ntimezone = "Europe/Berlin"\n'
        '[queues.sales.hours]\nmon = ["08:00-18:00"]\ntue = ["08:00-18:00"]\nwed = ["08:00-18:00"]\n'
    )
    settings = load_settings(path, env={})
    schedule = settings.schedules["sales"]
    assert schedule is not None
    assert {str(day) for day in schedule.holidays} == {"2027-01-18", "2027-01-19"}
    w = settings.hours_book().window("sales", T0)
    assert w is not None and h.next_open(w, FRI_18) == utc("2027-01-20T07:00:00+00:00")  # Wednesday, 08:00 CET


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ('[queues.sales.hours]\nmon = ["08:00-12:00", "09:00-10:00"]\n', "queues.sales.hours.mon: ranges"),
        ('[queues.sales.hours]\nmon = ["8am-noon"]\n', "'8am-noon' is not a time range"),
        ('[queues.sales]\nholidays_file = "missing.txt"\n', "queues.sales.holidays_file: cannot read"),
        ('[queues.sales]\nholidays = ["someday"]\n[queues.sales.hours]\nmon = ["08:00-12:00"]\n', "is not a date"),
    ],
)
def test_a_bad_hours_config_is_refused_at_load(tmp_path: Path, text: str, fault: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="invalid configuration") as refused:
        load_settings(path, env={})
    assert fault in str(refused.value)


# --- the window questions agree with one another ---------------------------------------------

_ranges = st.lists(
    st.tuples(st.integers(0, 47), st.integers(1, 8)).map(
        lambda p: (
            f"{p[0] // 2:02d}:{p[0] % 2 * 30:02d}-"
            f"{min(24 * 60, p[0] * 30 + p[1] * 30) // 60:02d}:{min(24 * 60, p[0] * 30 + p[1] * 30) % 60:02d}"
        )
    ),
    max_size=2,
)


@settings(max_examples=60, deadline=None)
@given(
    week=st.dictionaries(st.sampled_from(h.DAYS), _ranges, min_size=1),
    tz=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Shanghai"]),
    offset=st.floats(0, 7 * DAY),
    need=st.floats(1, 20 * HOUR),
)
def test_the_four_questions_agree(week: dict[str, list[str]], tz: str, offset: float, need: float) -> None:
    try:
        schedule = h.Schedule.from_config(week, [], tz)
    except h.HoursError:
        return  # overlapping or empty weeks are refused (tested above)
    start = utc("2027-03-20T00:00:00+00:00")  # the week of Europe's DST change
    t = start + offset
    w = schedule.window(t, DAY, need)
    opening = h.next_open(w, t)
    assert opening is not None and opening >= t and h.is_open(w, opening)
    assert h.open_seconds(w, t, opening) == 0
    until = h.after_open(w, t, need)
    assert until is not None and abs(h.open_seconds(w, t, until) - need) < 1e-6
    assert h.is_open(w, t) == (opening == t)
