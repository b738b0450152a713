"""The `[grading]` table of the TOML config: methods, bands, rules, guard, explanation fields.

Decoded with msgspec (unknown keys refused) and checked in `__post_init__`, so a scorecard whose
weights do not sum to 100, or whose bands overlap or leave a gap, is refused when the file is
loaded, with the criterion named, not halfway through a night's run.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from typing import Annotated, Final, Literal
from zoneinfo import ZoneInfo

import msgspec

from tierline.tiers.model import DEFAULT_TIER, TIERS, Tier

GRADES: Final = ("A", "B", "C", "D", "E")
VALUE_CLASSES: Final = ("A", "B", "C")
# Every explanation field a run can write into a record's CRM part, under this prefix.
PREFIX: Final = "grading."
EXPLAIN_FIELDS: Final = ("as_of", "rule", "segment", "rfm", "grade", "score", "points", "class", "amount", "profit")
# Raw spend and profit stay home unless asked for: the IVR token reads every record.
DEFAULT_EXPLAIN: Final = ("as_of", "rule", "segment", "rfm", "grade", "score", "points", "class")
Explained = Literal["as_of", "rule", "segment", "rfm", "grade", "score", "points", "class", "amount", "profit"]

_Share = Annotated[float, msgspec.Meta(gt=0, le=1)]


class RfmSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    high_from: Annotated[int, msgspec.Meta(ge=1, le=5)] = 3
    """A score at or above this is "high" when segments are named."""


class Band(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Points for a value in [min, max) (numeric; a missing bound is open) or equal to one of `values`."""

    points: Annotated[float, msgspec.Meta(ge=0)]
    min: float | None = None
    max: float | None = None
    values: list[str] | None = None


