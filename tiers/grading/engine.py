"""Grading inside DuckDB: every method, the tier rules and the explanation as SQL over the tables
`inputs.Loaded` holds, so a million customers never become Python objects.

RFM scores are `rank()` windows (rank - 1 is the count of strictly lower values, so equal values
score alike, in integer arithmetic as `rfm.scores` does); the value share is a running sum over
the distinct values, largest first; bands, grades and segments are CASE expressions generated
from the settings. Python decides only what is small: the tier rules run `rules.choose` (their
one definition) once per distinct combination of facts, and the answers are joined back.
The pure modules (`rfm`, `scorecard`, `value_share`) are the reference this SQL is held equal
to (tests/grading/test_engine.py).

The graded numbers stay in DuckDB (table `result`): the tier file is written by DuckDB itself
(`write_csv`), and only what a report needs is fetched.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import msgspec

from tierline.tiers.grading import rfm
from tierline.tiers.grading.config import EXPLAIN_FIELDS, PREFIX, Criterion, GradingSettings
from tierline.tiers.grading.figures import RfmReport, ScorecardReport, ValueShareReport
from tierline.tiers.grading.inputs import BadInput, Loaded, insert_rows
from tierline.tiers.grading.rules import BLACKLIST_RULE, EDIT_RULE, Facts, choose, is_flagged
from tierline.tiers.model import TIER_RANK, TIERS, Tier

# Columns a scorecard criterion may name besides the customer file's own.
DERIVED: Final = ("amount", "purchases", "profit", "recency_days")
CONFLICTS_KEPT: Final = 1000
Records = dict[str, tuple[Tier, dict[str, str]]]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _number(value: float) -> str:
    # Through text: a decimal literal would be DECIMAL, and 0.1 must be the double 0.1.
    return f"CAST('{value!r}' AS DOUBLE)"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class KeptEdit(msgspec.Struct, frozen=True):
    """A hand edit a run met: the edited tier, the run's own (None: the run did not grade the
    number), and whether the edit stands (False: the customer's blacklist flag overrules it)."""

    caller: str
    edited: Tier
    graded: Tier | None
    kept: bool


class Graded:
    """One pass's result: the report's figures here, the records in DuckDB (`result`)."""

    def __init__(self, loaded: Loaded, as_of: dt.date) -> None:
        self.loaded = loaded
        self.as_of = as_of
        self.rule_counts: dict[str, int] = {}
        self.tiers: dict[str, int] = {}
        self.callers = 0
        self.conflicts: list[str] = []
        self.conflict_count = 0
        self.rfm: RfmReport | None = None
        self.scorecard: ScorecardReport | None = None
        self.value_share: ValueShareReport | None = None
        self.columns: list[str] = []
        """The CRM fields the records may carry, in tier-file order (customer_id, CRM, grading.*)."""
        self._records: Records | None = None

    @property
    def con(self) -> Any:
        return self.loaded.con

    def close(self) -> None:
        self.loaded.close()

    def __len__(self) -> int:
        return self.callers

    @property
    def customer_tier(self) -> list[Tier]:
        """Each customer's tier, in customer order."""
        return [row[0] for row in self.con.execute("SELECT tier FROM decided ORDER BY ord").fetchall()]

    @property
    def records(self) -> Records:
        """caller -> (tier, CRM fields incl. the grading.* explanation), fetched whole: small runs only."""
        if self._records is None:
            self._records = dict(self.batches())
        return self._records

    def batches(self, size: int = 100_000) -> Iterator[tuple[str, tuple[Tier, dict[str, str]]]]:
        """Every record, fetched `size` rows at a time."""
        names = self.columns
        select = ", ".join(["caller", "tier", *map(_quoted, names)])
        cursor = self.con.cursor()
        cursor.execute(f"SELECT {select} FROM result")
        while rows := cursor.fetchmany(size):
            for row in rows:
                yield row[0], (row[1], {name: value for name, value in zip(names, row[2:], strict=True) if value})

    def tier_of(self) -> dict[str, Tier]:
        """caller -> tier (what the migration report compares)."""
        return dict(self.con.execute("SELECT caller, tier FROM result").fetchall())

    def rfm_totals(self) -> list[int]:
        if self.rfm is None:
            return []
        return [row[0] for row in self.con.execute("SELECT r + fs + ms FROM rfm_t").fetchall()]

    def score_totals(self) -> list[float]:
        if self.scorecard is None:
            return []
        return [row[0] for row in self.con.execute("SELECT score FROM facts").fetchall()]

    def count_tiers(self) -> None:
        counts = dict(self.con.execute("SELECT tier, count(*) FROM result GROUP BY tier").fetchall())
        self.tiers = {tier: counts.get(tier, 0) for tier in sorted(TIERS, key=TIER_RANK.__getitem__)}
        self.callers = sum(counts.values())

    def keep_edits(self, edits: Mapping[str, Tier]) -> list[KeptEdit]:
        """Lay the hand edits over the decided tiers (issue 17: after the blacklist flag, before
        the rules): an edited number the run graded takes the edited tier (`rules.EDIT_RULE`)
        unless its customer is flagged; an edited number the run did not grade is kept as a
        record of its own (the tier and `grading.rule`, `grading.as_of` when those travel).
        Returns each edit and what became of it, by number. O(edits) rows into DuckDB, one join."""
        if not edits:
            return []
        con = self.con
        con.execute("CREATE OR REPLACE TEMP TABLE edits (caller VARCHAR, tier VARCHAR)")
        insert_rows(con, "edits", ["VARCHAR", "VARCHAR"], sorted(edits.items()))
        found = con.execute(
            """SELECT e.caller, e.tier, r.tier, r."__rule" FROM edits e LEFT JOIN result r USING (caller)
               ORDER BY e.caller"""
        ).fetchall()
        kept = [
            KeptEdit(caller=caller, edited=edited, graded=graded, kept=rule != BLACKLIST_RULE)
            for caller, edited, graded, rule in found
        ]
        sets = ["tier = e.tier", f'"__rule" = {_literal(EDIT_RULE)}']
        if PREFIX + "rule" in self.columns:
            sets.append(f"{_quoted(PREFIX + 'rule')} = {_literal(EDIT_RULE)}")
        con.execute(
            f"""UPDATE result SET {", ".join(sets)} FROM edits e
                WHERE result.caller = e.caller AND result."__rule" <> {_literal(BLACKLIST_RULE)}"""
        )
        extra = {PREFIX + "rule": _literal(EDIT_RULE), PREFIX + "as_of": _literal(self.as_of.isoformat())}
        named = [name for name in extra if name in self.columns]
        columns = ", ".join(["caller", "tier", '"__rule"', *map(_quoted, named)])
        values = ", ".join(["e.caller", "e.tier", _literal(EDIT_RULE), *(extra[name] for name in named)])
        con.execute(
            f"""INSERT INTO result ({columns}) SELECT {values} FROM edits e
                WHERE e.caller NOT IN (SELECT caller FROM result)"""
        )
        self._records = None
        self.count_tiers()
        return kept

    def write_csv(self, path: Path) -> int:
        """The tier file `reload-tiers` reads (caller, tier, the fields any record carries), by DuckDB."""
        present = [
            name
            for name, count in zip(
                self.columns,
                self.con.execute(
                    "SELECT " + ", ".join(f"count({_quoted(name)})" for name in self.columns) + " FROM result"
                ).fetchone(),
                strict=True,
            )
            if count
        ]
        select = ", ".join(["caller", "tier", *map(_quoted, present)])
        # The file's row order means nothing (`result` comes out of a hash join): DuckDB need not
        # hold rows back to keep it, which at 10⁶ saves a third of the COPY and ~150 MiB of peak.
        self.con.execute("SET preserve_insertion_order = false")
        try:
            self.con.execute(f"COPY (SELECT {select} FROM result) TO {_literal(str(path))} (HEADER, DELIMITER ',')")
        finally:
            self.con.execute("SET preserve_insertion_order = true")
        return self.callers


def grade(loaded: Loaded, settings: GradingSettings, as_of: dt.date) -> Graded:
    """Grade the customers `loaded` holds; the result owns `loaded` (close it with the result)."""
    result = Graded(loaded, as_of)
    try:
        _grade(result, settings)
    except BaseException:
        loaded.close()
        raise
    return result


def _grade(result: Graded, settings: GradingSettings) -> None:
    con = result.con
    loaded = result.loaded
    by_lower = {name.strip().lower(): column for name, column in loaded.columns.items()}
    as_of = f"DATE '{result.as_of.isoformat()}'"
    recency = f"greatest(0, date_diff('day', last_date, {as_of}))"
    if settings.rfm is not None:
        result.rfm = _rfm(con, recency, settings.rfm.high_from)
    if settings.value_share is not None:
        result.value_share = _value_share(con, settings)
    card = settings.scorecard
    columns = ["c.ord", "c.cid"]
    if result.rfm is not None:
        assert settings.rfm is not None
        columns += [
            f"coalesce({_segment('r.r', 'r.fs', 'r.ms', settings.rfm.high_from)}, {_literal(rfm.NO_PURCHASES)})"
            " AS segment",
            "r.r + r.fs + r.ms AS rfm_total",
            "'R' || r.r || ' F' || r.fs || ' M' || r.ms AS rfm",
        ]
    else:
        columns += ["CAST(NULL AS VARCHAR) AS segment", "CAST(NULL AS INTEGER) AS rfm_total", "NULL AS rfm"]
    if card is not None:
        earned = [_points(criterion, by_lower, recency) for criterion in card.criteria]
        total = " + ".join(f"coalesce({points}, 0)" for points, _ in earned)
        columns += [f"round({total}, 6) AS score", "concat_ws(', ', " + ", ".join(t for _, t in earned) + ") AS points"]
        columns += [f"({points}) IS NULL AS no_band_{at}" for at, (points, _) in enumerate(earned)]
    else:
        columns += ["CAST(NULL AS DOUBLE) AS score", "NULL AS points"]
    columns.append("s.class AS class" if result.value_share is not None else "CAST(NULL AS VARCHAR) AS class")
    flag = by_lower.get(settings.blacklist_column.strip().lower())
    pin = by_lower.get(settings.pin_column.strip().lower())
    rule_columns = sorted({rule.column.strip().lower() for rule in settings.rules if rule.column})
    columns.append(f"lower(c.{flag}) AS k_flag" if flag else "CAST(NULL AS VARCHAR) AS k_flag")
    columns.append(f"lower(c.{pin}) AS k_pin" if pin else "CAST(NULL AS VARCHAR) AS k_pin")
    for at, name in enumerate(rule_columns):
        found = by_lower.get(name)
        columns.append(f"lower(c.{found}) AS k_rule_{at}" if found else f"CAST(NULL AS VARCHAR) AS k_rule_{at}")
    travelling = [(name, by_lower[name.lower()]) for name in settings.crm_columns if name.lower() in by_lower]
    columns += [f"c.{column} AS t_{at}" for at, (_, column) in enumerate(travelling)]
    columns += ["c.amount AS amount", "c.profit AS profit"]
    joins = "FROM cust c"
    if result.rfm is not None:
        joins += " LEFT JOIN rfm_t r USING (ord)"
    if result.value_share is not None:
        joins += " LEFT JOIN share_t s USING (ord)"
    grade_of = _grade_of("score", card.cut_points) if card is not None else "CAST(NULL AS VARCHAR)"
    con.execute(f"CREATE TABLE facts AS SELECT *, {grade_of} AS grade FROM (SELECT {', '.join(columns)} {joins})")
    if card is not None:
        result.scorecard = _scorecard_report(con, card.criteria)
    _decide(result, settings, len(rule_columns))
    _records(result, settings, travelling)


def _rfm(con: Any, recency: str, high_from: int) -> RfmReport:
    # The graded population: customers with at least one purchase.
    con.execute(
        f"""CREATE TABLE rfm_t AS
            WITH m AS (SELECT ord, {recency} AS days, CAST(purchases AS DOUBLE) AS f, amount AS m
                       FROM cust WHERE purchases > 0 AND last_date IS NOT NULL),
                 n AS (SELECT count(*) AS n FROM m)
            SELECT ord, days, f, m,
                   least(5, 1 + (5 * (rank() OVER (ORDER BY days DESC) - 1)) // n) AS r,
                   least(5, 1 + (5 * (rank() OVER (ORDER BY f) - 1)) // n) AS fs,
                   least(5, 1 + (5 * (rank() OVER (ORDER BY m) - 1)) // n) AS ms
            FROM m, n"""
    )
    cutoffs: dict[str, list[rfm.Cutoff]] = {}
    for name, value, score in (("R", "days", "r"), ("F", "f", "fs"), ("M", "m", "ms")):
        cutoffs[name] = [
            rfm.Cutoff(int(s), float(low), float(high), int(count))
            for s, low, high, count in con.execute(
                f"SELECT {score}, min({value}), max({value}), count(*) FROM rfm_t GROUP BY {score} ORDER BY {score}"
            ).fetchall()
        ]
    (graded,) = con.execute("SELECT count(*) FROM rfm_t").fetchone()
    notes = []
    for name, found in cutoffs.items():
        given = [cutoff.score for cutoff in found]
        if graded and len(given) < 5:
            notes.append(f"{name}: only scores {', '.join(map(str, given))} (few distinct values)")
    segments = dict(
        con.execute(
            f"""SELECT coalesce({_segment("r", "fs", "ms", high_from)}, {_literal(rfm.NO_PURCHASES)}), count(*)
                FROM cust LEFT JOIN rfm_t USING (ord) GROUP BY ALL"""
        ).fetchall()
    )
    return RfmReport(graded=graded, high_from=high_from, cutoffs=cutoffs, notes=notes, segments=segments)


def _segment(r: str, f: str, m: str, high_from: int) -> str:
    """`rfm.segment` as SQL (NULL without scores), generated from its table `rfm.SEGMENTS`."""
    branches = " ".join(
        f"WHEN ({r} >= {high_from}) = {str(rh).lower()} AND ({f} >= {high_from}) = {str(fh).lower()}"
        f" AND ({m} >= {high_from}) = {str(mh).lower()} THEN {_literal(name)}"
        for (rh, fh, mh), name in rfm.SEGMENTS.items()
    )
    return f"CASE WHEN {r} IS NULL THEN NULL {branches} END"


def _points(criterion: Criterion, by_lower: dict[str, str], recency: str) -> tuple[str, str]:
    """(the criterion's points, NULL when no band holds the value; its text in the explanation)."""
    key = criterion.column.strip().lower()
    derived = {
        "amount": "c.amount",
        "purchases": "CAST(c.purchases AS DOUBLE)",
        "profit": "c.profit",
        "recency_days": f"CAST({recency.replace('last_date', 'c.last_date')} AS DOUBLE)",
    }
    categorical = criterion.bands[0].values is not None
    if key in by_lower:
        text = f"c.{by_lower[key]}"
        value = f"lower({text})" if categorical else f"TRY_CAST({text} AS DOUBLE)"
    elif key in derived:
        # A derived figure as text is what `repr` makes of it for a categorical band.
        value = f"lower(CAST({derived[key]} AS VARCHAR))" if categorical else derived[key]
    else:
        raise BadInput(
            f"scorecard criterion {criterion.name!r} reads column {criterion.column!r}, which the customer"
            f" file does not have (nor is it one of {', '.join(DERIVED)})"
        )
    conditions = []
    for band in criterion.bands:
        if categorical:
            options = ", ".join(_literal(option.strip().lower()) for option in band.values or ())
            conditions.append(f"{value} IN ({options})")
        else:
            bounds = []
            if band.min is not None:
                bounds.append(f"{value} >= {_number(band.min)}")
            if band.max is not None:
                bounds.append(f"{value} < {_number(band.max)}")
            conditions.append(" AND ".join(bounds) or f"{value} IS NOT NULL")
    points = " ".join(
        f"WHEN {condition} THEN {_number(band.points)}"
        for condition, band in zip(conditions, criterion.bands, strict=True)
    )
    text = " ".join(
        f"WHEN {condition} THEN {_literal(f'{criterion.name} {band.points:g}')}"
        for condition, band in zip(conditions, criterion.bands, strict=True)
    )
    return f"CASE {points} END", f"CASE {text} ELSE {_literal(criterion.name + ' -')} END"


def _grade_of(total: str, cut_points: list[float]) -> str:
    """`scorecard.grade_of` as SQL: A at or above the first cut point, ..., E below the last."""
    branches = " ".join(
        f"WHEN {total} >= {_number(cut)} THEN '{letter}'" for cut, letter in zip(cut_points, "ABCD", strict=True)
    )
    return f"CASE {branches} ELSE 'E' END"


def _scorecard_report(con: Any, criteria: list[Criterion]) -> ScorecardReport:
    counts = con.execute(
        "SELECT " + ", ".join(f"count(*) FILTER (WHERE no_band_{at})" for at in range(len(criteria))) + " FROM facts"
    ).fetchone()
    no_band = {criterion.name: int(count) for criterion, count in zip(criteria, counts, strict=True) if count}
    grades = dict(con.execute("SELECT grade, count(*) FROM facts GROUP BY grade").fetchall())
    return ScorecardReport(grades={letter: grades.get(letter, 0) for letter in "ABCDE"}, no_band=no_band)


def _value_share(con: Any, settings: GradingSettings) -> ValueShareReport:
    share = settings.value_share
    assert share is not None
    if share.by == "profit":
        (customers, with_profit) = con.execute("SELECT count(*), count(profit) FROM cust").fetchone()
        if customers and not with_profit:
            raise BadInput("value_share.by = 'profit' but no customer has a profit; give profit or use by = 'amount'")
        value = "coalesce(profit, 0)"
    else:
        value = "amount"
    # Only positive values make up the total; ties share a class because each distinct value is
    # tested by the sum of the values strictly greater than it. `fsum` where threads add in no set
    # order (a plain double sum could move a class edge from one run to the next).
    con.execute(
        f"""CREATE TABLE share_t AS
            WITH v AS (SELECT ord, {value} AS v FROM cust),
                 pos AS (SELECT v, fsum(v) AS s FROM v WHERE v > 0 GROUP BY v),
                 run AS (SELECT v, coalesce(sum(s) OVER (ORDER BY v DESC ROWS BETWEEN UNBOUNDED PRECEDING
                                AND 1 PRECEDING), 0) AS greater FROM pos),
                 total AS (SELECT coalesce(fsum(s), 0) AS total FROM pos)
            SELECT v.ord, v.v, CASE WHEN v.v <= 0 THEN 'C'
                   WHEN run.greater < {_number(share.a_share)} * total.total THEN 'A'
                   WHEN run.greater < {_number(share.b_share)} * total.total THEN 'B' ELSE 'C' END AS class
            FROM v LEFT JOIN run USING (v), total"""
    )
    counts: dict[str, int] = {}
    held: dict[str, float] = {}
    for letter, count, positive in con.execute(
        "SELECT class, count(*), coalesce(fsum(v) FILTER (WHERE v > 0), 0) FROM share_t GROUP BY class"
    ).fetchall():
        counts[letter], held[letter] = count, positive
    total = sum(held.values())
    return ValueShareReport(
        by=share.by,
        total=total,
        classes={letter: counts.get(letter, 0) for letter in "ABC"},
        class_share={letter: (held.get(letter, 0.0) / total if total else 0.0) for letter in "ABC"},
    )


class _Key:
    """The rule columns of one distinct combination, as `rules.Columns`."""

    __slots__ = ("values",)

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, name: str, default: str, /) -> str:
        return self.values.get(name.strip().lower(), default)


