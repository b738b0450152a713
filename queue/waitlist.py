"""One named queue's waiting calls, kept in order: add, remove, pop the best, rank, expire.

Pure in-memory data structure. One `Lane` per tier, each in arrival order, so the oldest call
of a tier is always at the front of its lane: that is what makes the overflow sweep and aging
cheap. The order across lanes is `ordering.precedence`. `n` below is the number of waiting
calls; the costs are those of `lane.Lane`: finding a call is a dict look-up and ranking it a
short walk over a small tree and two sums in C, so no place is compared unless a call
arrived out of order.
"""

from __future__ import annotations

from collections.abc import Iterator

from tierline.queue.lane import Lane
from tierline.queue.ordering import Place, aging_cutoff, precedence
from tierline.tiers.model import TIERS, Tier


class WaitList:
    def __init__(self, aging_s: float = 0.0) -> None:
        self.aging_s = aging_s
        self._lanes: dict[Tier, Lane] = {tier: Lane() for tier in TIERS}

    def __len__(self) -> int:
        """O(1)."""
        return sum(len(lane) for lane in self._lanes.values())

    def count(self, tier: Tier) -> int:
        """O(1)."""
        return len(self._lanes[tier])

    def oldest(self, tier: Tier) -> Place | None:
        """O(1)."""
        return self._lanes[tier].first()

    def add(self, tier: Tier, place: Place) -> None:
        """O(log n), amortised; a new arrival (the newest of its lane) and a requeue compare no
        places but one."""
        self._lanes[tier].add(place)

    def arrive(self, tier: Tier, place: Place, now: float) -> int:
        """`add` a new call and return its `position` at `now`. O(log n); for the newest call of
        its lane (every arrival on a steady clock) the position follows from the lane sizes,
        except for a mid call while aging is on (aged standards ahead of it need a bisect)."""
        if not self._lanes[tier].add(place):
            return self.position(tier, place, now)
        lanes = self._lanes
        if tier == "vip":
            return len(lanes["vip"])
        if tier == "mid":
            if aging_cutoff(now, self.aging_s) is not None:
                return self.position(tier, place, now)
            return len(lanes["vip"]) + len(lanes["mid"])
        ahead = len(lanes["vip"]) + len(lanes["mid"]) + len(lanes["standard"])
        if tier == "blacklisted":
            return ahead + len(lanes["blacklisted"])
        cutoff = aging_cutoff(now, self.aging_s)
        if cutoff is not None and place.arrived_at < cutoff:  # only an arrival stamped in the past
            return self.position(tier, place, now)
        return ahead  # a standard call that is not aged waits behind every mid call

    def remove(self, tier: Tier, place: Place) -> None:
        """O(log n), no comparison of places; ValueError if the call is not waiting in that lane."""
        self._lanes[tier].remove(place)

    def __contains__(self, item: tuple[Tier, Place]) -> bool:
        """O(1) for a call that took a slot."""
        tier, place = item
        return place in self._lanes[tier]

    def head(self, now: float) -> tuple[Tier, Place] | None:
        """The call that would be offered next at `now`, without taking it. O(1)."""
        lanes = self._lanes
        if (vip := lanes["vip"].first()) is not None:
            return "vip", vip
        if (mid := lanes["mid"].first()) is not None:
            return self._mid_or_aged_standard(mid, now) or ("mid", mid)
        tier: Tier
        for tier in ("standard", "blacklisted"):
            if (first := lanes[tier].first()) is not None:
                return tier, first
        return None

    def head_key(self, now: float) -> tuple[tuple[int, float, int], Tier, Place] | None:
        """The head with its precedence key, for choosing across several queues. O(1)."""
        found = self.head(now)
        if found is None:
            return None
        tier, place = found
        return precedence(tier, place, now, self.aging_s), tier, place

    def pop(self, now: float) -> tuple[Tier, Place] | None:
        """Take out the head. O(log n), plus skipping the dead slots behind it in C."""
        found = self.head(now)
        if found is not None:
            self._lanes[found[0]].remove(found[1])
        return found

    def _mid_or_aged_standard(self, mid: Place, now: float) -> tuple[Tier, Place] | None:
        # An aged standard call outranks the mid head only if it arrived earlier.
        cutoff = aging_cutoff(now, self.aging_s)
        if cutoff is None:
            return None
        std = self._lanes["standard"].first()
        if std is None or std.arrived_at >= cutoff:
            return None
        return ("standard", std) if std < mid else None

    def position(self, tier: Tier, place: Place, now: float) -> int:
        """1-based rank of a waiting call among all waiting calls of this queue at `now`.

        `Lane.rank` of the call's own lane (no comparison of places); with aging on, a mid or
        aged standard call also bisects the other lane (O(log n) comparisons of places)."""
        lanes = self._lanes
        vip, mid, std = lanes["vip"], lanes["mid"], lanes["standard"]
        if tier == "vip":
            ahead = vip.rank(place)
        elif tier == "blacklisted":
            ahead = len(vip) + len(mid) + len(std) + lanes["blacklisted"].rank(place)
        else:
            cutoff = aging_cutoff(now, self.aging_s)
            if tier == "mid":
                aged_ahead = 0
                if cutoff is not None:
                    # Aged standards (arrived before the cutoff) that also arrived before this call.
                    aged_ahead = min(std.rank(place), std.rank(Place(cutoff, -1, "")))
                ahead = len(vip) + mid.rank(place) + aged_ahead
            elif cutoff is not None and place.arrived_at < cutoff:
                ahead = len(vip) + mid.rank(place) + std.rank(place)
            else:
                ahead = len(vip) + len(mid) + std.rank(place)
        return ahead + 1

    def expire(self, tier: Tier, cutoff: float) -> Iterator[Place]:
        """Take out, oldest first, every call of `tier` that arrived at or before `cutoff`.
        O(log n) per call taken."""
        lane = self._lanes[tier]
        while (first := lane.first()) is not None and first.arrived_at <= cutoff:
            lane.remove(first)
            yield first
