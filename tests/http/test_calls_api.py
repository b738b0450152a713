"""The IVR/agent API over real HTTP: the life of calls, agents' work, and every refusal."""

from __future__ import annotations

from typing import Any

from tests.http.conftest import Api


async def route(api: Api, call_id: str, caller: str, **extra: Any) -> dict[str, Any]:
    status, body = await api.post("/v1/calls", {"call_id": call_id, "caller": caller, **extra})
    assert status == 201, body
    return dict(body)


async def set_tier(api: Api, caller: str, tier: str, **crm: str) -> None:
    status, body = await api.call("PUT", f"/admin/tiers/{caller}", {"tier": tier, "crm": crm})
    assert status == 200, body


async def test_green_channel_order_and_positions(api: Api) -> None:
    await set_tier(api, "+8613800000001", "vip", name="Ms. Li")
    await set_tier(api, "+8613800000002", "mid")
    await set_tier(api, "+8613800000003", "blacklisted")
    await route(api, "std", "+8613800000009")
    api.clock.advance(600)  # the standard caller has waited ten minutes
    await route(api, "bl", "+8613800000003")
    await route(api, "mid", "+8613800000002")
    vip = await route(api, "vip", "+86 138-0000-0001")
    assert (vip["tier"], vip["position"], vip["ahead"]) == ("vip", 1, 0)

    positions = {}
    for call_id in ("vip", "mid", "std", "bl"):
        status, body = await api.get(f"/v1/calls/{call_id}")
        assert status == 200
        positions[call_id] = body["position"]
    assert positions == {"vip": 1, "mid": 2, "std": 3, "bl": 4}

    served = []
    for agent in ("a1", "a2", "a3", "a4"):
        status, work = await api.post(f"/v1/agents/{agent}/next")
        assert status == 200 and work["kind"] == "call"
        served.append(work["call"]["call_id"])
        assert work["call"]["status"] == "offered" and work["call"]["agent_id"] == agent
    assert served == ["vip", "mid", "std", "bl"]
    status, _ = await api.post("/v1/agents/a5/next")
    assert status == 204


async def test_call_life_cycle_answer_end_with_waits(api: Api) -> None:
    await set_tier(api, "+4930123456", "vip", customer_id="C-7")
    await route(api, "c1", "+49 (30) 123456")
    api.clock.advance(12)
    status, work = await api.post("/v1/agents/ag/next", {"queues": ["default"]})
    assert status == 200
    assert work["caller"] == {"caller": "+4930123456", "tier": "vip", "known": True, "crm": {"customer_id": "C-7"}}
    api.clock.advance(3)
    status, call = await api.post("/v1/calls/c1/answer", {"agent_id": "ag"})
    assert status == 200
    assert call["status"] == "answered" and call["wait_s"] == 15.0 and call["position"] is None
    # A retried answer by the same agent is a no-op.
    status, again = await api.post("/v1/calls/c1/answer", {"agent_id": "ag"})
    assert status == 200 and again["answered_at"] == call["answered_at"]
    # While on the call the agent gets no more work.
    status, body = await api.post("/v1/agents/ag/next")
    assert status == 409 and body["error"]["code"] == "agent_busy"
    api.clock.advance(95)
    status, ended = await api.post("/v1/calls/c1/end")
    assert status == 200 and ended["status"] == "ended" and ended["handle_s"] == 95.0
    assert ended["ended_at"].endswith("Z")


async def test_route_is_idempotent_per_call_id(api: Api) -> None:
    first = await route(api, "dup", "+15551234567")
    status, again = await api.post("/v1/calls", {"call_id": "dup", "caller": "+1 555 123 4567"})
    assert status == 200 and again["arrived_at"] == first["arrived_at"]
    status, body = await api.post("/v1/calls", {"call_id": "dup", "caller": "+15550000000"})
    assert status == 409 and body["error"]["code"] == "call_id_conflict"
    status, sla = await api.get("/admin/sla?window=15m")
    standard = next(r for r in sla["rows"] if r["tier"] == "standard")
    assert standard["arrived"] == 1 and standard["waiting_now"] == 1


