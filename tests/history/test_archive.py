"""Both archives (a real SQLite file, a real PostgreSQL): exactly-once ingest, tallies in step
with the rows actually inserted, epochs never handed out twice, migrations applied once."""

from __future__ import annotations

import itertools
import math
import uuid
from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.history.traffic import traffic
from tierline.queue.history import events as ev
from tierline.queue.history.archive import Archive
from tierline.queue.history.postgres_archive import PostgresArchive
from tierline.queue.history.sqlite_archive import SqliteArchive

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
    assert await again.migrations() == ([1] if isinstance(archive, SqliteArchive) else [1, 2, 3])
    assert await again.count_events() == await archive.count_events() > 0
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
            "resume": {"resumed_from": f"{tag}c0", "position": 1},
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
