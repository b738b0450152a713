"""`tierline grade`: grade customers from the CRM's value data, print the migration report, and
write a tier file (`--output`) or apply it through the existing reload (`--apply`).

Exit codes (`exit_codes.Exit`): 0 done (or `--dry-run`), 1 refused (bad rows over the ratio,
the guard without `--force`, or the reload refused), 2 usage or an unreadable file or config,
3 the service or store unreachable. A refusal prints the report and changes nothing.

With a target (`--apply`, or `--store`/`--url` given) the run reads two things from the live
store, directly (`--store`) or through the service's admin API (`--url`): the live table to
compare with when there is no `--previous`, and the hand edits (`PUT /admin/tiers/{caller}`
since a run last reset them), whose tiers it keeps unless `--reset-edits`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
from pathlib import Path

import aiohttp
import msgspec
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from tierline.queue.errors import EngineError, Unavailable
from tierline.queue.redis_link import is_redis_url
from tierline.router.cli import reload
from tierline.router.cli.admin_client import AdminRefused, AdminUnreachable
from tierline.router.cli.exit_codes import Exit
from tierline.router.config import DEFAULT_URL, DEFAULTS
from tierline.router.grading_api import TABLE_HEADER, EditListView, EditsClearedView
from tierline.tiers.grading.config import GradingConfigError, load_grading
from tierline.tiers.grading.inputs import BadInput, MissingEngine
from tierline.tiers.grading.run import GradingReport, GradingRun, run_grading
from tierline.tiers.model import TIERS, Tier, parse_tier
from tierline.tiers.redis_store import LEASE_S

SHOWN_PROBLEMS = 20


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub = commands.add_parser("grade", help="grade customers (RFM, scorecard, value share) into tiers")
    sub.add_argument(
        "--config", type=Path, default=None, help="TOML config with a [grading] table (env TIERLINE_CONFIG)"
    )
    sub.add_argument("--aggregates", type=Path, default=None, help="customer aggregates (CSV, JSON Lines or Parquet)")
    sub.add_argument(
        "--transactions", type=Path, default=None, help="raw transactions: customer_id, at, amount[, profit]"
    )
    sub.add_argument(
        "--customers", type=Path, default=None, help="with --transactions: customer_id, caller[, CRM columns]"
    )
    sub.add_argument("--as-of", type=dt.date.fromisoformat, default=None, help="grading date (default: yesterday)")
    sub.add_argument("--previous", type=Path, default=None, help="the previous run's tier file, to compare and guard")
    sub.add_argument("--output", type=Path, default=None, help="write the tier file here")
    sub.add_argument("--apply", action="store_true", help="reload the tiers (through --store or --url)")
    sub.add_argument("--dry-run", action="store_true", help="print the report; write and apply nothing")
    sub.add_argument("--force", action="store_true", help="apply even when the guard would refuse")
    sub.add_argument("--report", type=Path, default=None, help="also write the report here as JSON")
    sub.add_argument("--store", default=None, help="--apply straight into this Redis (redis://…), not via --url")
    sub.add_argument("--url", default=None, help=f"--apply through this running service (default {DEFAULT_URL})")
    sub.add_argument(
        "--reset-edits",
        action="store_true",
        help="drop the hand edits (PUT /admin/tiers/…) since the last run: their callers take this run's tier",
    )
    sub.add_argument("--namespace", default=DEFAULTS.server.redis_namespace, help="--store: key namespace")
    sub.add_argument("--admin-token", default=None, help="bearer token for /admin (env TIERLINE_ADMIN_TOKEN)")
    sub.set_defaults(func=grade)


def grade(args: argparse.Namespace) -> int:
    if args.config is None:
        return _fail(Exit.USAGE, "give --config FILE (or TIERLINE_CONFIG) with a [grading] table")
    if not (args.output or args.apply or args.dry_run):
        return _fail(Exit.USAGE, "give --output FILE, --apply or --dry-run")
    try:
        settings = load_grading(Path(args.config).read_bytes(), str(args.config))
    except OSError as exc:
        return _fail(Exit.USAGE, f"cannot read config {args.config}: {exc}")
    except GradingConfigError as exc:
        return _fail(Exit.USAGE, str(exc))
    if args.reset_edits and not args.apply:
        return _fail(Exit.USAGE, "--reset-edits drops the hand edits when a run is applied: give --apply")
    if args.store and not is_redis_url(args.store):
        return _fail(Exit.USAGE, f"--store must be a redis:// or redis+cluster:// URL, not {args.store!r}")
    live: dict[str, Tier] | None = None
    edits: dict[str, Tier] = {}
    if args.apply or args.store or args.url:
        # The table this run would replace (no --previous), and the hand edits it keeps.
        try:
            live, edits = asyncio.run(_read_live(args, want_table=args.previous is None))
        except (EngineError, Unavailable, aiohttp.ClientError, AdminUnreachable) as exc:
            return _fail(Exit.UNREACHABLE, f"cannot read the live tier table or its edits: {exc}")
        except AdminRefused as exc:
            return _fail(Exit.REFUSED, f"cannot read the live tier table or its edits {exc}")
    console = Console(stderr=True)
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        ) as bar:
            task = bar.add_task("starting", total=None)
            result = run_grading(
                settings,
                aggregates=args.aggregates,
                transactions=args.transactions,
                customers=args.customers,
                previous=args.previous,
                live=live or None,
                edits=None if args.reset_edits else edits,
                as_of=args.as_of,
                step=lambda what: bar.update(task, description=what),
            )
    except (BadInput, MissingEngine) as exc:
        return _fail(Exit.USAGE, str(exc))
    if args.reset_edits:
        result.report.edits_reset = len(edits)
    try:
        return _finish(args, result)
    finally:
        result.close()


def _finish(args: argparse.Namespace, result: GradingRun) -> int:
    report = result.report
    if args.report:
        args.report.write_bytes(msgspec.json.format(msgspec.json.encode(report)))
    print_report(report)
    if report.refused:
        return _fail(Exit.REFUSED, "nothing applied: " + "; ".join(report.refused))
    if args.apply and report.migration is None and not args.force:
        return _fail(
            Exit.REFUSED,
            "nothing applied: no previous run to compare with (and no live table: --url, or an empty store);"
            " give --previous (the tier file the last run applied) or, for a first run, --force",
        )
    if report.guard and not args.force:
        return _fail(Exit.REFUSED, "nothing applied, the guard refuses: " + "; ".join(report.guard))
    if args.dry_run:
        print("dry run: nothing written or applied")
        return Exit.OK
    if args.output:
        written = result.write_tier_file(args.output)
        print(f"wrote {written} callers to {args.output}")
    if not args.apply:
        return Exit.OK
    with tempfile.TemporaryDirectory(prefix="tierline-grade-") as scratch:
        path = args.output or Path(scratch) / "tiers.csv"
        if not args.output:
            result.write_tier_file(path)
        reload_args = argparse.Namespace(
            file=path,
            store=args.store,
            namespace=args.namespace,
            rollback=False,
            max_reject_ratio=report.max_reject_ratio,
            lock_lease_s=LEASE_S,
            url=_url(args),
            format="csv",
            admin_token=args.admin_token,
        )
        code: int = reload.reload_tiers(reload_args)
    if code != Exit.OK:
        return code
    kept = asyncio.run(_keep_report(args, report))
    if args.reset_edits:
        cleared = asyncio.run(_clear_edits(args))
        return kept if kept != Exit.OK else cleared
    return kept


def _url(args: argparse.Namespace) -> str:
    return str(args.url or DEFAULT_URL).rstrip("/")


def _headers(args: argparse.Namespace) -> dict[str, str]:
    return {"Authorization": f"Bearer {args.admin_token}"} if args.admin_token else {}


async def _read_live(args: argparse.Namespace, want_table: bool) -> tuple[dict[str, Tier] | None, dict[str, Tier]]:
    """(the live caller -> tier table if wanted, the hand edits), from the store or the service."""
    if args.store:
        link, store = reload.direct_tier_store(args.store, args.namespace)
        try:
            return (await store.tier_table() if want_table else None), await store.edits()
        finally:
            await link.close()
    url = _url(args)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
    async with aiohttp.ClientSession(timeout=timeout, headers=_headers(args)) as session:
        async with session.get(f"{url}/admin/grading/edits") as resp:
            body = await resp.read()
            if resp.status != 200:
                raise AdminRefused(resp.status, _message(body))
        try:
            listed = msgspec.json.decode(body, type=EditListView)
        except msgspec.ValidationError as exc:
            raise AdminRefused(resp.status, f"not a list of hand edits: {exc}") from None
        edits = {edit.caller: edit.tier for edit in listed.edits}
        return (await _table_through(session, url) if want_table else None), edits


async def _table_through(session: aiohttp.ClientSession, url: str) -> dict[str, Tier]:
    """GET /admin/grading/table, read line by line as it streams (a body cut short raises
    aiohttp.ClientPayloadError: the table is never taken for whole when it is not)."""
    table: dict[str, Tier] = {}
    async with session.get(f"{url}/admin/grading/table") as resp:
        if resp.status != 200:
            raise AdminRefused(resp.status, _message(await resp.read()))
        header = (await resp.content.readline()).strip()
        if header != TABLE_HEADER.strip():
            raise AdminRefused(resp.status, f"not a tier table (first line {header[:80]!r})")
        async for line in resp.content:
            caller, _, name = line.decode().rstrip("\n").partition(",")
            tier = parse_tier(name)
            if tier is None:
                raise AdminRefused(resp.status, f"the live table has a row with no tier: {line[:80]!r}")
            table[caller] = tier
    return table


def _message(body: bytes) -> str:
    try:
        return str(msgspec.json.decode(body)["error"]["message"])
    except (msgspec.DecodeError, KeyError, TypeError):
        return body.decode(errors="replace")[:200]


async def _clear_edits(args: argparse.Namespace) -> int:
    """After a `--reset-edits` run swapped in: the hand edits it overrode are forgotten."""
    if args.store:
        link, store = reload.direct_tier_store(args.store, args.namespace)
        try:
            cleared = await store.clear_edits()
        except (EngineError, Unavailable) as exc:
            return _fail(
                Exit.UNREACHABLE,
                f"the tiers are applied, but the hand edits could not be reset (run again with --reset-edits): {exc}",
            )
        finally:
            await link.close()
    else:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60), headers=_headers(args)) as session,
                session.delete(f"{_url(args)}/admin/grading/edits") as resp,
            ):
                body = await resp.read()
        except aiohttp.ClientError as exc:
            return _fail(
                Exit.UNREACHABLE,
                f"the tiers are applied, but the hand edits could not be reset (run again with --reset-edits): {exc}",
            )
        if resp.status != 200:
            return _fail(
                Exit.REFUSED,
                f"the tiers are applied, but resetting the hand edits was refused ({resp.status}): " + _message(body),
            )
        cleared = msgspec.json.decode(body, type=EditsClearedView).cleared
    print(f"hand edit list emptied: {cleared}")
    return Exit.OK


async def _keep_report(args: argparse.Namespace, report: GradingReport) -> int:
    """The applied run's report into the store, for GET /admin/grading and the dashboard."""
    body = msgspec.json.encode(report)
    if args.store:
        link, store = reload.direct_tier_store(args.store, args.namespace)
        try:
            await store.save_grading(body)
        except (EngineError, Unavailable) as exc:
            return _fail(Exit.UNREACHABLE, f"the tiers are applied, but the report could not be kept: {exc}")
        finally:
            await link.close()
        return Exit.OK
    headers = {"Content-Type": "application/json"}
    if args.admin_token:
        headers["Authorization"] = f"Bearer {args.admin_token}"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
            session.put(f"{_url(args)}/admin/grading", data=body, headers=headers) as resp,
        ):
            answer = await resp.read()
    except aiohttp.ClientError as exc:
        return _fail(Exit.UNREACHABLE, f"the tiers are applied, but the report could not be kept: {exc}")
    if resp.status != 204:
        return _fail(Exit.REFUSED, f"the tiers are applied, but the report was refused ({resp.status}): {answer!r}")
    return Exit.OK


