"""Shared builders for the queue tests: tier records, callback ids, the type of the `make_store` fixture."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Protocol

from tierline.queue.clock import ManualClock
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


class MakeStore(Protocol):
    """The `make_store` fixture (tests/queue/conftest.py): a fresh store of the run's kind, on a
    manual clock that starts at `start`."""

    def __call__(self, policy: Policy | None = None, start: float = T0) -> tuple[CallStore, ManualClock]: ...
