"""The back office's API (issue 20) over HTTP: `next` with only: callbacks, the callback's
overflowed call and attempt log in the answer, the rescheduled outcome's call_at, on a real
server with the backoffice token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.http.conftest import Api, ApiFactory

TOKENS = {
    "TIERLINE_API_TOKEN": "ivr-secret-5",
    "TIERLINE_ADMIN_TOKEN": "boss-secret-5",
    "TIERLINE_BACKOFFICE_TOKEN": "back-secret-5",
}
IVR = {"Authorization": "Bearer ivr-secret-5"}
ADMIN = {"Authorization": "Bearer boss-secret-5"}
BACK = {"Authorization": "Bearer back-secret-5"}
# Weekdays 08:00-20:00 UTC; the ManualClock starts on Friday 2027-01-15 08:00 UTC.
HOURS = "[queues.default.hours]\n" + "".join(f'{d} = ["08:00-20:00"]\n' for d in ("mon", "tue", "wed", "thu", "fri"))


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
async def api(make_api: ApiFactory) -> Api:
    made: Api = await make_api(HOURS, env=TOKENS)
    return made


async def overflowed_mid(api: Api, call_id: str, caller: str) -> None:
    status, _ = await api.call(
        "PUT", f"/admin/tiers/{caller}", {"tier": "mid", "crm": {"name": "Wang Fang"}}, headers=ADMIN
    )
    assert status in (200, 201)
    status, _ = await api.post("/v1/calls", {"call_id": call_id, "caller": caller}, headers=IVR)
    assert status == 201
    api.clock.advance(60)


async def take(api: Api, agent: str) -> Any:
    status, work = await api.post(f"/v1/agents/{agent}/next", {"only": "callbacks"}, headers=BACK)
    assert status == 200 and work["kind"] == "callback", work
    return work["callback"]


async def test_a_callback_shows_its_call_and_attempts_and_takes_a_reschedule(api: Api) -> None:
    start = api.clock.now()  # Friday 08:00
    await overflowed_mid(api, "c1", "+8613900000001")
    held = await take(api, "b1")
    assert held["overflowed_call"] == {
        "call_id": "c1",
        "queue": "default",
        "reason": "max_wait",
        "overflowed_at": iso(start + 60),
        "arrived_at": iso(start),
        "waited_s": 60.0,
    }
    assert held["record"]["crm"] == {"name": "Wang Fang"} and held["attempt_log"] == []
    assert held["assigned_at"] == iso(start + 60)
    status, caller = await api.get("/v1/callers/+8613900000001", headers=BACK)
    assert status == 200 and caller["tier"] == "mid"
    cid = held["callback_id"]
    url = f"/v1/callbacks/{cid}/outcome"
    # call_at: refused with a code per check, and only with rescheduled; nothing changes.
    for call_at, code in (
        (None, "call_at_missing"),
        (iso(start - 3600), "call_at_past"),
        (iso(start + 3 * 86400), "call_at_after_deadline"),
        (iso(start + 13 * 3600), "call_at_closed"),
    ):
        body: dict[str, Any] = {"outcome": "rescheduled", "agent_id": "b1", "note": "typed"}
        if call_at is not None:
            body["call_at"] = call_at
        status, answer = await api.post(url, body, headers=BACK)
        assert (status, answer["error"]["code"]) == (422, code), call_at
    status, answer = await api.post(
        url, {"outcome": "no_answer", "agent_id": "b1", "call_at": iso(start + 7200)}, headers=BACK
    )
    assert (status, answer["error"]["code"]) == (422, "invalid_field")
    status, answer = await api.post(
        url, {"outcome": "rescheduled", "agent_id": "b1", "call_at": "2027-01-15T14:00:00"}, headers=BACK
    )
    assert status == 422  # no time zone: not an instant
    status, moved = await api.post(
        url,
        {"outcome": "rescheduled", "agent_id": "b1", "note": "after lunch", "call_at": "2027-01-15T22:00:00+08:00"},
        headers=BACK,
    )
    assert status == 200, moved
    assert (moved["status"], moved["attempts"], moved["next_attempt_at"]) == ("open", 0, iso(start + 6 * 3600))
    assert moved["attempt_log"] == [
        {
            "at": iso(start + 60),
            "agent_id": "b1",
            "outcome": "rescheduled",
            "taken_at": iso(start + 60),
            "note": "after lunch",
            "next_attempt_at": iso(start + 6 * 3600),
        }
    ]
    # Someone else's outcome on it is 409, whatever it is.
    status, answer = await api.post(url, {"outcome": "completed", "agent_id": "b2", "note": "x"}, headers=BACK)
    assert (status, answer["error"]["code"]) == (409, "not_assigned")


async def test_the_openapi_document_declares_the_filter_and_the_role(api: Api) -> None:
    _, doc = await api.get("/openapi.json")
    schemas = doc["components"]["schemas"]
    assert "only" in schemas["NextBody"]["properties"] and "call_at" in schemas["OutcomeBody"]["properties"]
    assert {"overflowed_call", "attempt_log"} <= set(schemas["CallbackView"]["properties"])
    assert doc["paths"]["/v1/agents/{agent_id}/next"]["post"]["tags"] == ["backoffice"]


async def test_the_workload_view_over_http(api: Api) -> None:
    start = api.clock.now()
    await overflowed_mid(api, "c1", "+8613900000001")
    await overflowed_mid(api, "c2", "+8613900000002")
    await take(api, "b7")
    api.clock.advance(1)
    status, _ = await api.get("/admin/workload", headers=BACK)
    assert status == 403  # the team lead's view is the supervisors'
    status, view = await api.get("/admin/workload", headers=ADMIN)
    assert status == 200
    assert view["hours"][0] == iso(start + 121) and view["hours"][-1] == iso(start + 121 + 86400)
    assert len(view["hours"]) == 26  # now (08:02:01), 09:00 … 08:00 the next day, then 08:02:01
    (queue,) = view["queues"]
    assert (queue["queue"], queue["active"], queue["overdue"], queue["later"]) == ("default", 2, 0, 0)
    # Deadlines 24 h after the overflows (08:01, 08:02 the next day): in the last span.
    assert sum(queue["by_hour"]) == 2 and queue["by_hour"][-1] == 2
    (held,) = view["holders"]
    assert (held["agent_id"], held["caller"], held["tier"]) == ("b7", "+8613900000001", "mid")
    assert held["assigned_at"] == iso(start + 120)
