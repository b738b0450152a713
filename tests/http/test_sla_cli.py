"""`tierline sla` against a live server: the printed rows, words and colours, --watch, errors."""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
from typing import Any

import pytest
from rich.console import Console

from tests.http.conftest import Api, ApiFactory
from tierline.admin.sla_status import sla_status
from tierline.router.cli.sla import SlaFetchError, fetch_sla, run_sla, watch

ADMIN_TOKEN = "boss-secret-9"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CLI = [sys.executable, "-m", "tierline.router.cli"]


@pytest.mark.parametrize(
    ("level", "target", "waiting", "oldest", "expected"),
    [
        (None, None, 3, 99.0, "no target"),
        (0.99, None, 0, None, "no target"),
        (None, 0.9, 0, None, "idle"),
        (None, 0.9, 1, 2.0, "at risk"),
        (0.8999, 0.9, 0, None, "missed"),
        (0.9, 0.9, 0, None, "at risk"),
        (0.949, 0.9, 0, None, "at risk"),
        (0.95, 0.9, 0, None, "met"),
        (1.0, 0.9, 2, 20.0, "met"),  # waiting exactly the threshold is still within it
        (1.0, 0.9, 2, 20.5, "at risk"),
    ],
)
def test_status_rule(
    level: float | None, target: float | None, waiting: int, oldest: float | None, expected: str
) -> None:
    assert sla_status(level, target, waiting, oldest, 20.0) == expected


async def scenario(api: Api) -> None:
    """default: vip met (answered at 4 s), standard missed (answered at 30 s), mid at risk
    (one waiting, nothing ended yet); sales: standard idle; blacklisted no target."""
    await api.call("PUT", "/admin/tiers/+491111", {"tier": "vip"}, headers=ADMIN)
    await api.call("PUT", "/admin/tiers/+492222", {"tier": "mid"}, headers=ADMIN)
    for call_id, caller in (("v1", "+491111"), ("s1", "+493333")):
        status, _ = await api.post("/v1/calls", {"call_id": call_id, "caller": caller})
        assert status == 201
    api.clock.advance(4)
    assert (await api.post("/v1/calls/v1/answer", {"agent_id": "a1"}))[0] == 200
    api.clock.advance(26)
    assert (await api.post("/v1/calls/s1/answer", {"agent_id": "a2"}))[0] == 200
    assert (await api.post("/v1/calls", {"call_id": "m1", "caller": "+492222"}))[0] == 201
    api.clock.advance(10)


def table_rows(text: str) -> dict[tuple[str, str], list[str]]:
    """The table's body rows by (queue, tier), cells stripped; a blank queue repeats the last."""
    rows: dict[tuple[str, str], list[str]] = {}
    queue = ""
    for line in text.splitlines():
        if not line.startswith("│"):
            continue
        cells = [c.strip() for c in line.strip("│").split("│")]
        if cells[1] not in ("vip", "mid", "standard", "blacklisted"):
            continue
        queue = cells[0] or queue
        rows[(queue, cells[1])] = cells
    return rows


