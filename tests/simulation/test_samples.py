"""Handle times and patience drawn from what the archive saw (admin/simulation/samples.py,
draws.py): the Kaplan–Meier law by hand and against censored exponential data, the reads of a
real SQLite archive, the choice of source, and the draws showing through in a run."""

from __future__ import annotations

import math
import random
import statistics
from pathlib import Path

import pytest

from tierline.admin.simulation import samples as sm
from tierline.admin.simulation import scenario as sc
from tierline.admin.simulation.draws import choose
from tierline.admin.simulation.simulate import simulate
from tierline.queue.history import events as ev
from tierline.queue.history.sqlite_archive import SqliteArchive
from tierline.queue.policy import Policy

START = 1_800_000_000.0 - 1_800_000_000.0 % 86_400


def test_kaplan_meier_by_hand() -> None:
    # Ten each: abandons at 1 and 3, censored at 2 and 3 (a tie counts as at risk at 3), then
    # 10 abandons at 5, where fewer than MIN_AT_RISK (30) still wait: the exponential tail.
    waits = [(1.0, True), (2.0, False), (3.0, True), (3.0, False), (5.0, True)] * 10
    law = sm.kaplan_meier(waits)
    assert law is not None and sm.MIN_AT_RISK == 30
    assert law.times == [1.0, 3.0]
    assert law.cumulative == pytest.approx([0.2, 1 - 0.8 * 20 / 30])
    assert law.tail_start_s == 5.0
    assert law.tail_mean_s == pytest.approx(140 / 30)  # no wait beyond 5 s: the overall estimate
    assert (law.abandons, law.observations) == (30, 50)
    rng = random.Random(1)
    draws = [sm.draw_patience(law, rng) for _ in range(2000)]
    assert {d for d in draws if d < 5.0} == {1.0, 3.0} and min(d for d in draws if d >= 5.0) >= 5.0
    assert sum(d == 1.0 for d in draws) / len(draws) == pytest.approx(0.2, abs=0.03)
    assert sm.kaplan_meier([(4.0, False), (9.0, False)]) is None  # no abandon: no law


def test_censored_waits_give_the_true_patience_not_the_abandons_waits() -> None:
    """Exponential patience 200 s, waits exponential 60 s: abandons alone would say ~46 s."""
    rng = random.Random(7)
    waits = []
    for _ in range(20_000):
        wait, patience = rng.expovariate(1 / 60.0), rng.expovariate(1 / 200.0)
        waits.append((min(wait, patience), patience < wait))
    law = sm.kaplan_meier(waits)
    assert law is not None
    for t in (30.0, 100.0, 200.0):  # where calls still wait, the estimate holds the true law
        below = [f for at, f in zip(law.times, law.cumulative, strict=True) if at <= t]
        assert below[-1] == pytest.approx(1 - math.exp(-t / 200.0), abs=0.02), t
    rng = random.Random(3)
    draws = [sm.draw_patience(law, rng) for _ in range(20_000)]
    # The median of Exp(200) is 200·ln 2 ≈ 138.6; the mean leans on the thin tail: looser.
    assert statistics.median(draws) == pytest.approx(138.6, rel=0.05)
    assert statistics.fmean(draws) == pytest.approx(200.0, rel=0.2)
    abandoned = [w for w, gone in waits if gone]
    assert statistics.fmean(abandoned) < 60.0


async def test_reads_a_real_archive_an_hour_at_a_time(tmp_path: Path) -> None:
    archive = SqliteArchive(tmp_path / "history.db")
    await archive.open()
    try:
        ids = ev.IdSequence(1)
        batch: list[ev.Event] = []
        for n in range(30):  # over 3 hours
            base = {"call_id": f"c{n}", "tier": "standard", "queue": "sales" if n % 3 else "support"}
            at = START + n * 360.0
            batch.append(ev.Answer(id=ids.next(), at=at, wait_s=float(n), threshold_s=20.0, **base))
            batch.append(ev.End(id=ids.next(), at=at + 100, agent="a", handle_s=100.0 + n, **base))
            if n % 5 == 0:
                batch.append(ev.Abandon(id=ids.next(), at=at, wait_s=7.0, short=False, threshold_s=20.0, **base))
        await archive.ingest(batch)
        seen = await sm.from_archive(archive, START, START + 4 * 3600, None)
        assert sorted(seen.handle_s) == [100.0 + n for n in range(30)] and seen.ended == 30
        assert sum(gone for _, gone in seen.waits) == 6 and len(seen.waits) == 36
        sales = await sm.from_archive(archive, START, START + 4 * 3600, "sales")
        assert sorted(sales.handle_s) == [100.0 + n for n in range(30) if n % 3]
        early = await sm.from_archive(archive, START, START + 3600, None)  # [start, end): 10 answers
        assert len(early.handle_s) == 10
    finally:
        await archive.close()


