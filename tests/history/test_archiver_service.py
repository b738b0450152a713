"""The archiver as the service runs it (issue 15 items 2 and 3): a background task of the app
on a real port, its figures in /metrics and /readyz; the settings that name the archive; `serve`
refusing a data directory it cannot write; `tierline archive --once` on a real Redis."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import new_namespace, server_url
from tests.history.test_archiver import POLICY, drive
from tests.queue.helpers import T0
from tierline.queue.clock import ManualClock
from tierline.queue.history import events as ev
from tierline.queue.history.sqlite_archive import SqliteArchive
from tierline.queue.memory_store import MemoryCallStore
from tierline.queue.redis_link import RedisLink, connect
from tierline.queue.redis_store import RedisCallStore
from tierline.router.app import build_app, open_services
from tierline.router.cli import main
from tierline.router.config import ConfigError, HistoryTarget, history_target, load_settings

HISTORY_SERIES = (
    "tierline_history_lag_events",
    "tierline_history_dropped_total",
    "tierline_history_archived_total",
    "tierline_history_last_commit_timestamp_seconds",
)


def test_history_defaults_to_sqlite_in_the_data_dir_on_memory_and_off_on_redis() -> None:
    memory = load_settings(None, env={"TIERLINE_DATA_DIR": "/var/lib/tierline"})
    assert history_target(memory.server) == HistoryTarget("sqlite", "/var/lib/tierline/history.sqlite3")
    assert history_target(load_settings(None, env={"TIERLINE_STORE": "redis://h:6379/0"}).server) is None
    assert history_target(load_settings(None, env={"TIERLINE_HISTORY": "off"}).server) is None
    named = load_settings(None, env={"TIERLINE_HISTORY": "postgresql://u@db:5432/calls?schema=site_a&sslmode=require"})
    assert history_target(named.server) == HistoryTarget(
        "postgresql", "postgresql://u@db:5432/calls?sslmode=require", "site_a"
    )
    lite = load_settings(None, env={"TIERLINE_HISTORY": "sqlite:///srv/h.db"})
    assert history_target(lite.server) == HistoryTarget("sqlite", "/srv/h.db")
    for wrong in ("mysql://x", "sqlite://", "postgresql://h/db?schema=Bad-Name"):
        with pytest.raises(ConfigError, match="history"):
            load_settings(None, env={"TIERLINE_HISTORY": wrong})


def test_serve_refuses_a_data_dir_it_cannot_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    data_dir = blocker / "data"
    assert main(["serve", "--port", "0", "--data-dir", str(data_dir)]) == 1
    err = capsys.readouterr().err
    assert f"the history data directory {str(data_dir)!r} cannot be written" in err and "--history off" in err


def test_archive_needs_a_redis_store_and_a_named_archive(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["archive", "--store", "memory", "--history", "sqlite:///tmp/x.db"]) == 2
    assert "needs a Redis store" in capsys.readouterr().err
    assert main(["archive", "--store", "redis://127.0.0.1:6379/0"]) == 2
    assert "no archive named" in capsys.readouterr().err


def test_archive_once_moves_a_redis_stores_backlog(
    request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = server_url(request, "redis")
    namespace = new_namespace()

    async def traffic() -> int:
        link = RedisLink(connect(url, 2.0), timeout_s=2.0)
        store = RedisCallStore(link, POLICY, ManualClock(T0), namespace)
        await store.open()
        assert isinstance(store.clock, ManualClock)
        await drive(store, store.clock, 12)
        added = int((await link.client.xinfo_stream(store._events_key))["entries-added"])
        await link.close()
        return added

    emitted = asyncio.run(traffic())
    config = tmp_path / "t.toml"
    config.write_text(f'[server]\nredis_namespace = "{namespace}"\n')
    db = tmp_path / "h.db"
    args = ["archive", "--config", str(config), "--store", url, "--history", f"sqlite://{db}", "--once"]
    assert main(args) == 0
    assert f"archived {emitted} new event(s) of {emitted} read; 0 waiting, 0 dropped" in capsys.readouterr().out

    async def count() -> int:
        archive = SqliteArchive(db)
        await archive.open()
        try:
            return await archive.count_events()
        finally:
            await archive.close()

    assert asyncio.run(count()) == emitted
    assert main(args) == 0  # nothing left: a second run moves nothing
    assert "archived 0 new event(s) of 0 read" in capsys.readouterr().out


async def _json(session: ClientSession, url: str) -> Any:
    async with session.get(url) as resp:
        return await resp.json()


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_the_service_archives_in_the_background_and_shows_its_figures(
    request: pytest.FixtureRequest, tmp_path: Path, store: str
) -> None:
    env = {"TIERLINE_HISTORY": f"sqlite://{tmp_path}/history.db", "TIERLINE_ADMIN_TOKEN": "boss"}
    if store == "redis":
        env["TIERLINE_STORE"] = server_url(request, "redis")
    settings = load_settings(None, env=env)
    settings.server.redis_namespace = new_namespace()
    clock = ManualClock(T0)
    svc = open_services(settings, clock)
    assert isinstance(svc.history, SqliteArchive)
    server = TestServer(build_app(svc), host="127.0.0.1")
    await server.start_server()
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with ClientSession() as session:
            for n in range(6):
                body = {"call_id": f"c{n}", "caller": f"+4930{n:07d}"}
                async with session.post(base + "/v1/calls", json=body) as resp:
                    assert resp.status == 201
            ready: Any = None
            for _ in range(200):
                ready = await _json(session, base + "/readyz")
                if ready["history"]["archived_events"] >= 6 and ready["history"]["lag_events"] == 0:
                    break
                await asyncio.sleep(0.05)
            assert ready["status"] == "ok" and ready["history"]["dropped_events"] == 0
            assert ready["history"]["last_commit_at"] is not None and ready["history"]["last_error"] is None
            async with session.get(base + "/metrics", headers={"Authorization": "Bearer boss"}) as resp:
                text = await resp.text()
        samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
        assert all(name in samples for name in HISTORY_SERIES)
        assert samples["tierline_history_archived_total"] >= 6 and samples["tierline_history_lag_events"] == 0
        assert await svc.history.count_events() == samples["tierline_history_archived_total"]
        # The store's event epoch is the one the archive handed out.
        if isinstance(svc.calls, MemoryCallStore):
            epoch = svc.calls.events.epoch
        else:
            assert isinstance(svc.calls, RedisCallStore) and svc.calls.epoch is not None
            epoch = svc.calls.epoch
        events = await svc.history.events(0, 4e9)
        assert {e.id.epoch for e in events} == {epoch}
    finally:
        await server.close()


def test_drop_expired_is_the_retention_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "h.db"
    now = time.time()
    old, recent = now - 40 * 31 * 86400, now - 86400  # forty months ago; yesterday
    ids = ev.IdSequence(1)
    batch = [
        ev.Enter(id=ids.next(), at=at, call_id=f"c{at}", queue="default", tier="vip", position=1)
        for at in (old, recent)
    ]

    async def fill() -> None:
        archive = SqliteArchive(db)
        await archive.open()
        await archive.ingest(batch)
        await archive.close()

    asyncio.run(fill())
    args = ["archive", "--history", f"sqlite://{db}", "--drop-expired"]
    assert main([*args, "--months", "0"]) == 2
    capsys.readouterr()
    assert main(args) == 0
    assert "dropped 1 month(s) of raw events" in capsys.readouterr().out

    async def left() -> list[ev.Event]:
        archive = SqliteArchive(db)
        await archive.open()
        try:
            return await archive.events(0, 4e9)
        finally:
            await archive.close()

    assert [e.at for e in asyncio.run(left())] == [recent]
