"""Measures the call history archive (a benchmark, not a test).

    .venv/bin/python loadtest/bench_history.py [--dsn postgresql://postgres@127.0.0.1:5432]
        [--events 300000] [--report-calls 1000000] [--budget-s 120] [--batch 5000]
        [--queues 10] [--json PATH]

1. Ingest rate: --events synthetic call events (the shapes tests/history/traffic.py makes)
   into PostgreSQL (a database of its own, dropped at the end) and into a SQLite file, in
   batches of --batch; events/s counts ingest only, not generation. Goal: >= 20,000/s into
   PostgreSQL.
2. Report latency: --report-calls calls over 31 days (PostgreSQL), or as many as --budget-s
   of generating and ingesting allow, then the 31-day daily service-level report in Europe/Berlin (median of 5),
   and the same report by 15 minutes. Goal (issue 15): <= 200 ms at 10^7 calls. The report
   reads only the 15-minute tallies, at most 96 x lanes per day whatever the call count.
3. With --server-calls N (e.g. 10000000): N calls made inside PostgreSQL instead (generating
   and ingesting 10^7 calls through Python takes hours here), in a schema of their own over
   31 days, then the same reports timed. Each call is one archived event, the one that ends
   its wait (answer 75%, abandon 17%, overflow 8%; exponential waits, mean 25 s), with the
   same columns and JSON body an ingest writes; the 15-minute tallies are summed from those
   rows by SQL that applies tallies.py's rule. Enter, offer and end events are left out: the
   report never reads raw events, and 4x the rows would only make the setup 4x longer. The
   run checks the report's offered total against the row count.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg
import msgspec
from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/ when run as a script

from tests.history.traffic import AGENTS, TIERS, call_events
from tierline.queue.clock import ManualClock
from tierline.queue.history import events as ev
from tierline.queue.history import reports
from tierline.queue.history.archive import Archive
from tierline.queue.history.buckets import WHOLE_DAYS
from tierline.queue.history.postgres_archive import PostgresArchive
from tierline.queue.history.sqlite_archive import SqliteArchive
from tierline.queue.history.tallies import TALLY_FIELDS
from tierline.queue.policy import Policy
from tierline.router.app import build_app, open_services
from tierline.router.config import load_settings

START = 1_790_000_000.0  # 2026-09-21
SERVER_MONTH_START = datetime(2026, 10, 1, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()  # a fall-back inside
DAY = 86_400


def generate(
    rng: random.Random, ids: ev.IdSequence, calls: int, start: float, spacing_s: float, queues: tuple[str, ...]
) -> tuple[list[ev.Event], float]:
    """Calls arriving in time order from `start` (as an engine hands them over); the next start."""
    out: list[ev.Event] = []
    at = start
    for n in range(calls):
        out.extend(call_events(rng, ids, f"b{ids.epoch}-{n}", at, queues=queues, tiers=TIERS, agents=AGENTS))
        at += rng.expovariate(1 / spacing_s)
    return out, at


async def ingest_rate(archive: Archive, events: list[ev.Event], batch: int) -> float:
    began = time.perf_counter()
    for i in range(0, len(events), batch):
        await archive.ingest(events[i : i + batch])
    return len(events) / (time.perf_counter() - began)


# One chunk of server-made calls: n in [$1, $2), spread evenly over [$3, $3 + $4) seconds,
# random but repeatable (setseed before each chunk). Waits are exponential with mean 25 s.
_GENERATE = """
CREATE UNLOGGED TABLE IF NOT EXISTS gen_calls (
    n bigint, at timestamptz, queue text, tier text, fate text, wait double precision, agent text, caller text
);
TRUNCATE gen_calls;
INSERT INTO gen_calls
SELECT n, to_timestamp($3::float8 + (n - $1::bigint) * $4::float8 / ($2::bigint - $1::bigint)),
       'queue' || (floor(random() * $5::int))::int,
       (ARRAY['vip', 'mid', 'standard'])[1 + floor(random() * 3)::int],
       CASE WHEN r < 0.75 THEN 'answer' WHEN r < 0.92 THEN 'abandon' ELSE 'overflow' END,
       -25 * ln(1 - random()), 'agent' || (n % 40), '+4930' || (10000000 + n % 90000000)
