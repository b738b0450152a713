"""Session-wide real Redis servers, and a call-store factory that runs a test on every store.

A test that takes `make_call_store` runs three times: on the memory store, on a single real
Redis and on a real 3-master Redis Cluster, each store in a fresh key namespace.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from tests.support.redis_servers import RedisCluster, RedisServer
from tierline.queue.clock import Clock
from tierline.queue.memory_store import MemoryCallStore
from tierline.queue.policy import Policy
from tierline.queue.redis_link import RedisLink, connect
from tierline.queue.redis_store import RedisCallStore
from tierline.queue.store import CallStore

STORES = ("memory", "redis", "cluster")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if url := os.environ.get("REDIS_URL"):
        yield url
        return
    server = RedisServer().start()
    yield server.url
    server.cleanup()


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    if url := os.environ.get("REDIS_CLUSTER_URL"):
        yield url
        return
    cluster = RedisCluster().start()
    yield cluster.url
    cluster.cleanup()


def new_namespace() -> str:
    return "t" + uuid.uuid4().hex[:12]


StoreFactory = Callable[..., Any]


@pytest.fixture(params=STORES)
async def make_call_store(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    """`await make_call_store(policy, clock)` → a fresh CallStore of this run's kind."""
    kind: str = request.param
    links: list[RedisLink] = []
    url = "" if kind == "memory" else request.getfixturevalue("redis_url" if kind == "redis" else "redis_cluster_url")

    async def make(policy: Policy, clock: Clock) -> CallStore:
        if kind == "memory":
            return MemoryCallStore(policy, clock)
        link = RedisLink(connect(url, 1.0), timeout_s=1.0)
        links.append(link)
        store = RedisCallStore(link, policy, clock, namespace=new_namespace())
        await store.open()
        return store

    make.kind = kind  # type: ignore[attr-defined]
    yield make
    for link in links:
        await link.close()
