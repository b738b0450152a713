"""Measures the tier path on the Redis store at production size (a benchmark, not a test).

    .venv/bin/python loadtest/bench_redis_tiers.py [ROWS] [--redis-url URL] [--json PATH]

Reloads ROWS customers (caller, tier, customer id) through `RedisTierStore.reload_file`, the
path `tierline reload-tiers --store` takes, into a throwaway redis-server (or `--redis-url`,
in a fresh namespace), and prints reload rows/s, Redis memory per customer (`INFO memory`
used_memory before and after, and `MEMORY USAGE` of a sample of buckets) and the time of one
awaited look-up (a network round trip) and of look-ups issued 64 at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench_tiers import caller, write_files  # loadtest/ is on the path when run as a script
from redis import Redis

from tierline.queue.redis_link import RedisLink, connect
from tierline.tiers.redis_store import RedisTierStore


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def measure(url: str, rows: int, folder: Path) -> dict[str, float]:
    csv_path, _ = write_files(folder, rows)
    plain = Redis.from_url(url)
    before = int(plain.info("memory")["used_memory"])
    link = RedisLink(connect(url, 5.0), timeout_s=5.0)
    namespace = "bench" + uuid.uuid4().hex[:8]
    store = RedisTierStore(link, namespace)
    started = time.perf_counter()
    result = await store.reload_file(csv_path, "csv")
    elapsed = time.perf_counter() - started
    assert result.swapped and result.loaded == rows, result
    after = int(plain.info("memory")["used_memory"])
    meta = await store._current(force=True)
    sample = random.Random(1).sample(range(meta.buckets), min(200, meta.buckets))
    usage = sum(int(plain.memory_usage(f"{namespace}:t:{meta.data_id}:{b}") or 0) for b in sample)
    counts = sum(int(plain.hlen(f"{namespace}:t:{meta.data_id}:{b}")) for b in sample)
    encoding = plain.object("encoding", f"{namespace}:t:{meta.data_id}:{sample[0]}")

    rng = random.Random(2)
    probes = [caller(rng.randrange(rows)) for _ in range(5000)]
    await store.lookup(probes[0])
    started = time.perf_counter()
    for probe in probes:
        await store.lookup(probe)
    one_by_one = (time.perf_counter() - started) / len(probes)
    started = time.perf_counter()
    for i in range(0, len(probes), 64):
        await asyncio.gather(*(store.lookup(p) for p in probes[i : i + 64]))
    concurrent = (time.perf_counter() - started) / len(probes)
    await link.close()
    plain.close()
    return {
        "rows": rows,
        "reload_rows_per_s": rows / elapsed,
        "redis_bytes_per_record": (after - before) / rows,
        "bucket_bytes_per_record": usage / counts,
        "bucket_encoding": 1.0 if encoding in (b"listpack", "listpack") else 0.0,
        "lookup_us_awaited": one_by_one * 1e6,
        "lookup_us_64_at_once": concurrent * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--redis-url", default=None, help="default: a throwaway redis-server")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    server = None
    url = args.redis_url
    with tempfile.TemporaryDirectory() as folder:
        if url is None:
            if shutil.which("redis-server") is None:
                sys.exit("redis-server is not installed (apt-get install redis-server)")
            port = free_port()
            server = subprocess.Popen(
                ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", folder],
                stdout=subprocess.DEVNULL,
            )
            url = f"redis://127.0.0.1:{port}/0"
            for _ in range(100):
                try:
                    Redis.from_url(url).ping()
                    break
                except Exception:
                    time.sleep(0.05)
        try:
            figures = asyncio.run(measure(url, args.rows, Path(folder)))
        finally:
            if server is not None:
                server.terminate()
                server.wait()
    print(f"Redis tiers, {figures['rows']:,} rows:")
    print(f"  reload            {figures['reload_rows_per_s']:>12,.0f} rows/s")
    print(f"  memory            {figures['redis_bytes_per_record']:>12.1f} B per customer (INFO used_memory)")
    print(f"  bucket hashes     {figures['bucket_bytes_per_record']:>12.1f} B per customer (MEMORY USAGE, listpack)")
    print(f"  look-up, awaited  {figures['lookup_us_awaited']:>12.1f} µs (one round trip each)")
    print(f"  look-up, 64 at once {figures['lookup_us_64_at_once']:>10.1f} µs per look-up")
    if args.json:
        args.json.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
