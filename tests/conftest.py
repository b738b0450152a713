"""Session-wide real Redis servers, and the call store under test as a fixture parameter.

A test that takes `make_call_store` (or a fixture built on it, such as tests/queue's
`make_store`) runs three times, with ids [memory], [redis] and [cluster]: on the memory store,
on a single real Redis and on a real 3-master Redis Cluster, each store in a fresh key namespace.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from tests.support.redis_servers import RedisCluster, RedisServer
from tierline.queue.clock import Clock
from tierline.queue.memory_store import MemoryCallStore
from tierline.queue.policy import Policy
from tierline.queue.redis_link import RedisLink, connect
from tierline.queue.redis_store import RedisCallStore
from tierline.queue.store import CallStore


@pytest.fixture(scope="session", autouse=True)
def history_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`tierline serve` processes the tests start keep their default SQLite history here, not
    in the working tree (they inherit this environment)."""
    path = str(tmp_path_factory.mktemp("tierline-data"))
    before = os.environ.get("TIERLINE_DATA_DIR")
    os.environ["TIERLINE_DATA_DIR"] = path
    yield path
    if before is None:
        os.environ.pop("TIERLINE_DATA_DIR", None)
    else:
        os.environ["TIERLINE_DATA_DIR"] = before


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


def server_url(request: pytest.FixtureRequest, kind: str) -> str:
    """The session's real server for `kind` ("redis" or "cluster"), started on first use only,
    so a run that selects only [memory] tests starts no Redis."""
    return str(request.getfixturevalue("redis_url" if kind == "redis" else "redis_cluster_url"))


@pytest.fixture(params=["memory", "redis", "cluster"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Which call store this run of the test is on."""
    return str(request.param)


class CallStoreFactory:
    """Fresh call stores of one kind on the clock a test gives; each Redis store in its own namespace."""

    def __init__(self, kind: str, url: str, timeout_s: float = 2.0) -> None:
        self.kind = kind
        self._url = url
        self._timeout_s = timeout_s
        self._links: list[RedisLink] = []

    def build(self, policy: Policy, clock: Clock, new_id: Callable[[], str] | None = None) -> CallStore:
        """A store as constructed; a Redis one not yet `open`ed. `new_id` names the memory store's callbacks."""
        if self.kind == "memory":
            return MemoryCallStore(policy, clock, new_id=new_id)
        link = RedisLink(connect(self._url, self._timeout_s), timeout_s=self._timeout_s)
        self._links.append(link)
        return RedisCallStore(link, policy, clock, namespace=new_namespace())

    async def __call__(self, policy: Policy, clock: Clock) -> CallStore:
        """A store as a router opens it."""
        store = self.build(policy, clock)
        if isinstance(store, RedisCallStore):
            await store.open()
        return store

    async def close(self) -> None:
        while self._links:
            await self._links.pop().close()


@pytest.fixture
async def make_call_store(request: pytest.FixtureRequest, store_kind: str) -> AsyncIterator[CallStoreFactory]:
    """`await make_call_store(policy, clock)` → a fresh, opened CallStore of this run's kind."""
    url = "" if store_kind == "memory" else server_url(request, store_kind)
    factory = CallStoreFactory(store_kind, url)
    yield factory
    await factory.close()
