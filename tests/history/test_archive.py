"""Both archives (a real SQLite file, a real PostgreSQL): exactly-once ingest, tallies in step
with the rows actually inserted, epochs never handed out twice, migrations applied once."""

from __future__ import annotations

import itertools
import math
import uuid
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.history.conftest import new_schema
from tests.history.traffic import traffic
from tierline.queue.history import events as ev
from tierline.queue.history import reports
from tierline.queue.history.archive import Archive, sum_into_buckets
from tierline.queue.history.postgres_archive import PostgresArchive
from tierline.queue.history.sqlite_archive import SqliteArchive
from tierline.queue.history.tallies import TALLY_FIELDS_V1

T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC
ALL = (0, 10**9)


def recount(
    events: list[ev.Event],
) -> tuple[dict[tuple[int, str, str], dict[str, float]], dict[tuple[int, str], dict[str, float]]]:
    """The tallies, recounted the slow obvious way from raw events (no shared code with tallies.py)."""
    lanes: dict[tuple[int, str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    agents: dict[tuple[int, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for e in events:
        interval = math.floor(e.at / 900)
        if e.queue is not None and e.tier is not None:
            lane = lanes[(interval, e.queue, e.tier)]
            kind = ev.kind_of(e)
            if kind == "enter":
                lane["entered"] += 1
            elif isinstance(e, ev.Answer):
                lane["answered"] += 1
                lane["answered_within"] += e.wait_s <= e.threshold_s
                lane["answer_wait_sum"] += e.wait_s
                lane["answer_wait_max"] = max(lane["answer_wait_max"], e.wait_s)
            elif isinstance(e, ev.Abandon):
                lane["abandoned"] += 1
                lane["abandoned_within"] += e.wait_s <= e.threshold_s
                lane["short_abandoned"] += e.short
            elif kind == "overflow":
                lane["overflowed"] += 1
            elif isinstance(e, ev.End):
                lane["ended"] += 1
                lane["handle_sum"] += e.handle_s
            elif kind == "callback_created":
                lane["callbacks_created"] += 1
            elif isinstance(e, ev.CallbackClosed):
                lane["callbacks_completed_in_time"] += e.reason == "completed" and e.at <= e.deadline
                lane["callbacks_overdue"] += e.reason in ("completed", "unreached") and e.at > e.deadline
            elif kind == "callback_request":
                lane["callback_requested"] += 1
            elif isinstance(e, ev.Resume):
                lane["resumed"] += 1
                lane["resumed_short"] += e.short
        if e.agent is not None:
            agent = agents[(interval, e.agent)]
            if isinstance(e, ev.Answer):
                agent["answered"] += 1
            elif isinstance(e, ev.End):
                agent["ended"] += 1
                agent["handle_sum"] += e.handle_s
            elif isinstance(e, ev.CallbackClosed) and e.reason == "completed":
                agent["callbacks_completed"] += 1
    return _nonzero(lanes), _nonzero(agents)


def _nonzero(table: dict[Any, dict[str, float]]) -> dict[Any, dict[str, float]]:
    return {k: {f: v for f, v in row.items() if v} for k, row in table.items() if any(row.values())}


async def archived_tallies(
    archive: Archive, queues: list[str] | None = None
) -> tuple[dict[tuple[int, str, str], dict[str, float]], dict[tuple[int, str], dict[str, float]]]:
    lanes = {
        (r.interval, r.queue, r.tier): {f: v for f, v in _fields(r.tally).items() if v}
        for r in await archive.interval_tallies(*ALL, queues=queues)
    }
    agents = {
        (r.interval, r.agent): {f: v for f, v in _fields(r.tally).items() if v}
        for r in await archive.agent_tallies(*ALL)
    }
    return {k: v for k, v in lanes.items() if v}, {k: v for k, v in agents.items() if v}


def _fields(struct: Any) -> dict[str, float]:
    return {f: getattr(struct, f) for f in struct.__struct_fields__}


def close(a: dict[Any, dict[str, float]], b: dict[Any, dict[str, float]]) -> bool:
    return a.keys() == b.keys() and all(
        a[k].keys() == b[k].keys() and all(math.isclose(a[k][f], b[k][f], rel_tol=1e-9) for f in a[k]) for k in a
    )


async def test_the_same_batch_twice_is_stored_and_counted_once(archive: Archive) -> None:
    batch = traffic(seed=1, calls=200, start=T0, spacing_s=20)
    assert await archive.ingest(batch) == len(batch)
    lanes, agents = await archived_tallies(archive)
    assert await archive.ingest(batch) == 0
    assert await archive.count_events() == len(batch)
    assert await archived_tallies(archive) == (lanes, agents)
    assert close(lanes, recount(batch)[0]) and close(agents, recount(batch)[1])
    assert sum(v.get("entered", 0) for v in lanes.values()) == 200


async def test_a_batch_overlapping_a_committed_one_adds_only_its_new_events(archive: Archive) -> None:
    events = traffic(seed=2, calls=150, start=T0, spacing_s=30)
    first, second = events[: len(events) * 2 // 3], events[len(events) // 3 :]
    assert await archive.ingest(first) == len(first)
    assert await archive.ingest(second) == len(events) - len(first)
    assert await archive.count_events() == len(events)
    assert close((await archived_tallies(archive))[0], recount(events)[0])
    # A batch repeating an event within itself: stored once.
    extra = traffic(seed=3, calls=5, start=T0, spacing_s=30, epoch=2)
    assert await archive.ingest(extra + extra[:3]) == len(extra)


async def test_raw_events_read_back_as_they_were_sent(archive: Archive) -> None:
    events = traffic(seed=4, calls=60, start=T0, spacing_s=40)
    await archive.ingest(events)
    back = await archive.events(T0 - 1, T0 + 10**6)
    assert sorted(back, key=lambda e: e.id) == sorted(events, key=lambda e: e.id)
    assert [(e.at, e.id) for e in back] == sorted((e.at, e.id) for e in events)
    assert await archive.events(T0 + 10**6, T0 + 10**7) == []


async def test_claimed_epochs_are_never_repeated_and_stay_above_archived_ones(archive: Archive) -> None:
    first = await archive.claim_epoch(T0)
    assert first == math.floor(T0 * 1000)
    # A restart at the same millisecond, and one after the clock went back a day: both new.
    again = await archive.claim_epoch(T0)
    back = await archive.claim_epoch(T0 - 86_400)
    assert first < again < back
    # Events of an epoch the archive never handed out (a store that started without it) count too.
    stray = ev.Enter(id=ev.EventId(first + 1000, 1), at=T0, queue="q", tier="vip", position=1)
    await archive.ingest([stray])
    assert await archive.claim_epoch(T0) == first + 1001


async def test_reopening_applies_no_migration_twice_and_keeps_the_data(
    archive: Archive, tmp_path: object, pg_dsn: str
) -> None:
    await archive.ingest(traffic(seed=5, calls=10, start=T0, spacing_s=30))
    if isinstance(archive, SqliteArchive):
        again: SqliteArchive | PostgresArchive = SqliteArchive(archive.path)
    else:
        assert isinstance(archive, PostgresArchive)
        again = PostgresArchive(pg_dsn, schema=archive.schema)
    assert await again.open() == []
    assert await again.open() == []  # open twice on one object: still nothing to do
    assert await again.migrations() == ([1, 2] if isinstance(archive, SqliteArchive) else [1, 2, 3, 4])
    assert await again.count_events() == await archive.count_events() > 0
    await again.close()


def held_and_resumed(start: float, epoch: int, calls: int) -> list[ev.Event]:
    """Calls that abandon (short and not) and are taken back by a re-call, its `resume` as the
    engines recorded it before it carried `short`; and calls that took the callback offer."""
    ids = ev.IdSequence(epoch)
    out: list[ev.Event] = []
    for n in range(calls):
        at, wait = start + n * 1700.0, (2.0, 30.0)[n % 2]
        base: dict[str, Any] = {"queue": "sales", "tier": ("mid", "vip", "standard")[n % 3], "caller": f"+49305{n:04d}"}
        old, new, asked = f"old{n}", f"new{n}", f"asked{n}"
        out += [
            ev.Enter(id=ids.next(), at=at, call_id=old, position=1, **base),
            ev.Abandon(id=ids.next(), at=at + wait, call_id=old, wait_s=wait, short=wait < 5, threshold_s=20.0, **base),
            ev.Enter(id=ids.next(), at=at + wait + 40, call_id=new, position=1, **base),
            ev.Resume(id=ids.next(), at=at + wait + 40, call_id=new, resumed_from=old, position=1, **base),
            ev.Enter(id=ids.next(), at=at + 50, call_id=asked, position=2, **base),
            ev.CallbackRequest(id=ids.next(), at=at + 650, call_id=asked, wait_s=600.0, **base),
        ]
    return out


HOLD_RESUME = ("callback_requested", "resumed", "resumed_short")


async def _columns(archive: Archive, table: str) -> list[str]:
    if isinstance(archive, SqliteArchive):
        return [r[1] for r in await archive._run(lambda db: db.execute(f"PRAGMA table_info({table})").fetchall())]
    assert isinstance(archive, PostgresArchive)
    rows = await archive.pool.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2"
        " ORDER BY ordinal_position",
        archive.schema,
        table,
    )
    return [r[0] for r in rows]


async def _make_old(archive: Archive) -> None:
    """Takes the archive back to the schema before the offer and resume counts: their columns
    dropped, their migration not applied; the rows already there as the old code left them
    (the other columns count the same events the same way)."""
    tables = (
        ("interval_tallies",)
        if isinstance(archive, SqliteArchive)
        else ("interval_tallies", "hour_tallies", "day_tallies")
    )
    drops = [f"ALTER TABLE {t} DROP COLUMN {f}" for t in tables for f in HOLD_RESUME]
    if isinstance(archive, SqliteArchive):

        def old(db: Any) -> None:
            for statement in [*drops, "DELETE FROM schema_migrations WHERE version = 2"]:
                db.execute(statement)

        await archive._run(old)
    else:
        assert isinstance(archive, PostgresArchive)
        async with archive.pool.acquire() as conn, conn.transaction():
            for statement in [*drops, "DELETE FROM schema_migrations WHERE version = 4"]:
                await conn.execute(statement)
    for table in tables:
        keys = (
            ["interval"]
            if table == "interval_tallies"
            else ["hour"]
            if table == "hour_tallies"
            else ["zone", "day_start"]
        )
        assert await _columns(archive, table) == [*keys, "queue", "tier", *TALLY_FIELDS_V1]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_an_archive_made_before_the_offer_and_resume_counts_gets_them_counted_at_open(
    kind: str, tmp_path: object, pg_dsn: str
) -> None:
    zone = "Europe/Berlin"
    events = traffic(seed=8, calls=60, start=T0, spacing_s=2400) + held_and_resumed(T0 + 300, epoch=2, calls=40)
    later = held_and_resumed(T0 + 2 * 86_400, epoch=3, calls=6)
    archive: SqliteArchive | PostgresArchive
    if kind == "sqlite":
        archive = SqliteArchive(f"{tmp_path}/old.db")
    else:
        archive = PostgresArchive(pg_dsn, schema=new_schema(), day_zone=zone)
    await archive.open()
    await archive.ingest(events)
    before = {(r.interval, r.queue, r.tier): r.tally for r in await archive.interval_tallies(*ALL)}
    await _make_old(archive)
    await archive.close()

    again = (
        SqliteArchive(archive.path)
        if isinstance(archive, SqliteArchive)
        else PostgresArchive(pg_dsn, schema=archive.schema, day_zone=zone)
    )
    assert await again.open() == ([2] if kind == "sqlite" else [4])
    try:
        assert await again.count_events() == len(events)
        # A resume recorded without `short` is counted short when the abandon it took back was.
        was_short = {e.call_id: e.short for e in events if isinstance(e, ev.Abandon)}
        truth = [
            msgspec.structs.replace(e, short=was_short[e.resumed_from]) if isinstance(e, ev.Resume) else e
            for e in events
        ]
        lanes, _ = await archived_tallies(again)
        assert close(lanes, recount(truth)[0])
        totals = {f: sum(row.get(f, 0) for row in lanes.values()) for f in HOLD_RESUME}
        assert totals == {"callback_requested": 40, "resumed": 40, "resumed_short": 20}
        for key, row in lanes.items():  # the columns the old code kept are as they were
            assert all(row.get(f, 0) == getattr(before[key], f) for f in TALLY_FIELDS_V1 if key in before), key
        # New events count on top; buckets read by the hour and by the zone's days agree.
        await again.ingest(later)
        truth += later
        assert close((await archived_tallies(again))[0], recount(truth)[0])
        zone_info = ZoneInfo(zone)
        for by in ("60m", "day"):
            _, bounds = reports.bucket_bounds(T0 - 86_400, T0 + 4 * 86_400, by, zone_info)
            summed = await again.bucket_tallies(bounds, days_in=zone)
            expected = sum_into_buckets(await again.interval_tallies(bounds[0], bounds[-1]), bounds)
            # Equal but for the order floats were summed in.
            as_dicts = [{(r.interval, r.queue, r.tier): _fields(r.tally) for r in rows} for rows in (summed, expected)]
            assert close(*as_dicts), by
            assert sum(r.tally.resumed for r in summed) == 46
    finally:
        await again.close()


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(ev.KINDS),
        st.integers(0, 5 * 900),  # seconds after T0: a few intervals
        st.sampled_from(["q1", "q2"]),
        st.sampled_from(["vip", "mid"]),
        st.sampled_from([None, "a1", "a2"]),
        st.floats(0, 60),  # a wait or handle time
        st.sampled_from(["completed", "unreached", "cancelled"]),
    ),
    min_size=1,
    max_size=40,
)


def build(spec: list[tuple[Any, ...]], tag: str) -> list[ev.Event]:
    out: list[ev.Event] = []
    epoch = uuid.uuid4().int % 2**40 + 10  # a store epoch of this example's own
    for seq, (kind, offset, queue, tier, agent, figure, close_reason) in enumerate(spec, start=1):
        common: dict[str, Any] = {
            "id": ev.EventId(epoch, seq),
            "at": T0 + offset,
            "call_id": f"{tag}c{seq % 7}",
            "queue": f"{tag}{queue}",
            "tier": tier,
            "agent": None if agent is None else f"{tag}{agent}",
        }
        figures: dict[str, Any] = {
            "enter": {"position": 1},
            "answer": {"wait_s": figure, "threshold_s": 20.0},
            "abandon": {"wait_s": figure, "short": figure < 5, "threshold_s": 20.0},
            "overflow": {"wait_s": figure, "reason": "max_wait"},
            "end": {"handle_s": figure},
            "callback_created": {"reason": "max_wait", "deadline": T0 + 900},
            "callback_assigned": {"attempt": 1},
            "callback_outcome": {"outcome": "no_answer", "attempts": 1},
            "callback_closed": {"reason": close_reason, "deadline": T0 + 900},
            "callback_request": {"wait_s": figure},
            "hold_released": {"how": "handed_out"},
            "resume": {"resumed_from": f"{tag}c0", "position": 1, "short": figure < 5},
            "tiers_reloaded": {"version": "v1", "counts": {"vip": 1}},
            "tier_edited": {"edit": "added"},
        }.get(kind, {})
        out.append(ev.decode(ev.EVENT_ENCODER.encode({"kind": kind, **common, **figures})))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=EVENTS, cuts=st.lists(st.integers(0, 40), max_size=4), resend=st.lists(st.integers(0, 40), max_size=3))
async def test_tallies_equal_a_recount_of_the_raw_events_however_batches_overlap(
    archive: Archive, spec: list[tuple[Any, ...]], cuts: list[int], resend: list[int]
) -> None:
    tag = "h" + uuid.uuid4().hex[:8]  # one archive per test: each example in lanes of its own
    events = build(spec, tag)
    bounds = sorted({0, len(events), *(min(c, len(events)) for c in cuts)})
    batches = [events[a:b] for a, b in itertools.pairwise(bounds)]
    # Re-send some batches (a crash before the acknowledgement) and a slice crossing two.
    batches += [batches[i % len(batches)] for i in resend] + [events[len(events) // 3 : 2 * len(events) // 3]]
    inserted = sum([await archive.ingest(batch) for batch in batches])
    assert inserted == len(events)
    lanes, agents = await archived_tallies(archive, queues=[f"{tag}q1", f"{tag}q2"])
    raw = [e for e in await archive.events(T0, T0 + 6 * 900) if (e.queue or "").startswith(tag)]
    assert len(raw) == len(events)
    expected_lanes, expected_agents = recount(raw)
    assert close(lanes, expected_lanes)
    assert close({k: v for k, v in agents.items() if k[1].startswith(tag)}, expected_agents)
