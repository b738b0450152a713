"""A Redis tier reload keeps its CPU work off the router's event loop (issue 13, item 5).

Parsing, bucketing and packing run in a child process (`tierline.tiers.redis_pack`); the loop
only reads the child's frames and sends one small command per bucket. The figures (route p99
on the reloading process during a 10^6-row reload) are `loadtest/stress_reload_routing.py`'s;
these tests hold the mechanism: none of that work runs in the router's process, on any
thread, and each bucket costs the loop one command with one packed argument.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from tests.conftest import new_namespace
from tierline.queue.redis_link import RedisLink, connect
from tierline.tiers.parse import BadTierFile
from tierline.tiers.redis_store import RedisTierStore

HEAVY = {"parse_tier_file", "pack_buckets", "bucket_of", "_parse_csv", "_parse_ndjson"}


class Calls:
    """Which of the reload's CPU-bound functions this process ran, on which thread."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def hook(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code.co_name in HEAVY and "/tiers/" in frame.f_code.co_filename:
            self.seen.append((frame.f_code.co_name, threading.current_thread().name))


async def test_the_reload_parses_buckets_and_packs_outside_the_router_process(server: str, tmp_path: Path) -> None:
    rows = 20_000
    path = tmp_path / "t.csv"
    path.write_text("caller,tier,customer_id\n" + "".join(f"+8613{i:09d},mid,C{i}\n" for i in range(rows)))
    link = RedisLink(connect(server, 5.0), timeout_s=5.0)
    store = RedisTierStore(link, new_namespace())
    calls = Calls()
    sys.setprofile(calls.hook)
    threading.setprofile(calls.hook)
    try:
        result = await store.reload_file(path, "csv")
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    try:
        assert result.swapped and result.loaded == rows
        assert calls.seen == [], f"reload work ran in the router's process: {sorted(set(calls.seen))}"
        record = await store.lookup("+8613000012345")
        assert (record.tier, record.crm) == ("mid", {"customer_id": "C12345"})
        assert await store.count() == rows
    finally:
        await link.close()


async def test_each_bucket_is_one_command_with_one_argument(server: str, tmp_path: Path) -> None:
    """What the loop sends per bucket: an EVAL whose one argument is the packed bucket (no per-caller args)."""
    rows = 5_000
    path = tmp_path / "t.ndjson"
    path.write_text("".join(f'{{"caller": "+8613{i:09d}", "tier": "vip", "name": "N{i}"}}\n' for i in range(rows)))
    link = RedisLink(connect(server, 5.0), timeout_s=5.0)
    store = RedisTierStore(link, new_namespace())
    sent: list[tuple[Any, ...]] = []
    real_pipeline = link.client.pipeline

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = real_pipeline(*args, **kwargs)
        real_eval = pipe.eval

        def eval_(*command: Any) -> Any:
            sent.append(command)
            return real_eval(*command)

        pipe.eval = eval_  # type: ignore[method-assign, assignment]  # a spy: records, then sends as it was
        return pipe

    link.client.pipeline = pipeline  # type: ignore[method-assign]
    try:
        result = await store.reload_file(path, "ndjson")
        assert result.swapped
        meta = await store._current(force=True)
        buckets = {command[2] for command in sent}
        assert len(sent) == len(buckets) <= meta.buckets  # one command per (non-empty) bucket
        assert all(len(command) == 4 and command[1] == 1 for command in sent)  # script, 1 key, key, packed
        assert sum([await link.client.hlen(key) for key in buckets]) == rows
        assert (await store.lookup("+8613000004999")).crm == {"name": "N4999"}
    finally:
        await link.close()


async def test_a_file_that_is_no_tier_file_is_refused_as_before_and_releases_the_lock(
    server: str, tmp_path: Path
) -> None:
    path = tmp_path / "t.csv"
    path.write_text("name,age\nLi,3\n")
    link = RedisLink(connect(server, 5.0), timeout_s=5.0)
    store = RedisTierStore(link, new_namespace())
    try:
        with pytest.raises(BadTierFile):
            await store.reload_file(path, "csv")
        good = tmp_path / "good.csv"
        good.write_text("caller,tier\n+8613000000001,vip\n")
        assert (await store.reload_file(good, "csv")).swapped  # the lock is free again
        assert await store.version() == 1
    finally:
        await link.close()
