"""`tierline grade` end to end: grade -> apply through the reload path -> route a call -> the
agent's `next` shows the tier and why, on the memory store (via --url) and on Redis (--store);
the guard refuses a broken export, then `--force` applies it; the exit codes."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("duckdb")  # the extra tierline[grading]; the dev lock installs it

from tests.conftest import new_namespace
from tests.http.conftest import Api, ApiFactory, make_api, route_and_take  # noqa: F401  (the fixture)
from tierline.queue.redis_link import RedisLink, connect
from tierline.router.cli import main
from tierline.tiers.redis_store import RedisTierStore

CONFIG = """
[grading]
timezone = "Asia/Shanghai"
crm_columns = ["name"]

[grading.rfm]

[grading.value_share]
by = "amount"

[[grading.rules]]
segment = ["important value"]
tier = "vip"

[[grading.rules]]
class = ["A"]
tier = "mid"

[grading.guard]
min_tier_size = 2
"""


def population(tmp_path: Path, broken: bool = False) -> tuple[Path, Path]:
    """12 customers; C0-C3 buy often, recently and much. `broken`: an export whose amounts are all 0."""
    customers = tmp_path / "customers.csv"
    customers.write_text("customer_id,caller,name\n" + "".join(f"C{i},+86138{i:08d},Customer {i}\n" for i in range(12)))
    rows = []
    for i in range(12):
        for n in range(1 + (12 - i) // 3):
            amount = 0 if broken else (12 - i) * 100
            rows.append(f"C{i},2026-11-{28 - i - n:02d},{amount}\n")
    tx = tmp_path / ("tx-broken.csv" if broken else "tx.csv")
    tx.write_text("customer_id,at,amount\n" + "".join(rows))
    return customers, tx


async def grade(*args: str) -> tuple[int, str, str]:
    """The command in this process (a thread of its own, as it runs its own event loop): a process
    start costs seconds on a loaded machine. `grade_process` runs the real command once."""

    def run() -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["grade", *args])
        return code, out.getvalue(), err.getvalue()

    return await asyncio.to_thread(run)


async def grade_process(*args: str) -> tuple[int, str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TIERLINE_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tierline.router.cli",
        "grade",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=clean,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_grade_apply_route_and_the_agent_sees_why(
    make_api: ApiFactory,  # noqa: F811
    redis_url: str,
    tmp_path: Path,
    store: str,
) -> None:
    config = tmp_path / "grading.toml"
    config.write_text(CONFIG)
    customers, tx = population(tmp_path)
    ns = new_namespace()
    if store == "redis":
        target = ["--store", redis_url, "--namespace", ns]
    else:
        api = await make_api()
        target = ["--url", api.base]
    first = tmp_path / "monday.csv"
    common = ["--config", str(config), "--customers", str(customers), "--as-of", "2026-11-30"]

    # A first run has nothing to compare with: --apply needs --force.
    code, out, err = await grade(*common, "--transactions", str(tx), "--apply", *target)
    assert code == 1 and "no previous run to compare with" in err
    code, out, err = await grade(
        *common, "--transactions", str(tx), "--output", str(first), "--apply", "--force", *target
    )
    assert code == 0, out + err
    assert "version 1: 12 loaded, 0 rejected, swapped" in out
    assert "tiers vip 7, mid 0, standard 5, blacklisted 0" in out
    if store == "redis":
        # Started after the first reload, so its first look-up reads the live version (a router
        # keeps a version it has read for up to META_TTL_S). A generous command timeout: on a
        # loaded machine 0.2 s passes, and a look-up then answers a cached, degraded record.
        toml = f'[server]\nredis_namespace = "{ns}"\nredis_timeout_s = 3.0\n'
        api = await make_api(toml, env={"TIERLINE_STORE": redis_url})

    record = await route_and_take(api, "+8613800000000")
    assert record["tier"] == "vip"
    crm = record["crm"]
    assert isinstance(crm, dict)
    assert crm["customer_id"] == "C0" and crm["name"] == "Customer 0"
    assert crm["grading.segment"] == "important value"
    assert crm["grading.rfm"] == "R5 F5 M5"
    assert crm["grading.rule"] == "segment important value -> vip"
    assert crm["grading.class"] == "A" and crm["grading.as_of"] == "2026-11-30"
    assert "grading.amount" not in crm  # spend does not travel by default

    # The applied run's report is kept in the store, for every process to serve.
    status, kept = await api.get("/admin/grading")
    assert status == 200, kept
    assert kept["as_of"] == "2026-11-30" and kept["tiers"]["vip"] == 7 and kept["tiers"]["standard"] == 5
    assert kept["rfm"]["segments"]["important value"] == 7 and set(kept["rfm"]["cutoffs"]) == {"R", "F", "M"}

    # The night's export is broken (every amount 0): the guard refuses, nothing changes.
    _, broken = population(tmp_path, broken=True)
    code, out, err = await grade(*common, "--transactions", str(broken), "--previous", str(first), "--apply", *target)
    assert code == 1, out + err
    assert "guard: tier vip would go from 7 to 0 numbers" in out and "nothing applied" in err
    if store == "redis":
        # Straight into the store with no --previous: the live table is the comparison.
        code, out, err = await grade(*common, "--transactions", str(broken), "--apply", *target)
        assert code == 1, out + err
        assert "migration: 12 numbers in both" in out and "guard: tier vip would go from 7 to 0 numbers" in out
    status, looked = await api.get("/v1/callers/+8613800000001")
    assert status == 200 and looked["tier"] == "vip"
    assert looked["crm"]["grading.segment"] == "important value"

    # --dry-run prints the same report and applies nothing; --force applies it.
    code, out, _ = await grade(*common, "--transactions", str(broken), "--previous", str(first), "--dry-run")
    assert code == 1 and "migration: 12 numbers in both" in out
    code, out, err = await grade(
        *common, "--transactions", str(broken), "--previous", str(first), "--apply", "--force", *target
    )
    assert code == 0, out + err
    assert "PSI rfm_total" in out and "version 2" in out
    if store == "redis":
        # A router keeps its view of the live version for up to META_TTL_S (1 s): ask the store
        # afresh, as a router does once that second is over.
        link = RedisLink(connect(redis_url, 3.0), timeout_s=3.0)
        try:
            assert (await RedisTierStore(link, ns).lookup("+8613800000001")).tier != "vip"
        finally:
            await link.close()
    else:
        status, looked = await api.get("/v1/callers/+8613800000001")
        assert status == 200 and looked["tier"] != "vip"


async def test_no_report_before_a_run_and_a_bad_report_is_refused(
    make_api: ApiFactory,  # noqa: F811
) -> None:
    api = await make_api()
    status, body = await api.get("/admin/grading")
    assert status == 404 and body["error"]["code"] == "no_grading", body
    status, body = await api.call("PUT", "/admin/grading", {"as_of": "2026-11-30"})
    assert status in (400, 422), body
    status, body = await api.get("/admin/grading")
    assert status == 404


async def test_exit_codes_and_refusals(tmp_path: Path) -> None:
    config = tmp_path / "grading.toml"
    config.write_text(CONFIG)
    customers, tx = population(tmp_path)
    code, _, err = await grade_process("--transactions", str(tx), "--customers", str(customers), "--dry-run")
    assert code == 2 and "give --config" in err
    code, _, err = await grade("--config", str(config), "--transactions", str(tx), "--customers", str(customers))
    assert code == 2 and "give --output FILE, --apply or --dry-run" in err
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text(
        '[grading.scorecard]\ncriteria = [{ name = "a", column = "x", weight = 90, bands = [{ points = 1 }] }]\n'
    )
    code, _, err = await grade("--config", str(bad_config), "--aggregates", str(tx), "--dry-run")
    assert code == 2 and "weights sum to 90, not 100" in err
    code, _, err = await grade("--config", str(config), "--aggregates", str(tx), "--dry-run")
    assert code == 2 and "no column 'caller'" in err
    broken = tmp_path / "tx-bad.csv"
    broken.write_text(tx.read_text() + "C1,someday,5\nC2,2026-11-01,lots\n")
    out_file = tmp_path / "tiers.csv"
    report = tmp_path / "report.json"
    code, out, err = await grade(
        *("--config", str(config), "--transactions", str(broken), "--customers", str(customers)),
        *("--output", str(out_file), "--report", str(report)),
    )
    assert code == 1 and "rows are rejected" in err and not out_file.exists()
    assert "tx-bad.csv:" in out and "at 'someday' is not a date or time" in out
    kept = json.loads(report.read_text())
    # 12 customer rows, 34 transactions and the 2 bad ones.
    assert kept["refused"] == ["2 of 48 rows are rejected (more than max_reject_ratio 0.01)"]
    assert kept["rejected_rows"] == 2 and kept["rfm"]["cutoffs"]["M"][0]["score"] == 1
