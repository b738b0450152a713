"""The migration report and the guard, pure: matrix, shares, movers, PSI, and when it refuses."""

from __future__ import annotations

from tierline.tiers.grading.config import GuardSettings
from tierline.tiers.grading.migration import RFM_TOTAL_EDGES, compare, psi
from tierline.tiers.model import Tier


def table(vip: int, mid: int, standard: int, start: int = 0) -> dict[str, Tier]:
    counts: list[tuple[Tier, int]] = [("vip", vip), ("mid", mid), ("standard", standard)]
    tiers = [tier for tier, count in counts for _ in range(count)]
    return {f"+86138{start + i:08d}": tier for i, tier in enumerate(tiers)}


def test_matrix_shares_and_movers() -> None:
    before = table(2, 3, 5)
    after = dict(before)
    first_vip = next(iter(before))
    after[first_vip] = "standard"
    after["+8613900000000"] = "mid"
    del after[list(before)[-1]]
    found = compare(before, after, GuardSettings(min_tier_size=1000))
    assert found.matrix["vip"]["standard"] == 1 and found.matrix["vip"]["vip"] == 1
    assert found.common == 9 and found.changed == 1 and found.added == 1 and found.removed == 1
    assert found.before["vip"] == 2 and found.after["vip"] == 1
    assert [(m.caller, m.before, m.after) for m in found.movers] == [(first_vip, "vip", "standard")]
    assert found.refusals == ["1 of 9 numbers in both tables would change tier (11.1% > max_tier_change 10%)"]


def test_a_broken_export_that_demotes_every_vip_is_refused() -> None:
    before = table(150, 300, 1000)
    after = {caller: ("standard" if tier == "vip" else tier) for caller, tier in before.items()}
    found = compare(before, after, GuardSettings())
    # 150 of 1450 change (10.3 %) and the vip tier (>= 100 numbers) shrinks by 100 %.
    assert len(found.refusals) == 2
    assert "tier vip would go from 150 to 0 numbers (-100.0%" in found.refusals[1]


def test_small_tiers_may_shift_and_a_quiet_night_passes() -> None:
    before = table(10, 300, 1000)
    after = dict(before)
    for caller in list(before)[:8]:  # 8 of 10 vips leave: a small tier, under min_tier_size
        after[caller] = "mid"
    assert compare(before, after, GuardSettings()).refusals == []


def test_psi_is_zero_for_the_same_population_and_grows_with_drift() -> None:
    same = [3, 6, 9, 12, 15] * 20
    assert psi(same, list(same), RFM_TOTAL_EDGES) == 0.0
    drifted = [15] * 100
    assert psi(same, drifted, RFM_TOTAL_EDGES) > 1.0
