"""The archive in one SQLite file: the default for a single process on the memory store.

The stdlib sqlite3 module, run in a worker thread (asyncio.to_thread) behind one lock: SQLite
takes one writer at a time anyway, and aiosqlite would be the same thread with a dependency
added. Commits are durable (WAL, synchronous=FULL) before `ingest` returns, because an
archiver acknowledges events to the store only after that.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

from tierline.queue.history import events as ev
from tierline.queue.history.archive import (
    DEFAULT_RETENTION_MONTHS,
    AgentRow,
    ArchiveNotOpen,
    TallyRow,
    event_row,
    retention_cutoff,
    sum_into_buckets,
)
from tierline.queue.history.tallies import (
    AGENT_FIELDS,
    AGENT_FIELDS_V1,
    COUNT_FIELDS,
    SUMMED,
    TALLY_FIELDS,
    TALLY_FIELDS_HOLD_RESUME,
    TALLY_FIELDS_V1,
    AgentTally,
    IntervalTally,
    hold_resume_lanes,
    tally,
)

T = TypeVar("T")


def _columns(names: Sequence[str]) -> str:
    return ", ".join(f"{n} {'INTEGER' if n in COUNT_FIELDS else 'REAL'} NOT NULL DEFAULT 0" for n in names)


# Numbered, applied in order, each once; never edit a shipped one: add the next number. Each
# names its tally columns literally (tallies.TALLY_FIELDS_V1, …), never TALLY_FIELDS.
MIGRATIONS: Final[tuple[tuple[int, str], ...]] = (
    (
        1,
        """
        CREATE TABLE events (
            epoch INTEGER NOT NULL, seq INTEGER NOT NULL, at REAL NOT NULL, kind TEXT NOT NULL,
            call_id TEXT, callback_id TEXT, caller TEXT, tier TEXT, queue TEXT, agent TEXT,
            body TEXT NOT NULL,
            PRIMARY KEY (epoch, seq)
        ) WITHOUT ROWID;
        CREATE INDEX events_call ON events (call_id) WHERE call_id IS NOT NULL;
        CREATE INDEX events_callback ON events (callback_id) WHERE callback_id IS NOT NULL;
        CREATE INDEX events_at ON events (at);
        CREATE TABLE store_epochs (epoch INTEGER PRIMARY KEY, claimed_at REAL);
        """
        + f"""
        CREATE TABLE interval_tallies (
            interval INTEGER NOT NULL, queue TEXT NOT NULL, tier TEXT NOT NULL,
            {_columns(TALLY_FIELDS_V1)},
            PRIMARY KEY (interval, queue, tier)
        ) WITHOUT ROWID;
        CREATE TABLE agent_tallies (
            interval INTEGER NOT NULL, agent TEXT NOT NULL,
            {_columns(AGENT_FIELDS_V1)},
            PRIMARY KEY (interval, agent)
        ) WITHOUT ROWID;
        """,
    ),
    (
        # Calls that took the callback offer, and abandons a re-call took back (issue 16 items
        # 3 and 4), as the live ledger counts them; counted from the archived events by
        # _backfill_hold_resume in the same transaction.
        2,
        "".join(f"ALTER TABLE interval_tallies ADD COLUMN {_columns([f])};" for f in TALLY_FIELDS_HOLD_RESUME),
    ),
)

# The interval × queue × tier counts of the archived `callback_request` and `resume` events. A
# `resume` recorded before it carried `short` takes it from the abandon it took back (the same
# rule: that abandon's wait under short_abandon_s). Times are after 1970, so CAST is floor.
_HOLD_RESUME_COUNTS: Final = """
    SELECT CAST(e.at / 900 AS INTEGER), e.queue, e.tier,
        sum(e.kind = 'callback_request'), sum(e.kind = 'resume'),
        sum(e.kind = 'resume' AND coalesce(json_extract(e.body, '$.short'), (
            SELECT json_extract(a.body, '$.short') FROM events a
            WHERE a.call_id = json_extract(e.body, '$.resumed_from') AND a.kind = 'abandon' AND a.at <= e.at
            ORDER BY a.at DESC LIMIT 1), 0))
    FROM events e
    WHERE e.kind IN ('callback_request', 'resume') AND e.queue IS NOT NULL AND e.tier IS NOT NULL
    GROUP BY 1, 2, 3
