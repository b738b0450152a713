"""Reading the CRM's files into a `Population`, with DuckDB doing the heavy part.

Owns the input formats of issue 17 (customer aggregates, or raw transactions plus a customer
file; each as CSV, JSON Lines or Parquet) and how a bad row is reported (file, line, reason).
Transactions are validated and summed per customer inside DuckDB in one pass: 10⁷ rows never
become Python objects. Only customers (one row per number) are fetched into Python.

Lines: CSV counts the header as line 1 and a JSON Lines file its first row as line 1 (blank
lines are not counted); a Parquet file has no lines, so "line" is the row's 1-based position.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgspec

from tierline.tiers.grading.config import GradingSettings
from tierline.tiers.phone import InvalidCaller, normalise_caller

try:
    import duckdb
except ImportError:  # pragma: no cover - the optional extra is installed in CI
    duckdb = None  # type: ignore[assignment]

PROBLEMS_KEPT: Final = 1000
CALLER_SEPARATORS: Final = (";", "|")
_MEMORY_LIMIT: Final = "1536MB"  # DuckDB spills past this: the run stays within the 2 GiB goal


class MissingEngine(RuntimeError):
    code = "grading_engine_missing"


class BadInput(ValueError):
    """A file cannot be read at all (missing, unknown format, a required column absent)."""

    code = "bad_grading_input"


class Problem(msgspec.Struct, frozen=True):
    file: str
    line: int
    reason: str


@dataclass(slots=True)
class Population:
    """One entry per customer, in the order of first appearance in the customer (or aggregates) file."""

    ids: list[str] = field(default_factory=list)
    callers: list[list[str]] = field(default_factory=list)
    last_date: list[dt.date | None] = field(default_factory=list)
    purchases: list[int] = field(default_factory=list)
    amount: list[float] = field(default_factory=list)
    profit: list[float | None] = field(default_factory=list)
    columns: dict[str, list[str]] = field(default_factory=dict)
    """Every other column of the customer file, by its name as written, "" when empty."""
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    rejected_rows: int = 0
    data_rows: int = 0

    def problem(self, file: str, line: int, reason: str, rejected: bool = True) -> None:
        self.problem_count += 1
        self.rejected_rows += rejected
        if len(self.problems) < PROBLEMS_KEPT:
            self.problems.append(Problem(file, line, reason))

    def __len__(self) -> int:
        return len(self.ids)


def _connect(settings: GradingSettings) -> Any:
    if duckdb is None:
        raise MissingEngine("customer grading needs DuckDB: pip install 'tierline[grading]'")
    con = duckdb.connect(config={"memory_limit": _MEMORY_LIMIT, "threads": max(1, os.cpu_count() or 1)})
    con.execute("SET enable_progress_bar = false")  # the command draws its own
    con.execute(f"SET TimeZone = '{_quoted(settings.timezone)}'")
    return con


def _quoted(text: str) -> str:
    return text.replace("'", "''")


def _source(con: Any, path: Path) -> tuple[str, dict[str, str], int]:
    """A DuckDB table expression reading `path`, its columns (name -> DuckDB type), and how many
    lines come before the first row. CSV and JSON Lines are read as text (a bad value must be a
    bad row, not a failed file); Parquet keeps its types."""
    if not path.is_file():
        raise BadInput(f"{path}: no such file")
    name = f"'{_quoted(str(path))}'"
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            found = con.execute(f"DESCRIBE SELECT * FROM read_csv({name}, header=true)").fetchall()
            return f"read_csv({name}, header=true, all_varchar=true)", {row[0]: "VARCHAR" for row in found}, 1
        if suffix in (".jsonl", ".ndjson", ".json"):
            found = con.execute(f"DESCRIBE SELECT * FROM read_json({name}, format='newline_delimited')").fetchall()
            spec = ", ".join(f"'{_quoted(row[0])}': 'VARCHAR'" for row in found)
            source = f"read_json({name}, format='newline_delimited', columns={{{spec}}})"
            return source, {row[0]: "VARCHAR" for row in found}, 0
        if suffix == ".parquet":
            found = con.execute(f"DESCRIBE SELECT * FROM read_parquet({name})").fetchall()
            return f"read_parquet({name})", {row[0]: str(row[1]) for row in found}, 0
    except duckdb.Error as exc:
        raise BadInput(f"{path}: cannot be read ({str(exc).splitlines()[0]})") from None
    raise BadInput(f"{path}: unknown format {suffix!r}; expected .csv, .jsonl/.ndjson or .parquet")


_NUMERIC: Final = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
)


def _parsed(name: str | None, types: dict[str, str], target: str) -> tuple[str, str]:
    """(the value as `target`, "the file holds a value here") for one column.

    A Parquet column already of the right kind is cast directly: a text round trip per row would
    cost most of the aggregation."""
    if name is None:
        return "NULL", "false"
    kind = types.get(name, "VARCHAR")
    column = _col(name)
    if target == "DOUBLE" and kind.startswith(_NUMERIC):
        return f"CAST({column} AS DOUBLE)", f"{column} IS NOT NULL"
    if target == "TIMESTAMPTZ" and (kind.startswith("TIMESTAMP") or kind == "DATE"):
        return f"CAST({column} AS TIMESTAMPTZ)", f"{column} IS NOT NULL"
    return f"TRY_CAST({_text(name)} AS {target})", f"{_text(name)} IS NOT NULL"


def _find(columns: dict[str, str], path: Path, wanted: str, required: bool = True) -> str | None:
    by_lower = {column.strip().lower(): column for column in columns}
    found = by_lower.get(wanted)
    if found is None and required:
        shown = ", ".join(columns)
        raise BadInput(f"{path}: no column {wanted!r} (found {shown})")
    return found


def _col(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text(name: str | None) -> str:
    return "NULL" if name is None else f"NULLIF(TRIM(CAST({_col(name)} AS VARCHAR)), '')"


_AGGREGATE_COLUMNS: Final = ("last_purchase_at", "purchases", "amount", "profit")


def read_aggregates(path: Path, settings: GradingSettings) -> Population:
    """Customer aggregates: customer_id, caller, last_purchase_at, purchases, amount [, profit], more."""
    con = _connect(settings)
    try:
        population = Population()
        _read_customers(con, path, settings, population, with_aggregates=True)
        return population
    finally:
        con.close()


def read_transactions(transactions: Path, customers: Path, settings: GradingSettings) -> Population:
    """Raw transactions (customer_id, at, amount [, profit]) summed per customer, plus the customer file."""
    con = _connect(settings)
    try:
        population = Population()
        _read_customers(con, customers, settings, population, with_aggregates=False)
        _sum_transactions(con, transactions, settings, population)
        return population
    finally:
        con.close()


def _read_customers(
    con: Any, path: Path, settings: GradingSettings, population: Population, with_aggregates: bool
) -> None:
    source, columns, header_lines = _source(con, path)
    file = path.name
    customer_id = _find(columns, path, "customer_id")
    caller = _find(columns, path, "caller")
    core = {customer_id, caller}
    aggregates: list[str | None] = []
    if with_aggregates:
        for wanted in _AGGREGATE_COLUMNS:
            found = _find(columns, path, wanted, required=wanted != "profit")
            aggregates.append(found)
            core.add(found)
    others = [column for column in columns if column not in core]
    select = [_text(customer_id), _text(caller)]
    if with_aggregates:
        last, purchases, amount, profit = aggregates
        select += [
            _text(last),
            f"CAST(TRY_CAST({_text(last)} AS TIMESTAMPTZ) AS DATE)",
            _text(purchases),
            f"TRY_CAST({_text(purchases)} AS BIGINT)",
            _text(amount),
            f"TRY_CAST({_text(amount)} AS DOUBLE)",
            _text(profit),
            f"TRY_CAST({_text(profit)} AS DOUBLE)",
        ]
    select += [_text(column) for column in others]
    query = f"SELECT row_number() OVER () + {header_lines}, {', '.join(select)} FROM {source}"
    try:
        rows = con.execute(query).fetchall()
    except duckdb.Error as exc:
        raise BadInput(f"{path}: cannot be read ({str(exc).splitlines()[0]})") from None
    for column in others:
        population.columns[column] = []
    index: dict[str, int] = {}
    pairs: dict[tuple[str, str], int] = {}
    width = 2 + (8 if with_aggregates else 0)
    for row in rows:
        line = row[0]
        population.data_rows += 1
        cid, raw_callers = row[1], row[2]
        if cid is None:
            population.problem(file, line, "customer_id is empty")
            continue
        numbers: list[str] = []
        bad = ""
        for part in _split(raw_callers or ""):
            try:
                numbers.append(normalise_caller(part))
            except InvalidCaller as exc:
                bad = f"customer {cid}: {exc}"
                break
        if bad:
            population.problem(file, line, bad)
            continue
        figures: tuple[dt.date | None, int, float, float | None] = (None, 0, 0.0, None)
        if with_aggregates:
            parsed = _aggregate_problem(row[3:11], settings)
            if isinstance(parsed, str):
                population.problem(file, line, f"customer {cid}: {parsed}")
                continue
            figures = parsed
        at = index.get(cid)
        if at is None:
            if not numbers:
                population.problem(file, line, f"customer {cid} has no caller number", rejected=False)
            at = index[cid] = len(population.ids)
            population.ids.append(cid)
            population.callers.append([])
            population.last_date.append(figures[0])
            population.purchases.append(figures[1])
            population.amount.append(figures[2])
            population.profit.append(figures[3])
            for column, value in zip(others, row[1 + width :], strict=True):
                population.columns[column].append(value or "")
        for number in numbers:
            first = pairs.get((cid, number))
            if first is not None:
                population.problem(file, line, f"customer {cid} with caller {number} is a duplicate of line {first}")
                continue
            pairs[(cid, number)] = line
            population.callers[at].append(number)


def _split(raw: str) -> list[str]:
    for separator in CALLER_SEPARATORS:
        raw = raw.replace(separator, "\n")
    return [part.strip() for part in raw.split("\n") if part.strip()]


def _aggregate_problem(
    values: tuple[Any, ...], settings: GradingSettings
) -> str | tuple[dt.date | None, int, float, float | None]:
    last_raw, last, purchases_raw, purchases, amount_raw, amount, profit_raw, profit = values
    if purchases_raw is None:
        purchases = 0
    elif purchases is None or purchases < 0:
        return f"purchases {purchases_raw!r} is not a whole number of at least 0"
    if amount_raw is None:
        amount = 0.0
    elif amount is None:
        return f"amount {amount_raw!r} is not a number"
    if amount < 0:
        if settings.refunds == "reject":
            return f"amount {amount_raw} is negative (refunds = 'reject')"
        if settings.refunds == "ignore":
            amount = 0.0
    if profit_raw is not None and profit is None:
        return f"profit {profit_raw!r} is not a number"
    if last_raw is not None and last is None:
        return f"last_purchase_at {last_raw!r} is not a date or time"
    if purchases > 0 and last is None:
        return "last_purchase_at is empty but purchases is not 0"
    if purchases == 0:
        last = None
    return last, int(purchases), float(amount), None if profit is None else float(profit)


def _sum_transactions(con: Any, path: Path, settings: GradingSettings, population: Population) -> None:
    source, columns, header_lines = _source(con, path)
    file = path.name
    cid = _text(_find(columns, path, "customer_id"))
    at_column = _find(columns, path, "at")
    amount_column = _find(columns, path, "amount")
    profit_column = _find(columns, path, "profit", required=False)
    ts, _ = _parsed(at_column, columns, "TIMESTAMPTZ")
    amount, _ = _parsed(amount_column, columns, "DOUBLE")
    profit, profit_given = _parsed(profit_column, columns, "DOUBLE")
    refund_bad = "amount < 0" if settings.refunds == "reject" else "false"
    con.execute(
        f"""CREATE TEMP VIEW tx AS SELECT {cid} AS cid, {_text(at_column)} AS at_raw,
            {_text(amount_column)} AS amount_raw, {_text(profit_column)} AS profit_raw, {ts} AS ts,
            {amount} AS amount, {profit} AS profit, {profit_given} AS profit_given FROM {source}"""
    )
    bad_profit = "(profit_given AND profit IS NULL)"
    bad = f"(cid IS NULL OR ts IS NULL OR amount IS NULL OR {bad_profit} OR {refund_bad})"
    # A refund is money back, not a purchase: it never counts in F or R; in M only with refunds = "count".
    in_m = "amount >= 0" if settings.refunds != "count" else "true"
    try:
        con.execute(
            f"""CREATE TEMP TABLE sums AS SELECT cid, count(*) FILTER (WHERE amount >= 0) AS purchases,
                CAST(max(ts) FILTER (WHERE amount >= 0) AS DATE) AS last_date,
                coalesce(sum(amount) FILTER (WHERE {in_m}), 0) AS amount,
                sum(profit) FILTER (WHERE {in_m}) AS profit
                FROM tx WHERE NOT {bad} GROUP BY cid"""
        )
        (rows, bad_rows) = con.execute(f"SELECT count(*), count(*) FILTER (WHERE {bad}) FROM tx").fetchone()
    except duckdb.Error as exc:
        raise BadInput(f"{path}: cannot be read ({str(exc).splitlines()[0]})") from None
    population.data_rows += rows
    if bad_rows:
        # Only a file with bad rows pays for numbering them.
        listed = con.execute(
            f"""SELECT line, cid, at_raw, amount_raw, profit_raw, ts IS NULL, amount, {bad_profit}
                FROM (SELECT row_number() OVER () + {header_lines} AS line, * FROM tx) WHERE {bad}
                ORDER BY line LIMIT {PROBLEMS_KEPT}"""
        ).fetchall()
        for line, who, at_text, amount_text, profit_text, bad_at, amount, profit_bad in listed:
            population.problem(
                file, line, _transaction_problem(who, at_text, amount_text, profit_text, bad_at, amount, profit_bad)
            )
        population.problem_count += bad_rows - len(listed)
        population.rejected_rows += bad_rows - len(listed)
    index = {cid: at for at, cid in enumerate(population.ids)}
    unknown = 0
    for who, purchases, last_date, amount, profit in con.execute("SELECT * FROM sums ORDER BY cid").fetchall():
        at = index.get(who)
        if at is None:
            unknown += 1
            population.problem(file, 0, f"customer {who} has {purchases} transactions but is not in the customer file")
            continue
        population.purchases[at] = purchases
        population.last_date[at] = last_date if purchases else None
        population.amount[at] = amount
        population.profit[at] = profit


def _transaction_problem(
    who: str | None,
    at_text: str | None,
    amount_text: str | None,
    profit_text: str | None,
    bad_at: bool,
    amount: float | None,
    bad_profit: bool,
) -> str:
    if who is None:
        return "customer_id is empty"
    if bad_at:
        return f"at {at_text!r} is not a date or time" if at_text else "at is empty"
    if amount is None:
        return f"amount {amount_text!r} is not a number" if amount_text else "amount is empty"
    if bad_profit:
        return f"profit {profit_text!r} is not a number"
    return f"amount {amount_text} is negative (refunds = 'reject')"
