"""The compact in-memory form of a tier record: what a table holds per caller instead of objects.

A table of a few million callers is mostly per-object overhead if each caller keeps a
TierRecord, a dict and a str per CRM value (several hundred bytes each). Here a caller's
value is one small bytes blob: a msgpack array `[tier_rank, field_id, value, field_id, value,
..., (shared_id)]`, where `field_id` indexes a `FieldNames` table shared by the whole table (CRM
column names repeat on every row, so they are stored once). Values that repeat across rows (a
graded record's explanation: segment, rule, grade, as_of...) are stored once too: an even-length
array ends with the id of a *shared set* of fields in the same table, which the record's own
fields are merged with. A record is rebuilt on look-up in well under a microsecond.

The table is one list of strings, so both stores keep it as they keep column names (the Redis
store's `fields` list): a shared set is an entry starting with `SHARED_MARK`, then its fields
as JSON `[field_id, value, ...]`. A column name may not start with that mark.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Final

import msgspec

from tierline.tiers.model import TIER_RANK, TIERS, Tier, TierRecord

_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder()
SHARED_MARK: Final = "\x00"

# A record with no CRM fields is just its tier: all such callers share one blob per tier
# instead of paying ~40 bytes each for identical copies.
_BARE: Final[tuple[bytes, ...]] = tuple(_encoder.encode([rank]) for rank in range(len(TIERS)))


class FieldNames:
    """CRM column names and shared field sets, each given a small id once. Append-only, so a blob
    never changes meaning."""

    __slots__ = ("_ids", "names", "shared")

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names: list[str] = []
        self.shared: list[dict[str, str] | None] = []
        """Per id: the fields of a shared set, None for a column name."""
        self._ids: dict[str, int] = {}
        for name in names:
            if name.startswith(SHARED_MARK):
                self._append(name)
            else:
                self.id_of(name)

    def id_of(self, name: str) -> int:
        found = self._ids.get(name)
        if found is None:
            if name.startswith(SHARED_MARK):
                raise ValueError(f"a CRM field name may not start with {SHARED_MARK!r}")
            found = self._append(name)
        return found

    def share(self, fields: tuple[int | str, ...]) -> int:
        """The id of a shared set holding `fields` (alternating field ids and values), made once."""
        entry = SHARED_MARK + msgspec.json.encode(fields).decode()
        found = self._ids.get(entry)
        if found is None:
            found = self._append(entry)
        return found

    def _append(self, entry: str) -> int:
        at = self._ids[entry] = len(self.names)
        self.names.append(entry)
        if entry.startswith(SHARED_MARK):
            pairs = msgspec.json.decode(entry[len(SHARED_MARK) :], type=list[int | str])
            self.shared.append({self.names[int(pairs[k])]: str(pairs[k + 1]) for k in range(0, len(pairs), 2)})
        else:
            self.shared.append(None)
        return at

    def __len__(self) -> int:
        return len(self.names)


class Sharing:
    """Decides, while a table is being built, which fields' values repeat enough to be shared.

    The first `SAMPLE` rows are stored whole and counted: a field with at most one distinct value
    per `REPEATS` rows that carry it is shared from then on. A shared set is made once per distinct combination
    of those values, up to `MAX_SETS` (past that, rows are stored whole: values that do not
    repeat would cost more as sets than inline).
    """

    SAMPLE: Final = 512
    REPEATS: Final = 4
    MAX_SETS: Final = 1 << 16

    __slots__ = ("_carried", "_rows", "_seen", "_sets", "_shared", "names")

    def __init__(self, names: FieldNames) -> None:
        self.names = names
        self._rows = 0
        self._seen: dict[int | str, set[int | str]] = {}
        self._carried: dict[int | str, int] = {}
        self._shared: frozenset[int | str] | None = None
        self._sets: dict[tuple[int | str, ...], int] = {}

    def encode(self, rank: int, fields: list[int | str]) -> bytes:
        """`encode`, with the shared fields replaced by their set's id."""
        shared = self._shared
        if shared is None:
            self._count(fields)
            return encode(rank, fields)
        own: list[int | str] = []
        common: list[int | str] = []
        for at in range(0, len(fields), 2):
            (common if fields[at] in shared else own).extend(fields[at : at + 2])
        if not common:
            return encode(rank, fields)
        key = tuple(common)
        found = self._sets.get(key)
        if found is None:
            if len(self._sets) >= self.MAX_SETS:
                return encode(rank, fields)
            _encoder.encode(key)  # a lone surrogate raises here, as `encode` would
            found = self._sets[key] = self.names.share(key)
        own.append(found)
        return _finish(_encoder.encode([rank, *own]))

    def _count(self, fields: list[int | str]) -> None:
        carried = self._carried
        for at in range(0, len(fields), 2):
            field = fields[at]
            self._seen.setdefault(field, set()).add(fields[at + 1])
            carried[field] = carried.get(field, 0) + 1
        self._rows += 1
        if self._rows >= self.SAMPLE:
            self._shared = frozenset(
                field for field, values in self._seen.items() if len(values) * self.REPEATS <= carried[field]
            )
            self._seen.clear()
            carried.clear()


def encode(rank: int, fields: list[int | str]) -> bytes:
    """The blob of a record: `fields` alternates field ids and non-empty values.

    Raises UnicodeEncodeError for a value holding a lone surrogate (what undecodable input
    bytes become), so a row of bad bytes is refused instead of stored.
    """
    if not fields:
        return _BARE[rank]
    return _finish(_encoder.encode([rank, *fields]))


def _finish(blob: bytes) -> bytes:
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
    elif size == 4:  # a graded row: tier, customer id, its shared explanation
        crm = {names.names[items[1]]: items[2]}
        crm.update(names.shared[items[3]])
    else:
        if size & 1:
            pairs = iter(items)
            next(pairs)
            crm = {names.names[field]: value for field, value in zip(pairs, pairs, strict=True)}
        else:
            last = items[-1]
            crm = {names.names[items[at]]: items[at + 1] for at in range(1, size - 1, 2)}
            crm.update(names.shared[last])
    return TierRecord(caller=caller, tier=TIERS[items[0]], known=True, crm=crm)


def tier_counts(records: Mapping[str, bytes]) -> dict[str, int]:
    """Callers per tier: a blob is a msgpack array whose first item, the rank, is byte 1."""
    by_rank = Counter(blob[1] for blob in records.values())
    return {tier: by_rank.get(rank, 0) for rank, tier in enumerate(TIERS)}
