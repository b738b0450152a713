"""What recording events costs the route on Redis and Redis Cluster, counted in instructions (callgrind).

    .venv/bin/python loadtest/bench_event_cost_instructions.py [--calls 200] [--rounds 2]
        [--stores redis,cluster] [--concurrency 1] [--keep]

bench_event_cost.py times the same thing by the clock; on a shared two-core machine its Redis
figures could not be told from noise. Callgrind counts the instructions a process executes,
which other jobs on the machine do not change. Here every process of the round trip runs under
`valgrind --tool=callgrind --instr-atstart=no`: the throwaway redis-server (for the cluster, its
three masters) and the Python process driving the store (this script again, with `--drive`).
That process holds two stores on the same server(s), events on and events off (bench_event_cost's
benchmark-only switch: the engine registered with a no-op `emit`), warms both, then runs phases
of `--calls` calls (route → next → answer → end, as bench_event_cost.py does), on/off/off/on
for two rounds. For each phase this script switches counting on in every process, lets the
phase run, switches it off and dumps (`callgrind_control -i on|off`, `-d`).

The server figure leaves out `serverCron` (inclusive): Redis's timer work (allocator statistics
ten times a second, expiry, client housekeeping) comes with wall time, not with calls, and under
valgrind a phase lasts long enough for it to outweigh the calls. Both the server's and the
client's figures are per call; the cost is 1 − off/on, the share of the round trip's
instructions (so of throughput, were instructions time) that recording takes.
Goal (issue 15 item 7): ≤ 10 % on each store. Needs valgrind (`apt-get install -y valgrind`).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # tests/ when run as a script
from bench_event_cost import POLICY, events_off, run, settle_garbage_collector  # noqa: E402

from tests.support.redis_servers import cli, free_cluster_port, free_port, redis_server_path  # noqa: E402
from tierline.queue.clock import SystemClock  # noqa: E402
from tierline.queue.redis_link import RedisLink, connect  # noqa: E402
from tierline.queue.redis_store import RedisCallStore  # noqa: E402

GOAL = 0.10
SLOW_S = 60.0  # under valgrind a script that takes 100 µs takes tens of ms, more on a loaded machine
VALGRIND = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]


def callgrind(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True, timeout=600)


@dataclass
class Counted:
    """One process under callgrind; its dumps are `out.1`, `out.2`, … in order."""

    name: str
    process: subprocess.Popen[bytes]
    out: Path
    dumps: int = 0

    def dump(self) -> Path:
        callgrind(self.process.pid, "-d")
        self.dumps += 1
        path = self.out.parent / f"{self.out.name}.{self.dumps}"
        deadline = time.monotonic() + 120
        while not (path.exists() and "\ntotals:" in path.read_text()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no callgrind dump {path}")
            time.sleep(0.1)
        return path


def instructions(path: Path, leave_out: str | None = None) -> int:
    """The instructions a dump counted, less `leave_out`'s inclusive cost (a function's name)."""
    total = next(int(line.split()[1]) for line in path.read_text().splitlines() if line.startswith("totals:"))
    if leave_out is None:
        return total
    annotated = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout
    found = re.search(r"^\s*([\d,]+) \([^)]*\)\s+\S*:" + re.escape(leave_out) + r" ", annotated, re.MULTILINE)
    return total - (int(found.group(1).replace(",", "")) if found else 0)


def start_node(logs: Path, name: str, cluster: bool) -> tuple[Counted, int]:
    port = free_cluster_port() if cluster else free_port()
    folder = logs / name
    folder.mkdir()
    out = logs / f"{name}.callgrind"
    args = [*VALGRIND, f"--callgrind-out-file={out}", redis_server_path(), "--port", str(port)]
    args += ["--bind", "127.0.0.1", "--dir", str(folder), "--save", "", "--appendonly", "no"]
    args += ["--logfile", str(folder / "redis.log")]
    if cluster:
        args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
    with (logs / f"{name}.valgrind").open("wb") as log:
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
    node = Counted(name, process, out)
    deadline = time.monotonic() + 120
    while "PONG" not in cli(port, "ping", timeout=10):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start: see {folder / 'redis.log'}")
        time.sleep(0.2)
    return node, port


def start_servers(kind: str, logs: Path, nodes: list[Counted]) -> str:
    """The store's server(s) under callgrind, appended to `nodes` as they start; the store's URL."""
    if kind == "redis":
        node, port = start_node(logs, "redis", cluster=False)
        nodes.append(node)
        return f"redis://127.0.0.1:{port}/0"
    ports = []
    for index in range(3):
        node, port = start_node(logs, f"cluster-{index}", cluster=True)
        nodes.append(node)
        ports.append(port)
    addresses = [f"127.0.0.1:{port}" for port in ports]
    cli(ports[0], "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes", timeout=300)
    deadline = time.monotonic() + 300
    while not all("cluster_state:ok" in cli(port, "cluster", "info", timeout=30) for port in ports):
        if time.monotonic() > deadline:
            raise RuntimeError("the cluster did not reach cluster_state:ok")
        time.sleep(0.5)
    return f"redis+cluster://127.0.0.1:{ports[0]}"


def wait_for(path: Path, client: Counted, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if client.process.poll() is not None:
            raise RuntimeError(f"the driving process exited ({client.process.returncode}): see {client.out}.log")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {path.name}")
        time.sleep(0.05)


def measure(kind: str, args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    phases = ["on", "off", "off", "on"] * (args.rounds // 2) + ["on", "off"] * (args.rounds % 2)
    sync = logs / f"sync-{kind}"
    sync.mkdir()
    nodes: list[Counted] = []
    client: Counted | None = None
    counts: list[dict[str, Any]] = []
    try:
        url = start_servers(kind, logs, nodes)
        out = logs / f"client-{kind}.callgrind"
        drive = [sys.executable, __file__, "--drive", url, "--sync", str(sync), "--calls", str(args.calls)]
        drive += ["--phases", ",".join(phases), "--concurrency", str(args.concurrency)]
        with Path(f"{out}.log").open("wb") as log:  # the child holds its own copy of the descriptor
            client = Counted(
                "client", subprocess.Popen([*VALGRIND, f"--callgrind-out-file={out}", *drive], stderr=log), out
            )
        for index, phase in enumerate(phases):
            wait_for(sync / f"ready-{index}", client)
            # The driving process polls between phases: its counting goes on last and off first.
            for process in [*nodes, client]:
                callgrind(process.process.pid, "-i", "on")
            (sync / f"go-{index}").touch()
            wait_for(sync / f"done-{index}", client)
            for process in [client, *nodes]:
                callgrind(process.process.pid, "-i", "off")
            server = sum(instructions(node.dump(), "serverCron") for node in nodes)
            server_raw = sum(instructions(node.out.parent / f"{node.out.name}.{node.dumps}") for node in nodes)
            driver = instructions(client.dump())
            (sync / f"counted-{index}").touch()
            counts.append({"phase": phase, "server": server, "server_with_cron": server_raw, "client": driver})
            print(
                f"{kind:8} events {phase:3}  server {server / args.calls:>10,.0f}  (with serverCron "
                f"{server_raw / args.calls:>10,.0f})  client {driver / args.calls:>10,.0f}  instructions/call",
                flush=True,
            )
        if client.process.wait(timeout=600) != 0:
            raise RuntimeError(f"the driving process failed: see {out}.log")
    finally:
        if client is not None and client.process.poll() is None:
            client.process.kill()
        for node in nodes:
            node.process.terminate()
            node.process.wait(timeout=120)

    def per_call(phase: str, end: str) -> float:
        picked: list[int] = [count[end] for count in counts if count["phase"] == phase]
        return sum(picked) / (len(picked) * int(args.calls))

    result: dict[str, Any] = {"store": kind, "phases": counts}
    for end in ("server", "client"):
        result[end] = {phase: per_call(phase, end) for phase in ("on", "off")}
    result["round_trip"] = {phase: result["server"][phase] + result["client"][phase] for phase in ("on", "off")}
    return result


def cost(figures: dict[str, float]) -> float:
    return 1 - figures["off"] / figures["on"]


def appears(path: Path) -> None:
    """Polling, not blocking: callgrind acts on `callgrind_control` only while the process runs.
    (The event loop may stand still meanwhile: nothing else runs between phases.)"""
    while not path.exists():
        time.sleep(0.02)


async def drive(url: str, sync: Path, calls: int, phases: list[str], concurrency: int) -> None:
    """The driving process: both stores on the same server(s), each phase when the parent says go."""
    settle_garbage_collector()
    links = []
    stores = {}
    for recording in (True, False):
        link = RedisLink(connect(url, SLOW_S), timeout_s=SLOW_S)
        store = RedisCallStore(link, POLICY, SystemClock(), f"bench-{recording}")
        await store.open()
        if not recording:
            events_off(store)
        await run(store, 50, concurrency, "warm")  # scripts loaded, connections open, first-use paths taken
        links.append(link)
        stores[recording] = store
    try:
        for index, phase in enumerate(phases):
            (sync / f"ready-{index}").touch()
            appears(sync / f"go-{index}")
            await run(stores[phase == "on"], calls, concurrency, f"p{index}")
            (sync / f"done-{index}").touch()
            appears(sync / f"counted-{index}")
        for recording, store in stores.items():
            held = len(await store.read_events(None, 10))
            assert bool(held) == recording, "the switch did not do what it says"
    finally:
        await links[0].client.flushall()
        for link in links:
            await link.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200, help="calls per phase")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of events on and off")
    parser.add_argument("--stores", default="redis,cluster")
    parser.add_argument("--concurrency", type=int, default=1, help="calls in flight")
    parser.add_argument("--keep", action="store_true", help="keep the logs and callgrind files")
    parser.add_argument("--drive", help=argparse.SUPPRESS)  # the driving process (started by this script)
    parser.add_argument("--sync", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--phases", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        asyncio.run(drive(args.drive, args.sync, args.calls, args.phases.split(","), args.concurrency))
        return 0
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind not found: apt-get install -y valgrind", file=sys.stderr)
        return 2
    logs = Path(tempfile.mkdtemp(prefix="tierline-event-instr-"))
    results = []
    try:
        for kind in args.stores.split(","):
            results.append(measure(kind, args, logs))
    except BaseException:
        args.keep = True  # what went wrong is in the logs
        raise
    finally:
        if args.keep:
            print(f"logs and callgrind files kept in {logs}")
        else:
            shutil.rmtree(logs, ignore_errors=True)
    worst = max(cost(result["round_trip"]) for result in results)
    for result in results:
        server, client, both = result["server"], result["client"], result["round_trip"]
        print(
            f"{result['store']:8} instructions/call, events on / off: server {server['on']:,.0f} / {server['off']:,.0f}"
            f" ({100 * cost(server):.1f}%), client {client['on']:,.0f} / {client['off']:,.0f}"
            f" ({100 * cost(client):.1f}%), round trip {both['on']:,.0f} / {both['off']:,.0f}"
            f": recording costs {100 * cost(both):.1f}%"
        )
    verdict = "PASS" if worst <= GOAL else "MISS"
    print(f"{verdict}  recording events, share of the round trip's instructions {100 * worst:.1f}%  goal <= 10%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
