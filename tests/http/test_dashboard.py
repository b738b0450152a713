"""`GET /admin/`: the live dashboard, in a real headless Chromium against a real server.

The browser test needs Debian's chromium and chromium-driver (`.ci/browser-deps` installs
them); without them it skips and says so. The HTTP checks around it always run.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.http.conftest import Api, ApiFactory
from tierline.admin.sla_status import sla_status

ADMIN_TOKEN = "boss-secret-7"
API_TOKEN = "ivr-secret-7"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
IVR = {"Authorization": f"Bearer {API_TOKEN}"}
TOKENS = {"TIERLINE_ADMIN_TOKEN": ADMIN_TOKEN, "TIERLINE_API_TOKEN": API_TOKEN}
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
DASHBOARD_JS = Path(__file__).resolve().parents[2] / "admin" / "static" / "dashboard.js"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1500,1150",
)


@pytest.fixture
async def guarded(make_api: ApiFactory) -> Api:
    api: Api = await make_api("[queues.sales]\n", env=TOKENS)
    return api


# --- plain HTTP: the page is public, the data is not --------------------------------------------


async def test_page_and_assets_are_public_and_locked_down(guarded: Api) -> None:
    async with guarded.session.get(guarded.base + "/admin/") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        page = await resp.text()
        csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert 'src="/admin/static/dashboard.js"' in page and "http" not in page.replace("http-equiv", "")
    for name, kind in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        async with guarded.session.get(f"{guarded.base}/admin/static/{name}") as resp:
            assert resp.status == 200 and resp.content_type == kind, name
            assert "http://" not in (await resp.text()).replace("http://www.w3.org/2000/svg", "")
    async with guarded.session.get(guarded.base + "/admin", allow_redirects=False) as resp:
        assert resp.status == 308 and resp.headers["Location"] == "/admin/"
    for path in ("/admin/static/missing.js", "/admin/static/.hidden", "/admin/static/%2E%2E%2Fsla"):
        async with guarded.session.get(guarded.base + path) as resp:
            assert resp.status in (401, 404), path  # never the admin data without a token
    status, _ = await guarded.get("/admin/sla")
    assert status == 401
    status, _ = await guarded.get("/admin/sla", headers=ADMIN)
    assert status == 200


async def test_page_is_in_the_openapi_document(guarded: Api) -> None:
    _, doc = await guarded.get("/openapi.json")
    page = doc["paths"]["/admin/"]["get"]
    assert "text/html" in page["responses"]["200"]["content"] and "security" not in page
    assert "security" in doc["paths"]["/metrics"]["get"]


async def test_every_read_the_dashboard_polls_is_bounded(guarded: Api) -> None:
    """The script asks only for reads the service serves within their bounds: the per queue ×
    tier callback counts come with the SLA rows, and no request asks for more than a page
    (the poll once read up to 10,000 callbacks every 2 s, holding up routing)."""
    script = await asyncio.to_thread(DASHBOARD_JS.read_text)
    paths = re.findall(r'getJson\("([^"]+)"\)', script)
    assert paths, "the dashboard's requests were not found in its script"
    for path in paths:
        assert not path.startswith("/admin/callbacks") or "limit=" in path, path
        status, body = await guarded.get(path, headers=ADMIN)
        assert status == 200, (path, body)
    _, today = await guarded.get("/admin/sla?window=today", headers=ADMIN)
    assert all({"callbacks_open", "callbacks_overdue"} <= set(row) for row in today["rows"])


# --- the browser ------------------------------------------------------------------------------------


async def ivr(api: Api, path: str, body: dict[str, Any] | None = None) -> Any:
    status, answer = await api.post(path, body or {}, headers=IVR)
    assert status in (200, 201), (path, answer)
    return answer


async def morning(api: Api) -> None:
    """Two intervals of traffic, leaving one queue × tier in each state at t = 1000 s:
    sales/standard met, default/vip at risk (a call waiting past 20 s), default/mid at risk
    (no figure yet, a call waiting), default/standard missed, blacklisted no target."""
    for caller, tier in (("+8610001", "vip"), ("+8610002", "vip"), ("+8610003", "vip"), ("+8610004", "vip")):
        await api.call("PUT", f"/admin/tiers/{caller}", {"tier": tier}, headers=ADMIN)
    for caller, tier in (("+8620001", "mid"), ("+8620002", "mid"), ("+8630001", "blacklisted")):
        await api.call("PUT", f"/admin/tiers/{caller}", {"tier": tier}, headers=ADMIN)
    clock = api.clock
    start = clock.now()
    for call_id, caller in (
        ("v1", "+8610001"),
        ("v2", "+8610002"),
        ("s1", "+8640001"),
        ("s2", "+8640002"),
        ("s3", "+8640003"),
        ("m2", "+8620002"),
    ):
        await ivr(api, "/v1/calls", {"call_id": call_id, "caller": caller})
    for at, path, body in (
        (2, "/v1/calls/s3/abandon", {}),
        (5, "/v1/calls/v1/answer", {"agent_id": "a1"}),
        (8, "/v1/calls/s2/answer", {"agent_id": "a2"}),
        (10, "/v1/calls/v2/answer", {"agent_id": "a3"}),
        (30, "/v1/calls/s1/answer", {"agent_id": "a4"}),
    ):
        clock.set(start + at)
        await ivr(api, path, body)
    clock.set(start + 900)  # the next 15-minute interval; m2 overflowed at 60 s (a callback)
    for call_id, caller, queue in (
        ("v3", "+8610003", "default"),
        ("v4", "+8610004", "default"),
        ("s4", "+8640004", "default"),
        ("b1", "+8630001", "default"),
        ("s5", "+8640005", "sales"),
    ):
        await ivr(api, "/v1/calls", {"call_id": call_id, "caller": caller, "queue": queue})
    for at, path, body in (
        (903, "/v1/calls/s5/answer", {"agent_id": "a7"}),
        (905, "/v1/calls/v3/answer", {"agent_id": "a5"}),
        (925, "/v1/calls/s4/answer", {"agent_id": "a6"}),
    ):
        clock.set(start + at)
        await ivr(api, path, body)
    clock.set(start + 960)
    await ivr(api, "/v1/calls", {"call_id": "m1", "caller": "+8620001"})
    clock.set(start + 1000)


def have_browser() -> str | None:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        return "chromium/chromedriver not in /usr/bin: run .ci/browser-deps (apt-get install chromium chromium-driver)"
    if shutil.which("chromium") is None:
        return "chromium is not on PATH"
    return None


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Any]:
    missing = have_browser()
    if missing:
        pytest.skip(missing)
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is a dev extra: pip install -e '.[dev]'")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = await asyncio.to_thread(webdriver.Chrome, service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        await asyncio.to_thread(driver.quit)


READ_PAGE = """
const app = document.getElementById('app');
const rows = Array.from(document.querySelectorAll('#sla-rows tr')).map(tr => ({
  queue: tr.dataset.queue, tier: tr.dataset.tier, status: tr.dataset.status,
  statusText: tr.querySelector('td[data-field=status]').textContent,
  cells: Object.fromEntries(
    Array.from(tr.querySelectorAll('td[data-field]')).map(td => [td.dataset.field, td.dataset.value])),
}));
const callbacks = Object.fromEntries(
  Array.from(document.querySelectorAll('#callback-summary dd')).map(dd => [dd.dataset.field, dd.dataset.value]));
