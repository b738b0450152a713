"""A real `tierline serve` process on a free port, for the tests that run several of them or
kill one: the one way the tests start it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.support.redis_servers import free_port


def start_serve(
    store: str, config: Path, env: Mapping[str, str] | None = None, stderr: int = subprocess.PIPE
) -> tuple[int, subprocess.Popen[bytes]]:
    """(port, process): `serve --config config` on `store`, this environment plus `env`."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tierline.router.cli", "serve", "--config", str(config)],
        env={**os.environ, "TIERLINE_STORE": store, "TIERLINE_PORT": str(port), **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    return port, process
