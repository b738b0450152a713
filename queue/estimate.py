"""Estimated wait per tier, pure: the figure quoted to a waiting caller and what it is made of.

Model (M/M/N with strict tier precedence, conditioned on the queue as it is now)
----------------------------------------------------------------------------------
A caller of tier k at `position` p has p − 1 calls ahead, all of tier k or above. `I` agents
are idle (their last `next` found nothing, less than `IDLE_AGENT_TTL_S` ago) and take the
first I calls at once; the caller then needs n = p − I agents to free up. The agents on
calls of the queue now (`talking`, answered and not ended) and the idle ones, N = T + I
(at least 1), each free up at rate μ = 1 / AHT, so frees come at D = N / AHT. Meanwhile
calls of higher tiers keep arriving (rate U = Σ_{j above k} λ_j) and each one goes ahead of
the caller. The count still to clear is a random walk from n, down at rate D, up at rate U;
the wait is its first passage to 0:

    mean = n / (D − U),    variance = n (D + U) / (D − U)³

(the issue's (n+1)/(μN − Σ_{j<k} λ_j) with I = 0). A VIP has U = 0: its wait is the n-th
free among N busy agents, Erlang(n, D). With D ≤ U the walk never comes back on average;
the net rate is held at `MIN_DRAIN_SHARE` · D so that the figure stays finite.

The figure quoted is the model's *median*, not its mean: half the callers wait less, half
more, which is what a median ratio real/quoted of 1 asks for and what makes the mean absolute
error smallest. The wait is right-skewed (one caller at position 1 behind busy VIP agents:
the mean is 1/ln 2 = 1.44 × the median). The median is taken from a gamma with the passage's
mean and variance, shape s = n (D − U) / (D + U) (written n·net / (2D − net) with the net
rate as held), by Wilson–Hilferty: mean · (1 − 1/(9 s))³. Below s = 7/9 (`SHAPE_KNEE`, very
skewed waits: few ahead and higher tiers taking most agents) that factor would fall faster
than the mean grows, so that more VIPs arriving could lower a quote; there it continues as
`KNEE_FACTOR` · √(s / SHAPE_KNEE), which keeps the quote rising with position and with the
higher tiers' arrivals (tests/queue/test_estimate.py, a property). Rounded to 0.1 s; never below
`MIN_WAIT_S` for a caller who must wait for an agent to free up (n ≥ 1); 0 when an idle agent
is there for the caller (n ≤ 0). Null until the queue has an AHT (no call of it ended yet).

Inputs, kept by each store as the calls move (the memory store in `QueueLoad`, the Redis
engine in a hash per queue, with the same arithmetic in queue/estimate.lua):
- λ_j: arrivals into the line per tier, an exponentially decayed count (time constant
  `ARRIVAL_TAU_S`) divided by what a steady rate of 1/s would have built up since the store
  began (at least `ARRIVAL_MIN_SPAN_S`): an unbiased rate that forgets in minutes.
- AHT: the queue's mean handle time, a running mean of its ended calls: a plain mean up to
  `AHT_CALLS` calls, then each new call weighs 1/`AHT_CALLS` (about the last 100 calls; the
  steady scenario in BENCHMARKS.md showed a shorter memory biasing deep quotes upwards).
- T: agents on an answered call of the queue now; I: idle agents that asked for this queue.

Not in the model: abandons and overflows ahead (they shorten the wait), aging of standard
calls, callbacks agents take between calls, agents of several queues (each queue counts only
its own talking agents).

Written twice: `estimated_wait`, `arrival_rate`, `bump` and `next_aht` are queue/estimate.lua
line for line; tests/queue/test_estimate_lua.py holds the two equal on a real Redis and
tests/queue/test_estimate.py on every store.
"""

from __future__ import annotations

import math
from typing import Final

from sortedcontainers import SortedList

from tierline.tiers.model import TIER_RANK, TIERS, Tier

ARRIVAL_TAU_S: Final = 900.0
ARRIVAL_MIN_SPAN_S: Final = 60.0
AHT_CALLS: Final = 100
IDLE_AGENT_TTL_S: Final = 60.0
MIN_DRAIN_SHARE: Final = 0.1
# Below this gamma shape Wilson–Hilferty's median bends the wrong way (a longer expected wait
# could be quoted less); from there down the median/mean factor falls as √shape.
SHAPE_KNEE: Final = 7 / 9
KNEE_FACTOR: Final = (1 - 1 / (9 * SHAPE_KNEE)) ** 3
MIN_WAIT_S: Final = 1.0
MIN_AHT_S: Final = 1.0

