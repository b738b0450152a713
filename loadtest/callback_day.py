"""Callbacks on a busy day under two `next` orders: the memory store on a virtual clock.

    .venv/bin/python loadtest/callback_day.py [--agents 20] [--aht 180] [--occupancy 0.9]
        [--callbacks-per-hour 15] [--callback-aht 240] [--no-answer 0.3] [--hours 24]
        [--seed 1] [--seeds 3]

Inbound calls arrive as one Poisson stream in the tier mix of loadtest/tiermix.py at the rate
that keeps `--agents` agents `--occupancy` busy with exponential handle times of mean `--aht`;
callers are patient and nothing overflows on wait, so the callbacks are exactly the requested
stream: `--callbacks-per-hour` mid callers who ask for one (routed and hung up at once, with
`short_abandon_s` 0). A callback attempt reaches the customer with probability
1 − `--no-answer` and then takes an exponential `--callback-aht`; an unanswered attempt takes
60 s and is retried by the store after 30 min, at most 3 attempts, within the 24 h deadline.

An agent asks `next` when it ends a piece of work; an idle agent (its last `next` found nothing)
is woken when work appears: a call, a callback, a retry falling due. Traffic runs for a
warm-up day, the measured `--hours`, and a callback window (24 h) after, so every measured
callback's deadline falls under load; the callbacks created in the measured hours are counted.

Two rules on the same seeded day: "tiered" (issue 16: VIP, mid, callbacks within 2 h of their
deadline, standard, blacklisted, other callbacks) and "calls first" (`callback_urgent_s` 0:
every inbound call before any callback, the order before issue 16).
tests/queue/test_callback_day.py runs a short seeded version.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agenda import Agenda
from tiermix import MIX

from tierline.queue.clock import ManualClock
from tierline.queue.memory_store import MemoryCallStore
from tierline.queue.policy import CallbackPolicy, Policy, TierPolicy
from tierline.tiers.model import TIERS, Tier, TierRecord

T0 = 1_800_000_000.0
HOUR = 3600.0
NO_ANSWER_S = 60.0
RULES = {"tiered": 7200.0, "calls first": 0.0}


@dataclass
class Day:
    """What one run measured."""

    callbacks: int = 0
    in_time: int = 0
    late: int = 0
    unreached: int = 0
    open_at_end: int = 0
    hours_to_complete: list[float] = field(default_factory=list)
    waits: dict[Tier, list[float]] = field(default_factory=lambda: {t: [] for t in TIERS})

    @property
    def in_time_share(self) -> float:
        return self.in_time / self.callbacks if self.callbacks else 1.0


def policy(urgent_s: float, window_h: float = 24.0) -> Policy:
    return Policy(
        callback_urgent_s=urgent_s,
        short_abandon_s=0.0,  # a caller who hangs up at once is asking for the callback
        tiers={"mid": TierPolicy(overflow_after_s=0.0)},  # no overflow: the callback stream is exact
        callbacks=CallbackPolicy(window_s=window_h * HOUR, retry_delay_s=30 * 60.0, max_attempts=3),
    )


async def run(
    urgent_s: float,
    *,
    agents: int = 20,
    aht: float = 180.0,
    occupancy: float = 0.9,
    callbacks_per_hour: float = 15.0,
    callback_aht: float = 240.0,
    no_answer: float = 0.3,
    hours: float = 24.0,
    warmup_h: float = 24.0,
    window_h: float = 24.0,
    peak_hours: float = 0.0,
    peak_occupancy: float = 0.0,
    seed: int = 1,
) -> Day:
    # Arrivals draw from their own stream, so both rules see the same day's calls and requests.
    rng = random.Random(seed)
    work_rng = random.Random(seed + 1_000_003)
    clock = ManualClock(T0)
    store = MemoryCallStore(policy(urgent_s, window_h), clock)
    # A busy day: the first `peak_hours` of each day at `peak_occupancy`, the rest lower so
    # the day still averages `occupancy` (arrivals thinned from the peak rate).
    base = occupancy
    if peak_hours:
        base = (occupancy * 24 - peak_occupancy * peak_hours) / (24 - peak_hours)
    top = max(base, peak_occupancy)
    inbound_rate = top * agents / aht

    def accept(at: float) -> bool:
        hour = ((at - T0) / HOUR) % 24
        return rng.random() < (peak_occupancy if hour < peak_hours else base) / top

    measure_from, measure_to = T0 + warmup_h * HOUR, T0 + (warmup_h + hours) * HOUR
    traffic_end = measure_to + window_h * HOUR
    tiers = [tier for tier, _ in MIX]
    weights = [share for _, share in MIX]
    agenda = Agenda()
    push = agenda.push
    idle: set[str] = set()
    measured: dict[str, float] = {}  # callback_id -> created_at, for those created in the measured hours
    day = Day()

    async def ask(agent: str) -> None:
        work = await store.next_work(agent, None)
        now = clock.now()
        if work is None:
            idle.add(agent)
            return
        idle.discard(agent)
        if work.call is not None:
            call = work.call.call
            answered = await store.answer(call.call_id, agent)
            if measure_from <= call.arrived_at < measure_to:
                day.waits[call.tier].append(answered.call.waited(now))
            push(now + work_rng.expovariate(1 / aht), "end", f"{agent} {call.call_id}")
        else:
            assert work.callback is not None
            reached = work_rng.random() >= no_answer
            took = work_rng.expovariate(1 / callback_aht) if reached else NO_ANSWER_S
            outcome = "completed" if reached else "no_answer"
            push(now + took, "outcome", f"{agent} {work.callback.callback_id} {outcome}")

    async def wake() -> None:
        if idle:
            await ask(min(idle))

    for i in range(agents):
        await ask(f"a{i:02d}")
    push(T0 + rng.expovariate(inbound_rate), "call")
    push(T0 + rng.expovariate(callbacks_per_hour / HOUR), "request")
    n = 0
    while agenda:
        at, kind, subject = agenda.pop()
        if at > traffic_end and kind in ("call", "request"):
            continue
        clock.set(max(at, clock.now()))
        n += 1
        if kind == "call":
            push(at + rng.expovariate(inbound_rate), "call")
            if not accept(at):
                continue
            tier = rng.choices(tiers, weights)[0]
            await store.route(f"c{n}", TierRecord(caller=f"+1{n:010d}", tier=tier, known=True), "default")
            await wake()
        elif kind == "request":
            await store.route(f"r{n}", TierRecord(caller=f"+2{n:010d}", tier="mid", known=True), "default")
            snap = await store.abandon(f"r{n}")
            assert snap.callback is not None
            if measure_from <= at < measure_to:
                measured[snap.callback.callback_id] = at
            await wake()
            push(at + rng.expovariate(callbacks_per_hour / HOUR), "request")
        elif kind == "end":
            agent, call_id = subject.split()
            await store.end(call_id)
            await ask(agent)
        elif kind == "outcome":
            agent, callback_id, outcome = subject.split()
            done = await store.callback_outcome(callback_id, outcome, agent, None)  # type: ignore[arg-type]
            if done.status == "open":
                push(done.next_attempt_at, "retry")
            if callback_id in measured and not done.active:
                day.callbacks += 1
                if done.status == "completed":
                    assert done.closed_at is not None
                    day.hours_to_complete.append((done.closed_at - done.created_at) / HOUR)
                    if done.completed_in_time():
                        day.in_time += 1
                    else:
                        day.late += 1
                else:
                    day.unreached += 1
                del measured[callback_id]
            await ask(agent)
        else:  # a retry fell due
            await wake()
    day.callbacks += len(measured)
    day.open_at_end = len(measured)
    return day


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(rule: str, days: list[Day], threshold_s: float = 20.0) -> list[str]:
    total = sum(d.callbacks for d in days)
    in_time = sum(d.in_time for d in days)
    late = sum(d.late for d in days)
    unreached = sum(d.unreached for d in days)
    left = sum(d.open_at_end for d in days)
    hours = [h for d in days for h in d.hours_to_complete]
    lines = [
        f"{rule}: callbacks {total}, completed by the deadline {in_time / total:.1%} "
        f"(late {late}, unreached after 3 attempts {unreached}, open at the end {left}); "
        f"hours to completion median {statistics.median(hours):.2f}, p95 {pct(hours, 0.95):.2f}"
    ]
    for tier in TIERS:
        waits = [w for d in days for w in d.waits[tier]]
        if waits:
            within = sum(w <= threshold_s for w in waits) / len(waits)
            lines.append(
                f"  {tier:<11} answered {len(waits):>6}  within {threshold_s:.0f} s {within:6.1%}  "
                f"ASA {statistics.fmean(waits):7.1f} s  p95 wait {pct(waits, 0.95):7.1f} s"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--aht", type=float, default=180.0)
    parser.add_argument("--occupancy", type=float, default=0.9)
    parser.add_argument("--callbacks-per-hour", type=float, default=15.0)
    parser.add_argument("--callback-aht", type=float, default=240.0)
    parser.add_argument("--no-answer", type=float, default=0.3)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--peak-hours", type=float, default=0.0, help="a busy day: hours at --peak-occupancy")
    parser.add_argument("--peak-occupancy", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    for rule, urgent_s in RULES.items():
        days = [
            asyncio.run(
                run(
                    urgent_s,
                    agents=args.agents,
                    aht=args.aht,
                    occupancy=args.occupancy,
                    callbacks_per_hour=args.callbacks_per_hour,
                    callback_aht=args.callback_aht,
                    no_answer=args.no_answer,
                    hours=args.hours,
                    peak_hours=args.peak_hours,
                    peak_occupancy=args.peak_occupancy,
                    seed=args.seed + k,
                )
            )
            for k in range(args.seeds)
        ]
        print("\n".join(report(rule, days)))


if __name__ == "__main__":
    main()
