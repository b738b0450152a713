"""Every Redis key Tierline uses, named in one place. Pure: no I/O.

Queue state (calls, callbacks, tallies: redis_engine.lua and queue/redis_store.py) lives under
the hash tag `{ns}`, so a cluster keeps it in one slot on purpose: `next` across queues and
"one callback per caller" need every key in one script. The engine receives these names
rendered as Lua (`ENGINE`, `FAMILIES`, `TALLY_SLOTS` → `KEY`, `SLOTS` in the script's prelude);
it builds no key name of its own.

- `{ns}:<name>` for each of `ENGINE`'s names: the logical clock, the arrival and callback
  counters, the due/offers/snoozed/finished schedules, agent holdings, callback indexes.
- `{ns}:<family>:<part>:…` for each of `FAMILIES`: one hash per call (`c:<id>`) and per
  callback (`cb:<id>`); a sorted set per queue × rank (`q:<queue>:<rank>`); tallies per queue ×
  tier by minute, 15-minute interval and lifetime (`m:`, `i:`, `life:`); …
- `{ns}:started`: when the shared store first served (the estimate's arrival-rate history starts there).

Tier data (tiers/redis_store.py, tiers/redis_pack.py): the meta hash `{ns}:tiers` and the
reload lock `{ns}:tiers:lock` share a slot; the bucket hashes `ns:t:<data id>:<bucket>` and
the field-name list `ns:t:<data id>:fields` carry no hash tag, so a cluster spreads them.
Each bucket's outbox of tier-edit events `{ns:t:<data id>:<bucket>}:outbox` sits in its
bucket's slot; the list of outboxes `{ns}:tiers:outboxes` in the meta's (tiers/redis_events.py).
Hand edits a grading run keeps (issue 17) sit beside them: `{ns:t:<data id>:<bucket>}:edits`,
written by the edit's own script, listed in `{ns}:tiers:edited` (the meta's slot).
"""

from __future__ import annotations

from typing import Final

from tierline.queue.service_level import INTERVAL, MINUTE


def tag(namespace: str) -> str:
    """The hash tag every queue-state key starts with."""
    return "{" + namespace + "}"


# Lua name → key suffix of the engine's single keys.
ENGINE: Final[dict[str, str]] = {
    "clock": "clock",
    "seq": "seq",
    "cbseq": "cbseq",
    "due": "due",
    "offers": "offers",
    "holding": "holding",
    "cbactive": "cbactive",
    "snoozed": "snoozed",
    "finished": "finished",
    "cbact": "cbact",
    "cbdone": "cbdone",
    "cbstat": "cbstat",
    "events": "events",  # the event stream (issue 15), in the queue slot so each script writes it
    "evepoch": "events:epoch",
    "evseq": "events:seq",
    "started": "started",  # when the shared store first served (`started_key`)
    # Events the archiver trimmed after its consumer group acknowledged them (queue/history/
    # archiver_redis.py): what the stream lost that is not a drop.
    "evarchived": "events:archived",
    # Tokens of tier-edit outbox entries already appended to the stream (tiers/redis_events.py).
    "evmoved": "events:moved",
    # Places held in line for a requested callback, counted per "<queue>|<tier>" (issue 16 item 3).
    "held": "held",
    # Abandoned calls a re-call may take the place of, and when each lapses (issue 16 item 4).
    "resume": "resume",
    "resumeq": "resume:lapse",
}

# The consumer group every archiver on a store joins (queue/history/archiver_redis.py).
EVENT_GROUP: Final = "tierline-archive"

# The event stream's approximate cap (`XADD … MAXLEN ~`): at ~10 events a call, a busy
# center's hours of calls; past it the oldest are trimmed, since routing never waits for history.
EVENT_STREAM_CAP: Final = 1_000_000

# Lua name → prefix of a family of keys, completed with `:<part>…`.
FAMILIES: Final[dict[str, str]] = {
    "call": "c",  # :<call_id>
    "callback": "cb",  # :<callback_id>
    "lane": "q",  # :<queue>:<rank>
    "arrivals": "arr",  # :<queue> (standard calls by arrival, for aging)
    "ready": "ready",  # :<queue> (callbacks ready for an agent)
    "cb_lane": "cblane",  # :<queue>:<tier> (active callbacks by deadline)
    "est": "est",  # :<queue> (the estimated wait's inputs: arrivals per rank, AHT, agents talking)
    "idle": "idle",  # :<queue> (agents whose `next` found nothing, by when)
    "accuracy": "acc",  # :<queue>:<tier> (quoted against real waits, queue/wait_accuracy.py)
    "minute": "m",  # :<queue>:<tier>:<minute number>
    "interval": "i",  # :<queue>:<tier>:<interval number>
    "life": "life",  # :<queue>:<tier>
}

# The tally hashes an event adds to: family, slot width in seconds (0: one slot for all time),
# time to live in seconds (0: kept).
TALLY_SLOTS: Final[tuple[tuple[str, int, int], ...]] = (
    ("minute", MINUTE, 2 * 3600),
    ("interval", INTERVAL, 3 * 86400),
    ("life", 0, 0),
)

STARTED: Final = "started"

# The key prefix of a deployment that names none (config `redis_namespace` overrides it).
DEFAULT_NAMESPACE: Final = "tierline"


def engine_key(namespace: str, name: str) -> str:
    return f"{tag(namespace)}:{ENGINE[name]}"


def family_key(namespace: str, family: str, *parts: object) -> str:
    return ":".join((tag(namespace), FAMILIES[family], *map(str, parts)))


def tally_key(namespace: str, family: str, queue: str, tier: str, slot: int) -> str:
    """A minute's (`minute`) or an interval's (`interval`) tally of one queue × tier."""
    return f"{tag(namespace)}:{FAMILIES[family]}:{queue}:{tier}:{slot}"


def started_key(namespace: str) -> str:
    return f"{tag(namespace)}:{STARTED}"


# --- tier data ------------------------------------------------------------------------------


def tier_meta_key(namespace: str) -> str:
    return tag(namespace) + ":tiers"


def tier_lock_key(namespace: str) -> str:
    """In the meta's slot: one script sees both."""
    return tag(namespace) + ":tiers:lock"


def tier_bucket_key(namespace: str, data_id: int, bucket: int) -> str:
    return f"{namespace}:t:{data_id}:{bucket}"


def tier_fields_key(namespace: str, data_id: int) -> str:
    return f"{namespace}:t:{data_id}:fields"


def tier_outbox_key(bucket_key: str) -> str:
    """A bucket's outbox of tier-edit events: its hash tag is the bucket key's whole name, so
    a cluster keeps it in the bucket's slot (one script writes both; tiers/redis_events.py)."""
    return "{" + bucket_key + "}:outbox"


def tier_outboxes_key(namespace: str) -> str:
    """The outboxes that may hold events not yet moved to the stream (in the meta's slot)."""
    return tag(namespace) + ":tiers:outboxes"


def tier_edits_key(bucket_key: str) -> str:
    """A bucket's hand edits (caller -> when and which tier) since a grading run last cleared
    them: in the bucket's slot, so the edit's script writes both (tiers/redis_events.py)."""
    return "{" + bucket_key + "}:edits"


def tier_edited_key(namespace: str) -> str:
    """The edit hashes that may hold hand edits (in the meta's slot)."""
    return tag(namespace) + ":tiers:edited"
