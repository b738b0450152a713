"""The live tier table through the service (issue 17 item 4): `GET /admin/grading/table` of a real
`tierline serve` holding ROWS callers, streamed to the end; its time and how much the server's
RSS grows while it streams (sampled every 20 ms), so a million rows are shown not to become one
body in memory (a benchmark, not a test).

    .venv/bin/python loadtest/bench_live_table.py [ROWS] [--store memory|redis]

`--store redis` starts a throwaway redis-server. The table is loaded through
`POST /admin/tiers/reload` (caller, tier, customer id), untimed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' process helpers

from tests.support.redis_servers import RedisServer
from tests.support.serve_process import start_serve

TIERS = ("vip", "mid", "standard", "blacklisted")


def rss_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
    return 0


def measure(rows: int, store: str, folder: Path) -> str:
    table = folder / "tiers.csv"
    with table.open("w") as out:
        out.write("caller,tier,customer_id\n")
        for i in range(rows):
            out.write(f"+4915{i:09d},{TIERS[i % 4]},C{i}\n")
    config = folder / "serve.toml"
    config.write_text("")
    port, process = start_serve(store, config, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        reload = urllib.request.Request(
            base + "/admin/tiers/reload", data=table.read_bytes(), headers={"Content-Type": "text/csv"}
        )
        urllib.request.urlopen(reload, timeout=900).close()
        time.sleep(1)
        before = rss_mib(process.pid)
        peak, done = [before], threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], rss_mib(process.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started, lines = time.perf_counter(), 0
        with urllib.request.urlopen(base + "/admin/grading/table", timeout=900) as resp:
            for _ in resp:
                lines += 1
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
        assert lines == rows + 1, lines
        return (
            f"{rows:,} rows streamed in {elapsed:.2f} s; server RSS {before} MiB before,"
            f" {peak[0]} MiB at most while streaming (+{peak[0] - before} MiB)"
        )
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=int, nargs="?", default=1_000_000)
    parser.add_argument("--store", choices=("memory", "redis"), default="memory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tierline-live-table-") as folder:
        if args.store == "memory":
            print(f"memory: {measure(args.rows, 'memory', Path(folder))}")
            return
        server = RedisServer().start()
        try:
            print(f"redis: {measure(args.rows, server.url, Path(folder))}")
        finally:
            server.cleanup()


if __name__ == "__main__":
    main()
