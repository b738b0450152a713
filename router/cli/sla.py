"""`tierline sla`: the service-level table in a terminal, from a running service's `/admin/sla`.

    tierline sla [--url URL] [--admin-token T] [--window 15m|60m|today] [--queue Q] [--watch [SECONDS]]

One row per queue × tier, coloured by target and worded too (met / at risk / missed / idle /
no target: the rule is `admin/sla_status.py`, the same as the dashboard's), then the
callbacks. `--watch` redraws every SECONDS (default 2) until Ctrl-C; on a terminal the
table is redrawn in place, otherwise each refresh is printed after the last. The token
defaults to `TIERLINE_ADMIN_TOKEN`. Exit codes (`exit_codes.Exit`): 0 shown (or the watch
ended), 1 the service refused the request, 2 usage, 3 the service could not be reached.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any, get_args

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from tierline.admin.i18n import Words
from tierline.admin.sla_status import Status, sla_status
from tierline.queue.service_level import Window
from tierline.router.cli.admin_client import AdminRefused, AdminUnreachable, admin_get
from tierline.router.cli.exit_codes import Exit
from tierline.router.config import DEFAULT_URL, env_language

WINDOWS: tuple[Window, ...] = get_args(Window)
STATUS_STYLE: dict[Status, str] = {
    "met": "bold green",
    "at risk": "bold yellow",
    "missed": "bold red",
    "idle": "dim",
    "no target": "dim",
}


class SlaFetchError(Exception):
    def __init__(self, message: str, code: Exit) -> None:
        super().__init__(message)
        self.code = code


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sla = commands.add_parser("sla", help="show the service level per queue × tier in the terminal")
    sla.add_argument("--url", default=DEFAULT_URL, help="the running service (default %(default)s)")
    sla.add_argument("--admin-token", default=None, help="bearer token for /admin (env TIERLINE_ADMIN_TOKEN)")
    sla.add_argument("--window", choices=WINDOWS, default="15m", help="rolling 15m or 60m, or today (default 15m)")
    sla.add_argument("--queue", default=None, help="one queue (default: all)")
    sla.add_argument(
        "--watch",
        nargs="?",
        type=float,
        const=2.0,
        default=None,
        metavar="SECONDS",
        help="refresh every SECONDS (default 2) until Ctrl-C",
    )
    sla.set_defaults(func=run_sla)


def fetch_sla(url: str, token: str | None, window: str, queue: str | None = None, timeout: float = 5.0) -> Any:
    try:
        return admin_get(url, "/admin/sla", {"window": window, "queue": queue or None}, token, timeout)
    except AdminRefused as exc:
        raise SlaFetchError(f"{url} refused /admin/sla {exc}", Exit.REFUSED) from None
    except AdminUnreachable as exc:
        raise SlaFetchError(str(exc), Exit.UNREACHABLE) from None


def row_status(row: dict[str, Any]) -> Status:
    return sla_status(
        row["service_level"], row["target"], row["waiting_now"], row["oldest_wait_now_s"], row["threshold_s"]
    )


# status → its words in the catalogue (the dashboard's: the sign and the word)
STATUS_KEY: dict[Status, str] = {
    "met": "dash.status_met",
    "at risk": "dash.status_at_risk",
    "missed": "dash.status_missed",
    "idle": "dash.status_idle",
    "no target": "dash.status_no_target",
}


def render(report: dict[str, Any], words: Words | None = None) -> Group:
    """The report as a heading, the table and a callbacks line, in `words`' language (by
    default LANG's: admin/i18n.py)."""
    w = words or Words(env_language())
    window = report["window"]
    title = Text.assemble(
        (w.t("cli.sla_title"), "bold"),
        w.t(
            "cli.sla_heading",
            window=window,
            time=w.instant(report["generated_at"], report["timezone"]),
            zone=report["timezone"],
        ),
    )
    table = Table(title=title, title_justify="left", show_lines=False, header_style="bold")
    for name, justify in (
        (w.t("dash.col_queue"), "left"),
        (w.t("dash.col_tier"), "left"),
        (w.t("cli.col_status"), "left"),
        (w.t("cli.col_sl", window=window), "right"),
        (w.t("dash.col_target"), "right"),
        (w.t("dash.col_waiting"), "right"),
        (w.t("dash.col_oldest"), "right"),
        (w.t("dash.col_asa"), "right"),
        (w.t("dash.col_offered"), "right"),
        (w.t("dash.col_answered"), "right"),
        (w.t("dash.col_abandoned"), "right"),
        (w.t("dash.col_overflowed"), "right"),
    ):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    last_queue = None
    for row in report["rows"]:
        status = row_status(row)
        style = STATUS_STYLE[status]
        target = (
            w.t("dash.no_target")
            if row["target"] is None
            else w.t("dash.target_within", target=w.percent(row["target"]), s=f"{row['threshold_s']:g}")
        )
        late = row["oldest_wait_now_s"] is not None and row["oldest_wait_now_s"] > row["threshold_s"]
        abandoned = w.number(row["abandoned"]) + (
            " " + w.t("dash.short_abandons", n=w.number(row["short_abandoned"])) if row["short_abandoned"] else ""
        )
        table.add_row(
            row["queue"] if row["queue"] != last_queue else "",
            w.t("tier." + row["tier"]),
            Text(w.t(STATUS_KEY[status]), style=style),
            Text(w.percent(row["service_level"]), style=style if status in ("met", "at risk", "missed") else ""),
            target,
            w.number(row["waiting_now"]),
            Text(w.seconds(row["oldest_wait_now_s"]), style="bold red" if late else ""),
            w.seconds(row["asa_s"]),
            w.number(row["offered"]),
            w.number(row["answered"]),
            abandoned,
            w.number(row["overflowed"]),
            end_section=False,
        )
        last_queue = row["queue"]
    cb = report["callbacks"]
    callbacks = Text.assemble(
        (w.t("dash.callbacks"), "bold"),
        w.t("cli.cb_open", open=w.number(cb["open"]), assigned=w.number(cb["assigned"])),
        (w.t("cli.cb_overdue", n=w.number(cb["overdue"])), "bold red" if cb["overdue"] else ""),
        " · ",
        (w.t("cli.cb_at_risk", n=w.number(cb.get("at_risk", 0))), "bold yellow" if cb.get("at_risk") else ""),
        w.t("cli.cb_rest", completed=w.number(cb["completed"]), sl=w.percent(cb["service_level"])),
    )
    formula = Text(w.t("dash.formula", name=report["formula"], text=w.t("formula." + report["formula"])), style="dim")
    return Group(table, callbacks, formula)


