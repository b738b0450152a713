"""How right the quoted waits were: the pure counters (queue/wait_accuracy.py) and every store's."""

from __future__ import annotations

import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tierline.queue import wait_accuracy as wa
from tierline.queue.estimate import arrival_rate, estimated_wait

from .helpers import T0, MakeStore, record

BIN = 2 ** (1 / wa.BINS_PER_OCTAVE)

pairs = st.tuples(st.floats(0.0, 3600.0), st.floats(0.0, 3600.0))


def test_one_call() -> None:
    acc = wa.Accuracy()
    acc.record(30.0, 20.0)  # waited 30 s, quoted 20 s: ratio 1.5, within ±50 %
    fig = wa.figures(acc)
    assert (fig.calls, fig.mean_abs_error_s, fig.within_50pct) == (1, 10.0, 1.0)
    assert fig.median_ratio is not None and 1.5 / BIN <= fig.median_ratio <= 1.5 * BIN


def test_waits_under_a_second_count_as_one() -> None:
    assert wa.ratio(0.0, 0.0) == 1.0  # quoted 0 (an idle agent) and answered at once
    assert wa.ratio(0.4, 10.0) == 0.1
    assert wa.increments(0.0, 0.0)["within"] == 1


def test_no_calls_no_figures() -> None:
    assert wa.figures(wa.Accuracy()) == wa.AccuracyFigures(
        calls=0, mean_abs_error_s=None, median_ratio=None, within_50pct=None
    )


def test_ratios_beyond_the_histogram_land_in_its_end_bins() -> None:
    assert wa.bin_index(1e-9) == 0
    assert wa.bin_index(1e9) == wa.N_BINS - 1
    assert wa.bin_index(1.0) == wa.OCTAVES * wa.BINS_PER_OCTAVE


@given(st.lists(pairs, min_size=1, max_size=60), st.integers(0, 60))
def test_merged_parts_are_the_whole(calls: list[tuple[float, float]], cut: int) -> None:
    whole, left, right = wa.Accuracy(), wa.Accuracy(), wa.Accuracy()
    for i, (real, quoted) in enumerate(calls):
        whole.record(real, quoted)
        (left if i < cut else right).record(real, quoted)
    merged = wa.merged([left, right])
    assert (merged.n, merged.within, merged.bins) == (whole.n, whole.within, whole.bins)
    assert merged.err == pytest.approx(whole.err)


@given(st.lists(st.floats(0.1, 100.0), min_size=1, max_size=80))
def test_the_median_ratio_is_within_a_bin_of_the_true_one(ratios: list[float]) -> None:
    acc = wa.Accuracy()
    for r in ratios:
        acc.record(10.0 * r, 10.0)  # quoted 10 s, waited 10·r (over the 1 s floor)
    median = acc.median_ratio()
    true = statistics.median_low(ratios), statistics.median_high(ratios)
    assert median is not None
    assert min(true) / BIN <= median <= max(true) * BIN


async def test_every_store_compares_the_quote_with_the_wait(make_store: MakeStore) -> None:
    store, clock = make_store()
    await store.route("c0", record("+0", "mid"), "default")  # no AHT yet: no quote, not counted
    await store.next_work("a1", None)
    await store.answer("c0", "a1")
    clock.set(T0 + 100)
    await store.end("c0")  # AHT 100 s
    c1, _ = await store.route("c1", record("+1", "standard"), "default")
    quoted = c1.estimated_wait_s
    mids = arrival_rate(1.0, T0, T0 + 100, 100)
    assert quoted is not None and quoted == estimated_wait(1, 0, 0, 100.0, mids)
    clock.set(T0 + 100 + 2 * quoted)  # it waits twice its quote
    await store.next_work("a1", None)
    await store.answer("c1", "a1")

    metrics = await store.metrics()
    rows = {(r.queue, r.tier): r.accuracy for r in metrics.estimate_accuracy}
    assert set(rows) == {("default", "standard")}
    fig = wa.figures(rows[("default", "standard")])
    assert (fig.calls, fig.mean_abs_error_s, fig.within_50pct) == (1, round(quoted, 3), 0.0)
    assert fig.median_ratio is not None and 2 / BIN <= fig.median_ratio <= 2 * BIN

    report = await store.sla(None, "15m")
    by_tier = {row.tier: row.estimate_accuracy for row in report.rows}
    assert by_tier["standard"] == fig
    assert by_tier["mid"] == wa.figures(wa.Accuracy())  # c0 had no quote
