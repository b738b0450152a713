"""`make_store`: a test that takes it runs on the memory store, a real Redis and a real 3-master
Redis Cluster (ids [memory], [redis], [cluster]; each store in a fresh key namespace): one
behaviour suite, three stores."""

from __future__ import annotations

import pytest

from tests.conftest import CallStoreFactory
from tierline.queue.clock import ManualClock
from tierline.queue.policy import Policy
from tierline.queue.store import CallStore

from . import helpers


@pytest.fixture
def make_store(make_call_store: CallStoreFactory) -> helpers.MakeStore:
    def make(policy: Policy | None = None, start: float = helpers.T0) -> tuple[CallStore, ManualClock]:
        clock = ManualClock(start)
        return make_call_store.build(policy or Policy(), clock, new_id=helpers.counter_ids()), clock

    return make
