"""Synthetic call traffic as history events: the shapes the engines will emit, for tests and the benchmark.

Each call enters, may ring an agent who does not answer, then is answered (and ends),
abandoned (short or not) or overflowed (mid callers get a callback, completed, retried
or left to run past its deadline).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from tierline.queue.history import events as ev

QUEUES = ("sales", "support", "billing")
TIERS = ("vip", "mid", "standard")
AGENTS = tuple(f"agent{n}" for n in range(40))


def call_events(
    rng: random.Random,
    ids: ev.IdSequence,
    call_id: str,
    at: float,
    *,
    queues: tuple[str, ...] = QUEUES,
    tiers: tuple[str, ...] = TIERS,
    agents: tuple[str, ...] = AGENTS,
) -> list[ev.Event]:
    queue, tier = rng.choice(queues), rng.choice(tiers)
    caller = f"+4930{rng.randrange(10**7, 10**8)}"
    base = {"call_id": call_id, "caller": caller, "queue": queue, "tier": tier}
    out: list[ev.Event] = [ev.Enter(id=ids.next(), at=at, position=rng.randint(1, 12), **base)]
    wait = rng.expovariate(1 / 25)
    if rng.random() < 0.1:
        agent = rng.choice(agents)
        out.append(ev.Offer(id=ids.next(), at=at + wait / 3, agent=agent, **base))
        out.append(ev.RingNoAnswer(id=ids.next(), at=at + wait / 2, agent=agent, **base))
    fate = rng.random()
    if fate < 0.75:
        agent = rng.choice(agents)
        out.append(ev.Offer(id=ids.next(), at=at + wait * 0.9, agent=agent, **base))
        out.append(ev.Answer(id=ids.next(), at=at + wait, agent=agent, wait_s=wait, threshold_s=20.0, **base))
        handle = rng.uniform(30, 600)
        out.append(ev.End(id=ids.next(), at=at + wait + handle, agent=agent, handle_s=handle, **base))
    elif fate < 0.92:
        out.append(ev.Abandon(id=ids.next(), at=at + wait, wait_s=wait, short=wait < 5, threshold_s=20.0, **base))
    else:
        out.append(ev.Overflow(id=ids.next(), at=at + wait, wait_s=wait, reason="max_wait", **base))
        if tier == "mid":
            out.extend(_callback(rng, ids, base, at + wait, agents))
    return out


def _callback(
    rng: random.Random, ids: ev.IdSequence, base: dict[str, str], at: float, agents: tuple[str, ...]
) -> Iterator[ev.Event]:
    callback = {**base, "callback_id": "cb-" + base["call_id"]}
    deadline = at + 3600
    yield ev.CallbackCreated(id=ids.next(), at=at, reason="max_wait", deadline=deadline, merged=False, **callback)
    agent = rng.choice(agents)
    later = at + rng.uniform(60, 5400)  # some past the deadline
    yield ev.CallbackAssigned(id=ids.next(), at=later, agent=agent, attempt=1, **callback)
    if rng.random() < 0.7:
        yield ev.CallbackOutcomeEvent(
            id=ids.next(), at=later + 90, agent=agent, outcome="completed", attempts=1, **callback
        )
        yield ev.CallbackClosed(
            id=ids.next(), at=later + 90, agent=agent, reason="completed", deadline=deadline, **callback
        )
    else:
        yield ev.CallbackOutcomeEvent(
            id=ids.next(), at=later + 30, agent=agent, outcome="no_answer", attempts=1, **callback
        )
        yield ev.CallbackClosed(id=ids.next(), at=later + 30, reason="unreached", deadline=deadline, **callback)


def traffic(seed: int, calls: int, start: float, spacing_s: float, epoch: int = 1) -> list[ev.Event]:
    """`calls` calls arriving `spacing_s` apart on average from `start`, their events in id order."""
    rng = random.Random(seed)
    ids = ev.IdSequence(epoch)
    out: list[ev.Event] = []
    at = start
    for n in range(calls):
        out.extend(call_events(rng, ids, f"c{seed}-{n}", at))
        at += rng.expovariate(1 / spacing_s)
    return out
