"""The `tierline` command: `serve` the HTTP service, `reload-tiers` from a CRM export.

`serve` refuses to listen beyond loopback without tokens unless told `--insecure`: an open
routing API on a network is a way to jump the queue.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import logging
import sys
from pathlib import Path

import aiohttp
import msgspec
from aiohttp import web

from tierline.router import forecast_cli, reload_cli
from tierline.router.auth import open_roles
from tierline.router.config import ConfigError, Settings, load_settings
from tierline.tiers.parse import TierFileFormat
from tierline.tiers.redis_store import LEASE_S

GC_YOUNG_THRESHOLD = 20_000  # allocations between young collections (CPython's default: 700)
log = logging.getLogger("tierline")


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


def serve(args: argparse.Namespace) -> int:
    from tierline.router.app import build_app, open_services

    try:
        settings = load_settings(
            args.config,
            overrides={"host": args.host, "port": args.port, "store": args.store, "insecure": args.insecure or None},
        )
    except ConfigError as exc:
        print(f"tierline: {exc}", file=sys.stderr)
        return 2
    refusal = check_bind(settings)
    if refusal:
        print(f"tierline: {refusal}", file=sys.stderr)
        return 2
    server = settings.server
    missing = open_roles(server.api_token, server.admin_token)
    if missing:
        log.warning(
            "no token for the %s routes: anyone who can reach %s may use them", " and ".join(missing), server.host
        )
    try:
        svc = open_services(settings)
    except ValueError as exc:
        print(f"tierline: {exc}", file=sys.stderr)
        return 2
    app = build_app(svc)
    log.info("tierline serving on http://%s:%d (store: %s)", server.host, server.port, server.store)
    app.on_startup.append(_settle_garbage_collector)
    web.run_app(app, host=server.host, port=server.port, access_log=None, print=None, shutdown_timeout=5)
    return 0


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


def reload_tiers(args: argparse.Namespace) -> int:
    path: Path = args.file
    if args.rollback:
        if not args.store:
            print("tierline: --rollback works on a shared store: give --store redis://…", file=sys.stderr)
            return 2
        return reload_cli.reload_into_store(args, None)
    if path is None or not path.is_file():
        print(f"tierline: no such file {path}", file=sys.stderr)
        return 2
    fmt: TierFileFormat = args.format or ("csv" if path.suffix.lower() == ".csv" else "ndjson")
    if args.store:
        return reload_cli.reload_into_store(args, fmt)
    content_type = "text/csv" if fmt == "csv" else "application/x-ndjson"
    return asyncio.run(_post_reload(args.url.rstrip("/"), path, content_type, args.admin_token))


async def _post_reload(url: str, path: Path, content_type: str, token: str | None) -> int:
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
                print(f"tierline: cannot reach {url}: {exc}", file=sys.stderr)
                return 2
    if resp.status != 200:
        print(f"tierline: reload refused ({resp.status}): {payload.decode(errors='replace')}", file=sys.stderr)
        return 1
    result = msgspec.json.decode(payload)
    print(
        f"version {result['version']}: {result['loaded']} loaded, {result['rejected_count']} rejected, "
        f"{'swapped' if result['swapped'] else 'NOT swapped (the live table is unchanged)'}"
    )
    for rejection in result["rejected"][:20]:
        print(f"  line {rejection['line']}: {rejection['reason']}")
    if result["rejected_count"] > 20:
        print(f"  ... and {result['rejected_count'] - 20} more")
    return 0 if result["swapped"] else 1


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="tierline", description="Call-center service-tier routing engine")
    commands = top.add_subparsers(dest="command", required=True)

    run = commands.add_parser("serve", help="run the HTTP service")
    run.add_argument("--config", type=Path, default=None, help="TOML settings file (env TIERLINE_CONFIG)")
    run.add_argument("--host", default=None, help="listen address (env TIERLINE_HOST, default 127.0.0.1)")
    run.add_argument("--port", type=int, default=None, help="listen port (env TIERLINE_PORT, default 8080)")
    run.add_argument(
        "--store",
        default=None,
        help="'memory' (default), redis://host:port/db or redis+cluster://host:port (env TIERLINE_STORE)",
    )
    run.add_argument("--insecure", action="store_true", help="allow a non-loopback bind without tokens")
    run.set_defaults(func=serve)

    reload = commands.add_parser("reload-tiers", help="replace the tier table from a CSV or JSON Lines file")
    reload.add_argument("file", type=Path, nargs="?", help="CSV or JSON Lines (not needed with --rollback)")
    reload.add_argument(
        "--store", default=None, help="write straight into this Redis (redis://… or redis+cluster://…), not via --url"
    )
    reload.add_argument("--namespace", default="tierline", help="the store's key namespace (default %(default)s)")
    reload.add_argument("--rollback", action="store_true", help="make the previous table live again (--store only)")
    reload.add_argument(
        "--max-reject-ratio", type=float, default=0.01, help="refuse a file with more bad rows (default %(default)s)"
    )
    reload.add_argument(
        "--lock-lease-s",
        type=float,
        default=LEASE_S,
        help="--store: how long the reload lock outlives a reload that was killed (renewed while it runs; "
        "default %(default)s)",
    )
    reload.add_argument("--url", default="http://127.0.0.1:8080", help="the running service (default %(default)s)")
    reload.add_argument("--format", choices=("csv", "ndjson"), default=None, help="default: from the file name")
    reload.add_argument("--admin-token", default=None, help="bearer token for /admin (env TIERLINE_ADMIN_TOKEN)")
    reload.set_defaults(func=reload_tiers)

    forecast_cli.add_parser(commands)
    from tierline.router.sla_cli import add_sla_command  # `tierline sla`

    add_sla_command(commands)
    return top


def main(argv: list[str] | None = None) -> int:
    import os

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    if getattr(args, "config", None) is None and os.environ.get("TIERLINE_CONFIG"):
        args.config = Path(os.environ["TIERLINE_CONFIG"])
    if getattr(args, "admin_token", None) is None and args.command == "reload-tiers":
        args.admin_token = os.environ.get("TIERLINE_ADMIN_TOKEN")
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
