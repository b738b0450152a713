"""The alert rules with the real promtool: they load, and every alert fires on the series meant
to fire it and stays quiet on the others (deploy/prometheus/tierline-rules.test.yml)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML is locked in requirements/dev.txt (no stubs there)

from tests.ops.conftest import ROOT, RULE_TESTS, RULES, tool


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def test_promtool_checks_the_rules() -> None:
    run = subprocess.run([tool("promtool"), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"SUCCESS: {len(rules())} rules found" in run.stdout


def test_promtool_unit_tests_pass() -> None:
    run = subprocess.run(
        [tool("promtool"), "test", "rules", str(RULE_TESTS)], capture_output=True, text=True, cwd=RULE_TESTS.parent
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout


def test_every_alert_is_tested_firing_and_quiet() -> None:
    cases = [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"] for case in test["alert_rule_test"]]
    for alert in alerts():
        name = alert["alert"]
        mine = [case for case in cases if case["alertname"] == name]
        assert any(case["exp_alerts"] for case in mine), f"{name} is never expected to fire"
        assert any(not case["exp_alerts"] for case in mine), f"{name} is never expected to stay quiet"


def test_the_unit_tests_catch_an_alert_that_does_not_fire(tmp_path: Path) -> None:
    """promtool fails when a rule no longer fires as expected: here the critical threshold moves
    from 20 to 50 points under target, and the test that expects it to fire must say so."""
    changed = RULES.read_text().replace("(tierline_sla_target_ratio) - 0.2)", "(tierline_sla_target_ratio) - 0.5)")
    assert changed != RULES.read_text()
    (tmp_path / RULES.name).write_text(changed)
    (tmp_path / RULE_TESTS.name).write_text(RULE_TESTS.read_text())
    run = subprocess.run(
        [tool("promtool"), "test", "rules", RULE_TESTS.name], capture_output=True, text=True, cwd=tmp_path
    )
    assert run.returncode != 0
    assert "TierlineServiceLevelFarBelowTarget" in run.stdout + run.stderr


def test_store_wide_series_are_aggregated_with_max_never_sum() -> None:
    for rule in rules():
        assert not re.search(r"\bsum\b", rule["expr"]), rule.get("alert") or rule.get("record")


def test_each_alert_speaks_to_a_supervisor_and_has_a_runbook_section() -> None:
    readme = (ROOT / "README.md").read_text()
    for alert in alerts():
        name = alert["alert"]
        notes = alert["annotations"]
        assert notes["summary"] and notes["description"], name
        assert alert["labels"]["severity"] in ("warning", "critical"), name
        assert notes["runbook"] == f"README.md#{name.lower()}", name
        assert f"\n#### {name}\n" in readme, f"README has no runbook section for {name}"
