"""The `tierline` command: `serve`, `reload-tiers`, `sla`, `forecast`, `grade`, `archive`, `simulate`,
`report`, one module each.

Every command exits with the codes of `exit_codes.Exit`. The environment is read by
`router/config.py`, here only through it.
"""

from __future__ import annotations

import argparse
import logging

from tierline.router.cli import archive, forecast, grade, reload, report, serve, simulate, sla
from tierline.router.config import env_admin_token, env_config_path


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="tierline", description="Call-center service-tier routing engine")
    commands = top.add_subparsers(dest="command", required=True)
    serve.add_parser(commands)
    reload.add_parser(commands)
    forecast.add_parser(commands)
    sla.add_parser(commands)
    grade.add_parser(commands)
    archive.add_parser(commands)
    simulate.add_parser(commands)
    report.add_parser(commands)
    return top


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    if getattr(args, "config", ...) is None:
        args.config = env_config_path()
    if getattr(args, "admin_token", ...) is None:
        args.admin_token = env_admin_token()
    code: int = args.func(args)
    return code