const bars = Array.from(document.querySelectorAll('.chart')).map(c => ({
  queue: c.dataset.queue,
  bars: Array.from(c.querySelectorAll('rect.bar')).map(r => [r.dataset.intervalStart, Number(r.dataset.offered)]),
  dots: c.querySelectorAll('circle.dot').length,
}));
return {state: app.dataset.state, polls: Number(app.dataset.polls), generatedAt: app.dataset.generatedAt || null,
        rows, callbacks, bars, marker: window.__sameDocument || null, url: location.href};
"""


def num(raw: str) -> float | None:
    return None if raw == "" else float(raw)


async def wait_for(driver: Any, condition: Any, what: str, within: float = 25.0) -> dict[str, Any]:
    """Poll the page (not the server) until `condition(page)` holds."""
    deadline = asyncio.get_running_loop().time() + within
    page: dict[str, Any] = {}
    while asyncio.get_running_loop().time() < deadline:
        page = await asyncio.to_thread(driver.execute_script, READ_PAGE)
        if condition(page):
            return page
        await asyncio.sleep(0.2)
    raise AssertionError(f"the page never showed {what}; last seen: {page}")


async def check_page_matches_api(api: Api, page: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    _, today = await api.get("/admin/sla?window=today", headers=ADMIN)
    _, rolling = await api.get("/admin/sla?window=15m", headers=ADMIN)
    _, open_callbacks = await api.get("/admin/callbacks?status=open", headers=ADMIN)
    assert page["generatedAt"] == today["generated_at"]
    shown = {(r["queue"], r["tier"]): r for r in page["rows"]}
    assert list(shown) == [(r["queue"], r["tier"]) for r in today["rows"]]
    by_key = {(r["queue"], r["tier"]): r for r in rolling["rows"]}
    for row in today["rows"]:
        key = (row["queue"], row["tier"])
        cells, r15 = shown[key]["cells"], by_key[key]
        assert num(cells["sl_today"]) == row["service_level"], key
        assert num(cells["sl_15m"]) == r15["service_level"], key
        assert num(cells["target"]) == row["target"], key
        for field in ("waiting_now", "oldest_wait_now_s", "asa_s", "offered", "answered", "abandoned", "overflowed"):
            assert num(cells[field]) == row[field], (key, field)
        expected = sla_status(
            r15["service_level"], row["target"], row["waiting_now"], row["oldest_wait_now_s"], row["threshold_s"]
        )
        assert shown[key]["status"] == expected == cells["status"], key
        assert expected in shown[key]["statusText"], key  # in words, not only in colour
        mine = [c for c in open_callbacks["callbacks"] if (c["queue"], c["tier"]) == key]
        assert num(cells["callbacks_open"]) == row["callbacks_open"] == len(mine), key
        assert num(cells["callbacks_overdue"]) == row["callbacks_overdue"], key
    summary = today["callbacks"]
    assert num(page["callbacks"]["callbacks_open"]) == summary["open"]
    assert num(page["callbacks"]["callbacks_overdue"]) == summary["overdue"]
    for chart in page["bars"]:
        offered: dict[str, int] = {}
        for row in today["rows"]:
            if row["queue"] == chart["queue"]:
                for interval in row["intervals"]:
                    offered[interval["start"]] = offered.get(interval["start"], 0) + interval["offered"]
        drawn = {start.replace("+00:00", "Z"): n for start, n in chart["bars"]}
        assert drawn == {s.replace("+00:00", "Z"): n for s, n in offered.items() if n}, chart["queue"]
    return shown


async def test_dashboard_shows_the_api_figures_and_updates_live(guarded: Api, browser: Any) -> None:
    api, driver = guarded, browser
    await morning(api)

    await asyncio.to_thread(driver.get, f"{api.base}/admin/#token={ADMIN_TOKEN}")
    page = await wait_for(driver, lambda p: p["state"] == "live" and p["rows"], "its first figures")
    assert "token" not in page["url"], "the token must leave the address bar"
    shown = await check_page_matches_api(api, page)
    states = {key: row["status"] for key, row in shown.items()}
    assert states[("sales", "standard")] == "met"
    assert states[("default", "vip")] == "at risk"
    assert states[("default", "mid")] == "at risk"
    assert states[("default", "standard")] == "missed"
    assert states[("default", "blacklisted")] == "no target"
    assert states[("sales", "vip")] == "idle"
    assert shown[("default", "mid")]["cells"]["callbacks_open"] == "1"
    default_chart = next(c for c in page["bars"] if c["queue"] == "default")
    assert [n for _, n in default_chart["bars"]] == [6, 2] and default_chart["dots"] >= 4

    ARTIFACTS.mkdir(exist_ok=True)
    assert await asyncio.to_thread(driver.save_screenshot, str(ARTIFACTS / "dashboard-initial.png"))

    # The JavaScript rule is the Python rule.
    cases = [
        (None, None, 0, None, 20.0),
        (None, 0.9, 0, None, 20.0),
        (None, 0.9, 2, 3.0, 20.0),
        (0.5, 0.9, 0, None, 20.0),
        (0.93, 0.9, 0, None, 20.0),
        (0.95, 0.9, 0, None, 20.0),
        (1.0, 0.9, 1, 21.0, 20.0),
        (0.849999, 0.85, 0, None, 20.0),
    ]
    js = await asyncio.to_thread(
        driver.execute_script, "return arguments[0].map(c => window.tierlineSlaStatus(...c));", cases
    )
    assert js == [sla_status(*case) for case in cases]

    # Change the state; the page follows without a reload.
    await asyncio.to_thread(driver.execute_script, "window.__sameDocument = 'yes';")
    polls_before = page["polls"]
    api.clock.advance(2)
    await ivr(api, "/v1/calls/v4/answer", {"agent_id": "a8"})
    await ivr(api, "/v1/calls/m1/answer", {"agent_id": "a9"})
    await ivr(api, "/v1/calls", {"call_id": "s6", "caller": "+8640006", "queue": "sales"})
    _, now = await api.get("/admin/sla?window=today", headers=ADMIN)

    def updated(p: dict[str, Any]) -> bool:
        return bool(p["generatedAt"] == now["generated_at"] and p["polls"] > polls_before)

    page = await wait_for(driver, updated, "the new figures")
    assert page["marker"] == "yes", "the page was reloaded"
    shown = await check_page_matches_api(api, page)
    vip = shown[("default", "vip")]["cells"]
    assert (vip["answered"], vip["waiting_now"], vip["status"]) == ("4", "0", "missed")
    assert shown[("default", "mid")]["cells"]["answered"] == "1"
    assert shown[("sales", "standard")]["cells"]["waiting_now"] == "1"
    default_chart = next(c for c in page["bars"] if c["queue"] == "default")
    assert [n for _, n in default_chart["bars"]] == [6, 4]

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    assert await asyncio.to_thread(driver.save_screenshot, str(shot))
    assert shot.stat().st_size > 10_000


async def test_dashboard_without_a_token_asks_for_one(guarded: Api, browser: Any) -> None:
    driver = browser
    await asyncio.to_thread(driver.get, f"{guarded.base}/admin/")
    page = await wait_for(driver, lambda p: p["state"] == "unauthorized", "a request for the token")
    assert page["rows"] == []
    from selenium.webdriver.common.by import By

    field = await asyncio.to_thread(driver.find_element, By.ID, "token")
    await asyncio.to_thread(field.send_keys, ADMIN_TOKEN + "\n")
    page = await wait_for(driver, lambda p: p["state"] == "live" and p["rows"], "the figures once given the token")
    stored = await asyncio.to_thread(driver.execute_script, "return sessionStorage.getItem('tierline.adminToken');")
    assert stored == ADMIN_TOKEN


# --- the history view: the last 30 days per tier, and a past day by 15 minutes -----------------------

READ_HISTORY = """
const section = document.getElementById('history');
const days = Array.from(document.querySelectorAll('#history-days circle.history-dot')).map(c => ({
  day: c.dataset.day, tier: c.dataset.tier,
  level: Number(c.dataset.serviceLevel), offered: Number(c.dataset.offered)}));
