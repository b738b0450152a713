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
from tierline.admin.staffing.outlook import MODELS
from tierline.router.cli import day_plan
from tierline.router.cli.admin_client import AdminRefused, AdminUnreachable, admin_get
from tierline.router.cli.exit_codes import Exit
from tierline.router.config import DEFAULT_URL


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


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _num(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def render(body: dict[str, Any], console: Console) -> None:
    """The forecast as a header (inputs, model, pool figures) and one row per tier."""
    inputs = body["inputs"]
    queue = body["queue"] or "all queues (one agent pool)"
    names = {"erlang_c": "Erlang C", "erlang_a": "Erlang A (abandons)"}
    console.print(
        f"Forecast for {queue} — model {body['model']}: {names.get(body['model'], body['model'])}, "
        f"strict tier priority; service level {body['service_level_formula']}"
    )
    ended = inputs["ended_in_window"]
    aht_note = inputs["aht_source"]
    if aht_note == "observed":
        aht_note += f", {ended} call{'' if ended == 1 else 's'} ended"
    console.print(
        f"Inputs: window {inputs['window']} ({inputs['window_s']:.0f} s observed), "
        f"arrivals {inputs['arrivals_per_hour']:.1f}/h, AHT {_num(inputs['aht_s'], ' s')} ({aht_note}), "
        f"load {_num(inputs['load_erlangs'], ' Erlangs', 2)}"
        + (
            ""
            if inputs["patience_s"] is None
            else f", patience {inputs['patience_s']:.0f} s ({inputs['patience_source']})"
        )
    )
    if body["agents"] is None:
        console.print("Agents: -")
    else:
        why = "given" if body["agents_source"] == "given" else "needed to meet every target"
        state = "stable" if body["stable"] else "UNSTABLE (agents ≤ load: the lowest tiers' queue grows)"
        abandon = "" if body["p_abandon"] is None else f", abandons {_pct(body['p_abandon'])}"
        console.print(
            f"Agents: {body['agents']} ({why}), {state}; needed for every target: {body['agents_needed'] or '-'}; "
            f"P(wait) {_pct(body['p_wait'])}, ASA {_num(body['asa_s'], ' s')}{abandon}, "
            f"occupancy {_pct(body['occupancy'])}"
        )
    sources = {t["tier"]: t["source"] for t in inputs["tiers"]}
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    erlang_a = body["model"] == "erlang_a"
    columns = ["tier", "calls/h", "source", "threshold", "target", "SL", "pooled SL", "ASA"]
    columns += ["abandon"] if erlang_a else ["mean wait"]
    columns += ["met", "needed"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("tier", "source", "met") else "right")
    for row in body["tiers"]:
        met = "-" if row["met"] is None else ("yes" if row["met"] else "NO")
        if row["stable"] is False:
            met = "UNSTABLE"
        elif not row["has_calls"]:
            met = "no calls"
        table.add_row(
            row["tier"],
            f"{row['arrivals_per_hour']:.1f}",
            sources.get(row["tier"], "-"),
            f"{row['threshold_s']:g} s",
            _pct(row["target"]),
            _pct(row["service_level"]),
            _pct(row["pooled_service_level"]),
            _num(row["asa_s"], " s"),
            _pct(row["p_abandon"]) if erlang_a else _num(row["mean_wait_s"], " s"),
            met,
            "-" if row["agents_needed"] is None else str(row["agents_needed"]),
        )
    console.print(table)
    for note in body["notes"]:
        console.print(f"note: {note}")