def seen(ended: int, abandons: int, answered: int = 100) -> sm.Seen:
    waits = [(10.0, True)] * abandons + [(float(i % 40), False) for i in range(answered)]
    return sm.Seen(handle_s=[150.0 + i for i in range(ended)], waits=waits, ended=ended)


def test_the_choice_of_source() -> None:
    def pick(mode: str, s: sm.Seen | None, **given: float) -> sm.Sources:
        draws = choose(
            mode,  # type: ignore[arg-type]
            s,
            "w",
            aht_given=given.get("aht"),
            aht_known=170.0,
            aht_known_from="observed",
            patience_given=given.get("patience"),
        )
        return draws.sources

    assert pick("auto", None) == sm.Sources(handle="exponential", handle_from="observed", patience="none")
    full = pick("auto", seen(50, 30))
    assert (full.handle, full.handle_samples, full.patience, full.abandons_seen) == ("archive", 50, "archive", 30)
    assert full.window == "w"
    few = pick("auto", seen(5, 3))  # too few to draw from: the means instead
    assert (few.handle, few.handle_from, few.patience, few.patience_from) == (
        "exponential",
        "observed",
        "exponential",
        "observed",
    )
    given = pick("archive", seen(50, 30), aht=200.0, patience=90.0)
    assert (given.handle, given.handle_from, given.patience, given.patience_from) == (
        "exponential",
        "given",
        "exponential",
        "given",
    )
    off = pick("exponential", seen(50, 30))
    assert (off.handle, off.patience, off.window) == ("exponential", "none", None)
    with pytest.raises(sc.ScenarioError) as refused:
        pick("archive", None)
    assert refused.value.code == "no_history"
    with pytest.raises(sc.ScenarioError) as refused:
        pick("archive", seen(3, 30))
    assert refused.value.code == "no_samples"


def one_agent_day(handle_sample: list[float] | None, law: sm.PatienceLaw | None = None) -> sc.Scenario:
    """One agent, 30 calls an hour, 60 s handle times: an M/G/1 queue at load 0.5."""
    rows = ["start,standard"] + [f"{h:02d}:{q * 15:02d},7.5" for h in range(24) for q in range(4)]
    return sc.scenario(
        sc.parse_arrivals("\n".join(rows), START),
        sc.parse_staffing("start,end,agents\n00:00,24:00,1", START),
        Policy(),
        aht_s=60.0,
        patience_s=None,
        callback_handle_s=None,
        callback_reach=1.0,
        seed=3,
        replications=8,
        warmup_intervals=4,
        handle_sample=handle_sample,
        patience_law=law,
    )


def test_handle_times_drawn_from_a_sample_show_in_the_waits() -> None:
    """Pollaczek–Khinchine: at load 0.5 the mean wait is 30 s with constant 60 s handle times
    (M/D/1) and 60 s with exponential ones (M/M/1): the sample is what the run drew from."""
    constant = simulate(one_agent_day([60.0]))
    asa = constant.totals[2].asa_s
    assert constant.sources.handle == "archive" and constant.sources.handle_samples == 1
    assert asa.low is not None and asa.high is not None and asa.low <= 30.0 <= asa.high < 45.0
    exponential = simulate(one_agent_day(None)).totals[2].asa_s
    assert exponential.low is not None and exponential.high is not None
    assert exponential.low <= 60.0 <= exponential.high


def test_patience_drawn_from_a_law_shows_in_the_abandons() -> None:
    """Every caller gives up after exactly 5 s of waiting: the abandons are the calls that
    would have waited longer than that."""
    law = sm.PatienceLaw(times=[5.0], cumulative=[1.0], tail_start_s=5.0, tail_mean_s=5.0, abandons=1, observations=1)
    outcome = simulate(one_agent_day([60.0], law))
    standard = outcome.totals[2]
    assert outcome.sources.patience == "archive"
    assert standard.abandoned.mean is not None and standard.abandoned.mean > 100
    assert standard.asa_s.mean is not None and standard.asa_s.mean <= 5.0
