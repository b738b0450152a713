"""What the stress scripts share: real `tierline serve` processes on a throwaway Redis, and their clean-up.

Everything a script starts is registered here and killed when it ends, however it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from aiohttp import ClientSession

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: tests.support

from tests.support.redis_servers import RedisServer, free_port


class Fleet:
    """A redis-server, some routers and any helper processes; `close` stops every one of them."""

    def __init__(self, redis_extra: tuple[str, ...] = ()) -> None:
        self.redis = RedisServer(extra=redis_extra).start()
        self.folder = Path(tempfile.mkdtemp(prefix="tierline-stress-"))
        self.processes: list[subprocess.Popen[bytes]] = []
        self.routers: list[str] = []

    def start_routers(self, count: int, config: str = "") -> list[str]:
        path = self.folder / "tierline.toml"
        path.write_text(config)
        for _ in range(count):
            port = free_port()
            env = {**os.environ, "TIERLINE_STORE": self.redis.url, "TIERLINE_PORT": str(port)}
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "tierline.router.cli", "serve", "--config", str(path)],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            self.routers.append(f"http://127.0.0.1:{port}")
        return self.routers

    def spawn(self, *args: str, stdout: int | None = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(list(args), stdout=stdout, stderr=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    async def wait_ready(self, http: ClientSession) -> None:
        for base in self.routers:
            await wait_ready(http, base)

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
        self.redis.cleanup()


async def wait_ready(http: ClientSession, base: str, timeout_s: float = 30.0) -> None:
    """Until the router at `base` answers /readyz with 200 (its store reachable)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(OSError):
            async with http.get(f"{base}/readyz") as resp:
                if resp.status == 200:
                    return
        if time.monotonic() > deadline:
            raise SystemExit(f"router {base} did not become ready")
        await asyncio.sleep(0.1)


@contextlib.contextmanager
def fleet(redis_extra: tuple[str, ...] = ()) -> Iterator[Fleet]:
    started = Fleet(redis_extra)
    try:
        yield started
    finally:
        started.close()


def error_code(status: int, body: object) -> str:
    """ "ok", or the error code of a refusal (store_unavailable, overloaded, …)."""
    if status < 300:
        return "ok"
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("code"))
    return f"http-{status}"
