"""The operations kit against the real tools: promtool, and a real Prometheus scraping two real
`tierline serve` processes on one real Redis with the admin token.

The stack is started once for the package (Prometheus takes about a second to come up, each
router about as long). promtool and prometheus come from Debian's `prometheus` package; when
they are missing the tests fail and say how to install them (CI does, in .ci/run).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML is locked in requirements/dev.txt (no stubs there)
from aiohttp import ClientSession

from tests.support.redis_servers import free_port
from tests.support.serve_process import start_serve
from tierline.queue.redis_link import RedisLink, connect
from tierline.tiers.redis_store import RedisTierStore

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "tierline-rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "tierline-rules.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "tierline-dashboard.json"
ADMIN_TOKEN = "ops-admin-secret"
API_TOKEN = "ops-ivr-secret"
STARTUP_S = 20.0
SCRAPE_WAIT_S = 15.0


def rules() -> list[dict[str, Any]]:
    """Every rule of the rules file, recording and alerting."""
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} is not installed: the operations kit is tested with the real tool. Install Debian's "
            "prometheus package (`apt-get install -y prometheus`, as .ci/run does), then run the tests again.",
            pytrace=False,
        )
    return found


@dataclass
class Router:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class OpsStack:
    routers: list[Router]
    prometheus: str  # base URL of its HTTP API
    tiers_loaded: tuple[float, float]  # the tier table went live between these Unix times

    async def query(self, http: ClientSession, expr: str, **params: str) -> Any:
        """An instant query's result; any error status fails the test with Prometheus's message."""
        async with http.get(f"{self.prometheus}/api/v1/query", params={"query": expr, **params}) as resp:
            answer = await resp.json()
        assert answer["status"] == "success", (expr, answer)
        return answer["data"]["result"]

    async def wait_for(self, http: ClientSession, expr: str, want: Any) -> Any:
        """Poll until the query's result satisfies `want` (Prometheus scrapes every second)."""
        deadline = time.monotonic() + SCRAPE_WAIT_S
        while True:
            result = await self.query(http, expr)
            if want(result):
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{expr}: still {result} after {SCRAPE_WAIT_S} s")
            await asyncio.sleep(0.1)

    async def query_range(self, http: ClientSession, expr: str, start: float, end: float, step: str) -> Any:
        params = {"query": expr, "start": str(start), "end": str(end), "step": step}
        async with http.get(f"{self.prometheus}/api/v1/query_range", params=params) as resp:
            answer = await resp.json()
        assert answer["status"] == "success", (expr, answer)
        return answer["data"]["result"]


def start_router(redis_url: str, config: Path) -> Router:
    tokens = {"TIERLINE_ADMIN_TOKEN": ADMIN_TOKEN, "TIERLINE_API_TOKEN": API_TOKEN}
    return Router(*start_serve(redis_url, config, tokens))


def prometheus_config(routers: list[Router], token_file: Path) -> str:
    targets = ", ".join(f'"{router.target}"' for router in routers)
    # The same wiring as the README's "Watching it", with a 1 s scrape so the test waits little.
    return f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {RULES}
scrape_configs:
  - job_name: tierline
    authorization:
      credentials_file: {token_file}
    static_configs:
      - targets: [{targets}]
"""


def wait_until(what: str, url: str, process: subprocess.Popen[bytes]) -> None:
    """Poll a real process coming up (its own start time, not the engine's clock)."""
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None:
            err = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"{what} exited: {err[-2000:]}")
        time.sleep(0.05)
    raise RuntimeError(f"{what} not up within {STARTUP_S} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def load_tiers(redis_url: str, namespace: str, path: Path) -> None:
    link = RedisLink(connect(redis_url, 2.0), timeout_s=2.0)
    try:
        result = await RedisTierStore(link, namespace).reload_file(path, "csv")
    finally:
        await link.close()
    assert result.swapped


@pytest.fixture(scope="session")
def ops_stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsStack]:
    prometheus_bin = tool("prometheus")
    work = tmp_path_factory.mktemp("ops")
    namespace = "ops" + uuid.uuid4().hex[:10]
    config = work / "tierline.toml"
    # [alerts]: a site's own k, which the rules then read from the scrape (test_scrape.py).
    config.write_text(
        f'[server]\nredis_namespace = "{namespace}"\n[tiers.vip]\nsla_threshold_s = 12\n[alerts]\nwait_factor = 3\n'
    )

    # The CRM's nightly file goes in before the routers start, through the store the reload
    # command uses: every router then looks callers up in it from its first request.
    tiers_csv = work / "tiers.csv"
    tiers_csv.write_text("caller,tier\n+861000001,vip\n+861000002,vip\n+861000003,mid\n")
    before = time.time()
    asyncio.run(load_tiers(redis_url, namespace, tiers_csv))
    loaded = (before, time.time())

    routers = [start_router(redis_url, config) for _ in range(2)]
    token_file = work / "admin-token"
    token_file.write_text(ADMIN_TOKEN)
    prom_port = free_port()
    prom_config = work / "prometheus.yml"
    prom_config.write_text(prometheus_config(routers, token_file))
    prom = subprocess.Popen(
        [
            prometheus_bin,
            f"--config.file={prom_config}",
            f"--storage.tsdb.path={work / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    stack = OpsStack(routers, f"http://127.0.0.1:{prom_port}", loaded)
    try:
        for router in routers:
            wait_until("tierline serve", f"{router.base}/readyz", router.process)
        wait_until("prometheus", f"{stack.prometheus}/-/ready", prom)
        yield stack
    finally:
        for process in (prom, *(router.process for router in routers)):
            stop(process)
