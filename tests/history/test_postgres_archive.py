"""PostgreSQL only: monthly partitions made on demand and dropped by retention, and a connection
cut in the middle of a COPY that commits nothing, after which a re-send lands exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest

from tests.history.test_archive import archived_tallies, close, recount
from tests.history.traffic import traffic
from tierline.queue.history import events as ev
from tierline.queue.history.postgres_archive import APPLICATION_NAME, MIGRATIONS, PostgresArchive

NOW = datetime(2027, 3, 10, 12, 0, tzinfo=UTC).timestamp()


def at(year: int, month: int, day: int = 15) -> float:
    return datetime(year, month, day, 9, 30, tzinfo=UTC).timestamp()


def enter(seq: int, when: float) -> ev.Event:
    return ev.Enter(id=ev.EventId(7, seq), at=when, call_id=f"c{seq}", queue="q", tier="vip", position=1)


async def test_partitions_are_made_for_the_months_a_batch_touches(pg_archive: PostgresArchive) -> None:
    assert await pg_archive.partitions() == []
    # One batch across a year boundary: the months its events fall in, not the gap between them.
    await pg_archive.ingest([enter(1, at(2026, 10)), enter(2, at(2027, 1, 31)), enter(3, at(2026, 12))])
    assert await pg_archive.partitions() == ["events_2026_10", "events_2026_12", "events_2027_01"]
    # The last microsecond of January and the first of February land in their own months.
    edge = datetime(2027, 2, 1, tzinfo=UTC).timestamp()
    await pg_archive.ingest([enter(4, edge - 1e-6), enter(5, edge)])
    async with pg_archive.pool.acquire() as conn:
        placed = await conn.fetch(
            "SELECT tableoid::regclass::text AS part, seq FROM events WHERE seq >= 4 ORDER BY seq"
        )
    assert [(r["part"], r["seq"]) for r in placed] == [("events_2027_01", 4), ("events_2027_02", 5)]


async def test_retention_drops_whole_months_before_the_cutoff_and_keeps_the_tallies(
    pg_archive: PostgresArchive, pg_dsn: str
) -> None:
    months = [(2024, 1), (2024, 2), (2025, 1), (2025, 2), (2027, 3)]
    await pg_archive.ingest([enter(n, at(y, m)) for n, (y, m) in enumerate(months, start=1)])
    tallies_before = await pg_archive.interval_tallies(0, 10**9)
    # 25 months back from March 2027 is February 2025: January 2025 and older go.
    assert await pg_archive.drop_expired(NOW) == ["events_2024_01", "events_2024_02", "events_2025_01"]
    assert await pg_archive.partitions() == ["events_2025_02", "events_2027_03"]
    assert sorted(e.id.seq for e in await pg_archive.events(0, 10**10)) == [4, 5]
    assert await pg_archive.interval_tallies(0, 10**9) == tallies_before
    assert await pg_archive.drop_expired(NOW) == []
    assert await pg_archive.drop_expired(NOW, months=1) == ["events_2025_02"]
    with pytest.raises(ValueError, match="at least 1 month"):
        await pg_archive.drop_expired(NOW, months=0)
    # Another process whose retention dropped a month this one still believes in: it re-creates it.
    other = PostgresArchive(pg_dsn, schema=pg_archive.schema)
    await other.open()
    await other.ingest([enter(10, at(2025, 5))])
    assert "events_2025_05" in await other.partitions()
    await pg_archive.drop_expired(at(2027, 8), months=1)
    assert await other.ingest([enter(11, at(2025, 5)), enter(12, at(2027, 8))]) == 2
    await other.close()


async def test_processes_starting_together_claim_different_epochs_and_migrate_once(
    pg_archive: PostgresArchive, pg_dsn: str
) -> None:
    schema = pg_archive.schema + "x"
    archives = [PostgresArchive(pg_dsn, schema=schema, day_zone="Europe/Berlin") for _ in range(4)]
    applied = await asyncio.gather(*(a.open() for a in archives))
    assert sorted(applied) == [[], [], [], [version for version, _ in MIGRATIONS]]
    assert await archives[0].pool.fetchval("SELECT count(*) FROM day_zones") == 1  # the zone added once
    epochs = await asyncio.gather(*(a.claim_epoch(NOW) for a in archives for _ in range(5)))
    assert len(set(epochs)) == 20 and min(epochs) == int(NOW * 1000)
    for archive in archives:
        await archive.close()


async def _cut_the_copy(admin: asyncpg.Connection) -> int:
    """Wait until the archive's session is copying, then end that backend; its pid."""
    for _ in range(2000):
        row = await admin.fetchrow(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND query LIKE 'COPY%'",
            APPLICATION_NAME,
        )
        if row is not None:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", row["pid"])
            return int(row["pid"])
        await asyncio.sleep(0.002)
    raise AssertionError("the archive never started its COPY")


async def test_a_connection_cut_during_copy_commits_nothing_and_a_resend_lands_exactly_once(
    pg_archive: PostgresArchive, pg_dsn: str
) -> None:
    committed = traffic(seed=20, calls=50, start=NOW, spacing_s=10, epoch=1)
    await pg_archive.ingest(committed)
    big = traffic(seed=21, calls=16_000, start=NOW, spacing_s=2, epoch=2)  # ~90k events: a COPY of a while
    admin = await asyncpg.connect(pg_dsn)
    try:
        ingest = asyncio.create_task(pg_archive.ingest(big))
        await _cut_the_copy(admin)
        with pytest.raises(ConnectionError, match="connection was lost"):
            await ingest
    finally:
        await admin.close()
    assert await pg_archive.count_events() == len(committed)
    assert close((await archived_tallies(pg_archive))[0], recount(committed)[0])
    # The archiver sends the same batch again over a new connection from the pool.
    assert await pg_archive.ingest(big) == len(big)
    assert await pg_archive.ingest(big) == 0
    assert await pg_archive.count_events() == len(committed) + len(big)
    lanes, agents = await archived_tallies(pg_archive)
    expected_lanes, expected_agents = recount(committed + big)
    assert close(lanes, expected_lanes) and close(agents, expected_agents)
