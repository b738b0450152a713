"""`tierline simulate`: a what-if day run here, in this process, through Tierline's own engine
(admin/simulation/): arrivals and a staffing plan from CSV files, the policy from `--config`
with the changes to try on top. Nothing is sent to a running service.

Exit codes (`exit_codes.Exit`): 0 with figures, 2 for bad arguments or input (the error code
and message are printed, as the API's 422 would say them).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import msgspec
from rich.console import Console
from rich.table import Table

from tierline.admin.i18n import Words
from tierline.admin.simulation import scenario as sc
from tierline.admin.simulation.curves import day_bounds
from tierline.admin.simulation.simulate import simulate
from tierline.admin.simulation.summary import Estimate, Outcome
from tierline.queue.policy import TierPolicy
from tierline.router.cli.exit_codes import Exit
from tierline.router.cli.staffing_words import formula_words, seconds
from tierline.router.config import ConfigError, env_language, load_settings
from tierline.tiers.model import Tier, parse_tier


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub = commands.add_parser("simulate", help="what-if: run a day through Tierline's own rules (local, offline)")
    sub.add_argument("--arrivals", type=Path, required=True, help="CSV start,<tier>...: expected calls per 15 min")
    sub.add_argument("--staffing", type=Path, required=True, help="CSV start,end,agents (no gaps, no overlaps)")
    sub.add_argument("--aht-s", type=float, required=True, help="mean handle time (exponential)")
    sub.add_argument(
        "--patience-s", type=float, default=None, help="mean patience (exponential; default: none hang up)"
    )
    sub.add_argument("--callback-handle-s", type=float, default=None, help="mean callback time (default: --aht-s)")
    sub.add_argument("--callback-reach", type=float, default=1.0, help="share of callback attempts that reach")
    sub.add_argument("--date", type=date.fromisoformat, default=None, help="the day the CSV times fall on")
    sub.add_argument("--config", type=Path, default=None, help="TOML settings the policy starts from")
    sub.add_argument("--threshold-s", action="append", default=[], metavar="TIER=S", help="try a threshold")
    sub.add_argument("--target", action="append", default=[], metavar="TIER=SHARE", help="try a target")
    sub.add_argument("--overflow-after-s", action="append", default=[], metavar="TIER=S", help="0 = never")
    sub.add_argument("--max-waiting", type=int, default=None, help="try a queue bound (0 = unbounded)")
    sub.add_argument("--aging-s", type=float, default=None, help="try mid/standard aging (0 = off)")
    sub.add_argument("--seed", type=int, default=1)
    sub.add_argument("--replications", type=int, default=5)
    sub.add_argument("--warmup-intervals", type=int, default=0, help="intervals left out of the totals")
    sub.add_argument("--json", action="store_true", help="print the figures as JSON")
    sub.set_defaults(func=run)


def _per_tier(pairs: list[str], what: str) -> dict[Tier, float]:
    out: dict[Tier, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        tier = parse_tier(name)
        if not sep or tier is None:
            raise sc.ScenarioError("invalid_field", f"{what} takes TIER=VALUE, not {pair!r}")
        try:
            out[tier] = float(value)
        except ValueError:
            raise sc.ScenarioError("invalid_field", f"{what} {pair!r}: not a number") from None
    return out


def build(args: argparse.Namespace) -> sc.Scenario:
    """The checked scenario the arguments describe (ScenarioError, ConfigError or OSError if not)."""
    settings = load_settings(args.config, env={})
    day = args.date or datetime.now(UTC).date()
    start = day_bounds(day, settings.timezone)[0]
    curve = sc.parse_arrivals(args.arrivals.read_text(), start)
    shifts = sc.parse_staffing(args.staffing.read_text(), start)
    thresholds = _per_tier(args.threshold_s, "--threshold-s")
    targets = _per_tier(args.target, "--target")
    overflows = _per_tier(args.overflow_after_s, "--overflow-after-s")
    tiers = {
        tier: TierPolicy(
            sla_threshold_s=thresholds.get(tier), sla_target=targets.get(tier), overflow_after_s=overflows.get(tier)
        )
        for tier in {*thresholds, *targets, *overflows}
    }
    try:
        change = msgspec.convert(
            {"tiers": tiers, "max_waiting": args.max_waiting, "aging_s": args.aging_s},
            sc.PolicyTry,
            from_attributes=True,
        )
    except msgspec.ValidationError as exc:
        raise sc.ScenarioError("invalid_policy", f"the policy to try is not valid ({exc})") from None
    return sc.scenario(
        curve,
        shifts,
        sc.try_policy(settings, change),
        aht_s=args.aht_s,
        patience_s=args.patience_s,
        callback_handle_s=args.callback_handle_s,
        callback_reach=args.callback_reach,
        seed=args.seed,
        replications=args.replications,
        warmup_intervals=args.warmup_intervals,
    )


def run(args: argparse.Namespace) -> int:
    try:
        scenario = build(args)
    except sc.ScenarioError as exc:
        print(f"tierline: simulate refused ({exc.code}): {exc.message}", file=sys.stderr)
        return Exit.USAGE
    except (ConfigError, OSError) as exc:
        print(f"tierline: {exc}", file=sys.stderr)
        return Exit.USAGE
    outcome = simulate(scenario)
    if args.json:
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(outcome).decode()) + "\n")
    else:
        render(outcome, Console(width=140, highlight=False, markup=False))
    return Exit.OK


def _pct(e: Estimate, w: Words) -> str:
    if e.mean is None:
        return "-"
    if e.low is None or e.high is None:
        return w.percent(e.mean)
    return f"{w.percent(e.mean)} ±{w.number((e.high - e.low) * 50, 1)}"


def _num(e: Estimate, w: Words, digits: int = 1) -> str:
    return "-" if e.mean is None else w.number(e.mean, digits)


def render(outcome: Outcome, console: Console, words: Words | None = None) -> None:
    """Per interval: agents and each tier's service level; then each tier over the period; in
    `words`' language (by default LANG's: admin/i18n.py)."""
    w = words or Words(env_language())
    console.print(
        w.t(
            "cli.sim_heading",
            replications=w.number(outcome.replications),
            seed=outcome.seed,
            calls=w.number(outcome.calls_simulated),
            formula_text=formula_words(outcome.formula, w),
            formula=outcome.formula,
        )
    )
    tiers = [c.tier for c in outcome.totals if c.arrived.mean]
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    table.add_column(w.t("cli.col_interval"))
    table.add_column(w.t("cli.col_agents"), justify="right")
    for tier in tiers:
        table.add_column(w.t("cli.col_tier_sl", tier=w.t("tier." + tier)), justify="right")
    for key in ("dash.col_abandoned", "dash.col_overflowed", "dash.col_callbacks"):
        table.add_column(w.t(key), justify="right")
    for row in outcome.intervals:
        cells = {c.tier: c for c in row.tiers}
        table.add_row(
            row.time,
            w.number(row.agents),
            *(_pct(cells[t].service_level, w) for t in tiers),
            w.number(sum(c.abandoned.mean or 0 for c in row.tiers), 1),
            w.number(sum(c.overflowed.mean or 0 for c in row.tiers), 1),
            w.number(sum(c.callbacks_created.mean or 0 for c in row.tiers), 1),
        )
    console.print(table)
    totals = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    columns = ("dash.col_tier", "cli.col_calls", "cli.col_sl", "dash.col_target", "cli.col_met", "dash.col_asa")
    for key in (*columns, "dash.col_abandoned", "dash.col_overflowed", "dash.col_callbacks", "cli.col_cb_in_time"):
        left = key in ("dash.col_tier", "cli.col_met", "cli.col_cb_in_time")
        totals.add_column(w.t(key, window="").strip(), justify="left" if left else "right")
    for cell in outcome.totals:
        if not cell.arrived.mean:
            continue
        in_time = "-" if cell.callbacks_workable is None else w.t("cli.yes" if cell.callbacks_workable else "cli.no")
        totals.add_row(
            w.t("tier." + cell.tier),
            _num(cell.arrived, w, 0),
            _pct(cell.service_level, w),
            "-" if cell.target is None else w.percent(cell.target),
            "-" if cell.met is None else w.t("cli.yes" if cell.met else "cli.no"),
            seconds(cell.asa_s.mean, w),
            _num(cell.abandoned, w),
            _num(cell.overflowed, w),
            _num(cell.callbacks_created, w),
            in_time,
        )
    console.print(totals)
    if outcome.estimate_accuracy:
        rows = "; ".join(
            w.t(
                "cli.sim_estimate_row",
                tier=w.t("tier." + row.tier),
                calls=w.number(row.calls),
                median="-" if row.median_ratio is None else w.number(row.median_ratio, 2),
                within=w.percent(row.within_50pct),
                error=seconds(row.mean_abs_error_s, w),
            )
            for row in outcome.estimate_accuracy
        )
        console.print(w.t("cli.sim_estimates", rows=rows))
    still = {t: n for t, n in outcome.waiting_at_end.items() if n}
    if still:
        waiting = ", ".join(f"{w.t('tier.' + t)} {w.number(n, 1)}" for t, n in still.items())
        console.print(w.t("cli.sim_waiting_at_end", waiting=waiting))
