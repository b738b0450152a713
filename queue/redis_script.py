"""The Redis engine's library text: redis_engine.lua behind a prelude rendered from Python.

The prelude gives the engine everything it is told rather than decides, as Lua table
literals: the key names (`KEY`, `SLOTS`, from queue/redis_keys.py), the policy (`CFG`) and
the decision tables (`RULES`, from queue/decisions.py). It is rendered once, when the store
is made: a request sends only its op and arguments.

The whole is a Redis function library (Redis 7's FUNCTION LOAD) with one function, named
after a digest of the text: one name per configuration and namespace, so routers with the
same configuration share it and a changed one never runs another's rules. Redis builds the
tables and functions once, when it loads the library; each request (FCALL) runs only the
dispatch. queue/redis_link.py loads it where it is missing (a restarted Redis, a new primary).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Final, NamedTuple

from tierline.queue import decisions as d
from tierline.queue import estimate
from tierline.queue import metrics as mx
from tierline.queue import redis_keys as rk
from tierline.queue import wait_accuracy as wa
from tierline.queue.policy import Policy
from tierline.tiers.model import TIERS

ENGINE_SOURCE: Final = (Path(__file__).with_name("redis_engine.lua")).read_text()
# The estimated wait's functions (queue/estimate.py written a second time), before the engine.
ESTIMATE_SOURCE: Final = (Path(__file__).with_name("estimate.lua")).read_text()


def lua(value: object) -> str:
    """A Python value as a Lua literal: None, bools, numbers, strings, tuples and lists (arrays),
    mappings (tables; identifier keys as `name =`), decisions (tables with a `kind`)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, d.Move | d.Noop | d.Refuse | d.Apply):
        fields = {"kind": type(value).__name__.lower(), **value._asdict()}
        return lua({k: v for k, v in fields.items() if v is not None})
    if isinstance(value, Mapping):
        items = (f"{_lua_key(k)} = {lua(v)}" for k, v in value.items())
        return "{ " + ", ".join(items) + " }"
    if isinstance(value, tuple | list | frozenset):
        return "{ " + ", ".join(lua(v) for v in value) + " }"
    raise TypeError(f"no Lua literal for {value!r}")


_LUA_KEYWORDS: Final = frozenset(
    [
        "and",
        "break",
        "do",
        "else",
        "elseif",
        "end",
        "false",
        "for",
        "function",
        "if",
        "in",
        "local",
        "nil",
        "not",
        "or",
        "repeat",
        "return",
        "then",
        "true",
        "until",
        "while",
    ]
)


def _lua_key(key: object) -> str:
    if isinstance(key, str) and key.isidentifier() and key not in _LUA_KEYWORDS:
        return key
    return f"[{lua(key)}]"


def lua_keys(namespace: str) -> str:
    """`KEY`: every key name or key prefix the engine uses; `SLOTS`: the tally hashes an event
    adds to; `EVENT_CAP`: the event stream's approximate cap."""
    names = {name: rk.engine_key(namespace, name) for name in rk.ENGINE}
    families = {name: rk.family_key(namespace, name) for name in rk.FAMILIES}
    slots = [(rk.family_key(namespace, family), width, ttl) for family, width, ttl in rk.TALLY_SLOTS]
    # EVENT_CAP as text: a number passed to redis.call is formatted again on every run
    cap = lua(str(rk.EVENT_STREAM_CAP))
    return f"local KEY = {lua(names | families)}\nlocal SLOTS = {lua(slots)}\nlocal EVENT_CAP = {cap}\n"


