"""Issue 17 item 2's single edits and item 4's live table through the service: a supervisor's
`PUT /admin/tiers/{caller}` survives a regrade (after the blacklist flag, before the rules; the
report says how many and lists them) until a run says `--reset-edits`; `tierline grade --url`
compares with the live table read through `GET /admin/grading/table`. On the memory store (via
the service on a real port) and on a real Redis (straight with --store, and via the service)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

pytest.importorskip("duckdb")  # the extra tierline[grading]; the dev lock installs it

from tests.conftest import new_namespace
from tests.grading.test_grade_cli import CONFIG, grade, population
from tests.http.conftest import Api, ApiFactory, make_api  # noqa: F401  (the fixture)
from tests.support.redis_servers import free_port
from tierline.queue.errors import Unavailable
from tierline.queue.redis_link import RedisLink, connect
from tierline.tiers.model import Tier, TierRecord
from tierline.tiers.redis_store import RedisTierStore

AS_OF = "2026-11-30"
C0, C5, C11 = "+8613800000000", "+8613800000005", "+8613800000011"
OUTSIDER = "+8613900000001"  # a number no customer of the CRM has


def customers_with_flags(tmp_path: Path) -> tuple[Path, Path]:
    """The 12 customers of test_grade_cli, C11 flagged blacklisted and C5 pinned to mid."""
    _, tx = population(tmp_path)
    customers = tmp_path / "flagged.csv"
    rows = []
    for i in range(12):
        flag = "x" if i == 11 else ""
        pin = "mid" if i == 5 else ""
        rows.append(f"C{i},+86138{i:08d},Customer {i},{flag},{pin}\n")
    customers.write_text("customer_id,caller,name,blacklist,pinned_tier\n" + "".join(rows))
    return customers, tx


async def look(api: Api, redis: str | None, ns: str, caller: str) -> TierRecord | dict[str, object]:
    """The caller's record now: from a fresh Redis store (a router keeps its view of the live
    version for up to a second), or through the service on the memory store."""
    if redis is None:
        status, found = await api.get(f"/v1/callers/{caller}")
        assert status == 200, found
        record: dict[str, object] = found
        return record
    link = RedisLink(connect(redis, 3.0), timeout_s=3.0)
    try:
        return await RedisTierStore(link, ns).lookup(caller)
    finally:
        await link.close()


def tier_and_rule(record: TierRecord | dict[str, object]) -> tuple[object, object]:
    if isinstance(record, TierRecord):
        return record.tier, dict(record.crm).get("grading.rule")
    crm = record.get("crm") or {}
    assert isinstance(crm, dict)
    return record["tier"], crm.get("grading.rule")


@pytest.mark.parametrize(("store", "through"), [("memory", "url"), ("redis", "store"), ("redis", "url")])
async def test_a_hand_edit_survives_a_regrade_until_reset(
    make_api: ApiFactory,  # noqa: F811
    redis_url: str,
    tmp_path: Path,
    store: str,
    through: str,
) -> None:
    config = tmp_path / "grading.toml"
    config.write_text(CONFIG)
    customers, tx = customers_with_flags(tmp_path)
    ns = new_namespace()
    redis = redis_url if store == "redis" else None
    toml = f'[server]\nredis_namespace = "{ns}"\nredis_timeout_s = 3.0\n'
    api = await make_api(toml, env={"TIERLINE_STORE": redis_url}) if redis else await make_api()
    target = ["--store", redis_url, "--namespace", ns] if through == "store" else ["--url", api.base]
    common = ["--config", str(config), "--customers", str(customers), "--transactions", str(tx), "--as-of", AS_OF]
    report = tmp_path / "report.json"

    code, out, err = await grade(*common, "--apply", "--force", *target)
    assert code == 0, out + err
    assert "tiers vip 6, mid 1, standard 4, blacklisted 1" in out  # C5 pinned, C11 flagged
    assert tier_and_rule(await look(api, redis, ns, C0)) == ("vip", "segment important value -> vip")

    # A supervisor's single edits: C0 down to standard, C5 (pinned) to vip, C11 (flagged) to
    # vip, and a number the CRM does not know to mid.
    for caller, tier in ((C0, "standard"), (C5, "vip"), (C11, "vip"), (OUTSIDER, "mid")):
        status, body = await api.call("PUT", f"/admin/tiers/{caller}", {"tier": tier, "crm": {"note": "by hand"}})
        assert status == 200, body
    status, listed = await api.get("/admin/grading/edits")
    assert status == 200 and listed["count"] == 4, listed
    assert {e["caller"]: e["tier"] for e in listed["edits"]} == {C0: "standard", C5: "vip", C11: "vip", OUTSIDER: "mid"}

    # The nightly regrade of the same export: the edits stand, except against the blacklist flag.
    code, out, err = await grade(*common, "--apply", "--report", str(report), *target)
    assert code == 0, out + err
    assert "hand edits kept: 3 (after the blacklist flag, before the rules), overruled by the blacklist flag: 1" in out
    assert "migration: 13 numbers in both, 1 change tier" in out  # the live table was the comparison
    kept = json.loads(report.read_text())
    assert kept["edits_kept"] == 3 and kept["edits_reset"] == 0
    assert kept["edits"] == [
        {"caller": C0, "edited": "standard", "graded": "vip", "kept": True},
        {"caller": C5, "edited": "vip", "graded": "mid", "kept": True},
        {"caller": C11, "edited": "vip", "graded": "blacklisted", "kept": False},
        {"caller": OUTSIDER, "edited": "mid", "graded": None, "kept": True},
    ]
    assert tier_and_rule(await look(api, redis, ns, C0)) == ("standard", "hand edit")
    assert tier_and_rule(await look(api, redis, ns, C5)) == ("vip", "hand edit")
    assert tier_and_rule(await look(api, redis, ns, C11)) == ("blacklisted", "blacklist flag")
    assert tier_and_rule(await look(api, redis, ns, OUTSIDER)) == ("mid", "hand edit")
    status, served = await api.get("/admin/grading")
    assert status == 200 and served["edits_kept"] == 3 and len(served["edits"]) == 4
    status, listed = await api.get("/admin/grading/edits")
    assert status == 200 and listed["count"] == 4  # kept for the next run too

    # --reset-edits: the rules' tiers apply again and the list is emptied.
    # C0 and C5 go back to the rules' tiers: 2 of 12 change, past the guard (--force).
    code, out, err = await grade(*common, "--apply", "--reset-edits", "--force", *target)
    assert code == 0, out + err
    assert "hand edits reset: 4" in out and "hand edit list emptied: 4" in out and "hand edits kept" not in out
    assert tier_and_rule(await look(api, redis, ns, C0)) == ("vip", "segment important value -> vip")
    assert tier_and_rule(await look(api, redis, ns, C5)) == ("mid", "pinned")
    record = await look(api, redis, ns, OUTSIDER)
    assert (record.known if isinstance(record, TierRecord) else record["known"]) is False
    status, listed = await api.get("/admin/grading/edits")
    assert status == 200 and listed == {"edits": [], "count": 0}

    # A delete takes a caller out of the list: the next run gives it the rules' tier.
    status, _ = await api.call("PUT", f"/admin/tiers/{C0}", {"tier": "mid"})
    assert status == 200
    status, _ = await api.call("DELETE", f"/admin/tiers/{C0}")
    assert status == 204
    status, listed = await api.get("/admin/grading/edits")
    assert status == 200 and listed["count"] == 0, listed


async def test_bad_input_to_the_edit_options(make_api: ApiFactory, tmp_path: Path) -> None:  # noqa: F811
    config = tmp_path / "grading.toml"
    config.write_text(CONFIG)
    customers, tx = customers_with_flags(tmp_path)
    common = ["--config", str(config), "--customers", str(customers), "--transactions", str(tx), "--as-of", AS_OF]
    code, _, err = await grade(*common, "--dry-run", "--reset-edits")
    assert code == 2 and "--reset-edits drops the hand edits when a run is applied: give --apply" in err
    code, _, err = await grade(*common, "--apply", "--store", "http://127.0.0.1:6379")
    assert code == 2 and "--store must be a redis://" in err
    code, _, err = await grade(*common, "--apply", "--force", "--url", f"http://127.0.0.1:{free_port()}")
    assert code == 3 and "cannot read the live tier table or its edits" in err
    guarded = await make_api(env={"TIERLINE_ADMIN_TOKEN": "s3cret-admin-token-0123456789"})
    code, _, err = await grade(*common, "--apply", "--force", "--url", guarded.base, "--admin-token", "wrong")
    assert code == 1 and "(401)" in err, err
    status, _ = await guarded.call("PUT", f"/admin/tiers/{C0}", {"tier": "vip"})
    assert status == 401  # nothing was applied, nothing edited
    status, _ = await guarded.get("/admin/grading/edits")
    assert status == 401


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_grade_through_the_service_compares_with_the_live_table(
    make_api: ApiFactory,  # noqa: F811
    redis_url: str,
    tmp_path: Path,
    store: str,
) -> None:
    config = tmp_path / "grading.toml"
    config.write_text(CONFIG)
    customers, tx = population(tmp_path)
    ns = new_namespace()
    toml = f'[server]\nredis_namespace = "{ns}"\nredis_timeout_s = 3.0\n'
    api = await make_api(toml, env={"TIERLINE_STORE": redis_url}) if store == "redis" else await make_api()
    common = ["--config", str(config), "--customers", str(customers), "--as-of", AS_OF, "--url", api.base]

    code, out, err = await grade(*common, "--transactions", str(tx), "--apply", "--force")
    assert code == 0, out + err
    status, _ = await api.call("PUT", "/admin/tiers/+8613800000003", {"tier": "blacklisted"})
    assert status == 200

    # The broken export (every amount 0), no --previous: the live table read through the
    # service is the comparison, and the guard refuses.
    _, broken = population(tmp_path, broken=True)
    code, out, err = await grade(*common, "--transactions", str(broken), "--apply")
    assert code == 1, out + err
    assert "migration: 12 numbers in both" in out and "guard: tier vip would go from 6 to 0 numbers" in out
    assert "nothing applied" in err
    # --dry-run through the service compares too.
    code, out, _ = await grade(*common, "--transactions", str(tx), "--dry-run")
    assert code == 0 and "migration: 12 numbers in both, 0 change tier" in out  # the edit is kept


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_the_live_table_streams_as_csv(
    make_api: ApiFactory,  # noqa: F811
    redis_url: str,
    tmp_path: Path,
    store: str,
) -> None:
    ns = new_namespace()
    toml = f'[server]\nredis_namespace = "{ns}"\nredis_timeout_s = 3.0\n'
    api = await make_api(toml, env={"TIERLINE_STORE": redis_url}) if store == "redis" else await make_api()
    async with api.session.get(api.base + "/admin/grading/table") as resp:
        assert resp.status == 200 and resp.content_type == "text/csv"
        assert await resp.read() == b"caller,tier\n"  # an empty table: the header alone
    rows = 40_000  # more than two batches of either store
    tiers = ("vip", "mid", "standard", "blacklisted")
    body = "caller,tier\n" + "".join(f"+4915{i:09d},{tiers[i % 4]}\n" for i in range(rows))
    status, reloaded = await api.post("/admin/tiers/reload", data=body, headers={"Content-Type": "text/csv"})
    assert status == 200 and reloaded["loaded"] == rows, reloaded
    async with api.session.get(api.base + "/admin/grading/table") as resp:
        assert resp.status == 200 and resp.headers.get("Transfer-Encoding") == "chunked"
        lines = (await resp.read()).decode().splitlines()
    assert lines[0] == "caller,tier" and len(lines) == rows + 1
    found = dict(line.split(",") for line in lines[1:])
    assert len(found) == rows and found["+4915000000007"] == "blacklisted" and found["+4915000039996"] == "vip"


async def test_a_live_table_cut_short_is_an_error_not_a_smaller_table(
    make_api: ApiFactory,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The service's store fails after the table's first batch: the stream breaks off (no last
    chunk), and `tierline grade --url` exits 3 rather than compare with part of the table."""
    api = await make_api()
    rows = "caller,tier\n" + "".join(f"+4915{i:09d},mid\n" for i in range(40_000))
    status, _ = await api.post("/admin/tiers/reload", data=rows, headers={"Content-Type": "text/csv"})
    assert status == 200
    store = api.services.tiers
    whole = store.table_rows

    async def failing() -> AsyncIterator[list[tuple[str, Tier]]]:
        async for batch in whole():
            yield batch
            raise Unavailable("the store went away")

    store.table_rows = failing  # type: ignore[method-assign]
    with pytest.raises(aiohttp.ClientPayloadError):
        async with api.session.get(api.base + "/admin/grading/table") as resp:
            assert resp.status == 200
            await resp.read()
    config = tmp_path / "grading.toml"
    config.write_text(CONFIG)
    customers, tx = population(tmp_path)
    common = ["--config", str(config), "--customers", str(customers), "--transactions", str(tx)]
    code, out, err = await grade(*common, "--as-of", AS_OF, "--apply", "--url", api.base)
    assert code == 3, out + err
    assert "cannot read the live tier table or its edits" in err and "migration" not in out
    assert await store.count() == 40_000  # nothing applied
