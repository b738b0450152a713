"""The reload rule: when a freshly parsed tier file may replace the live table, and the answer.

Owns the decision alone, so every store (memory, Redis) swaps on exactly the same terms and the
HTTP and CLI layers report the same `ReloadResult`.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Final

import msgspec

from tierline.tiers.parse import Rejection

# The share of rejected rows past which a reload keeps the table it has (`should_swap`).
DEFAULT_MAX_REJECT_RATIO: Final = 0.01


class ReloadResult(msgspec.Struct):
    """What a reload did: the body of `POST /admin/tiers/reload` and the CLI's report."""

    version: int
    """The table version after the reload: one more than before if it swapped, else unchanged."""
    loaded: int
    """Valid rows in the file."""
    rejected: list[Rejection]
    """The first rejected rows (at most 1,000), by line."""
    rejected_count: int
    swapped: bool


def should_swap(loaded: int, rejected_count: int, data_rows: int, max_reject_ratio: float) -> bool:
    """True when the file may go live: at least one valid row, rejects within the ratio.

    The boundary is inclusive and exact: with 0.01, 1 rejected row in 100 swaps, 2 do not.
    """
    if not 0.0 <= max_reject_ratio <= 1.0:
        raise ValueError(f"max_reject_ratio must be between 0 and 1, not {max_reject_ratio}")
    # Through the decimal the operator wrote: 0.29 * 100 is 28.999... in binary floating
    # point, which would refuse a file with exactly 29 bad rows in 100.
    allowed = Fraction(str(max_reject_ratio)) * data_rows
    return loaded >= 1 and rejected_count <= allowed
