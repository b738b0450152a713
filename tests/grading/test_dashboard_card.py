"""The dashboard's grading card, in real Chromium: it says when no run has been applied, then
shows the kept report's tiers and migration matrix (GET /admin/grading)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from tests.http.conftest import Api, ApiFactory, make_api  # noqa: F401  (the fixture)
from tests.http.test_dashboard import ADMIN, ADMIN_TOKEN, browser, guarded  # noqa: F401  (fixtures)
from tierline.tiers.grading.config import GuardSettings
from tierline.tiers.grading.migration import compare
from tierline.tiers.grading.run import GradingReport
from tierline.tiers.model import Tier

READ_CARD = """
const card = document.getElementById('grading');
return {state: card.dataset.state, none: !document.getElementById('grading-none').hidden,
        summary: document.getElementById('grading-summary').textContent,
        rows: Object.fromEntries(Array.from(document.querySelectorAll('#grading-rows tr')).map(tr => [tr.dataset.tier,
          Object.fromEntries(Array.from(tr.querySelectorAll('td[data-field]')).map(td => [td.dataset.field,
            td.dataset.value]))]))};
"""


async def card_when(driver: Any, state: str) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 25
    seen: dict[str, Any] = {}
    while asyncio.get_running_loop().time() < deadline:
        seen = await asyncio.to_thread(driver.execute_script, READ_CARD)
        if seen["state"] == state:
            return seen
        await asyncio.sleep(0.2)
    raise AssertionError(f"the card never reached {state}; last seen: {seen}")


def report() -> GradingReport:
    before: dict[str, Tier] = {f"+861380000{at:04d}": "vip" if at < 10 else "standard" for at in range(40)}
    after: dict[str, Tier] = {caller: "mid" if caller.endswith("0001") else tier for caller, tier in before.items()}
    return GradingReport(
        as_of="2026-11-30",
        timezone="Asia/Shanghai",
        customers=40,
        callers=40,
        data_rows=400,
        rejected_rows=0,
        max_reject_ratio=0.01,
        problems=[],
        problem_count=0,
        conflicts=[],
        conflict_count=0,
        tiers={"vip": 9, "mid": 1, "standard": 30, "blacklisted": 0},
        rules={"default": 30, "segment important value -> vip": 10},
        migration=compare(before, after, GuardSettings()),
    )


async def test_the_card_says_none_then_shows_the_kept_report(guarded: Api, browser: Any) -> None:  # noqa: F811
    await asyncio.to_thread(browser.get, f"{guarded.base}/admin/#token={ADMIN_TOKEN}")
    seen = await card_when(browser, "none")
    assert seen["none"] and seen["rows"] == {}
    body = msgspec.json.encode(report())
    status, _ = await guarded.call(
        "PUT", "/admin/grading", data=body, headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert status == 204
    await asyncio.to_thread(browser.refresh)
    seen = await card_when(browser, "ready")
    assert not seen["none"] and "2026-11-30" in seen["summary"]
    vip = seen["rows"]["vip"]
    assert (vip["numbers"], vip["before"], vip["to_vip"], vip["to_mid"]) == ("9", "10", "9", "1")
    assert seen["rows"]["standard"]["to_standard"] == "30"
