"""One tier's waiting places in order, counted so that a rank or a removal compares no places.

A lane of `WaitList`. Calls arrive in order, so nearly every new place is the largest of its
lane and takes the next *slot* at the end. A slot keeps its place after the call leaves (a dead
slot): the slots stay sorted, and a requeued call (same place) comes back to its own slot. A
dict finds a place's slot. Live flags in a `bytearray`, live counts per block of BLOCK slots
and a Fenwick tree of live counts per group of 64 blocks give the number of live places before
a slot: a walk of a few steps over a tree that stays in cache, a sum of at most 63 block counts
and a count of at most BLOCK flags, both in C. A sorted list instead bisects about twenty
places for every remove or rank, and at 10⁶ waiting calls each of those comparisons is a cache
miss on a place scattered over the heap (BENCHMARKS.md).

A place that cannot take a slot (it sorts before the newest slot and has none of its own: the
clock went back, or its slot was dropped; or it already waits: a repeat) waits in a small
`SortedList` beside the slots; ranks add the two.

A rebuild drops the dead slots and gives the places aside slots: when a new slot is needed
while dead slots outnumber live ones, or when the places aside outgrow a quarter of the lane.
It is O(n) in C-level passes, but it hashes every live place again: about 2 ms with 10⁴ live
places, 20 ms with 10⁵ and 0.3 s with 10⁶ on the shared machine; at most once every n/2 removals.
Amortised that is O(1) per operation; as a pause it is one `SortedList` did not have.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from itertools import compress

from sortedcontainers import SortedList

from tierline.queue.ordering import Place

SHIFT = 8
BLOCK = 1 << SHIFT  # slots per block: counts up to 256 are Python's cached small ints, never a cache miss
GROUP_SHIFT = 6  # 64 blocks per group


class Lane:
    """A sorted multiset of places with the part of `SortedList`'s interface `WaitList` uses."""

    __slots__ = (
        "_blocks",
        "_first",
        "_groups",
        "_live",
        "_others",
        "_places",
        "_size",
        "_slot_of",
        "_slotted",
        "_spill",
    )

    def __init__(self) -> None:
        self._places: list[Place] = []  # slot -> its place, live or dead; sorted
        self._live = bytearray()  # slot -> 1 while its place waits
        self._slot_of: dict[Place, int] = {}  # place -> its slot, live or dead
        self._blocks: list[int] = []  # live slots per block of BLOCK slots
        self._groups = [0]  # Fenwick tree (1-based) of live slots per group of blocks
        self._first = 0  # the first live slot; len(_places) when there is none
        self._others: SortedList = SortedList()  # places waiting without a slot
        self._slotted = 0  # live slots
        self._size = 0  # live slots and places aside
        self._spill = BLOCK  # give every place a slot again once _others is longer than this

    def __len__(self) -> int:
        """O(1)."""
        return self._size

    def __contains__(self, place: Place) -> bool:
        """O(1); O(log n) while some places wait aside."""
        slot = self._slot_of.get(place)
        if slot is not None and self._live[slot]:
            return True
        return self._size > self._slotted and place in self._others

    def first(self) -> Place | None:
        """The smallest place, or None. O(1)."""
        head = self._places[self._first] if self._slotted else None
        if self._size > self._slotted:  # some places wait aside
            aside: Place = self._others[0]
            if head is None or aside < head:
                return aside
        return head

    def add(self, place: Place) -> bool:
        """O(log n) for the newest place of the lane and for a requeue (its own slot again): a
        dict insert or look-up and a walk up the group tree, no comparison but one with the
        newest place. O(log n) comparisons of places for a place that goes aside. Amortised
        over the rebuilds.

        True when `place` is now the largest of the lane (a new arrival, nearly always): its
        rank is then `len(self) - 1` without a walk, since every place aside is smaller than
        the newest slot was."""
        self._size += 1
        places = self._places
        if not places or places[-1] < place:  # the newest of the lane (nearly every arrival)
            if len(places) > 2 * self._slotted + BLOCK:  # dead slots outnumber live ones
                self._rebuild()
                places = self._places
            slot = len(places)
            places.append(place)
            self._live.append(1)
            self._slot_of[place] = slot
            if slot & (BLOCK - 1):
                self._blocks[-1] += 1
            else:
                self._blocks.append(1)
            if not slot & ((BLOCK << GROUP_SHIFT) - 1):  # the first slot of a new group: a new tree node
                node = len(self._groups)
                self._groups.append(self._live_before(node - 1) - self._live_before(node - (node & -node)))
            self._count(slot, 1)
            if not self._slotted:
                self._first = slot
            self._slotted += 1
            return True
        own = self._slot_of.get(place)
        if own is None or self._live[own]:  # no slot of its own (out of order), or a repeat
            self._others.add(place)
            if len(self._others) > self._spill:
                self._rebuild()
            return False
        self._live[own] = 1  # its own dead slot: a requeue
        self._slotted += 1
        if own < self._first or self._slotted == 1:
            self._first = own
        self._blocks[own >> SHIFT] += 1
        self._count(own, 1)
        return False

    def remove(self, place: Place) -> None:
        """O(log n): a dict look-up and a walk up the group tree, no comparison of places.
        ValueError if `place` is absent.

        Removing the first live place skips the dead slots after it with a C-level `find`:
        one flag per slot, so O(n) bytes at worst (a requeued call in front of a long run of
        hang-ups, popped again and again), about 50 µs at 10⁶."""
        slot = self._slot_of.get(place)
        live = self._live
        if slot is None or not live[slot]:
            self._others.remove(place)  # ValueError when absent, as SortedList
            self._size -= 1
            return
        live[slot] = 0
        self._slotted -= 1
        self._size -= 1
        self._blocks[slot >> SHIFT] -= 1
        self._count(slot, -1)
        if slot == self._first:
            after = live.find(1, slot)
            self._first = after if after >= 0 else len(live)

    def rank(self, place: Place) -> int:
        """How many places are smaller than `place` (SortedList.bisect_left).

        O(log n). For a place that has a slot: a dict look-up, a walk down the group tree, then
        at most 63 block counts and BLOCK live flags summed in C; no comparison of places. For
        any other place a bisect of the slots finds where it would go: O(log n) comparisons.
        Plus O(log n) comparisons while some places wait aside."""
        slot = self._slot_of.get(place)
        if slot is None:
            slot = bisect_left(self._places, place)
        block = slot >> SHIFT
        group = block >> GROUP_SHIFT
        ahead = self._live_before(group) + sum(self._blocks[group << GROUP_SHIFT : block])
        ahead += self._live.count(1, block << SHIFT, slot)
        if self._size > self._slotted:
            ahead += self._others.bisect_left(place)
        return ahead

    def _count(self, slot: int, delta: int) -> None:
        """Add `delta` to the live count of the group of `slot`. O(log n)."""
        tree, node = self._groups, (slot >> (SHIFT + GROUP_SHIFT)) + 1
        while node < len(tree):
            tree[node] += delta
            node += node & -node

    def _live_before(self, groups: int) -> int:
        """Live slots in the first `groups` groups. O(log n)."""
        tree, total = self._groups, 0
        while groups:
            total += tree[groups]
            groups &= groups - 1
        return total

    def _rebuild(self) -> None:
        """Give every waiting place a slot again, numbered from 0, and drop the dead slots. O(n)."""
        places = list(compress(self._places, self._live))
        others = SortedList()
        if self._size > self._slotted:
            merged = sorted(places + list(self._others))
            places = list(dict.fromkeys(merged))  # one slot per distinct place
            if len(places) < len(merged):  # the same place waiting twice: the repeats stay aside
                others.update((Counter(merged) - Counter(places)).elements())
        self._places, self._others = places, others
        self._live = bytearray(b"\x01") * len(places)
        self._slot_of = dict(zip(places, range(len(places)), strict=True))
        self._slotted = len(places)
        self._first = 0
        self._spill = len(others) + len(places) // 4 + BLOCK
        self._blocks = [BLOCK] * (len(places) >> SHIFT)
        if len(places) & (BLOCK - 1):
            self._blocks.append(len(places) & (BLOCK - 1))
        group = 1 << GROUP_SHIFT
        tree = [0] + [sum(self._blocks[at : at + group]) for at in range(0, len(self._blocks), group)]
        for node in range(1, len(tree)):
            if (parent := node + (node & -node)) < len(tree):
                tree[parent] += tree[node]
        self._groups = tree
