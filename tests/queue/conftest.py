"""`each_store`: a module that uses it runs every test on the memory store, a real Redis and a
real 3-master Redis Cluster (each store in a fresh key namespace): one behaviour suite, three stores."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import STORES, new_namespace
from tierline.queue.clock import ManualClock
from tierline.queue.memory_store import MemoryCallStore
from tierline.queue.policy import Policy
from tierline.queue.redis_link import RedisLink, connect
from tierline.queue.redis_store import RedisCallStore
from tierline.queue.store import CallStore

from . import helpers


@pytest.fixture(params=STORES)
async def each_store(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    kind: str = request.param
    links: list[RedisLink] = []
    url = "" if kind == "memory" else request.getfixturevalue("redis_url" if kind == "redis" else "redis_cluster_url")

    def build(policy: Policy, clock: ManualClock) -> CallStore:
        if kind == "memory":
            return MemoryCallStore(policy, clock, new_id=helpers.counter_ids())
        link = RedisLink(connect(url, 2.0), timeout_s=2.0)
        links.append(link)
        return RedisCallStore(link, policy, clock, namespace=new_namespace())

    helpers.builder.append(build)
    yield kind
    helpers.builder.remove(build)
    for link in links:
        await link.close()