def lua_config(policy: Policy) -> str:
    """`CFG`: the policy."""

    def num(value: float | None) -> str:
        return "nil" if value is None else repr(float(value))

    tiers = {t: policy.tier(t) for t in TIERS}
    edges = mx.policy_wait_bounds(policy)
    max_waiting = ", ".join(
        f"[{lua(name)}] = {num(limit)}" for name in policy.queues if (limit := policy.max_waiting(name)) is not None
    )
    threshold = ", ".join(f"{t} = {num(p.sla_threshold_s)}" for t, p in tiers.items())
    overflow = ", ".join(f"{t} = {num(p.overflow_after_s)}" for t, p in tiers.items() if p.overflow_after_s)
    return (
        "local CFG = {\n"
        f"  threshold = {{ {threshold} }},\n"
        f"  overflow = {{ {overflow} }},\n"
        f"  max_waiting = {{ {max_waiting} }},\n"
        f"  buckets = {{ {', '.join(num(e) for e in edges)} }},\n"
        f"  short_abandon = {num(policy.short_abandon_s)}, aging = {num(policy.aging_s)},\n"
        f"  offer_timeout = {num(policy.offer_timeout_s)}, retain = {num(policy.retain_finished_s)},\n"
        f"  cb_window = {num(policy.callbacks.window_s)}, cb_retry = {num(policy.callbacks.retry_delay_s)},\n"
        f"  cb_rule = {lua(policy.callbacks.deadline_rule)}, cb_window_open = {num(policy.callbacks.window_open_s)},\n"
        f"  cb_min_open = {num(policy.callbacks.min_open_s)}, cb_urgent = {num(policy.callback_urgent_s)},\n"
        f"  cb_attempts = {num(policy.callbacks.max_attempts)},\n"
        f"  resume = {num(policy.resume_window_s)},\n"
        "}\n"
    )


def rules_view() -> dict[str, object]:
    """The decision tables as the engine reads them."""
    return {
        "rank": d.RANK,
        "tier_of": d.TIER_OF,
        "callback_tier": {tier: True for tier in sorted(d.CALLBACK_TIERS)},
        "admitted_when_full": {tier: True for tier in sorted(d.ADMITTED_WHEN_FULL)},
        "resolved_by_inbound": {status: True for status in sorted(d.RESOLVED_BY_INBOUND)},
        # kind → { field, amount, field, amount, … }: one flat array per kind.
        "tally": {kind: [x for move in moves for x in move] for kind, moves in d.TALLY_MOVES.items()},
        "histogram_kind": d.HISTOGRAM_KIND,
        "retry_status": d.RETRY_STATUS,
        "closed_reason": d.CLOSED_REASON,
        "requested_reason": d.REQUESTED_REASON,
        "next_order": d.NEXT_ORDER,
        "give_up_status": d.GIVE_UP_STATUS,
        "call": d.CALL_MOVES,
        "call_at_checks": d.CALL_AT_CHECKS,
        "attempt_log_cap": d.ATTEMPT_LOG_CAP,
        "outcome": d.OUTCOMES,
    }


@functools.cache
def lua_tables() -> str:
    """`RULES`: the decision tables of queue/decisions.py. The same text for every store."""
    body = ",\n".join(f"  {name} = {lua(value)}" for name, value in rules_view().items())
    return (
        "-- Rendered from tierline.queue.decisions by queue/redis_script.py: edit the Python.\n"
        "local RULES = {\n" + body + ",\n}\n"
    )


def lua_estimate() -> str:
    """`EST` and `ACC`: the constants of the estimate and of its accuracy counters, then the
    estimate's functions (queue/estimate.lua)."""
    acc = {
        "floor": wa.RATIO_FLOOR_S,
        "per_octave": wa.BINS_PER_OCTAVE,
        "octaves": wa.OCTAVES,
        "bins": wa.N_BINS,
        "within_low": wa.WITHIN[0],
        "within_high": wa.WITHIN[1],
    }
    return f"local EST = {lua(estimate.LUA_CONSTANTS)}\nlocal ACC = {lua(acc)}\n" + ESTIMATE_SOURCE


def engine_script(policy: Policy, namespace: str) -> str:
    """The engine's Lua: the prelude, then redis_engine.lua (which registers `ENGINE_FUNCTION`)."""
    return lua_keys(namespace) + lua_config(policy) + lua_tables() + lua_estimate() + ENGINE_SOURCE


class EngineLibrary(NamedTuple):
    """The engine as Redis loads it: `name` is the library's and its one function's."""

    name: str
    code: str


def engine_library(policy: Policy, namespace: str, script: str | None = None) -> EngineLibrary:
    """The library of `engine_script(policy, namespace)` (or of `script`, a variant of it)."""
    text = engine_script(policy, namespace) if script is None else script
    name = "tierline_" + hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:20]
    header = f"#!lua name={name}\nlocal ENGINE_FUNCTION = {lua(name)}\n"
    return EngineLibrary(name, header + text)
