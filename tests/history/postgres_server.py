"""A PostgreSQL server for the history tests: the machine's on 127.0.0.1:5432, else a throwaway one.

The throwaway server is Debian's own binaries (/usr/lib/postgresql/<n>/bin) run on a free port
in a temporary folder, trust auth, fsync off (the tests need no durability across power cuts),
stopped when the session ends. initdb refuses root, so as root it runs as the `postgres` user.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from tests.support.redis_servers import free_port

USERS = ("postgres", "root")


async def _answers(host: str, port: int, user: str) -> bool:
    try:
        conn = await asyncpg.connect(host=host, port=port, user=user, database="postgres", timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def find_server(host: str = "127.0.0.1", port: int = 5432) -> str | None:
    """The admin DSN of a server answering with trust auth, or None."""
    for user in USERS:
        if asyncio.run(_answers(host, port, user)):
            return f"postgresql://{user}@{host}:{port}"
    return None


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    if initdb := shutil.which("initdb"):
        return Path(initdb).parent
    raise RuntimeError("no PostgreSQL on 127.0.0.1:5432 and no initdb: apt-get install postgresql (see .ci/run)")


@dataclass
class ThrowawayPostgres:
    folder: Path
    port: int
    as_user: list[str]

    @classmethod
    def start(cls) -> ThrowawayPostgres:
        folder = Path(tempfile.mkdtemp(prefix="tierline-pg-"))
        as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
            as_user = ["runuser", "-u", "postgres", "--"]
        server = cls(folder, free_port(), as_user)
        bin_dir = postgres_bin()
        data = folder / "data"
        server._run([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"])
        options = f"-p {server.port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        server._run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-o", options, "-w", "start"])
        deadline = time.monotonic() + 30
        while not asyncio.run(_answers("127.0.0.1", server.port, "postgres")):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the throwaway PostgreSQL did not answer; see {folder / 'log'}")
            time.sleep(0.1)
        return server

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def _run(self, args: list[str]) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        bin_dir = postgres_bin()
        self._run([str(bin_dir / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "stop"])
        shutil.rmtree(self.folder, ignore_errors=True)
