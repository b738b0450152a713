"""The callback offer that keeps the place (issue 16 item 3) over real HTTP: the offer on the
route and status answers, POST /v1/calls/{call_id}/callback and its refusals, the held place in
/admin/sla and /metrics, and the OpenAPI document."""

from __future__ import annotations

from tests.http.conftest import ApiFactory
from tests.http.test_metrics import ADMIN, at, scrape

MID_OFFERED_AT_ONCE = """
[tiers.mid]
overflow_after_s = 0.0
offer_callback_after_s = 1.0
"""


async def test_the_offer_taken_keeps_the_place(make_api: ApiFactory) -> None:
    api = await make_api(MID_OFFERED_AT_ONCE, env={"TIERLINE_ADMIN_TOKEN": "boss-secret"})
    for caller in ("+861000001", "+861000002"):
        status, _ = await api.call("PUT", f"/admin/tiers/{caller}", {"tier": "mid"}, headers=ADMIN)
        assert status == 200
    # One call handled for 300 s by the only agent, who is busy again: the mid callers wait minutes.
    await api.post("/v1/calls", {"call_id": "w0", "caller": "+869000000"})
    await api.post("/v1/calls/w0/answer", {"agent_id": "a1"})
    api.clock.advance(300)
    await api.post("/v1/calls/w0/end")
    await api.post("/v1/calls", {"call_id": "w1", "caller": "+869000001"})
    await api.post("/v1/calls/w1/answer", {"agent_id": "a1"})

    status, first = await api.post("/v1/calls", {"call_id": "m1", "caller": "+861000001"})
    assert status == 201 and first["estimated_wait_s"] > 1 and first["offer_callback"] is True
    status, second = await api.post("/v1/calls", {"call_id": "m2", "caller": "+861000002"})
    assert status == 201 and second["position"] == 2 and second["offer_callback"] is True
    status, standard = await api.post("/v1/calls", {"call_id": "s1", "caller": "+869000002"})
    assert status == 201 and standard["offer_callback"] is False  # standard is not offered by default

    api.clock.advance(40)
    status, taken = await api.post("/v1/calls/m1/callback")
    assert status == 200, taken
    assert taken["status"] == "callback_requested" and taken["position"] is None
    assert taken["offer_callback"] is False
    callback = taken["callback"]
    assert (callback["reason"], callback["status"], callback["held"]) == ("requested", "open", True)
    status, again = await api.post("/v1/calls/m1/callback")
    assert status == 200 and again == taken  # idempotent: the IVR may retry

    status, behind = await api.get("/v1/calls/m2")
    assert status == 200 and behind["position"] == 2  # the held place still counts
    status, sla = await api.get("/admin/sla?window=60m", headers=ADMIN)
    assert status == 200
    mid = next(r for r in sla["rows"] if r["tier"] == "mid")
    assert (mid["waiting_now"], mid["held"], mid["callback_requested"], mid["abandoned"]) == (1, 1, 1, 0)
    samples, _ = await scrape(api)
    assert at(samples, "tierline_calls_held", queue="default", tier="mid") == 1
    assert at(samples, "tierline_calls_waiting", queue="default", tier="mid") == 1
    assert at(samples, "tierline_calls_callback_requested_total", queue="default", tier="mid") == 1

    # The place is first for the next free agent: the callback is the work.
    status, work = await api.post("/v1/agents/a2/next")
    assert status == 200 and work["kind"] == "callback"
    assert work["callback"]["callback_id"] == callback["callback_id"] and work["callback"]["held"] is False
    status, work = await api.post("/v1/agents/a3/next")
    assert status == 200 and work["kind"] == "call" and work["call"]["call_id"] == "m2"


async def test_refusals_change_nothing(make_api: ApiFactory) -> None:
    api = await make_api(MID_OFFERED_AT_ONCE)
    status, body = await api.post("/v1/calls/nobody/callback")
    assert status == 404 and body["error"]["code"] == "call_not_found"
    await api.post("/v1/calls", {"call_id": "c1", "caller": "+861000001"})
    await api.post("/v1/calls/c1/answer", {"agent_id": "a1"})
    status, body = await api.post("/v1/calls/c1/callback")
    assert status == 409 and body["error"]["code"] == "not_waiting"
    status, call = await api.get("/v1/calls/c1")
    assert call["status"] == "answered"
    status, body = await api.post("/v1/calls/c1/callback", {"note": "x"})
    assert status == 422  # the body takes no fields


async def test_openapi_declares_the_offer_and_the_hold(make_api: ApiFactory) -> None:
    api = await make_api()
    status, doc = await api.get("/openapi.json")
    assert status == 200
    operation = doc["paths"]["/v1/calls/{call_id}/callback"]["post"]
    assert set(operation["responses"]) >= {"200", "404", "409"}
    schemas = doc["components"]["schemas"]
    assert "offer_callback" in schemas["CallView"]["properties"]
    assert "callback_requested" in schemas["CallView"]["properties"]["status"]["enum"]
    assert "held" in schemas["SlaRowView"]["required"] and "held" in schemas["CallbackView"]["properties"]
