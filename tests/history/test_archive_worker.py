"""The archive worker (queue/history/archive_worker.py): the memory store's batches committed by
a child process, into a real SQLite file and a real PostgreSQL. The child is the real one
(`python -m tierline.router.archives`), killed with -9 where a test says so: afterwards every
event is in the archive exactly once, and the store forgot nothing the archive lacks."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import msgspec
import pytest

from tests.history.tcp_proxy import free_port
from tests.history.test_archiver import POLICY, archived, drive, emitted
from tests.queue.helpers import T0
from tierline.queue.clock import ManualClock
from tierline.queue.history import events as ev
from tierline.queue.history.archive import Archive
from tierline.queue.history.archive_worker import ArchiveWorker, ArchiveWorkerError, decode_request
from tierline.queue.history.archiver import Archiver, MemorySource, adopt_epoch
from tierline.queue.history.engine_events import RawEvents
from tierline.queue.history.postgres_archive import PostgresArchive
from tierline.queue.history.sqlite_archive import SqliteArchive
from tierline.queue.memory_store import MemoryCallStore
from tierline.router.app import history_ingester
from tierline.router.archives import worker_command
from tierline.router.config import HistoryTarget, load_settings


def target_of(archive: Archive) -> HistoryTarget:
    if isinstance(archive, SqliteArchive):
        return HistoryTarget("sqlite", str(archive.path))
    assert isinstance(archive, PostgresArchive)
    return HistoryTarget("postgresql", archive.dsn, archive.schema)


@pytest.fixture
async def worker(archive: Archive) -> AsyncIterator[ArchiveWorker]:
    worker = ArchiveWorker(worker_command(target_of(archive), "UTC"))
    yield worker
    await worker.close()


async def a_day(archive: Archive, calls: int = 40) -> tuple[MemoryCallStore, ManualClock]:
    clock = ManualClock(T0)
    store = MemoryCallStore(POLICY, clock)
    assert adopt_epoch(store.events, await archive.claim_epoch(T0))
    await drive(store, clock, calls)
    return store, clock


def test_a_request_reads_back_as_the_events_either_way() -> None:
    """Pure: the raw frame and the JSON frame both decode to the events the store recorded."""
    clock = ManualClock(T0)
    store = MemoryCallStore(POLICY, clock)
    asyncio.run(drive(store, clock, 12))
    batch = store.events.drain(10_000)
    assert isinstance(batch, RawEvents) and len(batch) > 12
    encoder = msgspec.msgpack.Encoder()
    as_raw = decode_request(encoder.encode((batch.epoch, batch.raw)))
    as_json = decode_request(encoder.encode(("events", ev.EVENT_ENCODER.encode(list(batch)))))
    assert as_raw == as_json == list(batch)
    assert {ev.kind_of(e) for e in as_raw} >= {"enter", "answer", "end", "abandon", "overflow"}


async def test_the_worker_commits_exactly_what_the_store_recorded(archive: Archive, worker: ArchiveWorker) -> None:
    store, _ = await a_day(archive)
    trail = await emitted(store)
    archiver = Archiver(MemorySource(store.events), archive, batch=7, ingester=worker)
    assert await archiver.drain() == len(trail)
    assert archiver.figures.archived == len(trail)
    assert (archiver.figures.lag, archiver.figures.dropped) == (0, 0)
    assert sorted(await archived(archive), key=lambda e: e.id) == trail  # every field, as recorded
    assert worker.started == 1


async def test_a_batch_sent_twice_is_stored_once(archive: Archive, worker: ArchiveWorker) -> None:
    """What a child killed between its commit and its answer leaves: the batch comes again."""
    store, _ = await a_day(archive, 10)
    batch = store.events.drain(10_000)
    assert await worker.ingest(batch) == len(batch)
    assert await worker.ingest(batch) == 0
    assert await worker.ingest(list(batch)) == 0  # the other frame, the same ids
    assert await archive.count_events() == len(batch)


async def test_a_killed_worker_loses_nothing_and_doubles_nothing(archive: Archive, worker: ArchiveWorker) -> None:
    store, clock = await a_day(archive, 30)
    archiver = Archiver(MemorySource(store.events), archive, batch=25, ingester=worker)
    assert await archiver.step() == 25
    pid = worker.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(ArchiveWorkerError, match="stopped"):
        await archiver.step()
    await archiver.refresh()
    assert archiver.figures.lag == store.events.last_seq - 25  # the failed batch is still held
    await drive(store, clock, 5, prefix="late")  # routing goes on meanwhile
    await archiver.drain()
    assert worker.started == 2 and worker.pid != pid
    stored = await archived(archive)
    assert len(stored) == len({e.id for e in stored}) == store.events.last_seq
    assert archiver.figures.lag == 0


async def test_an_archive_the_worker_cannot_open_fails_the_batch_and_keeps_it(tmp_path: Path) -> None:
    target = HistoryTarget("sqlite", str(tmp_path / "missing-dir" / "h.db"))
    worker = ArchiveWorker(worker_command(target, "UTC"))
    clock = ManualClock(T0)
    store = MemoryCallStore(POLICY, clock)
    await drive(store, clock, 5)
    source = MemorySource(store.events)
    archiver = Archiver(source, SqliteArchive(tmp_path / "unused.db"), ingester=worker)
    with pytest.raises(ArchiveWorkerError):
        await archiver.step()
    assert (await source.counts())[0] == store.events.last_seq  # nothing acknowledged, nothing lost
    await worker.close()


def test_the_child_exits_when_the_serving_process_dies(tmp_path: Path) -> None:
    """A parent killed with -9 closes the child's stdin: the child finishes, never orphaned."""
    child = subprocess.Popen(
        [sys.executable, *worker_command(HistoryTarget("sqlite", str(tmp_path / "h.db")), "UTC")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    time.sleep(0.2)
    assert child.poll() is None  # it waits for batches
    assert child.stdin is not None
    child.stdin.close()  # what the parent's death does
    assert child.wait(timeout=30) == 0


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def test_serve_archives_through_its_worker_and_takes_it_along_when_killed(tmp_path: Path) -> None:
    """A real `tierline serve` on the memory store: its calls reach the SQLite file by way of a
    child process, and a serve killed with -9 leaves no worker behind."""
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "tierline.router.cli", "serve", "--port", str(port), "--data-dir", str(tmp_path)],
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _get(f"{base}/healthz") == 200)
        for n in range(20):
            request = urllib.request.Request(
                f"{base}/v1/calls",
                data=b'{"call_id":"w%d","caller":"+4930%06d"}' % (n, n),
                headers={"Content-Type": "application/json"},
            )
            assert urllib.request.urlopen(request, timeout=10).status == 201
        db = tmp_path / "history.sqlite3"
        wait_until(lambda: _count(db) == 20)
        (worker,) = _children(serve.pid)
        assert "tierline.router.archives" in Path(f"/proc/{worker}/cmdline").read_text()
    finally:
        serve.kill()
        serve.wait()
    wait_until(lambda: not Path(f"/proc/{worker}").exists() or "Z" in _state(worker))


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1]
    except FileNotFoundError:
        return "gone"


def _get(url: str) -> int:
    try:
        return int(urllib.request.urlopen(url, timeout=2).status)
    except OSError:
        return 0


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(db) as connection:
            return int(connection.execute("SELECT count(*) FROM events").fetchone()[0])
    except sqlite3.Error:
        return -1


def wait_until(check: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_the_memory_store_archives_through_a_worker_unless_told_not_to() -> None:
    def ingester(env: dict[str, str]) -> object:
        settings = load_settings(None, env=env)
        return history_ingester(settings, MemoryCallStore(settings, ManualClock(T0)))

    assert isinstance(ingester({}), ArchiveWorker)
    assert ingester({"TIERLINE_HISTORY_WORKER": "off"}) is None  # the archiver commits in process
    assert ingester({"TIERLINE_HISTORY": "off"}) is None
