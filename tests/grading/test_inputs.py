"""Reading real CSV, JSON Lines and Parquet files (written here) into a population; bad rows
reported by file and line; a whole run's grades independent of the files' row order."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from pathlib import Path

import pytest

pytest.importorskip("duckdb")  # the extra tierline[grading]; the dev lock installs it

import duckdb

from tierline.tiers.grading.config import GradingSettings, RfmSettings, ValueShareSettings
from tierline.tiers.grading.inputs import BadInput, read_aggregates, read_transactions
from tierline.tiers.grading.run import run_grading

CUSTOMERS = """customer_id,caller,name,blacklist
C1,+8613800000001,Li Na,
C1,+8613800000002,Li Na,
C2,+8613800000003;+8613800000004,Wang,
C3,+8613800000005,Zhao,yes
"""
TRANSACTIONS = [
    ("C1", "2026-11-20T10:00:00+08:00", "5000", "1500"),
    ("C1", "2026-11-01", "3000", "900"),
    ("C2", "2026-10-01 23:30:00", "200", "20"),
    ("C2", "2026-10-02", "-50", "-5"),
    ("C3", "2026-06-01", "50", "5"),
]
SETTINGS = GradingSettings(timezone="Asia/Shanghai", rfm=RfmSettings(), value_share=ValueShareSettings())


def write_transactions(path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    csv_path = path.with_suffix(".csv")
    csv_path.write_text("customer_id,at,amount,profit\n" + "".join(",".join(row) + "\n" for row in rows))
    if path.suffix == ".jsonl":
        keys = ("customer_id", "at", "amount", "profit")
        path.write_text("".join(json.dumps(dict(zip(keys, row, strict=True))) + "\n" for row in rows))
    elif path.suffix == ".parquet":
        duckdb.sql(f"COPY (SELECT * FROM read_csv('{csv_path}', all_varchar=true)) TO '{path}' (FORMAT parquet)")
    return path


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_transactions_are_summed_per_customer_in_every_format(tmp_path: Path, suffix: str) -> None:
    customers = tmp_path / "customers.csv"
    customers.write_text(CUSTOMERS)
    tx = write_transactions(tmp_path / f"tx{suffix}", TRANSACTIONS)
    population = read_transactions(tx, customers, SETTINGS).population()
    assert population.ids == ["C1", "C2", "C3"]
    assert population.callers[0] == ["+8613800000001", "+8613800000002"]
    assert population.callers[1] == ["+8613800000003", "+8613800000004"]
    assert population.purchases == [2, 1, 1]  # a refund is no purchase
    assert population.amount == [8000.0, 150.0, 50.0]  # but counts in M (refunds = "count")
    assert population.profit == [2400.0, 15.0, 5.0]
    # 10:00 at +08:00 is the 20th in Shanghai; a naive time is read in the configured zone.
    assert population.last_date[:2] == [dt.date(2026, 11, 20), dt.date(2026, 10, 1)]
    assert population.columns["blacklist"] == ["", "", "yes"]
    assert population.problems == []


def test_money_is_summed_without_losing_to_the_order_of_addition(tmp_path: Path) -> None:
    # Added in file order, 1e16 + 1 is 1e16 again and the total 0: a plain double sum answers
    # by the order its threads add in, and at 10⁶ customers moved band edges between runs.
    customers = tmp_path / "customers.csv"
    customers.write_text("customer_id,caller\nC1,+8613800000001\n")
    values = ["1e16", "1", "-1e16"]
    tx = write_transactions(tmp_path / "tx.csv", [("C1", "2026-11-01", value, value) for value in values])
    population = read_transactions(tx, customers, SETTINGS).population()
    assert population.amount == [math.fsum(map(float, values))] == [1.0]  # refunds = "count"
    assert population.profit == [1.0]


def test_aggregates_file_and_refunds_ignored(tmp_path: Path) -> None:
    aggregates = tmp_path / "agg.jsonl"
    rows = [
        {
            "customer_id": "C1",
            "caller": "+8613800000001",
            "last_purchase_at": "2026-11-29",
            "purchases": 3,
            "amount": 900.5,
            "segment_hint": "x",
        },
        {"customer_id": "C2", "caller": "+8613800000002", "last_purchase_at": None, "purchases": 0, "amount": -20},
    ]
    aggregates.write_text("".join(json.dumps(row) + "\n" for row in rows))
    settings = GradingSettings(rfm=RfmSettings(), refunds="ignore")
    population = read_aggregates(aggregates, settings).population()
    assert population.purchases == [3, 0] and population.amount == [900.5, 0.0]
    assert population.last_date == [dt.date(2026, 11, 29), None]
    assert population.columns["segment_hint"] == ["x", ""]


def test_bad_rows_are_reported_by_file_and_line(tmp_path: Path) -> None:
    customers = tmp_path / "customers.csv"
    customers.write_text(
        "customer_id,caller\nC1,+8613800000001\nC1,+8613800000001\nC2,\nC3,not a number\n,+8613800000009\n"
    )
    tx = tmp_path / "tx.csv"
    tx.write_text(
        "customer_id,at,amount\nC1,2026-11-01,10\nC1,yesterday,10\nC1,2026-11-02,ten\nC9,2026-11-02,5\nC1,2026-11-03,-4\n"
    )
    settings = GradingSettings(rfm=RfmSettings(), refunds="reject")
    population = read_transactions(tx, customers, settings).population()
    reasons = {(p.file, p.line): p.reason for p in population.problems}
    assert reasons[("customers.csv", 3)] == "customer C1 with caller +8613800000001 is a duplicate of line 2"
    assert reasons[("customers.csv", 4)] == "customer C2 has no caller number"
    assert reasons[("customers.csv", 5)].startswith("customer C3: ")
    assert reasons[("customers.csv", 6)] == "customer_id is empty"
    assert reasons[("tx.csv", 3)] == "at 'yesterday' is not a date or time"
    assert reasons[("tx.csv", 4)] == "amount 'ten' is not a number"
    assert reasons[("tx.csv", 6)] == "amount -4 is negative (refunds = 'reject')"
    assert reasons[("tx.csv", 0)] == "customer C9 has 1 transactions but is not in the customer file"
    # A customer without a number is reported but is no bad row; the rest are.
    assert population.rejected_rows == 7 and population.data_rows == 10


def test_missing_columns_and_unknown_formats_refuse_the_file(tmp_path: Path) -> None:
    customers = tmp_path / "customers.csv"
    customers.write_text("customer_id,phone\nC1,+8613800000001\n")
    tx = write_transactions(tmp_path / "tx.csv", TRANSACTIONS)
    with pytest.raises(BadInput, match="no column 'caller' \\(found customer_id, phone\\)"):
        read_transactions(tx, customers, SETTINGS)
    customers.write_text(CUSTOMERS)
    odd = tmp_path / "tx.xlsx"
    odd.write_text("x")
    with pytest.raises(BadInput, match=r"unknown format '\.xlsx'"):
        read_transactions(odd, customers, SETTINGS)


def test_over_the_reject_ratio_the_run_is_refused(tmp_path: Path) -> None:
    customers = tmp_path / "customers.csv"
    customers.write_text(CUSTOMERS)
    rows = [*TRANSACTIONS, ("C1", "never", "1", "1")]
    run = run_grading(
        SETTINGS,
        transactions=write_transactions(tmp_path / "tx.csv", rows),
        customers=customers,
        as_of=dt.date(2026, 11, 30),
    )
    assert not run.may_apply(force=True)
    assert run.report.refused == ["1 of 10 rows are rejected (more than max_reject_ratio 0.01)"]


def test_one_number_on_two_customers_goes_to_the_higher_tier(tmp_path: Path) -> None:
    customers = tmp_path / "customers.csv"
    customers.write_text(CUSTOMERS + "C4,+8613800000001,Shared,yes\n")
    tx = write_transactions(tmp_path / "tx.csv", TRANSACTIONS)
    run = run_grading(SETTINGS, transactions=tx, customers=customers, as_of=dt.date(2026, 11, 30))
    assert run.records["+8613800000001"][0] == "blacklisted"
    assert run.report.conflicts == [
        "caller +8613800000001 is on customers C1 (standard) and C4 (blacklisted): blacklisted wins"
    ]


def test_grades_do_not_depend_on_the_files_row_order(tmp_path: Path) -> None:
    rnd = random.Random(7)
    customer_rows = [f"C{i},+86138{i:08d},,\n" for i in range(60)]
    tx_rows = [
        (
            f"C{rnd.randrange(60)}",
            f"2026-{rnd.randint(1, 11):02d}-{rnd.randint(1, 28):02d}",
            str(rnd.randint(1, 9) * 10),
            "1",
        )
        for _ in range(400)
    ]
    found = []
    for attempt in range(2):
        rnd.shuffle(customer_rows)
        rnd.shuffle(tx_rows)
        customers = tmp_path / f"customers{attempt}.csv"
        customers.write_text("customer_id,caller,name,blacklist\n" + "".join(customer_rows))
        tx = write_transactions(tmp_path / f"tx{attempt}.csv", tx_rows)
        run = run_grading(SETTINGS, transactions=tx, customers=customers, as_of=dt.date(2026, 11, 30))
        found.append(run.records)
    assert found[0] == found[1]
