"""Archives for the history tests: real SQLite files, and a real PostgreSQL.

PostgreSQL: `TIERLINE_TEST_PG_URL` (an admin DSN without a database), else the server on
127.0.0.1:5432 (trust auth, user postgres or root), else a throwaway server started here.
Never skipped: no PostgreSQL at all fails the session with a message. The session works in
its own database with a random name, dropped at the end; each test in its own schema.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from tests.history.postgres_server import ThrowawayPostgres, find_server
from tierline.queue.history.archive import Archive
from tierline.queue.history.postgres_archive import PostgresArchive
from tierline.queue.history.sqlite_archive import SqliteArchive

ARCHIVES = ("sqlite", "postgres")


async def _admin(dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(dsn + "/postgres", timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    if url := os.environ.get("TIERLINE_TEST_PG_URL"):
        yield url.rstrip("/")
        return
    if (found := find_server()) is not None:
        yield found
        return
    try:
        server = ThrowawayPostgres.start()
    except Exception as error:  # the message says what to install; never a silent skip
        pytest.fail(f"no PostgreSQL for the history tests: {error}", pytrace=False)
    yield server.dsn
    server.stop()


@pytest.fixture(scope="session")
def pg_dsn(pg_admin_dsn: str) -> Iterator[str]:
    """A database of this session's own, dropped at its end."""
    name = "tierline_history_" + uuid.uuid4().hex[:10]
    asyncio.run(_admin(pg_admin_dsn, f"CREATE DATABASE {name}"))
    yield f"{pg_admin_dsn}/{name}"
    asyncio.run(_admin(pg_admin_dsn, f"DROP DATABASE {name} WITH (FORCE)"))


def new_schema() -> str:
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
async def pg_archive(pg_dsn: str) -> AsyncIterator[PostgresArchive]:
    archive = PostgresArchive(pg_dsn, schema=new_schema())
    await archive.open()
    yield archive
    await archive.close()


@pytest.fixture
async def sqlite_archive(tmp_path: object) -> AsyncIterator[SqliteArchive]:
    archive = SqliteArchive(f"{tmp_path}/history.db")
    await archive.open()
    yield archive
    await archive.close()


@pytest.fixture(params=ARCHIVES)
def archive(request: pytest.FixtureRequest) -> Archive:
    """A test that takes `archive` runs on a real SQLite file and on a real PostgreSQL."""
    fixture = "sqlite_archive" if request.param == "sqlite" else "pg_archive"
    found: Archive = request.getfixturevalue(fixture)
    return found
