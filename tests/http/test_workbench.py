"""`GET /workbench/`: the back office's callback workbench (issue 20), in a real headless
Chromium against a real server, on the memory store and a real Redis.

Like the dashboard's test (whose browser fixture it uses), the browser part skips when
chromium and chromedriver are missing (`.ci/browser-deps` installs them and a CJK font).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import new_namespace
from tests.http.conftest import Api, ApiFactory
from tests.http.test_dashboard import ARTIFACTS, browser  # noqa: F401 (the fixture)

STATIC = Path(__file__).resolve().parents[2] / "admin" / "static"
TOKENS = {
    "TIERLINE_API_TOKEN": "ivr-secret-20",
    "TIERLINE_ADMIN_TOKEN": "boss-secret-20",
    "TIERLINE_BACKOFFICE_TOKEN": "back-secret-20",
}
IVR = {"Authorization": "Bearer ivr-secret-20"}
ADMIN = {"Authorization": "Bearer boss-secret-20"}
BACK = {"Authorization": "Bearer back-secret-20"}
RETRY_S = 30 * 60.0
CALLER = "+8613912345678"


def catalogue(lang: str) -> dict[str, str]:
    loaded: dict[str, str] = json.loads((STATIC / f"i18n.{lang}.json").read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(params=["memory", "redis"])
async def api(request: pytest.FixtureRequest, make_api: ApiFactory) -> Api:
    toml = "[queues.default]\n"
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        toml = f'[server]\nstore = "{url}"\nredis_namespace = "{new_namespace()}"\n\n' + toml
    made: Api = await make_api(toml, env=TOKENS)
    return made


async def owed_callback(api: Api) -> str:
    """A mid customer with CRM fields and a grading explanation waits out 60 s: a callback."""
    crm = {"name": "Wang Fang", "account": "A-778", "grading.rule": "rfm_mid", "grading.rfm": "R4 F3 M3"}
    status, _ = await api.call("PUT", f"/admin/tiers/{CALLER}", {"tier": "mid", "crm": crm}, headers=ADMIN)
    assert status in (200, 201)
    status, _ = await api.post("/v1/calls", {"call_id": "c-wb-1", "caller": CALLER}, headers=IVR)
    assert status == 201
    api.clock.advance(60)
    _, call = await api.get("/v1/calls/c-wb-1", headers=IVR)
    assert call["status"] == "overflowed"
    _, page = await api.get("/admin/callbacks?status=open", headers=ADMIN)
    (callback,) = page["callbacks"]
    return str(callback["callback_id"])


# --- plain HTTP ---------------------------------------------------------------------------------


async def test_the_page_is_public_strict_and_self_contained(make_api: ApiFactory) -> None:
    api = await make_api("", env=TOKENS)
    async with api.session.get(api.base + "/workbench/") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        page = await resp.text()
        csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "http" not in page.replace("http-equiv", "")
    for name, kind in (
        ("workbench.js", "text/javascript"),
        ("workbench.css", "text/css"),
        ("i18n.js", "text/javascript"),
        ("i18n.en.json", "application/json"),
        ("i18n.zh-CN.json", "application/json"),
    ):
        async with api.session.get(f"{api.base}/admin/static/{name}") as resp:
            assert resp.status == 200 and resp.content_type == kind, name
            assert "http://" not in await resp.text() and "https://" not in await resp.text(), name
    async with api.session.get(api.base + "/workbench", allow_redirects=False) as resp:
        assert resp.status == 308 and resp.headers["Location"] == "/workbench/"
    _, doc = await api.get("/openapi.json")
    assert "security" not in doc["paths"]["/workbench/"]["get"]


# --- the browser ------------------------------------------------------------------------------------

READ = """
const app = document.getElementById('app');
const text = id => (document.getElementById(id) || {}).textContent;
const visible = id => { const el = document.getElementById(id); return !!el && !el.closest('[hidden]'); };
return {
  state: app.dataset.state, lang: app.dataset.lang, error: app.dataset.error || '',
  callback: app.dataset.callback || '',
  status: text('status'), caller: text('cb-caller'), tier: text('cb-tier'), queue: text('cb-queue'),
  waited: text('cb-waited'), reason: text('cb-reason'), deadline: text('cb-deadline'),
  why: Array.from(document.querySelectorAll('#cb-why dt')).map(e => e.textContent),
  crm: Array.from(document.querySelectorAll('#cb-crm dd')).map(e => e.textContent),
  attempts: Array.from(document.querySelectorAll('#cb-attempts tr')).map(
    tr => Array.from(tr.querySelectorAll('td')).map(td => td.textContent)),
  cardShown: visible('callback'), emptyShown: visible('empty'), done: visible('done') ? text('done-text') : null,
  outcomeError: text('outcome-error'), note: document.getElementById('note').value,
  missing: window.TierlineI18n ? window.TierlineI18n.missing.slice() : null,
};
"""


async def read(driver: Any) -> dict[str, Any]:
    page: dict[str, Any] = await asyncio.to_thread(driver.execute_script, READ)
    return page


async def wait_for(driver: Any, condition: Any, what: str, within: float = 20.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + within
    page: dict[str, Any] = {}
    while asyncio.get_running_loop().time() < deadline:
        page = await read(driver)
        if condition(page):
            return page
        await asyncio.sleep(0.15)
    raise AssertionError(f"the page never showed {what}; last seen: {page}")


async def alt(driver: Any, key: str) -> None:
    """Press Alt+key: the workbench's shortcuts."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    def press() -> None:
        ActionChains(driver).key_down(Keys.ALT).send_keys(key).key_up(Keys.ALT).perform()

    await asyncio.to_thread(press)


