"""`tierline archive`: an archiver of its own on a Redis store's event stream.

It joins the same consumer group as the archivers inside `tierline serve` processes (README,
"Call history"), so any number of either share the work; run one where the serving processes
should not carry the archive's load (`--history off` on them). `--once` archives the backlog
and exits (a cron job, a migration). The memory store's events live in its serving process:
that process archives them itself. `--drop-expired` is the retention command (any store):
whole months of raw events older than `--months` (25) go, the tallies stay.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path

from tierline.queue.history.archive import DEFAULT_RETENTION_MONTHS
from tierline.queue.redis_urls import is_redis_url, redacted
from tierline.router.cli.exit_codes import Exit
from tierline.router.cli.serve import configure_logging
from tierline.router.config import DEFAULTS, ConfigError, Settings, history_target, load_settings

log = logging.getLogger("tierline")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser("archive", help="archive a Redis store's call events (a consumer of its own)")
    run.add_argument("--config", type=Path, default=None, help="TOML settings file (env TIERLINE_CONFIG)")
    run.add_argument("--store", default=None, help="redis://host:port/db or redis+cluster://… (env TIERLINE_STORE)")
    run.add_argument(
        "--history",
        default=None,
        help="sqlite:///path or postgresql://… (env TIERLINE_HISTORY); required: a Redis store has none by default",
    )
    run.add_argument(
        "--batch", type=int, default=None, help=f"events per batch (default {DEFAULTS.server.history_batch})"
    )
    run.add_argument("--once", action="store_true", help="archive what is waiting, then exit")
    run.add_argument(
        "--drop-expired",
        action="store_true",
        help="retention instead: drop the archive's raw events of whole months older than --months, then exit",
    )
    run.add_argument(
        "--months",
        type=int,
        default=DEFAULT_RETENTION_MONTHS,
        help=f"with --drop-expired: full months kept besides the current one (default {DEFAULT_RETENTION_MONTHS})",
    )
    run.set_defaults(func=archive)


def archive(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(
            args.config,
            overrides={"store": args.store, "history": args.history, "history_batch": args.batch},
        )
    except ConfigError as exc:
        return _fail(Exit.USAGE, str(exc))
    configure_logging(settings.server.log_format, settings.server.log_level)
    server = settings.server
    if args.drop_expired:
        if history_target(server) is None:
            return _fail(Exit.USAGE, "no archive named: give --history sqlite:///path or --history postgresql://…")
        if args.months < 1:
            return _fail(Exit.USAGE, f"--months is at least 1, not {args.months}")
        return asyncio.run(_drop_expired(settings, args.months))
    if not is_redis_url(server.store):
        return _fail(
            Exit.USAGE, "archive needs a Redis store (--store redis://…): the memory store's serve archives its own"
        )
    if history_target(server) is None:
        return _fail(Exit.USAGE, "no archive named: give --history sqlite:///path or --history postgresql://…")
    return asyncio.run(_archive(settings, args.once))


async def _drop_expired(settings: Settings, months: int) -> int:
    """Retention: whole months of raw events go (PostgreSQL drops their partitions); the
    15-minute tallies stay, so reports over those months still answer (timelines do not)."""
    from tierline.router.app import open_history

    archive = open_history(settings)
    assert archive is not None
    try:
        await archive.open()
    except Exception as exc:
        return _fail(Exit.UNREACHABLE, f"cannot open the history archive: {exc}")
    try:
        dropped = await archive.drop_expired(time.time(), months)
    finally:
        await archive.close()
    print(f"dropped {len(dropped)} month(s) of raw events" + (f": {', '.join(dropped)}" if dropped else ""))
    return Exit.OK


async def _archive(settings: Settings, once: bool) -> int:
    from tierline.queue.errors import Unavailable
    from tierline.router.app import open_archiver

    archiver = open_archiver(settings)
    where = redacted(settings.server.store)
    try:
        try:
            await archiver.archive.open()
        except Exception as exc:
            return _fail(Exit.UNREACHABLE, f"cannot open the history archive: {exc}")
        if once:
            try:
                carried = await archiver.drain()
            except Unavailable as exc:
                return _fail(Exit.UNREACHABLE, f"cannot read the event stream of {where}: {exc}")
            figures = archiver.figures
            print(
                f"archived {figures.archived} new event(s) of {carried} read; "
                f"{figures.lag} waiting, {figures.dropped} dropped past the cap"
            )
            return Exit.OK
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.info("archiving the events of %s", where)
        await archiver.run(stop)
        log.info("archiver stopped: %d event(s) archived", archiver.figures.archived)
        return Exit.OK
    finally:
        with contextlib.suppress(Exception):
            await archiver.close()


def _fail(code: Exit, message: object) -> int:
    print(f"tierline: {message}", file=sys.stderr)
    return code
