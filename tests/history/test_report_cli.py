"""`tierline report`: the same figures as the HTTP reports, read from a real archive file or a
real PostgreSQL without a running service; exit codes for every way it can fail."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import msgspec
import pytest
from rich.console import Console

from tests.history.conftest import new_schema
from tests.history.test_reports_api import ADMIN, MakeReportApi, archive_events, drive_hold_and_resume, drive_traffic
from tests.history.test_reports_api import make_report_api as make_report_api  # a fixture, re-exported
from tests.history.traffic import traffic
from tierline.admin.i18n import Words
from tierline.queue.history import reports
from tierline.queue.history.postgres_archive import PostgresArchive
from tierline.queue.history.sqlite_archive import SqliteArchive
from tierline.router.cli import main
from tierline.router.cli.exit_codes import Exit
from tierline.router.cli.report import sla_table

START, END = "2027-01-15", "2027-01-16"  # the day the report API's clock starts in (Berlin)


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_the_csv_is_the_http_reports_csv(
    make_report_api: MakeReportApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "served.db"
    archive = SqliteArchive(path)
    await archive.open()
    try:
        api = await make_report_api(archive=archive, top="resume_window_s = 300.0\n")
        await drive_traffic(api, seed=21)
        await drive_hold_and_resume(api, seed=21)  # offers taken, abandons taken back
        await archive_events(api.services.calls, archive)
        for kind, query in (
            ("sla", f"from={START}&to={END}&by=60m&thresholds=10,30"),
            ("agents", f"from={START}&to={END}&by=day"),
        ):
            async with api.session.get(f"{api.base}/admin/reports/{kind}?{query}&format=csv", headers=ADMIN) as r:
                served = await r.text()
            argv = ["report", kind, "--history", f"sqlite:///{path}", "--from", START, "--to", END, "--format", "csv"]
            argv += ["--tz", "Europe/Berlin", "--by", "60m" if kind == "sla" else "day"]
            if kind == "sla":
                argv += ["--thresholds", "10,30"]
            code, out, err = await cli(capsys, *argv)
            assert code == Exit.OK, err
            assert out == served and len(list(csv.reader(io.StringIO(out)))) > 5, kind
            if kind == "sla":
                rows = list(csv.DictReader(io.StringIO(out)))
                assert sum(int(r["callback_requested"]) for r in rows) == 6
                assert sum(int(r["resumed"]) for r in rows) == 12
        span = ["--history", f"sqlite:///{path}", "--from", START, "--to", END, "--tz", "Europe/Berlin"]
        code, out, err = await cli(capsys, "report", "sla", *span, "--format", "json")
        assert code == Exit.OK, err
        report = json.loads(out)
        assert sum(r["callback_requested"] for r in report["rows"]) == 6
        assert sum(r["resumed"] for r in report["rows"]) == 12
        table = Console(width=400, record=True)
        table.print(sla_table(msgspec.convert(report, reports.SlaReport), Words("en")))
        header = next(line for line in table.export_text().splitlines() if "Offered" in line)
        assert "CB requested" in header and "Resumed" in header
    finally:
        await archive.close()


async def test_table_json_and_a_call_on_postgresql(pg_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    schema = new_schema()
    archive = PostgresArchive(pg_dsn, schema=schema)
    await archive.open()
    day = 1_790_035_200.0  # 2026-09-22 00:00 Berlin
    events = traffic(seed=22, calls=300, start=day + 3600, spacing_s=120)
    await archive.ingest(events)
    await archive.close()
    history = f"{pg_dsn}?schema={schema}"
    span = ["--from", "2026-09-22", "--to", "2026-09-23", "--tz", "Europe/Berlin"]

    code, out, err = await cli(capsys, "report", "sla", "--history", history, *span, "--format", "json")
    assert code == Exit.OK, err
    report = json.loads(out)
    assert sum(r["offered"] for r in report["rows"]) == sum(
        e.__struct_config__.tag in ("answer", "abandon", "overflow") for e in events if e.at < day + 86_400
    )
    code, out, err = await cli(capsys, "report", "sla", "--history", history, *span, "--tier", "vip")
    assert code == Exit.OK, err
    assert "Service level by day" in out and "vip" in out and "standard" not in out

    code, out, err = await cli(capsys, "report", "agents", "--history", history, *span, "--agent", "agent7")
    assert code == Exit.OK and "agent7" in out and "agent8" not in out, err

    call_id = events[0].call_id
    assert call_id is not None and events[0].caller is not None
    code, out, err = await cli(capsys, "report", "call", call_id, "--history", history, "--mask")
    assert code == Exit.OK, err
    assert "enter" in out and events[0].caller not in out and events[0].caller[-4:] in out
    code, out, err = await cli(capsys, "report", "call", call_id, "--history", history, "--format", "json")
    assert json.loads(out)["calls"][0]["events"][0]["caller"] == events[0].caller


@pytest.mark.parametrize(
    ("argv", "code", "words"),
    [
        (["sla", "--history", "off"], Exit.USAGE, "history is off"),
        (["sla", "--history", "mysql://x"], Exit.USAGE, "history"),
        (["sla", "--tz", "Mars/Olympus"], Exit.REFUSED, "invalid_tz"),
        (["sla", "--by", "fortnight"], Exit.REFUSED, "invalid_by"),
        (["sla", "--from", "2027-01-02", "--to", "2027-01-01"], Exit.REFUSED, "invalid_range"),
        (["sla", "--thresholds", "x"], Exit.REFUSED, "invalid_thresholds"),
        (["call", "nobody"], Exit.REFUSED, "no archived events"),
        (["sla", "--history", "postgresql://tierline@127.0.0.1:1/none"], Exit.UNREACHABLE, "cannot open"),
    ],
)
async def test_failures_exit_with_their_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, words: str
) -> None:
    if "--history" not in argv:
        argv = [*argv, "--history", f"sqlite:///{tmp_path / 'empty.db'}"]
    got, out, err = await cli(capsys, "report", *argv)
    assert got == code and words in err, (out, err)
