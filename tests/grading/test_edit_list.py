"""The tier stores' list of hand edits (issue 17 item 2): what a grading run keeps. On the memory
store, a real Redis and a real Cluster (the edit's script writes the bucket, its outbox and its
edit list: three keys in one slot)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import new_namespace, server_url
from tierline.queue.redis_link import RedisLink, connect
from tierline.tiers.memory import MemoryTierStore
from tierline.tiers.redis_store import RedisTierStore
from tierline.tiers.store import TierStore


@pytest.fixture(params=["memory", "redis", "cluster"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[TierStore]:
    if request.param == "memory":
        yield MemoryTierStore()
        return
    link = RedisLink(connect(server_url(request, request.param), 3.0), timeout_s=3.0)
    try:
        yield RedisTierStore(link, new_namespace())
    finally:
        await link.close()


async def test_edits_are_listed_until_cleared_and_a_reload_keeps_them(store: TierStore, tmp_path: Path) -> None:
    assert await store.edits() == {}
    await store.put("+4930111", "vip")
    await store.put("+4930222", "mid")
    await store.put("+4930222", "mid")  # the same again: still one edit
    await store.put("+4930333", "standard")
    await store.delete("+4930333")  # a delete takes the caller out
    assert await store.edits() == {"+4930111": "vip", "+4930222": "mid"}

    # A reload replaces the table (the edits with it) but leaves the list for the next grading run.
    file = tmp_path / "tiers.csv"
    file.write_text("caller,tier\n+4930111,standard\n+4930444,mid\n")
    assert (await store.reload_file(file, "csv")).swapped
    assert (await store.lookup("+4930111")).tier == "standard"
    assert await store.edits() == {"+4930111": "vip", "+4930222": "mid"}
    # An edit in the new version outranks the same caller's edit in the old one, and so does a delete.
    await store.put("+4930111", "blacklisted")
    await store.delete("+4930222")
    assert await store.edits() == {"+4930111": "blacklisted"}

    assert await store.clear_edits() == 1
    assert await store.edits() == {}
    assert (await store.lookup("+4930111")).tier == "blacklisted"  # clearing the list edits no tier
    rows = [row async for batch in store.table_rows() for row in batch]
    assert sorted(rows) == [("+4930111", "blacklisted"), ("+4930444", "mid")]
