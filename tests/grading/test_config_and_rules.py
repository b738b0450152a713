"""The [grading] table refuses a broken configuration at load; the rules' order of precedence."""

from __future__ import annotations

import pytest

from tierline.tiers.grading.config import GradingConfigError, Rule, load_grading
from tierline.tiers.grading.rules import BLACKLIST_RULE, DEFAULT_RULE, PIN_RULE, Facts, choose

CARD = """
[grading.scorecard]
criteria = [
  {{ name = "size", column = "employees", weight = {a}, bands = [{bands}] }},
  {{ name = "tie", column = "strategic", weight = {b}, bands = [{{ values = ["key"], points = 10 }}] }},
]
"""


@pytest.mark.parametrize(
    ("a", "b", "bands", "message"),
    [
        (60, 30, "{ max = 10, points = 5 }, { min = 10, points = 60 }", "weights sum to 90, not 100"),
        (60, 40, "{ max = 10, points = 5 }, { min = 8, points = 60 }", "overlap"),
        (60, 40, "{ max = 10, points = 5 }, { min = 12, points = 60 }", "leave a gap [10, 12)"),
        (60, 40, "{ max = 10, points = 5 }, { min = 10, points = 61 }", "more than its weight 60"),
    ],
)
def test_a_broken_scorecard_is_refused_at_load(a: int, b: int, bands: str, message: str) -> None:
    with pytest.raises(GradingConfigError, match="invalid \\[grading\\]") as caught:
        load_grading(CARD.format(a=a, b=b, bands=bands).encode())
    assert message in str(caught.value)


def test_overlapping_categories_and_rules_without_their_method_are_refused() -> None:
    with pytest.raises(GradingConfigError, match="'KEY' is in bands 1 and 2"):
        load_grading(
            b'[grading.scorecard]\ncriteria = [{ name = "s", column = "c", weight = 100, bands = ['
            b'{ values = ["key"], points = 1 }, { values = ["KEY"], points = 2 }] }]\n'
        )
    with pytest.raises(GradingConfigError, match=r"matches a segment but \[grading\.rfm\] is not configured"):
        load_grading(b'[grading.value_share]\n[[grading.rules]]\nsegment = ["important value"]\ntier = "vip"\n')
    with pytest.raises(GradingConfigError, match="unknown field `tiers`"):
        load_grading(b"[grading.rfm]\n[grading.guard]\ntiers = 3\n")
    with pytest.raises(GradingConfigError, match="no \\[grading\\] table"):
        load_grading(b"default_tier = 'mid'\n")


def test_the_deploy_example_loads() -> None:
    from pathlib import Path

    settings = load_grading((Path(__file__).parents[2] / "deploy/grading/grading.example.toml").read_bytes())
    assert settings.scorecard is not None
    assert [c.weight for c in settings.scorecard.criteria] == [15, 15, 15, 15, 20, 20]
    assert settings.rfm is not None and settings.value_share is not None and settings.rules


RULES = [
    Rule(name="key account", column="account_type", values=["key"], tier="vip"),
    Rule(segment=["important value"], tier="vip"),
    Rule(grade=["A", "B"], tier="mid"),
]


def facts(**columns: str) -> Facts:
    return Facts(segment="important value", grade="B", columns=columns)


def test_blacklist_then_pin_then_rules_then_default() -> None:
    assert choose(RULES, facts(account_type="KEY"), "standard", blacklisted=True, pinned="vip") == (
        "blacklisted",
        BLACKLIST_RULE,
    )
    assert choose(RULES, facts(account_type="KEY"), "standard", pinned=" Mid ") == ("mid", PIN_RULE)
    assert choose(RULES, facts(account_type="Key"), "standard") == ("vip", "key account")
    assert choose(RULES, facts(), "standard") == ("vip", "segment important value -> vip")
    assert choose(RULES, Facts(grade="B", columns={}), "standard") == ("mid", "grade A|B -> mid")
    assert choose(RULES, Facts(grade="C", columns={}), "standard") == ("standard", DEFAULT_RULE)
    # A pin that is not a tier name is no pin: the rules decide.
    assert choose(RULES, Facts(grade="C", columns={}), "standard", pinned="gold") == ("standard", DEFAULT_RULE)
