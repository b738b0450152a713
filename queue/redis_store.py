"""The Redis call store: queues, calls, callbacks and tallies shared by every Tierline process.

Every change is one FCALL of `redis_engine.lua`, loaded as a function library (atomic, one
round trip; the library text, with its rendered prelude, is queue/redis_script.py's); this
module only packs arguments, unpacks replies into the same structs the memory store returns,
and reads the service-level tallies (plain hash counters, summed here with
`service_level.total`). All keys (queue/redis_keys.py) carry the hash tag `{namespace}`, so the
same code runs on Redis Cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec

from tierline.queue import metrics as mx
from tierline.queue import paging
from tierline.queue import redis_keys as rk
from tierline.queue import service_level as sl
from tierline.queue.callback_index import workload_edges
from tierline.queue.callbacks import Attempt, Callback, Outcome
from tierline.queue.calls import Call, resume_key
from tierline.queue.clock import Clock
from tierline.queue.decisions import CALL_AT_CHECKS, offers_callback
from tierline.queue.errors import Conflict, EngineError, Invalid, NotFound
from tierline.queue.history import events as ev
from tierline.queue.history.archiver_redis import StreamFigures
from tierline.queue.history.engine_events import from_fields
from tierline.queue.policy import Policy
from tierline.queue.redis_keys import DEFAULT_NAMESPACE
from tierline.queue.redis_link import DeadlinePassed, RedisLink
from tierline.queue.redis_script import engine_library
from tierline.queue.settled import SettledDay
from tierline.queue.store import (
    CallbackFilter,
    CallbackPage,
    CallbackSummary,
    CallSnapshot,
    HeldCallback,
    QueueWorkload,
    SlaReport,
    SlaRow,
    Traffic,
    Work,
    WorkKind,
    Workload,
)
from tierline.queue.wait_accuracy import Accuracy, AccuracyRow
from tierline.queue.wait_accuracy import figures as accuracy_figures
from tierline.tiers.model import TIERS, TierRecord

_record_encoder: Final = msgspec.msgpack.Encoder()
_record_decoder: Final = msgspec.msgpack.Decoder(TierRecord)
_hours_encoder: Final = msgspec.msgpack.Encoder()
_ERRORS: Final[dict[str, type[EngineError]]] = {
    "call_not_found": NotFound,
    "callback_not_found": NotFound,
    "call_id_conflict": Conflict,
    "invalid_state": Conflict,
    "agent_busy": Conflict,
    "not_assigned": Conflict,
    "not_waiting": Conflict,
    "callback_exists": Conflict,
    **{code: Invalid for _, code, _ in CALL_AT_CHECKS},
}


# A store open takes the next event epoch: past the stored one, and at least `floor` (the start
# millisecond, or an archive's claim); the sequence restarts under it. Every engine script reads
# the epoch it writes under, so ids stay increasing across all processes sharing the stream.
_OPEN_EPOCH: Final = """
local e = math.max(tonumber(redis.call("GET", KEYS[1]) or "0") + 1, tonumber(ARGV[1]))
redis.call("SET", KEYS[1], string.format("%d", e))
redis.call("SET", KEYS[2], 0)
return string.format("%d", e)
"""


def _pairs(flat: Sequence[bytes]) -> dict[str, bytes]:
    return {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}


def _text(fields: dict[str, bytes]) -> dict[str, object]:
    """A call or callback hash as text, leaving out its binary `record` (a msgpack TierRecord)
    and a callback's `attempt_log` (JSON)."""
    return {k: v.decode() for k, v in fields.items() if k != "record" and k != "attempt_log"}


_attempt_log_decoder: Final = msgspec.json.Decoder(list[Attempt], strict=False)


# Redis hands back every field as text; msgspec's lax mode turns "1700000000.5" into a float
# and "3" into an int, and checks every literal (tier, status, reason) on the way.
def call_from(fields: dict[str, bytes]) -> Call:
    return msgspec.convert(_text(fields), Call, strict=False)


def callback_from(fields: dict[str, bytes]) -> Callback:
    text = _text(fields)
    text["record"] = _record_decoder.decode(fields["record"])
    callback = msgspec.convert(text, Callback, strict=False)
    if (log := fields.get("attempt_log")) is not None:
        callback.attempt_log = _attempt_log_decoder.decode(log)
    return callback


