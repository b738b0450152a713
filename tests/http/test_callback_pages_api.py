"""`GET /admin/callbacks` a page at a time: a bounded limit, an opaque cursor, next_cursor."""

from __future__ import annotations

import pytest

from tests.http.conftest import Api
from tierline.queue.paging import MAX_PAGE

CONFIG = "[queues.default]\nmax_waiting = 1\n"


async def open_callbacks(api: Api, n: int) -> None:
    """n mid callers arriving at a full queue: n open callbacks."""
    for caller in [f"+8613900000{i:03d}" for i in range(n)]:
        await api.call("PUT", f"/admin/tiers/{caller}", {"tier": "mid"})
    status, _ = await api.post("/v1/calls", {"call_id": "blocker", "caller": "+8613800000000"})
    assert status == 201
    for i in range(n):
        status, body = await api.post("/v1/calls", {"call_id": f"m{i}", "caller": f"+8613900000{i:03d}"})
        assert status == 201 and body["status"] == "overflowed", body


@pytest.mark.parametrize("limit", ["0", str(MAX_PAGE + 1), "10000"])
async def test_a_limit_beyond_the_page_bound_is_refused(make_api: object, limit: str) -> None:
    api: Api = await make_api(CONFIG)  # type: ignore[operator]
    await open_callbacks(api, 1)
    status, body = await api.get(f"/admin/callbacks?status=open&limit={limit}")
    assert status == 422 and body["error"]["code"] == "invalid_query", body
    assert str(MAX_PAGE) in body["error"]["message"]


async def test_pages_follow_next_cursor_to_the_end(make_api: object) -> None:
    api: Api = await make_api(CONFIG)  # type: ignore[operator]
    await open_callbacks(api, 7)
    status, everything = await api.get("/admin/callbacks?status=open")
    assert status == 200 and everything["next_cursor"] is None and len(everything["callbacks"]) == 7
    seen, cursor, pages = [], None, 0
    while True:
        query = "/admin/callbacks?status=open&limit=3" + (f"&cursor={cursor}" if cursor else "")
        status, page = await api.get(query)
        assert status == 200 and len(page["callbacks"]) <= 3
        seen += [c["callback_id"] for c in page["callbacks"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and seen == [c["callback_id"] for c in everything["callbacks"]]


@pytest.mark.parametrize("cursor", ["garbage!", "e30", "WyJkb25lIiwxLjAsImNiLTEiXQ"])
async def test_a_cursor_not_from_this_list_is_refused(api: Api, cursor: str) -> None:
    status, body = await api.get(f"/admin/callbacks?status=open&cursor={cursor}")
    assert status == 422 and body["error"]["code"] == "invalid_cursor", body
