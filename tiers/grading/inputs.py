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
    """One entry per customer, in the order of first appearance in the customer (or aggregates) file.

    The Python form of the tables `Loaded` holds: what tests build by hand and `Loaded.population`
    fetches back; a run over files never makes one."""

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

    def __len__(self) -> int:
        return len(self.ids)


class Loaded:
    """The customers of one run inside a DuckDB connection, and what reading them found wrong.

    Tables: `cust` (ord: orders customers by first appearance, cid, purchases,
    last_date, amount, profit, and each other column of the customer file as `c0`, `c1`, ...
    by `columns`), `nums` (ord, seq: orders numbers as they were read, caller). The grading
    engine (`engine`) reads these; the connection lives as long as this object (`close`).
    """

    def __init__(self, con: Any) -> None:
        self.con = con
        self.columns: dict[str, str] = {}
        """Customer-file column (as written) -> its column in `cust`."""
        self.problems: list[Problem] = []
        self.problem_count = 0
        self.rejected_rows = 0
        self.data_rows = 0

    def count(self, problems: int, rejected: bool) -> None:
        self.problem_count += problems
        if rejected:
            self.rejected_rows += problems

    def keep(self, problems: list[Problem]) -> None:
        self.problems += problems[: max(0, PROBLEMS_KEPT - len(self.problems))]

    def __len__(self) -> int:
        return int(self.con.execute("SELECT count(*) FROM cust").fetchone()[0])

    def close(self) -> None:
        self.con.close()

    def population(self) -> Population:
        """The customers fetched into Python (small inputs: tests, a look by hand)."""
        names = list(self.columns)
        kept = "".join(f", {self.columns[name]}" for name in names)
        found = Population(
            problems=list(self.problems),
            problem_count=self.problem_count,
            rejected_rows=self.rejected_rows,
            data_rows=self.data_rows,
            columns={name: [] for name in names},
        )
        for row in self.con.execute(
            f"SELECT cid, last_date, purchases, amount, profit{kept} FROM cust ORDER BY ord"
        ).fetchall():
            found.ids.append(row[0])
            found.last_date.append(row[1])
            found.purchases.append(row[2])
            found.amount.append(row[3])
            found.profit.append(row[4])
            found.callers.append([])
            for name, value in zip(names, row[5:], strict=True):
                found.columns[name].append(value or "")
        at = {ord_: at for at, (ord_,) in enumerate(self.con.execute("SELECT ord FROM cust ORDER BY ord").fetchall())}
        for ord_, caller in self.con.execute("SELECT ord, caller FROM nums ORDER BY seq").fetchall():
            found.callers[at[ord_]].append(caller)
        return found


def insert_rows(con: Any, table: str, types: list[str], rows: list[tuple[Any, ...]]) -> None:
    """Rows into `table` in one statement, a list per column (DuckDB's executemany runs one
    statement per row: a second for a few thousand)."""
    if not rows:
        return
    columns = [list(column) for column in zip(*rows, strict=True)]
    unnest = ", ".join(f"unnest(CAST(? AS {kind}[]))" for kind in types)
    con.execute(f"INSERT INTO {table} SELECT {unnest}", columns)


def load_population(population: Population, settings: GradingSettings) -> Loaded:
    """A Population built in Python as the tables the engine reads."""
    loaded = Loaded(_connect(settings))
    con = loaded.con
    names = list(population.columns)
    loaded.columns = {name: f"c{at}" for at, name in enumerate(names)}
    kept = "".join(f", {column} VARCHAR" for column in loaded.columns.values())
    con.execute(
        "CREATE TABLE cust (ord BIGINT, line BIGINT, cid VARCHAR, purchases BIGINT, last_date DATE,"
        f" amount DOUBLE, profit DOUBLE{kept})"
    )
    con.execute("CREATE TABLE nums (ord BIGINT, seq BIGINT, caller VARCHAR)")
    rows = [
        (
            at,
            at + 1,
            population.ids[at],
            population.purchases[at],
            population.last_date[at],
            population.amount[at],
            population.profit[at],
            *((population.columns[name][at] or None) for name in names),
        )
        for at in range(len(population))
    ]
    insert_rows(
        con,
        "cust",
        ["BIGINT", "BIGINT", "VARCHAR", "BIGINT", "DATE", "DOUBLE", "DOUBLE"] + ["VARCHAR"] * len(names),
        rows,
    )
    numbers = [(at, caller) for at, callers in enumerate(population.callers) for caller in callers]
    insert_rows(con, "nums", ["BIGINT", "BIGINT", "VARCHAR"], [(at, seq, c) for seq, (at, c) in enumerate(numbers)])
    loaded.problems = list(population.problems)
    loaded.problem_count = population.problem_count
    loaded.rejected_rows = population.rejected_rows
    loaded.data_rows = population.data_rows
    return loaded


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
        # Left as it is: its order is the order in time, so the caller takes the latest first and
        # converts that one value to the zone (a zone conversion per row cost half the run).
        return column, f"{column} IS NOT NULL"
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


