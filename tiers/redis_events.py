"""The Redis tier store's history events (issue 15): `tier_edited` through an outbox, and the
stream-append snippet `tiers_reloaded` uses in the switch script (tiers/redis_store.py).

The event stream `{ns}:events` lives in the queue slot. A reload's switch runs in the meta's
slot `{ns}:tiers`, the same hash tag, so it appends its `tiers_reloaded` in its own script.
A single edit writes a bucket `ns:t:<id>:<bucket>`, which carries no hash tag (a cluster
spreads buckets over every master), so it cannot append to the stream atomically. Instead the
edit's own script (`_EDIT`) writes the event into an outbox in the bucket's slot,
`{ns:t:<id>:<bucket>}:outbox` (the tag is the bucket key's whole name, so the same slot), and
the process then moves it to the stream (`_MOVE`, in the stream's slot) and takes it out of
the outbox (`_UNBOX`). Each entry carries a random token; `_MOVE` records the tokens it
appended (`{ns}:events:moved`, a day long), so an entry moved twice (a process that died
between the append and the removal, two processes moving one outbox) is appended once.
Outboxes that may hold entries are listed in `{ns}:tiers:outboxes` (added before the edit);
`move_all` empties them, for the entries of a process that died between its edit and its move.

The same script notes the edit in the bucket's edit list `{ns:t:<id>:<bucket>}:edits` (listed
in `{ns}:tiers:edited`, added before the edit): the hand edits a grading run keeps (issue 17),
read by `edited` and dropped by `clear_edits`; a reload leaves them.

The append itself (`STREAM_EMIT`) repeats the engine's `emit` (queue/redis_engine.lua): the
stream's epoch and sequence keys, `XADD … MAXLEN ~ cap` with the id `<epoch>-<seq>`, the event's
fields as text. tests/tiers/test_redis_tier_events.py reads these events back as `events.Event`s
through the same reader as the engine's.
"""

from __future__ import annotations

import secrets
from typing import Any, Final

from tierline.queue import redis_keys as rk
from tierline.queue.redis_link import RedisLink
from tierline.tiers.model import DEFAULT_TIER, TIERS, Tier, parse_tier

MOVED_KEEP_S: Final = 86_400  # how long a moved token is remembered: far past any retry

# A Lua function `stream_emit(k_events, k_epoch, k_seq, fields)`: append one event (a flat
# list of field, value) under the next id of the store's epoch. Redis's TIME is the fallback
# epoch when the store's keys were lost, as in the engine.
STREAM_EMIT: Final = f"""
local function stream_emit(k_events, k_epoch, k_seq, fields)
  local epoch = redis.call('GET', k_epoch)
  if not epoch then
    local t = redis.call('TIME')
    epoch = string.format('%d', t[1] * 1000 + math.floor(t[2] / 1000))
    redis.call('SET', k_epoch, epoch)
    redis.call('SET', k_seq, 0)
  end
  local args = {{'XADD', k_events, 'MAXLEN', '~', {rk.EVENT_STREAM_CAP}, epoch .. '-' .. redis.call('INCR', k_seq)}}
  for i = 1, #fields do args[#args + 1] = fields[i] end
  return redis.call(unpack(args))
end
local function redis_seconds()
  local t = redis.call('TIME')
  return string.format('%.6f', t[1] + t[2] / 1000000)
end
"""

# One edit, its outbox entry and its line in the bucket's edit list (what a grading run keeps:
# `<seconds> <microseconds> <tier>` by Redis's clock, the tier empty for a delete, so the latest
# line of a caller across versions wins; tiers/redis_store.py `edits`). KEYS[1] the bucket,
# KEYS[2] its outbox, KEYS[3] its edit list. ARGV: op ('put' | 'del'), caller, blob ('' for
# del), token, the public tier version, then the tier names by rank. Returns 'added' |
# 'changed' | 'removed' | '' (the table did not change: no event; the edit list still records it).
_EDIT: Final = (
    STREAM_EMIT
    + """
local op, caller, blob, token, version = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local old = redis.call('HGET', KEYS[1], caller)
local clock = redis.call('TIME')
local edited = op == 'put' and ARGV[6 + cmsgpack.unpack(blob)[1]] or ''
redis.call('HSET', KEYS[3], caller, clock[1] .. ' ' .. clock[2] .. ' ' .. edited)
local edit, tier
if op == 'put' then
  if old == blob then return '' end
  redis.call('HSET', KEYS[1], caller, blob)
  edit = old and 'changed' or 'added'
  tier = ARGV[6 + cmsgpack.unpack(blob)[1]]
else
  if not old then return '' end
  redis.call('HDEL', KEYS[1], caller)
  edit = 'removed'
  tier = ARGV[6 + cmsgpack.unpack(old)[1]]
end
redis.call('RPUSH', KEYS[2], cjson.encode({token = token, at = redis_seconds(), caller = caller,
  tier = tier, edit = edit, version = version}))
return edit
"""
)

# Append outbox entries to the stream, each once. KEYS: the stream, its epoch and sequence
# keys, the moved tokens. ARGV: the entries (JSON, as `_EDIT` wrote them). Returns how many
# were appended now (the rest had been).
_MOVE: Final = (
    STREAM_EMIT
    + f"""
local t = redis.call('TIME')
local now = tonumber(t[1])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - {MOVED_KEEP_S})
local appended = 0
for i = 1, #ARGV do
  local e = cjson.decode(ARGV[i])
  if not redis.call('ZSCORE', KEYS[4], e.token) then
    stream_emit(KEYS[1], KEYS[2], KEYS[3], {{'kind', 'tier_edited', 'at', e.at, 'caller', e.caller,
      'tier', e.tier, 'edit', e.edit, 'version', e.version}})
    redis.call('ZADD', KEYS[4], now, e.token)
    appended = appended + 1
  end
end
return appended
"""
)

