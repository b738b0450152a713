"""The Redis store's event stream as an archiver's source: a consumer group, acknowledgement
after commit, trimming up to what the group acknowledged, and the drop count past the cap.

Every archiver on one store (each `tierline serve` process with history on, and any
`tierline archive`) joins the group `EVENT_GROUP` on the stream `{ns}:events` under a consumer
name of its own, so each event goes to one of them (XREADGROUP `>`). A batch is XACKed only
after the archive committed it; one a process never acknowledged (killed, or its archive down
for long) stays pending under its consumer name and another archiver takes it over once idle
for `claim_idle_s` (XAUTOCLAIM): the archive's ingest is idempotent, so a batch taken over
after it was in fact committed is stored once.

Trimming: after each acknowledgement `_TRIM` removes the entries below the group's floor, the
oldest entry still pending or, with none pending, the one after the last delivered (XTRIM
MINID, exact): every entry under it was acknowledged. It adds what it removed to
`{ns}:events:archived` in the same script. The engine's own `XADD … MAXLEN ~ cap` is the
hard cap: routing never waits for history, so past it the oldest entries go whether archived
or not. Hence the drop count, read in one script (`_FIGURES`): entries ever added, less those
still held, less those trimmed as archived. (An entry the cap pushes out after its batch was
fetched but before it was trimmed is counted as dropped though archived: that only happens
with the stream at its cap, i.e. when the archive is far behind.)
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any, Final

from tierline.queue import redis_keys as rk
from tierline.queue.history import events as ev
from tierline.queue.history.archiver import Batch
from tierline.queue.history.engine_events import from_fields
from tierline.queue.redis_link import RedisLink

DEFAULT_CLAIM_IDLE_S: Final = 30.0  # a consumer silent this long on a pending batch is taken for dead

# KEYS: stream, archived counter. ARGV: group. Returns {removed, length}.
_TRIM: Final = """
local ok, groups = pcall(redis.call, "XINFO", "GROUPS", KEYS[1])
if not ok then return {0, 0} end
local floor = nil
for _, g in ipairs(groups) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  if f["name"] == ARGV[1] then
    if tonumber(f["pending"]) > 0 then
      floor = redis.call("XPENDING", KEYS[1], ARGV[1])[2]
    else
      local epoch, seq = string.match(f["last-delivered-id"], "^(%d+)-(%d+)$")
      floor = epoch .. "-" .. string.format("%d", tonumber(seq) + 1)
    end
  end
end
if not floor then return {0, redis.call("XLEN", KEYS[1])} end
local removed = redis.call("XTRIM", KEYS[1], "MINID", floor)
if removed > 0 then redis.call("INCRBY", KEYS[2], removed) end
return {removed, redis.call("XLEN", KEYS[1])}
"""

# KEYS: stream, archived counter. Returns {length, entries added, trimmed as archived}.
_FIGURES: Final = """
local archived = tonumber(redis.call("GET", KEYS[2]) or "0")
if redis.call("EXISTS", KEYS[1]) == 0 then return {0, 0, archived} end
local info = redis.call("XINFO", "STREAM", KEYS[1])
local f = {}
for i = 1, #info, 2 do f[info[i]] = info[i + 1] end
return {f["length"], f["entries-added"], archived}
"""


def consumer_name() -> str:
    """Unique per process start, readable in XINFO CONSUMERS: host, pid and a random part."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def entry_event(entry_id: bytes | str, fields: dict[Any, Any]) -> ev.Event:
    text_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    epoch, seq = text_id.split("-")
    text = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in fields.items()
    }
    return from_fields(ev.EventId(int(epoch), int(seq)), text)


def dropped_of(length: int, added: int, archived: int) -> int:
    """Entries that left the stream without being trimmed as archived. Pure."""
    return max(0, added - length - archived)


class StreamFigures:
    """Reads the stream's length and drop count in one script (shared with the store's
    `events_dropped`)."""

    def __init__(self, link: RedisLink, namespace: str) -> None:
        self._link = link
        self._keys = [rk.engine_key(namespace, "events"), rk.engine_key(namespace, "evarchived")]
        self._script = link.client.register_script(_FIGURES)

    async def read(self) -> tuple[int, int]:
        """(length, dropped)."""
        keys = self._keys

        async def figures() -> Any:
            return await self._script(keys=keys, args=[])

        length, added, archived = (int(x) for x in await self._link.run(figures, deadline_s=5.0))
        return length, dropped_of(length, added, archived)


class RedisStreamSource:
    """One consumer of the archive group on one store's stream."""

    def __init__(
        self,
        link: RedisLink,
        namespace: str,
        *,
        consumer: str | None = None,
        claim_idle_s: float = DEFAULT_CLAIM_IDLE_S,
        group: str = rk.EVENT_GROUP,
        deadline_s: float = 5.0,
    ) -> None:
        self._link = link
        self.key = rk.engine_key(namespace, "events")
        self._archived_key = rk.engine_key(namespace, "evarchived")
        self.group = group
        self.consumer = consumer or consumer_name()
        self.claim_idle_ms = int(claim_idle_s * 1000)
        self._deadline_s = deadline_s
        self._trim = link.client.register_script(_TRIM)
        self._figures = StreamFigures(link, namespace)
        self._held: Batch | None = None  # fetched, not yet acknowledged: sent again until it is

    async def _run(self, step: Any) -> Any:
        return await self._link.run(step, deadline_s=self._deadline_s)

    async def start(self) -> None:
        """Join (or create, from the stream's first entry) the group."""
        client, key, group = self._link.client, self.key, self.group

        async def create() -> Any:
            try:
                return await client.xgroup_create(key, group, id="0", mkstream=True)
            except Exception as error:  # BUSYGROUP: another archiver made it first
                if "BUSYGROUP" not in str(error):
                    raise
                return False

        await self._run(create)

    async def fetch(self, limit: int) -> Batch:
        if self._held is not None:
            return self._held
        client, key, group, consumer = self._link.client, self.key, self.group, self.consumer

        async def claim() -> Any:
            return await client.xautoclaim(key, group, consumer, self.claim_idle_ms, start_id="0-0", count=limit)

        _, entries, _deleted = await self._run(claim)
        if not entries:

            async def read() -> Any:
                return await client.xreadgroup(group, consumer, {key: ">"}, count=limit)

            got = await self._run(read)
            entries = got[0][1] if got else []
        events = [entry_event(entry_id, fields) for entry_id, fields in entries if fields is not None]
        batch = Batch(events, token=[entry_id for entry_id, _ in entries])
        if entries:
            self._held = batch
        return batch

    async def ack(self, batch: Batch) -> None:
        client, key, group = self._link.client, self.key, self.group
        ids = batch.token if isinstance(batch.token, list) else []
        keys = [key, self._archived_key]

        async def ack_and_trim() -> Any:
            if ids:
                await client.xack(key, group, *ids)
            return await self._trim(keys=keys, args=[group])

        await self._run(ack_and_trim)
        if self._held is batch:
            self._held = None

    async def counts(self) -> tuple[int, int]:
        return await self._figures.read()

    async def close(self) -> None:
        await self._link.close()
