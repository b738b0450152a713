"""The HTTP ceiling Tierline is measured against: bare aiohttp handlers, no Tierline code.

    python loadtest/ceiling.py --port 9001 [--mode json|redis] [--redis-url redis://127.0.0.1:6379/0]

Serves the two benchmarked routes with bodies of the same shape as Tierline's:
- POST /v1/calls {call_id, caller}: decode with msgspec, encode a call (as Tierline's CallView);
- POST /v1/agents/{agent_id}/next {}: decode, encode a work item (call + caller record).
`--mode json` does only that: decode and encode. `--extra-work compute:N` adds N µs of pure
computation to each json route, `--extra-work memory:N` N updates of random entries of a
2,000,000-entry dict and one small object kept: a diagnosis of how a handler's own work slows
aiohttp and the kernel around it (BENCHMARKS.md, issue 14), never a ceiling for a goal.
`--mode redis` adds one pipelined redis-py
asyncio round trip per request: HGET of the caller in a bucketed tier hash + ZADD of the call
into a queue sorted set for a route; ZPOPMIN of the queue + HGET for a pop. At start it loads
`--customers` callers into the bucketed hashes (numbers and tiers as loadtest/tiermix.py).
Same event loop as `tierline serve` (asyncio's default; no uvloop), no access log.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiermix import caller_number, tier_of

BUCKETS_PER_CUSTOMER = 1 / 800  # ≤ 1024 fields per hash keeps them listpacks
RANK = {"vip": 0, "mid": 1, "standard": 2, "blacklisted": 3}


class RouteBody(msgspec.Struct, forbid_unknown_fields=True):
    call_id: str
    caller: str
    queue: str = "default"


class NextBody(msgspec.Struct, forbid_unknown_fields=True):
    queues: list[str] | None = None


class CallView(msgspec.Struct):
    call_id: str
    caller: str
    tier: str
    queue: str
    status: str
    position: int | None
    ahead: int | None
    estimated_wait_s: float | None
    arrived_at: str
    waited_s: float
    agent_id: str | None


class RecordView(msgspec.Struct):
    caller: str
    tier: str
    known: bool
    crm: dict[str, str]


class WorkView(msgspec.Struct):
    kind: str
    call: CallView
    caller: RecordView


ROUTE = msgspec.json.Decoder(RouteBody)
NEXT = msgspec.json.Decoder(NextBody)
ENCODE = msgspec.json.Encoder()
ARRIVED = "2026-01-01T00:00:00.000000Z"
CRM = {"customer_id": "C00000042", "name": "Customer 42"}


def call_view(body: RouteBody, tier: str, status: str, agent_id: str | None, seq: int) -> CallView:
    waiting = status == "waiting"
    return CallView(
        call_id=body.call_id,
        caller=body.caller,
        tier=tier,
        queue=body.queue,
        status=status,
        position=seq if waiting else None,
        ahead=seq - 1 if waiting else None,
        estimated_wait_s=None,
        arrived_at=ARRIVED,
        waited_s=0.0,
        agent_id=agent_id,
    )


def json_response(view: Any, status: int) -> web.Response:
    return web.Response(body=ENCODE.encode(view), status=status, content_type="application/json")


class Counter:
    value = 0


class ExtraWork:
    """What `--extra-work` adds to each json route."""

    def __init__(self, spec: str) -> None:
        kind, _, amount = spec.partition(":")
        if kind not in ("compute", "memory") or not amount.isdigit():
            raise SystemExit(f"--extra-work: compute:N or memory:N, not {spec!r}")
        self.kind, self.amount = kind, int(amount)
        self.table = {i: [i, i] for i in range(2_000_000)} if kind == "memory" else {}
        self.kept: list[dict[str, object]] = []
        self.draw = random.Random(1).randrange

    def do(self) -> None:
        if self.kind == "compute":
            end = time.perf_counter() + self.amount / 1e6
            while time.perf_counter() < end:
                pass
            return
        table, size = self.table, len(self.table)
        for _ in range(self.amount):
            table[self.draw(size)][0] += 1
        self.kept.append({"n": len(self.kept), "items": [1, 2, 3]})


EXTRA: list[ExtraWork] = []  # set by --extra-work


async def route_json(request: web.Request) -> web.Response:
    for extra in EXTRA:
        extra.do()
    body = ROUTE.decode(await request.read())
    Counter.value += 1
    return json_response(call_view(body, "standard", "waiting", None, Counter.value), 201)


async def next_json(request: web.Request) -> web.Response:
    NEXT.decode(await request.read() or b"{}")
    agent_id = request.match_info["agent_id"]
    body = RouteBody(call_id="r-1-42", caller=caller_number(42))
    work = WorkView(
        kind="call",
        call=call_view(body, "vip", "offered", agent_id, 0),
        caller=RecordView(caller=body.caller, tier="vip", known=True, crm=CRM),
    )
    return json_response(work, 200)


def bucket_key(caller: str, buckets: int) -> str:
    return f"bench:tiers:{{t}}:{int(caller[-8:]) % buckets}"


def redis_app(url: str, customers: int) -> web.Application:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
    buckets = max(1, int(customers * BUCKETS_PER_CUSTOMER))

    async def load(app: web.Application) -> None:
        await client.delete("bench:queue:{q}")
        pipe = client.pipeline(transaction=False)
        for i in range(customers):
            caller = caller_number(i)
            pipe.hset(bucket_key(caller, buckets), caller, tier_of(i))
            if i % 10_000 == 9_999:
                await pipe.execute()
        await pipe.execute()

    async def close(app: web.Application) -> None:
        await client.aclose()

    async def route(request: web.Request) -> web.Response:
        body = ROUTE.decode(await request.read())
        Counter.value += 1
        pipe = client.pipeline(transaction=False)
        pipe.hget(bucket_key(body.caller, buckets), body.caller)
        pipe.zadd("bench:queue:{q}", {body.call_id: Counter.value}, nx=True)
        raw_tier, _ = await pipe.execute()
        tier = raw_tier.decode() if raw_tier else "standard"
        return json_response(call_view(body, tier, "waiting", None, Counter.value), 201)

    async def pop(request: web.Request) -> web.Response:
        NEXT.decode(await request.read() or b"{}")
        agent_id = request.match_info["agent_id"]
        caller = caller_number(42)
        pipe = client.pipeline(transaction=False)
        pipe.zpopmin("bench:queue:{q}")
        pipe.hget(bucket_key(caller, buckets), caller)
        popped, raw_tier = await pipe.execute()
        if not popped:
            return web.Response(status=204)
        tier = raw_tier.decode() if raw_tier else "standard"
        body = RouteBody(call_id=popped[0][0].decode(), caller=caller)
        work = WorkView(
            kind="call",
            call=call_view(body, tier, "offered", agent_id, 0),
            caller=RecordView(caller=caller, tier=tier, known=True, crm=CRM),
        )
        return json_response(work, 200)

    app = web.Application()
    app.on_startup.append(load)
    app.on_cleanup.append(close)
    app.router.add_post("/v1/calls", route)
    app.router.add_post("/v1/agents/{agent_id}/next", pop)
    return app


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=("json", "redis"), default="json")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--extra-work", metavar="compute:N|memory:N", help="a diagnosis: work added to each json route")
    args = ap.parse_args()
    if args.extra_work:
        EXTRA.append(ExtraWork(args.extra_work))
    if args.mode == "json":
        app = web.Application()
        app.router.add_post("/v1/calls", route_json)
        app.router.add_post("/v1/agents/{agent_id}/next", next_json)
    else:
        app = redis_app(args.redis_url, args.customers)
    app.router.add_get("/healthz", healthz)
    started = time.perf_counter()

    async def ready(app: web.Application) -> None:
        print(f"ceiling ({args.mode}) ready in {time.perf_counter() - started:.1f} s", flush=True)

    app.on_startup.append(ready)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
