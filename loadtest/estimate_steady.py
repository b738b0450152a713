"""How right the quoted waits are on a steady day: the memory store on a virtual clock.

    .venv/bin/python loadtest/estimate_steady.py [--hours 8] [--agents 20] [--aht 180]
        [--occupancy 0.9] [--seed 1] [--seeds 1] [--poll 15]

Calls arrive as Poisson streams in the tier mix of loadtest/tiermix.py (5 % VIP, 20 % mid,
72 % standard, 3 % blacklisted) at the rate that keeps `--agents` agents `--occupancy` busy
with exponential handle times of mean `--aht`. Callers are patient and nothing overflows
(the model's case: abandons and overflows only shorten the waits of those behind). An agent
that ends a call asks `next` at once; an idle agent asks again every `--poll` seconds and is
woken when a call arrives (as an ACD rings a free agent), so the engine sees idle agents as
real ones are seen. Each answered call's quote on arrival (`estimated_wait_s` of the route
answer) is compared with its wait, per tier and position bucket (1, 2–5, 6–20, >20), after a
warm-up hour; the engine's own per-tier figures (`metrics().estimate_accuracy`) are printed
beside, and ("old rule") the median ratio the rule before issue 16 had on the same calls:
position × (15 min or less) / calls answered in it. "true inputs": the same model given the
scenario's true arrival rates and handle time instead of the store's measured ones (a
diagnosis: what is left there is the model's own error, the rest is measurement). No
sleeping: the clock jumps from event to event.

The goal (issue 16): per tier and bucket, the median ratio real/quoted within 0.8–1.25.
tests/queue/test_estimate_steady.py runs a short seeded version.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agenda import Agenda
from tiermix import MIX

from tierline.queue.clock import ManualClock
from tierline.queue.estimate import estimated_wait
from tierline.queue.memory_store import MemoryCallStore
from tierline.queue.policy import Policy, TierPolicy
from tierline.queue.wait_accuracy import POSITION_BUCKETS, Accuracy, figures, position_bucket
from tierline.tiers.model import TIER_RANK, TIERS, Tier, TierRecord

T0 = 1_800_000_000.0
GOAL = (0.8, 1.25)


@dataclass
class Outcome:
    by_bucket: dict[tuple[Tier, str], Accuracy] = field(default_factory=dict)
    quoted_zero: dict[tuple[Tier, str], int] = field(default_factory=dict)  # an idle agent was there
    quoted_wait: dict[tuple[Tier, str], Accuracy] = field(default_factory=dict)  # the calls quoted > 0
    # The rule before issue 16 on the same calls: position × (15 min or less) / answers in it.
    before: dict[tuple[Tier, str], Accuracy] = field(default_factory=dict)
    # The model with the scenario's true rates and handle time (the calls quoted > 0).
    true_inputs: dict[tuple[Tier, str], Accuracy] = field(default_factory=dict)
    engine: dict[Tier, Accuracy] = field(default_factory=dict)
    answered: int = 0
    unquoted: int = 0

    def add(
        self, tier: Tier, position: int, real: float, quoted: float, before: float | None = None, true: float = 0.0
    ) -> None:
        key = (tier, position_bucket(position))
        if before is not None:
            self.before.setdefault(key, Accuracy()).record(real, before)
        if true > 0:
            self.true_inputs.setdefault(key, Accuracy()).record(real, true)
        self.by_bucket.setdefault(key, Accuracy()).record(real, quoted)
        if quoted == 0:
            self.quoted_zero[key] = self.quoted_zero.get(key, 0) + 1
        else:
            self.quoted_wait.setdefault(key, Accuracy()).record(real, quoted)


async def run(
    hours: float = 8.0,
    agents: int = 20,
    aht: float = 180.0,
    occupancy: float = 0.9,
    seed: int = 1,
    poll: float = 15.0,
    warmup_s: float = 3600.0,
) -> Outcome:
    rng = random.Random(seed)
    clock = ManualClock(T0)
    # Nothing overflows on wait: the steady case the estimate models.
    policy = Policy(tiers={tier: TierPolicy(overflow_after_s=0) for tier in TIERS})
    store = MemoryCallStore(policy, clock)
    rate = occupancy * agents / aht
    tiers = [tier for tier, _ in MIX]
    weights = [share for _, share in MIX]
    end_at = T0 + hours * 3600
    # (time, order, kind, subject): kind "arrive", "end" (agent), "poll" (agent)
    events = Agenda()
    push = events.push

    idle: set[str] = set()
    # The true rates of the tiers above each tier, for the "true inputs" quote.
    percent = sum(share for _, share in MIX)
    push_true = {
        tier: rate * sum(share for above, share in MIX if TIER_RANK[above] < TIER_RANK[tier]) / percent
        for tier in TIERS
    }
    # call -> tier, position, quote, arrival, the old rule's quote, the true inputs' quote
    quotes: dict[str, tuple[Tier, int, float | None, float, float | None, float | None]] = {}
    answers: deque[float] = deque()  # answer times, for the old rule
    out = Outcome()

    async def ask(agent: str) -> None:
        work = await store.next_work(agent, None)
        if work is None or work.call is None:
            idle.add(agent)
            push(clock.now() + poll, "poll", agent)
            return
        idle.discard(agent)
        call_id = work.call.call.call_id
        await store.answer(call_id, agent)
        tier, position, quoted, arrived, before, true = quotes.pop(call_id)
        real = clock.now() - arrived
        answers.append(clock.now())
        out.answered += 1
        if quoted is None:
            out.unquoted += 1
        elif arrived >= T0 + warmup_s:
            out.add(tier, position, real, quoted, before, true or 0.0)
        push(clock.now() + rng.expovariate(1 / aht), "end", f"{agent}|{call_id}")

    for i in range(agents):
        await ask(f"a{i}")
    push(T0 + rng.expovariate(rate), "arrive", "")
    n = 0
    while events:
        at, kind, subject = events.pop()
        if at > end_at:
            break
        clock.set(at)
        if kind == "arrive":
            n += 1
            call_id = f"c{n}"
            tier = rng.choices(tiers, weights)[0]
            snap, _ = await store.route(call_id, TierRecord(caller=f"+1{n:09d}", tier=tier, known=True), "default")
            assert snap.position is not None
            while answers and answers[0] <= at - 900:
                answers.popleft()
            before = snap.position * min(at - T0, 900) / len(answers) if answers else None
            # Agents on a call of the queue, and idle ones: as the store counts them (it forgets
            # an idle agent after IDLE_AGENT_TTL_S, longer than `poll`).
            true = estimated_wait(snap.position, agents - len(idle), len(idle), aht, push_true[tier])
            quotes[call_id] = (tier, snap.position, snap.estimated_wait_s, at, before, true)
            if idle:
                await ask(min(idle))
            push(at + rng.expovariate(rate), "arrive", "")
        elif kind == "end":
            agent, call_id = subject.split("|")
            await store.end(call_id)
            await ask(agent)
        elif subject in idle:
            await ask(subject)
    metrics = await store.metrics()
    for row in metrics.estimate_accuracy:
        out.engine.setdefault(row.tier, Accuracy()).merge(row.accuracy)  # type: ignore[arg-type]
    return out


def table(out: Outcome) -> list[str]:
    lines = [
        f"{'tier':<12} {'position':>8} {'calls':>6} {'quoted 0':>8} {'median real/quoted':>18} "
        f"{'(quoted > 0)':>12} {'MAE s':>8} {'±50%':>6} {'old rule':>8} {'true inputs':>11}  goal"
    ]
    for tier in TIERS:
        for bucket in POSITION_BUCKETS:
            acc = out.by_bucket.get((tier, bucket))
            if acc is None:
                continue
            fig = figures(acc)
            median = fig.median_ratio
            ok = "ok" if median is not None and GOAL[0] <= median <= GOAL[1] else "MISSED"
            if fig.calls < 30:
                ok += " (few calls)"
            zero = out.quoted_zero.get((tier, bucket), 0)
            waited = out.quoted_wait.get((tier, bucket))
            positive = "-" if waited is None else waited.median_ratio()
            positive = positive if isinstance(positive, str) else f"{positive:.3f}"
            old = out.before.get((tier, bucket))
            old_median = "-" if old is None else f"{old.median_ratio():.3f}"
            true = out.true_inputs.get((tier, bucket))
            true_median = "-" if true is None else f"{true.median_ratio():.3f}"
            lines.append(
                f"{tier:<12} {bucket:>8} {fig.calls:>6} {zero:>8} {median:>18} {positive:>12} "
                f"{fig.mean_abs_error_s:>8} {fig.within_50pct:>6} {old_median:>8} {true_median:>11}  {ok}"
            )
    lines.append("engine, per tier (all answered calls, warm-up included):")
    for tier, acc in out.engine.items():
        fig = figures(acc)
        lines.append(
            f"  {tier:<12} calls {fig.calls}  median {fig.median_ratio}  MAE {fig.mean_abs_error_s} s  "
            f"±50% {fig.within_50pct}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--aht", type=float, default=180.0)
    parser.add_argument("--occupancy", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=1, help="runs with seeds seed..seed+n-1, counts merged")
    parser.add_argument("--poll", type=float, default=15.0)
    args = parser.parse_args()
    total = Outcome()
    for seed in range(args.seed, args.seed + args.seeds):
        out = asyncio.run(run(args.hours, args.agents, args.aht, args.occupancy, seed, args.poll))
        total.answered += out.answered
        total.unquoted += out.unquoted
        for key, acc in out.by_bucket.items():
            total.by_bucket.setdefault(key, Accuracy()).merge(acc)
            total.quoted_zero[key] = total.quoted_zero.get(key, 0) + out.quoted_zero.get(key, 0)
        for key, acc in out.quoted_wait.items():
            total.quoted_wait.setdefault(key, Accuracy()).merge(acc)
        for key, acc in out.before.items():
            total.before.setdefault(key, Accuracy()).merge(acc)
        for key, acc in out.true_inputs.items():
            total.true_inputs.setdefault(key, Accuracy()).merge(acc)
        for tier, acc in out.engine.items():
            total.engine.setdefault(tier, Accuracy()).merge(acc)
    print(
        f"steady: {args.agents} agents, AHT {args.aht} s, occupancy {args.occupancy}, {args.hours} h × "
        f"{args.seeds} seed(s) from {args.seed}; answered {total.answered} ({total.unquoted} before any AHT)"
    )
    print("\n".join(table(total)))


if __name__ == "__main__":
    main()
