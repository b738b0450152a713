"""The archive on PostgreSQL (asyncpg): the production choice, shared by any number of processes.

A batch is copied (COPY, binary) into a per-connection temporary staging table and moved into
`events` with INSERT … ON CONFLICT DO NOTHING RETURNING: the returned ids are the rows that
are new, and only those move the tallies, in the same transaction. A connection lost half way
(a COPY cut, a server restart) commits nothing; the batch is simply sent again.

`events` is partitioned by month of `at` (UTC); its key is (at, epoch, seq) because a unique
key on a partitioned table must include the partition key. An event's time never changes, so
the key is as unique as the id. Partitions are created on demand for the months a batch
touches; retention drops whole partitions. Schema changes are numbered migrations applied at
`open` under an advisory lock, so processes starting together apply each once.

Beside the 15-minute tallies, the same transaction keeps hourly sums and daily sums per local
day of each zone in day_zones (the settings' timezone, added at `open`): a 31-day daily report
reads about 31 rows per queue × tier whatever the call count.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import asyncpg

from tierline.queue.history import events as ev
from tierline.queue.history.archive import (
    DEFAULT_RETENTION_MONTHS,
    AgentRow,
    ArchiveNotOpen,
    TallyRow,
    event_row,
    month_start,
    retention_cutoff,
)
from tierline.queue.history.buckets import bucket_end, bucket_of, bucket_start, day_bounds, interval_bound
from tierline.queue.history.tallies import (
    AGENT_FIELDS,
    AGENT_FIELDS_V1,
    COUNT_FIELDS,
    INTERVAL_S,
    SUMMED,
    TALLY_FIELDS,
    TALLY_FIELDS_HOLD_RESUME,
    TALLY_FIELDS_V1,
    AgentTally,
    IntervalTally,
    LaneKey,
    hold_resume_lanes,
    tally,
)

# pg_advisory locks are one bigint namespace per database: these are ours ("TLHIST" + n).
MIGRATION_LOCK: Final = 0x544C48495354_01
PARTITION_LOCK: Final = 0x544C48495354_02

HOUR_INTERVALS: Final = 4  # 15-minute intervals in an hour_tallies row
APPLICATION_NAME: Final = "tierline-history"  # how its sessions show in pg_stat_activity
PARTITION_NAME: Final = re.compile(r"^events_(\d{4})_(\d{2})$")
EVENT_COLUMNS: Final = (
    "at",
    "epoch",
    "seq",
    "kind",
    "call_id",
    "callback_id",
    "caller",
    "tier",
    "queue",
    "agent",
    "body",
)


def _type(name: str) -> str:
    return "bigint" if name in COUNT_FIELDS else "double precision"


def _columns(names: Sequence[str]) -> str:
    return ", ".join(f"{n} {_type(n)} NOT NULL DEFAULT 0" for n in names)


# Numbered, applied in order, each once; never edit a shipped one: add the next number. Each
# names its tally columns literally (tallies.TALLY_FIELDS_V1, …), never TALLY_FIELDS.
MIGRATIONS: Final[tuple[tuple[int, str], ...]] = (
    (
        1,
        f"""
        CREATE TABLE events (
            at timestamptz NOT NULL, epoch bigint NOT NULL, seq bigint NOT NULL, kind text NOT NULL,
            call_id text, callback_id text, caller text, tier text, queue text, agent text,
            body jsonb NOT NULL,
            PRIMARY KEY (at, epoch, seq)
        ) PARTITION BY RANGE (at);
        CREATE INDEX events_call ON events (call_id) WHERE call_id IS NOT NULL;
        CREATE INDEX events_callback ON events (callback_id) WHERE callback_id IS NOT NULL;
        CREATE TABLE store_epochs (epoch bigint PRIMARY KEY, claimed_at timestamptz);
        CREATE TABLE interval_tallies (
            interval bigint NOT NULL, queue text NOT NULL, tier text NOT NULL, {_columns(TALLY_FIELDS_V1)},
            PRIMARY KEY (interval, queue, tier)
        );
        CREATE TABLE agent_tallies (
            interval bigint NOT NULL, agent text NOT NULL, {_columns(AGENT_FIELDS_V1)},
            PRIMARY KEY (interval, agent)
        );
        """,
    ),
    (
        # Hourly sums of the 15-minute tallies, kept in the same transaction: a 31-day daily
        # report reads a quarter of the rows (bucket_tallies). Filled from what is there.
        2,
        f"""
        CREATE TABLE hour_tallies (
            hour bigint NOT NULL, queue text NOT NULL, tier text NOT NULL, {_columns(TALLY_FIELDS_V1)},
            PRIMARY KEY (hour, queue, tier)
        );
        INSERT INTO hour_tallies (hour, queue, tier, {", ".join(TALLY_FIELDS_V1)})
        SELECT interval / {HOUR_INTERVALS}, queue, tier,
               {", ".join(f"max({f})" if f == "answer_wait_max" else f"sum({f})" for f in TALLY_FIELDS_V1)}
        FROM interval_tallies GROUP BY 1, 2, 3;
        """,
    ),
    (
        # Daily sums per local day of a zone (the one reports are cut in: the settings' timezone),
        # kept in the ingest's transaction for every zone in day_zones: a 31-day daily report
        # reads 31 rows per queue × tier. A zone is added, and its days summed from the
        # 15-minute tallies, at `open` (ensure_day_zone); days are the reports' own rule
        # (buckets.day_bounds), so they are computed in Python, not by AT TIME ZONE.
        3,
        f"""
        CREATE TABLE day_zones (zone text PRIMARY KEY, added_at timestamptz NOT NULL);
        CREATE TABLE day_tallies (
            zone text NOT NULL, day_start bigint NOT NULL, queue text NOT NULL, tier text NOT NULL,
            {_columns(TALLY_FIELDS_V1)},
            PRIMARY KEY (zone, day_start, queue, tier)
        );
        """,
    ),
    (
        # Calls that took the callback offer, and abandons a re-call took back (issue 16 items
        # 3 and 4), as the live ledger counts them, in every tally table; counted from the
        # archived events (_HOLD_RESUME_COUNTS) in the same transaction, days for each zone kept.
        4,
        "".join(
            f"ALTER TABLE {table} ADD COLUMN {_columns([f])};"
            for table in ("interval_tallies", "hour_tallies", "day_tallies")
            for f in TALLY_FIELDS_HOLD_RESUME
        ),
    ),
)

# The interval × queue × tier counts of the archived `callback_request` and `resume` events
# (migration 4). A `resume` recorded before it carried `short` takes it from the abandon it took
# back (the same rule: that abandon's wait under short_abandon_s).
_HOLD_RESUME_COUNTS: Final = f"""
    SELECT floor(extract(epoch FROM e.at) / {INTERVAL_S})::bigint, e.queue, e.tier,
        count(*) FILTER (WHERE e.kind = 'callback_request'),
        count(*) FILTER (WHERE e.kind = 'resume'),
        count(*) FILTER (WHERE e.kind = 'resume' AND coalesce((e.body ->> 'short')::boolean, (
            SELECT (a.body ->> 'short')::boolean FROM events a
            WHERE a.call_id = e.body ->> 'resumed_from' AND a.kind = 'abandon' AND a.at <= e.at
            ORDER BY a.at DESC LIMIT 1), false))
    FROM events e
    WHERE e.kind IN ('callback_request', 'resume') AND e.queue IS NOT NULL AND e.tier IS NOT NULL
    GROUP BY 1, 2, 3
