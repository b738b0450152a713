"""The archiver: moves events from a store to the archive in batches, acknowledging each batch
to the store only once the archive has committed it.

A store is reached through an `EventSource` (the memory store's buffer here; the Redis stream's
consumer group in archiver_redis.py). The loop is the same for both:

    fetch a batch → archive.ingest(batch) → source.ack(batch)

A failure anywhere before the ack leaves the batch unacknowledged, so it is fetched again; the
archive's ingest is idempotent on event id, so a batch committed but not acknowledged (a process
killed between the two) is stored once however often it is sent. Routing never waits for any
of this: the store keeps recording into its own bounded buffer or stream while the archive is
away, and the archiver catches up when it is back.

The figures (`ArchiverFigures`) feed /metrics and /readyz: events archived and the last commit
(this process's), events held in the store and not yet archived (lag), and events the store
dropped unarchived past its cap (store-wide).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from tierline.queue.history import events as ev
from tierline.queue.history.archive import Archive
from tierline.queue.history.engine_events import EventBuffer, RawEvents

log = logging.getLogger("tierline.history")

# Events per ingest: enough that a transaction's fixed cost is small (BENCHMARKS.md's ingest
# rate is at 5,000), few enough that a batch sent again after a failure costs little.
DEFAULT_BATCH: Final = 2000
IDLE_S: Final = 0.5  # the pause when a fetch found less than a batch: history is minutes-fresh, not live
RETRY_FIRST_S: Final = 0.5
RETRY_MAX_S: Final = 10.0


@dataclass
class Batch:
    """Events fetched from a source; `token` is what the source needs to acknowledge them
    (stream entry ids for Redis, nothing for the memory buffer)."""

    events: Sequence[ev.Event]
    token: object = None


class Ingester(Protocol):
    """What commits a batch: the archive itself, or a worker process writing to it
    (archive_worker.ArchiveWorker)."""

    async def ingest(self, batch: Sequence[ev.Event]) -> int: ...

    async def close(self) -> None: ...


class EventSource(Protocol):
    async def start(self) -> None:
        """Prepare to read (e.g. create the consumer group). Safe to call again after a failure."""
        ...

    async def fetch(self, limit: int) -> Batch:
        """Up to `limit` events not yet acknowledged, oldest first; the same ones again after a
        fetch whose batch was never acknowledged (the memory buffer), or each to one consumer
        (a consumer group)."""
        ...

    async def ack(self, batch: Batch) -> None:
        """The batch is committed: the store may forget it."""
        ...

    async def close(self) -> None:
        """Release what the source opened (its own connection, if any)."""
        ...

    async def counts(self) -> tuple[int, int]:
        """(lag, dropped): events held by the store and not archived yet, and events the store
        dropped unarchived since it started (store-wide for a shared store)."""
        ...


def next_retry(previous_s: float | None) -> float:
    """The pause after a failed step: doubling from RETRY_FIRST_S to RETRY_MAX_S. Pure."""
    return RETRY_FIRST_S if previous_s is None else min(RETRY_MAX_S, previous_s * 2)


class MemorySource:
    """The memory store's event buffer. A drained batch is held here until acknowledged, so a
    failed ingest sends the same events again rather than losing them; meanwhile the buffer
    keeps its own cap (what it pushes out is counted in `EventBuffer.dropped`). Batches stay in
    the engine's raw form (`RawEvents`): an archive worker sends them on without building them."""

    def __init__(self, buffer: EventBuffer) -> None:
        self.buffer = buffer
        self._held = RawEvents(buffer.epoch, [])

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def fetch(self, limit: int) -> Batch:
        if not self._held:
            self._held = self.buffer.drain(limit)
        return Batch(self._held)

    async def ack(self, batch: Batch) -> None:
        # A batch is always a prefix of what is held, and seqs increase within it.
        events = batch.events
        if not events:
            return
        last = events.last_seq if isinstance(events, RawEvents) else max(e.id.seq for e in events)
        held = self._held
        self._held = RawEvents(held.epoch, [r for r in held.raw if r[0] > last])

    async def counts(self) -> tuple[int, int]:
        return len(self.buffer) + len(self._held), self.buffer.dropped


