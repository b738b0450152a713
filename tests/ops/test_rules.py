"""The alert rules with the real promtool: they load, and every alert fires on the series meant
to fire it and stays quiet on the others (deploy/prometheus/tierline-rules.test.yml)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import msgspec
import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML is locked in requirements/dev.txt (no stubs there)

from tests.ops.conftest import ROOT, RULE_TESTS, RULES, alerts, rules, tool
from tierline.admin.alerting import EXPORTED_NAMES, AlertSettings
from tierline.router.config import ConfigError, load_settings

# Series each process counts for itself: the only ones a rule may sum() (over one instance's
# routes or codes), never the store-wide ones every instance repeats.
PER_PROCESS = re.compile(r"tierline_(http_\w+|requests_shed_total|store_errors_total|redis_\w+)")


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
    far = 'setting="far_below_margin_ratio"}) or vector(0.2))'
    changed = RULES.read_text().replace(far, far.replace("0.2", "0.5"))
    assert changed != RULES.read_text()
    (tmp_path / RULES.name).write_text(changed)
    # Only the test group that expects it to fire (promtool evaluates every rule at every step
    # of every group: the whole file twice would double the cost of this module).
    tests = yaml.safe_load(RULE_TESTS.read_text())
    tests["tests"] = [group for group in tests["tests"] if group["name"].startswith("service level under target")]
    assert len(tests["tests"]) == 1
    (tmp_path / RULE_TESTS.name).write_text(yaml.safe_dump(tests, sort_keys=False))
    run = subprocess.run(
        [tool("promtool"), "test", "rules", RULE_TESTS.name], capture_output=True, text=True, cwd=tmp_path
    )
    assert run.returncode != 0
    assert "TierlineServiceLevelFarBelowTarget" in run.stdout + run.stderr


def summed(expr: str) -> list[str]:
    """The argument of every sum(...) in `expr` (a `by (...)` clause before or after it skipped)."""
    found = []
    for match in re.finditer(r"\bsum\b\s*(?:by\s*\([^)]*\)\s*)?\(", expr):
        depth, start = 1, match.end()
        end = start
        while depth:
            depth += {"(": 1, ")": -1}.get(expr[end], 0)
            end += 1
        found.append(expr[start : end - 1])
    return found


def test_store_wide_series_are_aggregated_with_max_never_sum() -> None:
    sums = 0
    for rule in rules():
        for argument in summed(rule["expr"]):
            sums += 1
            metrics = set(re.findall(r"\btierline_\w+", argument))
            assert metrics, argument
            assert all(PER_PROCESS.fullmatch(name) for name in metrics), (rule.get("alert") or rule["record"], metrics)
    assert sums > 0  # the call-path rules add up one instance's routes
    assert summed('sum by (instance) (rate(x{a="b"}[5m])) / sum(y)') == ['rate(x{a="b"}[5m])', "y"]


def test_each_setting_a_rule_reads_is_exported_with_the_same_default() -> None:
    """The rules' fallback for each setting is the default of Tierline's `[alerts]`, and every
    setting Tierline exports is read by a rule."""
    text = RULES.read_text()
    fallbacks = dict(re.findall(r'max\(tierline_alert_setting\{setting="(\w+)"\}\) or vector\(([0-9.e+]+)\)', text))
    defaults = msgspec.structs.asdict(AlertSettings())
    assert {EXPORTED_NAMES[name]: float(value) for name, value in defaults.items()} == {
        name: float(value) for name, value in fallbacks.items()
    }
    exprs = " ".join(rule["expr"] for rule in rules())
    assert exprs.count("tierline_alert_setting") == exprs.count("or vector(")  # never read without its fallback


def test_each_alert_speaks_to_a_supervisor_and_has_a_runbook_section() -> None:
    readme = (ROOT / "README.md").read_text()
    for alert in alerts():
        name = alert["alert"]
        notes = alert["annotations"]
        assert notes["summary"] and notes["description"], name
        assert alert["labels"]["severity"] in ("warning", "critical"), name
        assert notes["runbook"] == f"README.md#{name.lower()}", name
        assert f"\n#### {name}\n" in readme, f"README has no runbook section for {name}"


def test_a_site_sets_the_thresholds_in_its_config_and_a_wrong_one_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "tierline.toml"
    config.write_text("[alerts]\nmax_tier_age_s = 50400\nwait_factor = 1.5\ncall_path_p99_s = 0.1\n")
    settings = load_settings(config, env={})
    assert (settings.alerts.max_tier_age_s, settings.alerts.wait_factor) == (50400, 1.5)
    assert settings.alerts.callback_sla_target == AlertSettings().callback_sla_target  # unset: the default
    for wrong in ("wait_factor = 0", "callback_sla_target = 1.5", "max_tier_age = 3600", 'wait_factor = "2"'):
        config.write_text(f"[alerts]\n{wrong}\n")
        with pytest.raises(ConfigError, match=r"in \[alerts\]"):
            load_settings(config, env={})