async def test_sla_command_prints_the_rows_of_a_live_server(make_api: ApiFactory) -> None:
    api: Api = await make_api("[queues.sales]\n", env={"TIERLINE_ADMIN_TOKEN": ADMIN_TOKEN})
    await scenario(api)
    env = {k: v for k, v in os.environ.items() if k not in ("TIERLINE_ADMIN_TOKEN", "NO_COLOR")}
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "sla",
        "--url",
        api.base,
        "--admin-token",
        ADMIN_TOKEN,
        "--window",
        "15m",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert "\x1b[" not in text  # no colour codes into a pipe
    assert "window 15m" in text and "Formula (default)" in text
    rows = table_rows(text)
    assert len(rows) == 8
    # Queue, Tier, Status, SL, Target, Waiting, Oldest wait, ASA, Offered, Answered, Abandoned, Overflowed
    assert rows[("default", "vip")][2:] == ["✓ met", "100.0%", "90.0% ≤ 20 s", "0", "–", "4.0 s", "1", "1", "0", "0"]
    assert rows[("default", "standard")][2:5] == ["✗ missed", "0.0%", "85.0% ≤ 20 s"]
    assert rows[("default", "standard")][7:10] == ["30.0 s", "1", "1"]
    assert rows[("default", "mid")][2:7] == ["! at risk", "–", "85.0% ≤ 20 s", "1", "10.0 s"]
    assert rows[("default", "blacklisted")][2:5] == ["– no target", "–", "none"]
    assert rows[("sales", "standard")][2] == "· idle"
    assert "Callbacks: open 0" in text

    # Each row agrees with the API it was read from.
    _, report = await api.get("/admin/sla?window=15m", headers=ADMIN)
    for row in report["rows"]:
        status = sla_status(
            row["service_level"], row["target"], row["waiting_now"], row["oldest_wait_now_s"], row["threshold_s"]
        )
        cells = rows[(row["queue"], row["tier"])]
        assert cells[2].endswith(status) and cells[5] == str(row["waiting_now"]) and cells[8] == str(row["offered"])


async def test_sla_colours_by_target_on_a_terminal(make_api: ApiFactory) -> None:
    api: Api = await make_api(env={"TIERLINE_ADMIN_TOKEN": ADMIN_TOKEN})
    await scenario(api)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system="standard", width=200)
    args = argparse.Namespace(url=api.base, admin_token=ADMIN_TOKEN, window="today", queue="default", watch=None)
    assert await asyncio.to_thread(run_sla, args, console) == 0
    lines = out.getvalue().splitlines()
    met = next(line for line in lines if "met" in line and "vip" in line)
    missed = next(line for line in lines if "missed" in line)
    risk = next(line for line in lines if "at risk" in line)
    assert "\x1b[1;32m" in met  # bold green
    assert "\x1b[1;31m" in missed  # bold red
    assert "\x1b[1;33m" in risk  # bold yellow
    assert "window today" in out.getvalue()


async def test_sla_watch_redraws_with_new_figures(make_api: ApiFactory) -> None:
    api: Api = await make_api(env={"TIERLINE_ADMIN_TOKEN": ADMIN_TOKEN})
    await scenario(api)
    loop = asyncio.get_running_loop()
    out = io.StringIO()
    console = Console(file=out, width=200)

    async def more_traffic() -> None:
        api.clock.advance(1)
        assert (await api.post("/v1/calls/m1/answer", {"agent_id": "a3"}))[0] == 200

    def between_frames(seconds: float) -> None:
        assert seconds == 0.5
        asyncio.run_coroutine_threadsafe(more_traffic(), loop).result(10)

    def fetch() -> Any:
        return fetch_sla(api.base, ADMIN_TOKEN, "15m")

    assert await asyncio.to_thread(watch, console, fetch, 0.5, 2, between_frames) == 0
    first, second = out.getvalue().split("Service level · window 15m")[1:]
    assert table_rows(first)[("default", "mid")][2:6] == ["! at risk", "–", "85.0% ≤ 20 s", "1"]
    assert table_rows(second)[("default", "mid")][2:6] == ["✓ met", "100.0%", "85.0% ≤ 20 s", "0"]


async def test_sla_errors_are_clear(make_api: ApiFactory, capsys: pytest.CaptureFixture[str]) -> None:
    api: Api = await make_api(env={"TIERLINE_ADMIN_TOKEN": ADMIN_TOKEN})
    with pytest.raises(SlaFetchError, match=r"refused /admin/sla \(401\)"):
        await asyncio.to_thread(fetch_sla, api.base, "wrong", "15m")
    args = argparse.Namespace(url="http://127.0.0.1:9", admin_token=None, window="15m", queue=None, watch=None)
    assert await asyncio.to_thread(run_sla, args, Console(file=io.StringIO())) == 3
    assert "cannot reach http://127.0.0.1:9" in capsys.readouterr().err
