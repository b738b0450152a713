"""How a route decision reaches the stores: the caller's tier, then the enqueue.

On the memory store and on Redis Cluster these are two steps (a cluster keeps tier records
in other slots than the queues). On a single Redis both happen in one script, one round
trip, whenever the tier store's view of the live tier version is fresh (it re-reads it at
most once a second; that request takes the two-step path).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tierline.queue.redis_store import RedisCallStore
from tierline.queue.store import CallSnapshot, CallStore
from tierline.tiers.model import Tier
from tierline.tiers.redis_store import RedisTierStore
from tierline.tiers.store import TierStore

RouteCall = Callable[[str, str, str], Awaitable[tuple[CallSnapshot, bool]]]


def two_steps(tiers: TierStore, calls: CallStore) -> RouteCall:
    async def route(call_id: str, caller: str, queue: str) -> tuple[CallSnapshot, bool]:
        record = await tiers.lookup(caller)
        return await calls.route(call_id, record, queue)

    return route


def one_script(tiers: RedisTierStore, calls: RedisCallStore, default_tier: Tier) -> RouteCall:
    slow = two_steps(tiers, calls)

    async def route(call_id: str, caller: str, queue: str) -> tuple[CallSnapshot, bool]:
        located = tiers.locate(caller)
        if located is None:
            return await slow(call_id, caller, queue)
        return await calls.route_located(call_id, caller, queue, located, default_tier)

    return route