FROM (SELECT n, random() AS r FROM generate_series($1::bigint, $2::bigint - 1) AS n) AS g
"""
_INSERT_EVENTS = """
INSERT INTO events (at, epoch, seq, kind, call_id, callback_id, caller, tier, queue, agent, body)
SELECT at, $1::bigint, n, fate, 's' || n, NULL, caller, tier, queue, CASE WHEN fate = 'answer' THEN agent END,
       jsonb_build_object('kind', fate, 'id', jsonb_build_array($1::bigint, n), 'at', extract(epoch FROM at),
                          'call_id', 's' || n, 'caller', caller, 'tier', tier, 'queue', queue, 'wait_s', wait)
       || CASE fate
            WHEN 'answer' THEN jsonb_build_object('agent', agent, 'threshold_s', 20.0)
            WHEN 'abandon' THEN jsonb_build_object('short', wait < 5, 'threshold_s', 20.0)
            ELSE jsonb_build_object('reason', 'max_wait')
          END
FROM gen_calls
"""
# tallies.py's rule for these three kinds; `entered` counts each call in its wait's interval.
_ADD_TALLIES = """
INSERT INTO interval_tallies AS t (interval, queue, tier, entered, answered, answered_within, abandoned,
    abandoned_within, short_abandoned, overflowed, answer_wait_sum, answer_wait_max)
SELECT floor(extract(epoch FROM at) / 900)::bigint, queue, tier, count(*),
       count(*) FILTER (WHERE fate = 'answer'), count(*) FILTER (WHERE fate = 'answer' AND wait <= 20),
       count(*) FILTER (WHERE fate = 'abandon'), count(*) FILTER (WHERE fate = 'abandon' AND wait <= 20),
       count(*) FILTER (WHERE fate = 'abandon' AND wait < 5), count(*) FILTER (WHERE fate = 'overflow'),
       coalesce(sum(wait) FILTER (WHERE fate = 'answer'), 0), coalesce(max(wait) FILTER (WHERE fate = 'answer'), 0)
FROM gen_calls GROUP BY 1, 2, 3
ON CONFLICT (interval, queue, tier) DO UPDATE SET
    entered = t.entered + excluded.entered, answered = t.answered + excluded.answered,
    answered_within = t.answered_within + excluded.answered_within, abandoned = t.abandoned + excluded.abandoned,
    abandoned_within = t.abandoned_within + excluded.abandoned_within,
    short_abandoned = t.short_abandoned + excluded.short_abandoned, overflowed = t.overflowed + excluded.overflowed,
    answer_wait_sum = t.answer_wait_sum + excluded.answer_wait_sum,
    answer_wait_max = greatest(t.answer_wait_max, excluded.answer_wait_max)
"""


_ROLL_UP_HOURS = f"""
DELETE FROM hour_tallies;
INSERT INTO hour_tallies (hour, queue, tier, {", ".join(TALLY_FIELDS)})
SELECT interval / 4, queue, tier,
    {", ".join(f"max({f})" if f == "answer_wait_max" else f"sum({f})" for f in TALLY_FIELDS)}
