"""`POST /admin/simulate`, `GET /admin/simulate/{job_id}` and `GET /admin/forecast/plan` over a
real port: the run goes to a real worker process while the service keeps routing; the plan
reads a real SQLite archive; bad input is a 422 with its code and changes nothing."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from tierline.admin.simulation.curves import day_bounds
from tierline.queue.clock import ManualClock
from tierline.queue.history import events as ev
from tierline.queue.history.sqlite_archive import SqliteArchive
from tierline.router.app import build_app, open_services
from tierline.router.config import load_settings

ADMIN = {"Authorization": "Bearer sim-boss"}
IVR = {"Authorization": "Bearer sim-ivr"}
ARRIVALS = "start,vip,mid,standard\n08:00,3,10,30\n08:15,3,12,34\n08:30,2,10,30\n08:45,2,8,20\n"
STAFFING = "start,end,agents\n08:00,08:30,8\n08:30,09:15,7\n"
# 2026-11-16 is a Monday; the archive gets the two Mondays before 2026-11-30.
PLAN_DAY = date(2026, 11, 30)


class Client:
    def __init__(self, session: ClientSession, base: str, clock: ManualClock) -> None:
        self.session, self.base, self.clock = session, base, clock

    async def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] = ADMIN) -> tuple[int, Any]:
        async with self.session.request(method, self.base + path, json=body, headers=headers) as resp:
            return resp.status, (None if resp.status == 204 else await resp.json())


MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[MakeClient]:
    closers: list[Callable[[], Awaitable[None]]] = []

    async def make(archive: bool = False, recent: bool = False) -> Client:
        settings = load_settings(None, env={"TIERLINE_ADMIN_TOKEN": "sim-boss", "TIERLINE_API_TOKEN": "sim-ivr"})
        clock = ManualClock(datetime(2026, 11, 30, 7, 0, tzinfo=UTC).timestamp())
        history = None
        if archive:
            lite = SqliteArchive(tmp_path / "history.db")
            await lite.open()
            closers.append(lite.close)
            await fill(lite)
            if recent:
                await fill_recent(lite)
            history = lite
        services = dataclasses.replace(open_services(settings, clock), history=history)
        server = TestServer(build_app(services, sweeper=False), host="127.0.0.1")
        await server.start_server()
        session = ClientSession()
        closers.extend([server.close, session.close])
        return Client(session, f"http://127.0.0.1:{server.port}", clock)

    yield make
    for close in reversed(closers):
        await close()


async def fill(archive: SqliteArchive) -> None:
    """Two past Mondays: 09:00-10:00 UTC, 20 standard and 4 vip calls per 15 minutes one week,
    30 and 6 the week before; every call ends after 200 s."""
    ids = ev.IdSequence(1)
    batch: list[ev.Event] = []
    for weeks, (standard, vip) in ((1, (20, 4)), (2, (30, 6))):
        start = day_bounds(PLAN_DAY - timedelta(weeks=weeks), "UTC")[0] + 9 * 3600
        n = 0
        for interval in range(4):
            for tier, count in (("standard", standard), ("vip", vip)):
                for k in range(count):
                    at = start + interval * 900 + k * 900 / count
                    base = {"call_id": f"w{weeks}-{n}", "caller": "+4930123", "queue": "default", "tier": tier}
                    n += 1
                    batch.append(ev.Enter(id=ids.next(), at=at, position=1, **base))
                    batch.append(ev.End(id=ids.next(), at=at + 200, agent="a1", handle_s=200.0, **base))
    await archive.ingest(batch)


async def fill_recent(archive: SqliteArchive) -> None:
    """The 24 hours before the clock (2026-11-30 07:00 UTC): 60 calls answered after 0-59 s,
    each ending after 100 + n s, and 40 abandons after 30 s."""
    ids = ev.IdSequence(2)
    start = datetime(2026, 11, 29, 12, 0, tzinfo=UTC).timestamp()
    batch: list[ev.Event] = []
    for n in range(100):
        base = {"call_id": f"r{n}", "caller": "+4930777", "queue": "default", "tier": "standard"}
        at = start + n * 60.0
        if n < 60:
            batch.append(ev.Answer(id=ids.next(), at=at, wait_s=float(n), threshold_s=20.0, **base))
            batch.append(ev.End(id=ids.next(), at=at + 100 + n, agent="a1", handle_s=100.0 + n, **base))
        else:
            batch.append(ev.Abandon(id=ids.next(), at=at, wait_s=30.0, short=False, threshold_s=20.0, **base))
    await archive.ingest(batch)


async def finished(client: Client, job_id: str) -> dict[str, Any]:
    for _ in range(1200):  # the worker is a fresh interpreter: its first job waits for its imports
        status, body = await client.call("GET", f"/admin/simulate/{job_id}")
        assert status == 200, body
        if body["status"] != "running":
            result: dict[str, Any] = body
            return result
        await asyncio.sleep(0.1)
    raise AssertionError("the simulation never finished")


async def test_a_job_runs_in_a_worker_while_the_service_routes(make_client: MakeClient) -> None:
    client = await make_client()
    request = {
        "arrivals_csv": ARRIVALS,
        "staffing_csv": STAFFING,
        "date": "2026-11-30",
        "aht_s": 180,
        "patience_s": 120,
        "policy": {"tiers": {"mid": {"overflow_after_s": 30}}},
        "seed": 4,
        "replications": 3,
    }
    status, job = await client.call("POST", "/admin/simulate", request)
    assert status == 202, job
    assert job["status"] == "running" and job["href"] == f"/admin/simulate/{job['job_id']}"
    assert job["expected_calls"] == 164.0 and job["arrivals_source"] == "csv"
    # The service routes meanwhile: its loop is not running the simulation.
    status, call = await client.call("POST", "/v1/calls", {"call_id": "live-1", "caller": "+4930555"}, IVR)
    assert status == 201 and call["status"] == "waiting"
    body = await finished(client, job["job_id"])
    assert body["status"] == "done", body
    result = body["result"]
    assert result["replications"] == 3 and result["formula"] == "default"
    assert [row["time"] for row in result["intervals"]] == ["08:00", "08:15", "08:30", "08:45"]
    assert [row["agents"] for row in result["intervals"]] == [8, 8, 7, 7]
    cells = {c["tier"]: c for c in result["totals"]}
    assert cells["mid"]["arrived"]["mean"] > 0 and cells["blacklisted"]["arrived"]["mean"] == 0
    assert cells["blacklisted"]["service_level"]["mean"] is None
    low, high = cells["standard"]["service_level"]["low"], cells["standard"]["service_level"]["high"]
    assert low is not None and low <= cells["standard"]["service_level"]["mean"] <= high
    assert sum(c["overflowed"]["mean"] for c in result["totals"]) > 0  # 30 s mid limit on a short staff
    assert cells["mid"]["callbacks_created"]["mean"] > 0 and cells["mid"]["callbacks_workable"] is not None
    # Nothing of the run reached the service's own store or its figures.
    status, sla = await client.call("GET", "/admin/sla?window=today")
    assert status == 200
    assert sum(row["arrived"] for row in sla["rows"]) == 1 and sum(row["waiting_now"] for row in sla["rows"]) == 1
    # The same seed again: the same figures.
    status, again = await client.call("POST", "/admin/simulate", request)
    assert status == 202
    repeat = await finished(client, again["job_id"])
    assert repeat["result"]["totals"] == result["totals"]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"staffing_csv": "start,end,agents\n08:00,08:30,8\n08:45,09:15,7\n"}, "plan_gap"),
        ({"staffing_csv": "start,end,agents\n08:00,08:45,8\n08:30,09:15,7\n"}, "plan_overlap"),
        ({"staffing_csv": "start,end,agents\n08:00,08:30,8\n"}, "plan_gap"),
        ({"arrivals_csv": "start,standard\n08:00,-3\n"}, "invalid_rate"),
        ({"arrivals_csv": "start,standard\n08:00,3\n08:30,3\n"}, "interval_gap"),
        ({"arrivals_csv": "start,gold\n08:00,3\n"}, "invalid_csv"),
        ({"aht_s": 0}, "invalid_aht"),
        ({"aht_s": 1e9}, "invalid_aht"),
        ({"patience_s": -5}, "invalid_patience"),
        ({"replications": 0}, "invalid_field"),
        ({"surprise": 1}, "invalid_field"),
        ({"policy": {"tiers": {"mid": {"overflow_after_s": -1}}}}, "invalid_field"),
        ({"arrivals_from": "archive", "date": "2026-11-23"}, "no_history"),
        ({"arrivals_from": "observed"}, "no_traffic"),
    ],
)
async def test_bad_input_is_a_coded_422(make_client: MakeClient, change: dict[str, Any], code: str) -> None:
    client = await make_client()
    request = {"arrivals_csv": ARRIVALS, "staffing_csv": STAFFING, "aht_s": 180} | change
    status, body = await client.call("POST", "/admin/simulate", request)
    assert (status, body["error"]["code"]) == (422, code), body


async def test_jobs_are_admin_only_and_unknown_ones_404(make_client: MakeClient) -> None:
    client = await make_client()
    status, _ = await client.call("POST", "/admin/simulate", {"staffing_csv": STAFFING}, IVR)
    assert status in (401, 403)
    status, body = await client.call("GET", "/admin/simulate/nosuchjob")
    assert (status, body["error"]["code"]) == (404, "job_not_found")
    status, body = await client.call("GET", "/admin/simulate/has%20space")
    assert (status, body["error"]["code"]) == (422, "invalid_field")


async def test_a_day_plan_from_the_same_weekdays_in_the_archive(make_client: MakeClient) -> None:
    client = await make_client(archive=True)
    status, body = await client.call("GET", f"/admin/forecast/plan?date={PLAN_DAY}")
    assert status == 200, body
    plan = body["plan"]
    assert body["days_averaged"] == ["2026-11-23", "2026-11-16"] and body["aht_source"] == "archive"
    assert plan["aht_s"] == 200.0 and plan["model"] == "erlang_c" and len(plan["intervals"]) == 96
    busy = [row for row in plan["intervals"] if row["load_erlangs"]]
    assert [row["time"] for row in busy] == ["09:00", "09:15", "09:30", "09:45"]
    assert busy[0]["arrivals"] == {"vip": 5.0, "mid": 0.0, "standard": 25.0, "blacklisted": 0.0}
    assert all(row["agents"] > row["load_erlangs"] for row in busy)
    assert plan["agent_hours"] == sum(row["agents"] for row in plan["intervals"]) / 4
    assert plan["peak_agents"] == max(row["agents"] for row in busy)
    status, with_a = await client.call("GET", f"/admin/forecast/plan?date={PLAN_DAY}&model=erlang_a&patience_s=60")
    assert status == 200 and with_a["plan"]["model"] == "erlang_a"
    assert with_a["plan"]["agent_hours"] <= plan["agent_hours"]  # callers who give up need fewer agents


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("date=2026-12-01", "no_history"),  # a Tuesday: no Tuesday in the archive
        ("", "invalid_query"),
        ("date=30.11.2026", "invalid_query"),
        (f"date={PLAN_DAY}&model=erlang_a", "invalid_query"),
        (f"date={PLAN_DAY}&aht_s=-1", "invalid_query"),
    ],
)
async def test_plan_bad_input(make_client: MakeClient, query: str, code: str) -> None:
    client = await make_client(archive=True)
    status, body = await client.call("GET", f"/admin/forecast/plan?{query}")
    assert (status, body["error"]["code"]) == (422, code), body


async def test_plan_without_an_archive(make_client: MakeClient) -> None:
    client = await make_client()
    status, body = await client.call("GET", f"/admin/forecast/plan?date={PLAN_DAY}")
    assert (status, body["error"]["code"]) == (422, "no_history")


async def test_the_openapi_document_declares_the_routes(make_client: MakeClient) -> None:
    client = await make_client()
    status, doc = await client.call("GET", "/openapi.json")
    assert status == 200
    post = doc["paths"]["/admin/simulate"]["post"]
    assert set(post["responses"]) >= {"202", "409", "422"}
    body_ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = doc["components"]["schemas"][body_ref.rsplit("/", 1)[1]]
    assert {"staffing_csv"} <= set(body["required"]) and {"arrivals_csv", "policy", "seed"} <= set(body["properties"])
    job = doc["paths"]["/admin/simulate/{job_id}"]["get"]
    assert set(job["responses"]) >= {"200", "404"}
    plan = doc["paths"]["/admin/forecast/plan"]["get"]
    assert {p["name"] for p in plan["parameters"]} >= {"date", "queue", "aht_s", "model", "patience_s"}


async def test_arrivals_from_the_observed_window_or_an_archived_day(make_client: MakeClient) -> None:
    client = await make_client(archive=True)
    for n in range(6):
        status, _ = await client.call("POST", "/v1/calls", {"call_id": f"o-{n}", "caller": f"+49301{n:04d}"}, IVR)
        assert status == 201
        client.clock.advance(100)
    observed = {"arrivals_from": "observed", "observed_intervals": 8, "aht_s": 180,
                "staffing_csv": "start,end,agents\n00:00,23:45,3", "replications": 1}  # fmt: skip
    status, job = await client.call("POST", "/admin/simulate", observed)
    assert status == 202, job
    # 6 calls in the 600 s the store has counted: 9 per 15-minute interval, 8 intervals.
    assert job["arrivals_source"] == "observed" and job["expected_calls"] == pytest.approx(72.0, abs=0.01)
    archived = {"arrivals_from": "archive", "date": "2026-11-23", "replications": 1,
                "staffing_csv": "start,end,agents\n00:00,24:00,4"}  # fmt: skip
    status, job = await client.call("POST", "/admin/simulate", archived)
    assert status == 202, job
    assert job["arrivals_source"] == "archive:2026-11-23" and job["expected_calls"] == 96.0  # AHT from the archive


async def test_handle_times_and_patience_say_where_they_are_drawn_from(make_client: MakeClient) -> None:
    client = await make_client(archive=True)
    day = {"arrivals_from": "archive", "date": "2026-11-23", "replications": 1,
           "staffing_csv": "start,end,agents\n00:00,24:00,4"}  # fmt: skip
    status, job = await client.call("POST", "/admin/simulate", day)
    assert status == 202, job
    # The archived day's 96 ended calls are drawn from; no wait was archived: nobody hangs up.
    sources = job["sources"]
    assert (sources["handle"], sources["handle_samples"], sources["patience"]) == ("archive", 96, "none")
    assert sources["window"].startswith("2026-11-23T00:00:00")
    body = await finished(client, job["job_id"])
    assert body["status"] == "done" and body["result"]["sources"] == sources
    status, job = await client.call("POST", "/admin/simulate", day | {"distributions": "exponential"})
    assert status == 202 and job["sources"]["handle"] == "exponential"
    assert job["sources"]["handle_from"] == "archive" and job["sources"]["window"] is None
    csv = {"arrivals_csv": ARRIVALS, "staffing_csv": STAFFING, "aht_s": 180, "patience_s": 90, "replications": 1}
    status, job = await client.call("POST", "/admin/simulate", csv)
    assert status == 202 and job["sources"]["handle_from"] == "given" and job["sources"]["patience"] == "exponential"
    # Drawing from the archive is asked for, but nothing ended in the last 24 hours.
    del csv["aht_s"]
    status, body = await client.call("POST", "/admin/simulate", csv | {"distributions": "archive"})
    assert (status, body["error"]["code"]) == (422, "no_samples"), body
    no_history = await make_client()
    status, body = await no_history.call("POST", "/admin/simulate", csv | {"distributions": "archive"})
    assert (status, body["error"]["code"]) == (422, "no_history"), body


async def test_patience_drawn_from_the_archives_waits(make_client: MakeClient) -> None:
    """History on, nothing given: handle times and patience come from the last 24 hours."""
    client = await make_client(archive=True, recent=True)
    request = {"arrivals_csv": ARRIVALS, "staffing_csv": STAFFING, "replications": 2, "seed": 3}
    status, job = await client.call("POST", "/admin/simulate", request)
    assert status == 202, job
    sources = job["sources"]
    assert (sources["handle"], sources["handle_samples"], sources["handle_from"]) == ("archive", 60, "archive")
    assert (sources["patience"], sources["patience_from"]) == ("archive", "archive")
    assert (sources["abandons_seen"], sources["waits_seen"]) == (40, 100)
    assert sources["window"] == "2026-11-29T07:00:00+00:00/2026-11-30T07:00:00+00:00"
    body = await finished(client, job["job_id"])
    assert body["status"] == "done", body
    # Everyone who waited past 30 s in the archive gave up there: short staff, many abandons.
    assert sum(c["abandoned"]["mean"] for c in body["result"]["totals"]) > 0
