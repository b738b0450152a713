"""The in-process tier store: the whole caller table in one dict, replaced whole on reload.

Owns the live table and its swap. Consistency comes from the event loop and one reference:
a look-up reads `self._table` once and never awaits, and a reload builds the new table in a
worker thread, then installs it with a single assignment, so a look-up sees the old table or
the new one, never a mix and never an empty table. Values are `codec` blobs, about 150 bytes
of process memory per caller with a customer id, instead of several hundred as objects.

Single edits change the live table in place and last until the next swap; an edit made while
a reload is being parsed is replaced by the file's row (or its absence) when that reload swaps.
Each `put` is also noted in the edit list (caller -> tier) that a grading run keeps (issue 17);
a `delete` takes the caller out of it; a reload leaves it as it is; `clear_edits` empties it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Final

from tierline.tiers import codec
from tierline.tiers.codec import FieldNames
from tierline.tiers.freshness import OUTCOMES, ReloadOutcome, TierFreshness
from tierline.tiers.model import DEFAULT_TIER, TIERS, Tier, TierRecord
from tierline.tiers.parse import BadTierFile, ParsedTiers, TierFileFormat, parse_tier_file
from tierline.tiers.phone import normalise_caller
from tierline.tiers.reload import DEFAULT_MAX_REJECT_RATIO, ReloadResult, should_swap

_READ_BUFFER: Final = 1 << 20
TABLE_BATCH: Final = 16_384  # callers per batch of `table_rows`

# Where the history events of tier changes go (issue 15): kind ("tiers_reloaded",
# "tier_edited"), caller, tier, and the event's figures (queue/history/engine_events.FIGURES).
# The memory call store's `record_tier_event`, so they join its one trail in the same step.
TierEventSink = Callable[[str, str | None, str | None, tuple[object, ...]], None]


class _Table:
    """Records and the field names their blobs refer to: swapped together, as one reference."""

    __slots__ = ("fields", "records")

    def __init__(self, records: dict[str, bytes], fields: FieldNames) -> None:
        self.records = records
        self.fields = fields


class MemoryTierStore:
    """A TierStore held in this process: zero setup, lost on restart until the next reload."""

    def __init__(
        self,
        default_tier: Tier = DEFAULT_TIER,
        max_reject_ratio: float = DEFAULT_MAX_REJECT_RATIO,
        *,
        wall_clock: Callable[[], float] = time.time,
        on_event: TierEventSink | None = None,
    ) -> None:
        if not 0.0 <= max_reject_ratio <= 1.0:
            raise ValueError(f"max_reject_ratio must be between 0 and 1, not {max_reject_ratio}")
        self._default_tier: Tier = default_tier
        self._max_reject_ratio = max_reject_ratio
        self._table = _Table({}, FieldNames())
        self._version = 0
        self._wall_clock = wall_clock
        self._on_event = on_event
        self._loaded_at = 0.0
        self._reloads: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        self._last_reload_at: dict[str, float] = {}
        # One reload at a time: two parses at once would double peak memory, and their swaps
        # could land in either order.
        self._reloading = asyncio.Lock()
        self._grading: bytes | None = None
        self._edits: dict[str, Tier] = {}

    async def lookup(self, caller: str) -> TierRecord:
        table = self._table  # read once: a swap between two reads must not mix two tables
        blob = table.records.get(caller)
        if blob is None:
            return TierRecord(caller=caller, tier=self._default_tier, known=False)
        return codec.decode(caller, blob, table.fields)

    async def put(self, caller: str, tier: Tier, crm: Mapping[str, str] | None = None) -> TierRecord:
        # Idempotent on a normalised number; it keeps a key no look-up could ever hit out.
        caller = normalise_caller(caller)
        table = self._table
        blob = codec.encode_record(tier, crm or {}, table.fields)
        old = table.records.get(caller)
        table.records[caller] = blob
        self._edits[caller] = tier
        if self._on_event is not None and old != blob:
            self._on_event("tier_edited", caller, tier, ("added" if old is None else "changed", str(self._version)))
        return codec.decode(caller, blob, table.fields)

    async def delete(self, caller: str) -> bool:
        caller = normalise_caller(caller)
        removed = self._table.records.pop(caller, None)
        self._edits.pop(caller, None)
        if removed is not None and self._on_event is not None:
            self._on_event("tier_edited", caller, TIERS[removed[1]], ("removed", str(self._version)))
        return removed is not None

    async def reload_file(self, path: Path, fmt: TierFileFormat) -> ReloadResult:
        async with self._reloading:
            try:
                parsed = await asyncio.to_thread(_parse_path, path, fmt)
            except BadTierFile:
                self._count_reload("invalid")
                raise
            swapped = should_swap(parsed.loaded, parsed.rejected_count, parsed.data_rows, self._max_reject_ratio)
            self._count_reload("swapped" if swapped else "refused")
            if swapped:
                counts = await asyncio.to_thread(codec.tier_counts, parsed.records) if self._on_event else {}
                old = self._table
                self._table = _Table(parsed.records, parsed.fields)
                self._version += 1
                self._loaded_at = self._last_reload_at["swapped"]
                if self._on_event is not None:
                    self._on_event("tiers_reloaded", None, None, (str(self._version), counts))
                # Freeing a million entries takes tens of milliseconds; done here it would
                # stall every look-up for that long, in a thread it yields the GIL as it goes.
                await asyncio.to_thread(_release, old.records)
            return ReloadResult(
                version=self._version,
                loaded=parsed.loaded,
                rejected=parsed.rejected,
                rejected_count=parsed.rejected_count,
                swapped=swapped,
            )

    def _count_reload(self, outcome: ReloadOutcome) -> None:
        self._reloads[outcome] += 1
        self._last_reload_at[outcome] = self._wall_clock()

    async def version(self) -> int:
        return self._version

    async def freshness(self) -> TierFreshness:
        return TierFreshness(
            version=self._version,
            loaded_at=self._loaded_at,
            reloads=dict(self._reloads),
            last_reload_at=dict(self._last_reload_at),
        )

    async def count(self) -> int:
        return len(self._table.records)

    async def tier_table(self) -> dict[str, Tier]:
        return {caller: TIERS[blob[1]] for caller, blob in self._table.records.items()}

    async def table_rows(self) -> AsyncIterator[list[tuple[str, Tier]]]:
        # The callers are listed once (pointers, ~8 MB per million) and read TABLE_BATCH at a
        # time between awaits: an edit or a swap meanwhile must not break the iteration.
        records = self._table.records
        callers = list(records)
        for start in range(0, len(callers), TABLE_BATCH):
            yield [
                (caller, TIERS[blob[1]])
                for caller in callers[start : start + TABLE_BATCH]
                if (blob := records.get(caller)) is not None
            ]

    async def edits(self) -> dict[str, Tier]:
        return dict(self._edits)

    async def clear_edits(self) -> int:
        dropped = len(self._edits)
        self._edits = {}
        return dropped

    async def save_grading(self, report: bytes) -> None:
        self._grading = report

    async def grading(self) -> bytes | None:
        return self._grading


def _parse_path(path: Path, fmt: TierFileFormat) -> ParsedTiers:
    with path.open("rb", buffering=_READ_BUFFER) as stream:
        return parse_tier_file(stream, fmt)


def _release(records: dict[str, bytes]) -> None:
    # Item by item, not dict.clear(): one C call would hold the GIL until the last entry is freed.
    while records:
        records.popitem()