const targets = Array.from(document.querySelectorAll('#history-days line.target'))
  .map(l => [l.dataset.tier, Number(l.dataset.target)]);
const month = document.querySelector('#history-days .history-chart');
const chart = document.querySelector('#history-day-chart .history-chart');
const bars = chart ? Array.from(chart.querySelectorAll('rect.history-bar')) : [];
return {state: section.dataset.state, status: document.getElementById('history-status').textContent,
        days, targets, firstDay: month ? month.dataset.firstDay : null,
        day: chart ? chart.dataset.day : null,
        dayState: document.getElementById('history-day-chart').dataset.state || null,
        bars: bars.map(r => [r.dataset.intervalStart, Number(r.dataset.offered)]),
        dots: chart ? chart.querySelectorAll('circle.history-dot-15m').length : 0};
"""


async def past_days(api: Api, days_back: tuple[int, ...]) -> None:
    """A few calls on each of some past days (and today), every tier, answered within and past
    the threshold, some abandoned; the clock ends where it started."""
    for caller, tier in (("+8710001", "vip"), ("+8710002", "mid")):
        await api.call("PUT", f"/admin/tiers/{caller}", {"tier": tier}, headers=ADMIN)
    now = api.clock.now()
    for back in sorted(days_back, reverse=True):  # oldest first: the clock only moves on
        base = now - back * 86_400 - 3 * 3600
        for n, (caller, wait, fate) in enumerate(
            (("+8710001", 5 + back, "answer"), ("+8710002", 12 * (back % 3), "answer"), ("+8740001", 3, "abandon"))
        ):
            call_id = f"h{back}-{n}"
            api.clock.set(base + n * 1000)
            await ivr(api, "/v1/calls", {"call_id": call_id, "caller": caller, "queue": "sales" if n else "default"})
            api.clock.set(base + n * 1000 + wait)
            await ivr(api, f"/v1/calls/{call_id}/{fate}", {"agent_id": f"h{call_id}"} if fate == "answer" else {})
    api.clock.set(now)


def shown_matches(report: dict[str, Any], shown: list[dict[str, Any]]) -> None:
    drawn = {(d["day"], d["tier"]): d for d in shown}
    figured = {(r["start"][:10], r["tier"]): r for r in report["rows"] if r["service_level"] is not None}
    assert set(drawn) == set(figured) and drawn
    for key, row in figured.items():
        assert drawn[key]["level"] == row["service_level"] and drawn[key]["offered"] == row["offered"], key


async def test_history_view_charts_30_days_per_tier_and_any_past_day(
    make_api: ApiFactory, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    from tests.history.test_reports_api import archive_events

    toml = f'[queues.sales]\n[server]\nhistory = "sqlite:///{tmp_path / "history.db"}"\n'
    api = await make_api(toml, env=TOKENS)
    archive = api.services.history
    assert archive is not None
    await archive.open()
    try:
        await past_days(api, (0, 1, 4, 12, 29, 35))  # 35: outside the 30 days shown
        assert await archive_events(api.services.calls, archive) > 30
        driver = browser
        await asyncio.to_thread(driver.get, f"{api.base}/admin/#token={ADMIN_TOKEN}")

        async def history(condition: Any, what: str) -> dict[str, Any]:
            deadline = asyncio.get_running_loop().time() + 25
            seen: dict[str, Any] = {}
            while asyncio.get_running_loop().time() < deadline:
                seen = await asyncio.to_thread(driver.execute_script, READ_HISTORY)
                if condition(seen):
                    return seen
                await asyncio.sleep(0.2)
            raise AssertionError(f"the history view never showed {what}; last seen: {seen}")

        seen = await history(lambda s: s["state"] == "ready" and s["dayState"] == "ready", "30 days and a day")
        today = datetime.fromtimestamp(api.clock.now(), UTC).date()
        first = (today - timedelta(days=29)).isoformat()
        assert seen["firstDay"] == first
        _, month = await api.get(
            f"/admin/reports/sla?all_queues=true&by=day&from={first}&to={today + timedelta(days=1)}&tz=UTC",
            headers=ADMIN,
        )
        shown_matches(month, seen["days"])
        assert {d["day"] for d in seen["days"]} == {(today - timedelta(days=b)).isoformat() for b in (0, 1, 4, 12, 29)}
        assert sorted(seen["targets"]) == [["mid", 0.85], ["standard", 0.85], ["vip", 0.9]]
        assert seen["day"] == (today - timedelta(days=1)).isoformat()  # yesterday's chart comes first

        # Any past day, picked in the form: its 15-minute bars are the report's, interval by interval.
        picked = (today - timedelta(days=12)).isoformat()
        field = await asyncio.to_thread(driver.find_element, By.ID, "history-day")
        await asyncio.to_thread(driver.execute_script, "arguments[0].value = arguments[1];", field, picked)
        button = await asyncio.to_thread(driver.find_element, By.CSS_SELECTOR, "#history-day-form button")
        await asyncio.to_thread(button.click)
        seen = await history(lambda s: s["day"] == picked and s["dayState"] == "ready", f"the chart of {picked}")
        _, quarters = await api.get(
            f"/admin/reports/sla?all_queues=true&by=15m&from={picked}&to={picked}T23:59:59&tz=UTC", headers=ADMIN
        )
        offered: dict[str, int] = {}
        for row in quarters["rows"]:
            offered[row["start"]] = offered.get(row["start"], 0) + row["offered"]
        assert dict(seen["bars"]) == {start: n for start, n in offered.items() if n} and len(seen["bars"]) == 3
        assert seen["dots"] == sum(r["service_level"] is not None for r in quarters["rows"])
        ARTIFACTS.mkdir(exist_ok=True)
        assert await asyncio.to_thread(driver.save_screenshot, str(ARTIFACTS / "dashboard-history.png"))
    finally:
        await archive.close()


async def test_history_view_says_when_history_is_off(make_api: ApiFactory, browser: Any) -> None:
    api = await make_api('[server]\nhistory = "off"\n', env=TOKENS)
    await asyncio.to_thread(browser.get, f"{api.base}/admin/#token={ADMIN_TOKEN}")
    deadline = asyncio.get_running_loop().time() + 25
    state = None
    while asyncio.get_running_loop().time() < deadline and state != "off":
        state = await asyncio.to_thread(
            browser.execute_script, "return document.getElementById('history').dataset.state;"
        )
        await asyncio.sleep(0.2)
    assert state == "off"
    text = await asyncio.to_thread(
        browser.execute_script, "return document.getElementById('history-status').textContent;"
    )
    assert "history is off" in text


async def test_a_place_held_for_a_callback_shows_beside_the_waiting_calls(guarded: Api, browser: Any) -> None:
    """Issue 16 item 3: a held place is not a waiting call, but the callers behind wait for it."""
    api, driver = guarded, browser
    await api.call("PUT", "/admin/tiers/+8620009", {"tier": "mid"}, headers=ADMIN)
    await ivr(api, "/v1/calls", {"call_id": "h1", "caller": "+8620009"})
    await ivr(api, "/v1/calls", {"call_id": "h2", "caller": "+8620010"})
    await ivr(api, "/v1/calls/h1/callback")
    _, today = await api.get("/admin/sla?window=today", headers=ADMIN)
    mid = next(r for r in today["rows"] if (r["queue"], r["tier"]) == ("default", "mid"))
    assert (mid["waiting_now"], mid["held"]) == (0, 1)

    await asyncio.to_thread(driver.get, f"{api.base}/admin/#token={ADMIN_TOKEN}")
    await wait_for(driver, lambda p: p["state"] == "live" and p["rows"], "its first figures")
    text = await asyncio.to_thread(
        driver.execute_script,
        "return document.querySelector('#sla-rows tr[data-queue=default][data-tier=mid] td[data-field=waiting_now]')"
        ".textContent;",
    )
    assert text == "0 (1 held for a callback)"
