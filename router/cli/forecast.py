"""`tierline forecast`: ask a running service for its staffing forecast (Erlang C or A), print a table.

Exit codes (`exit_codes.Exit`): 0 with a forecast, 1 when the service refuses the request
(the error is printed), 2 usage, 3 when the service cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from tierline.admin.forecast import WINDOWS
from tierline.admin.i18n import Words
from tierline.admin.staffing.outlook import MODELS
from tierline.router.cli import day_plan
from tierline.router.cli.admin_client import AdminRefused, AdminUnreachable, admin_get
from tierline.router.cli.exit_codes import Exit
from tierline.router.cli.staffing_words import formula_words, model_words, seconds, source_words
from tierline.router.config import DEFAULT_URL, env_language


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub = commands.add_parser("forecast", help="staffing forecast per tier (Erlang C or A) from a running service")
    sub.add_argument("--url", default=DEFAULT_URL, help="the running service (default %(default)s)")
    sub.add_argument("--admin-token", default=None, help="bearer token for /admin (env TIERLINE_ADMIN_TOKEN)")
    sub.add_argument("--queue", default=None, help="one queue (default: all queues as one agent pool)")
    sub.add_argument("--agents", type=int, default=None, help="figures at this many agents (default: agents needed)")
    sub.add_argument("--window", choices=tuple(WINDOWS), default=None, help="observation window (default 60m)")
    sub.add_argument("--arrivals-per-hour", type=float, default=None, help="total calls/hour instead of observed")
    sub.add_argument("--aht-s", type=float, default=None, help="average handle time (s) instead of observed")
    sub.add_argument("--model", choices=MODELS, default=None, help="erlang_c (default) or erlang_a (with abandons)")
    sub.add_argument("--patience-s", type=float, default=None, help="erlang_a: mean patience (s) instead of observed")
    sub.add_argument("--json", action="store_true", help="print the service's JSON answer instead of a table")
    day_plan.add_arguments(sub)
    sub.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Ask the service (the forecast, or with --plan the day's plan) and print its answer; a
    plan from a CSV (--plan --arrivals) is worked out here instead (day_plan.py)."""
    if args.plan and args.arrivals is not None:
        return day_plan.run_local(args)
    query: dict[str, object] = {
        "queue": args.queue,
        "aht_s": args.aht_s,
        "model": args.model,
        "patience_s": args.patience_s,
    }
    if args.plan:
        path, what, timeout = "/admin/forecast/plan", "plan", 60
        query["date"] = day_plan.day_of(args).isoformat()
    else:
        path, what, timeout = "/admin/forecast", "forecast", 30
        query |= {"agents": args.agents, "window": args.window, "arrivals_per_hour": args.arrivals_per_hour}
    try:
        body = admin_get(args.url, path, query, args.admin_token, timeout=timeout)
    except AdminRefused as exc:
        print(f"tierline: {what} refused {exc}", file=sys.stderr)
        return Exit.REFUSED
    except AdminUnreachable as exc:
        print(f"tierline: {exc}", file=sys.stderr)
        return Exit.UNREACHABLE
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        (day_plan.render if args.plan else render)(body, Console(width=120, highlight=False, markup=False))
    return Exit.OK


def render(body: dict[str, Any], console: Console, words: Words | None = None) -> None:
    """The forecast as a header (inputs, model, pool figures) and one row per tier, in `words`'
    language (by default LANG's: admin/i18n.py). The notes are the service's own words."""
    w = words or Words(env_language())
    inputs = body["inputs"]
    console.print(
        w.t(
            "cli.fc_heading",
            queue=body["queue"] or w.t("cli.fc_all_queues"),
            model=model_words(body["model"], w),
            formula=formula_words(body["service_level_formula"], w),
        )
    )
    ended = inputs["ended_in_window"]
    aht_note = source_words(inputs["aht_source"], w)
    if inputs["aht_source"] == "observed":
        aht_note = w.t("cli.fc_ended_one" if ended == 1 else "cli.fc_ended_many", source=aht_note, n=w.number(ended))
    patience = (
        ""
        if inputs["patience_s"] is None
        else w.t(
            "cli.fc_patience",
            patience=w.t("unit.seconds", s=w.number(inputs["patience_s"], 0)),
            source=source_words(inputs["patience_source"], w),
        )
    )
    console.print(
        w.t(
            "cli.fc_inputs",
            window=inputs["window"],
            observed=w.t("unit.seconds", s=w.number(inputs["window_s"], 0)),
            arrivals=w.number(inputs["arrivals_per_hour"], 1),
            aht=seconds(inputs["aht_s"], w),
            aht_source=aht_note,
            load="-" if inputs["load_erlangs"] is None else w.number(inputs["load_erlangs"], 2),
        )
        + patience
    )
    if body["agents"] is None:
        console.print(w.t("cli.fc_agents_none"))
    else:
        console.print(
            w.t(
                "cli.fc_agents",
                agents=w.number(body["agents"]),
                why=w.t("cli.source_given" if body["agents_source"] == "given" else "cli.fc_why_needed"),
                state=w.t("cli.fc_stable" if body["stable"] else "cli.fc_unstable"),
                needed=body["agents_needed"] or "-",
                p_wait=w.percent(body["p_wait"]),
                asa=seconds(body["asa_s"], w),
                abandon="" if body["p_abandon"] is None else w.t("cli.fc_abandon", p=w.percent(body["p_abandon"])),
                occupancy=w.percent(body["occupancy"]),
            )
        )
    sources = {t["tier"]: t["source"] for t in inputs["tiers"]}
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    erlang_a = body["model"] == "erlang_a"
    columns = ["dash.col_tier", "cli.col_calls_per_h", "cli.col_source", "cli.col_threshold", "dash.col_target"]
    columns += ["cli.col_sl", "cli.col_pooled_sl", "dash.col_asa"]
    columns += ["cli.col_abandon_share"] if erlang_a else ["cli.col_mean_wait"]
    columns += ["cli.col_met", "cli.col_needed"]
    for key in columns:
        left = key in ("dash.col_tier", "cli.col_source", "cli.col_met")
        table.add_column(w.t(key, window="").strip(), justify="left" if left else "right")
    for row in body["tiers"]:
        met = "-" if row["met"] is None else w.t("cli.yes" if row["met"] else "cli.no")
        if row["stable"] is False:
            met = w.t("cli.fc_unstable_short")
        elif not row["has_calls"]:
            met = w.t("cli.fc_no_calls")
        source = sources.get(row["tier"])
        table.add_row(
            w.t("tier." + row["tier"]),
            w.number(row["arrivals_per_hour"], 1),
            "-" if source is None else source_words(source, w),
            w.t("unit.seconds", s=f"{row['threshold_s']:g}"),
            w.percent(row["target"]),
            w.percent(row["service_level"]),
            w.percent(row["pooled_service_level"]),
            seconds(row["asa_s"], w),
            w.percent(row["p_abandon"]) if erlang_a else seconds(row["mean_wait_s"], w),
            met,
            "-" if row["agents_needed"] is None else w.number(row["agents_needed"]),
        )
    console.print(table)
    for note in body["notes"]:
        console.print(w.t("cli.note", note=note))
