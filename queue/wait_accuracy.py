"""How right the quoted waits were, pure: each answered call's real wait against its quote.

When a call is answered, the wait it was quoted on arrival (`estimate.estimated_wait`, kept on
the call) is compared with the wait it had. Per queue × tier the stores keep plain counters,
so the structure is bounded and mergeable (sums, whatever the number of calls or processes):

- `n`: answered calls that had a quote; `err`: the sum of |real − quoted| (seconds);
- `within`: calls with real/quoted in [0.5, 1.5] (within ±50 %);
- `r<i>`: a histogram of real/quoted in `BINS_PER_OCTAVE` bins per doubling over
  2^±`OCTAVES` (the end bins take the rest), for the median ratio.

Both waits are counted as at least `RATIO_FLOOR_S` in the ratios, so a call quoted 0 s (an
idle agent was there) and answered within a second is a ratio of 1, not 0/0. The median is
read from the histogram, interpolated inside its bin (a bin is 2^(1/8), about 9 %, wide).
The Redis engine adds the same fields (`accuracy` in redis_engine.lua, the bin rule written
a second time; tests/queue/test_estimate_accuracy.py on every store).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Final

import msgspec

RATIO_FLOOR_S: Final = 1.0
BINS_PER_OCTAVE: Final = 8
OCTAVES: Final = 8
N_BINS: Final = 2 * OCTAVES * BINS_PER_OCTAVE
WITHIN: Final = (0.5, 1.5)


def ratio(real_s: float, quoted_s: float) -> float:
    return max(real_s, RATIO_FLOOR_S) / max(quoted_s, RATIO_FLOOR_S)


def bin_index(r: float) -> int:
    """The histogram bin of a ratio: bin i holds [2^((i − 64)/8), 2^((i − 63)/8))."""
    i = math.floor(math.log(r) / math.log(2) * BINS_PER_OCTAVE) + OCTAVES * BINS_PER_OCTAVE
    return min(max(i, 0), N_BINS - 1)


def increments(real_s: float, quoted_s: float) -> dict[str, float]:
    """The counters one answered call adds (the Lua engine's `accuracy` adds the same)."""
    r = ratio(real_s, quoted_s)
    return {
        "n": 1,
        "err": abs(real_s - quoted_s),
        "within": 1 if WITHIN[0] <= r <= WITHIN[1] else 0,
        f"r{bin_index(r)}": 1,
    }


class Accuracy(msgspec.Struct, kw_only=True):
    """The counters of one queue × tier (or of a merge of several)."""

    n: int = 0
    err: float = 0.0
    within: int = 0
    bins: dict[int, int] = msgspec.field(default_factory=dict)

    def record(self, real_s: float, quoted_s: float) -> None:
        for name, added in increments(real_s, quoted_s).items():
            self._add(name, added)

    def _add(self, name: str, added: float) -> None:
        if name == "err":
            self.err += added
        elif name.startswith("r"):
            i = int(name[1:])
            self.bins[i] = self.bins.get(i, 0) + int(added)
        else:
            setattr(self, name, getattr(self, name) + int(added))

    def merge(self, other: Accuracy) -> None:
        self.n += other.n
        self.err += other.err
        self.within += other.within
        for i, count in other.bins.items():
            self.bins[i] = self.bins.get(i, 0) + count

    @classmethod
    def from_fields(cls, fields: Mapping[Any, Any]) -> Accuracy:
        """From a hash of `increments` fields as Redis's HGETALL gives it (bytes or str)."""
        out = cls()
        for key, value in fields.items():
            name = key.decode() if isinstance(key, bytes) else str(key)
            out._add(name, float(value.decode() if isinstance(value, bytes) else value))
        return out

    def median_ratio(self) -> float | None:
        total = sum(self.bins.values())
        if total == 0:
            return None
        half, seen = total / 2, 0
        for i in sorted(self.bins):
            count = self.bins[i]
            if seen + count >= half:
                inside = (half - seen) / count
                return float(2 ** ((i - OCTAVES * BINS_PER_OCTAVE + inside) / BINS_PER_OCTAVE))
            seen += count
        raise AssertionError("unreachable: the counts add up to total")


class AccuracyFigures(msgspec.Struct, kw_only=True):
    """What supervisors read: how right the quotes of one queue × tier were."""

    calls: Annotated[int, msgspec.Meta(description="answered calls that had been quoted a wait on arrival")]
    mean_abs_error_s: Annotated[
        float | None, msgspec.Meta(description="mean of |real wait − quoted wait|, seconds; null without calls")
    ]
    median_ratio: Annotated[
        float | None,
        msgspec.Meta(description="median of real/quoted (each at least 1 s); 1 is calibrated; null without calls"),
    ]
    within_50pct: Annotated[
        float | None, msgspec.Meta(description="share of calls with real/quoted in [0.5, 1.5]; null without calls")
    ]


def figures(acc: Accuracy) -> AccuracyFigures:
    if acc.n == 0:
        return AccuracyFigures(calls=0, mean_abs_error_s=None, median_ratio=None, within_50pct=None)
    median = acc.median_ratio()
    return AccuracyFigures(
        calls=acc.n,
        mean_abs_error_s=round(acc.err / acc.n, 3),
        median_ratio=None if median is None else round(median, 3),
        within_50pct=round(acc.within / acc.n, 4),
    )


def merged(parts: Iterable[Accuracy]) -> Accuracy:
    out = Accuracy()
    for part in parts:
        out.merge(part)
    return out


# Position buckets of the accuracy goal (README "Estimated wait"): 1, 2–5, 6–20, over 20.
POSITION_BUCKETS: Final = ("1", "2-5", "6-20", ">20")


def position_bucket(position: int) -> str:
    if position <= 1:
        return "1"
    if position <= 5:
        return "2-5"
    return "6-20" if position <= 20 else ">20"


class AccuracyRow(msgspec.Struct, kw_only=True):
    """One queue × tier's counters, as a store reports them (`MetricsSnapshot.estimate_accuracy`)."""

    queue: str
    tier: str
    accuracy: Accuracy
