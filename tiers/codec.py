"""The compact in-memory form of a tier record: what a table holds per caller instead of objects.

A table of a few million callers is mostly per-object overhead if each caller keeps a
TierRecord, a dict and a str per CRM value (several hundred bytes each). Here a caller's
value is one small bytes blob: a msgpack array `[tier_rank, field_id, value, field_id, value,
...]`, where `field_id` indexes a `FieldNames` table shared by the whole table (CRM column names
repeat on every row, so they are stored once). A record is rebuilt on look-up in well under a
microsecond.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

import msgspec

from tierline.tiers.model import TIER_RANK, TIERS, Tier, TierRecord

_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder()

# A record with no CRM fields is just its tier: all such callers share one blob per tier
# instead of paying ~40 bytes each for identical copies.
_BARE: Final[tuple[bytes, ...]] = tuple(_encoder.encode([rank]) for rank in range(len(TIERS)))


class FieldNames:
    """CRM column names, each given a small id once. Append-only, so a blob never changes meaning."""

    __slots__ = ("_ids", "names")

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names: list[str] = []
        self._ids: dict[str, int] = {}
        for name in names:
            self.id_of(name)

    def id_of(self, name: str) -> int:
        found = self._ids.get(name)
        if found is None:
            found = self._ids[name] = len(self.names)
            self.names.append(name)
        return found

    def __len__(self) -> int:
        return len(self.names)


def encode(rank: int, fields: list[int | str]) -> bytes:
    """The blob of a record: `fields` alternates field ids and non-empty values.

    Raises UnicodeEncodeError for a value holding a lone surrogate (what undecodable input
    bytes become), so a row of bad bytes is refused instead of stored.
    """
    if not fields:
        return _BARE[rank]
    blob = _encoder.encode([rank, *fields])
    # msgspec hands back its 32-byte starting buffer, an 80-byte block for a 12-byte blob;
    # a copy of exact size takes 48. At a million callers that is 32 MB.
    return blob[:1] + blob[1:]


def encode_record(tier: Tier, crm: Mapping[str, str], names: FieldNames) -> bytes:
    """The blob of one edited record; empty CRM values are dropped, as in a tier file."""
    fields: list[int | str] = []
    for name, value in crm.items():
        if value:
            fields.append(names.id_of(name))
            fields.append(value)
    return encode(TIER_RANK[tier], fields)


def decode(caller: str, blob: bytes, names: FieldNames) -> TierRecord:
    """The record a blob stands for; `names` must be the table the blob was encoded against."""
    items = _decoder.decode(blob)
    size = len(items)
    crm: dict[str, str]
    if size == 1:
        crm = {}
    elif size == 3:  # the usual row: tier and customer id
        crm = {names.names[items[1]]: items[2]}
    else:
        pairs = iter(items)
        next(pairs)
        crm = {names.names[field]: value for field, value in zip(pairs, pairs, strict=True)}
    return TierRecord(caller=caller, tier=TIERS[items[0]], known=True, crm=crm)
