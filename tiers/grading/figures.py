"""What a grading pass publishes per method: the figures of the report (`run.GradingReport`).

Pure data; the engine (`engine`) fills them, `tierline grade` prints them, `GET /admin/grading`
serves them.
"""

from __future__ import annotations

import msgspec

from tierline.tiers.grading.rfm import Cutoff


class RfmReport(msgspec.Struct, kw_only=True):
    graded: int
    high_from: int
    cutoffs: dict[str, list[Cutoff]]
    notes: list[str]
    segments: dict[str, int]


class ScorecardReport(msgspec.Struct, kw_only=True):
    grades: dict[str, int]
    no_band: dict[str, int]
    """Per criterion: customers whose value no band holds (0 points)."""


class ValueShareReport(msgspec.Struct, kw_only=True):
    by: str
    total: float
    classes: dict[str, int]
    class_share: dict[str, float]