"""

_EVENT_COLUMNS: Final = "events (at, epoch, seq, kind, call_id, callback_id, caller, tier, queue, agent, body)"
_EVENT_INSERT: Final = f"INSERT OR IGNORE INTO {_EVENT_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_EVENT_INSERT_NEW: Final = f"INSERT INTO {_EVENT_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_TALLY_UPSERT: Final = (
    f"INSERT INTO interval_tallies (interval, queue, tier, {', '.join(TALLY_FIELDS)})"
    f" VALUES (?, ?, ?, {', '.join('?' for _ in TALLY_FIELDS)})"
    " ON CONFLICT (interval, queue, tier) DO UPDATE SET "
    + ", ".join(
        [f"{f} = {f} + excluded.{f}" for f in SUMMED]
        + ["answer_wait_max = max(answer_wait_max, excluded.answer_wait_max)"]
    )
)
_AGENT_UPSERT: Final = (
    f"INSERT INTO agent_tallies (interval, agent, {', '.join(AGENT_FIELDS)})"
    f" VALUES (?, ?, {', '.join('?' for _ in AGENT_FIELDS)})"
    " ON CONFLICT (interval, agent) DO UPDATE SET " + ", ".join(f"{f} = {f} + excluded.{f}" for f in AGENT_FIELDS)
)


def _numbers(values: Sequence[float], names: Sequence[str]) -> dict[str, Any]:
    return {name: (int(v) if name in COUNT_FIELDS else float(v)) for name, v in zip(names, values, strict=True)}


class SqliteArchive:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    @property
    def is_open(self) -> bool:
        return self._db is not None

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        async with self._lock:
            if self._db is None:
                raise ArchiveNotOpen("the SQLite archive is not open")
            return await asyncio.to_thread(work, self._db)

    async def open(self) -> list[int]:
        def connect() -> sqlite3.Connection:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            return db

        async with self._lock:
            if self._db is None:
                self._db = await asyncio.to_thread(connect)
        return await self._run(_migrate)

    async def close(self) -> None:
        async with self._lock:
            if self._db is not None:
                await asyncio.to_thread(self._db.close)
                self._db = None

    async def claim_epoch(self, now: float) -> int:
        def claim(db: sqlite3.Connection) -> int:
            with _transaction(db):
                (archived,) = db.execute("SELECT max(epoch) FROM store_epochs").fetchone()
                epoch = ev.new_epoch(now, archived)
                db.execute("INSERT INTO store_epochs (epoch, claimed_at) VALUES (?, ?)", (epoch, now))
            return epoch

        return await self._run(claim)

    async def ingest(self, batch: Sequence[ev.Event]) -> int:
        return await self._run(lambda db: _ingest(db, batch))

    async def interval_tallies(
        self, start: int, end: int, queues: Collection[str] | None = None, tiers: Collection[str] | None = None
    ) -> list[TallyRow]:
        sql = (
            f"SELECT interval, queue, tier, {', '.join(TALLY_FIELDS)} FROM interval_tallies"
            " WHERE interval >= ? AND interval < ?"
        )
        params: list[object] = [start, end]
        for column, wanted in (("queue", queues), ("tier", tiers)):
            if wanted is not None:
                sql += f" AND {column} IN ({', '.join('?' for _ in wanted)})"
                params.extend(wanted)
        rows = await self._run(lambda db: db.execute(sql + " ORDER BY interval, queue, tier", params).fetchall())
        return [
            TallyRow(interval=r[0], queue=r[1], tier=r[2], tally=IntervalTally(**_numbers(r[3:], TALLY_FIELDS)))
            for r in rows
        ]

    async def bucket_tallies(
        self,
        bounds: Sequence[int],
        queues: Collection[str] | None = None,
        tiers: Collection[str] | None = None,
        days_in: str | None = None,
    ) -> list[TallyRow]:
        # Summed here from the 15-minute rows whatever the buckets: one process's file, read in
        # a worker thread; no daily sums kept.
        if len(bounds) < 2:
            return []
        return sum_into_buckets(await self.interval_tallies(bounds[0], bounds[-1], queues, tiers), bounds)

    async def agent_tallies(self, start: int, end: int, agents: Collection[str] | None = None) -> list[AgentRow]:
        sql = (
            f"SELECT interval, agent, {', '.join(AGENT_FIELDS)} FROM agent_tallies WHERE interval >= ? AND interval < ?"
        )
        params: list[object] = [start, end]
        if agents is not None:
            sql += f" AND agent IN ({', '.join('?' for _ in agents)})"
            params.extend(agents)
        rows = await self._run(lambda db: db.execute(sql + " ORDER BY interval, agent", params).fetchall())
        return [AgentRow(interval=r[0], agent=r[1], tally=AgentTally(**_numbers(r[2:], AGENT_FIELDS))) for r in rows]

    async def call_events(self, call_id: str) -> list[ev.Event]:
        sql = (
            "SELECT body FROM events WHERE call_id = ?1 OR callback_id IN"
            " (SELECT callback_id FROM events WHERE call_id = ?1 AND callback_id IS NOT NULL)"
            " ORDER BY at, epoch, seq"
        )
        rows = await self._run(lambda db: db.execute(sql, (call_id,)).fetchall())
        return [ev.decode(body) for (body,) in rows]

    async def events(self, start: float, end: float) -> list[ev.Event]:
        sql = "SELECT body FROM events WHERE at >= ? AND at < ? ORDER BY at, epoch, seq"
        rows = await self._run(lambda db: db.execute(sql, (start, end)).fetchall())
        return [ev.decode(body) for (body,) in rows]

    async def count_events(self) -> int:
        row = await self._run(lambda db: db.execute("SELECT count(*) FROM events").fetchone())
        return int(row[0])

    async def drop_expired(self, now: float, months: int = DEFAULT_RETENTION_MONTHS) -> list[str]:
        cutoff = retention_cutoff(now, months).timestamp()

        def drop(db: sqlite3.Connection) -> list[str]:
            with _transaction(db):
                gone = db.execute(
                    "SELECT DISTINCT strftime('%Y-%m', at, 'unixepoch') FROM events WHERE at < ? ORDER BY 1", (cutoff,)
                ).fetchall()
                db.execute("DELETE FROM events WHERE at < ?", (cutoff,))
            return [month for (month,) in gone]

        return await self._run(drop)

    async def migrations(self) -> list[int]:
        rows = await self._run(lambda db: db.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall())
        return [version for (version,) in rows]


class _transaction:
    """BEGIN IMMEDIATE … COMMIT, ROLLBACK on any error: the connection is in autocommit mode."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def _backfill_hold_resume(db: sqlite3.Connection) -> None:
    lanes = hold_resume_lanes(db.execute(_HOLD_RESUME_COUNTS).fetchall())
    db.executemany(_TALLY_UPSERT, [(*key, *(getattr(t, f) for f in TALLY_FIELDS)) for key, t in lanes.items()])


