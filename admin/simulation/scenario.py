"""What a simulation is asked to run, and the checks that turn bad input into a coded error.

Pure: text and numbers in, a validated `Scenario` out. Intervals are 15 minutes; an arrival
curve gives each tier's expected calls per interval (the mean of a Poisson count), a staffing
plan gives agents per stretch of time (rows must tile the period: no gap, no overlap).

CSV forms (header line first, `HH:MM` times from the period's start, 24:00 allowed as an end):
- arrivals: `start,<tier>[,<tier>...]`, one row per 15-minute interval, e.g. `08:00,2,10,40,1`;
  intervals must be consecutive (a quiet interval is a row of zeros);
- staffing: `start,end,agents`, e.g. `08:00,12:00,14`; ends and starts on 15-minute marks.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from typing import Annotated, Final

import msgspec

from tierline.admin.simulation.samples import PatienceLaw, PatienceSource, Sources
from tierline.queue.policy import Policy, TierPolicy
from tierline.tiers.model import TIERS, Tier, parse_tier

INTERVAL_S: Final = 900
MAX_INTERVALS: Final = 7 * 96  # a week
MAX_CALLS_PER_INTERVAL: Final = 100_000.0
MAX_AGENTS: Final = 10_000
MAX_REPLICATIONS: Final = 100
MAX_EXPECTED_CALLS: Final = 2_000_000.0  # over all replications: bounds a job's run time
MAX_SECONDS: Final = 86_400.0

Seconds = Annotated[float, msgspec.Meta(gt=0, le=MAX_SECONDS)]


class ScenarioError(ValueError):
    """Bad input, with the machine code the API answers (422)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ArrivalCurve(msgspec.Struct, frozen=True, kw_only=True):
    """Expected calls per tier in each consecutive 15-minute interval from `start` (epoch s)."""

    start: float
    intervals: list[dict[Tier, float]]
    source: str = "csv"  # csv | observed | archive:<date> | weekday average ...
    origin: float | None = None  # what the CSV's HH:MM count from (its day's midnight), for messages

    @property
    def end(self) -> float:
        return self.start + INTERVAL_S * len(self.intervals)


class Shift(msgspec.Struct, frozen=True, array_like=True):
    """`agents` on duty from `start` to `end` (epoch seconds)."""

    start: float
    end: float
    agents: int


class PolicyTry(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """The policy to try, over the configured one: only what is given changes."""

    tiers: dict[Tier, TierPolicy] = {}
    max_waiting: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] | None = None  # 0 = unbounded
    aging_s: Annotated[float, msgspec.Meta(ge=0, le=MAX_SECONDS)] | None = None  # 0 = off
    short_abandon_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] | None = None