# A number's place in the file: line * _PER_LINE + its place in the cell (a cell holds fewer).
_PER_LINE: Final = 1 << 20
_AGGREGATE_COLUMNS: Final = ("last_purchase_at", "purchases", "amount", "profit")


def read_aggregates(path: Path, settings: GradingSettings) -> Loaded:
    """Customer aggregates: customer_id, caller, last_purchase_at, purchases, amount [, profit], more."""
    loaded = Loaded(_connect(settings))
    try:
        _read_customers(loaded, path, settings, with_aggregates=True)
    except BaseException:
        loaded.close()
        raise
    return loaded


def read_transactions(transactions: Path, customers: Path, settings: GradingSettings) -> Loaded:
    """Raw transactions (customer_id, at, amount [, profit]) summed per customer, plus the customer file."""
    loaded = Loaded(_connect(settings))
    try:
        _read_customers(loaded, customers, settings, with_aggregates=False)
        _sum_transactions(loaded, transactions, settings)
    except BaseException:
        loaded.close()
        raise
    return loaded


def _normalised(part: str) -> str:
    """`phone.normalise_caller` in SQL for the usual spelling (ASCII digits and the separators it
    drops); NULL where that is not enough, and then the row goes through `normalise_caller` itself."""
    dropped = f"regexp_replace({part}, '[ \\-.()\\[\\]]', '', 'g')"
    plus = f"CASE WHEN starts_with({dropped}, '00') THEN '+' || {dropped}[3:] ELSE {dropped} END"
    return f"CASE WHEN regexp_full_match({plus}, '\\+[0-9]{{3,15}}|[0-9]{{3,15}}') THEN {plus} END"


