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
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/ when run as a script

from tests.history.traffic import AGENTS, TIERS, call_events
from tierline.queue.history import events as ev
from tierline.queue.history import reports
from tierline.queue.history.archive import Archive
from tierline.queue.history.postgres_archive import PostgresArchive
from tierline.queue.history.sqlite_archive import SqliteArchive
from tierline.queue.policy import Policy

START = 1_790_000_000.0  # 2026-09-21
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
    args = parser.parse_args()
    queues = tuple(f"queue{n}" for n in range(args.queues))
    rng = random.Random(15)
    figures: dict[str, float] = {}

    database = "bench_history_" + uuid.uuid4().hex[:8]
    await admin(args.dsn, f"CREATE DATABASE {database}")
    try:
        pg = PostgresArchive(f"{args.dsn}/{database}")
        await pg.open()
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
        policy = Policy(timezone="Europe/Berlin")
        for by in ("day", "15m"):
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                rows = await reports.sla_report(
                    pg, month_start, month_start + 31 * DAY, by=by, tz="Europe/Berlin", policy=policy
                )
                times.append((time.perf_counter() - t0) * 1000)
            figures[f"report_{by}_ms"] = statistics.median(times)
            median = statistics.median(times)
            print(f"31-day report by {by}: {median:.1f} ms median of 5 ({len(rows):,} rows)")
            print(f"  goal 200 ms: {median / 200:.2f}x the goal (below 1 meets it)")
        t0 = time.perf_counter()
        await reports.call_history(pg, "b2-17")
        figures["timeline_ms"] = (time.perf_counter() - t0) * 1000
        print(f"one call's timeline: {figures['timeline_ms']:.1f} ms")
        await pg.close()
    finally:
        await admin(args.dsn, f"DROP DATABASE {database} WITH (FORCE)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
