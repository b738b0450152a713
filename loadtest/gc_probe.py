"""How much of Tierline's tail latency is the garbage collector? (a diagnostic, not a test)

    .venv/bin/python loadtest/gc_probe.py [--seconds 8] [--repeat 3]

Runs `tierline serve` (memory store, the bench configuration) three times side by side:
as is, with `gc.freeze()` after start-up, and with the collector off; then the route and pop
loads of loadtest/bench.py (wrk, 32 connections, runs alternating between the three servers)
and prints p50/p99/p99.9/max and CPU µs per request for each. A p99 that falls with the
collector off is time spent in (mostly generation-2) collections; see BENCHMARKS.md.

    python loadtest/gc_probe.py --serve MODE -- serve --port N ...   # the wrapped server itself
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench  # noqa: E402
from tiermix import tier_csv  # noqa: E402

MODES = ("as-is", "frozen", "gc-off")


def serve(mode: str, argv: list[str]) -> int:
    from aiohttp import web

    from tierline.router import cli

    if mode == "gc-off":
        gc.disable()
    elif mode == "frozen":
        run_app = web.run_app

        def frozen_run_app(app: Any, **kw: Any) -> Any:
            async def freeze(_: Any) -> None:
                gc.collect()
                gc.freeze()

            app.on_startup.append(freeze)
            return run_app(app, **kw)

        web.run_app = frozen_run_app
    return cli.main(argv)


def probe(seconds: int, repeat: int, customers: int) -> None:
    plan = bench.Plan(seconds=seconds, warmup=2, repeat=repeat, customers=customers, queue_sizes=(),
                      queue_ops=0, tier_rows=0)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="tierline-gc-") as tmp, contextlib.ExitStack() as stack:
        logs = Path(tmp)
        config = logs / "bench.toml"
        config.write_text(bench.BENCH_CONFIG)
        targets = []
        for mode in MODES:
            port = bench.free_port()
            url = f"http://127.0.0.1:{port}"
            cmd = [*bench.pinned(bench.SERVER_CORE), bench.PYTHON, str(Path(__file__)), "--serve", mode, "--",
                   "serve", "--port", str(port), "--config", str(config)]  # fmt: skip
            proc = stack.enter_context(bench.running(f"tierline-{mode}", cmd, logs))
            proc.wait_until(functools.partial(bench.http_ok, f"{url}/healthz"))
            bench.http_json(f"{url}/admin/tiers/reload", tier_csv(customers), "text/csv")
            targets.append(bench.Target(mode, url, bench.tierline_waiting(url), pid=proc.pid))
        figures = bench.bench_targets(targets, plan, None, {})
    head = f"{'server':<8}{'op':<7}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'p99.9 ms':>10}{'max ms':>8}"
    print(head + f"{'CPU µs/req':>12}  queue depth (best run)")
    for f in figures:
        cpu = f"{f.cpu_us_per_req:.0f}" if f.cpu_us_per_req else "-"
        print(f"{f.target:<8}{f.op:<7}{f.rps:>8,.0f}{f.p50_ms:>8.2f}{f.p99_ms:>8.2f}{f.p999_ms:>10.2f}{f.max_ms:>8.1f}"
              f"{cpu:>12}  {f.depth}")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description="Tierline's tail latency with and without the garbage collector")
    ap.add_argument("--serve", choices=MODES, help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(args.serve, args.rest)
    probe(args.seconds, args.repeat, args.customers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