# What a migration fills from the rows already there, after its script, in its transaction.
_BACKFILLS: Final[dict[int, Callable[[sqlite3.Connection], None]]] = {2: _backfill_hold_resume}


def _migrate(db: sqlite3.Connection) -> list[int]:
    with _transaction(db):
        db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
        done = {version for (version,) in db.execute("SELECT version FROM schema_migrations")}
        applied = []
        for version, script in MIGRATIONS:
            if version in done:
                continue
            # executescript would COMMIT the open transaction; run statement by statement instead.
            for statement in script.split(";"):
                if statement.strip():
                    db.execute(statement)
            if (backfill := _BACKFILLS.get(version)) is not None:
                backfill(db)
            db.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                (version, datetime.now(UTC).isoformat()),
            )
            applied.append(version)
    return applied


def _ingest(db: sqlite3.Connection, batch: Sequence[ev.Event]) -> int:
    rows = [event_row(event, event.at) for event in batch]
    with _transaction(db):
        # Optimistic: a batch is nearly always new, and one executemany of plain INSERTs costs
        # a fraction of a statement per event (the memory store archives in the serving
        # process). A batch seen before (sent again after a failure) fails on its first known
        # id and is then inserted event by event, keeping only the new ones.
        db.execute("SAVEPOINT batch")
        try:
            db.executemany(_EVENT_INSERT_NEW, rows)
            inserted: Sequence[ev.Event] = batch
        except sqlite3.IntegrityError:
            db.execute("ROLLBACK TO batch")
            inserted = [
                event for event, row in zip(batch, rows, strict=True) if db.execute(_EVENT_INSERT, row).rowcount
            ]
        db.execute("RELEASE batch")
        lanes, agents = tally(inserted)
        db.executemany(_TALLY_UPSERT, [(*key, *(getattr(t, f) for f in TALLY_FIELDS)) for key, t in lanes.items()])
        db.executemany(_AGENT_UPSERT, [(*key, *(getattr(t, f) for f in AGENT_FIELDS)) for key, t in agents.items()])
        db.executemany(
            "INSERT OR IGNORE INTO store_epochs (epoch) VALUES (?)", [(e,) for e in {x.id.epoch for x in inserted}]
        )
    return len(inserted)