def _accuracy(pairs: Sequence[tuple[str, str]], hashes: Sequence[Any]) -> dict[tuple[str, str], Accuracy]:
    """Each queue × tier's estimate-accuracy counters, from the lanes' HGETALLs (same order)."""
    return {pair: Accuracy.from_fields(_pairs(flat)) for pair, flat in zip(pairs, hashes, strict=True)}


def tally_from(flat: Sequence[bytes]) -> sl.Tally:
    """A tally hash as the engine's HGETALL returns it (a flat field, value list)."""
    if not flat:  # most minutes of most queue × tier pairs: nothing happened
        return sl.Tally()
    return msgspec.convert(
        {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}, sl.Tally, strict=False
    )


def _tally_args(pairs: Sequence[tuple[str, str]], slots: Sequence[Sequence[int]]) -> list[str]:
    """The engine's `tally_hashes` arguments: per queue × tier, its name, a count and the slots."""
    args: list[str] = []
    for (name, tier), wanted in zip(pairs, slots, strict=True):
        args += (name, tier, str(len(wanted)), *map(str, wanted))
    return args


class RedisCallStore:
    def __init__(
        self,
        link: RedisLink,
        policy: Policy,
        clock: Clock,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        epoch_floor: int | None = None,
    ) -> None:
        """`epoch_floor`: the least event epoch this store may take at open (an archive's
        `claim_epoch`); by default the start time in milliseconds (`events.new_epoch`)."""
        self.policy = policy
        self.clock = clock
        self._link = link
        self._namespace = namespace
        self._engine = engine_library(policy, namespace)
        self._keys = [rk.engine_key(namespace, "clock")]
        self._started_at: float | None = None
        self._settled = SettledDay(policy)
        self._epoch_floor = epoch_floor
        self._open_epoch = link.client.register_script(_OPEN_EPOCH)
        self._events_key = rk.engine_key(namespace, "events")
        # Opening-hour windows (queue/hours.py), sent with every request as one msgpack
        # argument: the engine answers is-open and callback terms from them; b"" with no hours.
        self._hours = policy.hours_book()
        self._hours_seen: object = None
        self._hours_arg = b""
        self._stream_figures = StreamFigures(link, namespace)
        self.epoch: int | None = None

    async def open(self, epoch_floor: int | None = None) -> None:
        """Note when the shared store first served (the start of the EWT history), and take
        this process's event epoch (see `_OPEN_EPOCH`); `epoch_floor` replaces the one given
        at construction (the archiver claims one from the archive once it is reachable)."""
        if epoch_floor is not None:
            self._epoch_floor = epoch_floor
        client = self._link.client
        key = rk.started_key(self._namespace)
        floor = ev.new_epoch(self.clock.now(), None) if self._epoch_floor is None else self._epoch_floor
        epoch_keys = [rk.engine_key(self._namespace, "evepoch"), rk.engine_key(self._namespace, "evseq")]

        async def started() -> Any:
            await client.set(key, repr(self.clock.now()), nx=True)
            return await client.get(key)

        async def epoch() -> Any:
            return await self._open_epoch(keys=epoch_keys, args=[str(floor)])

        started_at = float(await self._link.run(started))
        self.epoch = int(await self._link.run(epoch))
        self._started_at = started_at

    # --- the engine ---------------------------------------------------------------------------

    async def _op(self, *args: str | bytes) -> list[Any]:
        if self._started_at is None:
            await self.open()
        link = self._link

        def argv(deadline: str) -> list[str | bytes]:
            now = self.clock.now()
            return [args[0], repr(now), deadline, self._hours_at(now), *args[1:]]

        async def engine() -> list[Any]:
            reply: list[Any] = await link.fcall(self._engine.name, self._engine.code, self._keys, argv)
            if reply[0] == b"late":
                raise DeadlinePassed("the engine refused: the request reached Redis after its deadline")
            return reply

        reply = await link.run(engine)
        if reply[0] == b"err":
            code = reply[1].decode()
            raise _ERRORS.get(code, EngineError)(reply[2].decode(), code=code)
        return reply

    def _hours_at(self, now: float) -> bytes:
        """The windows valid at now, encoded once per rebuild of the book (hourly)."""
        if not self._hours:
            return b""
        windows = self._hours.windows(now)
        if windows is not self._hours_seen:
            self._hours_arg = _hours_encoder.encode({name: w.flat() for name, w in windows.items()})
            self._hours_seen = windows
        return self._hours_arg

    def _snapshot(self, reply: Sequence[Any]) -> CallSnapshot:
        # ["call", fields, position|None, estimated wait|None, callback fields|None, now]; the
        # engine computes the estimate (queue/estimate.lua) and keeps the announced position.
        fields = _pairs(reply[1])
        call = call_from(fields)
        position = reply[2]
        announced = fields.get("announce")
        estimate = None if reply[3] is None else float(reply[3])
        tier = self.policy.tier(call.tier)
        # reply[6]: whether the caller holds an active callback (one per caller)
        offer = offers_callback(tier.offer_callback, call.status, estimate, tier.offer_callback_after_s, bool(reply[6]))
        return CallSnapshot(
            call=call,
            now=float(reply[5]),
            position=position,
            estimated_wait_s=estimate,
            announce_position=None if position is None or announced is None else int(announced),
            callback=callback_from(_pairs(reply[4])) if reply[4] else None,
            offer_callback=offer,
        )

    def _queue(self, queue: str) -> str:
        if queue not in self.policy.queues:
            raise Invalid(f"queue {queue!r} is not declared in the configuration", code="unknown_queue")
        return queue

    # --- IVR and agents -----------------------------------------------------------------------

    async def route(self, call_id: str, record: TierRecord, queue: str) -> tuple[CallSnapshot, bool]:
        rkey = resume_key(record.caller, record.crm) if self.policy.resume_window_s > 0 else ""
        reply = await self._op(
            "route", call_id, record.caller, record.tier, self._queue(queue), _record_encoder.encode(record), rkey
        )
        return self._snapshot(reply), reply[0] == b"call"

    async def route_located(
        self, call_id: str, caller: str, queue: str, located: tuple[str, str], default_tier: str
    ) -> tuple[CallSnapshot, bool]:
        """`route` with the tier look-up done inside the same script (single Redis only).

        `located` is the caller's bucket key and the field-name list key of the live tier
        version (`RedisTierStore.locate`).
        """
        bucket_key, fields_key = located
        queue = self._queue(queue)
        reply = await self._op("route_lookup", call_id, caller, queue, bucket_key, fields_key, default_tier)
        return self._snapshot(reply), reply[0] == b"call"

    async def get_call(self, call_id: str) -> CallSnapshot:
        return self._snapshot(await self._op("get", call_id))

    async def answer(self, call_id: str, agent_id: str) -> CallSnapshot:
        return self._snapshot(await self._op("answer", call_id, agent_id))

    async def requeue(self, call_id: str, agent_id: str | None) -> CallSnapshot:
        return self._snapshot(await self._op("requeue", call_id, agent_id or ""))

    async def abandon(self, call_id: str) -> CallSnapshot:
        return self._snapshot(await self._op("abandon", call_id))

    async def end(self, call_id: str) -> CallSnapshot:
        return self._snapshot(await self._op("end", call_id))

    async def request_callback(self, call_id: str) -> CallSnapshot:
        return self._snapshot(await self._op("callback", call_id))

    async def next_work(self, agent_id: str, queues: list[str] | None, only: WorkKind | None = None) -> Work | None:
        names = [self._queue(q) for q in queues] if queues else list(self.policy.queues)
        reply = await self._op("next", agent_id, only or "", *names)
        if reply[0] == b"none":
            return None
        if reply[1]:
            snapshot = self._snapshot(reply[1])
            return Work(call=snapshot, record=_record_decoder.decode(_pairs(reply[1][1])["record"]))
        return Work(callback=callback_from(_pairs(reply[2])))

    # --- callbacks ----------------------------------------------------------------------------

    async def callback_outcome(
        self,
        callback_id: str,
        outcome: Outcome,
        agent_id: str | None,
        note: str | None,
        call_at: float | None = None,
    ) -> Callback:
        has_note = "" if note is None else "1"
        asked = "" if call_at is None else repr(float(call_at))
        reply = await self._op("outcome", callback_id, outcome, agent_id or "", note or "", has_note, asked)
        return callback_from(_pairs(reply[1]))

    async def callbacks(self, which: CallbackFilter, limit: int) -> list[Callback]:
        return (await self.callback_page(which, limit, None)).callbacks

    async def callback_page(self, which: CallbackFilter, limit: int, cursor: str | None) -> CallbackPage:
        paging.check_limit(limit)
        after_score, after_id = "", ""
        if cursor is not None:
            deadline, after_id = paging.decode_cursor(which, cursor)
            after_score = repr(deadline)
        reply = await self._op("callbacks", which, str(limit), after_score, after_id)
        found = await paging.in_turns(lambda flat: callback_from(_pairs(flat)), reply[1])
        return paging.page(which, found, more=bool(reply[2]))

    async def callback_workload(self) -> Workload:
        edges = workload_edges(self.clock.now())
        reply = await self._op("workload", str(len(edges)), *(repr(e) for e in edges[1:]), *self.policy.queues)
        # ["workload", [[queue, active, overdue, [per hour…], at_risk]…], [[agent, callback fields]…], now]
        now = float(reply[3])
        queues = []
        for queue, active, overdue, by_hour, at_risk in reply[1]:
            spans = [int(n) for n in by_hour]
            queues.append(
                QueueWorkload(
                    queue=queue.decode(),
                    active=int(active),
                    overdue=int(overdue),
                    # a counter kept since this version: callbacks flagged before it never counted in
                    at_risk=max(0, int(at_risk)),
                    by_hour=spans,
                    later=int(active) - int(overdue) - sum(spans),
                )
            )
        held = (HeldCallback(agent_id=a.decode(), callback=callback_from(_pairs(fields))) for a, fields in reply[2])
        holders = sorted(held, key=lambda h: h.agent_id)
        return Workload(now=now, edges=[now, *edges[1:]], queues=queues, holders=holders)

    async def callback_summary(self) -> CallbackSummary:
        reply = await self._op("cbsummary")
        counts = {k: int(v) for k, v in _pairs(reply[1]).items()}
        return CallbackSummary.of(counts, overdue=int(reply[2]), completed_in_time=counts.get("in_time", 0))

    # --- supervision --------------------------------------------------------------------------

    async def sla(self, queue: str | None, window: sl.Window) -> SlaReport:
        names = [self._queue(queue)] if queue is not None else list(self.policy.queues)
        # One script reads the lanes and the tallies, so the slots to read are named at this
        # router's clock; the report is dated at the engine's, which may be a little ahead
        # (another router's clock, within the skew the README allows).
        pairs = [(name, tier) for name in names for tier in TIERS]
        today = sl.today_intervals(self.clock.now(), self.policy.timezone)
        if window == "today":
            # Settled intervals are kept by this process (queue/settled.py): read the rest only.
            wanted = [self._settled.wanted(pair, today) for pair in pairs]
            family = "interval"
        else:
            minutes = list(sl.rolling_minutes(window, self.clock.now()))
            wanted = [minutes] * len(pairs)
            family = "minute"
        reply = await self._op("sla", family, str(len(names)), *names, *_tally_args(pairs, wanted))
        lanes, now, hashes = reply[1], float(reply[2]), reply[4]
        accuracy = _accuracy(pairs, reply[3])
        formula = self.policy.sla_formula
        rows = []
        for (name, tier), slots, lane, flat in zip(pairs, wanted, lanes, hashes, strict=True):
            policy = self.policy.tier(tier)
            fetched = {slot: tally_from(hash_) for slot, hash_ in zip(slots, flat, strict=True)}
            intervals = None
            if window == "today":
                tally, intervals = self._settled.row((name, tier), today, now, fetched)
            else:
                tally = sl.total(fetched.values())
            oldest = lane[3]
            held = int(lane[6])  # places held for a callback, in the lane's count
            rows.append(
                SlaRow(
                    queue=name,
                    tier=tier,
                    figures=sl.figures(tally, policy, formula),
                    waiting_now=int(lane[2]) - held,
                    held=held,
                    oldest_wait_now_s=None if oldest is None else round(now - float(oldest), 3),
                    intervals=intervals,
                    callbacks_open=int(lane[4]),
                    callbacks_overdue=int(lane[5]),
                    estimate_accuracy=accuracy_figures(accuracy[(name, tier)]),
                )
            )
        return SlaReport(window=window, start=sl.window_start(window, now, self.policy.timezone), now=now, rows=rows)

    async def traffic(self, queue: str | None, window_s: float) -> Traffic:
        names = [self._queue(queue)] if queue is not None else list(self.policy.queues)
        minutes = sl.window_minutes(window_s, self.clock.now())
        pairs = [(name, tier) for tier in TIERS for name in names]
        reply = await self._op("tallies", "minute", *_tally_args(pairs, [minutes] * len(pairs)))
        now = float(reply[2])
        tallies = [[tally_from(flat) for flat in hashes] for hashes in reply[1]]
        per_tier = len(names)
        by_tier = {
            tier: sl.total(t for lane in tallies[i * per_tier : (i + 1) * per_tier] for t in lane)
            for i, tier in enumerate(TIERS)
        }
        assert self._started_at is not None
        return Traffic.of(by_tier, minutes, now, self._started_at)

    async def metrics(self) -> mx.MetricsSnapshot:
        # ["metrics", lanes, lifetime hashes, callback counters, overdue, now, estimate-accuracy hashes]
        reply = await self._op("metrics", *self.policy.queues)
        now = float(reply[5])
        bounds = mx.policy_wait_bounds(self.policy)
        rows = []
        for lane, life in zip(reply[1], reply[2], strict=True):
            tier = lane[1].decode()
            policy = self.policy.tier(tier)
            oldest = lane[3]
            rows.append(
                mx.metrics_row(
                    lane[0].decode(),
                    tier,
                    mx.LifetimeTally.from_fields(_pairs(life), len(bounds)),
                    len(bounds),
                    threshold_s=policy.sla_threshold_s,
                    target=policy.sla_target,
                    waiting_now=int(lane[2]) - int(lane[6]),
                    oldest_wait_now_s=None if oldest is None else round(now - float(oldest), 3),
                    held_now=int(lane[6]),
                )
            )
        counts = {k: int(v) for k, v in _pairs(reply[3]).items()}
        return mx.MetricsSnapshot(
            now=now,
            wait_bounds=list(bounds),
            rows=rows,
            callbacks_open=counts.get("open", 0),
            callbacks_assigned=counts.get("assigned", 0),
            callbacks_overdue=int(reply[4]),
            estimate_accuracy=[
                AccuracyRow(queue=name, tier=tier, accuracy=acc)
                for (name, tier), acc in _accuracy(
                    [(name, tier) for name in self.policy.queues for tier in TIERS], reply[6]
                ).items()
                if acc.n
            ],
            callbacks_at_risk=counts.get("at_risk", 0),
        )

    async def sweep(self) -> None:
        await self._op("sweep")

    # --- history ------------------------------------------------------------------------------

    async def read_events(self, after: ev.EventId | None, limit: int) -> list[ev.Event]:
        """Up to `limit` events of the stream after `after` (from the oldest kept when None)."""
        client, key = self._link.client, self._events_key
        start = "-" if after is None else f"({after.epoch}-{after.seq}"

        async def read() -> Any:
            return await client.xrange(key, min=start, max="+", count=limit)

        entries = await self._link.run(read)
        out = []
        for entry_id, fields in entries:
            epoch, seq = entry_id.decode().split("-")
            text = {k.decode(): v.decode() for k, v in fields.items()}
            out.append(from_fields(ev.EventId(int(epoch), int(seq)), text))
        return out

    async def events_dropped(self) -> int:
        """Events trimmed from the stream by its cap (`EVENT_STREAM_CAP`) before an archiver
        acknowledged them (queue/history/archiver_redis.py counts what it trims itself)."""
        _, dropped = await self._stream_figures.read()
        return dropped

    async def ping(self) -> bool:
        return await self._link.ping()

    async def close(self) -> None:
        """Closes the connection, which the tier store shares: the app closes the call store last."""
        await self._link.close()
