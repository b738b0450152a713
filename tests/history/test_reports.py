"""Reports: buckets right across daylight-saving changes, figures equal to a recount and to the
engine's own formulas, per-agent figures, timelines of reused call ids, masking and CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.history.conftest import new_schema
from tests.history.traffic import traffic
from tierline.queue.errors import Invalid, NotFound
from tierline.queue.history import events as ev
from tierline.queue.history import reports
from tierline.queue.history.archive import Archive, TallyRow, sum_into_buckets
from tierline.queue.history.buckets import bucket_of, day_bounds
from tierline.queue.history.postgres_archive import PostgresArchive, edge_reads, hour_split, whole_days
from tierline.queue.history.tallies import COUNT_FIELDS, TALLY_FIELDS, IntervalTally
from tierline.queue.policy import Policy, TierPolicy
from tierline.queue.service_level import FORMULAS

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")


def local(zone: ZoneInfo, *parts: int) -> float:
    year, month, day, hour, minute = (*parts, 0, 0)[:5]
    return datetime(year, month, day, hour, minute, tzinfo=zone).timestamp()


def starts(day: tuple[int, int, int], next_day: tuple[int, int, int], by: reports.By, zone: ZoneInfo) -> list[str]:
    found = reports.bucket_starts(local(zone, *day), local(zone, *next_day), by, zone)
    return [datetime.fromtimestamp(at, zone).isoformat() for at in found]


@pytest.mark.parametrize(
    ("zone", "day", "next_day", "hours"),
    [
        (BERLIN, (2026, 3, 29), (2026, 3, 30), 23),  # clocks 02:00 → 03:00
        (BERLIN, (2026, 10, 25), (2026, 10, 26), 25),  # 03:00 → 02:00
        (NEW_YORK, (2026, 3, 8), (2026, 3, 9), 23),
        (NEW_YORK, (2026, 11, 1), (2026, 11, 2), 25),
        (BERLIN, (2026, 6, 1), (2026, 6, 2), 24),
    ],
)
def test_a_change_day_has_its_real_number_of_hours_and_quarter_hours(
    zone: ZoneInfo, day: tuple[int, int, int], next_day: tuple[int, int, int], hours: int
) -> None:
    assert len(starts(day, next_day, "60m", zone)) == hours
    assert len(starts(day, next_day, "30m", zone)) == 2 * hours
    quarters = reports.bucket_starts(local(zone, *day), local(zone, *next_day), "15m", zone)
    assert len(quarters) == 4 * hours and all(b - a == 900 for a, b in itertools.pairwise(quarters))
    (only,) = reports.bucket_starts(local(zone, *day), local(zone, *next_day), "day", zone)
    assert reports.bucket_end(only, "day", zone) - only == hours * 3600


def test_the_repeated_hour_of_a_fall_back_is_two_buckets_and_the_skipped_one_none() -> None:
    hours = starts((2026, 11, 1), (2026, 11, 2), "60m", NEW_YORK)
    assert hours[:4] == [
        "2026-11-01T00:00:00-04:00",
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T02:00:00-05:00",
    ]
    spring = starts((2026, 3, 29), (2026, 3, 30), "60m", BERLIN)
    assert spring[1:3] == ["2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00"]
    # A tally in each pass of 01:xx lands in its own pass's bucket.
    first_pass, second_pass = local(NEW_YORK, 2026, 11, 1, 1, 30), local(NEW_YORK, 2026, 11, 1, 1, 30) + 3600
    assert (
        reports.bucket_start(second_pass, "60m", NEW_YORK) - reports.bucket_start(first_pass, "60m", NEW_YORK) == 3600
    )


def test_week_and_month_buckets_start_on_local_monday_and_the_first() -> None:
    weeks = starts((2026, 3, 1), (2026, 4, 1), "week", BERLIN)
    assert weeks[0] == "2026-02-23T00:00:00+01:00" and weeks[-1] == "2026-03-30T00:00:00+02:00"
    assert all(datetime.fromisoformat(w).weekday() == 0 for w in weeks)
    months = starts((2025, 12, 15), (2026, 3, 2), "month", NEW_YORK)
    assert months == [
        "2025-12-01T00:00:00-05:00",
        "2026-01-01T00:00:00-05:00",
        "2026-02-01T00:00:00-05:00",
        "2026-03-01T00:00:00-05:00",
    ]
    # India is offset by half an hour: its hours are not UTC hours.
    kolkata = ZoneInfo("Asia/Kolkata")
    assert reports.bucket_start(local(kolkata, 2026, 5, 1, 10, 45), "60m", kolkata) == local(kolkata, 2026, 5, 1, 10)


POLICY = Policy(tiers={"vip": TierPolicy(sla_threshold_s=20.0, sla_target=0.9)})
DAY = (2026, 10, 25)  # Berlin's fall-back day: 25 hours


async def test_the_report_equals_a_recount_of_the_raw_events_in_every_bucket(archive: Archive) -> None:
    start, end = local(BERLIN, *DAY), local(BERLIN, 2026, 10, 26)
    events = traffic(seed=30, calls=1500, start=start - 3600, spacing_s=65)  # some before the range too
    await archive.ingest(events)
    for by in ("60m", "day"):
        rows = await reports.sla_report(archive, start, end, by=by, tz="Europe/Berlin", policy=POLICY)
        assert len({r.start for r in rows}) == (25 if by == "60m" else 1)
        for row in rows:
            lo, hi = datetime.fromisoformat(row.start).timestamp(), datetime.fromisoformat(row.end).timestamp()
            mine = [
                e
                for e in events
                if lo <= e.at < hi and start <= e.at < end and (e.queue, e.tier) == (row.queue, row.tier)
            ]
            answers = [e for e in mine if isinstance(e, ev.Answer)]
            abandons = [e for e in mine if isinstance(e, ev.Abandon)]
            overflows = [e for e in mine if isinstance(e, ev.Overflow)]
            assert row.answered == len(answers) and row.abandoned == len(abandons) and row.overflowed == len(overflows)
            assert row.offered == len(answers) + len(abandons) + len(overflows)
            assert row.answered_within_threshold == sum(e.wait_s <= 20 for e in answers)
            assert row.short_abandoned == sum(e.short for e in abandons)
            assert row.entered == sum(isinstance(e, ev.Enter) for e in mine)
            assert row.callbacks_created == sum(isinstance(e, ev.CallbackCreated) for e in mine)
            closes = [e for e in mine if isinstance(e, ev.CallbackClosed)]
            assert row.callbacks_completed_in_time == sum(
                e.reason == "completed" and e.at <= e.deadline for e in closes
            )
            assert row.callbacks_overdue == sum(e.at > e.deadline for e in closes)
            if answers:
                assert row.asa_s == pytest.approx(sum(e.wait_s for e in answers) / len(answers), abs=1e-3)
                assert row.longest_wait_s == pytest.approx(max(e.wait_s for e in answers), abs=1e-3)
            good, bad = row.answered_within_threshold, row.offered - row.short_abandoned
            assert row.service_level == (None if bad == 0 else pytest.approx(good / bad, abs=1e-6))
    daily = await reports.sla_report(archive, start, end, by="day", tz="Europe/Berlin", policy=POLICY, tiers=["vip"])
    assert {r.tier for r in daily} == {"vip"} and all(r.target == 0.9 for r in daily)
    only = await reports.sla_report(archive, start, end, by="day", tz="Europe/Berlin", policy=POLICY, queues=["sales"])
    assert {r.queue for r in only} == {"sales"}


async def test_the_service_level_is_the_configured_formula(archive: Archive) -> None:
    start = local(BERLIN, 2026, 6, 1)
    await archive.ingest(traffic(seed=31, calls=400, start=start, spacing_s=60))
    for formula, (_, level) in FORMULAS.items():
        policy = Policy(sla_formula=formula)
        rows = await reports.sla_report(archive, start, start + 86_400, by="day", tz="Europe/Berlin", policy=policy)
        tallies = await archive.interval_tallies(*reports.check_range(start, start + 86_400))
        for row in rows:
            lane = IntervalTally()
            for t in tallies:
                if (t.queue, t.tier) == (row.queue, row.tier):
                    lane.add(t.tally)
            expected = level(lane.service_tally())
            assert row.service_level == (None if expected is None else round(expected, 6))
        assert rows


async def test_per_agent_report_counts_answers_handle_time_and_completed_callbacks(archive: Archive) -> None:
    start = local(NEW_YORK, 2026, 11, 1)
    events = traffic(seed=32, calls=600, start=start, spacing_s=100)
    await archive.ingest(events)
    rows = await reports.agent_report(archive, start, start + 2 * 86_400, by="day", tz="America/New_York")
    for agent in {r.agent for r in rows}:
        mine = [e for e in events if e.agent == agent and start <= e.at < start + 2 * 86_400]
        theirs = [r for r in rows if r.agent == agent]
        assert sum(r.answered for r in theirs) == sum(isinstance(e, ev.Answer) for e in mine)
        ends = [e for e in mine if isinstance(e, ev.End)]
        assert sum(r.ended for r in theirs) == len(ends)
        assert sum(r.handle_s for r in theirs) == pytest.approx(sum(e.handle_s for e in ends), abs=0.01)
        completed = [e for e in mine if isinstance(e, ev.CallbackClosed) and e.reason == "completed"]
        assert sum(r.callbacks_completed for r in theirs) == len(completed)
    one = await reports.agent_report(archive, start, start + 86_400, by="60m", tz="America/New_York", agents=["agent3"])
    assert one and {r.agent for r in one} == {"agent3"}


async def test_a_call_id_used_twice_gives_each_call_newest_first_with_its_callback(archive: Archive) -> None:
    ids = ev.IdSequence(900)
    t0 = local(BERLIN, 2024, 1, 10, 9)
    later = t0 + 400 * 86_400  # the id comes back after retention let it go
    call: dict[str, str] = {"call_id": "dup", "caller": "+49 30 1234 5678", "queue": "sales", "tier": "mid"}
    cb: dict[str, Any] = {**call, "callback_id": "k1"}
    old: list[ev.Event] = [
        ev.Enter(id=ids.next(), at=t0, position=2, **call),
        ev.Overflow(id=ids.next(), at=t0 + 60, wait_s=60, reason="max_wait", **call),
        ev.CallbackCreated(id=ids.next(), at=t0 + 60, reason="max_wait", deadline=t0 + 3660, **cb),
        ev.CallbackAssigned(id=ids.next(), at=t0 + 600, agent="a1", attempt=1, callback_id="k1"),
        ev.CallbackClosed(
            id=ids.next(), at=t0 + 700, agent="a1", reason="completed", deadline=t0 + 3660, callback_id="k1"
        ),
    ]
    new: list[ev.Event] = [
        ev.Enter(id=ids.next(), at=later, position=1, **call),
        ev.Answer(id=ids.next(), at=later + 5, agent="a2", wait_s=5, threshold_s=20, **call),
        ev.End(id=ids.next(), at=later + 65, agent="a2", handle_s=60, **call),
    ]
    other = ev.Enter(id=ids.next(), at=t0, position=1, call_id="other", queue="sales", tier="vip")
    await archive.ingest([*new, other, *old])
    timeline = await reports.call_history(archive, "dup")
    assert [c.started_at for c in timeline] == [later, t0]
    assert timeline[0].events == new and timeline[1].events == old
    masked = await reports.call_history(archive, "dup", mask=True)
    assert {e.caller for c in masked for e in c.events} == {"+** ** **** 5678", None}
    with pytest.raises(NotFound):
        await reports.call_history(archive, "never")


def test_masking_keeps_the_last_four_digits_only() -> None:
    assert reports.mask_caller("+4930123456789") == "+*********6789"
    assert reports.mask_caller("1234") == "1234"
    assert reports.mask_caller("") == ""


def test_csv_has_a_header_and_one_line_per_row_with_nulls_empty() -> None:
    row = reports.AgentReportRow(
        start="s", end="e", agent="a,1", answered=2, ended=1, handle_s=3.5, average_handle_s=None, callbacks_completed=0
    )
    parsed = list(csv.reader(io.StringIO(reports.to_csv([row, row]))))
    assert parsed[0] == list(reports.AGENT_REPORT_FIELDS)
    assert parsed[1] == ["s", "e", "a,1", "2", "1", "3.5", "", "0"] and len(parsed) == 3
    assert reports.to_csv([], reports.SLA_FIELDS).splitlines() == [",".join(reports.SLA_FIELDS)]


async def test_bad_arguments_are_refused_with_a_code(archive: Archive) -> None:
    cases = [
        ({"by": "fortnight", "tz": "UTC"}, 0, 1, "invalid_by"),
        ({"by": "day", "tz": "Mars/Olympus"}, 0, 1, "invalid_tz"),
        ({"by": "day", "tz": "UTC"}, 5, 5, "invalid_range"),
        ({"by": "day", "tz": "UTC"}, float("nan"), 5, "invalid_range"),
    ]
    for kwargs, start, end, code in cases:
        with pytest.raises(Invalid) as refused:
            await reports.sla_report(archive, start, end, policy=POLICY, by=kwargs["by"], tz=kwargs["tz"])
        assert refused.value.code == code


@pytest.mark.parametrize("zone", [BERLIN, ZoneInfo("Asia/Kolkata"), ZoneInfo("Asia/Kathmandu")])
async def test_bucket_sums_read_by_the_hour_equal_the_quarter_hour_sums(pg_archive: Archive, zone: ZoneInfo) -> None:
    """PostgreSQL reads whole hours from its hourly tallies and cut hours (a :30 or :45 zone's
    day bounds, a range's ragged ends) by the quarter hour: the sums must be those of the
    15-minute tallies, whatever the bounds."""
    start = local(zone, 2026, 10, 24, 7, 45)
    await pg_archive.ingest(traffic(seed=33, calls=400, start=start - 7200, spacing_s=300))
    spans: tuple[tuple[reports.By, int], ...] = (("day", 3), ("60m", 1), ("15m", 1), ("week", 9))
    for by, days in spans:
        _, bounds = reports.bucket_bounds(start, start + days * 86_400 + 1800, by, zone)
        summed = await pg_archive.bucket_tallies(bounds)
        recount = sum_into_buckets(await pg_archive.interval_tallies(bounds[0], bounds[-1]), bounds)
        assert summed and _same_sums(summed, recount), (by, zone)
    one = await pg_archive.bucket_tallies(bounds, queues=["sales"], tiers=["vip"])
    assert one and _same_sums(
        one, sum_into_buckets(await pg_archive.interval_tallies(bounds[0], bounds[-1], ["sales"], ["vip"]), bounds)
    )


def _same_sums(left: list[TallyRow], right: list[TallyRow]) -> bool:
    """Equal rows; seconds equal up to the order floating-point sums were added in."""
    assert [(r.interval, r.queue, r.tier) for r in left] == [(r.interval, r.queue, r.tier) for r in right]
    for a, b in zip(left, right, strict=True):
        for name in TALLY_FIELDS:
            x, y = getattr(a.tally, name), getattr(b.tally, name)
            assert x == (y if name in COUNT_FIELDS else pytest.approx(y, rel=1e-12)), (a.interval, name)
    return True


def test_hour_split_reads_cut_hours_by_the_quarter() -> None:
    assert hour_split([4, 12, 24]) == ((1, 6), [], [])
    # 14 cuts hour 3; 5 and 25 are the range's ragged ends.
    assert hour_split([5, 14, 25]) == ((2, 6), [3], [5, 6, 7, 24, 12, 13, 14, 15])
    assert hour_split([3, 12, 21]) == ((1, 5), [], [3, 20])
    assert hour_split([4, 7, 16]) is None  # a bucket under two hours: quarter hours only


@pytest.mark.parametrize("zone", [BERLIN, NEW_YORK, ZoneInfo("Asia/Kathmandu")])
async def test_daily_sums_equal_the_quarter_hour_sums_from_before_and_after_the_zone_was_added(
    pg_dsn: str, zone: ZoneInfo
) -> None:
    """Day, week and month reports in a zone whose days are kept read day_tallies: filled from
    the 15-minute tallies when the zone is added at open (a first archive ran without it), kept
    by every ingest after. Across the fall-back week, with ragged range ends, the sums must be
    those of the 15-minute tallies; a zone not kept, and bounds that are not its midnights,
    fall back to the hourly read with the same sums."""
    schema, name = new_schema(), zone.key
    start = local(zone, 2026, 10, 24, 7, 45)
    before = PostgresArchive(pg_dsn, schema=schema)
    await before.open()
    await before.ingest(traffic(seed=41, calls=600, start=start - 86_400, spacing_s=400))
    await before.close()
    kept = PostgresArchive(pg_dsn, schema=schema, day_zone=name)
    await kept.open()
    try:
        assert kept.is_open
        days_made = await kept.pool.fetchval("SELECT count(*) FROM day_tallies WHERE zone = $1", name)
        assert days_made > 0
        # After the zone is kept: more traffic, some of it on days already summed.
        await kept.ingest(traffic(seed=42, calls=900, start=start, spacing_s=700, epoch=2))
        spans: tuple[tuple[reports.By, float, float], ...] = (
            ("day", start, start + 8 * 86_400 + 1800),
            ("day", local(zone, 2026, 10, 23), local(zone, 2026, 10, 31)),  # whole days only
            ("week", start - 86_400, start + 9 * 86_400),
            ("month", start - 86_400, start + 9 * 86_400),
        )
        for by, first, last in spans:
            _, bounds = reports.bucket_bounds(first, last, by, zone)
            recount = sum_into_buckets(await kept.interval_tallies(bounds[0], bounds[-1]), bounds)
            assert whole_days(bounds, zone) is not None, by
            assert _same_sums(await kept.bucket_tallies(bounds, days_in=name), recount), (by, name)
            assert _same_sums(await kept.bucket_tallies(bounds, days_in="Asia/Tokyo"), recount), (by, name)
            one = await kept.bucket_tallies(bounds, ["sales"], ["vip"], days_in=name)
            alone = sum_into_buckets(await kept.interval_tallies(bounds[0], bounds[-1], ["sales"], ["vip"]), bounds)
            assert one and _same_sums(one, alone), (by, name)
        # Hours, not days: the promise does not hold, so the days are not used.
        _, hourly = reports.bucket_bounds(start, start + 86_400, "60m", zone)
        assert whole_days(hourly, zone) is None
        recount = sum_into_buckets(await kept.interval_tallies(hourly[0], hourly[-1]), hourly)
        assert _same_sums(await kept.bucket_tallies(hourly, days_in=name), recount)
    finally:
        await kept.close()
    assert not kept.is_open


async def test_a_zone_added_while_another_process_ingests_counts_every_batch_once(pg_dsn: str) -> None:
    """One process ingests batch after batch while another opens the same archive keeping a new
    zone: whichever way the backfill and each batch interleave, the zone's days end equal to the
    15-minute tallies."""
    schema = new_schema()
    writer = PostgresArchive(pg_dsn, schema=schema)
    await writer.open()
    start = local(BERLIN, 2026, 10, 20)
    events = traffic(seed=43, calls=2000, start=start, spacing_s=300)
    batches = [events[i : i + 150] for i in range(0, len(events), 150)]

    async def write() -> None:
        for batch in batches:
            await writer.ingest(batch)
            await asyncio.sleep(0)

    adder = PostgresArchive(pg_dsn, schema=schema, day_zone="Europe/Berlin")
    try:
        await asyncio.gather(write(), adder.open())
        _, bounds = reports.bucket_bounds(start, start + 10 * 86_400, "day", BERLIN)
        recount = sum_into_buckets(await adder.interval_tallies(bounds[0], bounds[-1]), bounds)
        assert sum(r.tally.entered for r in recount) == 2000
        assert _same_sums(await adder.bucket_tallies(bounds, days_in="Europe/Berlin"), recount)
    finally:
        await adder.close()
        await writer.close()


def test_whole_days_and_edge_reads_cover_the_range_once() -> None:
    zone = BERLIN
    for first, last in [(local(zone, 2026, 10, 24, 7, 45), local(zone, 2026, 10, 30, 13, 15))]:
        _, bounds = reports.bucket_bounds(first, last, "day", zone)
        days = whole_days(bounds, zone)
        assert days is not None and days[0] == bounds[1] and days[1] == bounds[-2]
        covered = [i for lo, hi in [days] for i in range(lo, hi)]
        for table, lo, hi in [*edge_reads(bounds[0], days[0]), *edge_reads(days[1], bounds[-1])]:
            step = 4 if table == "hour_tallies" else 1
            covered += [i for unit in range(lo, hi) for i in range(unit * step, unit * step + step)]
        assert sorted(covered) == list(range(bounds[0], bounds[-1]))
    assert edge_reads(8, 8) == []
    assert edge_reads(5, 7) == [("interval_tallies", 5, 7)]
    assert edge_reads(5, 18) == [("hour_tallies", 2, 4), ("interval_tallies", 5, 8), ("interval_tallies", 16, 18)]
    # A range within one day has no whole day.
    _, inside = reports.bucket_bounds(local(zone, 2026, 6, 1, 8), local(zone, 2026, 6, 1, 20), "day", zone)
    assert whole_days(inside, zone) is None
    # A month report over a century: the whole days are found from the bounds, not day by day.
    _, century = reports.bucket_bounds(local(zone, 2000, 1, 1), local(zone, 2100, 1, 1), "month", zone)
    assert whole_days(century, zone) == (century[0], century[-1])


@pytest.mark.parametrize("zone", [BERLIN, NEW_YORK, ZoneInfo("America/Santiago"), ZoneInfo("Asia/Kathmandu")])
def test_whole_days_are_the_days_lying_wholly_in_the_range(zone: ZoneInfo) -> None:
    """Against counting the local days one by one (Santiago skips midnight when its clocks
    go forward), for ranges with and without ragged ends, by day, week and month."""
    ranges = [
        ((2026, 9, 1, 7, 45), (2026, 9, 20, 13, 15)),
        ((2026, 3, 1), (2026, 4, 30)),
        ((2026, 10, 30, 9), (2026, 11, 2)),
    ]
    steps: tuple[reports.By, ...] = ("day", "week", "month")
    for (first, last), by in itertools.product(ranges, steps):
        _, bounds = reports.bucket_bounds(local(zone, *first), local(zone, *last), by, zone)
        days = day_bounds(bounds[0], bounds[-1] - 1, zone)
        inside = [d for d in days if d >= bounds[0]]
        inside = [d for d, following in itertools.pairwise(inside) if following <= bounds[-1]]
        expected = (inside[0], days[days.index(inside[-1]) + 1]) if inside else None
        assert whole_days(bounds, zone) == expected, (zone.key, first, last, by)


def test_day_bounds_place_each_quarter_hour_in_its_local_day() -> None:
    for zone in (BERLIN, NEW_YORK, ZoneInfo("Asia/Kathmandu")):
        first, last = int(local(zone, 2026, 10, 20) // 900), int(local(zone, 2026, 11, 5) // 900)
        days = day_bounds(first, last, zone)
        for interval in range(first, last + 1, 7):
            day = days[bucket_of(days, interval)]
            assert datetime.fromtimestamp(day * 900, zone).date() == datetime.fromtimestamp(interval * 900, zone).date()
            assert datetime.fromtimestamp(day * 900, zone).time().hour == 0