class Criterion(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    column: str
    weight: Annotated[float, msgspec.Meta(gt=0, le=100)]
    bands: list[Band]

    def __post_init__(self) -> None:
        if not self.bands:
            raise ValueError(f"criterion {self.name!r} has no bands")
        for band in self.bands:
            if band.points > self.weight:
                raise ValueError(
                    f"criterion {self.name!r}: a band gives {band.points:g} points,"
                    f" more than its weight {self.weight:g}"
                )
        categorical = [band.values is not None for band in self.bands]
        if any(categorical) and not all(categorical):
            raise ValueError(f"criterion {self.name!r} mixes numeric bands and value lists")
        if all(categorical):
            seen: dict[str, int] = {}
            for at, band in enumerate(self.bands):
                for value in band.values or []:
                    key = value.strip().lower()
                    if key in seen:
                        raise ValueError(
                            f"criterion {self.name!r}: value {value!r} is in bands"
                            f" {seen[key] + 1} and {at + 1} (overlap)"
                        )
                    seen[key] = at
            return
        ordered = sorted(self.bands, key=lambda band: -math.inf if band.min is None else band.min)
        for band in ordered:
            if band.min is not None and band.max is not None and band.min >= band.max:
                raise ValueError(f"criterion {self.name!r}: band [{band.min:g}, {band.max:g}) is empty")
        for low, high in itertools.pairwise(ordered):
            if low.max is None or high.min is None or high.min < low.max:
                raise ValueError(f"criterion {self.name!r}: bands {_band(low)} and {_band(high)} overlap")
            if high.min > low.max:
                raise ValueError(
                    f"criterion {self.name!r}: bands {_band(low)} and {_band(high)} leave a gap"
                    f" [{low.max:g}, {high.min:g})"
                )
        self.bands = ordered


def _band(band: Band) -> str:
    low = "-inf" if band.min is None else f"{band.min:g}"
    high = "inf" if band.max is None else f"{band.max:g}"
    return f"[{low}, {high})"


class ScorecardSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    criteria: list[Criterion]
    cut_points: list[float] = msgspec.field(default_factory=lambda: [80.0, 65.0, 50.0, 35.0])
    """The lowest total of grades A, B, C and D, descending; below the last is E."""

    def __post_init__(self) -> None:
        total = sum(criterion.weight for criterion in self.criteria)
        if abs(total - 100) > 1e-9:
            names = ", ".join(f"{c.name} {c.weight:g}" for c in self.criteria)
            raise ValueError(f"scorecard weights sum to {total:g}, not 100 ({names})")
        names_seen = [criterion.name for criterion in self.criteria]
        if len(set(names_seen)) != len(names_seen):
            raise ValueError("scorecard criteria must have distinct names")
        if len(self.cut_points) != len(GRADES) - 1:
            raise ValueError(
                f"cut_points lists the lowest totals of A, B, C and D: 4 numbers, not {len(self.cut_points)}"
            )
        if any(not 0 <= cut <= 100 for cut in self.cut_points) or any(
            a <= b for a, b in itertools.pairwise(self.cut_points)
        ):
            raise ValueError(f"cut_points must be strictly descending between 0 and 100, not {self.cut_points}")


class ValueShareSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    by: Literal["profit", "amount"] = "profit"
    a_share: _Share = 0.80
    b_share: _Share = 0.95

    def __post_init__(self) -> None:
        if self.a_share > self.b_share:
            raise ValueError(f"a_share ({self.a_share}) must not exceed b_share ({self.b_share})")


class Rule(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, rename={"value_class": "class"}):
    """One tier rule: every condition given must hold (none given: it matches everyone)."""

    tier: Tier
    name: str = ""
    segment: list[str] = []
    grade: list[str] = []
    value_class: list[str] = []
    score_at_least: float | None = None
    rfm_at_least: Annotated[int, msgspec.Meta(ge=3, le=15)] | None = None
    column: str = ""
    values: list[str] = []

    def __post_init__(self) -> None:
        if bool(self.column) != bool(self.values):
            raise ValueError(f"rule {self.label()!r}: `column` and `values` go together")
        bad = [grade for grade in self.grade if grade not in GRADES]
        if bad:
            raise ValueError(f"rule {self.label()!r}: unknown grade {bad[0]!r} (A to E)")
        bad = [value for value in self.value_class if value not in VALUE_CLASSES]
        if bad:
            raise ValueError(f"rule {self.label()!r}: unknown class {bad[0]!r} (A, B or C)")

    def label(self) -> str:
        if self.name:
            return self.name
        parts = []
        if self.segment:
            parts.append("segment " + "|".join(self.segment))
        if self.grade:
            parts.append("grade " + "|".join(self.grade))
        if self.value_class:
            parts.append("class " + "|".join(self.value_class))
        if self.score_at_least is not None:
            parts.append(f"score>={self.score_at_least:g}")
        if self.rfm_at_least is not None:
            parts.append(f"rfm>={self.rfm_at_least}")
        if self.column:
            parts.append(f"{self.column}=" + "|".join(self.values))
        return (" & ".join(parts) or "always") + f" -> {self.tier}"


class GuardSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    max_tier_change: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.10
    min_tier_size: Annotated[int, msgspec.Meta(ge=0)] = 100
    max_tier_shift: Annotated[float, msgspec.Meta(ge=0)] = 0.25


class GradingSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    timezone: str = "UTC"
    as_of: dt.date | None = None
    """Pinned grading date; default: the day before the run, in `timezone`."""
    refunds: Literal["count", "ignore", "reject"] = "count"
    """Negative amounts: counted in M (and value share), left out, or rejected as bad rows."""
    blacklist_column: str = "blacklist"
    pin_column: str = "pinned_tier"
    crm_columns: list[str] = []
    """Customer-file columns that travel in the record besides customer_id."""
    caller_precedence: list[Tier] = msgspec.field(default_factory=lambda: ["blacklisted", "vip", "mid", "standard"])
    """One number on two customers: the tier earlier here wins."""
    max_reject_ratio: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.01
    explain: list[Explained] = msgspec.field(default_factory=lambda: list(DEFAULT_EXPLAIN))
    default_tier: Tier = DEFAULT_TIER
    rfm: RfmSettings | None = None
    scorecard: ScorecardSettings | None = None
    value_share: ValueShareSettings | None = None
    rules: list[Rule] = []
    guard: GuardSettings = msgspec.field(default_factory=GuardSettings)

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (KeyError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        reserved = [name for name in self.crm_columns if name.lower().startswith(PREFIX)]
        if reserved:
            raise ValueError(f"crm_columns: {reserved[0]!r} uses the reserved prefix {PREFIX!r}")
        if sorted(self.caller_precedence) != sorted(TIERS):
            raise ValueError(f"caller_precedence must list each tier once ({', '.join(TIERS)})")
        if not (self.rfm or self.scorecard or self.value_share):
            raise ValueError(
                "configure at least one method: [grading.rfm], [grading.scorecard] or [grading.value_share]"
            )
        for rule in self.rules:
            if rule.segment and self.rfm is None:
                raise ValueError(f"rule {rule.label()!r} matches a segment but [grading.rfm] is not configured")
            if (rule.grade or rule.score_at_least is not None) and self.scorecard is None:
                raise ValueError(f"rule {rule.label()!r} matches a grade but [grading.scorecard] is not configured")
            if rule.value_class and self.value_share is None:
                raise ValueError(f"rule {rule.label()!r} matches a class but [grading.value_share] is not configured")


class _File(msgspec.Struct):
    grading: GradingSettings | None = None


def load_grading(raw: bytes, source: str = "config") -> GradingSettings:
    """The `[grading]` table of a TOML config (other tables are the service's, not read here)."""
    try:
        found = msgspec.toml.decode(raw, type=_File)
    except msgspec.DecodeError as exc:
        raise GradingConfigError(f"{source}: invalid [grading] ({exc})") from None
    if found.grading is None:
        raise GradingConfigError(f"{source} has no [grading] table")
    return found.grading


class GradingConfigError(ValueError):
    code = "bad_grading_config"
