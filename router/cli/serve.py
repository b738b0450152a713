"""`tierline serve`: run the HTTP service.

It refuses to listen beyond loopback without tokens unless told `--insecure`: an open routing
API on a network is a way to jump the queue. A store that cannot be reached at start is not
an exit: the service starts and `/readyz` answers 503 until the store is back.
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from tierline.queue.redis_urls import redacted
from tierline.router.cli.exit_codes import Exit
from tierline.router.config import DEFAULTS, ConfigError, Settings, history_target, load_settings
from tierline.router.plumbing.gate import open_roles
from tierline.router.plumbing.logs import JsonFormatter, TextFormatter

GC_YOUNG_THRESHOLD = 20_000  # allocations between young collections (CPython's default: 700)
log = logging.getLogger("tierline")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser("serve", help="run the HTTP service")
    run.add_argument("--config", type=Path, default=None, help="TOML settings file (env TIERLINE_CONFIG)")
    run.add_argument("--host", default=None, help=f"listen address (env TIERLINE_HOST, default {DEFAULTS.server.host})")
    run.add_argument(
        "--port", type=int, default=None, help=f"listen port (env TIERLINE_PORT, default {DEFAULTS.server.port})"
    )
    run.add_argument(
        "--store",
        default=None,
        help=f"'{DEFAULTS.server.store}' (default), redis://host:port/db or redis+cluster://host:port "
        "(env TIERLINE_STORE)",
    )
    run.add_argument("--insecure", action="store_true", help="allow a non-loopback bind without tokens")
    run.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=None,
        help=f"stderr log lines: text or json, one object per line (env TIERLINE_LOG_FORMAT, "
        f"default {DEFAULTS.server.log_format})",
    )
    run.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default=None,
        help=f"least level logged; debug adds one access line per request (env TIERLINE_LOG_LEVEL, "
        f"default {DEFAULTS.server.log_level})",
    )
    run.add_argument(
        "--history",
        default=None,
        help="call history archive: sqlite:///path, postgresql://… or off (env TIERLINE_HISTORY; default: "
        "a SQLite file in the data dir with the memory store, off with Redis)",
    )
    run.add_argument(
        "--data-dir",
        default=None,
        help=f"where the default SQLite history lives (env TIERLINE_DATA_DIR, default {DEFAULTS.server.data_dir})",
    )
    run.set_defaults(func=serve)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings) -> str | None:
    """Why this bind is refused, or None. Without tokens only loopback is safe."""
    server = settings.server
    missing = open_roles(server.api_token, server.admin_token)
    if missing and not is_loopback(server.host) and not server.insecure:
        return (
            f"refusing to listen on {server.host} with no token for the {' and '.join(missing)} routes: "
            "set TIERLINE_API_TOKEN and TIERLINE_ADMIN_TOKEN (or [server] api_token/admin_token), "
            "or pass --insecure to accept an open service"
        )
    return None


def check_history_dir(settings: Settings) -> str | None:
    """Why the SQLite history's directory is unusable, or None (created when missing).

    Checked before serving: a history that cannot be written would otherwise surface as a
    warning in the logs while calls go unrecorded; `--history off` is the explicit way out.
    """
    target = history_target(settings.server)
    if target is None or target.kind != "sqlite":
        return None
    directory = Path(target.location).parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".tierline-write-check-"):
            pass
    except OSError as exc:
        return (
            f"the history data directory {str(directory)!r} cannot be written ({exc.strerror or exc}): "
            "give a writable --data-dir (env TIERLINE_DATA_DIR), another --history, or --history off"
        )
    return None


def serve(args: argparse.Namespace) -> int:
    from tierline.router.app import build_app, open_services

    try:
        settings = load_settings(
            args.config,
            overrides={
                "host": args.host,
                "port": args.port,
                "store": args.store,
                "insecure": args.insecure or None,
                "log_format": args.log_format,
                "log_level": args.log_level,
                "history": args.history,
                "data_dir": args.data_dir,
            },
        )
    except ConfigError as exc:
        return _fail(Exit.USAGE, str(exc))
    configure_logging(settings.server.log_format, settings.server.log_level)
    refusal = check_bind(settings)
    if refusal:
        return _fail(Exit.REFUSED, refusal)
    unwritable = check_history_dir(settings)
    if unwritable:
        return _fail(Exit.REFUSED, unwritable)
    server = settings.server
    missing = open_roles(server.api_token, server.admin_token)
    if missing:
        log.warning(
            "no token for the %s routes: anyone who can reach %s may use them", " and ".join(missing), server.host
        )
    try:
        svc = open_services(settings)
    except ValueError as exc:
        return _fail(Exit.USAGE, str(exc))
    app = build_app(svc)
    log.info("tierline serving on http://%s:%d (store: %s)", server.host, server.port, redacted(server.store))
    app.on_startup.append(_settle_garbage_collector)
    try:
        web.run_app(app, host=server.host, port=server.port, access_log=None, print=None, shutdown_timeout=5)
    except OSError as exc:  # the address is taken or cannot be bound
        return _fail(Exit.REFUSED, f"cannot listen on {server.host}:{server.port}: {exc.strerror or exc}")
    return Exit.OK


def configure_logging(fmt: str, level: str) -> None:
    """Every log line on stderr in `fmt`, from `level` up. aiohttp's own access log stays off:
    the gate writes the access lines (at debug, with the request id and route), so the hot
    path pays for none at the default level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def _fail(code: Exit, message: Any) -> int:
    print(f"tierline: {message}", file=sys.stderr)
    return code


async def _settle_garbage_collector(app: web.Application) -> None:
    """Keep the cycle collector's pauses out of the callers' latency.

    What is loaded at start-up (modules, classes, the app) lives as long as the process;
    frozen, full collections no longer walk it, and a larger young generation makes them rare.
    Measured with loadtest/gc_probe.py: with the default settings, full collections put 20–40 ms
    stalls into the route and pop p99 under load (see BENCHMARKS.md).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