# What queue/redis_script.py renders as the Lua table `EST`.
LUA_CONSTANTS: Final[dict[str, float]] = {
    "tau": ARRIVAL_TAU_S,
    "min_span": ARRIVAL_MIN_SPAN_S,
    "aht_calls": float(AHT_CALLS),
    "idle_ttl": IDLE_AGENT_TTL_S,
    "min_drain": MIN_DRAIN_SHARE,
    "knee": SHAPE_KNEE,
    "knee_factor": KNEE_FACTOR,
    "min_wait": MIN_WAIT_S,
    "min_aht": MIN_AHT_S,
}


def round_tenth(x: float) -> float:
    """To 0.1 s, as the Lua engine rounds (half up): Python's round() rounds half to even."""
    return math.floor(x * 10 + 0.5) / 10


def bump(count: float, at: float, now: float) -> float:
    """The decayed arrival count after one more arrival at `now` (the last one was at `at`).

    A clock set back (now < at) decays nothing rather than inflating the count (exp overflows)."""
    return count * math.exp(-max(now - at, 0.0) / ARRIVAL_TAU_S) + 1


def arrival_rate(count: float, at: float, now: float, span_s: float) -> float:
    """Calls per second from a decayed count last bumped at `at`, `span_s` after the store began."""
    if count <= 0:
        return 0.0
    span = max(span_s, ARRIVAL_MIN_SPAN_S)
    decayed = count * math.exp(-max(now - at, 0.0) / ARRIVAL_TAU_S)
    return decayed / (ARRIVAL_TAU_S * (1 - math.exp(-span / ARRIVAL_TAU_S)))


def next_aht(aht: float, calls: int, handle_s: float) -> tuple[float, int]:
    """The running mean handle time after one more ended call: over the last ~`AHT_CALLS`."""
    n = min(calls + 1, AHT_CALLS)
    return aht + (handle_s - aht) / n, n


def estimated_wait(position: int, talking: int, idle: int, aht_s: float | None, push_rate: float) -> float | None:
    """The median wait (s) of a caller at `position` with `talking` and `idle` agents, handle
    time `aht_s` (None: none measured yet) and calls of higher tiers arriving at `push_rate`/s."""
    if aht_s is None:
        return None
    frees = position - idle
    if frees <= 0:
        return 0.0
    drain = max(talking + idle, 1) / max(aht_s, MIN_AHT_S)
    net = max(drain - push_rate, drain * MIN_DRAIN_SHARE)
    mean = frees / net
    shape = frees * net / (2 * drain - net)
    if shape >= SHAPE_KNEE:
        f = 1 - 1 / (9 * shape)
        factor = f * f * f
    else:
        factor = KNEE_FACTOR * math.sqrt(shape / SHAPE_KNEE)
    return max(round_tenth(mean * factor), MIN_WAIT_S)


def announce(previous: int | None, position: int) -> int:
    """The position announced to the caller: the true one, but never more than announced before."""
    return position if previous is None or position < previous else previous


class QueueLoad:
    """One queue's estimate inputs in the memory store: moved by the calls, read by `estimate`."""

    def __init__(self) -> None:
        self._arrivals = [[0.0, 0.0] for _ in TIERS]  # per rank: decayed count, last arrival
        self.aht: float | None = None
        self._aht_calls = 0
        self.talking = 0
        self._idle: dict[str, float] = {}  # agent -> when its `next` last found nothing
        self._idle_times: SortedList = SortedList()  # (time, agent)

    def arrived(self, tier: Tier, now: float) -> None:
        slot = self._arrivals[TIER_RANK[tier]]
        slot[0] = bump(slot[0], slot[1], now)
        slot[1] = now

    def answered(self, agent_id: str) -> None:
        self.talking += 1
        self.busy(agent_id)

    def ended(self, handle_s: float) -> None:
        self.talking -= 1
        self.aht, self._aht_calls = next_aht(self.aht or 0.0, self._aht_calls, handle_s)

    def idle(self, agent_id: str, now: float) -> None:
        self.busy(agent_id)
        self._idle[agent_id] = now
        self._idle_times.add((now, agent_id))

    def busy(self, agent_id: str) -> None:
        at = self._idle.pop(agent_id, None)
        if at is not None:
            self._idle_times.remove((at, agent_id))

    def idle_count(self, now: float) -> int:
        """Idle agents seen within `IDLE_AGENT_TTL_S`. O(log a)."""
        times = self._idle_times
        stale: int = times.bisect_left((now - IDLE_AGENT_TTL_S,))
        return len(times) - stale

    def push_rate(self, tier: Tier, now: float, span_s: float) -> float:
        """Arrivals per second of the tiers above `tier`."""
        rate = 0.0
        for count, at in self._arrivals[: TIER_RANK[tier]]:
            rate += arrival_rate(count, at, now, span_s)
        return rate

    def estimate(self, position: int, tier: Tier, now: float, span_s: float) -> float | None:
        push = self.push_rate(tier, now, span_s)
        return estimated_wait(position, self.talking, self.idle_count(now), self.aht, push)
