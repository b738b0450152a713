"""The customer base the load scenarios and benchmarks share: numbers, tier mix, tier file.

Customer `i` has the number `+86139` + `i` on 8 digits and a tier fixed by `i % 100`:
5 % VIP, 20 % mid, 72 % standard, 3 % blacklisted. Numbers from `customers` upwards are
not in the file, so they route as the default tier (`known: false`). The wrk scripts
(loadtest/wrk/*.lua) draw callers from the same numbering.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the type only: locust and wrk runs need no Tierline import here
    from tierline.tiers.model import Tier

MIX: tuple[tuple[Tier, int], ...] = (("vip", 5), ("mid", 20), ("standard", 72), ("blacklisted", 3))
_BY_PERCENT: tuple[Tier, ...] = tuple(tier for tier, share in MIX for _ in range(share))


def caller_number(i: int) -> str:
    return f"+86139{i:08d}"


def tier_of(i: int) -> Tier:
    return _BY_PERCENT[i % 100]


def tier_csv(customers: int) -> bytes:
    """The CRM export for `customers` customers, as POST /admin/tiers/reload takes it (text/csv)."""
    lines = ["caller,tier,customer_id,name"]
    lines.extend(f"{caller_number(i)},{tier_of(i)},C{i:08d},Customer {i}" for i in range(customers))
    return ("\n".join(lines) + "\n").encode()


def pick_caller(rng: random.Random, customers: int, unknown_share: float) -> str:
    """A calling number: a known customer (so the mix above), or with `unknown_share` an unknown one."""
    if rng.random() < unknown_share:
        return caller_number(customers + rng.randrange(max(customers // 10, 1000)))
    return caller_number(rng.randrange(customers))