class Scenario(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one simulation needs; it travels to the worker process as JSON."""

    arrivals: ArrivalCurve
    staffing: list[Shift]
    aht_s: float
    patience_s: float | None  # mean patience; None: nobody hangs up (Erlang C)
    callback_handle_s: float
    callback_reach: float  # the share of callback attempts that reach the customer
    policy: Policy
    seed: int
    replications: int
    warmup_intervals: int = 0  # left out of the period totals: steady-state figures
    handle_sample: list[float] | None = None  # drawn with replacement instead of Exp(aht_s)
    patience_law: PatienceLaw | None = None  # drawn from instead of Exp(patience_s)
    sources: Sources = Sources()


def check_number(name: str, value: float, low: float, high: float, code: str = "invalid_field") -> float:
    if not (math.isfinite(value) and low <= value <= high):
        raise ScenarioError(code, f"{name} must be a number between {low:g} and {high:g}, not {value!r}")
    return value


def _clock(text: str, line: int, what: str) -> int:
    """`HH:MM` → seconds from the period start (hours may pass 24 for a multi-day period)."""
    hours, sep, minutes = text.strip().partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2 or int(minutes) >= 60:
        raise ScenarioError("invalid_csv", f"line {line}: {what} must be HH:MM, not {text!r}")
    seconds = int(hours) * 3600 + int(minutes) * 60
    if seconds % INTERVAL_S:
        raise ScenarioError("invalid_csv", f"line {line}: {what} {text!r} is not on a 15-minute mark")
    return seconds


def _rows(text: str, what: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    lines = [row for row in csv.reader(io.StringIO(text.strip()))]
    if len(lines) < 2:
        raise ScenarioError("invalid_csv", f"the {what} CSV needs a header line and at least one row")
    header = [cell.strip().lower() for cell in lines[0]]
    return header, [(n, row) for n, row in enumerate(lines[1:], start=2) if any(cell.strip() for cell in row)]


def _count(text: str, line: int, column: str, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ScenarioError("invalid_csv", f"line {line}: {column} must be a number, not {text!r}") from None
    if not (math.isfinite(value) and 0 <= value <= high):
        raise ScenarioError("invalid_rate", f"line {line}: {column} must be between 0 and {high:g}, not {text!r}")
    return value


def parse_arrivals(text: str, start: float) -> ArrivalCurve:
    """An arrival curve from CSV (`start,<tier>...`), its first row's time counted from `start`."""
    header, rows = _rows(text, "arrivals")
    if header[0] != "start":
        raise ScenarioError("invalid_csv", "the arrivals CSV's first column must be `start`")
    tiers: list[Tier] = []
    for name in header[1:]:
        tier = parse_tier(name)
        if tier is None or tier in tiers:
            raise ScenarioError("invalid_csv", f"arrivals column {name!r} is not a tier, or repeats one")
        tiers.append(tier)
    if not tiers or not rows:
        raise ScenarioError("invalid_csv", "the arrivals CSV needs at least one tier column and one row")
    if len(rows) > MAX_INTERVALS:
        raise ScenarioError("invalid_csv", f"at most {MAX_INTERVALS} intervals (a week)")
    intervals: list[dict[Tier, float]] = []
    first = expected = _clock(rows[0][1][0], rows[0][0], "start")
    for line, row in rows:
        if len(row) != len(header):
            raise ScenarioError("invalid_csv", f"line {line}: {len(row)} cells where the header has {len(header)}")
        at = _clock(row[0], line, "start")
        if at < expected:
            raise ScenarioError("interval_overlap", f"line {line}: interval {row[0]} repeats or goes back in time")
        if at > expected:
            raise ScenarioError("interval_gap", f"line {line}: no row for the interval(s) before {row[0]}")
        cells = zip(tiers, row[1:], strict=True)
        counts = {tier: _count(cell, line, tier, MAX_CALLS_PER_INTERVAL) for tier, cell in cells}
        intervals.append({tier: counts.get(tier, 0.0) for tier in TIERS})
        expected += INTERVAL_S
    return ArrivalCurve(start=start + first, intervals=intervals, source="csv", origin=start)


def parse_staffing(text: str, start: float) -> list[Shift]:
    """A staffing plan from CSV (`start,end,agents`), times counted from `start`, in time order."""
    header, rows = _rows(text, "staffing")
    if header != ["start", "end", "agents"]:
        raise ScenarioError("invalid_csv", "the staffing CSV's header must be start,end,agents")
    shifts = []
    for line, row in rows:
        if len(row) != 3:
            raise ScenarioError("invalid_csv", f"line {line}: 3 cells expected")
        begin, end = _clock(row[0], line, "start"), _clock(row[1], line, "end")
        if end <= begin:
            raise ScenarioError("invalid_plan", f"line {line}: end {row[1]} is not after start {row[0]}")
        agents = _count(row[2], line, "agents", MAX_AGENTS)
        if agents != int(agents):
            raise ScenarioError("invalid_plan", f"line {line}: agents must be a whole number")
        shifts.append(Shift(start + begin, start + end, int(agents)))
    return shifts


def check_plan(shifts: list[Shift], curve: ArrivalCurve) -> list[Shift]:
    """The plan sorted, tiling [curve start, ≥ curve end) with no gap and no overlap."""
    ordered = sorted(shifts, key=lambda s: s.start)
    origin = curve.start if curve.origin is None else curve.origin
    if not ordered:
        raise ScenarioError("invalid_plan", "the staffing plan has no rows")
    if ordered[0].start > curve.start:
        raise ScenarioError("plan_gap", "the staffing plan starts after the first arrival interval")
    for before, after in itertools.pairwise(ordered):
        if after.start < before.end:
            raise ScenarioError("plan_overlap", f"staffing rows overlap at {_hhmm(after.start - origin)}")
        if after.start > before.end:
            raise ScenarioError(
                "plan_gap",
                f"no staffing between {_hhmm(before.end - origin)} and {_hhmm(after.start - origin)}",
            )
    if ordered[-1].end < curve.end:
        raise ScenarioError("plan_gap", "the staffing plan ends before the last arrival interval does")
    if ordered[-1].end - ordered[0].start > MAX_INTERVALS * INTERVAL_S:
        raise ScenarioError("invalid_plan", "the staffing plan spans more than a week")
    return ordered


def _hhmm(offset: float) -> str:
    minutes = int(offset // 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def try_policy(base: Policy, change: PolicyTry) -> Policy:
    """One queue (`default`, with the configured default queue's settings) under `base` with
    `change` laid over it: what the simulation runs. Every other setting is carried over."""
    # A service's Settings carry more than the Policy (server, ...): only the Policy part matters.
    data = {k: v for k, v in msgspec.to_builtins(base).items() if k in Policy.__struct_fields__}
    queue = data["queues"].get("default", {})
    if change.max_waiting is not None:
        queue["max_waiting"] = change.max_waiting
    data["queues"] = {"default": queue}
    tiers = data.setdefault("tiers", {})
    for tier, given in change.tiers.items():
        tiers.setdefault(tier, {}).update(msgspec.to_builtins(given))
    if change.aging_s is not None:
        data["aging_s"] = change.aging_s
    if change.short_abandon_s is not None:
        data["short_abandon_s"] = change.short_abandon_s
    try:
        return msgspec.convert(data, Policy)
    except msgspec.ValidationError as exc:
        raise ScenarioError("invalid_policy", f"the policy to try is not valid ({exc})") from None


def scenario(
    curve: ArrivalCurve,
    shifts: list[Shift],
    policy: Policy,
    *,
    aht_s: float,
    patience_s: float | None,
    callback_handle_s: float | None,
    callback_reach: float,
    seed: int,
    replications: int,
    warmup_intervals: int = 0,
    handle_sample: list[float] | None = None,
    patience_law: PatienceLaw | None = None,
    sources: Sources | None = None,
) -> Scenario:
    """A checked scenario, or ScenarioError. Without `sources`, they are worked out from what is
    given (a sample or law given is the archive's; a mean, given)."""
    check_number("aht_s", aht_s, 1.0, MAX_SECONDS, "invalid_aht")
    if patience_s is not None:
        check_number("patience_s", patience_s, 1.0, MAX_SECONDS, "invalid_patience")
    if handle_sample is not None and not (
        handle_sample and all(math.isfinite(h) and 0.0 <= h <= MAX_SECONDS for h in handle_sample)
    ):
        raise ScenarioError("invalid_aht", f"handle times to sample must be 0..{MAX_SECONDS:g} s, and some")
    handle = (
        aht_s if callback_handle_s is None else check_number("callback_handle_s", callback_handle_s, 1.0, MAX_SECONDS)
    )
    check_number("callback_reach", callback_reach, 0.0, 1.0)
    check_number("replications", replications, 1, MAX_REPLICATIONS)
    check_number("seed", seed, 0, 2**63 - 1)
    check_number("warmup_intervals", warmup_intervals, 0, len(curve.intervals) - 1)
    expected = sum(sum(counts.values()) for counts in curve.intervals) * replications
    if expected > MAX_EXPECTED_CALLS:
        raise ScenarioError(
            "too_large", f"{expected:.0f} expected calls over all replications: at most {MAX_EXPECTED_CALLS:.0f}"
        )
    return Scenario(
        arrivals=curve,
        staffing=check_plan(shifts, curve),
        aht_s=aht_s,
        patience_s=patience_s,
        callback_handle_s=handle,
        callback_reach=callback_reach,
        policy=policy,
        seed=seed,
        replications=replications,
        warmup_intervals=warmup_intervals,
        handle_sample=handle_sample,
        patience_law=patience_law,
        sources=sources or _sources(handle_sample, patience_s, patience_law),
    )


def _sources(handle: list[float] | None, patience_s: float | None, law: PatienceLaw | None) -> Sources:
    patience: PatienceSource = "archive" if law is not None else "none" if patience_s is None else "exponential"
    return Sources(
        handle="exponential" if handle is None else "archive",
        handle_from="given" if handle is None else "archive",
        handle_samples=0 if handle is None else len(handle),
        patience=patience,
        patience_from=None if patience == "none" else "given" if law is None else "archive",
    )
