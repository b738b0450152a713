"""The migration report and the guard: how a run would move callers between tiers, and whether
that looks like a broken export rather than a change in the business.

Pure: tables in, a `Migration` out. Callers are matched by number; only numbers present in both
tables count as changed or unchanged (new and gone numbers are counted apart).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Final

import msgspec

from tierline.tiers.grading.config import GuardSettings
from tierline.tiers.model import TIER_RANK, TIERS, Tier

MOVERS_SHOWN: Final = 20
_PSI_FLOOR: Final = 1e-4  # an empty bin would make the logarithm infinite


class Mover(msgspec.Struct, frozen=True):
    caller: str
    before: Tier
    after: Tier


class Migration(msgspec.Struct, kw_only=True):
    matrix: dict[str, dict[str, int]]
    """from-tier -> to-tier -> numbers present in both tables."""
    before: dict[str, int]
    after: dict[str, int]
    common: int
    changed: int
    added: int
    removed: int
    movers: list[Mover]
    psi: dict[str, float] = {}
    refusals: list[str] = []
    """Why the guard refuses (empty: the run may be applied)."""

    @property
    def change_share(self) -> float:
        return self.changed / self.common if self.common else 0.0


def compare(before: Mapping[str, Tier], after: Mapping[str, Tier], guard: GuardSettings) -> Migration:
    """O(n) in the callers of both tables."""
    matrix: dict[str, dict[str, int]] = {tier: dict.fromkeys(TIERS, 0) for tier in TIERS}
    movers: list[Mover] = []
    common = changed = 0
    for caller, old in before.items():
        new = after.get(caller)
        if new is None:
            continue
        common += 1
        matrix[old][new] += 1
        if new != old:
            changed += 1
            movers.append(Mover(caller, old, new))
    # The largest moves first (vip -> standard before vip -> mid), then by number for a stable list.
    movers.sort(key=lambda m: (-abs(TIER_RANK[m.after] - TIER_RANK[m.before]), m.caller))
    sizes_before = Counter(before.values())
    sizes_after = Counter(after.values())
    migration = Migration(
        matrix=matrix,
        before={tier: sizes_before.get(tier, 0) for tier in TIERS},
        after={tier: sizes_after.get(tier, 0) for tier in TIERS},
        common=common,
        changed=changed,
        added=sum(1 for caller in after if caller not in before),
        removed=sum(1 for caller in before if caller not in after),
        movers=movers[:MOVERS_SHOWN],
    )
    migration.refusals = refusals(migration, guard)
    return migration


def refusals(migration: Migration, guard: GuardSettings) -> list[str]:
    found = []
    if migration.common and migration.changed > guard.max_tier_change * migration.common:
        found.append(
            f"{migration.changed} of {migration.common} numbers in both tables would change tier"
            f" ({migration.change_share:.1%} > max_tier_change {guard.max_tier_change:.0%})"
        )
    for tier in TIERS:
        old, new = migration.before[tier], migration.after[tier]
        if old >= max(guard.min_tier_size, 1) and abs(new - old) > guard.max_tier_shift * old:
            found.append(
                f"tier {tier} would go from {old} to {new} numbers"
                f" ({(new - old) / old:+.1%}, beyond max_tier_shift {guard.max_tier_shift:.0%})"
            )
    return found


def psi(expected: Sequence[float], actual: Sequence[float], edges: Sequence[float]) -> float:
    """Population stability index of `actual` against `expected`, over bins [edges[i], edges[i+1]).

    Values below the first edge fall in the first bin, at or above the last edge in the last.
    """
    if not expected or not actual:
        return 0.0
    shares = [_shares(values, edges) for values in (expected, actual)]
    return float(sum((a - e) * math.log(a / e) for e, a in zip(shares[0], shares[1], strict=True)))


def _shares(values: Sequence[float], edges: Sequence[float]) -> list[float]:
    bins = [0] * (len(edges) - 1)
    for value in values:
        at = 0
        while at < len(bins) - 1 and value >= edges[at + 1]:
            at += 1
        bins[at] += 1
    return [max(count / len(values), _PSI_FLOOR) for count in bins]


RFM_TOTAL_EDGES: Final = [float(total) for total in range(3, 17)]  # one bin per total 3..15
SCORE_EDGES: Final = [float(edge) for edge in range(0, 101, 10)]  # ten bins of 10 points
