"""The archive contract both backends keep (SQLite, PostgreSQL), and the pure parts they share.

An archive stores events once each (by event id), keeps the 15-minute tallies in step with
the rows it actually inserted, and answers the reads reports need.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import Final, Protocol

import msgspec

from tierline.queue.history import events as ev
from tierline.queue.history.buckets import bucket_of
from tierline.queue.history.tallies import AgentTally, IntervalTally

DEFAULT_RETENTION_MONTHS: Final = 25


class ArchiveNotOpen(RuntimeError):
    """A read or write before `open` connected, or after `close`."""


class TallyRow(msgspec.Struct, frozen=True, kw_only=True):
    interval: int  # 15-minute intervals since the Unix epoch
    queue: str
    tier: str
    tally: IntervalTally


class AgentRow(msgspec.Struct, frozen=True, kw_only=True):
    interval: int
    agent: str
    tally: AgentTally


class Archive(Protocol):
    async def open(self) -> list[int]:
        """Connect and apply the migrations not yet applied; returns their numbers ([] when none)."""
        ...

    async def close(self) -> None: ...

    @property
    def is_open(self) -> bool:
        """Whether `open` has connected (and `close` not since): reads and writes fail otherwise.
        An archive is opened by its process's archiver at start, retried while unreachable."""
        ...

    async def claim_epoch(self, now: float) -> int:
        """An epoch no store was given before by this archive and above every archived one
        (events.new_epoch), atomically across the processes sharing the archive."""
        ...

    async def ingest(self, batch: Sequence[ev.Event]) -> int:
        """Store the events not stored yet and add them to the tallies, in one transaction.

        Idempotent on event id: returns how many rows were actually inserted (0 for a batch
        already committed). On any error nothing of the batch is committed.
        Runtime: O(len(batch)) rows written.
        """
        ...

    async def interval_tallies(
        self, start: int, end: int, queues: Collection[str] | None = None, tiers: Collection[str] | None = None
    ) -> list[TallyRow]:
        """Tallies of intervals in [start, end), optionally only these queues and tiers."""
        ...

    async def bucket_tallies(
        self,
        bounds: Sequence[int],
        queues: Collection[str] | None = None,
        tiers: Collection[str] | None = None,
        days_in: str | None = None,
    ) -> list[TallyRow]:
        """Tallies summed into buckets: bucket i holds intervals in [bounds[i], bounds[i + 1]); the
        row's `interval` is i. Where buckets lie is the caller's rule (buckets.bucket_starts); the
        archive only sums, in the database where it can. `days_in` names the zone whose local
        midnights the inner bounds are (day, week and month buckets): an archive that keeps daily
        sums for that zone may read them. Runtime: O(tally rows read)."""
        ...

    async def agent_tallies(self, start: int, end: int, agents: Collection[str] | None = None) -> list[AgentRow]: ...

    async def events(self, start: float, end: float) -> list[ev.Event]:
        """Every archived event with start <= at < end, in (at, id) order: for re-aggregation."""
        ...

    async def count_events(self) -> int: ...

    async def call_events(self, call_id: str) -> list[ev.Event]:
        """Every event of this call id (all calls that used it) and of the callbacks they created."""
        ...

    async def drop_expired(self, now: float, months: int = DEFAULT_RETENTION_MONTHS) -> list[str]:
        """Drop raw events older than the retention: whole months before `retention_cutoff`.
        Returns what was dropped (partition or month names). Tallies stay (no caller numbers)."""
        ...


def event_row(event: ev.Event, at: object) -> tuple[object, ...]:
    """An event as the row both archives store: (at, epoch, seq, kind, call_id, callback_id,
    caller, tier, queue, agent, body). `at` is given in the archive's own time type."""
    return (
        at,
        event.id.epoch,
        event.id.seq,
        ev.kind_of(event),
        event.call_id,
        event.callback_id,
        event.caller,
        event.tier,
        event.queue,
        event.agent,
        ev.encode(event).decode(),
    )


def sum_rows(keyed: Iterable[tuple[tuple[int, str, str], IntervalTally]]) -> list[TallyRow]:
    """Tallies summed per (interval or bucket, queue, tier), in key order."""
    sums: dict[tuple[int, str, str], IntervalTally] = {}
    for key, tally in keyed:
        sums.setdefault(key, IntervalTally()).add(tally)
    return [TallyRow(interval=i, queue=q, tier=t, tally=tally) for (i, q, t), tally in sorted(sums.items())]


def sum_into_buckets(rows: Iterable[TallyRow], bounds: Sequence[int]) -> list[TallyRow]:
    """The pure form of `Archive.bucket_tallies`, for archives that sum in Python."""
    placed = ((bucket_of(bounds, row.interval), row) for row in rows)
    return sum_rows(((index, row.queue, row.tier), row.tally) for index, row in placed if index >= 0)


def month_start(year: int, month: int) -> datetime:
    """Normalises month overflow either way: (2024, 13) is January 2025, (2024, 0) December 2023."""
    year, month0 = divmod(year * 12 + month - 1, 12)
    return datetime(year, month0 + 1, 1, tzinfo=UTC)


def months_between(start: float, end: float) -> list[datetime]:
    """The UTC month starts of every month [start, end] touches."""
    first = datetime.fromtimestamp(start, UTC)
    last = datetime.fromtimestamp(end, UTC)
    out = []
    index = first.year * 12 + first.month - 1
    while index <= last.year * 12 + last.month - 1:
        out.append(month_start(index // 12, index % 12 + 1))
        index += 1
    return out


def retention_cutoff(now: float, months: int = DEFAULT_RETENTION_MONTHS) -> datetime:
    """The start of the UTC month `months` months before now's: whole months before it go.

    So at least `months` full months stay, plus the current one.
    """
    if months < 1:
        raise ValueError(f"retention is at least 1 month, not {months}")
    current = datetime.fromtimestamp(now, UTC)
    return month_start(current.year, current.month - months)
