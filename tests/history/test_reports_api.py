"""The report routes over real HTTP on a real port, reading a real archive filled from the engine.

Calls go through `/v1` with a clock the test moves; the store's events are then read
(`read_events`) into the archive as the archiver would. `/admin/reports/sla` for today must
equal `/admin/sla?window=today` on that traffic, figure for figure, under every formula (memory
store), and on a real Redis and the real 3-master cluster; with callback offers taken and
abandons taken back by a re-call (issue 16 items 3 and 4) too, on memory and Redis, into SQLite
and PostgreSQL.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from tests.history.conftest import new_schema
from tierline.queue.clock import ManualClock
from tierline.queue.history import events as ev
from tierline.queue.history.archive import Archive
from tierline.queue.history.postgres_archive import PostgresArchive
from tierline.queue.history.sqlite_archive import SqliteArchive
from tierline.queue.service_level import FORMULAS
from tierline.queue.store import CallStore
from tierline.router.app import ENDPOINTS, build_app, open_services
from tierline.router.config import load_settings
from tierline.router.plumbing.context import Services
from tierline.router.plumbing.openapi import build_openapi

ADMIN_TOKEN = "report-boss"
API_TOKEN = "report-ivr"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
IVR = {"Authorization": f"Bearer {API_TOKEN}"}
ZONE = "Europe/Berlin"
CONFIG = """
timezone = "Europe/Berlin"
sla_formula = "{formula}"
[tiers.standard]
overflow_after_s = 120
[queues.sales]
"""


class ReportApi:
    def __init__(self, session: ClientSession, base: str, services: Services, clock: ManualClock) -> None:
        self.session, self.base, self.services, self.clock = session, base, services, clock

    async def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        async with self.session.get(self.base + path, headers=ADMIN if headers is None else headers) as resp:
            body = await resp.json() if resp.content_type == "application/json" else await resp.text()
            return resp.status, body

    async def post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, Any]:
        async with self.session.post(self.base + path, json=body, headers=IVR if headers is None else headers) as resp:
            return resp.status, (None if resp.status == 204 else await resp.json())

    async def put(self, path: str, body: dict[str, Any]) -> None:
        async with self.session.put(self.base + path, json=body, headers=ADMIN) as resp:
            assert resp.status == 200, await resp.text()


MakeReportApi = Callable[..., Awaitable[ReportApi]]


@pytest.fixture
async def make_report_api(tmp_path: Path) -> AsyncIterator[MakeReportApi]:
    """A Tierline (memory store) on a real port whose Services hold a real SQLite archive (or none)."""
    closers: list[Callable[[], Awaitable[None]]] = []

    async def make(
        formula: str = "default", archive: Archive | str | None = "sqlite", store: str = "memory", top: str = ""
    ) -> ReportApi:
        """`top`: settings put before the others (top-level keys such as resume_window_s)."""
        config = tmp_path / f"tierline-{len(closers)}.toml"
        namespace = f'[server]\nredis_namespace = "rep{uuid.uuid4().hex[:10]}"\n'
        config.write_text(top + CONFIG.format(formula=formula) + ("" if store == "memory" else namespace))
        env = {"TIERLINE_ADMIN_TOKEN": ADMIN_TOKEN, "TIERLINE_API_TOKEN": API_TOKEN, "TIERLINE_STORE": store}
        settings = load_settings(config, env=env)
        clock = ManualClock()
        history: Archive | None = None
        if archive == "sqlite":
            lite = SqliteArchive(tmp_path / f"history-{len(closers)}.db")
            await lite.open()
            closers.append(lite.close)
            history = lite
        elif not isinstance(archive, str):
            history = archive
        services = dataclasses.replace(open_services(settings, clock), history=history)
        server = TestServer(build_app(services, sweeper=False), host="127.0.0.1")
        await server.start_server()
        session = ClientSession()
        closers.extend([server.close, session.close])
        return ReportApi(session, f"http://127.0.0.1:{server.port}", services, clock)

    yield make
    for close in reversed(closers):
        await close()


# --- traffic ----------------------------------------------------------------------------------

TIER_OF = ("vip", "mid", "standard", "blacklisted")


async def drive_traffic(api: ReportApi, seed: int, calls: int = 36, spacing_s: float = 290.0) -> list[str]:
    """Real calls through /v1 over a few hours of the clock: answers within and past 20 s,
    short and long abandons, overflows (mid callers get a callback, completed by an agent),
    ends. Returns the call ids."""
    rng = random.Random(seed)
    start = api.clock.now()
    plan: list[tuple[float, int, str, str]] = []  # (at, order, action, call id)
    ids = []
    for n in range(calls):
        call_id, tier = f"r{seed}-{n}", TIER_OF[n % 4]
        caller = f"+49301{seed:02d}{n:04d}"
        if tier != "standard":
            await api.put(f"/admin/tiers/{caller}", {"tier": tier})
        at = start + n * spacing_s + rng.uniform(0, 60)
        plan.append((at, 0, f"enter {caller} {rng.choice(['default', 'sales'])}", call_id))
        fate = rng.random()
        wait = rng.choice([0.5, 3.0, 8.0, 19.5, 20.0, 24.0, 45.0])
        if tier in ("mid", "standard") and fate < 0.2:
            plan.append((at + (61 if tier == "mid" else 121), 1, "sweep", call_id))
        elif fate < 0.35:
            plan.append((at + rng.choice([2.0, 4.5, 30.0]), 1, "abandon", call_id))
        else:
            plan.append((at + wait, 1, f"answer a{n % 5}", call_id))
            plan.append((at + wait + rng.uniform(30, 200), 2, "end", call_id))
        ids.append(call_id)
    for at, _, action, call_id in sorted(plan):
        api.clock.set(max(at, api.clock.now()))
        word, *rest = action.split()
        if word == "enter":
            status, body = await api.post("/v1/calls", {"call_id": call_id, "caller": rest[0], "queue": rest[1]})
        elif word == "answer":
            status, body = await api.post(f"/v1/calls/{call_id}/answer", {"agent_id": rest[0]})
        elif word == "sweep":
            await api.services.calls.sweep()
            continue
        else:
            status, body = await api.post(f"/v1/calls/{call_id}/{word}", {})
        assert status in (200, 201), (action, call_id, body)
    # An agent works through the callbacks the overflows left: each completed.
    api.clock.advance(300)
    while True:
        status, work = await api.post("/v1/agents/cb-agent/next", {})
        if status == 204 or work.get("callback") is None:
            break
        callback_id = work["callback"]["callback_id"]
        api.clock.advance(90)
        status, done = await api.post(
            f"/v1/callbacks/{callback_id}/outcome", {"outcome": "completed", "agent_id": "cb-agent"}
        )
        assert status == 200, done
    return ids


async def drive_hold_and_resume(api: ReportApi, seed: int, calls: int = 24) -> None:
    """Calls one after another from the clock's now: some take the callback offer after a
    short or long wait (and the IVR's hang-up after it, which is no abandon), some abandon
    (short or not) and call again within resume_window_s (taking the place back), the re-call
    then answered, abandoned again or left waiting; the rest answered. Each of the tiers."""
    rng = random.Random(seed)
    for n in range(calls):
        tier, fate = ("mid", "vip", "standard")[n % 3], n % 4
        caller = f"+49302{seed:02d}{n:04d}"
        if tier != "standard":
            await api.put(f"/admin/tiers/{caller}", {"tier": tier, "crm": {"customer_id": f"K{n}"}})
        queue = rng.choice(["default", "sales"])
        call_id = f"h{seed}-{n}"
        status, body = await api.post("/v1/calls", {"call_id": call_id, "caller": caller, "queue": queue})
        assert status == 201, body
        api.clock.advance({1: 0.5, 2: 30.0}.get(fate) or rng.choice([3.0, 15.0, 25.0, 40.0]))  # 1: a short abandon
        if fate == 0:
            status, body = await api.post(f"/v1/calls/{call_id}/callback", {})
            assert status == 200 and body["status"] == "callback_requested", body
            api.clock.advance(5)
            status, body = await api.post(f"/v1/calls/{call_id}/abandon", {})
            assert status == 200 and body["status"] == "callback_requested", body
        elif fate in (1, 2):
            status, body = await api.post(f"/v1/calls/{call_id}/abandon", {})
            assert status == 200 and body["status"] == "abandoned", body
            api.clock.advance(rng.choice([10.0, 20.0]))  # mid overflows at 60 s of wait (from the first arrival)
            again = f"{call_id}-again"
            status, body = await api.post("/v1/calls", {"call_id": again, "caller": caller, "queue": queue})
            assert status == 201 and body["resumed_from"] == call_id, body
            api.clock.advance(rng.choice([3.0, 5.0]))
            then = rng.random()
            if then < 0.5:
                status, body = await api.post(f"/v1/calls/{again}/answer", {"agent_id": f"a{n % 5}"})
                assert status == 200, body
                api.clock.advance(60)
                assert (await api.post(f"/v1/calls/{again}/end", {}))[0] == 200
            elif then < 0.8:
                assert (await api.post(f"/v1/calls/{again}/abandon", {}))[0] == 200
        else:
            assert (await api.post(f"/v1/calls/{call_id}/answer", {"agent_id": f"a{n % 5}"}))[0] == 200
            api.clock.advance(90)
            assert (await api.post(f"/v1/calls/{call_id}/end", {}))[0] == 200
        api.clock.advance(rng.uniform(20, 200))


async def archive_events(store: CallStore, archive: Archive) -> int:
    """What the archiver does: every event the store holds, in batches, into the archive."""
    after: ev.EventId | None = None
    total = 0
    while batch := await store.read_events(after, 500):
        total += await archive.ingest(batch)
        after = batch[-1].id
    return total


# --- /admin/reports/sla equals /admin/sla?window=today ---------------------------------------------

SAME = (
    "offered",
    "answered",
    "answered_within_threshold",
    "abandoned",
    "short_abandoned",
    "overflowed",
    "asa_s",
    "service_level",
    "threshold_s",
    "target",
    "met",
    "average_handle_s",
    "callback_requested",
    "resumed",
)


def _same(live: dict[str, Any], report: dict[str, Any], where: object) -> None:
    for field in SAME:
        assert report[field] == live[field], (where, field)
    assert report["longest_wait_s"] == live["longest_answered_wait_s"], where
    assert report["entered"] == live["arrived"], where


@pytest.mark.parametrize("formula", sorted(FORMULAS))
async def test_the_sla_report_for_today_equals_the_live_today_window(
    make_report_api: MakeReportApi, formula: str
) -> None:
    await _report_equals_live(await make_report_api(formula), formula)


@pytest.mark.parametrize("kind", ["redis", "cluster"])
async def test_the_same_holds_on_redis(
    make_report_api: MakeReportApi, request: pytest.FixtureRequest, kind: str
) -> None:
    url = request.getfixturevalue("redis_url" if kind == "redis" else "redis_cluster_url")
    await _report_equals_live(await make_report_api("default", store=url), "default")


async def test_the_same_holds_on_postgresql_reading_its_daily_sums(make_report_api: MakeReportApi, pg_dsn: str) -> None:
    """The archive keeps the settings' zone's days, and a report of whole days (today's
    midnight to tomorrow's) reads them: still the live window's figures."""
    archive = PostgresArchive(pg_dsn, schema=new_schema(), day_zone=ZONE)
    await archive.open()
    try:
        api = await make_report_api("default", archive=archive)
        today = datetime.fromtimestamp(api.clock.now(), ZoneInfo(ZONE)).date()
        whole_day = f"&from={today.isoformat()}&to={(today + timedelta(days=1)).isoformat()}"
        await _report_equals_live(api, "default", whole_day)
        assert await archive.pool.fetchval("SELECT count(*) FROM day_tallies WHERE zone = $1", ZONE) >= 6
    finally:
        await archive.close()


def _busy(row: dict[str, Any]) -> bool:
    return bool(row["offered"] or row.get("arrived", row.get("entered")) or row["callback_requested"] or row["resumed"])


@pytest.mark.parametrize("formula", sorted(FORMULAS))
async def test_offers_taken_and_resumed_calls_count_alike_live_and_archived(
    make_report_api: MakeReportApi, formula: str
) -> None:
    api = await make_report_api(formula, top="resume_window_s = 300.0\n")
    await _report_equals_live(api, formula, hold_and_resume=True)


@pytest.mark.parametrize("archive_kind", ["sqlite", "postgres"])
async def test_offers_taken_and_resumed_calls_count_alike_on_redis(
    make_report_api: MakeReportApi, redis_url: str, pg_dsn: str, archive_kind: str
) -> None:
    archive: Archive | str = "sqlite"
    if archive_kind == "postgres":
        pg = PostgresArchive(pg_dsn, schema=new_schema(), day_zone=ZONE)
        await pg.open()
        archive = pg
    try:
        api = await make_report_api("default", archive=archive, store=redis_url, top="resume_window_s = 300.0\n")
        await _report_equals_live(api, "default", hold_and_resume=True)
    finally:
        if isinstance(archive, PostgresArchive):
            await archive.close()


async def _report_equals_live(api: ReportApi, formula: str, whole_day: str = "", hold_and_resume: bool = False) -> None:
    seed = 1 + sum(map(ord, formula)) % 50
    await drive_traffic(api, seed=seed)
    if hold_and_resume:
        await drive_hold_and_resume(api, seed=seed)
    assert api.services.history is not None
    assert await archive_events(api.services.calls, api.services.history) > 100

    status, live = await api.get("/admin/sla?window=today")
    assert status == 200
    status, daily = await api.get("/admin/reports/sla?by=day" + whole_day)
    assert status == 200, daily
    assert daily["formula"] == formula and daily["timezone"] == ZONE
    assert datetime.fromisoformat(daily["start"]).timestamp() == datetime.fromisoformat(live["start"]).timestamp()
    lanes = {(r["queue"], r["tier"]): r for r in daily["rows"]}
    busy = {(r["queue"], r["tier"]): r for r in live["rows"] if _busy(r)}
    assert set(busy) <= set(lanes) and len(busy) >= 6
    assert sum(r["overflowed"] for r in busy.values()) and sum(r["short_abandoned"] for r in busy.values())
    if hold_and_resume:
        assert sum(r["callback_requested"] for r in busy.values()) == 6
        assert sum(r["resumed"] for r in busy.values()) == 12
    for key, row in lanes.items():
        _same(next(r for r in live["rows"] if (r["queue"], r["tier"]) == key), row, key)

    # The same day by 15 minutes equals the live window's intervals, one by one.
    status, quarters = await api.get("/admin/reports/sla?by=15m")
    assert status == 200
    by_start = {
        (r["queue"], r["tier"], datetime.fromisoformat(r["start"]).timestamp()): r for r in quarters["rows"] if _busy(r)
    }
    seen = 0
    for row in live["rows"]:
        for interval in row.get("intervals", []):
            if _busy(interval):
                at = datetime.fromisoformat(interval["start"]).timestamp()
                _same(interval, by_start.pop((row["queue"], row["tier"], at)), (row["queue"], row["tier"], at))
                seen += 1
    assert seen > 10 and by_start == {}


async def test_extra_thresholds_csv_and_filters(make_report_api: MakeReportApi) -> None:
    api = await make_report_api()
    await drive_traffic(api, seed=7)
    assert api.services.history is not None
    events = [e async for e in _all_events(api.services.calls)]
    await archive_events(api.services.calls, api.services.history)

    status, report = await api.get("/admin/reports/sla?by=60m&thresholds=10,30&tier=vip,mid&queue=sales")
    assert status == 200, report
    assert report["thresholds"] == [10, 30] and report["rows"]
    assert {(r["queue"], r["tier"]) for r in report["rows"]} <= {("sales", "vip"), ("sales", "mid")}
    for threshold in (10, 30):
        counted = sum(r["answered_within"][str(threshold)] for r in report["rows"])
        expected = sum(
            isinstance(e, ev.Answer) and e.queue == "sales" and e.tier in ("vip", "mid") and e.wait_s <= threshold
            for e in events
        )
        assert counted == expected > 0, threshold

    async with api.session.get(api.base + "/admin/reports/sla?by=60m&thresholds=10,30&format=csv", headers=ADMIN) as r:
        assert r.status == 200 and r.content_type == "text/csv"
        assert "attachment" in r.headers["Content-Disposition"]
        table = list(csv.DictReader(io.StringIO(await r.text())))
    status, whole = await api.get("/admin/reports/sla?by=60m&thresholds=10,30")
    assert len(table) == len(whole["rows"])
    for line, row in zip(table, whole["rows"], strict=True):
        assert int(line["offered"]) == row["offered"] and line["queue"] == row["queue"]
        assert int(line["answered_within_30s"]) == row["answered_within"]["30"]
        assert line["service_level"] == ("" if row["service_level"] is None else str(row["service_level"]))

    status, split = await api.get("/admin/reports/sla?by=day&thresholds=30")
    status, together = await api.get("/admin/reports/sla?by=day&thresholds=30&all_queues=true")
    assert status == 200 and {r["queue"] for r in together["rows"]} == {"*"}
    for row in together["rows"]:
        mine = [r for r in split["rows"] if r["tier"] == row["tier"]]
        for field in ("offered", "answered", "answered_within_threshold", "abandoned", "short_abandoned", "overflowed"):
            assert row[field] == sum(r[field] for r in mine), (row["tier"], field)
        assert row["answered_within"]["30"] == sum(r["answered_within"]["30"] for r in mine)
        good, asked = row["answered_within_threshold"], row["offered"] - row["short_abandoned"]
        assert row["service_level"] == (None if asked == 0 else round(good / asked, 6))

    status, agents = await api.get("/admin/reports/agents?by=day")
    assert status == 200
    answers = [e for e in events if isinstance(e, ev.Answer)]
    assert sum(r["answered"] for r in agents["rows"]) == len(answers)
    completed = sum(r["callbacks_completed"] for r in agents["rows"] if r["agent"] == "cb-agent")
    assert completed == sum(isinstance(e, ev.CallbackClosed) and e.reason == "completed" for e in events) > 0
    async with api.session.get(api.base + "/admin/reports/agents?by=day&agent=a1&format=csv", headers=ADMIN) as r:
        lines = list(csv.DictReader(io.StringIO(await r.text())))
    assert {line["agent"] for line in lines} == {"a1"}


async def _all_events(store: CallStore) -> AsyncIterator[ev.Event]:
    after: ev.EventId | None = None
    while batch := await store.read_events(after, 500):
        for event in batch:
            yield event
        after = batch[-1].id


async def test_a_call_history_with_its_callback_masked_on_request(make_report_api: MakeReportApi) -> None:
    api = await make_report_api()
    await drive_traffic(api, seed=11)
    assert api.services.history is not None
    events = [e async for e in _all_events(api.services.calls)]
    await archive_events(api.services.calls, api.services.history)
    created = next(e for e in events if isinstance(e, ev.CallbackCreated))
    assert created.call_id is not None and created.callback_id is not None and created.caller is not None

    status, history = await api.get(f"/admin/calls/{created.call_id}/history")
    assert status == 200, history
    (call,) = history["calls"]
    kinds = [e["kind"] for e in call["events"]]
    assert kinds[0] == "enter" and kinds[-1] == "callback_closed" and "callback_created" in kinds
    assert {"abandon", "overflow"} & set(kinds)  # what left the caller waiting for a callback
    mine = [e for e in events if e.call_id == created.call_id or e.callback_id == created.callback_id]
    assert [tuple(e["id"]) for e in call["events"]] == [(e.id.epoch, e.id.seq) for e in mine]
    assert history["masked"] is False and created.caller in {e.get("caller") for e in call["events"]}

    status, masked = await api.get(f"/admin/calls/{created.call_id}/history?mask=true")
    assert status == 200 and masked["masked"] is True
    shown = {e.get("caller") for e in masked["calls"][0]["events"]} - {None}
    number = created.caller
    assert shown and all(c.count("*") == len(number) - 5 and c[-4:] == number[-4:] for c in shown)

    status, missing = await api.get("/admin/calls/never-seen/history")
    assert status == 404 and missing["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("by=fortnight", "invalid_by"),
        ("tz=Mars/Olympus", "invalid_tz"),
        ("from=yesterday", "invalid_from"),
        ("from=2027-01-15&to=2027-01-14", "invalid_range"),
        ("to=2027-13-01", "invalid_to"),
        ("thresholds=10,abc", "invalid_thresholds"),
        ("thresholds=0", "invalid_thresholds"),
        ("tier=gold", "invalid_tier"),
        ("format=xlsx", "invalid_query"),
        ("by=15m&from=2020-01-01&to=2027-01-01", "too_many_buckets"),
    ],
)
async def test_bad_queries_are_422_with_a_code(make_report_api: MakeReportApi, query: str, code: str) -> None:
    api = await make_report_api()
    status, body = await api.get(f"/admin/reports/sla?{query}")
    assert (status, body["error"]["code"]) == (422, code), body


async def test_without_an_archive_the_routes_say_history_off_and_need_the_admin_token(
    make_report_api: MakeReportApi,
) -> None:
    api = await make_report_api(archive="off")
    for path in ("/admin/reports/sla", "/admin/reports/agents", "/admin/calls/c1/history"):
        status, body = await api.get(path)
        assert (status, body["error"]["code"]) == (409, "history_off"), path
        status, _ = await api.get(path, headers=IVR)
        assert status in (401, 403), path


async def test_an_archive_not_open_yet_is_503(make_report_api: MakeReportApi, tmp_path: Path) -> None:
    api = await make_report_api(archive=SqliteArchive(tmp_path / "never-opened.db"))
    status, body = await api.get("/admin/reports/sla")
    assert (status, body["error"]["code"]) == (503, "history_unavailable"), body


async def test_the_openapi_document_declares_the_routes_and_the_event_schema(make_report_api: MakeReportApi) -> None:
    api = await make_report_api()
    status, doc = await api.get("/openapi.json", headers={})
    assert status == 200
    sla = doc["paths"]["/admin/reports/sla"]["get"]
    assert {p["name"] for p in sla["parameters"]} >= {"from", "to", "by", "queue", "tier", "tz", "thresholds", "format"}
    assert {"200", "422", "409"} <= set(sla["responses"]) and sla["security"]
    by = next(p for p in sla["parameters"] if p["name"] == "by")
    assert by["schema"]["enum"] == ["15m", "30m", "60m", "day", "week", "month"]
    history = doc["paths"]["/admin/calls/{call_id}/history"]["get"]
    assert history["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/CallHistory")
    schemas = doc["components"]["schemas"]
    for kind in ev.KINDS:
        (name,) = [n for n, s in schemas.items() if s.get("properties", {}).get("kind", {}).get("enum") == [kind]]
        assert {"id", "at", "kind"} <= set(schemas[name]["properties"]), kind


def test_the_openapi_document_says_the_reports_also_answer_csv() -> None:
    paths = build_openapi(ENDPOINTS, "test")["paths"]
    for path in ("/admin/reports/sla", "/admin/reports/agents"):
        content = paths[path]["get"]["responses"]["200"]["content"]
        assert set(content) == {"application/json", "text/csv"}, path
        assert content["text/csv"] == {"schema": {"type": "string"}}
    assert set(paths["/admin/calls/{call_id}/history"]["get"]["responses"]["200"]["content"]) == {"application/json"}
