"""The memory route's share of the bare-handler ceiling, counted in instructions (callgrind).

    .venv/bin/python loadtest/bench_instructions.py [--requests 3000] [--connections 32] [--op route|pop]

bench.py measures the share by requests/s and by the server's CPU time per request; on a
shared two-core machine both move by ±10 % between runs. Callgrind counts the instructions a
process executes, which other jobs on the machine do not change, so this is the repeatable
form of the same ratio, for comparing one change of the hot path with the next. Each server
(loadtest/ceiling.py's bare handler, then `tierline serve` on the memory store with bench.py's
configuration and tier file) runs under `valgrind --tool=callgrind` with counting off; after a
warm-up, counting is switched on (`callgrind_control -i on`) for exactly `--requests`
requests sent by 32 keep-alive connections (as wrk does), then off.

Instructions are not time (a cache miss costs more than an add), so this complements
bench.py's figure, it does not replace it. Needs valgrind (`apt-get install -y valgrind`).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench import BENCH_CONFIG, BIN, PYTHON, free_port, http_json, http_ok, running  # noqa: E402
from tiermix import tier_csv  # noqa: E402

CUSTOMERS = 10_000
GOAL = 0.60


def route_request(index: int, rng: random.Random) -> bytes:
    number = rng.randrange(CUSTOMERS + CUSTOMERS // 10)  # ~10 % numbers the tier file lacks
    body = b'{"call_id":"i-%d","caller":"+86139%08d"}' % (index, number)
    return (
        b"POST /v1/calls HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )


def pop_request(index: int, rng: random.Random) -> bytes:
    body = b"{}"
    return (
        b"POST /v1/agents/a-%d/next HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (index, len(body), body)
    )


Make = Callable[[int, random.Random], bytes]


async def send(port: int, first: int, count: int, connections: int, make: Make) -> None:
    """`count` requests numbered from `first`, spread over `connections` keep-alive connections."""
    rng = random.Random(first)
    numbers = iter(range(first, first + count))

    async def one_connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for index in numbers:
                writer.write(make(index, rng))
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                if status >= 300:
                    raise RuntimeError(f"answer {status}: {head!r}")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
        finally:
            writer.close()

    await asyncio.gather(*(one_connection() for _ in range(connections)))


def callgrind(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def counted(out: Path) -> int:
    """The instructions a callgrind output file counted (its `summary:` or `totals:` line)."""
    total = 0
    for path in out.parent.glob(out.name + "*"):
        for line in path.read_text().splitlines():
            if line.startswith("totals:"):
                total = max(total, int(line.split()[1]))
                break
    return total


def measure(
    name: str, cmd: list[str], args: argparse.Namespace, logs: Path, prepare: Callable[[str], None] | None = None
) -> float:
    port = free_port()
    out = logs / f"{name}.callgrind"
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    make: Make = route_request if args.op == "route" else pop_request
    with running(name, [*valgrind, *cmd, "--port", str(port)], logs) as proc:
        proc.wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), timeout=600)
        if prepare is not None:
            prepare(f"http://127.0.0.1:{port}")
        if args.op == "pop":  # calls to pop: warm-up + measured, all routed first
            asyncio.run(send(port, 10**7, 2 * args.requests + 1000, args.connections, route_request))
        asyncio.run(send(port, 0, 1000, args.connections, make))  # warm-up: caches, first-use paths
        callgrind(proc.pid, "-i", "on")
        started = time.perf_counter()
        asyncio.run(send(port, 1000, args.requests, args.connections, make))
        callgrind(proc.pid, "-i", "off")
        seconds = time.perf_counter() - started
        callgrind(proc.pid, "-d")
        time.sleep(1)
        per_request: float = counted(out) / args.requests
    print(f"{name:16} {per_request:12,.0f} instructions/request  ({args.requests} requests in {seconds:.1f} s)")
    return per_request


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--op", choices=("route", "pop"), default="route")
    ap.add_argument("--keep", action="store_true", help="keep the logs and callgrind files")
    args = ap.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind not found: apt-get install -y valgrind", file=sys.stderr)
        return 2
    logs = Path(tempfile.mkdtemp(prefix="tierline-instr-"))
    try:
        config = logs / "bench.toml"
        config.write_text(BENCH_CONFIG)
        tiers = tier_csv(CUSTOMERS)

        def load_tiers(url: str) -> None:
            loaded = http_json(f"{url}/admin/tiers/reload", tiers, "text/csv")
            assert loaded["swapped"], loaded

        ceiling = measure("ceiling-json", [PYTHON, str(HERE / "ceiling.py")], args, logs)
        serve = [str(BIN / "tierline"), "serve", "--config", str(config)]
        tierline = measure("tierline-memory", serve, args, logs, load_tiers)
    finally:
        if args.keep:
            print(f"logs and callgrind files kept in {logs}")
        else:
            shutil.rmtree(logs, ignore_errors=True)
    share = ceiling / tierline
    verdict = "PASS" if share >= GOAL else "MISS"
    print(
        f"{verdict}  memory {args.op}, share of bare-handler ceiling by instructions  {share:.2f}  goal >= {GOAL:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
