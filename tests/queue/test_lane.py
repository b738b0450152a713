"""Lane, one tier's counted slots: the same answers as a sorted list, without comparing places."""

from __future__ import annotations

from bisect import bisect_left, insort
from unittest import mock

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tierline.queue import lane as lane_module
from tierline.queue.lane import Lane
from tierline.queue.ordering import Place

# A small pool, so that draws collide: equal places, equal instants, places out of order.
pool_places = st.builds(Place, st.integers(0, 6).map(float), st.integers(0, 3), st.sampled_from(["a", "b"]))


class LaneAgainstSortedList(RuleBasedStateMachine):
    """Every operation on a Lane and on a plain sorted list (the model) gives the same answer.

    Blocks of 2 slots in groups of 2 blocks, so that a few dozen places span many blocks and
    groups, and the rebuilds run often.
    """

    def __init__(self) -> None:
        super().__init__()
        self._small_blocks = mock.patch.multiple(lane_module, SHIFT=1, BLOCK=2, GROUP_SHIFT=1)
        self._small_blocks.start()
        self.lane = Lane()
        self.model: list[Place] = []
        self.gone: list[Place] = []  # removed once, may come back: requeues
        self.clock = 10.0

    def teardown(self) -> None:
        self._small_blocks.stop()

    def _add(self, place: Place) -> None:
        self.lane.add(place)
        insort(self.model, place)

    @rule(step=st.sampled_from([0.0, 0.5, 1.0]), seq=st.integers(0, 10**6))
    def arrive(self, step: float, seq: int) -> None:
        """The common case: the newest place of the lane (a step of 0 is the same instant)."""
        self.clock += step
        self._add(Place(self.clock, seq, f"c{seq}"))

    @rule(place=pool_places)
    def add_any(self, place: Place) -> None:
        """Out of order, or a place that already waits."""
        self._add(place)

    @precondition(lambda self: self.gone)
    @rule(data=st.data())
    def requeue(self, data: st.DataObject) -> None:
        place = self.gone.pop(data.draw(st.integers(0, len(self.gone) - 1)))
        self._add(place)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), copy=st.booleans())
    def remove(self, data: st.DataObject, copy: bool) -> None:
        place = self.model[data.draw(st.integers(0, len(self.model) - 1))]
        if copy:  # equal, not the same object: what the memory store passes
            place = Place(place.arrived_at, place.seq, place.call_id)
        self.lane.remove(place)
        self.model.remove(place)
        self.gone.append(place)

    @precondition(lambda self: self.model)
    @rule()
    def pop_first(self) -> None:
        first = self.lane.first()
        assert first == self.model[0]
        self.lane.remove(first)
        self.model.pop(0)
        self.gone.append(first)

    @rule(place=pool_places)
    def remove_absent(self, place: Place) -> None:
        if place in self.model:
            return
        with pytest.raises(ValueError):
            self.lane.remove(place)

    @rule(place=pool_places)
    def rank_of_any_place(self, place: Place) -> None:
        assert self.lane.rank(place) == bisect_left(self.model, place)
        assert (place in self.lane) == (place in self.model)

    @invariant()
    def same_as_the_model(self) -> None:
        assert len(self.lane) == len(self.model)
        assert self.lane.first() == (self.model[0] if self.model else None)
        for place in self.model:
            assert place in self.lane
            assert self.lane.rank(place) == bisect_left(self.model, place)
        for place in self.gone:
            assert (place in self.lane) == (place in self.model)


TestLaneAgainstSortedList = LaneAgainstSortedList.TestCase
TestLaneAgainstSortedList.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)


def test_the_lane_rebuilds_when_dead_slots_pile_up_and_keeps_its_answers() -> None:
    lane = Lane()
    places = [Place(float(i), i, f"c{i}") for i in range(3 * lane_module.BLOCK)]
    for place in places:
        lane.add(place)
    for place in places[: 2 * lane_module.BLOCK + 10]:
        lane.remove(place)
    slots_before = len(lane._places)
    newest = Place(1e6, 10**6, "newest")
    lane.add(newest)  # needs a slot while dead slots outnumber live ones: the lane rebuilds
    assert len(lane._places) < slots_before
    waiting = [*places[2 * lane_module.BLOCK + 10 :], newest]
    assert len(lane) == len(waiting)
    assert lane.first() == waiting[0]
    assert [lane.rank(p) for p in waiting] == list(range(len(waiting)))
    lane.add(places[0])  # its slot is gone: it waits aside, and still ranks first
    assert lane.first() == places[0]
    assert lane.rank(waiting[0]) == 1
