"""`tierline forecast --plan`: agents needed per 15-minute interval of a day, and its agent-hours.

With `--arrivals CSV` the plan is worked out here (admin/simulation/interval_plan.py) under the
settings of `--config`; without, the running service is asked (`GET /admin/forecast/plan`,
the same weekday's average in its history archive) by `tierline forecast`'s own request
(forecast.py), and its answer printed by `render`. Exit codes as `tierline forecast`'s, and 2
for a bad CSV.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

from tierline.admin.i18n import Words
from tierline.admin.simulation import scenario as sc
from tierline.admin.simulation.curves import day_bounds
from tierline.admin.simulation.interval_plan import day_plan
from tierline.router.cli.exit_codes import Exit
from tierline.router.cli.staffing_words import model_words, seconds, source_words
from tierline.router.config import ConfigError, env_language, load_settings
from tierline.tiers.model import TIERS


def add_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--plan", action="store_true", help="agents needed per 15-minute interval of a day")
    sub.add_argument("--date", type=date.fromisoformat, default=None, help="--plan: the day (default today, UTC)")
    sub.add_argument("--arrivals", default=None, help="--plan: a CSV arrival curve, planned here instead")
    sub.add_argument("--config", default=None, help="--plan --arrivals: TOML settings with the targets")


def day_of(args: argparse.Namespace) -> date:
    day: date = args.date or datetime.now(UTC).date()
    return day


def run_local(args: argparse.Namespace) -> int:
    """The plan of an arrival curve from a CSV, worked out here under --config's settings."""
    day = day_of(args)
    try:
        settings = load_settings(None if args.config is None else Path(args.config), env={})
        if args.aht_s is None:
            raise sc.ScenarioError("no_aht", "--plan --arrivals needs --aht-s")
        curve = sc.parse_arrivals(Path(args.arrivals).read_text(), day_bounds(day, settings.timezone)[0])
        sc.check_number("aht_s", args.aht_s, 1.0, sc.MAX_SECONDS, "invalid_aht")
        plan = day_plan(curve, args.aht_s, settings, args.model or "erlang_c", args.patience_s)
    except sc.ScenarioError as exc:
        print(f"tierline: plan refused ({exc.code}): {exc.message}", file=sys.stderr)
        return Exit.USAGE
    except (ConfigError, OSError, ValueError) as exc:
        print(f"tierline: {exc}", file=sys.stderr)
        return Exit.USAGE
    body: dict[str, Any] = msgspec.to_builtins(
        {"date": day.isoformat(), "queue": None, "days_averaged": [], "aht_source": "given", "plan": plan}
    )
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        render(body, Console(width=120, highlight=False, markup=False))
    return Exit.OK


def _source(body: dict[str, Any], w: Words) -> str:
    """Where the curve came from (admin/simulation/curves.py names it) in the catalogue's words."""
    source: str = body["plan"]["source"]
    if source == "csv":
        return w.t("cli.plan_source_csv")
    if source.endswith(" average"):
        return w.t("cli.plan_source_weekday", n=w.number(len(body["days_averaged"])))
    if source.startswith("archive:"):
        return w.t("cli.plan_source_day", day=source.removeprefix("archive:"))
    return source_words(source, w)


def render(body: dict[str, Any], console: Console, words: Words | None = None) -> None:
    """The plan's header line and one row per interval with calls, in `words`' language (by
    default LANG's: admin/i18n.py). The notes are the plan's own words."""
    w = words or Words(env_language())
    plan = body["plan"]
    console.print(
        w.t(
            "cli.plan_heading",
            date=body["date"],
            source=_source(body, w),
            model=model_words(plan["model"], w),
            aht=seconds(plan["aht_s"], w),
            aht_source=source_words(body["aht_source"], w),
            hours="-" if plan["agent_hours"] is None else w.number(plan["agent_hours"], 2),
            peak=plan["peak_agents"] or "-",
        )
    )
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    table.add_column(w.t("cli.col_time"))
    for name in (*(w.t("tier." + t) for t in TIERS), w.t("cli.col_erlangs"), w.t("cli.col_agents")):
        table.add_column(name, justify="right")
    for row in plan["intervals"]:
        if not row["load_erlangs"] and not row["agents"]:
            continue
        table.add_row(
            row["time"],
            *(w.number(row["arrivals"][t], 1) for t in TIERS),
            w.number(row["load_erlangs"], 2),
            "-" if row["agents"] is None else w.number(row["agents"]),
        )
    console.print(table)
    for note in plan["notes"]:
        console.print(w.t("cli.note", note=note))
