"""Reading a tier file (CSV with a header, or JSON Lines) into a table of compact records.

Owns the file format of the spec: which columns count, what a valid row is, and how a bad row
is reported (by its 1-based physical line, blank lines counted). Pure and synchronous: it
streams from a binary file object, so a caller can run it in a worker thread and a file of
millions of rows never sits in memory as text. Whether the result goes live is not decided
here (see `reload`).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import time
from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, Final, Literal

import msgspec

from tierline.tiers.codec import SHARED_MARK, FieldNames, Sharing
from tierline.tiers.model import MAX_CRM_FIELDS, MAX_CRM_NAME, MAX_CRM_VALUE, TIER_RANK, TIERS, parse_tier
from tierline.tiers.phone import InvalidCaller, normalise_caller

if TYPE_CHECKING:
    from _csv import Reader as CsvReader

TierFileFormat = Literal["csv", "ndjson"]

REJECTIONS_KEPT: Final = 1000

_TIER_NAMES: Final = ", ".join(TIERS[:-1]) + " or " + TIERS[-1]
_SHOWN_MAX: Final = 40
_BOM: Final = codecs.BOM_UTF8
# Run in a worker thread, the parse would starve the event loop for hundreds of milliseconds:
# every read syscall releases and retakes the GIL, which resets the waiting thread's 5 ms
# switch request. Giving the GIL away every few thousand rows keeps look-ups within ~5 ms.
_YIELD_EVERY_MASK: Final = 4095
# A file whose rows are mostly refused is not a tier file (filler, the wrong export, a binary):
# past this many rejections, outnumbering the valid rows, reading stops and the file is refused
# whole, instead of spending a minute counting millions of bad rows one by one.
HOPELESS_AFTER: Final = 10_000


class BadTierFile(ValueError):
    """The file as a whole cannot be read as a tier file (no usable header, broken quoting...)."""

    code = "bad_tier_file"

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message if line is None else f"line {line}: {message}")
        self.line = line


class Rejection(msgspec.Struct):
    """One row left out of the table, and why, in words an operator can act on."""

    line: int
    reason: str


@dataclass(slots=True)
class ParsedTiers:
    """The valid rows of a tier file and an account of the others."""

    records: dict[str, bytes]
    """Normalised caller -> `codec` blob, encoded against `fields`."""
    fields: FieldNames
    rejected: list[Rejection] = field(default_factory=list)
    """The first rejections, in line order; `rejected_count` counts them all."""
    rejected_count: int = 0
    data_rows: int = 0
    """Non-blank rows after the header, valid or not: what the reject ratio is taken of."""

    @property
    def loaded(self) -> int:
        return len(self.records)


def parse_tier_file(stream: BinaryIO, fmt: TierFileFormat, default_record_cap: int = REJECTIONS_KEPT) -> ParsedTiers:
    """Parse a whole tier file. `default_record_cap` is how many rejections are listed in full.

    Raises BadTierFile when the file cannot be a tier file at all; a bad row is only a Rejection.
    """
    builder = _Builder(default_record_cap)
    if fmt == "csv":
        _parse_csv(stream, builder)
    elif fmt == "ndjson":
        _parse_ndjson(stream, builder)
    else:
        raise BadTierFile(f"unknown tier file format {fmt!r}; expected csv or ndjson")
    return builder.finish()


class _Builder:
    """Collects rows into the table; the part both formats share."""

    def __init__(self, rejections_kept: int) -> None:
        self.records: dict[str, bytes] = {}
        self.fields = FieldNames()
        self.sharing = Sharing(self.fields)
        # Line of each stored row, in the dict's insertion order: 4 bytes a row instead of a
        # caller -> line dict, read back only when a duplicate must name its first line.
        self.lines = array("I")
        self.rejected: list[Rejection] = []
        self.rejected_count = 0
        self.data_rows = 0
        self.kept = rejections_kept
        self.duplicates: list[tuple[Rejection, str]] = []

    def reject(self, line: int, reason: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < self.kept:
            self.rejected.append(Rejection(line=line, reason=reason))
        elif self.rejected_count >= HOPELESS_AFTER and self.rejected_count > len(self.records):
            first = self.rejected[0] if self.rejected else Rejection(line=line, reason=reason)
            raise BadTierFile(
                f"{self.rejected_count} of the first {self.data_rows} rows are rejected, so this is not read as a"
                f" tier file and reading stopped (the first: line {first.line}, {first.reason})",
                line,
            )

    def reject_lines(self, start: int, end: int) -> None:
        """A row whose quoted value runs over several lines, rejected as that many rows.

        Standard CSV allows it, but in a tier file it is almost always an unclosed quote
        swallowing the rows after it; accepting it would drop those callers silently, and
        counting it as one row would hide them from the reject ratio.
        """
        span = end - start + 1
        self.data_rows += span
        self.rejected_count += span - 1
        self.reject(
            start,
            f"a quoted value runs over lines {start}-{end} (is a quote left open?);"
            f" values must fit on one line, so all {span} lines are rejected",
        )

    def add(self, line: int, caller: str, rank: int, fields: list[int | str]) -> None:
        if caller in self.records:
            self.rejected_count += 1
            if len(self.rejected) < self.kept:
                rejection = Rejection(line=line, reason="")
                self.rejected.append(rejection)
                self.duplicates.append((rejection, caller))
            return
        try:
            blob = self.sharing.encode(rank, fields)
        except UnicodeEncodeError:
            self.reject(line, "not valid UTF-8 text")
            return
        self.records[caller] = blob
        self.lines.append(line)

    def finish(self) -> ParsedTiers:
        if self.duplicates:
            wanted = {caller for _, caller in self.duplicates}
            first: dict[str, int] = {}
            for index, caller in enumerate(self.records):
                if caller in wanted:
                    first[caller] = self.lines[index]
            for rejection, caller in self.duplicates:
                rejection.reason = f"caller {caller} is a duplicate of line {first[caller]}"
        return ParsedTiers(
            records=self.records,
            fields=self.fields,
            rejected=self.rejected,
            rejected_count=self.rejected_count,
            data_rows=self.data_rows,
        )


def _shown(value: str) -> str:
    return repr(value if len(value) <= _SHOWN_MAX else value[:_SHOWN_MAX] + "...")


def _tier_problem(value: str) -> str:
    if not value.strip():
        return "tier is empty"
    return f"unknown tier {_shown(value)} (expected {_TIER_NAMES})"


# --- CSV -------------------------------------------------------------------------------------


def _parse_csv(stream: BinaryIO, builder: _Builder) -> None:
    # surrogateescape keeps a bad byte from aborting the whole file: it reaches the row as a
    # lone surrogate, which the caller check or the blob encoder then refuses for that row only.
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        reader = csv.reader(text, strict=False)
        caller_at, tier_at, crm_columns, width, line = _read_header(reader, builder.fields)
        try:
            for row in reader:
                start = line + 1
                line = reader.line_num
                if line != start:
                    builder.reject_lines(start, line)
                    continue
                if len(row) != width:
                    if not any(cell.strip() for cell in row):
                        continue  # a blank line, or what a spreadsheet writes for one (",,,")
                    builder.data_rows += 1
                    builder.reject(start, f"expected {width} columns, found {len(row)}")
                    continue
                builder.data_rows += 1
                if not builder.data_rows & _YIELD_EVERY_MASK:
                    time.sleep(0)
                try:
                    caller = normalise_caller(row[caller_at])
                except InvalidCaller as exc:
                    if not any(cell.strip() for cell in row):
                        builder.data_rows -= 1  # ",,," with the right width: still a blank row
                        continue
                    builder.reject(start, str(exc))
                    continue
                tier = parse_tier(row[tier_at])
                if tier is None:
                    builder.reject(start, _tier_problem(row[tier_at]))
                    continue
                fields: list[int | str] = []
                for column, field_id in crm_columns:
                    value = row[column].strip()
                    if value:
                        fields.append(field_id)
                        fields.append(value)
                problem = _crm_problem(fields, builder.fields)
                if problem:
                    builder.reject(start, problem)
                    continue
                builder.add(start, caller, TIER_RANK[tier], fields)
        except csv.Error as exc:
            # The csv module only fails on structure (a quoted field running past its size
            # limit: an unclosed quote swallowing the rows after it). Rows after that point
            # cannot be trusted, and losing them quietly could wipe callers from the table.
            raise BadTierFile(f"broken CSV ({exc}); is a quote left open?", reader.line_num) from exc
    finally:
        # The stream belongs to the caller; the wrapper must not close it.
        text.detach()


def _read_header(reader: CsvReader, fields: FieldNames) -> tuple[int, int, list[tuple[int, int]], int, int]:
    """Positions of caller and tier, the CRM columns as (position, field id), width, header line."""
    header: list[str] = []
    for header in reader:
        if header and any(cell.strip() for cell in header):
            break
    else:
        raise BadTierFile("the file is empty: a header line naming caller and tier is needed")
    line = reader.line_num
    seen: dict[str, int] = {}
    caller_at = tier_at = -1
    crm_columns: list[tuple[int, int]] = []
    for position, cell in enumerate(header):
        name = cell.strip()
        key = name.lower()
        if not name:
            continue  # an unnamed column (a trailing comma) carries nothing anyone can use
        if not _is_text(name):
            raise BadTierFile(f"column {position + 1} of the header is not valid UTF-8 text", line)
        if name.startswith(SHARED_MARK):
            raise BadTierFile(f"column {position + 1} of the header starts with a NUL character", line)
        if len(name) > MAX_CRM_NAME:
            raise BadTierFile(
                f"column {position + 1} of the header is named with {len(name)} characters;"
                f" at most {MAX_CRM_NAME} are allowed",
                line,
            )
        if key in seen:
            raise BadTierFile(
                f"column {name!r} appears twice (columns {seen[key] + 1} and {position + 1})",
                line,
            )
        seen[key] = position
        if key == "caller":
            caller_at = position
        elif key == "tier":
            tier_at = position
        else:
            crm_columns.append((position, fields.id_of(name)))
    missing = [name for name, at in (("caller", caller_at), ("tier", tier_at)) if at < 0]
    if missing:
        found = ", ".join(repr(cell.strip()) for cell in header)
        # Spreadsheets in many locales export with ';' or tabs: the commonest broken header.
        hint = " Columns are separated by commas, not ';' or tabs." if len(header) == 1 else ""
        raise BadTierFile(
            f"the header has no {' and no '.join(missing)} column (found {found});"
            f" a tier file's first line names its columns, e.g. caller,tier,customer_id.{hint}",
            line,
        )
    return caller_at, tier_at, crm_columns, len(header), line


def _is_text(value: str) -> bool:
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- JSON Lines ------------------------------------------------------------------------------

_Scalar = str | int | float | bool | None
_row_decoder: Final = msgspec.json.Decoder(dict[str, _Scalar])


def _parse_ndjson(stream: BinaryIO, builder: _Builder) -> None:
    fields = builder.fields
    line = 0
    for raw in stream:
        line += 1
        if line == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        if not raw.strip():
            continue
        builder.data_rows += 1
        if not builder.data_rows & _YIELD_EVERY_MASK:
            time.sleep(0)
        # Checked here, not left to the decoder: the reason is Tierline's, whatever a JSON
        # library's version says of bad bytes.
        if not raw.isascii() and not _is_utf8(raw):
            builder.reject(line, "not valid UTF-8 text")
            continue
        try:
            row = _row_decoder.decode(raw)
        except msgspec.DecodeError as exc:
            builder.reject(line, _json_problem(raw, exc))
            continue
        caller_value: _Scalar = None
        tier_value: _Scalar = None
        crm: list[tuple[str, str]] = []
        seen: set[str] = set()
        strings = 0
        ambiguous = ""
        for key, value in row.items():
            name = key.strip()
            lowered = name.lower()
            if lowered in seen:
                ambiguous = name
            seen.add(lowered)
            if isinstance(value, str):
                strings += 1
            if lowered == "caller":
                caller_value = value
            elif lowered == "tier":
                tier_value = value
            elif value is None or not name:
                continue
            elif isinstance(value, str):
                value = value.strip()
                if value:
                    crm.append((name, value))
            elif isinstance(value, bool):  # before int: a bool is an int to Python
                crm.append((name, "true" if value else "false"))
            else:
                crm.append((name, str(value)))
        if not ambiguous:
            ambiguous = _repeated_key(raw, len(row), strings)
        if ambiguous:
            builder.reject(
                line,
                f"key {_shown(ambiguous)} appears more than once (keys are matched ignoring case);"
                " the row is ambiguous",
            )
            continue
        if isinstance(caller_value, int) and not isinstance(caller_value, bool):
            caller_value = str(caller_value)  # an exporter that wrote the number unquoted
        if not isinstance(caller_value, str):
            builder.reject(line, "caller is missing" if caller_value is None else "caller must be a string")
            continue
        try:
            caller = normalise_caller(caller_value)
        except InvalidCaller as exc:
            builder.reject(line, str(exc))
            continue
        if not isinstance(tier_value, str):
            builder.reject(line, "tier is missing" if tier_value is None else "tier must be a string")
            continue
        tier = parse_tier(tier_value)
        if tier is None:
            builder.reject(line, _tier_problem(tier_value))
            continue
        blob_fields: list[int | str] = []
        too_long = next((name for name, _ in crm if len(name) > MAX_CRM_NAME), None)
        if too_long is not None:
            builder.reject(
                line, f"key {_shown(too_long)} has {len(too_long)} characters; at most {MAX_CRM_NAME} are allowed"
            )
            continue
        if any(name.startswith(SHARED_MARK) for name, _ in crm):
            builder.reject(line, "a key starts with a NUL character")
            continue
        for name, text in crm:
            blob_fields.append(fields.id_of(name))
            blob_fields.append(text)
        problem = _crm_problem(blob_fields, fields)
        if problem:
            builder.reject(line, problem)
            continue
        builder.add(line, caller, TIER_RANK[tier], blob_fields)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _repeated_key(raw: bytes, keys: int, strings: int) -> str:
    """A key the row holds twice (exactly), or "" — msgspec, like json, keeps the last silently.

    Cheap for the usual row: when no string holds an escaped quote, every '"' in the line
    delimits a key or a string value, so a repeated key shows as two quotes more than the
    decoded row accounts for. Only a row that fails that count is read again, with its keys in order.
    """
    if b'\\"' not in raw and raw.count(b'"') == 2 * (keys + strings):
        return ""
    names: list[str] = []

    def pairs(items: list[tuple[str, object]]) -> dict[str, object]:
        names.extend(key for key, _ in items)
        return dict(items)

    try:
        json.loads(raw, object_pairs_hook=pairs)
    except ValueError:
        return ""  # msgspec read it; a stricter reader's doubts are not the row's problem
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return ""


def _crm_problem(fields: list[int | str], names: FieldNames) -> str:
    """Why a row's CRM part is refused (the caps of a single edit), or "" when it fits."""
    count = len(fields) // 2
    if count > MAX_CRM_FIELDS:
        return f"the row carries {count} CRM fields; at most {MAX_CRM_FIELDS} are allowed"
    for at in range(1, len(fields), 2):
        value = fields[at]
        if isinstance(value, str) and len(value) > MAX_CRM_VALUE:
            name = names.names[int(fields[at - 1])]
            return f"column {_shown(name)} holds {len(value)} characters; at most {MAX_CRM_VALUE} are allowed"
    return ""


def _json_problem(raw: bytes, exc: msgspec.DecodeError) -> str:
    """Tierline's reason for a row the decoder refused; the library's words only as detail."""
    if isinstance(exc, msgspec.ValidationError):
        # Tell "not an object" from "a nested value" by looking at the row again: slow, but
        # only bad rows pay for it.
        try:
            value = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return f"not valid JSON ({exc})"
        if not isinstance(value, dict):
            return f"not a JSON object (found {_json_kind(value)}); each line must be one object"
        nested = [str(key) for key, item in value.items() if isinstance(item, (dict, list))]
        if nested:
            return (
                f"field {_shown(nested[0])} holds {_json_kind(value[nested[0]])};"
                " only strings, numbers, booleans and null are allowed"
            )
        return f"not a valid row ({exc})"
    return f"not valid JSON ({exc})"


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a number" if not isinstance(value, bool) else "a boolean"