# Take moved entries out of an outbox, each by its value (unique by token): entries another
# process pushed meanwhile stay. KEYS[1] the outbox. ARGV: the entries. Returns the length left.
_UNBOX: Final = """
for i = 1, #ARGV do redis.call('LREM', KEYS[1], 1, ARGV[i]) end
return redis.call('LLEN', KEYS[1])
"""

MOVE_BATCH: Final = 500
EDIT_BATCH: Final = 256  # edit hashes per round trip when the edit list is read


class TierOutbox:
    """Edits with their `tier_edited` events, and the move of those events to the stream."""

    def __init__(self, link: RedisLink, namespace: str) -> None:
        client = link.client
        self._link = link
        self._ns = namespace
        self._index = rk.tier_outboxes_key(namespace)
        self._edited = rk.tier_edited_key(namespace)
        self._stream_keys = [
            rk.engine_key(namespace, "events"),
            rk.engine_key(namespace, "evepoch"),
            rk.engine_key(namespace, "evseq"),
            rk.engine_key(namespace, "evmoved"),
        ]
        self._edit = client.register_script(_EDIT)
        self._move = client.register_script(_MOVE)
        self._unbox = client.register_script(_UNBOX)

    async def edit(self, bucket_key: str, op: str, caller: str, blob: bytes, version: int) -> str:
        """Apply a put (`blob`) or a delete, with its event in the bucket's outbox; then move
        the outbox to the stream. Returns the edit ('added', 'changed', 'removed', '')."""
        outbox = rk.tier_outbox_key(bucket_key)
        edits = rk.tier_edits_key(bucket_key)
        client = self._link.client
        # Listed before the edit, so a process that dies between the two leaves nothing unlisted.
        await self._link.run(lambda: client.sadd(self._index, outbox))
        await self._link.run(lambda: client.sadd(self._edited, edits))
        args: list[Any] = [op, caller, blob, secrets.token_hex(8), str(version), *TIERS]
        done = await self._link.run(lambda: self._edit(keys=[bucket_key, outbox, edits], args=args))
        edit = done.decode() if isinstance(done, bytes) else str(done)
        if edit:
            await self.move(outbox)
        return edit

    async def edited(self) -> dict[str, Tier]:
        """The hand edits since the list was last cleared: caller -> tier, the latest line of each
        caller across the listed edit hashes (a delete's line takes the caller out).

        O(edits): one SMEMBERS, then one HGETALL per listed hash, pipelined."""
        client = self._link.client
        keys = [_text(raw) for raw in await self._link.run(lambda: client.smembers(self._edited))]
        latest: dict[str, tuple[int, int, str]] = {}
        for start in range(0, len(keys), EDIT_BATCH):
            batch = keys[start : start + EDIT_BATCH]

            async def read(batch: list[str] = batch) -> list[dict[bytes, bytes]]:
                pipe = client.pipeline(transaction=False)
                for key in batch:
                    pipe.hgetall(key)
                found: list[dict[bytes, bytes]] = await pipe.execute()
                return found

            for lines in await self._link.run(read):
                for raw_caller, line in lines.items():
                    seconds, micros, tier = line.decode().split(" ", 2)
                    seen = (int(seconds), int(micros), tier)
                    caller = raw_caller.decode()
                    if caller not in latest or latest[caller][:2] < seen[:2]:
                        latest[caller] = seen
        return {caller: parse_tier(tier) or DEFAULT_TIER for caller, (_, _, tier) in latest.items() if tier}

    async def clear_edits(self) -> int:
        """Drop every listed edit hash (after a grading run that reset them); returns how many
        edits (as `edited` counts them) went. An edit landing between the read and the drop is
        dropped with them."""
        client, dropped = self._link.client, len(await self.edited())
        for raw in await self._link.run(lambda: client.smembers(self._edited)):
            key = _text(raw)
            await self._link.run(lambda: client.unlink(key))  # noqa: B023 (awaited at once)
            await self._link.run(lambda: client.srem(self._edited, key))  # noqa: B023
        return dropped

    async def move(self, outbox: str) -> int:
        """Move one outbox's entries to the stream; returns how many were appended."""
        client, appended = self._link.client, 0
        while True:
            entries = await self._link.run(lambda: client.lrange(outbox, 0, MOVE_BATCH - 1))
            if not entries:
                break
            batch = list(entries)
            appended += int(await self._link.run(lambda: self._move(keys=self._stream_keys, args=batch)))  # noqa: B023
            left = int(await self._link.run(lambda: self._unbox(keys=[outbox], args=batch)))  # noqa: B023
            if not left:
                break
        return appended

    async def move_all(self) -> int:
        """Empty every listed outbox (those a process left behind), unlisting the empty ones."""
        client, appended = self._link.client, 0
        for raw in await self._link.run(lambda: client.smembers(self._index)):
            outbox = raw.decode() if isinstance(raw, bytes) else str(raw)
            appended += await self.move(outbox)
            if not await self._link.run(lambda: client.llen(outbox)):  # noqa: B023 (awaited at once)
                await self._link.run(lambda: client.srem(self._index, outbox))  # noqa: B023
        return appended


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)
