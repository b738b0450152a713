"""`tierline simulate` and `tierline forecast --plan --arrivals` through the command's own entry
point (`tierline.router.cli.main`, in this process: a fresh interpreter per case costs seconds),
real files, the shared exit codes (0 figures, 2 bad input with the API's code)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tierline.router.cli import main

ARRIVALS = "start,vip,mid,standard\n08:00,3,10,30\n08:15,3,12,34\n"


@pytest.fixture
def tierline(capsys: pytest.CaptureFixture[str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(list(argv), code, out, err)

    return run


Tierline = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {
        "arrivals": ARRIVALS,
        "staffing": "start,end,agents\n08:00,08:45,8\n",
        "gap": "start,end,agents\n08:00,08:15,8\n08:30,08:45,8\n",
    }
    paths = {}
    for name, text in out.items():
        paths[name] = tmp_path / f"{name}.csv"
        paths[name].write_text(text)
    return paths


def test_simulate_prints_figures_and_json(tierline: Tierline, files: dict[str, Path]) -> None:
    common = ["simulate", "--arrivals", str(files["arrivals"]), "--staffing", str(files["staffing"]), "--aht-s", "180"]
    table = tierline(*common, "--patience-s", "120", "--overflow-after-s", "mid=30", "--replications", "2")
    assert table.returncode == 0, table.stderr
    assert "08:15" in table.stdout and "standard" in table.stdout and "95% interval" in table.stdout
    assert "median real/quoted" in table.stdout  # how right the engine's quoted waits were
    raw = tierline(*common, "--seed", "9", "--replications", "2", "--date", "2026-12-01", "--json")
    assert raw.returncode == 0, raw.stderr
    figures = json.loads(raw.stdout)
    assert figures["seed"] == 9 and figures["replications"] == 2 and len(figures["intervals"]) == 2
    quoted = {row["tier"]: row for row in figures["estimate_accuracy"]}
    assert "standard" in quoted and quoted["standard"]["calls"] > 0 and quoted["standard"]["median_ratio"] > 0
    assert (
        json.loads(tierline(*common, "--seed", "9", "--replications", "2", "--date", "2026-12-01", "--json").stdout)
        == figures
    )


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--staffing", "gap"], "plan_gap"),
        (["--aht-s", "0"], "invalid_aht"),
        (["--threshold-s", "gold=20"], "invalid_field"),
        (["--overflow-after-s", "mid=-1"], "invalid_policy"),
        (["--arrivals", "missing"], "No such file"),
    ],
)
def test_simulate_bad_input_exits_2_with_the_code(
    tierline: Tierline, files: dict[str, Path], extra: list[str], says: str
) -> None:
    args = {"--arrivals": str(files["arrivals"]), "--staffing": str(files["staffing"]), "--aht-s": "180"}
    for flag, value in zip(extra[::2], extra[1::2], strict=True):
        args[flag] = str(files[value]) if value in files else str(files["arrivals"].parent / value) if flag in (
            "--arrivals", "--staffing") else value  # fmt: skip
    result = tierline("simulate", *[x for pair in args.items() for x in pair])
    assert result.returncode == 2 and says in result.stderr, result.stderr


def test_forecast_plan_from_a_csv(tierline: Tierline, files: dict[str, Path]) -> None:
    result = tierline("forecast", "--plan", "--arrivals", str(files["arrivals"]), "--aht-s", "180", "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)["plan"]
    assert [row["time"] for row in plan["intervals"]] == ["08:00", "08:15"]
    assert plan["agent_hours"] == sum(row["agents"] for row in plan["intervals"]) / 4
    missing = tierline("forecast", "--plan", "--arrivals", str(files["arrivals"]))
    assert missing.returncode == 2 and "no_aht" in missing.stderr
