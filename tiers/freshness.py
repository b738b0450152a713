"""How fresh the tier table is, as Prometheus reads it: the version in use, when it went live,
and how the reloads ended (the nightly CRM reload that did not run, or was refused, is an alert).
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

ReloadOutcome = Literal["swapped", "refused", "invalid"]
# swapped: the file went live; refused: parsed, but over the reject ratio (or no valid row),
# nothing changed; invalid: not a tier file at all (a 422), nothing changed.
OUTCOMES: Final[tuple[ReloadOutcome, ...]] = ("swapped", "refused", "invalid")


class TierFreshness(msgspec.Struct, frozen=True):
    version: int
    """The table version this process looks callers up in (reloads that swapped, rollbacks included)."""
    loaded_at: float
    """When the live table went live, Unix seconds; 0 if no reload ever swapped one in."""
    reloads: dict[str, int]
    """Reloads by outcome, every outcome present (0 when none)."""
    last_reload_at: dict[str, float]
    """When a reload last ended with each outcome, Unix seconds; outcomes never seen are left out."""
