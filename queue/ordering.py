"""The order of the queue, as pure functions: who is ahead of whom, at a given moment.

A waiting call's place is `(class, arrived_at, seq)`, smallest first:
- class is the tier's rank (vip 0, mid 1, standard 2, blacklisted 3);
- with aging on, a standard call older than `aging_s` takes class 1 and so ranks among
  the mid calls by arrival time. Nothing else ever changes a class: VIPs stay above
  everyone, blacklisted below everyone;
- `seq` is a store-wide counter given at arrival that makes FIFO exact when two calls
  arrive in the same instant.
A requeued call keeps its key and so its place. The memory store orders by these functions
(through queue/waitlist.py); the Redis engine keeps a sorted set per queue × rank scored by
`seq` and writes the aging rule a second time (`position` and `head` in redis_engine.lua,
whose header names the tests that hold the two equal). Tier ranks are `decisions.RANK`, which
the engine receives.
"""

from __future__ import annotations

from typing import Final

import msgspec

from tierline.tiers.model import TIER_RANK, Tier

MID_RANK: Final = TIER_RANK["mid"]
STANDARD_RANK: Final = TIER_RANK["standard"]


class Place(msgspec.Struct, frozen=True, order=True, gc=False):
    """A waiting call's key inside its tier: arrival first, then the arrival counter.

    Compared field by field, like a tuple. `gc=False`: a queue of many thousand waiting calls
    would otherwise keep as many objects tracked by the cycle collector, whose full passes
    then showed up as 20–85 ms stalls in the route p99 (loadtest/gc_probe.py).
    """

    arrived_at: float
    seq: int
    call_id: str


def is_aged(tier: Tier, arrived_at: float, now: float, aging_s: float) -> bool:
    return bool(aging_s) and tier == "standard" and now - arrived_at > aging_s


def effective_rank(tier: Tier, arrived_at: float, now: float, aging_s: float) -> int:
    return MID_RANK if is_aged(tier, arrived_at, now, aging_s) else TIER_RANK[tier]


def precedence(tier: Tier, place: Place, now: float, aging_s: float) -> tuple[int, float, int]:
    """The full sort key of a waiting call at `now`; comparing two keys compares two calls."""
    return (effective_rank(tier, place.arrived_at, now, aging_s), place.arrived_at, place.seq)


def aging_cutoff(now: float, aging_s: float) -> float | None:
    """Standard calls that arrived strictly before this instant are aged; None when aging is off."""
    return now - aging_s if aging_s else None


# The order as one sorted-set score: rank in the top bits, arrival sequence below. 2**44
# sequence values per rank keep every score an exact integer below 2**53, so the double never
# rounds. No store uses it now (the Redis engine keeps one sorted set per rank, scored by seq).
SCORE_RANK_UNIT: Final = 2**44


def score(tier: Tier, seq: int) -> int:
    return TIER_RANK[tier] * SCORE_RANK_UNIT + seq
