"""The estimated wait over real HTTP: the call answers, /admin/sla, /metrics and the OpenAPI document."""

from __future__ import annotations

from tests.http.conftest import ApiFactory
from tests.http.test_metrics import ADMIN, at, scrape


async def test_quotes_announcements_and_their_accuracy(make_api: ApiFactory) -> None:
    api = await make_api(env={"TIERLINE_ADMIN_TOKEN": "boss-secret"})
    # One call handled for 100 s gives the queue its handle time.
    await api.post("/v1/calls", {"call_id": "c0", "caller": "+861000000"})
    await api.post("/v1/calls/c0/answer", {"agent_id": "a1"})
    api.clock.advance(100)
    await api.post("/v1/calls/c0/end")
    for i in (1, 2):
        status, body = await api.post("/v1/calls", {"call_id": f"s{i}", "caller": f"+86200000{i}"})
        assert status == 201 and body["announce_position"] == body["position"] == i
        assert body["estimated_wait_s"] > 0
    status, _ = await api.call("PUT", "/admin/tiers/+861000009", {"tier": "vip"}, headers=ADMIN)
    assert status == 200
    await api.post("/v1/calls", {"call_id": "v1", "caller": "+861000009"})
    status, s2 = await api.get("/v1/calls/s2")
    assert status == 200 and (s2["position"], s2["announce_position"]) == (3, 2)

    api.clock.advance(30)
    status, answered = await api.post("/v1/calls/s1/answer", {"agent_id": "a2"})
    assert status == 200 and answered["announce_position"] is None and answered["estimated_wait_s"] is None

    status, sla = await api.get("/admin/sla", headers=ADMIN)
    assert status == 200
    rows = {(r["queue"], r["tier"]): r["estimate_accuracy"] for r in sla["rows"]}
    standard = rows[("default", "standard")]
    assert standard["calls"] == 1 and standard["mean_abs_error_s"] >= 0 and standard["median_ratio"] > 0
    assert rows[("default", "vip")] == {
        "calls": 0,
        "mean_abs_error_s": None,
        "median_ratio": None,
        "within_50pct": None,
    }

    samples, types = await scrape(api)
    assert types["tierline_wait_estimate_calls"] == "counter"
    assert at(samples, "tierline_wait_estimate_calls_total", queue="default", tier="standard") == 1
    mae = at(samples, "tierline_wait_estimate_mean_abs_error_seconds", queue="default", tier="standard")
    assert mae == standard["mean_abs_error_s"]
    assert (
        at(samples, "tierline_wait_estimate_median_ratio", queue="default", tier="standard")
        == (standard["median_ratio"])
    )
    within = at(samples, "tierline_wait_estimate_within_50pct_ratio", queue="default", tier="standard")
    assert within == standard["within_50pct"]


async def test_openapi_declares_the_announcement_and_the_accuracy(make_api: ApiFactory) -> None:
    api = await make_api()
    status, doc = await api.get("/openapi.json")
    assert status == 200
    schemas = doc["components"]["schemas"]
    call = schemas["CallView"]["properties"]
    assert "never higher" in call["announce_position"]["description"]
    assert "median" in call["estimated_wait_s"]["description"]
    assert "estimate_accuracy" in schemas["SlaRowView"]["required"]
    figures = schemas["AccuracyFigures"]["properties"]
    assert set(figures) == {"calls", "mean_abs_error_s", "median_ratio", "within_50pct"}