def _read_customers(loaded: Loaded, path: Path, settings: GradingSettings, with_aggregates: bool) -> None:
    """The customer (or aggregates) file into `cust` and `nums`, every row checked inside DuckDB.

    Python sees only the rows it must explain (the first PROBLEMS_KEPT of each kind) and the rare
    caller numbers the SQL spelling does not settle."""
    con = loaded.con
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
    loaded.columns = {column: f"c{at}" for at, column in enumerate(others)}
    select = [f"{_text(customer_id)} AS cid", f"{_text(caller)} AS callers"]
    if with_aggregates:
        last, purchases, amount, profit = aggregates
        select += [
            f"{_text(last)} AS last_raw",
            f"CAST(TRY_CAST({_text(last)} AS TIMESTAMPTZ) AS DATE) AS last_date",
            f"{_text(purchases)} AS purchases_raw",
            f"TRY_CAST({_text(purchases)} AS BIGINT) AS purchases",
            f"{_text(amount)} AS amount_raw",
            f"TRY_CAST({_text(amount)} AS DOUBLE) AS amount",
            f"{_text(profit)} AS profit_raw",
            f"TRY_CAST({_text(profit)} AS DOUBLE) AS profit",
        ]
    select += [f"{_text(column)} AS {loaded.columns[column]}" for column in others]
    split = "regexp_split_to_array(callers, '[;|\\n]')"
    # Most cells hold one number: only the others are split.
    several = "contains(callers, ';') OR contains(callers, '|') OR contains(callers, chr(10))"
    try:
        con.execute(
            f"CREATE TABLE raw AS SELECT row_number() OVER () + {header_lines} AS line,"
            f" {', '.join(select)} FROM {source}"
        )
        con.execute(
            f"""CREATE TABLE parts AS
                SELECT line, line * {_PER_LINE} + 1 AS seq, cid, trim(callers) AS part,
                       {_normalised("trim(callers)")} AS caller
                FROM raw WHERE cid IS NOT NULL AND NOT ({several}) AND trim(callers) <> ''
                UNION ALL
                SELECT line, line * {_PER_LINE} + pos AS seq, cid, part, {_normalised("part")} AS caller FROM (
                    SELECT line, cid, trim(unnest({split})) AS part, generate_subscripts({split}, 1) AS pos
                    FROM raw WHERE cid IS NOT NULL AND ({several})) WHERE part <> ''"""
        )
    except duckdb.Error as exc:
        raise BadInput(f"{path}: cannot be read ({str(exc).splitlines()[0]})") from None
    (loaded.data_rows,) = con.execute("SELECT count(*) FROM raw").fetchone()
    problems: list[Problem] = []
    # Numbers the SQL spelling did not settle: `normalise_caller` decides, and explains a refusal.
    unsettled = con.execute(
        "SELECT line, cid, callers FROM raw WHERE line IN (SELECT line FROM parts WHERE caller IS NULL) ORDER BY line"
    ).fetchall()
    caller_bad: list[int] = []
    settled: list[tuple[int, int, str, str, str]] = []
    for line, cid, raw_callers in unsettled:
        numbers: list[str] = []
        for part in _split(raw_callers or ""):
            try:
                numbers.append(normalise_caller(part))
            except InvalidCaller as exc:
                caller_bad.append(line)
                if len(problems) < PROBLEMS_KEPT:
                    problems.append(Problem(file, line, f"customer {cid}: {exc}"))
                break
        else:
            settled += [(line, line * _PER_LINE + pos, cid, n, n) for pos, n in enumerate(numbers, 1)]
    if unsettled:
        lines = [(line,) for line, _, _ in unsettled]
        con.execute("CREATE TABLE unsettled (line BIGINT)")
        insert_rows(con, "unsettled", ["BIGINT"], lines)
        con.execute("DELETE FROM parts WHERE line IN (SELECT line FROM unsettled)")
        insert_rows(con, "parts", ["BIGINT", "BIGINT", "VARCHAR", "VARCHAR", "VARCHAR"], settled)
    con.execute("CREATE TABLE caller_bad (line BIGINT)")
    insert_rows(con, "caller_bad", ["BIGINT"], [(line,) for line in caller_bad])
    agg_bad = "false"
    if with_aggregates:
        refund = "amount < 0" if settings.refunds == "reject" else "false"
        agg_bad = f"""(purchases_raw IS NOT NULL AND (purchases IS NULL OR purchases < 0))
            OR (amount_raw IS NOT NULL AND amount IS NULL) OR ({refund})
            OR (profit_raw IS NOT NULL AND profit IS NULL) OR (last_raw IS NOT NULL AND last_date IS NULL)
            OR (coalesce(purchases, 0) > 0 AND last_date IS NULL)"""
    con.execute(
        f"""CREATE TABLE checked AS SELECT *, CASE WHEN cid IS NULL THEN 1
            WHEN line IN (SELECT line FROM caller_bad) THEN 2 WHEN {agg_bad} THEN 3 ELSE 0 END AS bad FROM raw"""
    )
    (empty_ids, bad_figures) = con.execute(
        "SELECT count(*) FILTER (WHERE bad = 1), count(*) FILTER (WHERE bad = 3) FROM checked"
    ).fetchone()
    loaded.count(empty_ids + len(caller_bad) + bad_figures, rejected=True)
    for (line,) in con.execute(
        f"SELECT line FROM checked WHERE bad = 1 ORDER BY line LIMIT {PROBLEMS_KEPT}"
    ).fetchall():
        problems.append(Problem(file, line, "customer_id is empty"))
    if bad_figures:
        listed = con.execute(
            f"""SELECT line, cid, last_raw, last_date, purchases_raw, purchases, amount_raw, amount, profit_raw,
                profit FROM checked WHERE bad = 3 ORDER BY line LIMIT {PROBLEMS_KEPT}"""
        ).fetchall()
        for line, cid, *values in listed:
            reason = _aggregate_problem(tuple(values), settings)
            problems.append(Problem(file, line, f"customer {cid}: {reason}"))
    # The figures of a customer are its first good row's; its numbers come from every good row.
    if with_aggregates:
        amount = "CASE WHEN amount < 0 THEN 0.0 ELSE amount END" if settings.refunds == "ignore" else "amount"
        figures = f"""coalesce(purchases, 0) AS purchases,
            CASE WHEN coalesce(purchases, 0) > 0 THEN last_date END AS last_date,
            CAST(coalesce({amount}, 0) AS DOUBLE) AS amount, profit"""
    else:
        figures = """CAST(0 AS BIGINT) AS purchases, CAST(NULL AS DATE) AS last_date, CAST(0 AS DOUBLE) AS amount,
            CAST(NULL AS DOUBLE) AS profit"""
    kept = "".join(f", {name}" for name in loaded.columns.values())
    con.execute(
        f"""CREATE TABLE cust AS SELECT line AS ord, line, cid, {figures}{kept} FROM checked
            WHERE line IN (SELECT min(line) FROM checked WHERE bad = 0 GROUP BY cid)"""
    )
    con.execute(
        """CREATE TABLE numbered AS SELECT c.ord, p.seq, p.caller FROM parts p JOIN cust c USING (cid)
            WHERE p.line NOT IN (SELECT line FROM checked WHERE bad <> 0)"""
    )
    con.execute("CREATE TABLE nums AS SELECT ord, min(seq) AS seq, caller FROM numbered GROUP BY ord, caller")
    (duplicates,) = con.execute("SELECT (SELECT count(*) FROM numbered) - (SELECT count(*) FROM nums)").fetchone()
    loaded.count(duplicates, rejected=True)
    if duplicates:
        for seq, cid, number, first in con.execute(
            f"""SELECT n.seq, c.cid, n.caller, n.first FROM (
                    SELECT *, min(seq) OVER (PARTITION BY ord, caller) AS first FROM numbered) n
                JOIN cust c USING (ord) WHERE n.seq > n.first ORDER BY n.seq LIMIT {PROBLEMS_KEPT}"""
        ).fetchall():
            problems.append(
                Problem(
                    file,
                    seq // _PER_LINE,
                    f"customer {cid} with caller {number} is a duplicate of line {first // _PER_LINE}",
                )
            )
    (bare,) = con.execute("SELECT count(*) FROM cust WHERE line NOT IN (SELECT line FROM parts)").fetchone()
    loaded.count(bare, rejected=False)
    if bare:
        for line, cid in con.execute(
            f"SELECT line, cid FROM cust WHERE line NOT IN (SELECT line FROM parts) ORDER BY line LIMIT {PROBLEMS_KEPT}"
        ).fetchall():
            problems.append(Problem(file, line, f"customer {cid} has no caller number"))
    problems.sort(key=lambda problem: problem.line)
    loaded.keep(problems)


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


