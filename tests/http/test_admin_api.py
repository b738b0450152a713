"""The admin surface over real HTTP: reloads, single edits, service level, callbacks, docs, auth."""

from __future__ import annotations

from typing import Any

from tests.http.conftest import Api, ApiFactory
from tierline.router.app import ENDPOINTS


async def reload(api: Api, body: bytes, ctype: str = "text/csv", **kwargs: Any) -> tuple[int, Any]:
    return await api.call("POST", "/admin/tiers/reload", data=body, headers={"Content-Type": ctype}, **kwargs)


async def test_reload_csv_swaps_and_reports_rejections_by_line(api: Api) -> None:
    rows = [f"+86138{i:08d},{'VIP' if i % 2 else 'mid'},C{i},Name {i}" for i in range(300)]
    csv = (
        "caller,tier,customer_id,name\n" + "\n".join(rows[:150]) + "\n\n+123,gold,X,Y\n" + "\n".join(rows[150:]) + "\n"
    )
    status, result = await reload(api, csv.encode())
    assert status == 200, result
    # header line 1, 150 rows (lines 2-151), blank line 152, the bad row is line 153.
    assert result == {
        "version": 1,
        "loaded": 300,
        "rejected": [{"line": 153, "reason": result["rejected"][0]["reason"]}],
        "rejected_count": 1,
        "swapped": True,
    }
    assert "gold" in result["rejected"][0]["reason"]
    status, record = await api.get("/v1/callers/+8613800000001")
    assert record == {
        "caller": "+8613800000001",
        "tier": "vip",
        "known": True,
        "crm": {"customer_id": "C1", "name": "Name 1"},
    }
    status, health = await api.get("/readyz")
    assert health["tiers_version"] == 1 and health["tiers_loaded"] == 300


async def test_reload_over_reject_ratio_changes_nothing(api: Api) -> None:
    status, first = await reload(api, b'{"caller": "+4911111", "tier": "vip"}\n', "application/x-ndjson")
    assert status == 200 and first["swapped"] and first["version"] == 1
    bad = b'{"caller": "+4922222", "tier": "mid"}\n{"caller": "nope", "tier": "vip"}\n'
    status, second = await reload(api, bad, "application/x-ndjson")
    assert status == 200 and second["swapped"] is False and second["version"] == 1
    assert second["rejected"] == [{"line": 2, "reason": second["rejected"][0]["reason"]}]
    _, still = await api.get("/v1/callers/+4911111")
    assert still["tier"] == "vip" and still["known"] is True
    _, never = await api.get("/v1/callers/+4922222")
    assert never["known"] is False


async def test_reload_without_required_columns_is_refused(api: Api) -> None:
    status, body = await reload(api, b"number,level\n+123456,vip\n")
    assert status == 422 and body["error"]["code"] == "invalid_tier_file"


async def test_single_edits_and_calls_keep_their_arrival_tier(api: Api) -> None:
    status, record = await api.call("PUT", "/admin/tiers/+33 1 23 45 67", {"tier": "VIP", "crm": {"name": "Zoé"}})
    assert status == 200 and record == {"caller": "+331234567", "tier": "vip", "known": True, "crm": {"name": "Zoé"}}
    status, call = await api.post("/v1/calls", {"call_id": "k1", "caller": "+331234567"})
    assert call["tier"] == "vip"
    status, _ = await api.call("DELETE", "/admin/tiers/+331234567")
    assert status == 204
    _, record = await api.get("/v1/callers/+331234567")
    assert record["tier"] == "standard" and record["known"] is False
    _, call = await api.get("/v1/calls/k1")
    assert call["tier"] == "vip"


async def test_a_crm_field_named_with_a_leading_nul_is_refused_and_changes_nothing(api: Api) -> None:
    """The tier codec marks its shared values with a leading NUL: such a name is bad input (422),
    not a failure of the store (it was a 500)."""
    status, body = await api.call("PUT", "/admin/tiers/+861234567", {"tier": "vip", "crm": {"\x00x": "1"}})
    assert status == 422 and body["error"]["code"] == "invalid_field"
    _, record = await api.get("/v1/callers/+861234567")
    assert record["known"] is False


async def test_sla_report_per_queue_and_tier(make_api: ApiFactory) -> None:
    api = await make_api('timezone = "Asia/Shanghai"\n[queues.billing]\nmax_waiting = 1\n')
    await api.call("PUT", "/admin/tiers/+861111111", {"tier": "mid"})
    await api.post("/v1/calls", {"call_id": "s1", "caller": "+862222222", "queue": "billing"})
    status, full = await api.post("/v1/calls", {"call_id": "m1", "caller": "+861111111", "queue": "billing"})
    assert status == 201 and full["status"] == "overflowed" and full["overflow_reason"] == "queue_full"
    assert full["callback"]["reason"] == "queue_full"
    api.clock.advance(25)
    await api.post("/v1/agents/a/next", {"queues": ["billing"]})
    await api.post("/v1/calls/s1/answer", {"agent_id": "a"})
    status, sla = await api.get("/admin/sla?queue=billing&window=today")
    assert status == 200 and sla["timezone"] == "Asia/Shanghai" and sla["formula"] == "default"
    rows = {r["tier"]: r for r in sla["rows"]}
    assert set(rows) == {"vip", "mid", "standard", "blacklisted"} and all(r["queue"] == "billing" for r in sla["rows"])
    assert (
        rows["standard"]["answered"] == 1
        and rows["standard"]["service_level"] == 0.0
        and rows["standard"]["met"] is False
    )
    assert rows["standard"]["asa_s"] == 25.0
    assert rows["mid"]["overflowed"] == 1 and rows["mid"]["service_level"] == 0.0
    assert rows["blacklisted"]["target"] is None and rows["blacklisted"]["met"] is None
    assert rows["standard"]["intervals"][-1]["answered"] == 1
    assert sla["callbacks"]["open"] == 1


async def test_openapi_describes_every_route(api: Api) -> None:
    status, doc = await api.get("/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    for endpoint in ENDPOINTS:
        operation = doc["paths"][endpoint.path][endpoint.method.lower()]
        assert operation["responses"], endpoint.path
    assert "CallView" in doc["components"]["schemas"] and "RouteCallBody" in doc["components"]["schemas"]
    assert len(ENDPOINTS) >= 17


async def test_tokens_and_roles(make_api: ApiFactory) -> None:
    api = await make_api(env={"TIERLINE_API_TOKEN": "ivr-secret", "TIERLINE_ADMIN_TOKEN": "boss-secret"})
    ivr = {"Authorization": "Bearer ivr-secret"}
    boss = {"Authorization": "Bearer boss-secret"}
    body = {"call_id": "t1", "caller": "+123456"}
    assert (await api.post("/v1/calls", body))[0] == 401
    assert (await api.post("/v1/calls", body, headers={"Authorization": "Bearer wrong"}))[0] == 401
    assert (await api.post("/v1/calls", body, headers=boss))[0] == 403
    assert (await api.post("/v1/calls", body, headers=ivr))[0] == 201
    assert (await api.get("/admin/sla"))[0] == 401
    assert (await api.get("/admin/sla", headers=ivr))[0] == 403
    assert (await api.get("/admin/sla", headers=boss))[0] == 200
    assert (await api.get("/healthz"))[0] == 200