def _decide(result: Graded, settings: GradingSettings, rule_columns: int) -> None:
    """Each customer's tier and rule: `rules.choose` once per distinct combination of facts."""
    con = result.con
    names = sorted({rule.column.strip().lower() for rule in settings.rules if rule.column})
    uses_score = any(rule.score_at_least is not None for rule in settings.rules)
    uses_rfm = any(rule.rfm_at_least is not None for rule in settings.rules)
    keys = ["segment", "grade", "class", "k_flag", "k_pin", *(f"k_rule_{at}" for at in range(rule_columns))]
    if uses_score:
        keys.append("score")
    if uses_rfm:
        keys.append("rfm_total")
    decided = []
    for row in con.execute(f"SELECT DISTINCT {', '.join(keys)} FROM facts").fetchall():
        found = dict(zip(keys, row, strict=True))
        facts = Facts(
            segment=found["segment"],
            grade=found["grade"],
            score=found.get("score"),
            value_class=found["class"],
            rfm_total=found.get("rfm_total"),
            columns=_Key({name: found[f"k_rule_{at}"] or "" for at, name in enumerate(names)}),
        )
        tier, rule = choose(
            settings.rules,
            facts,
            settings.default_tier,
            blacklisted=is_flagged(found["k_flag"] or ""),
            pinned=found["k_pin"] or "",
        )
        decided.append((*row, tier, rule, settings.caller_precedence.index(tier)))
    kinds = _types(con, keys)
    types = ", ".join(f"{key} {kind}" for key, kind in zip(keys, kinds, strict=True))
    con.execute(f"CREATE TABLE decisions ({types}, tier VARCHAR, rule VARCHAR, precedence INTEGER)")
    insert_rows(con, "decisions", [*kinds, "VARCHAR", "VARCHAR", "INTEGER"], decided)
    matched = " AND ".join(f"f.{key} IS NOT DISTINCT FROM d.{key}" for key in keys)
    con.execute(
        f"""CREATE TABLE decided AS SELECT f.*, d.tier, d.rule, d.precedence
            FROM facts f JOIN decisions d ON {matched}"""
    )
    result.rule_counts = dict(
        con.execute("SELECT rule, count(*) AS n FROM decided GROUP BY rule ORDER BY n DESC, rule").fetchall()
    )


