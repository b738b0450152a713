"""Value share (Pareto / ABC): A while the customers worth strictly more hold less than `a_share`
of the total, B below `b_share`, else C.

Pure; O(n log n). Ties share a class because the test looks only at strictly greater values.
Only positive values make up the total: a customer worth nothing (or losing money) is C.
"""

from __future__ import annotations

from collections.abc import Sequence


def classes(values: Sequence[float], a_share: float, b_share: float) -> list[str]:
    # Summed in sorted order, so the float sums, and every class, are the same whatever the row order.
    positive = sorted((value for value in values if value > 0), reverse=True)
    above: dict[float, float] = {}
    total = 0.0
    for value in positive:
        if value not in above:
            above[value] = total
        total += value
    a_limit = a_share * total
    b_limit = b_share * total
    result = []
    for value in values:
        if value <= 0:
            result.append("C")
            continue
        greater = above[value]
        result.append("A" if greater < a_limit else "B" if greater < b_limit else "C")
    return result
