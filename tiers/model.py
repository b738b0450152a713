"""The tier vocabulary every other package speaks: tier names, their precedence, a caller's record.

Pure data; no I/O. Precedence is the one fact the queue order is built on, so it lives here once.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

import msgspec

Tier = Literal["vip", "mid", "standard", "blacklisted"]

TIERS: Final[tuple[Tier, ...]] = get_args(Tier)

# Lower rank is served first. Blacklisted is last by construction: no rule ever lowers its rank.
# The tier of a caller no tier file names (config `default_tier` overrides it).
DEFAULT_TIER: Final[Tier] = "standard"
TIER_RANK: Final[dict[Tier, int]] = {tier: rank for rank, tier in enumerate(TIERS)}


# The size of a record's CRM part, the same for a single edit and for a row of a tier file: a
# record travels in every call answer, so one oversized row would be copied into each of them.
MAX_CRM_FIELDS: Final = 64
MAX_CRM_NAME: Final = 64
MAX_CRM_VALUE: Final = 1024


# Typed by its values, so parse_tier needs no cast whatever a type checker makes of `in`.
_BY_NAME: Final[dict[str, Tier]] = {tier: tier for tier in TIERS}


def parse_tier(value: str) -> Tier | None:
    """A tier name as the CRM writes it (any case, stray spaces), or None when it is not a tier."""
    name = value.strip().lower()
    return _BY_NAME.get(name)


class TierRecord(msgspec.Struct, frozen=True, gc=False):
    """What Tierline knows of one caller: the tier and the CRM columns that travel with it."""

    caller: str
    tier: Tier
    known: bool = True
    crm: dict[str, str] = {}
    degraded: bool = False
    """True when the store could not be asked: the record is a cached or default answer."""
