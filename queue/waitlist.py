"""One named queue's waiting calls, kept in order: add, remove, pop the best, rank, expire.

Pure in-memory data structure (sortedcontainers); every operation is O(log n) in the number
of waiting calls. One sorted lane per tier, each in arrival order, so the oldest call of a
tier is always at the front of its lane: that is what makes the overflow sweep and aging
cheap. The order across lanes is `ordering.precedence`.
"""

from __future__ import annotations

from collections.abc import Iterator

from sortedcontainers import SortedList

from tierline.queue.ordering import Place, aging_cutoff, precedence
from tierline.tiers.model import TIERS, Tier


class WaitList:
    def __init__(self, aging_s: float = 0.0) -> None:
        self.aging_s = aging_s
        self._lanes: dict[Tier, SortedList] = {tier: SortedList() for tier in TIERS}

    def __len__(self) -> int:
        return sum(len(lane) for lane in self._lanes.values())

    def count(self, tier: Tier) -> int:
        return len(self._lanes[tier])

    def oldest(self, tier: Tier) -> Place | None:
        lane = self._lanes[tier]
        return lane[0] if lane else None

    def add(self, tier: Tier, place: Place) -> None:
        self._lanes[tier].add(place)

    def remove(self, tier: Tier, place: Place) -> None:
        self._lanes[tier].remove(place)

    def __contains__(self, item: tuple[Tier, Place]) -> bool:
        tier, place = item
        return place in self._lanes[tier]

    def head(self, now: float) -> tuple[Tier, Place] | None:
        """The call that would be offered next at `now`, without taking it."""
        lanes = self._lanes
        if lanes["vip"]:
            return "vip", lanes["vip"][0]
        if lanes["mid"]:
            return self._mid_or_aged_standard(now) or ("mid", lanes["mid"][0])
        tier: Tier
        for tier in ("standard", "blacklisted"):
            if lane := lanes[tier]:
                return tier, lane[0]
        return None

    def head_key(self, now: float) -> tuple[tuple[int, float, int], Tier, Place] | None:
        """The head with its precedence key, for choosing across several queues."""
        found = self.head(now)
        if found is None:
            return None
        tier, place = found
        return precedence(tier, place, now, self.aging_s), tier, place

    def pop(self, now: float) -> tuple[Tier, Place] | None:
        found = self.head(now)
        if found is not None:
            self._lanes[found[0]].remove(found[1])
        return found

    def _mid_or_aged_standard(self, now: float) -> tuple[Tier, Place] | None:
        # An aged standard call outranks the mid head only if it arrived earlier.
        std = self._lanes["standard"]
        cutoff = aging_cutoff(now, self.aging_s)
        if cutoff is None or not std or std[0].arrived_at >= cutoff:
            return None
        mid = self._lanes["mid"]
        return ("standard", std[0]) if std[0] < mid[0] else None

    def position(self, tier: Tier, place: Place, now: float) -> int:
        """1-based rank of a waiting call among all waiting calls of this queue at `now`."""
        lanes = self._lanes
        vip, mid, std = lanes["vip"], lanes["mid"], lanes["standard"]
        if tier == "vip":
            ahead = vip.bisect_left(place)
        elif tier == "blacklisted":
            ahead = len(vip) + len(mid) + len(std) + lanes["blacklisted"].bisect_left(place)
        else:
            cutoff = aging_cutoff(now, self.aging_s)
            if tier == "mid":
                aged_ahead = 0
                if cutoff is not None:
                    # Aged standards (arrived before the cutoff) that also arrived before this call.
                    aged_ahead = min(std.bisect_left(place), std.bisect_left(Place(cutoff, -1, "")))
                ahead = len(vip) + mid.bisect_left(place) + aged_ahead
            elif cutoff is not None and place.arrived_at < cutoff:
                ahead = len(vip) + mid.bisect_left(place) + std.bisect_left(place)
            else:
                ahead = len(vip) + len(mid) + std.bisect_left(place)
        return int(ahead) + 1

    def expire(self, tier: Tier, cutoff: float) -> Iterator[Place]:
        """Take out, oldest first, every call of `tier` that arrived at or before `cutoff`."""
        lane = self._lanes[tier]
        while lane and lane[0].arrived_at <= cutoff:
            yield lane.pop(0)
