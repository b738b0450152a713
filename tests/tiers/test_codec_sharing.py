"""Repeated values are stored once (issue 17: a graded record's explanation), and every record
still decodes to exactly its row, in the memory store and in Redis (single and cluster)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.conftest import new_namespace
from tests.http.conftest import Api, ApiFactory, make_api, route_and_take  # noqa: F401  (the fixture)
from tierline.queue.redis_link import RedisLink, connect
from tierline.tiers import codec
from tierline.tiers.memory import MemoryTierStore
from tierline.tiers.parse import BadTierFile, parse_tier_file
from tierline.tiers.redis_store import RedisTierStore

HEADER = "caller,tier,customer_id,grading.segment,grading.rfm,grading.as_of,note\n"
SEGMENTS = ("important value", "general keep", "no purchases")


def graded_rows(count: int) -> list[tuple[str, str, dict[str, str]]]:
    rows = []
    for at in range(count):
        crm = {
            "customer_id": f"C{at}",
            "grading.segment": SEGMENTS[at % 3],
            "grading.rfm": f"R{at % 5 + 1} F3 M3",
            "grading.as_of": "2026-11-30",
        }
        if at % 7 == 0:
            crm["note"] = f"note {at}"  # sparse and never repeating: stays in the row
        rows.append((f"+86138{at:08d}", ("vip", "mid", "standard")[at % 3], crm))
    return rows


def as_csv(rows: list[tuple[str, str, dict[str, str]]]) -> str:
    columns = HEADER.strip().split(",")[2:]
    return HEADER + "".join(
        ",".join([caller, tier, *(crm.get(column, "") for column in columns)]) + "\n" for caller, tier, crm in rows
    )


def test_repeated_values_are_stored_once_and_every_row_decodes_to_itself() -> None:
    rows = graded_rows(2000)
    parsed = parse_tier_file(io.BytesIO(as_csv(rows).encode()), "csv")
    sets = [entry for entry in parsed.fields.names if entry.startswith(codec.SHARED_MARK)]
    # segment x rfm x as_of: 15 combinations at most; customer_id and note are never shared.
    assert 0 < len(sets) <= 15
    assert all('"C' not in entry and "note" not in entry for entry in sets)
    rebuilt = codec.FieldNames(parsed.fields.names)  # what a Redis reader builds from the list
    for caller, tier, crm in rows:
        blob = parsed.records[caller]
        for names in (parsed.fields, rebuilt):
            record = codec.decode(caller, blob, names)
            assert (record.tier, record.crm) == (tier, crm)
    early, late = parsed.records[rows[1][0]], parsed.records[rows[-2][0]]
    assert len(late) < len(early) // 2  # after the sample, the explanation is one id


def test_a_column_named_with_the_mark_is_refused() -> None:
    with pytest.raises(BadTierFile, match="NUL"):
        parse_tier_file(io.BytesIO(b"caller,tier,\x00x\n+8613800000001,vip,1\n"), "csv")
    with pytest.raises(ValueError, match="may not start"):
        codec.FieldNames().id_of("\x00[0]")


async def test_both_stores_answer_the_same_records(tmp_path: Path, server: str, links: list[RedisLink]) -> None:
    rows = graded_rows(1500)
    path = tmp_path / "graded.csv"
    path.write_text(as_csv(rows))
    memory = MemoryTierStore()
    link = RedisLink(connect(server, 1.0), timeout_s=1.0)
    links.append(link)
    redis = RedisTierStore(link, new_namespace())
    for store in (memory, redis):
        assert (await store.reload_file(path, "csv")).swapped
    for caller, tier, crm in rows[::37] + rows[-3:]:
        for store in (memory, redis):
            record = await store.lookup(caller)
            assert (record.tier, record.crm) == (tier, crm)
    expected = {caller: tier for caller, tier, _ in rows}
    for store in (memory, redis):
        assert await store.tier_table() == expected
    # A single edit afterwards is stored whole and reads back as given, on both.
    for store in (memory, redis):
        await store.put(rows[-1][0], "mid", {"customer_id": "C-new", "grading.segment": "important value"})
        record = await store.lookup(rows[-1][0])
        assert record.crm == {"customer_id": "C-new", "grading.segment": "important value"}


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_a_routed_call_carries_the_shared_fields(
    make_api: ApiFactory,  # noqa: F811
    redis_url: str,
    tmp_path: Path,
    store: str,
) -> None:
    """On a single Redis the look-up and the enqueue are one script (redis_engine.lua's
    `route_lookup`): it reads a shared set as codec does."""
    rows = graded_rows(700)
    path = tmp_path / "graded.csv"
    path.write_text(as_csv(rows))
    if store == "redis":
        ns = new_namespace()
        link = RedisLink(connect(redis_url, 3.0), timeout_s=3.0)
        try:
            assert (await RedisTierStore(link, ns).reload_file(path, "csv")).swapped
        finally:
            await link.close()
        api = await make_api(
            f'[server]\nredis_namespace = "{ns}"\nredis_timeout_s = 3.0\n', env={"TIERLINE_STORE": redis_url}
        )
    else:
        api = await make_api()
        status, result = await api.post(
            "/admin/tiers/reload", data=path.read_bytes(), headers={"Content-Type": "text/csv"}
        )
        assert status == 200 and result["swapped"], result
    caller, tier, crm = rows[-3]
    taken = await route_and_take(api, caller)
    assert (taken["tier"], taken["crm"]) == (tier, crm)
