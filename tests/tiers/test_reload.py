"""The swap rule: at least one valid row, and rejects within the ratio of the data rows."""

from __future__ import annotations

import pytest

from tierline.tiers.reload import should_swap


@pytest.mark.parametrize(
    ("loaded", "rejected", "rows", "ratio", "swaps"),
    [
        (99, 1, 100, 0.01, True),  # exactly at the limit
        (98, 2, 100, 0.01, False),  # one over
        (999_990, 10_000, 1_000_000, 0.01, True),
        (989_999, 10_001, 1_000_000, 0.01, False),
        (71, 29, 100, 0.29, True),  # 0.29 * 100 is 28.999... in binary: the decimal is meant
        (70, 30, 100, 0.29, False),
        (10, 0, 10, 0.0, True),  # a zero ratio takes only a perfect file
        (9, 1, 10, 0.0, False),
        (0, 0, 0, 0.01, False),  # an empty file never wipes the table
        (0, 0, 0, 1.0, False),
        (0, 5, 5, 1.0, False),  # all rejected: nothing valid to swap in
        (1, 4, 5, 1.0, True),
        (1, 0, 1, 0.01, True),
    ],
)
def test_should_swap(loaded: int, rejected: int, rows: int, ratio: float, swaps: bool) -> None:
    assert should_swap(loaded, rejected, rows, ratio) is swaps


@pytest.mark.parametrize("ratio", [-0.01, 1.5])
def test_a_ratio_outside_0_to_1_is_refused(ratio: float) -> None:
    with pytest.raises(ValueError, match="max_reject_ratio"):
        should_swap(1, 0, 1, ratio)
