"""Which distributions a run draws its handle times and patience from, and why (`Sources`).

Pure. `distributions`:
- `exponential`: exponential handle times with the given `aht_s` (else the mean the arrivals'
  source observed) and exponential patience with the given `patience_s` (else nobody hangs up);
- `archive`: what the history archive saw in the window (admin/simulation/samples.py);
  needs history on and at least MIN_HANDLE_SAMPLES ended calls, else 422;
- `auto` (the default): `archive` when history is on and the window has enough, else
  `exponential`; with a few abandons (1..MIN_ABANDONS − 1) patience is exponential with the
  observed mean (the censored maximum-likelihood estimate).
A figure given (`aht_s`, `patience_s`) is always used, as an exponential's mean: the planner
asked for it.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from tierline.admin.simulation import samples as sm
from tierline.admin.simulation.scenario import ScenarioError
from tierline.admin.staffing.patience import observed_patience

Distributions = Literal["auto", "archive", "exponential"]


class Draws(msgspec.Struct, kw_only=True):
    aht_s: float | None  # the mean handle time (of the sample, when one is drawn from)
    handle_sample: list[float] | None
    patience_s: float | None
    patience_law: sm.PatienceLaw | None
    sources: sm.Sources


def choose(
    mode: Distributions,
    seen: sm.Seen | None,
    window: str | None,
    *,
    aht_given: float | None,
    aht_known: float | None,
    aht_known_from: str,
    patience_given: float | None,
) -> Draws:
    """`seen`: the archive window's samples (None: history is off); `aht_known`: the mean the
    arrivals' source observed (`aht_known_from`: observed, archive), used when nothing else is."""
    if mode == "archive" and seen is None:
        raise ScenarioError("no_history", "distributions archive needs the history archive on")
    use = seen if mode != "exponential" else None
    enough = use is not None and len(use.handle_s) >= sm.MIN_HANDLE_SAMPLES
    if mode == "archive" and aht_given is None and not enough:
        have = 0 if use is None else len(use.handle_s)
        raise ScenarioError(
            "no_samples",
            f"{have} calls ended in the archive window {window}: at least {sm.MIN_HANDLE_SAMPLES} are needed "
            "to draw handle times from (give aht_s, or distributions exponential)",
        )
    handle_sample: list[float] | None = None
    aht: float | None
    if aht_given is not None:
        aht, handle_from = aht_given, "given"
    elif enough and use is not None:
        handle_sample = use.handle_s
        aht, handle_from = sum(handle_sample) / len(handle_sample), "archive"
    else:
        aht, handle_from = aht_known, aht_known_from
    patience_s, law, patience_from = _patience(use, patience_given)
    abandons = 0 if use is None else sum(1 for _, gone in use.waits if gone)
    sources = sm.Sources(
        handle="archive" if handle_sample is not None else "exponential",
        handle_from=handle_from,
        handle_samples=0 if handle_sample is None else len(handle_sample),
        patience="archive" if law is not None else "none" if patience_s is None else "exponential",
        patience_from=patience_from,
        abandons_seen=abandons,
        waits_seen=0 if use is None else len(use.waits),
        window=window if use is not None else None,
    )
    return Draws(aht_s=aht, handle_sample=handle_sample, patience_s=patience_s, patience_law=law, sources=sources)


def _patience(seen: sm.Seen | None, given: float | None) -> tuple[float | None, sm.PatienceLaw | None, str | None]:
    if given is not None:
        return given, None, "given"
    if seen is None:
        return None, None, None
    law = sm.kaplan_meier(seen.waits)
    if law is None:
        return None, None, None  # no abandon seen: nobody hangs up
    if law.abandons >= sm.MIN_ABANDONS:
        return None, law, "archive"
    mean = observed_patience(sum(w for w, _ in seen.waits), law.abandons)
    return None if mean is None else max(mean, 1.0), None, "observed"
