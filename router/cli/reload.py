"""`tierline reload-tiers`: replace the tier table from a CSV or JSON Lines file.

Through a running service (`--url`, the file is POSTed to /admin/tiers/reload), or straight
into the shared store (`--store redis://…`, also `--rollback`): the nightly job, so a file of
millions of rows never crosses HTTP; the swap is the store's own (atomic, versioned). Straight
to the store it shows a progress bar on a terminal and reports rows per second when done.
A file whose bad rows are too many is not swapped: exit 1, the live table unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import aiohttp
import msgspec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tierline.queue.errors import EngineError, Unavailable
from tierline.queue.redis_link import RedisLink, connect, is_redis_url
from tierline.queue.redis_urls import redacted
from tierline.router.cli.exit_codes import Exit
from tierline.router.config import DEFAULT_URL, DEFAULTS
from tierline.tiers.parse import BadTierFile, TierFileFormat
from tierline.tiers.redis_store import LEASE_S, RedisTierStore
from tierline.tiers.reload import DEFAULT_MAX_REJECT_RATIO

TIMEOUT_S = 5.0  # a batch job, not a caller waiting: generous per-command time
SHOWN_REJECTIONS = 20


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    reload = commands.add_parser("reload-tiers", help="replace the tier table from a CSV or JSON Lines file")
    reload.add_argument("file", type=Path, nargs="?", help="CSV or JSON Lines (not needed with --rollback)")
    reload.add_argument(
        "--store", default=None, help="write straight into this Redis (redis://… or redis+cluster://…), not via --url"
    )
    reload.add_argument(
        "--namespace",
        default=DEFAULTS.server.redis_namespace,
        help="the store's key namespace (default %(default)s)",
    )
    reload.add_argument("--rollback", action="store_true", help="make the previous table live again (--store only)")
    reload.add_argument(
        "--max-reject-ratio",
        type=float,
        default=DEFAULTS.reload_max_reject_ratio,
        help="refuse a file with more bad rows (default %(default)s)",
    )
    reload.add_argument(
        "--lock-lease-s",
        type=float,
        default=LEASE_S,
        help="--store: how long the reload lock outlives a reload that was killed (renewed while it runs; "
        "default %(default)s)",
    )
    reload.add_argument("--url", default=DEFAULT_URL, help="the running service (default %(default)s)")
    reload.add_argument("--format", choices=("csv", "ndjson"), default=None, help="default: from the file name")
    reload.add_argument("--admin-token", default=None, help="bearer token for /admin (env TIERLINE_ADMIN_TOKEN)")
    reload.set_defaults(func=reload_tiers)


def reload_tiers(args: argparse.Namespace) -> int:
    path: Path = args.file
    if args.rollback:
        if not args.store:
            return _fail(Exit.USAGE, "--rollback works on a shared store: give --store redis://…")
        return _into_store(args, None)
    if path is None or not path.is_file():
        return _fail(Exit.USAGE, f"no such file {path}")
    fmt: TierFileFormat = args.format or ("csv" if path.suffix.lower() == ".csv" else "ndjson")
    if args.store:
        return _into_store(args, fmt)
    content_type = "text/csv" if fmt == "csv" else "application/x-ndjson"
    return asyncio.run(_post(args.url.rstrip("/"), path, content_type, args.admin_token))


def _fail(code: Exit, message: str) -> int:
    print(f"tierline: {message}", file=sys.stderr)
    return code


# --- through a running service ----------------------------------------------------------------


async def _post(url: str, path: Path, content_type: str, token: str | None) -> int:
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        with path.open("rb") as body:
            try:
                async with session.post(f"{url}/admin/tiers/reload", data=body, headers=headers) as resp:
                    payload = await resp.read()
            except aiohttp.ClientError as exc:
                return _fail(Exit.UNREACHABLE, f"cannot reach {url}: {exc}")
    if resp.status != 200:
        return _fail(Exit.REFUSED, f"reload refused ({resp.status}): {payload.decode(errors='replace')}")
    result = msgspec.json.decode(payload)
    print(
        f"version {result['version']}: {result['loaded']} loaded, {result['rejected_count']} rejected, "
        f"{'swapped' if result['swapped'] else 'NOT swapped (the live table is unchanged)'}"
    )
    for rejection in result["rejected"][:SHOWN_REJECTIONS]:
        print(f"  line {rejection['line']}: {rejection['reason']}")
    if result["rejected_count"] > SHOWN_REJECTIONS:
        print(f"  ... and {result['rejected_count'] - SHOWN_REJECTIONS} more")
    return Exit.OK if result["swapped"] else Exit.REFUSED


# --- straight into the shared store -----------------------------------------------------------


def direct_tier_store(
    url: str, namespace: str, max_reject_ratio: float = DEFAULT_MAX_REJECT_RATIO, lease_s: float = LEASE_S
) -> tuple[RedisLink, RedisTierStore]:
    """The shared tier store a store-direct command writes (`reload-tiers --store`, `grade
    --apply --store`), on a link of its own that the caller closes: the one place the CLIs open it."""
    link = RedisLink(connect(url, TIMEOUT_S), timeout_s=TIMEOUT_S)
    return link, RedisTierStore(link, namespace, max_reject_ratio=max_reject_ratio, lease_s=lease_s)


def _into_store(args: argparse.Namespace, fmt: TierFileFormat | None) -> int:
    if not is_redis_url(args.store):
        return _fail(Exit.USAGE, f"--store must be a redis:// or redis+cluster:// URL, not {args.store!r}")
    return asyncio.run(_run(args, fmt))


async def _run(args: argparse.Namespace, fmt: TierFileFormat | None) -> int:
    link, store = direct_tier_store(
        args.store, args.namespace, max_reject_ratio=args.max_reject_ratio, lease_s=args.lock_lease_s
    )
    console = Console(stderr=True)
    try:
        if args.rollback:
            version = await store.rollback()
            if version is None:
                return _fail(Exit.REFUSED, "no previous tier table is kept; nothing rolled back")
            print(f"rolled back: version {version}, {await store.count()} callers")
            return Exit.OK
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
    except Unavailable as exc:
        return _fail(Exit.UNREACHABLE, f"cannot reach {redacted(args.store)}: {exc}")
    except (BadTierFile, EngineError) as exc:
        return _fail(Exit.REFUSED, f"reload refused: {exc}")
    finally:
        await link.close()
    rate = result.loaded / elapsed if elapsed > 0 else 0.0
    print(
        f"version {result.version}: {result.loaded} loaded, {result.rejected_count} rejected, "
        f"{'swapped' if result.swapped else 'NOT swapped (the live table is unchanged)'} "
        f"in {elapsed:.1f} s ({rate:,.0f} rows/s)"
    )
    for rejection in result.rejected[:SHOWN_REJECTIONS]:
        print(f"  line {rejection.line}: {rejection.reason}")
    if result.rejected_count > SHOWN_REJECTIONS:
        print(f"  ... and {result.rejected_count - SHOWN_REJECTIONS} more")
    return Exit.OK if result.swapped else Exit.REFUSED
