"""Business hours over real HTTP (issue 16 item 1): a closed queue answers `overflowed` with
reason `closed`, a mid caller's callback is `at_risk` and waits for the opening; /metrics,
/admin/sla and the OpenAPI document say so."""

from __future__ import annotations

from .conftest import ApiFactory

# The test clock starts on Friday 2027-01-15 08:00 UTC; this queue is open weekdays 08:00–18:00.
HOURS = '[queues.default.hours]\nmon = ["08:00-18:00"]\ntue = ["08:00-18:00"]\nwed = ["08:00-18:00"]\n'
HOURS += 'thu = ["08:00-18:00"]\nfri = ["08:00-18:00"]\n'


async def test_a_closed_queue_over_http(make_api: ApiFactory) -> None:
    api = await make_api(HOURS)
    await api.call("PUT", "/admin/tiers/+8613900001", {"tier": "mid"})
    api.clock.advance(11 * 3600)  # Friday 19:00
    status, call = await api.post("/v1/calls", {"call_id": "m1", "caller": "+8613900001"})
    assert status == 201 and (call["status"], call["overflow_reason"]) == ("overflowed", "closed")
    callback = call["callback"]
    assert (callback["reason"], callback["at_risk"]) == ("closed", True)
    assert callback["next_attempt_at"] == "2027-01-18T08:00:00Z"
    assert (await api.post("/v1/agents/a1/next"))[0] == 204  # closed: not handed out
    status, sla = await api.get("/admin/sla")
    assert status == 200 and sla["callbacks"]["at_risk"] == 1
    status, text = await api.get("/metrics")
    assert "tierline_callbacks_at_risk 1.0" in text


async def test_openapi_declares_closed_and_at_risk(make_api: ApiFactory) -> None:
    api = await make_api()
    status, doc = await api.get("/openapi.json")
    assert status == 200
    schemas = doc["components"]["schemas"]
    assert "closed" in schemas["CallView"]["properties"]["overflow_reason"]["enum"]
    assert "closed" in schemas["CallbackView"]["properties"]["reason"]["enum"]
    assert "at_risk" in schemas["CallbackView"]["required"]
    assert "at_risk" in schemas["CallbackSummary"]["properties"]
