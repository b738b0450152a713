"""Every `tierline` command exits with the same codes: 0 ok, 1 refused or a failed check,
2 usage, 3 the service or store unreachable (router/cli/exit_codes.py, README).

Each command runs as a real process against a real server on a real port (or a port where
nothing listens, for 3).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.http.conftest import Api, ApiFactory
from tierline.router.cli.exit_codes import Exit

CLI = [sys.executable, "-m", "tierline.router.cli"]
ADMIN_TOKEN = "boss-secret-3"


def dead_url() -> str:
    """A loopback port where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def run(*args: str, env: dict[str, str] | None = None, limit_s: float = 60) -> tuple[int, str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TIERLINE_")}
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**clean, **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=limit_s)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_the_codes() -> None:
    assert [int(code) for code in Exit] == [0, 1, 2, 3]
    assert [code.name for code in Exit] == ["OK", "REFUSED", "USAGE", "UNREACHABLE"]


@pytest.fixture
async def guarded(make_api: ApiFactory) -> Api:
    api: Api = await make_api(env={"TIERLINE_ADMIN_TOKEN": ADMIN_TOKEN})
    return api


@pytest.fixture
def tier_files(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "tiers.csv"
    good.write_text("caller,tier\n+8613800000001,vip\n")
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"caller": "x", "tier": "vip"}\n')
    return {"good": good, "bad": bad, "missing": tmp_path / "nope.csv"}


Case = Callable[[Api, dict[str, Path]], list[str]]

# (command line, expected code, a fragment of what it prints to stderr)
CASES: dict[str, tuple[Case, Exit, str]] = {
    # reload-tiers
    "reload ok": (
        lambda a, f: ["reload-tiers", str(f["good"]), "--url", a.base, "--admin-token", ADMIN_TOKEN],
        Exit.OK,
        "",
    ),
    "reload not swapped": (
        lambda a, f: ["reload-tiers", str(f["bad"]), "--url", a.base, "--admin-token", ADMIN_TOKEN],
        Exit.REFUSED,
        "",
    ),
    "reload wrong token": (lambda a, f: ["reload-tiers", str(f["good"]), "--url", a.base], Exit.REFUSED, "(401)"),
    "reload no file": (lambda a, f: ["reload-tiers", str(f["missing"]), "--url", a.base], Exit.USAGE, "no such file"),
    "reload rollback via url": (lambda a, f: ["reload-tiers", "--rollback"], Exit.USAGE, "--rollback works on"),
    "reload store not redis": (
        lambda a, f: ["reload-tiers", str(f["good"]), "--store", "memory"],
        Exit.USAGE,
        "--store must be",
    ),
    "reload unreachable": (
        lambda a, f: ["reload-tiers", str(f["good"]), "--url", dead_url()],
        Exit.UNREACHABLE,
        "cannot reach",
    ),
    "reload store unreachable": (
        lambda a, f: ["reload-tiers", str(f["good"]), "--store", dead_url().replace("http", "redis") + "/0"],
        Exit.UNREACHABLE,
        "cannot reach redis://",
    ),
    # sla
    "sla ok": (lambda a, f: ["sla", "--url", a.base, "--admin-token", ADMIN_TOKEN], Exit.OK, ""),
    "sla refused": (lambda a, f: ["sla", "--url", a.base, "--admin-token", "wrong"], Exit.REFUSED, "(401)"),
    "sla bad watch": (lambda a, f: ["sla", "--url", a.base, "--watch", "0"], Exit.USAGE, "positive number"),
    "sla bad window": (lambda a, f: ["sla", "--url", a.base, "--window", "1y"], Exit.USAGE, "invalid choice"),
    "sla unreachable": (lambda a, f: ["sla", "--url", dead_url()], Exit.UNREACHABLE, "cannot reach"),
    # forecast
    "forecast ok": (lambda a, f: ["forecast", "--url", a.base, "--admin-token", ADMIN_TOKEN], Exit.OK, ""),
    "forecast refused": (lambda a, f: ["forecast", "--url", a.base], Exit.REFUSED, "(401)"),
    "forecast bad agents": (lambda a, f: ["forecast", "--url", a.base, "--agents", "many"], Exit.USAGE, "invalid int"),
    "forecast unreachable": (lambda a, f: ["forecast", "--url", dead_url()], Exit.UNREACHABLE, "cannot reach"),
    # the command itself
    "no command": (lambda a, f: [], Exit.USAGE, "required"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_each_command_exits_with_the_shared_code(guarded: Api, tier_files: dict[str, Path], case: str) -> None:
    argv, expected, says = CASES[case]
    code, _, err = await run(*argv(guarded, tier_files))
    assert code == expected, err
    assert says in err


async def test_the_admin_token_comes_from_the_environment(guarded: Api, tier_files: dict[str, Path]) -> None:
    env = {"TIERLINE_ADMIN_TOKEN": ADMIN_TOKEN}
    for argv in (["sla"], ["forecast"], ["reload-tiers", str(tier_files["good"])]):
        code, _, err = await run(*argv, "--url", guarded.base, env=env)
        assert code == Exit.OK, (argv, err)


# --- serve: 0 when stopped (test_serve_cli's fixture), 1 refused, 2 usage; an unreachable store
# is not an exit (the service starts; /readyz says 503), so serve has no 3.


async def test_serve_refuses_a_port_that_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = await run("serve", "--port", str(port), limit_s=30)
    assert code == Exit.REFUSED and f"cannot listen on 127.0.0.1:{port}" in err


async def test_serve_refuses_an_open_bind_without_tokens() -> None:
    code, _, err = await run("serve", "--host", "0.0.0.0", "--port", "1", limit_s=30)
    assert code == Exit.REFUSED and "refusing to listen on 0.0.0.0" in err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["serve", "--store", "postgres://db"], "unknown store 'postgres://db'"),
        (["serve", "--port", "70000"], "invalid configuration"),
        (["serve", "--port", "eighty"], "invalid int"),
    ],
)
async def test_serve_usage_errors_exit_2(argv: list[str], says: str) -> None:
    code, _, err = await run(*argv, limit_s=30)
    assert code == Exit.USAGE and says in err


async def test_serve_reads_its_config_file_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[tiers.vip]\nsla_target = 1.5\n")
    code, _, err = await run("serve", env={"TIERLINE_CONFIG": str(config)}, limit_s=30)
    assert code == Exit.USAGE and "invalid configuration in [tiers]" in err
