"""`tierline reload-tiers FILE --store redis://…` and `--rollback`: the nightly job, straight to Redis.

Talks to the shared store directly instead of through a running service, so a file of
millions of rows never crosses HTTP; the swap is the store's own (atomic, versioned).
Shows a progress bar on a terminal and reports rows per second when done.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tierline.queue.errors import EngineError
from tierline.queue.redis_link import RedisLink, connect, is_redis_url
from tierline.tiers.parse import BadTierFile, TierFileFormat
from tierline.tiers.redis_store import RedisTierStore

TIMEOUT_S = 5.0  # a batch job, not a caller waiting: generous per-command time


def reload_into_store(args: argparse.Namespace, fmt: TierFileFormat | None) -> int:
    if not is_redis_url(args.store):
        print(f"tierline: --store must be a redis:// or redis+cluster:// URL, not {args.store!r}", file=sys.stderr)
        return 2
    return asyncio.run(_run(args, fmt))


async def _run(args: argparse.Namespace, fmt: TierFileFormat | None) -> int:
    link = RedisLink(connect(args.store, TIMEOUT_S), timeout_s=TIMEOUT_S)
    store = RedisTierStore(link, args.namespace, max_reject_ratio=args.max_reject_ratio, lease_s=args.lock_lease_s)
    console = Console(stderr=True)
    try:
        if args.rollback:
            version = await store.rollback()
            if version is None:
                print("tierline: no previous tier table is kept; nothing rolled back", file=sys.stderr)
                return 1
            print(f"rolled back: version {version}, {await store.count()} callers")
            return 0
        assert fmt is not None
        started = time.perf_counter()
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        ) as bar:
            task = bar.add_task(f"reading {args.file.name}", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, description="writing", completed=done, total=total)

            result = await store.reload_file(Path(args.file), fmt, progress)
        elapsed = time.perf_counter() - started
    except (BadTierFile, EngineError) as exc:
        print(f"tierline: reload refused: {exc}", file=sys.stderr)
        return 1
    finally:
        await link.close()
    rate = result.loaded / elapsed if elapsed > 0 else 0.0
    print(
        f"version {result.version}: {result.loaded} loaded, {result.rejected_count} rejected, "
        f"{'swapped' if result.swapped else 'NOT swapped (the live table is unchanged)'} "
        f"in {elapsed:.1f} s ({rate:,.0f} rows/s)"
    )
    for rejection in result.rejected[:20]:
        print(f"  line {rejection.line}: {rejection.reason}")
    if result.rejected_count > 20:
        print(f"  ... and {result.rejected_count - 20} more")
    return 0 if result.swapped else 1
