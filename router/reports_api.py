"""`/admin/reports/…` and `/admin/calls/{call_id}/history`: reports from the call history archive.

The query in, queue/history/reports.py's figures out as JSON or CSV. Every read goes to the
archive (`Services.history`), never to the live store: with `--history off` these routes
answer 409 `history_off`, and an archive that cannot be reached answers 503
`history_unavailable` (routing goes on either way).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import asyncpg
from aiohttp import web

from tierline.queue.history import reports
from tierline.queue.history.archive import Archive, ArchiveNotOpen
from tierline.router.plumbing.bodies import json_response, query_choice
from tierline.router.plumbing.context import Services, services
from tierline.router.plumbing.endpoints import EndpointTable, QueryParam
from tierline.router.plumbing.errors import ApiError
from tierline.router.plumbing.params import path_param
from tierline.tiers.model import TIERS

T = TypeVar("T")

reports_api = EndpointTable()

FORMATS: Final = ("json", "csv")
FLAGS: Final = ("true", "false", "1", "0")
FROM = QueryParam(
    "from",
    "start: a date (2026-06-01, local midnight in tz), a local time (2026-06-01T08:00) or RFC 3339"
    " with an offset (default: today's local midnight)",
)
TO = QueryParam("to", "end, not included; same forms as from (default: now)")
BY = QueryParam("by", "bucket length (default day)", enum=reports.BY)
TZ = QueryParam("tz", "IANA time zone the buckets are cut in (default: the configured timezone)")
FORMAT = QueryParam("format", "json (default) or csv (a header line, one line per row)", enum=FORMATS)
SLA_QUERY: Final = (
    FROM,
    TO,
    BY,
    QueryParam("queue", "only these queues, comma-separated (default: all)"),
    QueryParam("tier", "only these tiers, comma-separated: vip, mid, standard, blacklisted (default: all)"),
    TZ,
    QueryParam(
        "thresholds",
        f"extra answer-time thresholds in seconds, comma-separated, up to {reports.MAX_THRESHOLDS} (e.g. 10,30,60):"
        " each row's answered_within counts the answers within each",
    ),
    QueryParam("all_queues", 'true: one row per bucket × tier, every queue summed (queue "*")', enum=FLAGS),
    FORMAT,
)
CSV_TYPE: Final = "text/csv"


_NOT_OPEN: Final = "the history archive is not open yet; try again shortly"


def _history(svc: Services) -> Archive:
    if svc.history is None:
        raise ApiError(409, "history_off", "the call history is off (--history off): no archive to report from")
    return svc.history


async def _read(archive: Archive, work: Callable[[], Awaitable[T]]) -> T:
    """An archive read; an archive not open yet or a database that cannot be reached is 503, not 500."""
    # The archive is opened by this process's archiver at start, retried while unreachable.
    if not archive.is_open:
        raise ApiError(503, "history_unavailable", _NOT_OPEN)
    try:
        return await work()
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, sqlite3.OperationalError) as exc:
        raise ApiError(503, "history_unavailable", f"the history archive cannot be read now ({exc})") from None
    except ArchiveNotOpen:  # closed while this read waited (the process is stopping)
        raise ApiError(503, "history_unavailable", _NOT_OPEN) from None


def _list(request: web.Request, name: str) -> list[str] | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


def _flag(request: web.Request, name: str) -> bool:
    return query_choice(request, name, FLAGS, "false") in ("true", "1")


def _range(request: web.Request, svc: Services) -> tuple[float, float, str]:
    tz = request.query.get("tz") or svc.settings.timezone
    zone = reports.zone_of(tz)
    now = svc.clock.now()
    raw_from, raw_to = request.query.get("from"), request.query.get("to")
    start = reports.parse_instant(raw_from, zone, "from") if raw_from else reports.bucket_start(now, "day", zone)
    end = reports.parse_instant(raw_to, zone, "to") if raw_to else now
    reports.check_range(start, end)
    return start, end, tz


def _csv(text: str, name: str) -> web.Response:
    return web.Response(
        text=text,
        content_type=CSV_TYPE,
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@reports_api.route(
    "GET",
    "/admin/reports/sla",
    summary=(
        "Service level from the archive per bucket × queue × tier: offered, answered (within the tier's threshold"
        " and any extra ones), abandoned, short abandons, overflowed, callbacks, ASA, longest wait, the level"
        " (format=csv: text/csv)"
    ),
    role="admin",
    responses={200: reports.SlaReport},
    also_produces=("text/csv",),
    query=SLA_QUERY,
)
async def get_sla_report(request: web.Request) -> web.Response:
    svc = services(request)
    archive = _history(svc)
    start, end, tz = _range(request, svc)
    by = reports.check_by(request.query.get("by", "day"))
    fmt = query_choice(request, "format", FORMATS, "json")
    tiers = _list(request, "tier")
    if tiers is not None and (unknown := [t for t in tiers if t not in TIERS]):
        raise ApiError(422, "invalid_tier", f"tier is among {', '.join(TIERS)}, not {', '.join(unknown)}")
    thresholds = reports.parse_thresholds(request.query.get("thresholds"))
    all_queues = _flag(request, "all_queues")
    report = await _read(
        archive,
        lambda: reports.sla_report_of(
            archive,
            start,
            end,
            by=by,
            tz=tz,
            policy=svc.settings,
            queues=_list(request, "queue"),
            tiers=tiers,
            thresholds=thresholds,
            all_queues=all_queues,
        ),
    )
    if fmt == "csv":
        return _csv(reports.sla_csv(report), "tierline-sla")
    return json_response(report)


@reports_api.route(
    "GET",
    "/admin/reports/agents",
    summary=(
        "Per agent from the archive, per bucket: answered, calls ended, handle time, callbacks completed"
        " (format=csv: text/csv)"
    ),
    role="admin",
    responses={200: reports.AgentReport},
    also_produces=("text/csv",),
    query=(FROM, TO, BY, QueryParam("agent", "only these agents, comma-separated (default: all)"), TZ, FORMAT),
)
async def get_agent_report(request: web.Request) -> web.Response:
    svc = services(request)
    archive = _history(svc)
    start, end, tz = _range(request, svc)
    by = reports.check_by(request.query.get("by", "day"))
    fmt = query_choice(request, "format", FORMATS, "json")
    report = await _read(
        archive, lambda: reports.agent_report_of(archive, start, end, by=by, tz=tz, agents=_list(request, "agent"))
    )
    if fmt == "csv":
        return _csv(reports.to_csv(report.rows, reports.AGENT_REPORT_FIELDS), "tierline-agents")
    return json_response(report)


@reports_api.route(
    "GET",
    "/admin/calls/{call_id}/history",
    summary=(
        "One call's archived timeline with its callback's, for disputes; a call id used again after"
        " retention gives each call, newest first"
    ),
    role="admin",
    responses={200: reports.CallHistory},
    query=(QueryParam("mask", "true: caller numbers show their last four digits only", enum=FLAGS),),
)
async def get_call_history(request: web.Request) -> web.Response:
    call_id = path_param(request, "call_id")  # a malformed id is 422 whether history is on or not
    svc = services(request)
    archive = _history(svc)
    mask = _flag(request, "mask")
    calls = await _read(archive, lambda: reports.call_history(archive, call_id, mask=mask))
    return json_response(reports.CallHistory(call_id=call_id, masked=mask, calls=calls))