def _sum_transactions(loaded: Loaded, path: Path, settings: GradingSettings) -> None:
    con = loaded.con
    source, columns, header_lines = _source(con, path)
    file = path.name
    cid_column = _find(columns, path, "customer_id")
    cid = _text(cid_column)
    at_column = _find(columns, path, "at")
    amount_column = _find(columns, path, "amount")
    profit_column = _find(columns, path, "profit", required=False)
    ts, _ = _parsed(at_column, columns, "TIMESTAMPTZ")
    amount, _ = _parsed(amount_column, columns, "DOUBLE")
    profit, profit_given = _parsed(profit_column, columns, "DOUBLE")
    refund_bad = "amount < 0" if settings.refunds == "reject" else "false"
    con.execute(
        f"""CREATE VIEW tx AS SELECT {cid} AS cid, CAST({_col(cid_column or "")} AS VARCHAR) AS raw_cid,
            {_text(at_column)} AS at_raw,
            {_text(amount_column)} AS amount_raw, {_text(profit_column)} AS profit_raw, {ts} AS ts,
            {amount} AS amount, {profit} AS profit, {profit_given} AS profit_given FROM {source}"""
    )
    bad_profit = "(profit_given AND profit IS NULL)"
    bad = f"(cid IS NULL OR ts IS NULL OR amount IS NULL OR {bad_profit} OR {refund_bad})"
    # A refund is money back, not a purchase: it never counts in F or R; in M only with refunds = "count".
    other_bad = f"(ts IS NULL OR amount IS NULL OR {bad_profit} OR {refund_bad})"
    in_m = f"NOT {other_bad} AND amount >= 0" if settings.refunds != "count" else f"NOT {other_bad}"
    bought = f"NOT {other_bad} AND amount >= 0"
    trimmed = "NULLIF(TRIM(raw_cid), '')"
    try:
        # One pass over the file: the sums, and how many rows (and bad rows) each customer id has.
        # Grouped by the id as written first, then by the trimmed id: trimming 10⁷ ids cost more
        # than the sums. Each row's checks are worked out once, not once per FILTER. The money is summed
        # with `fsum` (compensated): a plain double `sum` depends on the order the threads add in, and
        # a profit that lands on a band's edge (1000 from cents) then graded differently run to run.
        con.execute(
            f"""CREATE TABLE sums AS SELECT {trimmed} AS cid, sum(all_rows) AS all_rows,
                CASE WHEN {trimmed} IS NULL THEN sum(all_rows) ELSE sum(bad_rows) END AS bad_rows,
                CASE WHEN {trimmed} IS NULL THEN 0 ELSE sum(good_rows) END AS good_rows,
                sum(purchases) AS purchases, CAST(CAST(max(last_ts) AS TIMESTAMPTZ) AS DATE) AS last_date,
                coalesce(fsum(amount), 0) AS amount, fsum(profit) AS profit
                FROM (SELECT raw_cid, count(*) AS all_rows, count(*) FILTER (WHERE is_bad) AS bad_rows,
                      count(*) FILTER (WHERE NOT is_bad) AS good_rows,
                      count(*) FILTER (WHERE is_bought) AS purchases, max(ts) FILTER (WHERE is_bought) AS last_ts,
                      fsum(amount) FILTER (WHERE is_in_m) AS amount, fsum(profit) FILTER (WHERE is_in_m) AS profit
                      FROM (SELECT raw_cid, ts, amount, profit, {other_bad} AS is_bad, {bought} AS is_bought,
                            {in_m} AS is_in_m FROM tx)
                      GROUP BY raw_cid)
                GROUP BY {trimmed}"""
        )
        (rows, bad_rows) = con.execute(
            "SELECT coalesce(sum(all_rows), 0), coalesce(sum(bad_rows), 0) FROM sums"
        ).fetchone()
    except duckdb.Error as exc:
        raise BadInput(f"{path}: cannot be read ({str(exc).splitlines()[0]})") from None
    loaded.data_rows += rows
    problems: list[Problem] = []
    if bad_rows:
        # Only a file with bad rows pays for numbering them.
        listed = con.execute(
            f"""SELECT line, cid, at_raw, amount_raw, profit_raw, ts IS NULL, amount, {bad_profit}
                FROM (SELECT row_number() OVER () + {header_lines} AS line, * FROM tx) WHERE {bad}
                ORDER BY line LIMIT {PROBLEMS_KEPT}"""
        ).fetchall()
        for line, who, at_text, amount_text, profit_text, bad_at, amount_value, profit_bad in listed:
            problems.append(
                Problem(
                    file,
                    line,
                    _transaction_problem(who, at_text, amount_text, profit_text, bad_at, amount_value, profit_bad),
                )
            )
        loaded.count(bad_rows, rejected=True)
    unknown = "FROM sums WHERE good_rows > 0 AND cid NOT IN (SELECT cid FROM cust)"
    (strangers,) = con.execute(f"SELECT count(*) {unknown}").fetchone()
    loaded.count(strangers, rejected=True)
    if strangers:  # a second anti-join over a million ids only when there is something to list
        listed = con.execute(f"SELECT cid, purchases {unknown} ORDER BY cid LIMIT {PROBLEMS_KEPT}").fetchall()
        for who, purchases in listed:
            problems.append(
                Problem(file, 0, f"customer {who} has {purchases} transactions but is not in the customer file")
            )
    loaded.keep(problems)
    kept = "".join(f", c.{name}" for name in loaded.columns.values())
    con.execute(
        f"""CREATE OR REPLACE TABLE cust AS SELECT c.ord, c.line, c.cid, coalesce(s.purchases, 0) AS purchases,
            CASE WHEN s.purchases > 0 THEN s.last_date END AS last_date,
            CAST(coalesce(s.amount, 0) AS DOUBLE) AS amount, s.profit AS profit{kept}
            FROM cust c LEFT JOIN (SELECT * FROM sums WHERE good_rows > 0) s USING (cid)"""
    )


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
