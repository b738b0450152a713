"""WaitList, the pure ordered structure behind one queue: add, remove, head, pop, position, expire."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tierline.queue import lane as lane_module
from tierline.queue.ordering import Place, aging_cutoff, effective_rank, is_aged, precedence, score
from tierline.queue.waitlist import WaitList
from tierline.tiers.model import TIERS, Tier

NOW = 1000.0


def place(call_id: str, arrived_at: float, seq: int) -> Place:
    return Place(arrived_at, seq, call_id)


def fill(wl: WaitList, *calls: tuple[Tier, str, float, int]) -> dict[str, tuple[Tier, Place]]:
    out = {}
    for tier, call_id, arrived_at, seq in calls:
        p = place(call_id, arrived_at, seq)
        wl.add(tier, p)
        out[call_id] = (tier, p)
    return out


def drain(wl: WaitList, now: float = NOW) -> list[str]:
    order = []
    while (found := wl.pop(now)) is not None:
        order.append(found[1].call_id)
    return order


def test_empty_list_has_no_head_and_pops_nothing() -> None:
    wl = WaitList()
    assert len(wl) == 0
    assert wl.head(NOW) is None
    assert wl.head_key(NOW) is None
    assert wl.pop(NOW) is None
    for tier in ("vip", "mid", "standard", "blacklisted"):
        assert wl.count(tier) == 0
        assert wl.oldest(tier) is None


def test_tier_first_then_arrival_then_seq() -> None:
    wl = WaitList()
    fill(
        wl,
        ("blacklisted", "b1", 1.0, 1),
        ("standard", "s1", 2.0, 2),
        ("mid", "m1", 3.0, 3),
        ("vip", "v1", 900.0, 4),  # a VIP arriving last is still first
        ("standard", "s2", 2.0, 5),  # same instant as s1: the counter keeps FIFO
        ("mid", "m0", 0.5, 6),
    )
    assert len(wl) == 6
    assert wl.head(NOW) == ("vip", place("v1", 900.0, 4))
    assert drain(wl) == ["v1", "m0", "m1", "s1", "s2", "b1"]
    assert len(wl) == 0


def test_head_does_not_take_and_pop_does() -> None:
    wl = WaitList()
    fill(wl, ("mid", "m1", 1.0, 1), ("standard", "s1", 0.0, 2))
    assert wl.head(NOW) == ("mid", place("m1", 1.0, 1))
    assert wl.head(NOW) == ("mid", place("m1", 1.0, 1))
    assert len(wl) == 2
    assert wl.pop(NOW) == ("mid", place("m1", 1.0, 1))
    assert len(wl) == 1
    assert ("mid", place("m1", 1.0, 1)) not in wl
    assert ("standard", place("s1", 0.0, 2)) in wl


def test_head_key_is_the_precedence_of_the_head() -> None:
    wl = WaitList()
    fill(wl, ("standard", "s1", 5.0, 1), ("blacklisted", "b1", 0.0, 2))
    assert wl.head_key(NOW) == ((2, 5.0, 1), "standard", place("s1", 5.0, 1))


def test_count_and_oldest_per_tier() -> None:
    wl = WaitList()
    fill(wl, ("mid", "m2", 7.0, 2), ("mid", "m1", 3.0, 1), ("vip", "v1", 9.0, 3))
    assert wl.count("mid") == 2
    assert wl.count("vip") == 1
    assert wl.count("standard") == 0
    assert wl.oldest("mid") == place("m1", 3.0, 1)
    assert wl.oldest("vip") == place("v1", 9.0, 3)
    wl.remove("mid", place("m1", 3.0, 1))
    assert wl.oldest("mid") == place("m2", 7.0, 2)
    assert wl.count("mid") == 1


def test_membership_is_per_tier() -> None:
    wl = WaitList()
    p = place("m1", 1.0, 1)
    wl.add("mid", p)
    assert ("mid", p) in wl
    assert ("standard", p) not in wl


def test_remove_from_the_middle_keeps_the_rest_in_order() -> None:
    wl = WaitList()
    calls = fill(wl, *[("standard", f"s{i}", float(i), i) for i in range(1, 6)])
    wl.remove(*calls["s3"])
    assert len(wl) == 4
    assert ("standard", calls["s3"][1]) not in wl
    assert [wl.position(*calls[c], NOW) for c in ("s1", "s2", "s4", "s5")] == [1, 2, 3, 4]
    assert drain(wl) == ["s1", "s2", "s4", "s5"]


def test_remove_of_an_absent_call_raises_and_changes_nothing() -> None:
    wl = WaitList()
    fill(wl, ("mid", "m1", 1.0, 1))
    with pytest.raises(ValueError):
        wl.remove("mid", place("ghost", 2.0, 2))
    with pytest.raises(ValueError):
        wl.remove("standard", place("m1", 1.0, 1))  # right place, wrong lane
    assert len(wl) == 1
    assert wl.head(NOW) == ("mid", place("m1", 1.0, 1))


def test_position_is_rank_across_tiers() -> None:
    wl = WaitList()
    calls = fill(
        wl,
        ("standard", "s1", 1.0, 1),
        ("blacklisted", "b1", 0.0, 2),
        ("mid", "m1", 5.0, 3),
        ("vip", "v1", 9.0, 4),
        ("vip", "v2", 9.0, 5),
        ("mid", "m2", 6.0, 6),
        ("blacklisted", "b2", 0.5, 7),
    )
    expected = {"v1": 1, "v2": 2, "m1": 3, "m2": 4, "s1": 5, "b1": 6, "b2": 7}
    assert {c: wl.position(*calls[c], NOW) for c in calls} == expected


def test_position_after_removals_and_pops() -> None:
    wl = WaitList()
    calls = fill(
        wl,
        ("mid", "m1", 1.0, 1),
        ("mid", "m2", 2.0, 2),
        ("standard", "s1", 0.0, 3),
        ("standard", "s2", 3.0, 4),
        ("blacklisted", "b1", 0.0, 5),
    )
    wl.remove(*calls["m2"])  # middle of the mid lane
    assert wl.position(*calls["s1"], NOW) == 2
    assert wl.position(*calls["b1"], NOW) == 4
    assert wl.pop(NOW) == calls["m1"]
    assert wl.position(*calls["s1"], NOW) == 1
    assert wl.position(*calls["s2"], NOW) == 2
    assert wl.position(*calls["b1"], NOW) == 3
    wl.add(*calls["m2"])  # a requeue with the same key is back at its old place
    assert wl.position(*calls["m2"], NOW) == 1
    assert wl.position(*calls["b1"], NOW) == 4


def test_expire_takes_oldest_first_up_to_and_including_the_cutoff() -> None:
    wl = WaitList()
    calls = fill(
        wl,
        ("mid", "m3", 30.0, 3),
        ("mid", "m1", 10.0, 1),
        ("mid", "m2", 20.0, 2),
        ("standard", "s1", 0.0, 4),
    )
    expired = wl.expire("mid", 20.0)
    assert [p.call_id for p in expired] == ["m1", "m2"]  # 20.0 <= cutoff: taken
    assert wl.count("mid") == 1
    assert wl.count("standard") == 1  # other lanes untouched
    assert wl.position(*calls["m3"], NOW) == 1
    assert list(wl.expire("mid", 29.999)) == []
    assert list(wl.expire("vip", 1e9)) == []


def test_expire_is_lazy_and_stops_where_it_is_left() -> None:
    wl = WaitList()
    fill(wl, ("mid", "m1", 1.0, 1), ("mid", "m2", 2.0, 2))
    it = wl.expire("mid", 5.0)
    assert next(it).call_id == "m1"
    assert wl.count("mid") == 1


# --- aging ----------------------------------------------------------------------------------


def test_aging_off_never_promotes() -> None:
    wl = WaitList(aging_s=0.0)
    calls = fill(wl, ("standard", "s1", 0.0, 1), ("mid", "m1", 999.0, 2))
    assert wl.head(NOW) == calls["m1"]
    assert wl.position(*calls["s1"], NOW) == 2


def test_aged_standard_ranks_with_mid_by_arrival() -> None:
    wl = WaitList(aging_s=100.0)
    # At NOW=1000 the cutoff is 900: s_old (arrived 850) is aged, s_new (950) is not.
    calls = fill(
        wl,
        ("mid", "m_early", 800.0, 1),
        ("standard", "s_old", 850.0, 2),
        ("mid", "m_late", 870.0, 3),
        ("standard", "s_new", 950.0, 4),
        ("vip", "v", 990.0, 5),
        ("blacklisted", "b", 0.0, 6),  # oldest of all, never promoted
    )
    expected = {"v": 1, "m_early": 2, "s_old": 3, "m_late": 4, "s_new": 5, "b": 6}
    assert {c: wl.position(*calls[c], NOW) for c in calls} == expected
    assert drain(wl) == ["v", "m_early", "s_old", "m_late", "s_new", "b"]


def test_aging_boundary_is_strict() -> None:
    # aged means now - arrived > aging_s; exactly aging_s old is not yet aged.
    wl = WaitList(aging_s=100.0)
    calls = fill(wl, ("standard", "s", 900.0, 1), ("mid", "m", 950.0, 2))
    assert wl.head(1000.0) == calls["m"]
    assert wl.position(*calls["s"], 1000.0) == 2
    assert wl.head(1000.5) == calls["s"]
    assert wl.position(*calls["s"], 1000.5) == 1
    assert wl.position(*calls["m"], 1000.5) == 2


def test_aged_standard_never_above_vip() -> None:
    wl = WaitList(aging_s=1.0)
    calls = fill(wl, ("standard", "s", 0.0, 1), ("vip", "v", 999.0, 2))
    assert wl.head(NOW) == calls["v"]
    assert wl.position(*calls["s"], NOW) == 2
    assert wl.head_key(NOW) == ((0, 999.0, 2), "vip", calls["v"][1])


def test_aged_standard_head_key_has_mid_rank() -> None:
    wl = WaitList(aging_s=10.0)
    calls = fill(wl, ("standard", "s", 0.0, 1))
    assert wl.head_key(NOW) == ((1, 0.0, 1), "standard", calls["s"][1])


# --- the pure ordering functions ----------------------------------------------------------------


def test_ordering_functions() -> None:
    assert not is_aged("standard", 0.0, 100.0, 0.0)  # aging off
    assert not is_aged("standard", 0.0, 100.0, 100.0)  # exactly aging_s: not yet
    assert is_aged("standard", 0.0, 100.5, 100.0)
    assert not is_aged("blacklisted", 0.0, 1e9, 1.0)
    assert not is_aged("mid", 0.0, 1e9, 1.0)
    assert effective_rank("standard", 0.0, 1e9, 1.0) == 1
    assert effective_rank("blacklisted", 0.0, 1e9, 1.0) == 3
    assert effective_rank("vip", 0.0, 0.0, 1.0) == 0
    assert precedence("mid", place("x", 5.0, 7), 10.0, 0.0) == (1, 5.0, 7)
    assert aging_cutoff(100.0, 0.0) is None
    assert aging_cutoff(100.0, 30.0) == 70.0
    assert score("vip", 5) < score("mid", 1) < score("standard", 1) < score("blacklisted", 0)
    assert score("mid", 2) - score("mid", 1) == 1


# --- the mechanism: no comparison of places, whatever the length -------------------------------

compared = 0


class CountingPlace(Place, frozen=True):
    """A place that counts how often it is compared."""

    def __lt__(self, other: Any) -> bool:
        global compared
        compared += 1
        return bool(Place.__lt__(self, other))

    def __eq__(self, other: object) -> bool:
        global compared
        compared += 1
        return bool(Place.__eq__(self, other))

    __hash__ = Place.__hash__


def comparisons_per_remove_and_position(size: int) -> float:
    global compared
    rng = random.Random(size)
    waitlist = WaitList()
    calls = [(rng.choice(TIERS), CountingPlace(1000.0 + i, i, f"c{i}")) for i in range(size)]
    for tier, place in calls:
        waitlist.add(tier, place)
    picks = rng.sample(calls, 50)
    compared = 0
    for tier, place in picks:
        copy = CountingPlace(place.arrived_at, place.seq, place.call_id)  # as the memory store passes it
        waitlist.position(tier, copy, 2000.0)
        waitlist.remove(tier, copy)
    return compared / (2 * len(picks))


def test_remove_and_position_compare_no_more_places_in_a_long_queue_than_in_a_short_one() -> None:
    # A sorted list bisects: about log2(n) comparisons, 7 at 100 calls and 14 at 20,000. A slot
    # is found by hashing: at most one comparison (the dict's equality check), at any length.
    short, long = comparisons_per_remove_and_position(100), comparisons_per_remove_and_position(20_000)
    assert long <= 1.0
    assert long <= short


def test_positions_match_a_full_sort_across_many_blocks() -> None:
    rng = random.Random(7)
    aging_s = 30.0
    waitlist = WaitList(aging_s)
    waiting: dict[str, tuple[Tier, Place]] = {}
    tiers: list[Tier] = list(TIERS)
    for i in range(4 * lane_module.BLOCK):
        tier = rng.choices(tiers, [5, 20, 72, 3])[0]
        place = Place(float(i // 3), i, f"c{i}")  # three arrivals per instant
        waitlist.add(tier, place)
        waiting[place.call_id] = (tier, place)
        if rng.random() < 0.3:  # a hang-up anywhere in the queue
            gone = waiting.pop(rng.choice(list(waiting)))
            waitlist.remove(*gone)
        if rng.random() < 0.1 and (head := waitlist.pop(float(i // 3))) is not None:
            waiting.pop(head[1].call_id)
            if rng.random() < 0.5:  # no answer: back to its place
                waitlist.add(*head)
                waiting[head[1].call_id] = head
    now = float(4 * lane_module.BLOCK // 3)
    order = sorted(waiting.values(), key=lambda tp: precedence(tp[0], tp[1], now, aging_s))
    assert [waitlist.position(tier, place, now) for tier, place in order] == list(range(1, len(order) + 1))
    assert len(waitlist) == len(order)
    assert [waitlist.pop(now) for _ in order] == order
