"""Issue 15 item 6's faults, with real parts: an archiver process killed with SIGKILL in the
middle of a batch, the PostgreSQL connection cut in the middle of a COPY, and PostgreSQL
unreachable for a while (a proxy in front of it stopped) while calls go on. Afterwards every
event the engine emitted is in the archive exactly once, counted by id against the engine's own
counters, and the tallies moved once per event."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from tests.conftest import new_namespace
from tests.history.conftest import new_schema
from tests.history.tcp_proxy import TcpProxy
from tests.history.test_archiver import POLICY, drive
from tests.queue.helpers import T0
from tierline.queue.clock import ManualClock
from tierline.queue.history import events as ev
from tierline.queue.history.archive import Archive
from tierline.queue.history.archiver import Archiver, MemorySource, adopt_epoch
from tierline.queue.history.archiver_redis import RedisStreamSource
from tierline.queue.history.postgres_archive import APPLICATION_NAME, PostgresArchive
from tierline.queue.history.tallies import interval_of
from tierline.queue.memory_store import MemoryCallStore
from tierline.queue.redis_keys import EVENT_GROUP
from tierline.queue.redis_link import RedisLink, connect
from tierline.queue.redis_store import RedisCallStore
from tierline.queue.store import CallStore

CLI = [sys.executable, "-m", "tierline.router.cli"]


async def assert_exactly_once(archive: Archive, store: CallStore, emitted: int) -> None:
    """Every id once, as many as the engine emitted; each kind as often as the engine counted
    its change; the tallies moved once per event."""
    stored = await archive.events(0, 4e9)
    ids = [e.id for e in stored]
    assert len(ids) == len(set(ids)) == emitted == await archive.count_events()
    kinds = Counter(ev.kind_of(e) for e in stored)
    rows = (await store.metrics()).rows
    for kind, counter in (("enter", "arrived"), ("answer", "answered"), ("abandon", "abandoned")):
        assert kinds[kind] == sum(getattr(row, counter) for row in rows), kind
    assert kinds["overflow"] == sum(row.overflowed for row in rows)
    tallies = await archive.interval_tallies(interval_of(0), interval_of(4e9))
    assert sum(t.tally.answered for t in tallies) == kinds["answer"]
    assert sum(t.tally.entered for t in tallies) == kinds["enter"]


async def stream_added(link: RedisLink, key: str) -> int:
    return int((await link.client.xinfo_stream(key))["entries-added"])


async def test_an_archiver_killed_mid_batch_loses_nothing_and_doubles_nothing(
    redis_url: str, pg_dsn: str, tmp_path: Path
) -> None:
    namespace = new_namespace()
    link = RedisLink(connect(redis_url, 2.0), timeout_s=2.0)
    store = RedisCallStore(link, POLICY, ManualClock(T0), namespace)
    await store.open()
    clock = store.clock
    assert isinstance(clock, ManualClock)
    await drive(store, clock, 300)
    key = store._events_key
    emitted = await stream_added(link, key)
    config = tmp_path / "archive.toml"
    config.write_text(f'[server]\nredis_namespace = "{namespace}"\nhistory_batch = 40\nhistory_claim_idle_s = 0.3\n')
    schema = new_schema()
    command = [*CLI, "archive", "--config", str(config), "--store", redis_url, "--history", f"{pg_dsn}?schema={schema}"]
    archive = PostgresArchive(pg_dsn, schema=schema)
    await archive.open()
    try:
        killed_mid_batch, attempts = False, 0
        while not killed_mid_batch and attempts < 5:  # a kill can land between an ack and the next read
            attempts += 1
            before = await archive.count_events()
            proc = await asyncio.create_subprocess_exec(
                *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
            )
            try:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    # Past its first commit, and holding a batch it has not acknowledged.
                    if (
                        await archive.count_events() > before
                        and (await link.client.xpending(key, EVENT_GROUP))["pending"]
                    ):
                        break
                    await asyncio.sleep(0.002)
            finally:
                proc.kill()  # SIGKILL: no handler, no last batch
                await proc.wait()
            pending = await link.client.xpending(key, EVENT_GROUP)
            orphaned = int(pending["pending"])
            killed_mid_batch = orphaned > 0 and await archive.count_events() < emitted
        assert killed_mid_batch, "the archiver was never caught holding an unacknowledged batch"
        await asyncio.sleep(0.4)  # the dead consumer's batch is idle past history_claim_idle_s
        # Calls go on meanwhile; then another archiver of the group takes over.
        await drive(store, clock, 30, prefix="after")
        survivor = Archiver(RedisStreamSource(link, namespace, claim_idle_s=0.3), archive, batch=40)
        await survivor.drain()
        # The dead one's batch went again (whether its commit had landed or not: either way once).
        assert survivor.figures.sent >= orphaned
        assert (await link.client.xpending(key, EVENT_GROUP))["pending"] == 0
        await assert_exactly_once(archive, store, await stream_added(link, key))
        assert await link.client.xlen(key) == 0  # all acknowledged, all trimmed
    finally:
        await archive.close()
        await link.close()


async def _cut_the_copy(admin: asyncpg.Connection) -> None:
    for _ in range(5000):
        row = await admin.fetchrow(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND query LIKE 'COPY%'",
            APPLICATION_NAME,
        )
        if row is not None:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", row["pid"])
            return
        await asyncio.sleep(0.002)
    raise AssertionError("the archiver never started its COPY")


async def test_a_connection_cut_mid_copy_is_retried_and_lands_once(pg_archive: PostgresArchive, pg_dsn: str) -> None:
    clock = ManualClock(T0)
    store = MemoryCallStore(POLICY, clock)
    adopt_epoch(store.events, await pg_archive.claim_epoch(T0))
    admin = await asyncpg.connect(pg_dsn)
    archiver = Archiver(MemorySource(store.events), pg_archive, batch=100_000)
    try:
        for attempt in range(3):  # a cut that lands just after the commit cuts nothing: again
            await drive(store, clock, 2500, prefix=f"a{attempt}-")  # one batch of ~6k events: a COPY of a while
            stop = asyncio.Event()
            task = asyncio.create_task(archiver.run(stop))
            try:
                await _cut_the_copy(admin)
                for _ in range(1000):
                    if archiver.figures.sent == store.events.last_seq:
                        break
                    await asyncio.sleep(0.02)
            finally:
                stop.set()
                await task
            if archiver.figures.failures:
                break
    finally:
        await admin.close()
    assert archiver.figures.failures >= 1 and archiver.figures.sent == store.events.last_seq
    await assert_exactly_once(pg_archive, store, store.events.last_seq)


async def test_postgres_away_for_a_while_as_calls_go_on(redis_url: str, pg_dsn: str, pg_admin_dsn: str) -> None:
    target = urlsplit(pg_admin_dsn)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    through_proxy = pg_dsn.replace(f"{target.hostname}:{target.port or 5432}", f"127.0.0.1:{proxy.port}")
    assert through_proxy != pg_dsn
    archive = PostgresArchive(through_proxy, schema=new_schema(), timeout_s=2.0)
    await archive.open()
    link = RedisLink(connect(redis_url, 2.0), timeout_s=2.0)
    archiver_link = RedisLink(connect(redis_url, 2.0), timeout_s=2.0)
    namespace = new_namespace()
    store = RedisCallStore(link, POLICY, ManualClock(T0), namespace)
    await store.open(epoch_floor=await archive.claim_epoch(T0))
    clock = store.clock
    assert isinstance(clock, ManualClock)
    archiver = Archiver(RedisStreamSource(archiver_link, namespace), archive, batch=50, idle_s=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(archiver.run(stop))
    try:
        await drive(store, clock, 40)
        await proxy.stop()  # PostgreSQL unreachable: open connections cut, new ones refused
        outage_started = time.monotonic()
        await drive(store, clock, 120, prefix="during")  # routing does not wait for history
        await asyncio.sleep(max(0.0, 1.5 - (time.monotonic() - outage_started)))
        assert archiver.figures.failures >= 1 and archiver.figures.lag > 0  # the lag shows while it lasts
        await proxy.start()
        await drive(store, clock, 20, prefix="back")
        emitted = await stream_added(link, store._events_key)
        for _ in range(600):
            if archiver.figures.lag == 0 and archiver.figures.sent >= emitted:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
        await proxy.stop()
    try:
        assert archiver.figures.dropped == 0
        check = PostgresArchive(pg_dsn, schema=archive.schema)
        await check.open()
        try:
            await assert_exactly_once(check, store, emitted)
        finally:
            await check.close()
    finally:
        await archive.close()
        await archiver_link.close()
        await link.close()
