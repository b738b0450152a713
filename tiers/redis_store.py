"""The Redis tier store: the caller table in versioned, bucketed hashes, shared by every process.

Layout (namespace `ns`; the names are built in queue/redis_keys.py, with every other key):
- `{ns}:tiers` — the meta hash: `current` (the live data version), `previous` (kept for
  rollback), `swaps` (the public version number), `next_id`, and per data version
  `v<id>:buckets` (written when the id is allocated, before any bucket), `v<id>:count`, and
  `v<id>:retired` (Redis time in ms, once it is neither current nor previous).
- `{ns}:tiers:lock` — the reload lock (same slot as the meta): a random token, a lease.
- `ns:t:<id>:<bucket>` — a small hash of `caller → codec blob` (tier rank and CRM fields).
  About 64 callers per bucket keeps each hash a listpack under Redis's default
  `hash-max-listpack-entries` (128): ~35 bytes per caller instead of ~100 for a key each.
  Bucket keys carry no hash tag, so a cluster spreads them over every master.
- `ns:t:<id>:fields` — the CRM column names a blob's field ids point into, and the shared sets
  of repeated values (`codec.SHARED_MARK` entries).
- `{ns}:tiers:grading` — the last grading run's report (JSON), for GET /admin/grading.
- `{ns:t:<id>:<bucket>}:edits`, listed in `{ns}:tiers:edited` — hand edits since a grading run
  last cleared them (`edits`; tiers/redis_events.py writes them in the edit's own script).

A reload parses, buckets and packs the file in a child process (`redis_pack`: that CPU work
never runs on a router's event loop), writes a whole new data version with one small EVAL
per bucket, then switches `current` in one atomic script: a look-up anywhere sees the old
version or the new one, never a mix.

Retention ("old or new record, never nothing"): each process caches which version is live
for META_TTL_S (1 s) and keeps looking up (and routing, in the engine script) in that version
meanwhile. So no switch deletes anything: the version a swap pushes out of `previous`, or a
rollback pushes out of `current`, is marked retired and stays readable for GRACE_S (30 s,
far longer than the cache plus a command's longest deadline). The next reload or rollback
(the lock's holder) drops every version that is neither current, previous nor retired
within its grace. Between reloads Redis thus holds up to three versions: live, previous
(for `--rollback`) and the one retired by the last swap.

The lock is a lease of LEASE_S (15 s) renewed every third of it while the reload runs, held by
a random token that only its owner renews or releases (compared in Lua; the switch compares
it too, so a reload that lost its lock switches nothing). A reloader that dies blocks other
reloads for at most the lease; what it half-wrote (an id allocated, never switched to) is an
orphan that the next reload drops; a reload failing on a Redis error drops what it wrote at
once, or leaves it to the next reload if Redis cannot be reached.

When Redis cannot answer, a look-up answers from a bounded cache of recent answers, or the
default tier, marked `degraded`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec
from redis.exceptions import RedisError

from tierline.queue import redis_keys as rk
from tierline.queue.errors import Conflict, EngineError, Unavailable
from tierline.queue.redis_keys import DEFAULT_NAMESPACE
from tierline.queue.redis_link import RedisLink
from tierline.tiers import codec, redis_pack
from tierline.tiers.codec import FieldNames
from tierline.tiers.freshness import OUTCOMES, ReloadOutcome, TierFreshness
from tierline.tiers.model import DEFAULT_TIER, TIER_RANK, TIERS, Tier, TierRecord
from tierline.tiers.parse import BadTierFile, TierFileFormat
from tierline.tiers.phone import normalise_caller
from tierline.tiers.redis_events import STREAM_EMIT, TierOutbox
from tierline.tiers.redis_pack import bucket_of
from tierline.tiers.reload import DEFAULT_MAX_REJECT_RATIO, ReloadResult

log = logging.getLogger("tierline.tiers")

PER_BUCKET: Final = 64
META_TTL_S: Final = 1.0
# How long a version that stopped being current or previous stays readable: longer than a
# router may keep using it (its cached meta, META_TTL_S, plus a command's longest deadline,
# 2 × redis_timeout_s ≤ 10 s).
GRACE_S: Final = 30.0
# The reload lock is a lease: renewed every third of it while its reload runs, so a reloader
# that dies (SIGKILL, a lost host) blocks other reloads for at most this long.
LEASE_S: Final = 15.0
WRITE_BATCH: Final = 10_000  # callers per pipeline flush (one command per bucket of ~64)
IN_FLIGHT: Final = 3
CACHE_SIZE: Final = 100_000
Progress = Callable[[int, int], None]

# One bucket of a new version from one argument: `caller, blob, caller, blob, ...`, each a
# 4-byte big-endian length and its bytes (`redis_pack.pack_buckets`). One argument per bucket keeps the
# client's per-argument work off the event loop. KEYS[1] the bucket. Returns the callers written.
_WRITE_BUCKET: Final = """
local s, pos, items = ARGV[1], 1, {}
while pos <= #s do
  local len, at = struct.unpack('>I4', s, pos)
  items[#items + 1] = string.sub(s, at, at + len - 1)
  pos = at + len
end
redis.call('HSET', KEYS[1], unpack(items))
return #items / 2
"""

# Lua: Redis's own clock in milliseconds, so every process agrees on when a version retired.
_NOW_MS: Final = "local t = redis.call('TIME'); local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"

# Switch atomically, if this reload still holds the lock. KEYS[1] meta, KEYS[2] the lock,
# KEYS[3..5] the event stream, its epoch and sequence (the same hash tag: one slot);
# ARGV[1] the new data id ('' for a rollback), ARGV[2] 'swap' | 'rollback', ARGV[3] the lock's
# token, ARGV[4] the new version's callers per tier (JSON). A version that stops being current
# or previous is not deleted here: it is marked `v<id>:retired` (Redis time, ms) and kept
# readable for the grace period. The switch appends its `tiers_reloaded` event in the same step.
# Returns 1; 0 for a rollback with no previous version; -1 when the lock is not ours (any more).
_SWITCH: Final = (
    _NOW_MS
    + STREAM_EMIT
    + """
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return -1 end
local prev = redis.call('HGET', KEYS[1], 'previous')
local cur = redis.call('HGET', KEYS[1], 'current')
local retired
if ARGV[2] == 'rollback' then
  if not prev then return 0 end
  redis.call('HSET', KEYS[1], 'current', prev)
  redis.call('HDEL', KEYS[1], 'previous')
  retired = cur
else
  redis.call('HSET', KEYS[1], 'current', ARGV[1])
  redis.call('HSET', KEYS[1], 'v' .. ARGV[1] .. ':loaded', now)
  redis.call('HSET', KEYS[1], 'v' .. ARGV[1] .. ':counts', ARGV[4])
  if cur then redis.call('HSET', KEYS[1], 'previous', cur) end
  retired = prev
end
if retired then redis.call('HSET', KEYS[1], 'v' .. retired .. ':retired', now) end
local version = redis.call('HINCRBY', KEYS[1], 'swaps', 1)
local live = redis.call('HGET', KEYS[1], 'current')
stream_emit(KEYS[3], KEYS[4], KEYS[5], {'kind', 'tiers_reloaded', 'at', redis_seconds(),
  'version', tostring(version), 'counts', redis.call('HGET', KEYS[1], 'v' .. live .. ':counts') or '{}'})
return 1
"""
)

# One reload's outcome, counted in the meta beside the table so every process reports the same
# figures, timed by Redis's clock. KEYS[1] meta; ARGV[1] the outcome.
_COUNT_RELOAD: Final = (
    _NOW_MS
    + """
redis.call('HINCRBY', KEYS[1], 'reloads:' .. ARGV[1], 1)
redis.call('HSET', KEYS[1], 'reloads:' .. ARGV[1] .. ':at', now)
return 1
"""
)

# A new data id, recorded in the meta with its bucket count before anything is written, so a
# reload that dies half-way leaves a version the next prune finds. KEYS[1] meta; ARGV[1] buckets.
_ALLOCATE: Final = """
local id = redis.call('HINCRBY', KEYS[1], 'next_id', 1)
redis.call('HSET', KEYS[1], 'v' .. id .. ':buckets', ARGV[1])
return id
"""

# The lock's owner alone renews (ARGV[2] ms) or releases it. KEYS[1] the lock; ARGV[1] the token.
_RENEW: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# The versions that may go: any data id named in the meta (`v<id>:…`) that is neither current
# nor previous nor retired less than ARGV[1] ms ago: retired ones past their grace, and the
# orphans of reloads that died or failed half-way (allocated, never switched to). Only the
# lock's holder prunes, so no live reload's version is among them. KEYS[1] meta.
# Returns {id, buckets, ...}.
_PRUNABLE: Final = (
    _NOW_MS
    + """
local cur = redis.call('HGET', KEYS[1], 'current') or '0'
local prev = redis.call('HGET', KEYS[1], 'previous')
local grace = tonumber(ARGV[1])
local found = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local id, what = string.match(all[i], '^v(%d+):(%a+)$')
  if id then
    found[id] = found[id] or {}
    found[id][what] = all[i + 1]
  end
end
local out = {}
for id, f in pairs(found) do
  if id ~= cur and id ~= prev and not (f.retired and now - tonumber(f.retired) < grace) then
    out[#out + 1] = id
    out[#out + 1] = f.buckets or '1'
  end
end
return out
"""
)


_TABLE_BATCH: Final = 256  # buckets per round trip when the whole table is read


@dataclass(slots=True)
class _Meta:
    data_id: int
    buckets: int
    fields: FieldNames
    read_at: float


class _Lease:
    """The reload lock, held as a lease: `SET NX PX`, renewed by a background task while held.

    The value is a random token, so only its owner renews or releases it (compare in Lua);
    a holder that dies lets it lapse within `lease_s`. A holder that finds the lock gone or
    taken (it could not renew in time) stops writing at its next batch (`check`), and its
    switch is refused anyway: the switch script compares the token.
    """

    def __init__(self, link: RedisLink, key: str, lease_s: float, renew: Any, release: Any) -> None:
        self._link, self._key, self._renew, self._release = link, key, renew, release
        self._lease_ms = max(1, round(lease_s * 1000))
        self.token = secrets.token_hex(16)
        self._lost = False
        self._renewing: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _Lease:
        client = self._link.client
        taken = await self._link.run(lambda: client.set(self._key, self.token, nx=True, px=self._lease_ms))
        if not taken:
            raise Conflict("another tier reload is running", code="reload_in_progress")
        self._renewing = asyncio.create_task(self._keep())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._renewing is not None
        self._renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._renewing
        with contextlib.suppress(EngineError, RedisError):  # else it lapses within the lease
            await self._link.run(lambda: self._release(keys=[self._key], args=[self.token]))

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            try:
                renewed = await self._link.run(lambda: self._renew(keys=[self._key], args=[self.token, self._lease_ms]))
            except Unavailable:
                continue  # the next try may still be in time; if not, `check` or the switch will tell
            if not renewed:
                log.error("tier reload: the lock lapsed or was taken; this reload stops without switching")
                self._lost = True
                return

    def check(self) -> None:
        if self._lost:
            raise self.lost_error()

    def lost_error(self) -> Conflict:
        self._lost = True
        return Conflict(
            "this tier reload lost its lock (it could not renew it in time); nothing was switched",
            code="reload_in_progress",
        )


class RedisTierStore:
    def __init__(
        self,
        link: RedisLink,
        namespace: str = DEFAULT_NAMESPACE,
        default_tier: Tier = DEFAULT_TIER,
        max_reject_ratio: float = DEFAULT_MAX_REJECT_RATIO,
        *,
        grace_s: float = GRACE_S,
        lease_s: float = LEASE_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._link = link
        self._grace_ms = round(grace_s * 1000)
        self._lease_s = lease_s
        self._clock = monotonic
        # Replies are bytes: the connection is opened without decode_responses (blobs are binary).
        self._client: Any = link.client
        self._ns = namespace
        self._meta_key = rk.tier_meta_key(namespace)
        # The last grading run's report (issue 17): one string, read only by GET /admin/grading.
        self._grading_key = self._meta_key + ":grading"
        self._default_tier: Tier = default_tier
        self._max_reject_ratio = max_reject_ratio
        self._meta: _Meta | None = None
        self._cache: OrderedDict[str, TierRecord] = OrderedDict()
        self._lock_key = rk.tier_lock_key(namespace)  # the meta's slot: one script sees both
        self._switch = self._client.register_script(_SWITCH)
        self._prunable = self._client.register_script(_PRUNABLE)
        self._allocate = self._client.register_script(_ALLOCATE)
        self._renew = self._client.register_script(_RENEW)
        self._release = self._client.register_script(_RELEASE)
        self._count_reload_script = self._client.register_script(_COUNT_RELOAD)
        self._outbox = TierOutbox(link, namespace)
        self._switch_keys = [
            self._meta_key,
            self._lock_key,
            rk.engine_key(namespace, "events"),
            rk.engine_key(namespace, "evepoch"),
            rk.engine_key(namespace, "evseq"),
        ]

    def _bucket_key(self, data_id: int, bucket: int) -> str:
        return rk.tier_bucket_key(self._ns, data_id, bucket)

    def _fields_key(self, data_id: int) -> str:
        return rk.tier_fields_key(self._ns, data_id)

    def _key_of(self, meta: _Meta, caller: str) -> str:
        return rk.tier_bucket_key(self._ns, meta.data_id, bucket_of(caller, meta.buckets))

    def _fresh_meta(self) -> _Meta | None:
        """The cached view of the live version, if read less than META_TTL_S ago."""
        meta = self._meta
        return meta if meta is not None and self._clock() - meta.read_at < META_TTL_S else None

    # --- look-up ------------------------------------------------------------------------------

    async def _current(self, force: bool = False) -> _Meta:
        meta = None if force else self._fresh_meta()
        if meta is not None:
            return meta

        async def read() -> _Meta:
            current = await self._client.hget(self._meta_key, "current")
            data_id = int(current or 0)
            buckets = await self._client.hget(self._meta_key, f"v{data_id}:buckets")
            names = await self._client.lrange(self._fields_key(data_id), 0, -1)
            return _Meta(data_id, int(buckets or 1), FieldNames(n.decode() for n in names), self._clock())

        self._meta = await self._link.run(read)
        return self._meta

    def locate(self, caller: str) -> tuple[str, str] | None:
        """Where the caller's record would be (bucket key, field-names key), from a fresh meta.

        None when the meta is older than a second: then the caller takes `lookup`, which
        re-reads it. Lets a single-Redis deployment look up and enqueue in one script.
        """
        meta = self._fresh_meta()
        if meta is None:
            return None
        return self._key_of(meta, caller), self._fields_key(meta.data_id)

    async def lookup(self, caller: str) -> TierRecord:
        try:
            meta = await self._current()
            key = self._key_of(meta, caller)
            blob = await self._link.run(lambda: self._client.hget(key, caller))
        except Unavailable:
            cached = self._cache.get(caller)
            base = cached or TierRecord(caller=caller, tier=self._default_tier, known=False)
            return msgspec.structs.replace(base, degraded=True)
        if blob is None:
            record = TierRecord(caller=caller, tier=self._default_tier, known=False)
        else:
            try:
                record = codec.decode(caller, blob, meta.fields)
            except IndexError:  # a field name added since the meta was read
                record = codec.decode(caller, blob, (await self._current(force=True)).fields)
        self._remember(caller, record)
        return record

    def _remember(self, caller: str, record: TierRecord) -> None:
        cache = self._cache
        cache[caller] = record
        if len(cache) > CACHE_SIZE:
            cache.popitem(last=False)

    # --- single edits -------------------------------------------------------------------------

    async def put(self, caller: str, tier: Tier, crm: Mapping[str, str] | None = None) -> TierRecord:
        caller = normalise_caller(caller)
        meta = await self._current(force=True)
        fields: list[int | str] = []
        for name, value in (crm or {}).items():
            if value:
                fields.append(await self._field_id(meta, name))
                fields.append(value)
        blob = codec.encode(TIER_RANK[tier], fields)
        key = self._key_of(meta, caller)
        edit = await self._outbox.edit(key, "put", caller, blob, await self.version())
        if edit == "added":
            await self._link.run(lambda: self._client.hincrby(self._meta_key, f"v{meta.data_id}:count", 1))
        record = codec.decode(caller, blob, meta.fields)
        self._remember(caller, record)
        return record

    async def _field_id(self, meta: _Meta, name: str) -> int:
        if name.startswith(codec.SHARED_MARK):
            raise ValueError(f"a CRM field name may not start with {codec.SHARED_MARK!r}")
        if name in meta.fields.names:
            return meta.fields.names.index(name)
        length = await self._link.run(lambda: self._client.rpush(self._fields_key(meta.data_id), name))
        # Another process may have appended names meanwhile: the list is the truth.
        names = await self._link.run(lambda: self._client.lrange(self._fields_key(meta.data_id), 0, -1))
        meta.fields = FieldNames(n.decode() for n in names)
        return int(length) - 1

    async def delete(self, caller: str) -> bool:
        caller = normalise_caller(caller)
        meta = await self._current(force=True)
        key = self._key_of(meta, caller)
        removed = await self._outbox.edit(key, "del", caller, b"", await self.version()) == "removed"
        if removed:
            await self._link.run(lambda: self._client.hincrby(self._meta_key, f"v{meta.data_id}:count", -1))
        self._cache.pop(caller, None)
        return bool(removed)

    # --- reload -------------------------------------------------------------------------------

    async def reload_file(self, path: Path, fmt: TierFileFormat, progress: Progress | None = None) -> ReloadResult:
        async with self._lease() as lease:
            try:
                async with redis_pack.prepare(path, fmt, PER_BUCKET, self._max_reject_ratio) as prepared:
                    summary = prepared.summary
                    if summary.swapped:
                        lease.check()
                        await self._prune()
                        await self._write_version(prepared, lease, progress)
            except BadTierFile:
                await self._count_reload("invalid")
                raise
            await self._count_reload("swapped" if summary.swapped else "refused")
            return ReloadResult(
                version=await self.version(),
                loaded=summary.loaded,
                rejected=summary.rejected,
                rejected_count=summary.rejected_count,
                swapped=summary.swapped,
            )

    async def _count_reload(self, outcome: ReloadOutcome) -> None:
        # The reload itself is done (or refused) by now: a count that cannot be written must
        # not turn its answer into an error.
        try:
            await self._link.run(lambda: self._count_reload_script(keys=[self._meta_key], args=[outcome]))
        except (EngineError, RedisError) as exc:
            log.warning("tier reload: its outcome %s was not counted: %s", outcome, exc)

    def _lease(self) -> _Lease:
        return _Lease(self._link, self._lock_key, self._lease_s, self._renew, self._release)

    async def _write_version(self, prepared: redis_pack.PreparedFile, lease: _Lease, progress: Progress | None) -> None:
        """Store the child's packed buckets as a new version, then switch to it.

        All the CPU work is the child's (`redis_pack`); here each bucket is one small command
        (EVAL of `_WRITE_BUCKET` with one argument), batched WRITE_BATCH callers at a time.
        A write that fails before the switch drops what it wrote (or, if Redis cannot be
        reached, leaves it to the next reload's prune).
        """
        client, summary = self._client, prepared.summary
        buckets = summary.buckets
        data_id = int(await self._link.run(lambda: self._allocate(keys=[self._meta_key], args=[buckets])))
        total, done = summary.loaded, 0
        deadline = max(5.0, self._link.timeout_s * 20)
        # Up to IN_FLIGHT batches at once: Redis stores one while the next is read and sent.
        in_flight: set[asyncio.Task[object]] = set()

        async def flush(pipe: Any, size: int) -> None:
            nonlocal done
            lease.check()
            while len(in_flight) >= IN_FLIGHT:
                finished, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                in_flight.difference_update(finished)
                for task in finished:
                    task.result()
            in_flight.add(asyncio.create_task(self._link.run(pipe.execute, deadline)))
            done += size
            if progress:
                progress(done, total)

        try:
            pipe = client.pipeline(transaction=False)
            pending = 0
            if summary.fields:
                pipe.rpush(self._fields_key(data_id), *summary.fields)
            async for bucket, callers, packed in prepared.buckets():
                pipe.eval(_WRITE_BUCKET, 1, self._bucket_key(data_id, bucket), packed)
                pending += callers
                if pending >= WRITE_BATCH:
                    await flush(pipe, pending)
                    pipe, pending = client.pipeline(transaction=False), 0
            await flush(pipe, pending)
            await asyncio.gather(*in_flight)
            await self._link.run(lambda: client.hset(self._meta_key, f"v{data_id}:count", summary.loaded))
        except Exception:
            # Batches already sent may still be running: let them end (each within its
            # deadline) before dropping, or they would write again after the drop.
            await asyncio.gather(*in_flight, return_exceptions=True)
            with contextlib.suppress(EngineError, RedisError):
                await self._drop(data_id, buckets)
            raise
        # Past here the version is never dropped on failure: a switch whose answer was lost
        # may have made it live.
        counts = msgspec.json.encode(summary.counts).decode()
        switched = await self._link.run(
            lambda: self._switch(keys=self._switch_keys, args=[data_id, "swap", lease.token, counts])
        )
        if switched == -1:  # the lock is not ours any more: nothing switched, the version is ours to drop
            await self._drop(data_id, buckets)
            raise lease.lost_error()
        self._meta = None
        await self._prune()

    async def rollback(self) -> int | None:
        """Make the previous version live again (the current one retires); None if none is kept."""
        async with self._lease() as lease:
            switched = await self._link.run(
                lambda: self._switch(keys=self._switch_keys, args=["", "rollback", lease.token, "{}"])
            )
            if switched == -1:
                raise lease.lost_error()
            if not switched:
                return None
            self._meta = None
            await self._prune()
            return await self.version()

    async def _prune(self) -> None:
        """Drop every version no router can still be reading (see `_PRUNABLE`)."""
        found = await self._link.run(lambda: self._prunable(keys=[self._meta_key], args=[self._grace_ms]))
        for data_id, buckets in zip(found[::2], found[1::2], strict=True):
            await self._drop(int(data_id), int(buckets))

    async def _drop(self, data_id: int, buckets: int) -> None:
        client = self._client
        for start in range(0, buckets, 5000):
            pipe = client.pipeline(transaction=False)
            for bucket in range(start, min(buckets, start + 5000)):
                pipe.execute_command("UNLINK", self._bucket_key(data_id, bucket))
            await self._link.run(pipe.execute, 30.0)
        await self._link.run(lambda: client.unlink(self._fields_key(data_id)))
        # The meta fields go last: a drop cut short is found again and finished by the next prune.
        fields = [f"v{data_id}:{what}" for what in ("buckets", "count", "retired", "loaded", "counts")]
        await self._link.run(lambda: client.hdel(self._meta_key, *fields))

    async def move_outboxes(self) -> int:
        """Move tier-edit events a process left in outboxes to the stream (tiers/redis_events.py)."""
        return await self._outbox.move_all()

    async def version(self) -> int:
        return int(await self._link.run(lambda: self._client.hget(self._meta_key, "swaps")) or 0)

    async def freshness(self) -> TierFreshness:
        """Read fresh from the meta (a few dozen fields at most), not the look-ups' cached view:
        that view is at most META_TTL_S behind it."""
        raw = await self._link.run(lambda: self._client.hgetall(self._meta_key))
        meta = {key.decode(): value.decode() for key, value in raw.items()}
        current = meta.get("current")
        loaded_ms = meta.get(f"v{current}:loaded") if current is not None else None
        return TierFreshness(
            version=int(meta.get("swaps", 0)),
            loaded_at=int(loaded_ms) / 1000 if loaded_ms else 0.0,
            reloads={outcome: int(meta.get(f"reloads:{outcome}", 0)) for outcome in OUTCOMES},
            last_reload_at={
                outcome: int(meta[f"reloads:{outcome}:at"]) / 1000
                for outcome in OUTCOMES
                if f"reloads:{outcome}:at" in meta
            },
        )

    async def count(self) -> int:
        """Callers in the live version, kept as a counter beside it (reloads set it, edits move it)."""
        meta = await self._current(force=True)
        return int(await self._link.run(lambda: self._client.hget(self._meta_key, f"v{meta.data_id}:count")) or 0)

    async def save_grading(self, report: bytes) -> None:
        await self._link.run(lambda: self._client.set(self._grading_key, report))

    async def grading(self) -> bytes | None:
        found: bytes | None = await self._link.run(lambda: self._client.get(self._grading_key))
        return found

    async def edits(self) -> dict[str, Tier]:
        """Callers edited by hand (`put`) since a grading run last cleared the list: caller -> tier.

        Each edit's script records it in its bucket's edit list (tiers/redis_events.py), so an
        edit and its record land together; a reload leaves the lists as they are. O(edits)."""
        return await self._outbox.edited()

    async def clear_edits(self) -> int:
        """Forget every hand edit (a grading run with `--reset-edits`); returns how many went."""
        return await self._outbox.clear_edits()

    async def tier_table(self) -> dict[str, Tier]:
        """Every caller's tier in the live version (a grading run compares its result with it)."""
        found: dict[str, Tier] = {}
        async for rows in self.table_rows():
            found.update(rows)
        return found

    async def table_rows(self) -> AsyncIterator[list[tuple[str, Tier]]]:
        """The live version's callers and tiers, _TABLE_BATCH buckets (~16,000 callers) per batch,
        read bucket by bucket: memory stays one batch, not the table. The version is pinned when
        the read starts (a swap meanwhile is not seen; the version stays readable for GRACE_S
        after it retires). A blob's byte 1 is its tier rank (codec)."""
        meta = await self._current(force=True)
        for start in range(0, meta.buckets, _TABLE_BATCH):
            keys = [
                rk.tier_bucket_key(self._ns, meta.data_id, bucket)
                for bucket in range(start, min(start + _TABLE_BATCH, meta.buckets))
            ]

            async def read(keys: list[str] = keys) -> list[dict[bytes, bytes]]:
                pipe = self._client.pipeline(transaction=False)
                for key in keys:
                    pipe.hgetall(key)
                answers: list[dict[bytes, bytes]] = await pipe.execute()
                return answers

            buckets = await self._link.run(read)
            yield [(caller.decode(), TIERS[blob[1]]) for bucket in buckets for caller, blob in bucket.items()]