def _fail(code: Exit, message: str) -> int:
    print(f"tierline: {message}", file=sys.stderr)
    return code


def print_report(report: GradingReport) -> None:
    """The report for a person at a terminal; `--report` keeps every figure as JSON."""
    out = print
    out(f"grading as of {report.as_of} ({report.timezone}): {report.customers} customers, {report.callers} numbers")
    out(f"rows read {report.data_rows}, rejected {report.rejected_rows}, problems {report.problem_count}")
    for problem in report.problems[:SHOWN_PROBLEMS]:
        out(f"  {problem.file}:{problem.line}: {problem.reason}")
    if report.problem_count > SHOWN_PROBLEMS:
        out(f"  ... and {report.problem_count - SHOWN_PROBLEMS} more")
    for conflict in report.conflicts[:SHOWN_PROBLEMS]:
        out(f"  {conflict}")
    if report.rfm is not None:
        out(f"RFM: {report.rfm.graded} customers with purchases, high from {report.rfm.high_from}")
        for name, cutoffs in report.rfm.cutoffs.items():
            spans = ", ".join(f"{c.score}: {c.low:g}..{c.high:g} ({c.customers})" for c in cutoffs)
            out(f"  {name} cut-offs {spans}")
        for note in report.rfm.notes:
            out(f"  note: {note}")
        out("  segments " + ", ".join(f"{name} {count}" for name, count in sorted(report.rfm.segments.items())))
    if report.scorecard is not None:
        out("scorecard grades " + ", ".join(f"{k} {v}" for k, v in report.scorecard.grades.items()))
        for name, count in report.scorecard.no_band.items():
            out(f"  {name}: {count} customers with no band (0 points)")
    if report.value_share is not None:
        share = report.value_share
        out(
            f"value share by {share.by} (total {share.total:,.2f}): "
            + ", ".join(f"{k} {share.classes[k]} ({share.class_share[k]:.1%})" for k in share.classes)
        )
    out("tiers " + ", ".join(f"{tier} {count}" for tier, count in report.tiers.items()))
    if report.edits:
        overruled = [edit for edit in report.edits if not edit.kept]
        out(
            f"hand edits kept: {report.edits_kept} (after the blacklist flag, before the rules)"
            + (f", overruled by the blacklist flag: {len(overruled)}" if overruled else "")
        )
        for edit in report.edits[:SHOWN_PROBLEMS]:
            graded = edit.graded or "not graded"
            out(f"  edit: {edit.caller} {edit.edited} ({'kept' if edit.kept else 'overruled'}; the run: {graded})")
    if report.edits_reset:
        out(f"hand edits reset: {report.edits_reset} (their callers take this run's tier)")
    out("rules " + ", ".join(f"{rule!r} {count}" for rule, count in report.rules.items()))
    moved = report.migration
    if moved is None:
        out("no previous run given: no migration report")
        return
    out(
        f"migration: {moved.common} numbers in both, {moved.changed} change tier ({moved.change_share:.1%}),"
        f" {moved.added} new, {moved.removed} gone"
    )
    out("    from \\ to " + " ".join(f"{tier:>11}" for tier in TIERS))
    for tier in TIERS:
        out(f"  {tier:>11} " + " ".join(f"{moved.matrix[tier][to]:>11}" for to in TIERS))
    out("  shares   " + ", ".join(f"{t} {_share(moved.before, t)} -> {_share(moved.after, t)}" for t in TIERS))
    for mover in moved.movers:
        out(f"  moves: {mover.caller} {mover.before} -> {mover.after}")
    for name, value in moved.psi.items():
        out(f"  PSI {name} {value:.3f}")
    for reason in report.guard:
        out(f"  guard: {reason}")


def _share(sizes: dict[str, int], tier: str) -> str:
    total = sum(sizes.values())
    return f"{sizes[tier] / total:.1%}" if total else "-"