def adopt_epoch(buffer: EventBuffer, epoch: int) -> bool:
    """Give a memory store's buffer the epoch its archive claimed, if it has emitted nothing yet
    (ids already handed out keep theirs: renumbering them would break "increasing")."""
    if buffer.last_seq:
        return False
    buffer.epoch = epoch
    return True


@dataclass
class ArchiverFigures:
    """What /metrics and /readyz show of the archiver; `lag` and `dropped` as last read."""

    archived: int = 0  # events this process inserted (a re-sent batch adds none)
    sent: int = 0  # events this process handed to ingest and saw committed, repeats included
    last_commit_at: float | None = None  # wall time of the last committed batch
    lag: int = 0
    dropped: int = 0
    failures: int = 0
    last_error: str | None = None
    batches: int = 0


class Archiver:
    """One archiver loop over one source and one archive."""

    def __init__(
        self,
        source: EventSource,
        archive: Archive,
        *,
        batch: int = DEFAULT_BATCH,
        idle_s: float = IDLE_S,
        wall: Callable[[], float] = time.time,
        ingester: Ingester | None = None,
    ) -> None:
        """`ingester` commits batches in the archive's place (a worker process); the archive
        itself is still what the archiver opens, claims epochs from and closes."""
        if batch < 1:
            raise ValueError(f"a batch is at least 1 event, not {batch}")
        self.source = source
        self.archive = archive
        self.ingester: Ingester = ingester if ingester is not None else archive
        self.batch = batch
        self.idle_s = idle_s
        self.figures = ArchiverFigures()
        self._wall = wall
        self._started = False

    async def step(self) -> int:
        """One batch: fetch, commit, acknowledge. Returns how many events it carried (0: none waiting).

        Raises whatever the source or the archive raised; nothing is acknowledged then.
        """
        if not self._started:
            await self.source.start()
            self._started = True
        batch = await self.source.fetch(self.batch)
        if batch.events:
            inserted = await self.ingester.ingest(batch.events)
            await self.source.ack(batch)
            figures = self.figures
            figures.archived += inserted
            figures.sent += len(batch.events)
            figures.batches += 1
            figures.last_commit_at = self._wall()
        return len(batch.events)

    async def refresh(self) -> None:
        """Read the source's lag and drop count into the figures."""
        self.figures.lag, self.figures.dropped = await self.source.counts()

    async def drain(self, until_empty: bool = True) -> int:
        """Steps until a fetch comes back short of a batch (the backlog is archived); for the
        `archive --once` command and tests. Returns the events carried."""
        total = 0
        while True:
            carried = await self.step()
            total += carried
            if carried < self.batch or not until_empty:
                await self.refresh()
                return total

    async def close(self) -> None:
        await self.source.close()
        if self.ingester is not self.archive:
            await self.ingester.close()
        await self.archive.close()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Archive until cancelled (or `stop` is set): full batches back to back, a pause
        when caught up, a growing pause after failures (logged once per outage)."""
        retry: float | None = None
        while stop is None or not stop.is_set():
            try:
                carried = await self.step()
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # an archive or store outage: the events wait in the store
                self._started = False
                self.figures.failures += 1
                self.figures.last_error = f"{type(error).__name__}: {error}"
                with contextlib.suppress(Exception):  # the store may be up while the archive is not
                    await self.refresh()
                if retry is None:
                    log.warning("archiving failed, retrying: %s", self.figures.last_error)
                retry = next_retry(retry)
                await _pause(retry, stop)
                continue
            if retry is not None:
                log.info("archiving resumed after %d failure(s)", self.figures.failures)
                retry = None
                self.figures.last_error = None
            if carried < self.batch:
                await _pause(self.idle_s, stop)


async def _pause(seconds: float, stop: asyncio.Event | None) -> None:
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
