"""The tier table's freshness and the process's own series in `/metrics`: every reload outcome
counted on both tier stores, and the per-process series still served while Redis is down."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from tests.support.redis_servers import RedisServer
from tierline.queue.clock import ManualClock
from tierline.queue.redis_link import RedisLink, connect
from tierline.router.app import build_app, open_services
from tierline.router.config import load_settings
from tierline.tiers.memory import MemoryTierStore
from tierline.tiers.parse import BadTierFile
from tierline.tiers.redis_store import RedisTierStore
from tierline.tiers.store import TierStore

GOOD = "caller,tier\n+861000001,vip\n+861000002,mid\n"
ALL_BAD = "caller,tier\n+861000009,platinum\n"
NOT_A_TIER_FILE = ""


@pytest.fixture
async def redis_tiers(redis_url: str) -> AsyncIterator[RedisTierStore]:
    link = RedisLink(connect(redis_url, 2.0), timeout_s=2.0)
    yield RedisTierStore(link, "t" + uuid.uuid4().hex[:12])
    await link.close()


async def reload_three_ways(store: TierStore, tmp_path: Path) -> None:
    for name, text in (("good", GOOD), ("bad", ALL_BAD), ("empty", NOT_A_TIER_FILE)):
        path = tmp_path / f"{name}.csv"
        path.write_text(text)
        if name == "empty":
            with pytest.raises(BadTierFile):
                await store.reload_file(path, "csv")
        else:
            assert (await store.reload_file(path, "csv")).swapped is (name == "good")


async def test_memory_store_counts_every_outcome_on_its_clock(tmp_path: Path) -> None:
    clock = ManualClock()
    store = MemoryTierStore(wall_clock=clock.now)
    fresh = await store.freshness()
    assert (fresh.version, fresh.loaded_at, fresh.last_reload_at) == (0, 0.0, {})
    assert fresh.reloads == {"swapped": 0, "refused": 0, "invalid": 0}

    await reload_three_ways(store, tmp_path)
    fresh = await store.freshness()
    assert fresh.version == 1
    assert fresh.loaded_at == clock.now()
    assert fresh.reloads == {"swapped": 1, "refused": 1, "invalid": 1}

    clock.advance(3600)
    (tmp_path / "again.csv").write_text(GOOD)
    assert (await store.reload_file(tmp_path / "again.csv", "csv")).swapped
    fresh = await store.freshness()
    assert fresh.version == 2 and fresh.loaded_at == clock.now()
    assert fresh.last_reload_at == {
        "swapped": clock.now(),
        "refused": clock.now() - 3600,
        "invalid": clock.now() - 3600,
    }


async def test_redis_store_keeps_outcomes_beside_the_table_for_every_process(
    redis_tiers: RedisTierStore, redis_url: str, tmp_path: Path
) -> None:
    await reload_three_ways(redis_tiers, tmp_path)
    fresh = await redis_tiers.freshness()
    assert fresh.version == 1
    assert fresh.reloads == {"swapped": 1, "refused": 1, "invalid": 1}
    # Redis's clock, in Unix seconds: the switch is when the table went live, the outcome is
    # counted just after (the old versions' prune runs between).
    assert fresh.loaded_at > 1_600_000_000
    assert 0 <= fresh.last_reload_at["swapped"] - fresh.loaded_at < 1
    assert fresh.loaded_at <= fresh.last_reload_at["refused"] <= fresh.last_reload_at["invalid"]

    # Another process on the same namespace reads the same figures.
    link = RedisLink(connect(redis_url, 2.0), timeout_s=2.0)
    try:
        other = RedisTierStore(link, redis_tiers._ns)
        assert await other.freshness() == fresh
        # A rollback brings the previous table's time back: here none, so it refuses.
        assert await other.rollback() is None
    finally:
        await link.close()


def series(text: str) -> dict[str, float]:
    return {
        sample.name + (str(sorted(sample.labels.items())) if sample.labels else ""): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_serve_the_process_series_while_redis_is_down(tmp_path: Path) -> None:
    redis = RedisServer().start()
    settings = load_settings(None, env={"TIERLINE_STORE": redis.url, "TIERLINE_ADMIN_TOKEN": "boss"})
    svc = open_services(settings, ManualClock())
    server = TestServer(build_app(svc, sweeper=False), host="127.0.0.1")
    await server.start_server()
    admin = {"Authorization": "Bearer boss"}
    try:
        async with ClientSession() as http:
            url = f"http://127.0.0.1:{server.port}/metrics"
            async with http.get(url, headers=admin) as resp:
                assert resp.status == 200
                up = series(await resp.text())
            assert up["tierline_ready"] == 1
            assert up["tierline_tier_table_version"] == 0
            assert up["tierline_tier_table_loaded_timestamp_seconds"] == 0
            assert up["tierline_tier_reloads_total[('outcome', 'swapped')]"] == 0
            assert any(name.startswith("tierline_calls_waiting") for name in up)

            redis.stop(kill=True)
            async with http.get(url, headers=admin) as resp:
                assert resp.status == 200
                down = series(await resp.text())
            assert down["tierline_ready"] == 0
            assert any(name.startswith("tierline_build_info") for name in down)
            # The alert rules' thresholds are config: served while the store is down too.
            assert down["tierline_alert_setting[('setting', 'wait_factor')]"] == 2
            # Nothing of the store's: an instance that cannot read it must not report zeros.
            assert not any(
                name.startswith(("tierline_calls_", "tierline_tier_", "tierline_callbacks_")) for name in down
            )
    finally:
        await server.close()
        redis.cleanup()
