"""Shared builders for the queue tests: a store on a manual clock, tier records, call ids."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from tierline.queue.clock import ManualClock
from tierline.queue.memory_store import MemoryCallStore
from tierline.queue.policy import Policy
from tierline.tiers.model import Tier, TierRecord

# 2027-01-15 08:00:00 UTC, the ManualClock's default start: a whole minute and a whole 15-minute interval.
T0 = 1_800_000_000.0


def record(caller: str, tier: Tier = "standard", **crm: str) -> TierRecord:
    return TierRecord(caller=caller, tier=tier, known=True, crm=dict(crm))


def counter_ids(prefix: str = "cb") -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"{prefix}-{next(numbers)}"


def make_store(policy: Policy | None = None, start: float = T0) -> tuple[MemoryCallStore, ManualClock]:
    clock = ManualClock(start)
    return MemoryCallStore(policy or Policy(), clock, new_id=counter_ids()), clock