FROM interval_tallies GROUP BY 1, 2, 3
"""


async def open_with_days(dsn: str) -> PostgresArchive:
    """The server-made archive as `serve` opens it (daily sums kept for the settings' zone);
    the first open after a fill sums the days from the 15-minute tallies: timed here."""
    archive = PostgresArchive(dsn, schema="server_made", timeout_s=600, day_zone="Europe/Berlin")
    began = time.perf_counter()
    applied = await archive.open()
    print(f"opened (migrations applied: {applied or 'none'}) in {time.perf_counter() - began:.1f} s")
    return archive


async def fill_server_side(archive: PostgresArchive, calls: int, start: float, days: int, queues: int) -> float:
    """`calls` calls made by PostgreSQL over `days` days from `start` (see the module docstring).
    Returns the seconds it took."""
    began = time.perf_counter()
    epoch = 77
    # One real event per month touched, through ingest: it creates the partitions as usual.
    ids = ev.IdSequence(epoch - 1)
    for at in (start, start + days * DAY - 1):
        await archive.ingest([ev.Enter(id=ids.next(), at=at, position=1, call_id="edge", queue="queue0", tier="vip")])
    chunk = 250_000
    span = days * DAY / calls
    async with archive.pool.acquire() as conn:
        await conn.execute("SET synchronous_commit = off")  # setup only; the timed reports are reads
        for first in range(1, calls + 1, chunk):
            last = min(first + chunk, calls + 1)
            async with conn.transaction():
                await conn.execute("SELECT setseed($1)", (first % 1000) / 1000)
                create, truncate, insert = (part for part in _GENERATE.split(";"))
                await conn.execute(create)
                await conn.execute(truncate)
                await conn.execute(insert, first, last, start + (first - 1) * span, (last - first) * span, queues)
                await conn.execute(_INSERT_EVENTS, epoch)
                await conn.execute(_ADD_TALLIES)
            done = last - 1
            if done % 2_000_000 < chunk or done == calls:
                print(f"  server-side: {done:,} calls in {time.perf_counter() - began:.0f} s", flush=True)
        await conn.execute("DROP TABLE gen_calls")
        # The hourly sums ingest keeps beside the tallies, made here as migration 2 makes them.
        await conn.execute(_ROLL_UP_HOURS)
        await conn.execute("ANALYZE interval_tallies; ANALYZE hour_tallies")
    return time.perf_counter() - began


async def time_reports(archive: Archive, start: float, figures: dict[str, float], prefix: str) -> int:
    """The 31-day report by day (median of 11) and by 15 minutes (median of 3), each also as the
    archive's read alone; returns the daily offered total. The machine's load is printed beside:
    on a shared 2-core machine it moves these figures more than anything measured."""
    policy = Policy(timezone="Europe/Berlin")
    zone = reports.zone_of("Europe/Berlin")
    offered = 0
    plan: tuple[tuple[reports.By, int], ...] = (("day", 11), ("15m", 3))
    for by, rounds in plan:
        times, reads = [], []
        _, bounds = reports.bucket_bounds(start, start + 31 * DAY, by, zone)
        for _ in range(rounds):
            t0 = time.perf_counter()
            rows = await reports.sla_report(archive, start, start + 31 * DAY, by=by, tz="Europe/Berlin", policy=policy)
            t1 = time.perf_counter()
            await archive.bucket_tallies(bounds, days_in="Europe/Berlin" if by == "day" else None)
            times.append((t1 - t0) * 1000)
            reads.append((time.perf_counter() - t1) * 1000)
        median = statistics.median(times)
        figures[f"{prefix}report_{by}_ms"] = median
        figures[f"{prefix}report_{by}_read_ms"] = statistics.median(reads)
        load = os.getloadavg()[0]
        print(f"31-day report by {by}: {median:.1f} ms median of {rounds} ({len(rows):,} rows; all: {_ms(times)})")
        print(f"  of which the archive's read (bucket_tallies): {statistics.median(reads):.1f} ms median")
        print(f"  goal 200 ms: {median / 200:.2f}x the goal (below 1 meets it); load average {load:.1f} on 2 cores")
        if by == "day":
            offered = sum(r.offered for r in rows)
    return offered


class Timed(NamedTuple):
    wall_ms: float  # median
    walls: list[float]
    cpu_ms: float  # median CPU time of this process: what the load does not stretch


async def _median_ms(work: Callable[[], Awaitable[object]], rounds: int) -> Timed:
    walls, cpus = [], []
    for _ in range(rounds):
        c0, t0 = time.process_time(), time.perf_counter()
        await work()
        walls.append((time.perf_counter() - t0) * 1000)
        cpus.append((time.process_time() - c0) * 1000)
    return Timed(statistics.median(walls), walls, statistics.median(cpus))


async def time_layers(archive: PostgresArchive, start: float, figures: dict[str, float], rounds: int = 11) -> None:
    """Where a 31-day report's time goes, layer by layer, each timed alone (median of `rounds`):
    PostgreSQL's own execution (EXPLAIN ANALYZE of the query bucket_tallies runs), the fetch,
    the tally rows, the report rows, the JSON encoding, and GET /admin/reports/sla through a
    real app on a real port (client in the same process, reading the body as bytes)."""
    tz = "Europe/Berlin"
    config = Path(tempfile.mkdtemp()) / "tierline.toml"
    config.write_text(f'timezone = "{tz}"\n[queues.queue0]\n')
    settings = load_settings(config, env={"TIERLINE_ADMIN_TOKEN": "bench", "TIERLINE_API_TOKEN": "bench-ivr"})
    services = dataclasses.replace(open_services(settings, ManualClock(start + 31 * DAY)), history=archive)
    server = TestServer(build_app(services, sweeper=False), host="127.0.0.1")
    await server.start_server()
    session = aiohttp.ClientSession(headers={"Authorization": "Bearer bench"})
    try:
        await _layers(archive, session, str(server.make_url("/admin/reports/sla")), start, "day", rounds, figures)
        await _layers(archive, session, str(server.make_url("/admin/reports/sla")), start, "15m", 3, figures)
    finally:
        await session.close()
        await server.close()


async def _layers(
    archive: PostgresArchive,
    session: aiohttp.ClientSession,
    url: str,
    start: float,
    by: reports.By,
    n: int,
    figures: dict[str, float],
) -> None:
    tz = "Europe/Berlin"
    zone = reports.zone_of(tz)
    policy = Policy(timezone=tz)
    end = start + 31 * DAY
    starts, bounds = reports.bucket_bounds(start, end, by, zone)
    days_in = tz if by in WHOLE_DAYS else None
    sql, args = archive.bucket_query(bounds, days_in=days_in)

    async def explain() -> float:
        plan = await archive.pool.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *args)
        return float(json.loads(plan)[0]["Execution Time"])

    inside = statistics.median([await explain() for _ in range(n)])
    fetch = await _median_ms(lambda: archive.pool.fetch(sql, *args), n)
    read = await _median_ms(lambda: archive.bucket_tallies(bounds, days_in=days_in), n)
    tallies = await archive.bucket_tallies(bounds, days_in=days_in)
    rows = await _median_ms(lambda: _now(reports.sla_rows(tallies, starts, by, zone, policy)), n)
    report = await reports.sla_report_of(archive, start, end, by=by, tz=tz, policy=policy)
    encode = await _median_ms(lambda: _now(msgspec.json.encode(report)), n)
    whole = await _median_ms(lambda: reports.sla_report_of(archive, start, end, by=by, tz=tz, policy=policy), n)
    query = {
        "from": datetime.fromtimestamp(start, zone).isoformat(),
        "to": datetime.fromtimestamp(end, zone).isoformat(),
        "by": by,
        "tz": tz,
    }

    async def get() -> int:
        async with session.get(url, params=query) as resp:
            body = await resp.read()
            assert resp.status == 200, body[:300]
            return len(body)

    size = await get()
    http = await _median_ms(get, n)
    load = os.getloadavg()[0]
    print(f"31-day report by {by}, {len(report.rows):,} rows, {size:,} bytes of JSON (medians of {n}; wall / CPU):")
    print(f"  HTTP GET /admin/reports/sla: {http.wall_ms:.1f} ms (all: {_ms(http.walls)}); load average {load:.1f}")
    print(f"    this process's CPU per request (server and client): {http.cpu_ms:.1f} ms")
    print(f"  in process, the whole report: {whole.wall_ms:.1f} / {whole.cpu_ms:.1f} ms")
    print(f"    the archive's read (bucket_tallies): {read.wall_ms:.1f} / {read.cpu_ms:.1f} ms")
    print(f"      PostgreSQL execution (EXPLAIN ANALYZE): {inside:.1f} ms; the fetch alone {fetch.wall_ms:.1f} ms")
    print(f"    the report rows (sla_rows): {rows.wall_ms:.1f} / {rows.cpu_ms:.1f} ms")
    print(f"    JSON encoding (msgspec): {encode.wall_ms:.1f} / {encode.cpu_ms:.1f} ms")
    print(f"  the server's own time, load aside (PostgreSQL execution + CPU): {inside + http.cpu_ms:.1f} ms")
    if days_in is not None:  # the same read without the daily sums, for comparison
        hours = await _median_ms(lambda: archive.bucket_tallies(bounds), n)
        print(f"  the read without daily sums (hourly + quarter-hour tallies): {hours.wall_ms:.1f} ms")
        figures[f"layers_{by}_read_by_hours_ms"] = hours.wall_ms
    layers = {"http": http.wall_ms, "http_cpu": http.cpu_ms, "report": whole.wall_ms, "read": read.wall_ms}
    layers |= {"rows": rows.wall_ms, "rows_cpu": rows.cpu_ms, "pg_execution": inside, "fetch": fetch.wall_ms}
    layers |= {"encode": encode.wall_ms, "read_cpu": read.cpu_ms}
    for name, value in layers.items():
        figures[f"layers_{by}_{name}_ms"] = value
    if by == "day":
        print(f"  goal 200 ms: HTTP {http.wall_ms / 200:.2f}x the goal (below 1 meets it)")


async def _now(value: object) -> object:
    return value


def _ms(times: list[float]) -> str:
    return ", ".join(f"{t:.0f}" for t in times)


async def days_cost(dsn: str, events: list[ev.Event], batch: int) -> float:
    """Ingest with daily sums kept against without, batch by batch into two schemas of one
    database, the order swapped each batch (so the machine's load falls on both alike); prints
    both rates and returns without/with (1.0: the daily sums cost nothing)."""
    with_days = PostgresArchive(dsn, schema="with_days", day_zone="Europe/Berlin")
    without = PostgresArchive(dsn, schema="without_days")
    took = {"with": 0.0, "without": 0.0}
    await with_days.open()
    await without.open()
    try:
        for n, i in enumerate(range(0, len(events), batch)):
            pair = [("with", with_days), ("without", without)]
            for name, archive in pair if n % 2 == 0 else pair[::-1]:
                t0 = time.perf_counter()
                await archive.ingest(events[i : i + batch])
                took[name] += time.perf_counter() - t0
    finally:
        await with_days.close()
        await without.close()
    rate_with, rate_without = len(events) / took["with"], len(events) / took["without"]
    print(f"ingest with daily sums {rate_with:,.0f} events/s, without {rate_without:,.0f} events/s")
    print(f"  without/with: {took['with'] / took['without']:.3f} (1.0: the daily sums cost nothing)")
    return took["with"] / took["without"]


async def admin(dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(dsn + "/postgres")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432", help="admin DSN, no database")
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--budget-s", type=float, default=120.0)
    parser.add_argument("--report-calls", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--queues", type=int, default=10)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--server-calls", type=int, default=0, help="also: this many calls made in PostgreSQL")
    parser.add_argument("--skip-ingest", action="store_true", help="only the --server-calls part")
    parser.add_argument("--keep-db", action="store_true", help="leave the database (to time reports again)")
    parser.add_argument("--time-only", default=None, help="a kept database's name: only time its reports")
    parser.add_argument("--db-name", default=None, help="the database to make (default bench_history_<random>)")
    parser.add_argument("--days-cost", action="store_true", help="only: --events ingested with and without daily sums")
    args = parser.parse_args()
    queues = tuple(f"queue{n}" for n in range(args.queues))
    rng = random.Random(15)
    figures: dict[str, float] = {}

    if args.time_only:
        kept = await open_with_days(f"{args.dsn}/{args.time_only}")
        rows = await kept.pool.fetchval("SELECT count(*) FROM events")
        print(f"{args.time_only}: {rows:,} archived events")
        await time_reports(kept, SERVER_MONTH_START, figures, "server_")
        await time_layers(kept, SERVER_MONTH_START, figures)
        await kept.close()
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
        return
    database = args.db_name or "bench_history_" + uuid.uuid4().hex[:8]
    await admin(args.dsn, f"CREATE DATABASE {database}")
    try:
        if args.days_cost:
            sample = generate(rng, ev.IdSequence(1), args.events // 3, START, 1.0, queues)[0][: args.events]
            figures["days_cost_ratio"] = await days_cost(f"{args.dsn}/{database}", sample, args.batch)
            args.skip_ingest, args.server_calls = True, 0
        pg = PostgresArchive(f"{args.dsn}/{database}", day_zone="Europe/Berlin")  # as serve opens it
        await pg.open()
        if not args.skip_ingest:
            sample = generate(rng, ev.IdSequence(1), args.events // 3, START, 1.0, queues)[0][: args.events]
            figures["pg_events_per_s"] = await ingest_rate(pg, sample, args.batch)
            rate = figures["pg_events_per_s"]
            print(f"PostgreSQL ingest: {rate:,.0f} events/s ({len(sample):,} events, batches of {args.batch})")
            print(f"  goal 20,000/s: {rate / 20_000:.2f}x the goal")
            with tempfile.TemporaryDirectory() as folder:
                lite = SqliteArchive(Path(folder) / "history.db")
                await lite.open()
                figures["sqlite_events_per_s"] = await ingest_rate(lite, sample, args.batch)
                await lite.close()
            print(f"SQLite ingest:     {figures['sqlite_events_per_s']:,.0f} events/s")

            # Fill 31 days for the report: --report-calls spread over them, or as many as the budget allows.
            month_start = START + 7 * DAY
            spacing = 31 * DAY / args.report_calls
            calls, began, epoch, at = 0, time.perf_counter(), 2, month_start
            while calls < args.report_calls and time.perf_counter() - began < args.budget_s:
                chunk, at = generate(rng, ev.IdSequence(epoch), 20_000, at, spacing, queues)
                for i in range(0, len(chunk), args.batch):
                    await pg.ingest(chunk[i : i + args.batch])
                calls, epoch = calls + 20_000, epoch + 1
            figures["report_days_filled"] = min(31.0, (at - month_start) / DAY)
            archived = await pg.count_events()
            figures["report_calls"] = calls
            figures["report_events"] = archived
            took = time.perf_counter() - began
            print(f"archived for the report: {calls:,} calls, {archived:,} events in {took:.0f} s")
            print(f"  over {figures['report_days_filled']:.1f} of the report's 31 days")
            await time_reports(pg, month_start, figures, "")
            t0 = time.perf_counter()
            await reports.call_history(pg, "b2-17")
            figures["timeline_ms"] = (time.perf_counter() - t0) * 1000
            print(f"one call's timeline: {figures['timeline_ms']:.1f} ms")
        await pg.close()
        if args.server_calls:
            big = PostgresArchive(f"{args.dsn}/{database}", schema="server_made", timeout_s=600)  # long setup steps
            await big.open()
            month_start = SERVER_MONTH_START
            took = await fill_server_side(big, args.server_calls, month_start, 31, args.queues)
            await big.close()
            big = await open_with_days(f"{args.dsn}/{database}")  # the fill wrote tallies, not days
            rows = await big.pool.fetchval("SELECT count(*) FROM events")
            size = await big.pool.fetchval(
                "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c"
                " JOIN pg_namespace s ON s.oid = c.relnamespace"
                " WHERE s.nspname = 'server_made' AND c.relkind = 'r'"
            )
            tallies = await big.pool.fetchval("SELECT count(*) FROM interval_tallies")
            figures["server_calls"] = args.server_calls
            print(f"server-made: {args.server_calls:,} calls ({rows:,} archived events, {size}) in {took:.0f} s;")
            print(f"  {tallies:,} tally rows ({args.queues} queues x 3 tiers x 96 intervals x 31 days at most)")
            offered = await time_reports(big, month_start, figures, "server_")
            figures["server_report_offered"] = offered
            print(f"  the daily report's offered total: {offered:,} (calls made: {args.server_calls:,})")
            await time_layers(big, month_start, figures)
            await big.close()
    finally:
        if args.keep_db:
            print(f"kept: {args.dsn}/{database} (schema server_made for --server-calls)")
        else:
            await admin(args.dsn, f"DROP DATABASE {database} WITH (FORCE)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
