"""Tier rules: an ordered list, first match wins, over what the methods found and CRM columns.

Pure. Precedence when they meet (issue 17): a blacklist flag first, then a pinned tier or a
hand edit (`PUT /admin/tiers/{caller}` since the last run; the newer of the two, the edit, wins:
`engine.Graded.keep_edits` lays edits over the decided tiers), then the rules, then the default tier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from tierline.tiers.grading.config import Rule
from tierline.tiers.model import Tier, parse_tier

BLACKLIST_RULE: Final = "blacklist flag"
PIN_RULE: Final = "pinned"
EDIT_RULE: Final = "hand edit"
DEFAULT_RULE: Final = "default"
_TRUE: Final = frozenset({"1", "true", "yes", "y", "x", "blacklisted"})


class Columns(Protocol):
    def get(self, name: str, default: str, /) -> str: ...


@dataclass(slots=True, kw_only=True)
class Facts:
    """What the rules may look at for one customer."""

    segment: str | None = None
    grade: str | None = None
    score: float | None = None
    value_class: str | None = None
    rfm_total: int | None = None
    columns: Columns


def is_flagged(value: str) -> bool:
    return value.strip().lower() in _TRUE


def matches(rule: Rule, facts: Facts) -> bool:
    if rule.segment and facts.segment not in rule.segment:
        return False
    if rule.grade and facts.grade not in rule.grade:
        return False
    if rule.value_class and facts.value_class not in rule.value_class:
        return False
    if rule.score_at_least is not None and (facts.score is None or facts.score < rule.score_at_least):
        return False
    if rule.rfm_at_least is not None and (facts.rfm_total is None or facts.rfm_total < rule.rfm_at_least):
        return False
    if rule.column:
        value = facts.columns.get(rule.column, "").strip().lower()
        if value not in {option.strip().lower() for option in rule.values}:
            return False
    return True


def choose(
    rules: Sequence[Rule],
    facts: Facts,
    default: Tier,
    blacklisted: bool = False,
    pinned: str = "",
) -> tuple[Tier, str]:
    """The customer's tier and the name of what chose it."""
    if blacklisted:
        return "blacklisted", BLACKLIST_RULE
    pin = parse_tier(pinned) if pinned.strip() else None
    if pin is not None:
        return pin, PIN_RULE
    for rule in rules:
        if matches(rule, facts):
            return rule.tier, rule.label()
    return default, DEFAULT_RULE
