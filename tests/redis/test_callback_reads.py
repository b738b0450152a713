"""What a supervisor's read costs Redis: one page, never the backlog (issue 13, item 1).

The dashboard's poll used to run one script reading up to 10,000 callbacks, during which
Redis served nothing else. Here Redis itself counts the commands a read's script runs
(`INFO commandstats` counts commands called from scripts): a page reads exactly its own
callbacks, the cursor's place is found in O(log n) probes even among equal deadlines, and the
counts the dashboard shows touch no callback at all. The time this buys is measured by
loadtest/stress_dashboard_poll.py; tests never assert on wall time.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.conftest import new_namespace
from tests.queue.helpers import record
from tests.support.redis_servers import RedisServer
from tierline.queue.clock import ManualClock
from tierline.queue.paging import MAX_PAGE
from tierline.queue.policy import Policy, QueuePolicy
from tierline.queue.redis_link import RedisLink, connect
from tierline.queue.redis_store import RedisCallStore

BACKLOG = 1_200
PAGE = MAX_PAGE


@pytest.fixture(scope="module")
def quiet_redis() -> Iterator[RedisServer]:
    """A server of this module's own: the tests count the commands the whole server ran
    (INFO commandstats), which another test's leftover task on the session's server would
    add to (seen once: 4 engine calls where this module's reads made 2)."""
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture
async def backlog(quiet_redis: RedisServer) -> AsyncIterator[tuple[RedisCallStore, Any]]:
    """BACKLOG open callbacks with one and the same deadline: mid callers arriving at a full queue."""
    link = RedisLink(connect(quiet_redis.url, 5.0), timeout_s=5.0)
    policy = Policy(queues={"default": QueuePolicy(max_waiting=1)})
    store = RedisCallStore(link, policy, ManualClock(), namespace=new_namespace())
    await store.route("blocker", record("+1000"), "default")
    for start in range(0, BACKLOG, 100):
        await asyncio.gather(
            *(store.route(f"m{i}", record(f"+86139{i:08d}", "mid"), "default") for i in range(start, start + 100))
        )
    yield store, link.client
    await link.close()


async def calls_made(client: Any) -> dict[str, int]:
    stats = await client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


async def test_a_page_reads_only_its_own_callbacks(backlog: tuple[RedisCallStore, Any]) -> None:
    store, client = backlog
    assert (await store.callback_summary()).open == BACKLOG
    await client.config_resetstat()
    first = await store.callback_page("open", PAGE, None)
    second = await store.callback_page("open", PAGE, first.next_cursor)
    calls = await calls_made(client)
    assert len(first.callbacks) == len(second.callbacks) == PAGE
    assert calls["fcall"] == 2
    assert calls["hgetall"] == 2 * PAGE  # one read per callback listed, none for the rest
    # 1,200 equal deadlines: the cursor's place is a binary search, not a scan.
    assert calls["zrange"] <= 2 + math.ceil(math.log2(BACKLOG)) + 1
    ids = [c.callback_id for c in first.callbacks + second.callbacks]
    assert len(set(ids)) == 2 * PAGE


async def test_the_dashboard_counts_touch_no_callback(backlog: tuple[RedisCallStore, Any]) -> None:
    store, client = backlog
    await client.config_resetstat()
    summary = await store.callback_summary()
    report = await store.sla(None, "today")
    calls = await calls_made(client)
    assert summary.open == BACKLOG
    mid = next(r for r in report.rows if r.tier == "mid")
    assert (mid.callbacks_open, mid.callbacks_overdue) == (BACKLOG, 0)
    assert calls.get("zrange", 0) <= len(report.rows)  # the oldest waiting call per lane, no callback list
    # The summary's one HGETALL is the status counters; the rest are service-level tallies
    # (queue × tier × interval hashes): nothing scales with the callback backlog.
    tallies = len(report.rows) * len(report.rows[0].intervals or [])
    assert calls["hgetall"] <= 1 + tallies + len(report.rows)  # + each row's estimate-accuracy counters
    assert calls["fcall"] == 2
