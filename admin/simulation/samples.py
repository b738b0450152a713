"""Handle times and patience as the history archive saw them, for the simulator to draw from.

- Handle times: every `end` event's `handle_s`, drawn with replacement (a bootstrap of the
  observed distribution, whatever its shape).
- Patience: a caller's patience is seen only when they abandon; an answered or overflowed
  call shows only that its patience was longer than its wait (censored). Drawing from the
  abandons' waits alone would make callers hang up far too soon. The Kaplan–Meier estimate
  of the patience distribution counts both: at each abandon time t_i, S(t_i) = S(t_{i−1})·
  (1 − d_i / n_i), d_i abandons at t_i among the n_i calls that waited at least t_i. Past the
  last abandon the estimate says nothing, and where few calls are still waiting it says
  little (one late abandon would end everyone's patience there): from where fewer than
  MIN_AT_RISK calls waited on, patience is that time plus an exponential with the censored
  maximum-likelihood mean of the waits beyond it (waiting / abandons, as
  admin/staffing/patience.py), so no caller is given infinite or cut-off patience.

Pure apart from `from_archive`, which reads the archive through its contract
(`Archive.events`) an hour at a time, so the serving loop gets a turn between hours.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterable
from typing import Final, Literal, TypeVar

import msgspec

from tierline.admin.staffing.patience import observed_patience
from tierline.queue.history import events as ev
from tierline.queue.history.archive import Archive

T = TypeVar("T")

MAX_SAMPLES: Final = 50_000  # handle times, and waits, kept (a uniform subset beyond)
MIN_HANDLE_SAMPLES: Final = 20  # fewer ended calls: the exponential with their mean instead
MIN_ABANDONS: Final = 10  # fewer abandons: an exponential with the observed mean patience instead
MIN_AT_RISK: Final = 30  # the estimate stops where fewer calls were still waiting: too noisy
READ_CHUNK_S: Final = 3600.0


HandleSource = Literal["exponential", "archive"]
PatienceSource = Literal["none", "exponential", "archive"]


class Sources(msgspec.Struct, frozen=True, kw_only=True):
    """Where the run's handle times and patience come from, as the answer reports them.

    `exponential`: drawn from an exponential with the mean `aht_s` / `patience_s`; `archive`:
    drawn from what the history archive saw over `window` (handle times as they were,
    patience by its Kaplan–Meier estimate, admin/simulation/samples.py); `none`: nobody
    hangs up. `*_from` says where an exponential's mean came from (given, observed, archive)."""

    handle: HandleSource = "exponential"
    handle_from: str = "given"
    handle_samples: int = 0
    patience: PatienceSource = "none"
    patience_from: str | None = None
    abandons_seen: int = 0
    waits_seen: int = 0
    window: str | None = None  # the archive window sampled, ISO start/end


class PatienceLaw(msgspec.Struct, frozen=True, kw_only=True):
    """The Kaplan–Meier patience distribution: F(times[i]) = cumulative[i], steps at abandon times."""

    times: list[float]
    cumulative: list[float]  # 1 − S, non-decreasing, below 1 unless every caller abandoned
    tail_start_s: float  # where the estimate stops (too few calls still waiting to say more)
    tail_mean_s: float  # past it: tail_start_s + Exp(tail_mean_s)
    abandons: int
    observations: int  # waits seen: abandons and censored ones


class Seen(msgspec.Struct, kw_only=True):
    """What an archive window showed: handle times, and every finished wait with its fate."""

    handle_s: list[float]
    waits: list[tuple[float, bool]]  # (wait, abandoned); answered and overflowed are censored
    ended: int  # calls ended (handle_s may be a subset of them)


def seen_in(events: Iterable[ev.Event], queue: str | None, into: Seen | None = None) -> Seen:
    """Handle times from `end`, waits from `answer` / `overflow` (censored) and `abandon`."""
    out = into if into is not None else Seen(handle_s=[], waits=[], ended=0)
    for event in events:
        if queue is not None and event.queue != queue:
            continue
        if isinstance(event, ev.End):
            out.ended += 1
            out.handle_s.append(event.handle_s)
        elif isinstance(event, ev.Abandon):
            out.waits.append((event.wait_s, True))
        elif isinstance(event, ev.Answer | ev.Overflow):
            out.waits.append((event.wait_s, False))
    return out


def thin(values: list[T], keep: int, seed: str) -> list[T]:
    """At most `keep` of `values`: a uniform subset (fixed seed: the same archive, the same subset)."""
    if len(values) <= keep:
        return values
    return random.Random(seed).sample(values, keep)


async def from_archive(archive: Archive, start: float, end: float, queue: str | None) -> Seen:
    """Read [start, end) an hour at a time. Runtime: O(events in the window)."""
    seen = Seen(handle_s=[], waits=[], ended=0)
    at = start
    while at < end:
        upto = min(at + READ_CHUNK_S, end)
        seen_in(await archive.events(at, upto), queue, seen)
        at = upto
    # A uniform subset of each keeps both laws unbiased and bounds the estimate's sort (it runs
    # in the serving process) and the job sent to the worker.
    seen.handle_s = thin(seen.handle_s, MAX_SAMPLES, f"{start}:{end}")
    seen.waits = thin(seen.waits, MAX_SAMPLES, f"{start}:{end}:waits")
    return seen


def kaplan_meier(waits: Iterable[tuple[float, bool]]) -> PatienceLaw | None:
    """The patience law of these (wait, abandoned) observations; None without an abandon.
    Runtime: O(n log n)."""
    ordered = sorted(waits)
    abandons = sum(1 for _, gone in ordered if gone)
    overall = observed_patience(math.fsum(w for w, _ in ordered), abandons)
    if overall is None:
        return None
    times: list[float] = []
    cumulative: list[float] = []
    survive = 1.0
    at_risk = len(ordered)
    i = 0
    while i < len(ordered) and at_risk >= MIN_AT_RISK:
        t = ordered[i][0]
        j, died = i, 0
        while j < len(ordered) and ordered[j][0] == t:
            died += ordered[j][1]
            j += 1
        if died:
            survive *= 1.0 - died / at_risk
            times.append(t)
            cumulative.append(1.0 - survive)
        at_risk -= j - i
        i = j
    # The tail: the waits from the cut on, by the same censored maximum likelihood.
    cut = ordered[i][0] if i < len(ordered) else ordered[-1][0]
    rest = ordered[i:]
    tail = observed_patience(math.fsum(w - cut for w, _ in rest), sum(1 for _, gone in rest if gone))
    return PatienceLaw(
        times=times,
        cumulative=cumulative,
        tail_start_s=cut,
        tail_mean_s=overall if tail is None else tail,
        abandons=abandons,
        observations=len(ordered),
    )


def draw_patience(law: PatienceLaw, rng: random.Random) -> float:
    """One caller's patience from the law (inverse transform: one uniform, one bisection)."""
    u = rng.random()
    i = bisect.bisect_left(law.cumulative, u)
    if i < len(law.times):
        return law.times[i]
    return law.tail_start_s + rng.expovariate(1.0 / law.tail_mean_s)