def _types(con: Any, columns: list[str]) -> list[str]:
    found = {row[0]: row[1] for row in con.execute("DESCRIBE facts").fetchall()}
    return [found[column] for column in columns]


def _records(result: Graded, settings: GradingSettings, travelling: list[tuple[str, str]]) -> None:
    """One record per number (`result`): one number on two customers goes by `caller_precedence`,
    then to the customer read first."""
    con = result.con
    explain = set(settings.explain)
    formulas = {
        "as_of": _literal(result.as_of.isoformat()),
        "rule": "rule",
        "segment": "segment",
        "rfm": "rfm",
        "grade": "grade",
        "score": "printf('%g', score)",
        "points": "points",
        "class": "class",
        "amount": "printf('%g', amount)",
        "profit": "printf('%g', profit)",
    }
    fields = [("customer_id", "cid")]
    fields += [(name, f"t_{at}") for at, (name, _) in enumerate(travelling)]
    fields += [(PREFIX + name, formulas[name]) for name in EXPLAIN_FIELDS if name in explain]
    result.columns = [name for name, _ in fields]
    select = ", ".join(f"{formula} AS {_quoted(name)}" for name, formula in fields)
    (_, shared) = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE n > 1) FROM (SELECT count(*) AS n FROM nums GROUP BY caller)"
    ).fetchone()
    if shared:
        source = """(SELECT n.caller, d.*, row_number() OVER (PARTITION BY n.caller ORDER BY d.precedence, d.ord) AS nth
            FROM nums n JOIN decided d USING (ord)) WHERE nth = 1"""
    else:  # the usual file: no number on two customers, nothing to rank
        source = "nums n JOIN decided d USING (ord)"
    # `__rule`: what chose the tier, whether or not it travels (`keep_edits` reads it); no tier
    # file or record reads it (they name their columns).
    con.execute(f'CREATE TABLE result AS SELECT caller, tier, rule AS "__rule", {select} FROM {source}')
    result.count_tiers()
    (entries,) = con.execute("SELECT count(*) FROM nums").fetchone()
    result.conflict_count = entries - result.callers
    if result.conflict_count:
        _conflicts(result, settings)


def _conflicts(result: Graded, settings: GradingSettings) -> None:
    """The first conflicts as a person reads them, replayed in customer order."""
    order = settings.caller_precedence
    owner: dict[str, tuple[str, Tier]] = {}
    for caller, cid, tier in result.con.execute(
        """SELECT n.caller, d.cid, d.tier FROM nums n JOIN decided d USING (ord)
           WHERE n.caller IN (SELECT caller FROM nums GROUP BY caller HAVING count(*) > 1)
           ORDER BY d.ord, n.seq"""
    ).fetchall():
        held = owner.get(caller)
        if held is None:
            owner[caller] = (cid, tier)
            continue
        winner = held[1] if order.index(held[1]) <= order.index(tier) else tier
        result.conflicts.append(
            f"caller {caller} is on customers {held[0]} ({held[1]}) and {cid} ({tier}): {winner} wins"
        )
        if winner != held[1]:
            owner[caller] = (cid, tier)
        if len(result.conflicts) >= CONFLICTS_KEPT:
            return