async def test_requeue_keeps_place_and_abandon(api: Api) -> None:
    await route(api, "a", "+100200300")
    api.clock.advance(1)
    await route(api, "b", "+100200301")
    status, work = await api.post("/v1/agents/x/next")
    assert work["call"]["call_id"] == "a"
    status, body = await api.post("/v1/calls/a/requeue", {"agent_id": "someone-else"})
    assert status == 409 and body["error"]["code"] == "invalid_state"
    status, back = await api.post("/v1/calls/a/requeue", {"agent_id": "x"})
    assert status == 200 and back["status"] == "waiting" and back["position"] == 1
    status, gone = await api.post("/v1/calls/b/abandon")
    assert status == 200 and gone["status"] == "abandoned" and gone["position"] is None


async def test_mid_overflow_creates_callback_worked_by_agent(api: Api) -> None:
    await set_tier(api, "+861390000", "mid", name="Mr. Wang")
    await route(api, "m1", "+861390000")
    api.clock.advance(60)  # exactly the mid limit
    status, call = await api.get("/v1/calls/m1")
    assert call["status"] == "overflowed" and call["overflow_reason"] == "max_wait"
    callback = call["callback"]
    assert callback["reason"] == "max_wait" and callback["record"]["crm"] == {"name": "Mr. Wang"}
    assert callback["status"] == "open"
    status, work = await api.post("/v1/agents/bo1/next")
    assert status == 200 and work["kind"] == "callback"
    assert work["callback"]["callback_id"] == callback["callback_id"] and work["callback"]["status"] == "assigned"
    status, done = await api.post(
        f"/v1/callbacks/{callback['callback_id']}/outcome", {"outcome": "completed", "agent_id": "bo1", "note": "ok"}
    )
    assert status == 200 and done["status"] == "completed" and done["note"] == "ok"
    status, listing = await api.get("/admin/callbacks?status=done")
    assert [c["callback_id"] for c in listing["callbacks"]] == [callback["callback_id"]]


async def test_callers_lookup(api: Api) -> None:
    status, body = await api.get("/v1/callers/0086-138-1111-2222")
    assert status == 200 and body == {"caller": "+8613811112222", "tier": "standard", "known": False, "crm": {}}
    status, body = await api.get("/v1/callers/12")
    assert status == 422 and body["error"]["code"] == "invalid_caller"


async def state_of(api: Api) -> Any:
    """Everything observable about the engine, to show a refusal changed nothing."""
    _, sla = await api.get("/admin/sla?window=60m")
    _, callbacks = await api.get("/admin/callbacks?status=open")
    _, a = await api.get("/v1/calls/a")
    sla.pop("generated_at")
    return sla, callbacks, a


