"""Shared builders for the queue tests: a store (memory, Redis or Cluster) on a manual clock, tier records."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from tierline.queue.clock import ManualClock
from tierline.queue.memory_store import MemoryCallStore
from tierline.queue.policy import Policy
from tierline.queue.store import CallStore
from tierline.tiers.model import Tier, TierRecord

# 2027-01-15 08:00:00 UTC, the ManualClock's default start: a whole minute and a whole 15-minute interval.
T0 = 1_800_000_000.0


def record(caller: str, tier: Tier = "standard", **crm: str) -> TierRecord:
    return TierRecord(caller=caller, tier=tier, known=True, crm=dict(crm))


def counter_ids(prefix: str = "cb") -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"{prefix}-{next(numbers)}"


# Which store `make_store` builds: the `each_store` fixture (tests/queue/conftest.py) sets it
# for the modules that run on every store; the default builds memory stores.
StoreBuilder = Callable[[Policy, ManualClock], CallStore]
builder: list[StoreBuilder] = []


def make_store(policy: Policy | None = None, start: float = T0) -> tuple[CallStore, ManualClock]:
    clock = ManualClock(start)
    if builder:
        return builder[-1](policy or Policy(), clock), clock
    return MemoryCallStore(policy or Policy(), clock, new_id=counter_ids()), clock
