"""Value share (Pareto / ABC): A while the customers worth strictly more hold less than `a_share`
of the total, B below `b_share`, else C.

Pure; O(n log n). Ties share a class because the test looks only at strictly greater values.
Only positive values make up the total: a customer worth nothing (or losing money) is C.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction


def classes(values: Sequence[float], a_share: float, b_share: float) -> list[str]:
    positive = sorted((value for value in values if value > 0), reverse=True)
    total = Fraction(0)
    # Exact sums: a customer right at the 80 % edge must not flip class with the row order.
    above: dict[float, Fraction] = {}
    for value in positive:
        if value not in above:
            above[value] = total
        total += Fraction(value)
    a_limit = Fraction(str(a_share)) * total
    b_limit = Fraction(str(b_share)) * total
    result = []
    for value in values:
        if value <= 0:
            result.append("C")
            continue
        greater = above[value]
        result.append("A" if greater < a_limit else "B" if greater < b_limit else "C")
    return result