"""

_STAGING: Final = "history_staging"
_CREATE_STAGING: Final = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} (LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_MOVE: Final = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) SELECT {', '.join(EVENT_COLUMNS)} FROM {_STAGING}"
    " ON CONFLICT DO NOTHING RETURNING epoch, seq"
)


def _upsert(table: str, keys: Sequence[tuple[str, str]], fields: Sequence[str], summed: Sequence[str]) -> str:
    names = [k for k, _ in keys] + list(fields)
    types = [t for _, t in keys] + [_type(f) for f in fields]
    unnest = ", ".join(f"${i}::{t}[]" for i, t in enumerate(types, start=1))
    updates = [f"{f} = {table}.{f} + excluded.{f}" for f in summed]
    updates += [f"{f} = greatest({table}.{f}, excluded.{f})" for f in fields if f not in summed]
    return (
        f"INSERT INTO {table} ({', '.join(names)}) SELECT * FROM unnest({unnest})"
        f" ON CONFLICT ({', '.join(k for k, _ in keys)}) DO UPDATE SET {', '.join(updates)}"
    )


_TALLY_UPSERT: Final = _upsert(
    "interval_tallies", (("interval", "bigint"), ("queue", "text"), ("tier", "text")), TALLY_FIELDS, SUMMED
)
_HOUR_UPSERT: Final = _upsert(
    "hour_tallies", (("hour", "bigint"), ("queue", "text"), ("tier", "text")), TALLY_FIELDS, SUMMED
)
_DAY_UPSERT: Final = _upsert(
    "day_tallies",
    (("zone", "text"), ("day_start", "bigint"), ("queue", "text"), ("tier", "text")),
    TALLY_FIELDS,
    SUMMED,
)
_SUMS: Final = ", ".join(f"max({f})" if f == "answer_wait_max" else f"sum({f})" for f in TALLY_FIELDS)
_AGENT_UPSERT: Final = _upsert("agent_tallies", (("interval", "bigint"), ("agent", "text")), AGENT_FIELDS, AGENT_FIELDS)


def hour_split(bounds: Sequence[int]) -> tuple[tuple[int, int], list[int], list[int]] | None:
    """How `bucket_tallies` reads buckets with these bounds (in 15-minute intervals): the hours
    [first, last) lying wholly in the range, those of them a bucket bound cuts, and the
    intervals read one by one instead (the range's ragged ends, the cut hours). None when a
    bucket is shorter than two hours: reading by the hour would save nothing. Pure."""
    if any(b - a < 2 * HOUR_INTERVALS for a, b in itertools.pairwise(bounds)):
        return None
    first = -(-bounds[0] // HOUR_INTERVALS)
    last = bounds[-1] // HOUR_INTERVALS
    cut = sorted({b // HOUR_INTERVALS for b in bounds[1:-1] if b % HOUR_INTERVALS})
    edges = [
        *range(bounds[0], first * HOUR_INTERVALS),
        *range(last * HOUR_INTERVALS, bounds[-1]),
        *(h * HOUR_INTERVALS + q for h in cut for q in range(HOUR_INTERVALS)),
    ]
    return (first, last), cut, edges


def whole_days(bounds: Sequence[int], zone: ZoneInfo) -> tuple[int, int] | None:
    """The local days of `zone` lying wholly in [bounds[0], bounds[-1]), as [first, last) in
    15-minute intervals, when every inner bound is one of their midnights (so each day lies in
    one bucket); else None. Pure; O(buckets), whatever the number of days (a month report may
    span centuries)."""

    def midnight_of(interval: int) -> float:  # the start of the local day holding the interval
        return bucket_start(interval * INTERVAL_S, "day", zone)

    if any(interval_bound(midnight_of(b)) != b for b in bounds[1:-1]):
        return None
    first_day = midnight_of(bounds[0])
    first = bounds[0] if interval_bound(first_day) == bounds[0] else interval_bound(bucket_end(first_day, "day", zone))
    last = interval_bound(midnight_of(bounds[-1]))
    return (first, last) if first < last else None


def edge_reads(start: int, end: int) -> list[tuple[str, int, int]]:
    """How to read [start, end) (15-minute intervals, inside one bucket): whole hours from
    hour_tallies, the quarter hours around them from interval_tallies, as (table, lo, hi) with
    lo, hi in that table's unit. Pure."""
    first, last = -(-start // HOUR_INTERVALS), end // HOUR_INTERVALS
    if first >= last:
        return [("interval_tallies", start, end)] if start < end else []
    reads = [("hour_tallies", first, last)]
    reads += [("interval_tallies", a, b) for a, b in ((start, first * HOUR_INTERVALS), (last * HOUR_INTERVALS, end))]
    return [read for read in reads if read[1] < read[2]]


def _hours(lanes: dict[LaneKey, IntervalTally]) -> dict[LaneKey, IntervalTally]:
    """The 15-minute increments of a batch summed per hour (hour_tallies' rows)."""
    out: dict[LaneKey, IntervalTally] = {}
    for (interval, queue, tier), increment in lanes.items():
        out.setdefault((interval // HOUR_INTERVALS, queue, tier), IntervalTally()).add(increment)
    return out


def _days(lanes: dict[LaneKey, IntervalTally], zone: ZoneInfo) -> dict[LaneKey, IntervalTally]:
    """The 15-minute increments of a batch summed per local day of `zone` (day_tallies' rows,
    keyed by the day's first interval)."""
    intervals = [interval for interval, _, _ in lanes]
    days = day_bounds(min(intervals), max(intervals), zone)
    out: dict[LaneKey, IntervalTally] = {}
    for (interval, queue, tier), increment in lanes.items():
        day = days[bucket_of(days, interval)]
        out.setdefault((day, queue, tier), IntervalTally()).add(increment)
    return out


def _tally_columns(keyed: Iterable[tuple[tuple[Any, ...], IntervalTally]], keys: int) -> list[list[Any]]:
    rows = [(*key, *(getattr(t, f) for f in TALLY_FIELDS)) for key, t in keyed]
    return _columns_of(rows, keys + len(TALLY_FIELDS))


async def _add_lanes(conn: asyncpg.Connection, lanes: dict[LaneKey, IntervalTally]) -> None:
    """Adds 15-minute increments to interval_tallies, hour_tallies and the days of every zone kept."""
    if not lanes:
        return
    await conn.execute(_TALLY_UPSERT, *_tally_columns(lanes.items(), 3))
    await conn.execute(_HOUR_UPSERT, *_tally_columns(_hours(lanes).items(), 3))
    # After the 15-minute upsert, never before: see _add_day_zone.
    for (zone,) in await conn.fetch("SELECT zone FROM day_zones"):
        days = _days(lanes, ZoneInfo(zone))
        keyed = (((zone, *key), t) for key, t in days.items())
        await conn.execute(_DAY_UPSERT, *_tally_columns(keyed, 4))


async def _backfill_hold_resume(conn: asyncpg.Connection) -> None:
    await _add_lanes(conn, hold_resume_lanes(await conn.fetch(_HOLD_RESUME_COUNTS)))


def partition_name(month: datetime) -> str:
    return f"events_{month.year:04d}_{month.month:02d}"


def _columns_of(rows: Iterable[tuple[Any, ...]], width: int) -> list[list[Any]]:
    columns: list[list[Any]] = [[] for _ in range(width)]
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return columns


async def _copy(conn: asyncpg.Connection, records: list[tuple[Any, ...]]) -> None:
    """COPY into the staging table, ended as soon as the connection is lost.

    asyncpg's COPY waits for the socket to take more data; when the server ends the session
    while the socket is full, nothing wakes that wait until the command timeout (asyncpg
    0.32). The connection's termination listener cancels the COPY instead.
    """
    copy = asyncio.ensure_future(conn.copy_records_to_table(_STAGING, records=records, columns=EVENT_COLUMNS))
    lost: list[object] = []

    def on_lost(connection: object) -> None:
        lost.append(connection)
        copy.cancel()

    conn.add_termination_listener(on_lost)
    try:
        await copy
    except asyncio.CancelledError:
        if lost:
            raise ConnectionError("the PostgreSQL connection was lost during COPY") from None
        raise
    finally:
        # A lost connection has left the pool's proxy already, listeners and all.
        with contextlib.suppress(asyncpg.InterfaceError):
            conn.remove_termination_listener(on_lost)


class PostgresArchive:
    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "public",
        max_connections: int = 4,
        timeout_s: float = 10.0,
        day_zone: str | None = None,
    ) -> None:
        """`day_zone`: the IANA zone whose local days this archive keeps summed (day_tallies),
        added at `open` if no process added it before; reports by day, week or month in that
        zone read those sums."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
            raise ValueError(f"a schema name is lower-case letters, digits and _, not {schema!r}")
        if day_zone is not None:
            ZoneInfo(day_zone)  # an unknown zone fails here, not at the first ingest
        self.dsn = dsn
        self.schema = schema
        self.day_zone = day_zone
        self._day_zones: frozenset[str] = frozenset()  # zones whose daily sums are complete
        self._max = max_connections
        self._timeout = timeout_s
        self._pool: asyncpg.Pool | None = None
        self._months: set[datetime] = set()  # partitions known to exist

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise ArchiveNotOpen("the PostgreSQL archive is not open")
        return self._pool

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    async def open(self) -> list[int]:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(
                self.dsn,
                min_size=1,
                max_size=self._max,
                timeout=self._timeout,
                command_timeout=self._timeout * 6,
                server_settings={"search_path": self.schema, "application_name": APPLICATION_NAME},
            )
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz)"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            applied = []
            for version, script in MIGRATIONS:
                if version not in done:
                    await conn.execute(script)
                    if version == 4:
                        await _backfill_hold_resume(conn)
                    await conn.execute("INSERT INTO schema_migrations VALUES ($1, now())", version)
                    applied.append(version)
            if self.day_zone is not None:
                await self._add_day_zone(conn, self.day_zone)
            self._day_zones = frozenset(r[0] for r in await conn.fetch("SELECT zone FROM day_zones"))
        self._months = set(await self._partitions())
        return applied

    async def _add_day_zone(self, conn: asyncpg.Connection, zone: str) -> None:
        """Sums the zone's days from the 15-minute tallies, once per archive. Ingests wait
        meanwhile (the lock conflicts with their tally upserts), and one that wrote its
        15-minute tallies before waits for nothing here but is summed in: an ingest reads
        day_zones only after its own 15-minute upsert, so every batch is in a zone's days
        exactly once, from the backfill or from its own transaction."""
        await conn.execute("LOCK TABLE interval_tallies IN SHARE ROW EXCLUSIVE MODE")
        if await conn.fetchval("SELECT 1 FROM day_zones WHERE zone = $1", zone):
            return
        lo, hi = await conn.fetchrow("SELECT min(interval), max(interval) FROM interval_tallies")
        if lo is not None:
            days = day_bounds(lo, hi, ZoneInfo(zone))
            await conn.execute(
                f"INSERT INTO day_tallies (zone, day_start, queue, tier, {', '.join(TALLY_FIELDS)})"
                f" SELECT $1, ($2::bigint[])[width_bucket(interval, $2::bigint[])], queue, tier, {_SUMS}"
                " FROM interval_tallies GROUP BY 2, 3, 4",
                zone,
                days,
            )
        await conn.execute("INSERT INTO day_zones VALUES ($1, now())", zone)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def migrations(self) -> list[int]:
        return [r["version"] for r in await self.pool.fetch("SELECT version FROM schema_migrations ORDER BY 1")]

    async def claim_epoch(self, now: float) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            # Serialises claims across processes; readers of the table are not blocked.
            await conn.execute("LOCK TABLE store_epochs IN SHARE ROW EXCLUSIVE MODE")
            epoch = ev.new_epoch(now, await conn.fetchval("SELECT max(epoch) FROM store_epochs"))
            await conn.execute("INSERT INTO store_epochs VALUES ($1, to_timestamp($2))", epoch, now)
        return epoch

    async def _partitions(self, conn: asyncpg.Connection | None = None) -> list[datetime]:
        rows = await (conn or self.pool).fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'events'::regclass"
        )
        months = []
        for row in rows:
            if match := PARTITION_NAME.match(row["relname"]):
                months.append(month_start(int(match[1]), int(match[2])))
        return sorted(months)

    async def partitions(self) -> list[str]:
        return [partition_name(m) for m in await self._partitions()]

    async def _ensure_partitions(self, conn: asyncpg.Connection, batch: Sequence[ev.Event]) -> None:
        touched = {
            datetime.fromtimestamp(e.at, UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0) for e in batch
        }
        missing = sorted(touched - self._months)
        if not missing:
            return
        # In their own transaction, before the batch's: DDL takes locks the data path should not
        # hold, and the advisory lock makes two processes touching a new month take turns.
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", PARTITION_LOCK)
            for month in missing:
                upper = month_start(month.year, month.month + 1)
                await conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {partition_name(month)} PARTITION OF events"
                    f" FOR VALUES FROM ('{month.isoformat()}') TO ('{upper.isoformat()}')"
                )
        self._months.update(missing)

    async def ingest(self, batch: Sequence[ev.Event]) -> int:
        unique = list({e.id: e for e in reversed(batch)}.values())  # first of repeated ids wins
        if not unique:
            return 0
        async with self.pool.acquire() as conn:
            try:
                await self._ensure_partitions(conn, unique)
                try:
                    return await self._ingest(conn, unique)
                except asyncpg.CheckViolationError:
                    # "no partition for row": another process's retention dropped a partition we
                    # believed in. Forget what we knew and try once more.
                    self._months = set(await self._partitions(conn))
                    await self._ensure_partitions(conn, unique)
                    return await self._ingest(conn, unique)
            except (asyncpg.PostgresConnectionError, OSError) as error:
                # Lost before the commit answered: committed or not, the same batch sent again
                # lands exactly once (ingest is idempotent), which is all a caller needs to know.
                raise ConnectionError(f"the PostgreSQL connection was lost: send the batch again ({error})") from error

    async def _ingest(self, conn: asyncpg.Connection, batch: list[ev.Event]) -> int:
        by_id = {(e.id.epoch, e.id.seq): e for e in batch}
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute(_CREATE_STAGING)
            await _copy(conn, [event_row(e, datetime.fromtimestamp(e.at, UTC)) for e in batch])
            new = [by_id[(r[0], r[1])] for r in await conn.fetch(_MOVE)]
            lanes, agents = tally(new)
            await _add_lanes(conn, lanes)
            if agents:
                rows = [(*key, *(getattr(t, f) for f in AGENT_FIELDS)) for key, t in agents.items()]
                await conn.execute(_AGENT_UPSERT, *_columns_of(rows, 2 + len(AGENT_FIELDS)))
            if new:
                await conn.execute(
                    "INSERT INTO store_epochs (epoch) SELECT unnest($1::bigint[]) ON CONFLICT DO NOTHING",
                    sorted({e.id.epoch for e in new}),
                )
        except BaseException:
            # Not `async with`: on a lost connection its exit hides the cause behind "connection
            # is closed". A lost connection has nothing to roll back; the server drops it.
            with contextlib.suppress(asyncpg.InterfaceError, asyncpg.PostgresConnectionError, OSError):
                await transaction.rollback()
            raise
        await transaction.commit()
        return len(new)

    async def interval_tallies(
        self, start: int, end: int, queues: Collection[str] | None = None, tiers: Collection[str] | None = None
    ) -> list[TallyRow]:
        rows = await self.pool.fetch(
            f"SELECT interval, queue, tier, {', '.join(TALLY_FIELDS)} FROM interval_tallies"
            " WHERE interval >= $1 AND interval < $2"
            " AND ($3::text[] IS NULL OR queue = ANY($3)) AND ($4::text[] IS NULL OR tier = ANY($4))"
            " ORDER BY interval, queue, tier",
            start,
            end,
            None if queues is None else list(queues),
            None if tiers is None else list(tiers),
        )
        return [TallyRow(interval=r[0], queue=r[1], tier=r[2], tally=IntervalTally(*r[3:])) for r in rows]

    async def bucket_tallies(
        self,
        bounds: Sequence[int],
        queues: Collection[str] | None = None,
        tiers: Collection[str] | None = None,
        days_in: str | None = None,
    ) -> list[TallyRow]:
        """Day, week and month buckets in a zone whose days are kept: whole days from
        day_tallies, a range's ragged ends by the hour and quarter hour. Other buckets of two
        hours or more: whole hours inside one bucket from hour_tallies, the rest (ragged ends,
        hours a bucket bound cuts, as in zones offset by :30) from interval_tallies by key.
        Shorter buckets: interval_tallies only. PostgreSQL sums each bucket, so only the
        buckets' rows come back."""
        if len(bounds) < 2:
            return []
        sql, args = self.bucket_query(bounds, queues, tiers, days_in)
        rows = await self.pool.fetch(sql, *args)
        # Positional: counts come back as bigint (sum of int4), seconds as double precision.
        return [TallyRow(interval=r[0], queue=r[1], tier=r[2], tally=IntervalTally(*r[3:])) for r in rows]

    def bucket_query(
        self,
        bounds: Sequence[int],
        queues: Collection[str] | None = None,
        tiers: Collection[str] | None = None,
        days_in: str | None = None,
    ) -> tuple[str, list[object]]:
        """The SQL `bucket_tallies` runs and its arguments (loadtest/bench_history.py EXPLAINs it)."""
        columns = ", ".join(TALLY_FIELDS)
        lanes = "($2::text[] IS NULL OR queue = ANY($2)) AND ($3::text[] IS NULL OR tier = ANY($3))"
        args: list[object] = []

        def arg(value: object) -> str:
            args.append(value)
            return f"${len(args) + 3}"

        days = whole_days(bounds, ZoneInfo(days_in)) if days_in in self._day_zones and days_in else None
        split = hour_split(bounds) if days is None else None
        if days is not None:
            first, last = days
            reads = [*edge_reads(bounds[0], first), *edge_reads(last, bounds[-1])]
            parts = [
                f"SELECT day_start AS at, queue, tier, {columns} FROM day_tallies"
                f" WHERE zone = {arg(days_in)} AND day_start >= {arg(first)} AND day_start < {arg(last)} AND {lanes}"
            ]
            for table, lo, hi in reads:
                key = "hour" if table == "hour_tallies" else "interval"
                at = f"hour * {HOUR_INTERVALS}" if key == "hour" else "interval"
                parts.append(
                    f"SELECT {at} AS at, queue, tier, {columns} FROM {table}"
                    f" WHERE {key} >= {arg(lo)} AND {key} < {arg(hi)} AND {lanes}"
                )
        elif split is None:
            parts = [
                f"SELECT interval AS at, queue, tier, {columns} FROM interval_tallies"
                f" WHERE interval >= {arg(bounds[0])} AND interval < {arg(bounds[-1])} AND {lanes}"
            ]
        else:
            (first, last), cut, edges = split
            parts = [
                f"SELECT hour * {HOUR_INTERVALS} AS at, queue, tier, {columns} FROM hour_tallies"
                f" WHERE hour >= {arg(first)} AND hour < {arg(last)} AND hour <> ALL({arg(cut)}::bigint[]) AND {lanes}",
                f"SELECT interval, queue, tier, {columns} FROM interval_tallies"
                f" WHERE interval = ANY({arg(edges)}::bigint[]) AND {lanes}",
            ]
        # Counts per row fit 32 bits: sum(int4) adds in bigint, sum(bigint) in numeric (slower).
        sums = ", ".join(
            f"max({f})" if f == "answer_wait_max" else (f"sum({f}::int4)" if f in COUNT_FIELDS else f"sum({f})")
            for f in TALLY_FIELDS
        )
        # width_bucket counts from 1 for [bounds[0], bounds[1]); rows outside were filtered out.
        # Ordered by code point, as Python sorts (sum_into_buckets): the database's collation
        # may order names otherwise, and comparing by it took half the query's time.
        sql = (
            f"SELECT width_bucket(at, $1::bigint[]) - 1 AS bucket, queue, tier, {sums}"
            f" FROM ({' UNION ALL '.join(parts)}) AS parts GROUP BY 1, 2, 3"
            ' ORDER BY 1, queue COLLATE "C", tier COLLATE "C"'
        )
        return sql, [
            list(bounds),
            None if queues is None else list(queues),
            None if tiers is None else list(tiers),
            *args,
        ]

    async def agent_tallies(self, start: int, end: int, agents: Collection[str] | None = None) -> list[AgentRow]:
        rows = await self.pool.fetch(
            f"SELECT interval, agent, {', '.join(AGENT_FIELDS)} FROM agent_tallies"
            " WHERE interval >= $1 AND interval < $2 AND ($3::text[] IS NULL OR agent = ANY($3))"
            " ORDER BY interval, agent",
            start,
            end,
            None if agents is None else list(agents),
        )
        return [AgentRow(interval=r[0], agent=r[1], tally=AgentTally(**{f: r[f] for f in AGENT_FIELDS})) for r in rows]

    async def call_events(self, call_id: str) -> list[ev.Event]:
        # Two index look-ups, not one OR: an OR across the two indexes scans every partition.
        async with self.pool.acquire() as conn:
            own = await conn.fetch("SELECT epoch, seq, callback_id, body::text FROM events WHERE call_id = $1", call_id)
            callbacks = sorted({r["callback_id"] for r in own if r["callback_id"] is not None})
            theirs = (
                await conn.fetch(
                    "SELECT epoch, seq, callback_id, body::text FROM events WHERE callback_id = ANY($1::text[])",
                    callbacks,
                )
                if callbacks
                else []
            )
        found = {(r[0], r[1]): ev.decode(r[3]) for r in [*own, *theirs]}
        return sorted(found.values(), key=lambda e: (e.at, e.id))

    async def events(self, start: float, end: float) -> list[ev.Event]:
        rows = await self.pool.fetch(
            "SELECT body::text FROM events WHERE at >= $1 AND at < $2 ORDER BY at, epoch, seq",
            datetime.fromtimestamp(start, UTC),
            datetime.fromtimestamp(end, UTC),
        )
        return [ev.decode(r[0]) for r in rows]

    async def count_events(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM events"))

    async def drop_expired(self, now: float, months: int = DEFAULT_RETENTION_MONTHS) -> list[str]:
        cutoff = retention_cutoff(now, months)
        dropped = []
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", PARTITION_LOCK)
            for month in await self._partitions(conn):
                if month_start(month.year, month.month + 1) <= cutoff:
                    await conn.execute(f"DROP TABLE {partition_name(month)}")
                    dropped.append(partition_name(month))
        self._months = set(await self._partitions())
        return dropped
