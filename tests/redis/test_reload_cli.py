"""`tierline reload-tiers FILE --store redis://…` and `--rollback`, as the nightly job runs them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from tests.conftest import new_namespace
from tierline.queue.redis_link import RedisLink, connect
from tierline.tiers.redis_store import RedisTierStore


def reload(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tierline.router.cli", "reload-tiers", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def lookup(url: str, namespace: str, caller: str) -> str:
    link = RedisLink(connect(url, 1.0), timeout_s=1.0)
    try:
        return (await RedisTierStore(link, namespace).lookup(caller)).tier
    finally:
        await link.close()


def test_reload_refuse_and_rollback_through_the_cli(redis_url: str, tmp_path: Path) -> None:
    ns = new_namespace()
    first = tmp_path / "monday.csv"
    first.write_text("caller,tier,customer_id\n" + "".join(f"+8613{i:09d},mid,C{i}\n" for i in range(5000)))
    done = reload(str(first), "--store", redis_url, "--namespace", ns)
    assert done.returncode == 0, done.stderr
    assert "version 1: 5000 loaded, 0 rejected, swapped" in done.stdout and "rows/s" in done.stdout

    second = tmp_path / "tuesday.jsonl"
    second.write_text("".join(f'{{"caller": "+8613{i:09d}", "tier": "vip"}}\n' for i in range(5000)))
    done = reload(str(second), "--store", redis_url, "--namespace", ns)
    assert done.returncode == 0 and "version 2: 5000 loaded" in done.stdout, done.stderr
    assert asyncio.run(lookup(redis_url, ns, "+8613000000007")) == "vip"

    broken = tmp_path / "broken.csv"
    broken.write_text("caller,tier\n+8613000000001,vip\nnonsense,vip\n")
    done = reload(str(broken), "--store", redis_url, "--namespace", ns)
    assert done.returncode == 1
    assert "NOT swapped" in done.stdout and "line 3:" in done.stdout
    assert asyncio.run(lookup(redis_url, ns, "+8613000000007")) == "vip"

    done = reload("--rollback", "--store", redis_url, "--namespace", ns)
    assert done.returncode == 0 and "rolled back: version 3, 5000 callers" in done.stdout, done.stdout
    assert asyncio.run(lookup(redis_url, ns, "+8613000000007")) == "mid"
    done = reload("--rollback", "--store", redis_url, "--namespace", ns)
    assert done.returncode == 1 and "nothing rolled back" in done.stderr
