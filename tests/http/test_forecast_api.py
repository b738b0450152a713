"""`GET /admin/forecast` and `tierline forecast` over a real port, traffic made by real calls."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.http.conftest import Api, ApiFactory
from tierline.admin.staffing import erlang_a as ea
from tierline.admin.staffing import outlook as so
from tierline.tiers.model import TIERS, Tier

CLI = [sys.executable, "-m", "tierline.router.cli"]
TARGETS: dict[Tier, float | None] = {"vip": 0.90, "mid": 0.85, "standard": 0.85, "blacklisted": None}


async def make_traffic(api: Api, queue: str = "default", prefix: str = "") -> None:
    """Over 600 s: 1 vip, 1 mid, 2 standard arrive; 3 calls end after 240, 240 and 360 s of talk."""
    await api.call("PUT", "/admin/tiers/+861000001", {"tier": "vip"})
    await api.call("PUT", "/admin/tiers/+861000002", {"tier": "mid"})
    for call_id, caller in (("v1", "+861000001"), ("m1", "+861000002"), ("s1", "+861000003"), ("s2", "+861000004")):
        status, _ = await api.post("/v1/calls", {"call_id": prefix + call_id, "caller": caller, "queue": queue})
        assert status == 201
    for call_id, agent in (("v1", "a"), ("m1", "b")):
        status, _ = await api.post(f"/v1/calls/{prefix}{call_id}/answer", {"agent_id": prefix + agent})
        assert status == 200
    api.clock.advance(240)
    for call_id in ("v1", "m1"):
        status, ended = await api.post(f"/v1/calls/{prefix}{call_id}/end")
        assert status == 200 and ended["handle_s"] == 240
    assert (await api.post(f"/v1/calls/{prefix}s1/answer", {"agent_id": prefix + "a"}))[0] == 200
    api.clock.advance(360)
    assert (await api.post(f"/v1/calls/{prefix}s1/end"))[0] == 200


def expected_demands(per_hour: dict[Tier, float]) -> list[so.TierDemand]:
    return [
        so.TierDemand(tier=t, arrivals_per_s=per_hour[t] / 3600, threshold_s=20.0, target=TARGETS[t]) for t in TIERS
    ]


async def test_observed_traffic_gives_the_inputs_and_the_staffing(api: Api) -> None:
    await make_traffic(api)
    status, body = await api.get("/admin/forecast?queue=default")
    assert status == 200, body
    inputs = body["inputs"]
    assert body["queue"] == "default" and body["model"] == "erlang_c" and "Cobham" in body["model_text"]
    assert inputs["window"] == "60m" and inputs["window_s"] == 600.0  # the store started 600 s ago
    assert inputs["aht_s"] == 280.0 and inputs["aht_source"] == "observed" and inputs["ended_in_window"] == 3
    per_hour = {t["tier"]: t["arrivals_per_hour"] for t in inputs["tiers"]}
    assert per_hour == {"vip": 6.0, "mid": 6.0, "standard": 12.0, "blacklisted": 0.0}
    assert {t["source"] for t in inputs["tiers"]} == {"observed"}
    assert {t["tier"]: t["arrived_in_window"] for t in inputs["tiers"]} == {
        "vip": 1,
        "mid": 1,
        "standard": 2,
        "blacklisted": 0,
    }
    assert inputs["arrivals_per_hour"] == 24.0 and inputs["load_erlangs"] == pytest.approx(24 * 280 / 3600, abs=1e-4)

    demands = expected_demands(per_hour)
    needed = so.staffing(demands, 280.0)
    assert body["agents_source"] == "needed" and body["agents"] == needed == body["agents_needed"]
    pure = so.outlook(needed or 0, demands, 280.0)
    assert body["stable"] is True and body["p_wait"] == pytest.approx(pure.p_wait, abs=1e-6)
    rows = {r["tier"]: r for r in body["tiers"]}
    for expected in pure.tiers:
        row = rows[expected.tier]
        assert row["has_calls"] is expected.has_calls and row["stable"] is True
        if not expected.has_calls:
            assert row["service_level"] is None and row["met"] is None and row["agents_needed"] is None
            continue
        assert row["service_level"] == pytest.approx(expected.service_level, abs=1e-6)
        assert row["mean_wait_s"] == pytest.approx(expected.mean_wait_s, abs=1e-3)
        assert row["agents_needed"] == expected.agents_needed
        assert row["met"] is (None if TARGETS[expected.tier] is None else True)
    assert rows["vip"]["service_level"] > rows["standard"]["service_level"]
    assert rows["blacklisted"]["agents_needed"] is None and rows["blacklisted"]["target"] is None
    assert body["notes"] == ["observed over 600 s only: the store began counting within the window"]


async def test_given_inputs_override_the_observed_ones(api: Api) -> None:
    await make_traffic(api)
    # A total rate is split by the observed mix (1 vip : 1 mid : 2 standard).
    status, body = await api.get("/admin/forecast?agents=14&arrivals_per_hour=240&aht_s=180")
    assert status == 200, body
    inputs = body["inputs"]
    assert inputs["aht_s"] == 180.0 and inputs["aht_source"] == "given" and inputs["load_erlangs"] == 12.0
    assert {t["tier"]: (t["arrivals_per_hour"], t["source"]) for t in inputs["tiers"]} == {
        "vip": (60.0, "split"),
        "mid": (60.0, "split"),
        "standard": (120.0, "split"),
        "blacklisted": (0.0, "split"),
    }
    assert body["queue"] is None and body["agents"] == 14 and body["agents_source"] == "given"
    pure = so.outlook(14, expected_demands({"vip": 60.0, "mid": 60.0, "standard": 120.0, "blacklisted": 0.0}), 180.0)
    rows = {r["tier"]: r for r in body["tiers"]}
    for expected in pure.tiers:
        if expected.service_level is None:
            assert rows[expected.tier]["service_level"] is None
            continue
        assert rows[expected.tier]["service_level"] == pytest.approx(expected.service_level, abs=1e-6)
        assert rows[expected.tier]["met"] == expected.met
    assert body["agents_needed"] == pure.agents_needed

    # Per-tier rates replace those tiers only; the rest stay observed.
    status, body = await api.get("/admin/forecast?vip_per_hour=100&blacklisted_per_hour=2.5&aht_s=180")
    assert status == 200, body
    assert {t["tier"]: (t["arrivals_per_hour"], t["source"]) for t in body["inputs"]["tiers"]} == {
        "vip": (100.0, "given"),
        "mid": (6.0, "observed"),
        "standard": (12.0, "observed"),
        "blacklisted": (2.5, "given"),
    }


async def test_the_facts_case_through_http(api: Api) -> None:
    """A = 10 Erlangs, one tier, 13 agents ≈ 79.6%, 14 ≈ 88.8% (FACTS)."""
    await api.post("/v1/calls", {"call_id": "x1", "caller": "+8613900000001"})  # one standard arrival: the mix
    api.clock.advance(60)
    for agents, level in ((13, 0.796), (14, 0.888)):
        status, body = await api.get(f"/admin/forecast?agents={agents}&arrivals_per_hour=200&aht_s=180")
        assert status == 200, body
        rows = {r["tier"]: r for r in body["tiers"]}
        assert rows["standard"]["service_level"] == pytest.approx(level, abs=0.001)
        assert rows["standard"]["pooled_service_level"] == rows["standard"]["service_level"]
    assert rows["standard"]["agents_needed"] == 14 and body["agents_needed"] == 14


async def test_too_few_agents_is_unstable_not_an_error(api: Api) -> None:
    status, body = await api.get("/admin/forecast?agents=10&arrivals_per_hour=200&aht_s=180")
    assert status == 200, body
    assert body["stable"] is False and body["agents"] == 10
    assert body["p_wait"] == 1.0 and body["asa_s"] is None  # every call waits; the line grows
    assert all(r["service_level"] is None and r["mean_wait_s"] is None for r in body["tiers"])
    assert {r["tier"]: r["stable"] for r in body["tiers"]}["standard"] is False
    assert body["agents_needed"] == 14
    # Nothing was observed, so the whole given rate is the default tier.
    assert {t["tier"]: t["arrivals_per_hour"] for t in body["inputs"]["tiers"]}["standard"] == 200.0
    assert any("no steady state" in note for note in body["notes"])
    assert any("counts as standard" in note for note in body["notes"])


async def test_without_a_handle_time_there_is_no_forecast(api: Api) -> None:
    await api.post("/v1/calls", {"call_id": "w1", "caller": "+8613900000001"})
    api.clock.advance(30)
    status, body = await api.get("/admin/forecast")
    assert status == 200, body
    assert body["agents"] is None and body["stable"] is None and body["inputs"]["aht_s"] is None
    assert body["inputs"]["tiers"][2]["arrived_in_window"] == 1
    assert all(r["service_level"] is None for r in body["tiers"])
    assert any("aht_s" in note for note in body["notes"])
    status, body = await api.get("/admin/forecast?aht_s=200")
    # One arrival in 30 s is 120 calls/h: 6.67 Erlangs at 200 s.
    assert status == 200 and body["stable"] is True and body["inputs"]["arrivals_per_hour"] == 120.0
    expected = so.staffing(expected_demands({"vip": 0.0, "mid": 0.0, "standard": 120.0, "blacklisted": 0.0}), 200.0)
    assert body["agents"] == body["agents_needed"] == expected == 10


async def test_queue_and_window_select_the_traffic(make_api: ApiFactory) -> None:
    api = await make_api("[queues.billing]\n")
    await make_traffic(api, queue="billing", prefix="b-")
    status, body = await api.get("/admin/forecast?queue=default")
    assert status == 200 and body["inputs"]["arrivals_per_hour"] == 0.0 and body["inputs"]["ended_in_window"] == 0
    status, body = await api.get("/admin/forecast?queue=billing")
    assert status == 200 and body["inputs"]["arrivals_per_hour"] == 24.0
    status, body = await api.get("/admin/forecast")  # all queues as one pool
    assert status == 200 and body["queue"] is None and body["inputs"]["arrivals_per_hour"] == 24.0
    api.clock.advance(20 * 60)  # the calls are now 20-30 minutes old
    status, body = await api.get("/admin/forecast?queue=billing&window=15m")
    assert status == 200 and body["inputs"]["window"] == "15m"
    assert body["inputs"]["ended_in_window"] == 0 and body["inputs"]["arrivals_per_hour"] == 0.0
    assert 14 * 60 <= body["inputs"]["window_s"] <= 15 * 60
    status, body = await api.get("/admin/forecast?queue=billing&window=60m")
    assert body["inputs"]["ended_in_window"] == 3 and body["inputs"]["window_s"] == 1800.0
    assert body["inputs"]["arrivals_per_hour"] == 8.0  # 4 calls in 30 minutes


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("agents=0", "invalid_query"),
        ("agents=1.5", "invalid_query"),
        ("agents=ten", "invalid_query"),
        ("agents=", "invalid_query"),
        ("agents=100001", "invalid_query"),
        ("aht_s=0", "invalid_query"),
        ("aht_s=nan", "invalid_query"),
        ("arrivals_per_hour=-1", "invalid_query"),
        ("arrivals_per_hour=inf", "invalid_query"),
        ("vip_per_hour=x", "invalid_query"),
        ("arrivals_per_hour=10&vip_per_hour=5", "invalid_query"),
        ("window=2h", "invalid_query"),
        ("queue=nope", "unknown_queue"),
    ],
)
async def test_bad_queries_are_422(api: Api, query: str, code: str) -> None:
    status, body = await api.get(f"/admin/forecast?{query}")
    assert status == 422 and body["error"]["code"] == code, body


async def test_forecast_is_admin_only_and_documented(make_api: ApiFactory) -> None:
    api = await make_api(env={"TIERLINE_API_TOKEN": "ivr", "TIERLINE_ADMIN_TOKEN": "boss"})
    assert (await api.get("/admin/forecast"))[0] == 401
    assert (await api.get("/admin/forecast", headers={"Authorization": "Bearer ivr"}))[0] == 403
    assert (await api.get("/admin/forecast", headers={"Authorization": "Bearer boss"}))[0] == 200
    _, doc = await api.get("/openapi.json")
    operation = doc["paths"]["/admin/forecast"]["get"]
    params = {p["name"]: p["schema"] for p in operation["parameters"] if "name" in p}  # not the $refs
    assert params["agents"] == {"type": "integer", "minimum": 1, "maximum": so.MAX_AGENTS}
    assert params["model"]["enum"] == ["erlang_c", "erlang_a"] and params["patience_s"]["type"] == "number"
    assert params["aht_s"]["type"] == "number" and params["vip_per_hour"]["type"] == "number"
    assert params["window"]["enum"] == ["15m", "60m"]
    assert "ForecastView" in doc["components"]["schemas"]


# --- the CLI against the live server -----------------------------------------------------------


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    import os

    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "forecast",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def table_rows(out: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] and line.split()[0] in TIERS}


async def test_cli_prints_the_table(api: Api) -> None:
    await make_traffic(api)
    code, out, err = await run_cli("--url", api.base, "--queue", "default")
    assert code == 0, err
    _, body = await api.get("/admin/forecast?queue=default")
    assert "Forecast for default" in out and "AHT 280.0 s (observed, 3 calls ended)" in out
    assert f"Agents: {body['agents']} (needed to meet every target), stable" in out
    assert "Tier" in out and "Pooled SL" in out
    rows = table_rows(out)
    assert set(rows) == set(TIERS)
    vip = {r["tier"]: r for r in body["tiers"]}["vip"]
    assert rows["vip"][1] == "6.0" and rows["vip"][2] == "observed"
    assert f"{vip['service_level'] * 100:.1f}%" in rows["vip"]
    assert rows["blacklisted"][-1] == "-"

    code, out, err = await run_cli("--url", api.base, "--agents", "3", "--arrivals-per-hour", "240", "--aht-s", "180")
    assert code == 0, err
    assert "Agents: 3 (given), UNSTABLE" in out and "no steady state" in out
    assert table_rows(out)["standard"][1:3] == ["120.0", "split"]

    code, out, err = await run_cli("--url", api.base, "--agents", "0")
    assert code == 1 and "422" in err and "agents must be between" in err

    code, out, err = await run_cli("--url", api.base, "--json", "--aht-s", "200")
    assert code == 0 and '"model": "erlang_c"' in out


async def test_cli_sends_the_admin_token(make_api: ApiFactory) -> None:
    api = await make_api(env={"TIERLINE_ADMIN_TOKEN": "boss"})
    code, _, err = await run_cli("--url", api.base)
    assert code == 1 and "401" in err
    code, out, err = await run_cli("--url", api.base, "--admin-token", "boss", "--aht-s", "120")
    assert code == 0, err
    code, out, err = await run_cli("--url", api.base, env={"TIERLINE_ADMIN_TOKEN": "boss"})
    assert code == 0, err
    assert "pass aht_s" in out


async def test_cli_unreachable_exits_3() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, _, err = await run_cli("--url", f"http://127.0.0.1:{port}")
    assert code == 3 and "cannot reach" in err


# --- Erlang A (issue 18 item 4) and refusals (item 9) --------------------------------------------


async def test_erlang_a_with_given_patience(api: Api) -> None:
    """The reference case through HTTP: 14 agents, 200 calls/h, AHT 180 s, patience 300 s."""
    await api.post("/v1/calls", {"call_id": "a1", "caller": "+8613900000001"})  # the mix: all standard
    api.clock.advance(60)
    query = "agents=14&arrivals_per_hour=200&aht_s=180&model=erlang_a&patience_s=300"
    status, body = await api.get(f"/admin/forecast?{query}")
    assert status == 200, body
    assert body["model"] == "erlang_a" and "Erlang A" in body["model_text"]
    assert body["service_level_formula"] == "default"
    assert body["inputs"]["patience_s"] == 300.0 and body["inputs"]["patience_source"] == "given"
    assert body["p_abandon"] == pytest.approx(0.013984, abs=1e-6) and body["stable"] is True
    row = {r["tier"]: r for r in body["tiers"]}["standard"]
    fates = ea.pooled(14, 200 / 3600, 180.0, 300.0, 20.0, short_abandon_s=5.0)
    assert row["service_level"] == pytest.approx(fates.level("default"), abs=1e-6)
    assert row["service_level"] > 0.916792  # the default formula leaves short abandons out
    assert row["p_abandon"] == pytest.approx(0.013984, abs=1e-6) and row["asa_s"] is not None
    assert body["agents_needed"] == so.staffing(
        expected_demands({"vip": 0.0, "mid": 0.0, "standard": 200.0, "blacklisted": 0.0}),
        180.0,
        so.Assumptions(model="erlang_a", patience_s=300.0),
    )


async def test_erlang_a_under_the_all_offered_formula(make_api: ApiFactory) -> None:
    api = await make_api('sla_formula = "all_offered"\n')
    await api.post("/v1/calls", {"call_id": "a1", "caller": "+8613900000001"})
    api.clock.advance(60)
    status, body = await api.get(
        "/admin/forecast?agents=14&arrivals_per_hour=200&aht_s=180&model=erlang_a&patience_s=300"
    )
    assert status == 200, body
    assert body["service_level_formula"] == "all_offered"
    assert {r["tier"]: r for r in body["tiers"]}["standard"]["service_level"] == pytest.approx(0.916792, abs=1e-6)


async def test_erlang_a_observes_patience_in_the_history(make_api: ApiFactory, tmp_path: Path) -> None:
    """Patience = every finished wait / abandons, read from the archived events (the memory
    store's default archive, a SQLite file)."""
    api = await make_api(env={"TIERLINE_DATA_DIR": str(tmp_path)})
    archive = api.services.history
    assert archive is not None
    await archive.open()  # what the app's archiver does when it runs (not in these servers)
    for call_id, caller in (("p1", "+8613900000001"), ("p2", "+8613900000002"), ("p3", "+8613900000003")):
        assert (await api.post("/v1/calls", {"call_id": call_id, "caller": caller}))[0] == 201
    api.clock.advance(30)
    assert (await api.post("/v1/calls/p1/answer", {"agent_id": "a"}))[0] == 200  # waited 30 s
    api.clock.advance(60)
    assert (await api.post("/v1/calls/p2/abandon"))[0] == 200  # gave up after 90 s
    api.clock.advance(30)
    assert (await api.post("/v1/calls/p3/abandon"))[0] == 200  # gave up after 120 s
    assert (await api.post("/v1/calls/p1/end"))[0] == 200
    after = None
    while batch := await api.services.calls.read_events(after, 500):
        await archive.ingest(batch)
        after = batch[-1].id
    status, body = await api.get("/admin/forecast?model=erlang_a")
    assert status == 200, body
    inputs = body["inputs"]
    assert inputs["patience_source"] == "observed"
    assert inputs["patience_s"] == pytest.approx((30 + 90 + 120) / 2)  # the answered wait is censored
    assert body["p_abandon"] is not None and body["agents"] is not None
    await archive.close()


async def test_erlang_a_without_patience_says_what_is_missing(make_api: ApiFactory) -> None:
    api = await make_api(env={"TIERLINE_HISTORY": "off"})
    assert api.services.history is None
    await api.post("/v1/calls", {"call_id": "n1", "caller": "+8613900000001"})
    api.clock.advance(60)
    status, body = await api.get("/admin/forecast?model=erlang_a&aht_s=180")
    assert status == 200, body
    assert body["inputs"]["patience_s"] is None and body["agents"] is None
    assert any("history is off" in note and "patience_s" in note for note in body["notes"])


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("model=erlang_b", "invalid_query"),
        ("model=erlang_a&patience_s=0", "invalid_query"),
        ("model=erlang_a&patience_s=-5", "invalid_query"),
        ("model=erlang_a&patience_s=1e9", "invalid_query"),
        ("model=erlang_a&patience_s=nan", "invalid_query"),
        ("patience_s=300", "invalid_query"),  # patience without erlang_a
        ("aht_s=90000", "invalid_query"),
        ("arrivals_per_hour=1e7", "invalid_query"),
        ("arrivals_per_hour=1000000&aht_s=86400", "invalid_forecast"),  # 24 million Erlangs
        ("arrivals_per_hour=1000000&aht_s=1&model=erlang_a&patience_s=86400", "invalid_forecast"),
        # 3,333 calls within one mean patience: more than Erlang A follows (5,000 Erlangs with 60 s
        # patience, 1,667 calls, once refused as too much work, is answered since the inversion)
        ("arrivals_per_hour=200000&aht_s=180&model=erlang_a&patience_s=60", "invalid_forecast"),
    ],
)
async def test_absurd_inputs_are_422(api: Api, query: str, code: str) -> None:
    status, body = await api.get(f"/admin/forecast?{query}")
    assert status == 422 and body["error"]["code"] == code, body
    assert body["error"]["message"]


async def test_cli_erlang_a(api: Api) -> None:
    await make_traffic(api)
    code, out, err = await run_cli(
        "--url", api.base, "--queue", "default", "--model", "erlang_a", "--patience-s", "300", "--aht-s", "180"
    )
    assert code == 0, err
    assert "model Erlang A (abandons)" in out and "patience 300 s (given)" in out
    assert "abandon" in out and "abandons" in out
