"""What one route costs on the Redis store, in figures other jobs on the machine move little.

    .venv/bin/python loadtest/bench_redis_route.py [--routes 20000] [--repeat 3] [--instructions]

Drives `--routes` route decisions (bench.py's configuration and 10,000-customer tier file,
callers drawn as loadtest/wrk/route.lua draws them, 8 at a time) through the real stores
(`open_services`: one engine call, FCALL, per route on a single Redis) into a throwaway
redis-server, and prints per route: the engine's time from `INFO commandstats`
(usec_per_call of fcall), the driving Python process's CPU time, and the Redis commands the
engine ran. With `--instructions` the redis-server runs under `valgrind --tool=callgrind` and
the instructions it executes per route are counted instead (exact to about ±1 %: other jobs
do not change them). Each repeat is a fresh namespace; the medians are printed last.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis
from bench import BENCH_CONFIG, free_port  # loadtest/ is on the path when run as a script
from tiermix import caller_number, tier_csv

from tierline.router.app import open_services
from tierline.router.config import load_settings

CUSTOMERS = 10_000
CONCURRENCY = 8


@contextlib.contextmanager
def redis_server(folder: Path, callgrind: bool) -> Iterator[tuple[str, int]]:
    port = free_port()
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
           "--dir", str(folder)]  # fmt: skip
    if callgrind:
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={folder}/cg.%p", *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"redis://127.0.0.1:{port}"
        for _ in range(600):
            with contextlib.suppress(redis.RedisError):
                if redis.Redis.from_url(url, socket_timeout=1).ping():
                    break
            time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait()


def callgrind(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def dumped_instructions(folder: Path) -> int:
    """The `totals` of the newest numbered callgrind dump."""
    newest = max(folder.glob("cg.*.*"), key=lambda p: int(p.suffix[1:]))
    for line in newest.read_text(errors="replace").splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {newest}")


async def one_run(url: str, folder: Path, tag: str, routes: int, redis_pid: int | None) -> dict[str, float]:
    settings = load_settings(
        folder / "bench.toml",
        env={"TIERLINE_STORE": url},
        overrides={"redis_namespace": f"bench-{tag}", "redis_timeout_s": 5.0},
    )
    svc = open_services(settings)
    await svc.tiers.reload_file(folder / "tiers.csv", "csv")
    rng = random.Random(7)
    counter = 0

    async def worker(count: int) -> None:
        nonlocal counter
        for _ in range(count):
            counter += 1
            unknown = rng.random() < 0.1  # as loadtest/wrk/route.lua: 10 % numbers the file lacks
            number = CUSTOMERS + rng.randrange(1000) if unknown else rng.randrange(CUSTOMERS)
            await svc.route(f"{tag}-{counter}", caller_number(number), "default")

    async def drive(count: int) -> None:
        await asyncio.gather(*(worker(count // CONCURRENCY) for _ in range(CONCURRENCY)))

    await drive(1_000)  # the script loaded, the tier meta read
    client = redis.Redis.from_url(url)
    client.config_resetstat()
    if redis_pid is not None:
        callgrind(redis_pid, "-z")
        callgrind(redis_pid, "-i", "on")
    cpu = time.process_time()
    await drive(routes)
    cpu = time.process_time() - cpu
    figures = {"python_cpu_us": cpu / routes * 1e6}
    if redis_pid is not None:
        callgrind(redis_pid, "-i", "off")
        callgrind(redis_pid, "-d", tag)
        await asyncio.sleep(0.5)  # the dump is written by valgrind after the command returns
        figures["instructions"] = dumped_instructions(folder) / routes
    stats = {k.removeprefix("cmdstat_"): v for k, v in client.info("commandstats").items()}
    client.close()
    figures["engine_usec"] = float(stats["fcall"]["usec_per_call"])
    not_counted = ("fcall", "function|load", "info")  # the engine call itself, its loading, the read
    figures["commands"] = sum(v["calls"] for k, v in stats.items() if k not in not_counted) / routes
    await svc.calls.close()
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--routes", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--instructions", action="store_true", help="redis-server under callgrind")
    args = parser.parse_args()
    if args.instructions and shutil.which("callgrind_control") is None:
        parser.error("--instructions needs valgrind (apt-get install -y valgrind)")
    folder = Path(tempfile.mkdtemp(prefix="tierline-route-"))
    (folder / "bench.toml").write_text(BENCH_CONFIG)
    (folder / "tiers.csv").write_bytes(tier_csv(CUSTOMERS))
    runs = []
    with redis_server(folder, args.instructions) as (url, pid):
        for r in range(args.repeat):
            figures = await one_run(f"{url}/{r % 16}", folder, f"r{r}", args.routes, pid if args.instructions else None)
            runs.append(figures)
            print(f"run {r + 1}: " + ", ".join(f"{k} {v:,.1f}" for k, v in figures.items()), flush=True)
    for key in runs[0]:
        values = sorted(run[key] for run in runs)
        print(f"median {key}: {values[len(values) // 2]:,.1f}")


if __name__ == "__main__":
    asyncio.run(main())