BAD_REQUESTS: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("POST", "/v1/calls", {"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "invalid_json"),
    ("POST", "/v1/calls", {"json": [1, 2]}, 400, "not_an_object"),
    ("POST", "/v1/calls", {"json": [{"call_id": "z", "caller": "+123456"}]}, 400, "not_an_object"),
    ("POST", "/v1/calls", {"json": "a string"}, 400, "not_an_object"),
    ("POST", "/v1/calls", {"json": 7}, 400, "not_an_object"),
    ("POST", "/v1/calls", {"data": b"null", "headers": {"Content-Type": "application/json"}}, 400, "not_an_object"),
    ("POST", "/v1/calls", {"data": b"[1, 2", "headers": {"Content-Type": "application/json"}}, 400, "invalid_json"),
    (
        "POST",
        "/v1/calls",
        {"data": b'{"call_id": "z", "caller": "\xff\xfe"}', "headers": {"Content-Type": "application/json"}},
        400,
        "invalid_json",
    ),
    (
        "POST",
        "/v1/calls",
        {"data": b'{"call_id": "z", "caller": 5 "x"', "headers": {"Content-Type": "application/json"}},
        400,
        "invalid_json",
    ),
    (
        "POST",
        "/v1/calls",
        {"data": b"call_id=x", "headers": {"Content-Type": "text/plain"}},
        415,
        "unsupported_media_type",
    ),
    ("POST", "/v1/calls", {"json": {"caller": "+123456"}}, 422, "invalid_field"),
    ("POST", "/v1/calls", {"json": {"call_id": "z", "caller": "+123456", "tier": "vip"}}, 422, "invalid_field"),
    ("POST", "/v1/calls", {"json": {"call_id": 7, "caller": "+123456"}}, 422, "invalid_field"),
    ("POST", "/v1/calls", {"json": {"call_id": "bad id!", "caller": "+123456"}}, 422, "invalid_field"),
    ("POST", "/v1/calls", {"json": {"call_id": "z", "caller": "+123456", "queue": "nope"}}, 422, "unknown_queue"),
    ("POST", "/v1/calls", {"json": {"call_id": "z", "caller": "call me"}}, 422, "invalid_caller"),
    ("POST", "/v1/calls", {"json": {"call_id": "z", "caller": "+1234567890123456"}}, 422, "invalid_caller"),
    (
        "POST",
        "/v1/calls",
        {"data": b'{"call_id": "' + b"x" * 70000 + b'"}', "headers": {"Content-Type": "application/json"}},
        413,
        "payload_too_large",
    ),
    ("GET", "/v1/calls/unknown", {}, 404, "call_not_found"),
    ("POST", "/v1/calls/unknown/answer", {"json": {"agent_id": "q"}}, 404, "call_not_found"),
    ("POST", "/v1/calls/a/end", {"json": {}}, 409, "invalid_state"),
    ("POST", "/v1/calls/a/answer", {"json": {}}, 422, "invalid_field"),
    ("POST", "/v1/agents/q/next", {"json": {"queues": ["nope"]}}, 422, "unknown_queue"),
    ("POST", "/v1/agents/bad%20agent/next", {"json": {}}, 422, "invalid_field"),
    ("POST", "/v1/callbacks/none/outcome", {"json": {"outcome": "completed"}}, 404, "callback_not_found"),
    ("POST", "/v1/callbacks/none/outcome", {"json": {"outcome": "maybe"}}, 422, "invalid_field"),
    ("DELETE", "/v1/calls", {}, 405, "method_not_allowed"),
    ("GET", "/v2/whatever", {}, 404, "not_found"),
    ("GET", "/admin/sla?window=week", {}, 422, "invalid_query"),
    ("GET", "/admin/sla?queue=nope", {}, 422, "unknown_queue"),
    ("GET", "/admin/callbacks?status=all", {}, 422, "invalid_query"),
    ("PUT", "/admin/tiers/+123456", {"json": {"tier": "gold"}}, 422, "invalid_tier"),
    (
        "POST",
        "/admin/tiers/reload",
        {"data": b"caller,tier\n", "headers": {"Content-Type": "application/json"}},
        415,
        "unsupported_media_type",
    ),
]


async def test_bad_input_gets_clear_error_and_changes_nothing(api: Api) -> None:
    await route(api, "a", "+100200300")
    before = await state_of(api)
    for method, path, kwargs, status, code in BAD_REQUESTS:
        async with api.session.request(method, api.base + path, **kwargs) as resp:
            body = await resp.json()
            assert resp.status == status, (method, path, body)
        assert body["error"]["code"] == code, (method, path, body)
        assert body["error"]["message"], (method, path)
        assert await state_of(api) == before, (method, path)


async def test_answering_an_abandoned_call_is_refused(api: Api) -> None:
    await route(api, "gone", "+100200300")
    await api.post("/v1/calls/gone/abandon")
    before = await api.get("/v1/calls/gone")
    status, body = await api.post("/v1/calls/gone/answer", {"agent_id": "late"})
    assert status == 409 and body["error"]["code"] == "invalid_state" and "abandoned" in body["error"]["message"]
    assert await api.get("/v1/calls/gone") == before
    status, _ = await api.post("/v1/agents/late/next")
    assert status == 204  # the refused answer gave the agent nothing to hold


async def test_empty_body_counts_as_empty_object(api: Api) -> None:
    await route(api, "e", "+100200300")
    async with api.session.post(api.base + "/v1/calls/e/abandon") as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "abandoned"