async def type_into(driver: Any, element_id: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    def typing() -> None:
        field = driver.find_element(By.ID, element_id)
        field.clear()
        field.send_keys(text)

    await asyncio.to_thread(typing)


async def click(driver: Any, element_id: str) -> None:
    from selenium.webdriver.common.by import By

    await asyncio.to_thread(lambda: driver.find_element(By.ID, element_id).click())


async def open_as(driver: Any, api: Api, agent: str, lang: str = "en") -> dict[str, Any]:
    """Open the workbench in `lang` (picked on the page before), sign in as `agent`."""
    await asyncio.to_thread(driver.get, f"{api.base}/workbench/#token=back-secret-20")
    await wait_for(driver, lambda p: p["state"] in ("signed-out", "ready"), "the sign-in form")
    await asyncio.to_thread(driver.execute_script, f"localStorage.setItem('tierline.lang', '{lang}');")
    await asyncio.to_thread(driver.refresh)
    await wait_for(driver, lambda p: p["lang"] == lang and p["state"] in ("signed-out", "ready"), f"the {lang} page")
    await type_into(driver, "agent", agent)
    await click(driver, "sign-in")
    return await wait_for(driver, lambda p: p["state"] == "ready", "the agent signed in")


async def test_take_no_answer_retry_time_then_completed(api: Api, browser: Any) -> None:  # noqa: F811
    driver, en = browser, catalogue("en")
    callback_id = await owed_callback(api)
    page = await open_as(driver, api, "b1")
    assert "token" not in await asyncio.to_thread(lambda: driver.current_url)

    await alt(driver, "n")  # Alt+N: next callback
    page = await wait_for(driver, lambda p: p["cardShown"] and p["callback"] == callback_id, "the callback")
    assert (page["caller"], page["tier"], page["queue"]) == (CALLER, en["tier.mid"], "default")
    assert page["reason"] == en["reason.max_wait"] and page["waited"] == "1 min"
    assert page["why"] == ["rfm", "rule"] and sorted(page["crm"]) == ["A-778", "Wang Fang"]
    assert page["attempts"] == [] and page["missing"] == []

    await type_into(driver, "note", "voicemail, left a message")
    await alt(driver, "a")  # Alt+A: no answer
    page = await wait_for(driver, lambda p: p["state"] == "recorded", "the outcome recorded")
    _, listed = await api.get("/admin/callbacks?status=open", headers=ADMIN)
    (after,) = listed["callbacks"]
    retry_at = datetime.fromtimestamp(api.clock.now() + RETRY_S, UTC)
    assert after["status"] == "open" and after["attempts"] == 1
    assert datetime.fromisoformat(after["next_attempt_at"].replace("Z", "+00:00")) == retry_at
    assert after["attempt_log"][0]["note"] == "voicemail, left a message"
    shown_retry = await asyncio.to_thread(
        driver.execute_script, "return TierlineI18n.dateTime(arguments[0]);", after["next_attempt_at"]
    )
    assert page["done"] == en["wb.done_retry"].format(caller=CALLER, time=shown_retry)

    # Nobody gets it before its retry time: not another agent through the API, not this page.
    api.clock.advance(RETRY_S - 1)
    status, _ = await api.post("/v1/agents/b2/next", {"only": "callbacks"}, headers=BACK)
    assert status == 204
    await click(driver, "next")
    page = await wait_for(driver, lambda p: p["state"] == "idle" and p["emptyShown"], "nothing due")
    assert page["status"] == en["wb.none_due"]

    api.clock.advance(1)
    await click(driver, "next")
    page = await wait_for(driver, lambda p: p["cardShown"] and p["callback"] == callback_id, "the callback again")
    (row,) = page["attempts"]
    assert row[1:4] == ["b1", en["outcome.no_answer"], "voicemail, left a message"]
    await type_into(driver, "note", "sorted the bill")
    await alt(driver, "c")  # Alt+C: completed
    page = await wait_for(driver, lambda p: p["state"] == "recorded", "the completion")
    assert page["done"] == en["wb.done_completed"].format(caller=CALLER)
    _, done = await api.get("/admin/callbacks?status=done", headers=ADMIN)
    (closed,) = done["callbacks"]
    assert (closed["status"], closed["attempts"]) == ("completed", 2)
    assert [a["outcome"] for a in closed["attempt_log"]] == ["no_answer", "completed"]
    assert [a["agent_id"] for a in closed["attempt_log"]] == ["b1", "b1"]


async def test_taken_meanwhile_is_409_and_the_note_is_kept(api: Api, browser: Any) -> None:  # noqa: F811
    driver, en = browser, catalogue("en")
    callback_id = await owed_callback(api)
    await open_as(driver, api, "b1")
    await click(driver, "next")
    await wait_for(driver, lambda p: p["cardShown"] and p["callback"] == callback_id, "the callback")
    # Meanwhile the same agent id closed the attempt from another tab, and b2 took the callback.
    status, _ = await api.post(
        f"/v1/callbacks/{callback_id}/outcome", {"outcome": "no_answer", "agent_id": "b1"}, headers=BACK
    )
    assert status == 200
    api.clock.advance(RETRY_S)
    status, work = await api.post("/v1/agents/b2/next", {"only": "callbacks"}, headers=BACK)
    assert status == 200 and work["callback"]["agent_id"] == "b2"

    note = "Customer wants the invoice re-sent to the new address"
    await type_into(driver, "note", note)
    await click(driver, "do-completed")
    page = await wait_for(driver, lambda p: p["state"] == "conflict", "the conflict")
    assert page["error"] == "not_assigned" and page["outcomeError"] == en["error.not_assigned"]
    assert page["note"] == note and page["cardShown"]
    _, listed = await api.get("/admin/callbacks?status=open", headers=ADMIN)
    assert listed["callbacks"][0]["agent_id"] == "b2" and listed["callbacks"][0]["status"] == "assigned"

    # A reschedule outside the rules is refused with the catalogue's words, the note still kept.
    await asyncio.to_thread(driver.execute_script, "document.getElementById('call-at').value = '2000-01-01T10:00';")
    await click(driver, "do-rescheduled")
    page = await wait_for(
        driver, lambda p: p["outcomeError"] == en["error.not_assigned"] and p["note"] == note, "409 again"
    )
    # The agent moves on (Next is open again after a 409) and the note is still there to reuse.
    api.clock.advance(RETRY_S)
    status, _ = await api.post(
        f"/v1/callbacks/{callback_id}/outcome", {"outcome": "no_answer", "agent_id": "b2"}, headers=BACK
    )
    assert status == 200
    api.clock.advance(RETRY_S)
    await alt(driver, "n")
    page = await wait_for(
        driver, lambda p: p["state"] == "holding" and p["callback"] == callback_id, "the callback back"
    )
    assert page["note"] == note and len(page["attempts"]) == 2


TEXT_NODES = """
const out = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
  const node = walker.currentNode, el = node.parentElement;
  if (!node.textContent.trim() || !el || el.closest('[hidden]') || el.closest('option')) continue;
  out.push({text: node.textContent.trim(), key: el.dataset.i18n || null, id: el.id || null});
}
return out;
"""


async def test_the_chinese_page_renders_every_string_from_its_catalogue(api: Api, browser: Any) -> None:  # noqa: F811
    driver, zh, en = browser, catalogue("zh-CN"), catalogue("en")
    callback_id = await owed_callback(api)
    await open_as(driver, api, "b1", lang="zh-CN")
    await click(driver, "next")
    page = await wait_for(driver, lambda p: p["cardShown"] and p["callback"] == callback_id, "the callback")
    assert page["tier"] == zh["tier.mid"] and page["reason"] == zh["reason.max_wait"]
    assert page["status"] == zh["wb.took"].format(caller=CALLER)
    assert page["waited"] == zh["unit.minutes"].format(m="1")
    keyed = await asyncio.to_thread(
        driver.execute_script,
        "return Array.from(document.querySelectorAll('[data-i18n]')).map(e => [e.dataset.i18n, e.textContent]);",
    )
    assert keyed and all(text == zh[key] for key, text in keyed), [k for k, t in keyed if zh.get(k) != t]
    assert await asyncio.to_thread(driver.execute_script, "return document.documentElement.lang;") == "zh-CN"
    assert await asyncio.to_thread(driver.title.__str__) == zh["wb.page_title"]
    # No English anywhere: no text is an English catalogue string that Chinese words replace.
    english = {text for key, text in en.items() if zh[key] != text}
    shown = await asyncio.to_thread(driver.execute_script, TEXT_NODES)
    assert not [n for n in shown if n["text"] in english], shown
    # The deadline is a date in the Chinese form (年/月/日), in the browser's named time zone.
    assert "月" in page["deadline"] and "日" in page["deadline"]
    # An API error code is shown in the catalogue's Chinese words.
    await type_into(driver, "note", "客户要求下午再打")
    await click(driver, "do-rescheduled")  # no time given
    page = await wait_for(driver, lambda p: p["error"] == "call_at_missing", "the missing call_at")
    assert page["outcomeError"] == zh["error.call_at_missing"]
    await asyncio.to_thread(driver.execute_script, "document.getElementById('call-at').value = '2000-01-01T10:00';")
    await click(driver, "do-rescheduled")
    page = await wait_for(driver, lambda p: p["error"] == "call_at_past", "the API's call_at_past")
    assert page["outcomeError"] == zh["error.call_at_past"] and page["note"] == "客户要求下午再打"
    assert page["missing"] == []
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "workbench-zh-CN.png"
    assert await asyncio.to_thread(driver.save_screenshot, str(shot))
    assert shot.stat().st_size > 10_000
    # Switched on the page, back to English: every keyed string follows.
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    await asyncio.to_thread(lambda: Select(driver.find_element(By.ID, "lang")).select_by_value("en"))
    page = await wait_for(driver, lambda p: p["lang"] == "en", "English")
    assert "{" not in page["status"], page["status"]
    assert page["tier"] == en["tier.mid"] and page["outcomeError"] == en["error.call_at_past"]


ACCESSIBILITY = """
function lum(rgb) {
  const c = rgb.slice(0, 3).map(v => {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  });
  return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
}
function parse(color) { const m = color.match(/[\\d.]+/g).map(Number); return m.length === 3 ? m.concat([1]) : m; }
function background(el) {
  for (; el; el = el.parentElement) {
    const c = parse(getComputedStyle(el).backgroundColor);
    if (c[3] > 0) return c;
  }
  return [255, 255, 255, 1];
}
const unlabelled = [], low = [];
for (const el of document.querySelectorAll('input, select, textarea, button')) {
  if (el.closest('[hidden]')) continue;
  const label = el.labels && el.labels.length ? el.labels[0].textContent.trim() : (el.getAttribute('aria-label') || '');
  const name = el.tagName === 'BUTTON' ? el.textContent.trim() : label;
  if (!name) unlabelled.push(el.id || el.outerHTML.slice(0, 60));
}
for (const el of document.querySelectorAll('body *')) {
  const hasText = Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
  if (el.closest('[hidden]') || !hasText) continue;
  const style = getComputedStyle(el);
  if (style.display === 'none' || style.visibility === 'hidden') continue;
  const fg = parse(style.color), bg = background(el);
  const a = lum(fg), b = lum(bg), ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < 4.5) low.push([el.id || el.tagName, style.color, ratio.toFixed(2)]);
}
return {unlabelled, low};
"""


async def test_labels_focus_order_and_contrast(api: Api, browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.keys import Keys

    driver = browser
    callback_id = await owed_callback(api)
    await open_as(driver, api, "b1")
    await click(driver, "next")
    await wait_for(driver, lambda p: p["cardShown"] and p["callback"] == callback_id, "the callback")
    checked = await asyncio.to_thread(driver.execute_script, ACCESSIBILITY)
    assert checked == {"unlabelled": [], "low": []}
    # Focus moves in reading order: the language, the sign-in fields, the next button; once a
    # callback is taken (Alt+N), from the note to the date-time and the outcome buttons.
    await asyncio.to_thread(driver.refresh)
    await wait_for(driver, lambda p: p["state"] == "ready", "the page again")

    def tab_order(n: int) -> list[str]:
        from selenium.webdriver.common.action_chains import ActionChains

        seen = []
        for _ in range(n):
            ActionChains(driver).send_keys(Keys.TAB).perform()
            seen.append(str(driver.execute_script("return document.activeElement.id;")))
        return seen

    assert await asyncio.to_thread(tab_order, 7) == ["lang", "agent", "token", "queues", "sign-in", "sign-out", "next"]
    await alt(driver, "n")
    await wait_for(driver, lambda p: p["cardShown"], "the callback")
    assert await asyncio.to_thread(driver.execute_script, "return document.activeElement.id;") == "note"
    after_note = [x for x in await asyncio.to_thread(tab_order, 14) if x != "call-at"]
    assert after_note[:4] == ["do-completed", "do-no_answer", "do-rescheduled", "do-cancelled"], after_note


async def test_the_dashboard_speaks_chinese_too(make_api: ApiFactory, browser: Any) -> None:  # noqa: F811
    """The supervisors' dashboard follows the same catalogue: picked on the page, every keyed
    string and the status words of the table from the Chinese catalogue."""
    driver, zh = browser, catalogue("zh-CN")
    api = await make_api("[queues.sales]\n", env=TOKENS)
    callback_id = await owed_callback(api)
    status, _ = await api.post("/v1/agents/b1/next", {"only": "callbacks"}, headers=BACK)
    assert status == 200
    await asyncio.to_thread(driver.get, f"{api.base}/admin/#token=boss-secret-20")
    await asyncio.to_thread(driver.execute_script, "localStorage.setItem('tierline.lang', 'zh-CN');")
    await asyncio.to_thread(driver.refresh)
    read = "return {lang: document.getElementById('app').dataset.lang,"
    read += " state: document.getElementById('app').dataset.state,"
    read += " status: document.getElementById('status-line').textContent,"
    read += (
        " pills: Array.from(document.querySelectorAll('#sla-rows td[data-field=status]')).map(td => td.textContent),"
    )
    read += " keyed: Array.from(document.querySelectorAll('[data-i18n]')).map(e => [e.dataset.i18n, e.textContent]),"
    read += " workload: document.getElementById('workload').dataset.state,"
    read += " active: Array.from(document.querySelectorAll('#workload-rows tr')).map("
    read += "tr => [tr.dataset.queue, tr.querySelector('td[data-field=active]').dataset.value]),"
    read += " holders: Array.from(document.querySelectorAll('#holders-rows tr')).map("
    read += "tr => [tr.dataset.agent, tr.dataset.callback, tr.textContent]),"
    read += " missing: TierlineI18n.missing.slice()};"
    deadline = asyncio.get_running_loop().time() + 20
    page: dict[str, Any] = {}
    while asyncio.get_running_loop().time() < deadline:
        page = await asyncio.to_thread(driver.execute_script, read)
        if page["lang"] == "zh-CN" and page["state"] == "live" and page["pills"] and page["workload"] == "ready":
            break
        await asyncio.sleep(0.2)
    assert page["lang"] == "zh-CN" and page["state"] == "live", page
    assert all(text == zh[key] for key, text in page["keyed"]), page["keyed"]
    statuses = {zh[k] for k in zh if k.startswith("dash.status_")}
    assert page["pills"] and set(page["pills"]) <= statuses
    assert page["status"].startswith("实时") and page["missing"] == []
    # The team lead's view: the callback counted in its queue, and who holds it.
    assert dict(page["active"]) == {"sales": "0", "default": "1"}
    ((agent, held_id, text),) = page["holders"]
    assert (agent, held_id) == ("b1", callback_id) and CALLER in text and zh["tier.mid"] in text
    ARTIFACTS.mkdir(exist_ok=True)
    assert await asyncio.to_thread(driver.save_screenshot, str(ARTIFACTS / "dashboard-zh-CN.png"))
