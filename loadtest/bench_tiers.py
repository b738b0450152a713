"""Measures the tier path at production size (a benchmark, not a test).

    .venv/bin/python loadtest/bench_tiers.py [ROWS] [--json PATH]

Prints parse rows/s (CSV and JSON Lines), reload rows/s, process memory per record, the
longest event-loop stall during a reload, and look-up and normalisation times; with
`--json PATH` also writes those figures (loadtest/bench.py runs it that way, in a fresh
process, so that the memory figure is not skewed by anything else in the process).
"""

from __future__ import annotations

import asyncio
import gc
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from tierline.tiers.memory import MemoryTierStore
from tierline.tiers.parse import parse_tier_file
from tierline.tiers.phone import normalise_caller

TIERS = ("vip", "mid", "standard", "blacklisted")


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def caller(i: int) -> str:
    return f"+86139{i:08d}"


def write_files(folder: Path, rows: int) -> tuple[Path, Path]:
    csv_path, nd_path = folder / "tiers.csv", folder / "tiers.ndjson"
    with csv_path.open("w") as csv_file, nd_path.open("w") as nd_file:
        csv_file.write("caller,tier,customer_id\n")
        for i in range(rows):
            tier = TIERS[i % 4]
            csv_file.write(f"{caller(i)},{tier},C{i:07d}\n")
            nd_file.write(f'{{"caller":"{caller(i)}","tier":"{tier}","customer_id":"C{i:07d}"}}\n')
    return csv_path, nd_path


def time_parse(path: Path, fmt: str, rows: int) -> float:
    start = time.perf_counter()
    with path.open("rb", buffering=1 << 20) as stream:
        parsed = parse_tier_file(stream, fmt)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - start
    assert parsed.loaded == rows, (parsed.loaded, parsed.rejected[:3])
    print(f"parse {fmt:6}: {rows} rows in {elapsed:.2f} s = {rows / elapsed:,.0f} rows/s")
    del parsed
    gc.collect()
    return rows / elapsed


async def reload_and_measure(csv_path: Path, rows: int) -> dict[str, float]:
    store = MemoryTierStore()
    gc.collect()
    before = rss_bytes()
    stalls: list[float] = []
    done = False

    async def ticker() -> None:
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            stalls.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    start = time.perf_counter()
    result = await store.reload_file(csv_path, "csv")
    elapsed = time.perf_counter() - start
    first_stall = max(stalls)
    first_elapsed = elapsed
    assert result.swapped and result.loaded == rows
    gc.collect()
    after = rss_bytes()
    print(f"reload csv: {rows} rows parsed and swapped in {elapsed:.2f} s = {rows / elapsed:,.0f} rows/s")
    print(
        f"memory    : RSS +{(after - before) / 2**20:.1f} MiB for {rows} records"
        f" = {(after - before) / rows:.0f} B/record (caller, tier, customer_id)"
    )

    stalls.clear()
    start = time.perf_counter()
    await store.reload_file(csv_path, "csv")  # a second swap also frees the first table
    elapsed = time.perf_counter() - start
    done = True
    await tick
    gc.collect()
    print(f"reload #2 : {elapsed:.2f} s, RSS now {(rss_bytes() - before) / rows:.0f} B/record")
    print(
        f"event loop: longest stall during reload {first_stall * 1000:.1f} ms (first),"
        f" {max(stalls) * 1000:.1f} ms (second, incl. freeing the old table)"
    )
    print(f"peak RSS  : {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")

    n = 1_000_000
    known = [caller(i * 7919 % rows) for i in range(1000)]
    start = time.perf_counter()
    for i in range(n):
        await store.lookup(known[i % 1000])
    per_known = (time.perf_counter() - start) / n * 1e6
    unknown = [f"+1555{i:07d}" for i in range(1000)]
    start = time.perf_counter()
    for i in range(n):
        await store.lookup(unknown[i % 1000])
    per_unknown = (time.perf_counter() - start) / n * 1e6
    print(f"lookup    : {per_known:.2f} us known, {per_unknown:.2f} us unknown (await included)")

    raw = ["+86 (139) 1234-5678", "0086 139 1234 5678", "+8613912345678"]
    start = time.perf_counter()
    for i in range(n):
        normalise_caller(raw[i % 3])
    per_normalise = (time.perf_counter() - start) / n * 1e6
    print(f"normalise : {per_normalise:.2f} us")
    return {
        "rows": rows,
        "reload_s": first_elapsed,
        "reload_rows_per_s": rows / first_elapsed,
        "bytes_per_record": (after - before) / rows,
        "reload_stall_ms": first_stall * 1000,
        "lookup_known_us": per_known,
        "lookup_unknown_us": per_unknown,
        "normalise_us": per_normalise,
    }


def main() -> None:
    args = sys.argv[1:]
    json_path = None
    if "--json" in args:
        at = args.index("--json")
        json_path = Path(args[at + 1])
        del args[at : at + 2]
    rows = int(args[0]) if args else 1_000_000
    with tempfile.TemporaryDirectory() as folder:
        csv_path, nd_path = write_files(Path(folder), rows)
        print(f"python {sys.version.split()[0]}, {rows} rows, CSV {csv_path.stat().st_size / 2**20:.0f} MiB")
        figures = asyncio.run(reload_and_measure(csv_path, rows))
        figures["parse_csv_rows_per_s"] = time_parse(csv_path, "csv", rows)
        figures["parse_ndjson_rows_per_s"] = time_parse(nd_path, "ndjson", rows)
    if json_path is not None:
        json_path.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