def watch(
    console: Console,
    fetch: Callable[[], Any],
    every: float,
    rounds: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Redraw every `every` seconds; `rounds` bounds the loop (tests), Ctrl-C ends it (people)."""
    done = 0

    def frame() -> Group | Text:
        try:
            return render(fetch())
        except SlaFetchError as exc:
            return Text(f"tierline: {exc} (retrying every {every:g} s)", style="bold red")

    try:
        if console.is_terminal:
            with Live(frame(), console=console, auto_refresh=False, transient=False) as live:
                done += 1
                while rounds is None or done < rounds:
                    sleep(every)
                    live.update(frame(), refresh=True)
                    done += 1
        else:
            while rounds is None or done < rounds:
                if done:
                    sleep(every)
                    console.print()
                console.print(frame())
                done += 1
    except KeyboardInterrupt:
        pass
    return Exit.OK


def run_sla(args: argparse.Namespace, console: Console | None = None, rounds: int | None = None) -> int:
    """`args.admin_token`: given, or the environment's (`main` fills it in)."""
    token = args.admin_token
    if console is None:
        console = Console() if sys.stdout.isatty() else Console(width=160)

    def fetch() -> Any:
        return fetch_sla(args.url, token, args.window, args.queue)

    if args.watch is not None:
        if args.watch <= 0:
            print("tierline: --watch needs a positive number of seconds", file=sys.stderr)
            return Exit.USAGE
        return watch(console, fetch, args.watch, rounds)
    try:
        report = fetch()
    except SlaFetchError as exc:
        print(f"tierline: {exc}", file=sys.stderr)
        return exc.code
    console.print(render(report))
    return Exit.OK
