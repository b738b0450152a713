"""`tierline report`: the history reports in a terminal or as CSV, read straight from the archive.

    tierline report sla    [--history URL] [--from F] [--to T] [--by day] [--tz Z] [--queue Q,…]
                           [--tier T,…] [--thresholds 10,30] [--format table|csv|json]
    tierline report agents [--history URL] [--from F] [--to T] [--by day] [--tz Z] [--agent A,…] [--format …]
    tierline report call CALL_ID [--history URL] [--mask] [--format table|json]

The same figures as `/admin/reports/…` (queue/history/reports.py makes both), without a
running service: the archive is the one `--history` names, else the settings' (`--config`,
`TIERLINE_HISTORY`; the memory store's default is the SQLite file under `data_dir`). Bounds
take a date (local midnight in the zone), a local time or an RFC 3339 time; `--from`
defaults to today's local midnight, `--to` to now. Exit codes (`exit_codes.Exit`): 0 shown,
1 refused (a bad range, zone or threshold; an unknown call), 2 usage (no archive, bad
settings), 3 the archive could not be opened or read.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from rich.console import Console
from rich.table import Table

from tierline.admin.i18n import Words
from tierline.queue.errors import EngineError
from tierline.queue.history import events as ev
from tierline.queue.history import reports
from tierline.queue.history.archive import Archive
from tierline.router.cli.exit_codes import Exit
from tierline.router.config import ConfigError, Settings, env_language, load_settings

FORMATS = ("table", "csv", "json")


class ReportFailed(Exception):
    def __init__(self, message: str, code: Exit) -> None:
        super().__init__(message)
        self.code = code


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = commands.add_parser("report", help="service-level, agent and call reports from the call history")
    kinds = report.add_subparsers(dest="report", required=True)

    def common(sub: argparse.ArgumentParser, formats: Sequence[str] = FORMATS) -> None:
        sub.add_argument("--config", type=Path, default=None, help="TOML settings file (env TIERLINE_CONFIG)")
        sub.add_argument("--history", default=None, help="sqlite:///path or postgresql://… (default: the settings')")
        sub.add_argument("--format", choices=formats, default="table", help="default %(default)s")

    def ranged(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--from", dest="start", default=None, help="2026-06-01, 2026-06-01T08:00 or RFC 3339")
        sub.add_argument("--to", dest="end", default=None, help="not included; same forms (default: now)")
        sub.add_argument("--by", default="day", help=f"{', '.join(reports.BY)} (default %(default)s)")
        sub.add_argument("--tz", default=None, help="IANA zone the buckets are cut in (default: the settings')")

    sla = kinds.add_parser("sla", help="service level per bucket × queue × tier")
    common(sla)
    ranged(sla)
    sla.add_argument("--queue", default=None, help="only these queues, comma-separated")
    sla.add_argument("--tier", default=None, help="only these tiers, comma-separated")
    sla.add_argument("--thresholds", default=None, help="extra answer-time thresholds in seconds: 10,30,60")
    sla.set_defaults(func=run_report)

    agents = kinds.add_parser("agents", help="answered, handle time and callbacks completed per agent")
    common(agents)
    ranged(agents)
    agents.add_argument("--agent", default=None, help="only these agents, comma-separated")
    agents.set_defaults(func=run_report)

    call = kinds.add_parser("call", help="one call's timeline with its callback's (every call that used the id)")
    common(call, ("table", "json"))
    call.add_argument("call_id")
    call.add_argument("--mask", action="store_true", help="show only the last four digits of caller numbers")
    call.set_defaults(func=run_report)


def _names(raw: str | None) -> list[str] | None:
    if not raw:
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


def run_report(args: argparse.Namespace, console: Console | None = None) -> int:
    try:
        settings = load_settings(args.config, overrides={"history": args.history})
    except ConfigError as exc:
        print(f"tierline: {exc}", file=sys.stderr)
        return Exit.USAGE
    from tierline.router.app import open_history  # the composition root builds archives

    archive = open_history(settings)
    if archive is None:
        print("tierline: the call history is off: give --history sqlite:///path or postgresql://…", file=sys.stderr)
        return Exit.USAGE
    if console is None:
        console = Console() if sys.stdout.isatty() else Console(width=200)
    try:
        text = asyncio.run(_report(args, settings, archive, console))
    except ReportFailed as exc:
        print(f"tierline: {exc}", file=sys.stderr)
        return exc.code
    if text is not None:
        sys.stdout.write(text)
    return Exit.OK


async def _report(args: argparse.Namespace, settings: Settings, archive: Archive, console: Console) -> str | None:
    """The report as text for stdout (CSV, JSON), or None when it was printed as a table."""
    try:
        await archive.open()
    except (OSError, asyncpg.PostgresError, sqlite3.Error) as exc:
        raise ReportFailed(f"cannot open the history archive: {exc}", Exit.UNREACHABLE) from None
    try:
        return await _read(args, settings, archive, console)
    except EngineError as exc:
        raise ReportFailed(f"{exc.message} ({exc.code})", Exit.REFUSED) from None
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, sqlite3.Error) as exc:
        raise ReportFailed(f"cannot read the history archive: {exc}", Exit.UNREACHABLE) from None
    finally:
        await archive.close()


async def _read(args: argparse.Namespace, settings: Settings, archive: Archive, console: Console) -> str | None:
    if args.report == "call":
        calls = await reports.call_history(archive, args.call_id, mask=args.mask)
        found = reports.CallHistory(call_id=args.call_id, masked=args.mask, calls=calls)
        if args.format == "json":
            return msgspec.json.encode(found).decode() + "\n"
        console.print(call_table(found))
        return None
    tz = args.tz or settings.timezone
    zone = reports.zone_of(tz)
    now = time.time()
    start = reports.parse_instant(args.start, zone, "from") if args.start else reports.bucket_start(now, "day", zone)
    end = reports.parse_instant(args.end, zone, "to") if args.end else now
    if args.report == "sla":
        sla = await reports.sla_report_of(
            archive,
            start,
            end,
            by=args.by,
            tz=tz,
            policy=settings,
            queues=_names(args.queue),
            tiers=_names(args.tier),
            thresholds=reports.parse_thresholds(args.thresholds),
        )
        if args.format == "csv":
            return reports.sla_csv(sla)
        if args.format == "json":
            return msgspec.json.encode(sla).decode() + "\n"
        console.print(sla_table(sla))
        return None
    agents = await reports.agent_report_of(archive, start, end, by=args.by, tz=tz, agents=_names(args.agent))
    if args.format == "csv":
        return reports.to_csv(agents.rows, reports.AGENT_REPORT_FIELDS)
    if args.format == "json":
        return msgspec.json.encode(agents).decode() + "\n"
    console.print(agent_table(agents))
    return None


# --- tables ---------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _s(value: float | None, w: Words) -> str:
    return "–" if value is None else w.t("unit.seconds", s=w.number(value, 1))


def _when(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M %z")


def sla_table(report: reports.SlaReport, words: Words | None = None) -> Table:
    """In `words`' language (by default LANG's: admin/i18n.py)."""
    w = words or Words(env_language())
    extra = [reports.threshold_key(t) for t in report.thresholds]
    table = Table(
        title=w.t(
            "cli.report_sla_title",
            by=report.by,
            zone=report.timezone,
            start=_when(report.start),
            end=_when(report.end),
            formula=w.t("dash.formula", name=report.formula, text=w.t("formula." + report.formula)),
        ),
        title_justify="left",
        header_style="bold",
    )
    left = ["cli.col_start", "dash.col_queue", "dash.col_tier"]
    keys = [*left, "cli.col_sl", "dash.col_target", "dash.col_offered", "dash.col_answered", "cli.col_within"]
    names = [w.t(k, window="") if k == "cli.col_sl" else w.t(k) for k in keys]
    names += [w.t("cli.col_within_s", s=k) for k in extra]
    tail = ["dash.col_abandoned", "cli.col_short", "dash.col_overflowed", "cli.col_cb_requested", "cli.col_resumed"]
    tail += ["dash.col_asa", "cli.col_longest"]
    tail += ["cli.col_cb_created", "cli.col_cb_in_time", "cli.col_cb_overdue"]
    names += [w.t(k) for k in tail]
    for i, name in enumerate(names):
        table.add_column(name.strip(), justify="left" if i < len(left) else "right", no_wrap=True)
    for row in report.rows:
        style = "" if row.met is None else ("green" if row.met else "bold red")
        cells: list[Any] = [
            _when(row.start),
            row.queue,
            w.t("tier." + row.tier),
            f"[{style}]{_pct(row.service_level)}[/]" if style else _pct(row.service_level),
            w.t("dash.no_target")
            if row.target is None
            else w.t("dash.target_within", target=_pct(row.target), s=f"{row.threshold_s:g}"),
            row.offered,
            row.answered,
            row.answered_within_threshold,
            *(row.answered_within.get(k, 0) for k in extra),
            row.abandoned,
            row.short_abandoned,
            row.overflowed,
            row.callback_requested,
            row.resumed,
            _s(row.asa_s, w),
            _s(row.longest_wait_s, w),
            row.callbacks_created,
            row.callbacks_completed_in_time,
            row.callbacks_overdue,
        ]
        table.add_row(*(str(c) for c in cells))
    return table


def agent_table(report: reports.AgentReport, words: Words | None = None) -> Table:
    w = words or Words(env_language())
    table = Table(
        title=w.t(
            "cli.report_agents_title",
            by=report.by,
            zone=report.timezone,
            start=_when(report.start),
            end=_when(report.end),
        ),
        title_justify="left",
        header_style="bold",
    )
    keys = ("cli.col_start", "dash.col_agent", "dash.col_answered", "cli.col_ended", "cli.col_handle")
    for i, key in enumerate((*keys, "cli.col_average_handle", "cli.col_cb_completed")):
        table.add_column(w.t(key), justify="left" if i < 2 else "right", no_wrap=True)
    for row in report.rows:
        table.add_row(
            _when(row.start),
            row.agent,
            str(row.answered),
            str(row.ended),
            _s(row.handle_s, w),
            _s(row.average_handle_s, w),
            str(row.callbacks_completed),
        )
    return table


def call_table(found: reports.CallHistory, words: Words | None = None) -> Table:
    """Event kinds, ids and figures are the archive's identifiers, as the JSON gives them."""
    w = words or Words(env_language())
    table = Table(title=w.t("cli.report_call_title", call=found.call_id, n=len(found.calls)), header_style="bold")
    keys = ("cli.col_call_started", "cli.col_time_utc", "cli.col_event", "cli.col_id", "dash.col_tier")
    for key in (*keys, "dash.col_queue", "dash.col_agent", "dash.col_caller", "cli.col_figures"):
        table.add_column(w.t(key), no_wrap=True)
    base = {f.name for f in msgspec.structs.fields(ev.EventBase)}  # the figures are the rest
    for call in found.calls:
        first = datetime.fromtimestamp(call.started_at, UTC).isoformat(timespec="seconds")
        for event in call.events:
            figures = {
                name: value
                for name, value in msgspec.structs.asdict(event).items()
                if name not in base and value is not None
            }
            table.add_row(
                first,
                datetime.fromtimestamp(event.at, UTC).isoformat(timespec="seconds"),
                ev.kind_of(event),
                str(event.id),
                event.tier or "",
                event.queue or "",
                event.agent or "",
                event.caller or "",
                ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()),
            )
            first = ""
    return table
