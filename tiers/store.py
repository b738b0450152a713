"""The contract of a tier store: what the router and admin layers may ask of caller tiers.

Owns the interface only; `memory.MemoryTierStore` keeps the table in the process, and a Redis
store can keep it shared. Callers are passed already normalised (`phone.normalise_caller`):
normalising is the HTTP layer's job, done once per request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Protocol

from tierline.tiers.freshness import TierFreshness
from tierline.tiers.model import Tier, TierRecord
from tierline.tiers.parse import TierFileFormat
from tierline.tiers.reload import ReloadResult


class TierStore(Protocol):
    async def lookup(self, caller: str) -> TierRecord:
        """The caller's record; an unknown caller gets the default tier, `known=False`, no CRM."""
        ...

    async def put(self, caller: str, tier: Tier, crm: Mapping[str, str] | None = None) -> TierRecord:
        """Set one caller's tier and CRM fields (empty values dropped) until the next reload."""
        ...

    async def delete(self, caller: str) -> bool:
        """Forget one caller (back to the default tier); True if it was in the table."""
        ...

    async def reload_file(self, path: Path, fmt: TierFileFormat) -> ReloadResult:
        """Replace the whole table with the file's valid rows if `reload.should_swap` allows.

        Raises `parse.BadTierFile` for a file that is not a tier file at all; then, as for a
        file over the reject ratio, nothing changes.
        """
        ...

    async def version(self) -> int:
        """How many reloads have swapped the table in; single edits do not count."""
        ...

    async def count(self) -> int:
        """Callers in the table now."""
        ...

    async def freshness(self) -> TierFreshness:
        """The version in use, when it went live and how reloads ended (for `/metrics`).

        Every outcome of `reload_file` counts, a `BadTierFile` as "invalid". A store shared by
        several processes answers the same for each of them.
        """
        ...

    async def tier_table(self) -> dict[str, Tier]:
        """Every caller's tier now (a grading run's migration report compares with it)."""
        ...

    def table_rows(self) -> AsyncIterator[list[tuple[str, Tier]]]:
        """Every caller's tier now, a batch (thousands of callers) at a time, so an export of a
        million rows holds one batch, not the table. O(n) over the whole iteration."""
        ...

    async def edits(self) -> dict[str, Tier]:
        """Callers whose tier was set by hand (`put`) since a grading run last cleared the list:
        caller -> that tier. A `delete` takes a caller out; a reload leaves the list as it is
        (the next grading run re-applies these tiers unless it resets them). O(edits)."""
        ...

    async def clear_edits(self) -> int:
        """Empty the edit list (`tierline grade --reset-edits`); returns how many edits went."""
        ...

    async def save_grading(self, report: bytes) -> None:
        """Keep the last grading run's report (JSON, `grading.run.GradingReport`), replacing the one before."""
        ...

    async def grading(self) -> bytes | None:
        """The last grading run's report as saved, or None when no run has been applied."""
        ...
