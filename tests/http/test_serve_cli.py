"""`tierline serve` and `tierline reload-tiers` as real processes on a real port."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.http.conftest import ApiFactory

CLI = [sys.executable, "-m", "tierline.router.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    config = tmp_path / "tierline.toml"
    config.write_text("[queues.sales]\nmax_waiting = 10\n[tiers.mid]\noverflow_after_s = 120\n")
    proc = subprocess.Popen([*CLI, "serve", "--port", str(port), "--config", str(config)], stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            if http("GET", base + "/healthz")[0] == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"server did not start: {proc.stderr.read() if proc.stderr else ''!r}")
        time.sleep(0.05)
    yield base
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_serve_reload_route_and_read_back(server: str, tmp_path: Path) -> None:
    tiers = tmp_path / "tiers.csv"
    tiers.write_text("caller,tier,customer_id\n+8613800000001,vip,C1\n+8613800000002,mid,C2\n")
    done = subprocess.run([*CLI, "reload-tiers", str(tiers), "--url", server], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "2 loaded" in done.stdout and "swapped" in done.stdout
    status, call = http(
        "POST", server + "/v1/calls", {"call_id": "sip-1", "caller": "+8613800000001", "queue": "sales"}
    )
    assert status == 201 and call["tier"] == "vip" and call["queue"] == "sales"
    status, again = http("GET", server + "/v1/calls/sip-1")
    assert status == 200 and again["status"] == "waiting" and again["position"] == 1


def test_reload_tiers_exits_1_when_nothing_is_swapped(server: str, tmp_path: Path) -> None:
    tiers = tmp_path / "bad.ndjson"
    tiers.write_text('{"caller": "x", "tier": "vip"}\n')
    done = subprocess.run([*CLI, "reload-tiers", str(tiers), "--url", server], capture_output=True, text=True)
    assert done.returncode == 1
    assert "NOT swapped" in done.stdout and "line 1" in done.stdout


def test_open_bind_without_tokens_is_refused() -> None:
    done = subprocess.run(
        [*CLI, "serve", "--host", "0.0.0.0", "--port", str(free_port())], capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 1
    assert "refusing to listen on 0.0.0.0" in done.stderr and "--insecure" in done.stderr


def test_bad_config_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[tiers.vip]\nsla_target = 1.5\n")
    done = subprocess.run([*CLI, "serve", "--config", str(config)], capture_output=True, text=True, timeout=20)
    assert done.returncode == 2 and "invalid configuration in [tiers]" in done.stderr


async def test_sweeper_runs_without_anyone_asking(make_api: ApiFactory) -> None:
    """The background task calls the store's sweep at least once a second."""
    from aiohttp.test_utils import TestServer

    from tierline.queue.clock import ManualClock
    from tierline.router.app import build_app, open_services
    from tierline.router.config import load_settings

    settings = load_settings(None, env={"TIERLINE_HISTORY": "off"})  # no archive in the working tree
    svc = open_services(settings, ManualClock())
    calls = 0
    original = svc.calls.sweep

    async def counting_sweep() -> None:
        nonlocal calls
        calls += 1
        await original()

    svc.calls.sweep = counting_sweep  # type: ignore[method-assign]
    server = TestServer(build_app(svc), host="127.0.0.1")
    await server.start_server()
    try:
        for _ in range(40):
            if calls >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await server.close()
    assert calls >= 2
