"""The two languages (issue 20 item 4): one catalogue per language with the same keys, no
empty string, the same `{placeholders}` in both, and a catalogue string for every error code
the API answers with (so the pages never show a bare code or English words in Chinese)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tierline.admin.staffing.outlook import Model
from tierline.queue import decisions as d
from tierline.queue import errors
from tierline.queue.redis_store import _ERRORS
from tierline.router.plumbing.gate import _HTTP_CODES
from tierline.tiers.model import Tier

STATIC = Path(__file__).resolve().parents[2] / "admin" / "static"
LANGS = ("en", "zh-CN")
SOURCES = [Path(__file__).resolve().parents[2] / part for part in ("router", "queue", "admin", "tiers")]


def catalogue(lang: str) -> dict[str, str]:
    loaded: dict[str, str] = json.loads((STATIC / f"i18n.{lang}.json").read_text(encoding="utf-8"))
    return loaded


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", text))


def test_the_catalogues_hold_the_same_keys_and_placeholders() -> None:
    en, zh = catalogue("en"), catalogue("zh-CN")
    assert set(en) == set(zh), set(en) ^ set(zh)
    for key in en:
        assert en[key].strip() and zh[key].strip(), key
        assert placeholders(en[key]) == placeholders(zh[key]), key
    # Chinese where Chinese is meant: every string with words has CJK characters, save the few
    # that are the same in both (names, units of a code).
    latin_only = [k for k, v in zh.items() if not re.search(r"[\u4e00-\u9fff]", v)]
    assert latin_only == [], latin_only


def codes_in_the_source() -> set[str]:
    found: set[str] = set()
    pattern = re.compile(r'(?:code=|ApiError\(\d{3}, |Refuse\()"([a-z_]+)"')
    for root in SOURCES:
        for path in root.rglob("*.py"):
            found |= set(pattern.findall(path.read_text(encoding="utf-8")))
    return found


def test_every_error_code_has_words_in_both_languages() -> None:
    codes = codes_in_the_source()
    codes |= {code for code, _ in _HTTP_CODES.values()} | set(_ERRORS)
    codes |= {code for _, code, _ in d.CALL_AT_CHECKS}
    codes |= {
        cls.code for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.EngineError)
    }
    codes |= {"network", "other"}  # the pages' own: the service unreachable; a code with no words
    assert {"not_assigned", "call_at_past", "unauthorized", "overloaded"} <= codes
    for lang in LANGS:
        words = catalogue(lang)
        missing = sorted(code for code in codes if f"error.{code}" not in words)
        assert missing == [], (lang, missing)


def test_every_key_the_pages_name_is_in_the_catalogue() -> None:
    en = catalogue("en")
    named: set[str] = set()
    for page in STATIC.glob("*.html"):
        named |= set(re.findall(r'data-i18n(?:-[a-z-]+)?="([^"]+)"', page.read_text(encoding="utf-8")))
    for script in STATIC.glob("*.js"):
        named |= set(re.findall(r'\bt\("([a-z_]+\.[a-z_.]+)"', script.read_text(encoding="utf-8")))
    for module in (STATIC.parents[1] / "router" / "cli").glob("*.py"):  # keys as literals, in calls or lists
        named |= set(re.findall(r'"((?:cli|dash|wb|tier|unit|formula)\.[a-z_]+)"', module.read_text(encoding="utf-8")))
    assert named and sorted(named - set(en)) == []


def test_the_language_follows_the_environment_as_gettext_reads_it() -> None:
    from tierline.admin.i18n import language

    assert language({}) == "en"
    assert language({"LANG": "zh_CN.UTF-8"}) == "zh-CN"
    assert language({"LANG": "en_US.UTF-8", "LC_ALL": "zh_CN.UTF-8"}) == "zh-CN"
    assert language({"LANG": "zh_CN.UTF-8", "LC_ALL": "C"}) == "en"
    assert language({"LANG": "C.UTF-8", "LANGUAGE": "zh_CN:en"}) == "zh-CN"
    assert language({"LANG": "zh_TW.UTF-8", "LANGUAGE": "en_GB:zh"}) == "en"


def test_the_sla_table_in_chinese_has_no_english_word() -> None:
    """`tierline sla` under LANG=zh_CN: every header, status, unit and line from the Chinese
    catalogue; times in the report's zone in the Chinese form."""
    import io

    from rich.console import Console

    from tierline.admin.i18n import Words
    from tierline.router.cli.sla import render

    row = {
        "queue": "default",
        "tier": "mid",
        "service_level": 0.8,
        "target": 0.85,
        "threshold_s": 20.0,
        "waiting_now": 1,
        "oldest_wait_now_s": 12.5,
        "asa_s": 4.0,
        "offered": 1200,
        "answered": 1100,
        "abandoned": 90,
        "short_abandoned": 7,
        "overflowed": 10,
    }
    report = {
        "window": "15m",
        "generated_at": "2027-01-15T08:00:00Z",
        "timezone": "Asia/Shanghai",
        "formula": "default",
        "rows": [row],
        "callbacks": {"open": 3, "assigned": 1, "overdue": 0, "at_risk": 1, "completed": 5, "service_level": 0.9},
    }
    out = io.StringIO()
    Console(file=out, width=240, color_system=None).print(render(report, Words("zh-CN")))
    text = out.getvalue()
    zh, en = catalogue("zh-CN"), catalogue("en")
    for key in ("dash.col_queue", "dash.col_oldest", "tier.mid", "dash.status_missed", "cli.col_status"):
        assert zh[key] in text, key
    assert "2027年1月15日 16:00:00" in text and "1,200" in text and "12.5 秒" in text
    assert "（其中短时放弃 7）" in text and "已超期 0" in text
    english = {w for k, v in en.items() if zh[k] != v for w in re.findall(r"[A-Za-z]{4,}", v)}
    english -= {"default", "Shanghai"}  # the queue's and the zone's names are data
    assert not [word for word in re.findall(r"[A-Za-z]{4,}", text) if word in english]


def test_the_agent_report_table_in_chinese() -> None:
    import io

    from rich.console import Console

    from tierline.admin.i18n import Words
    from tierline.queue.history import reports
    from tierline.router.cli.report import agent_table

    row = reports.AgentReportRow(
        start="2027-01-15T00:00:00+08:00",
        end="2027-01-16T00:00:00+08:00",
        agent="agent7",
        answered=12,
        ended=12,
        handle_s=3600.0,
        average_handle_s=300.0,
        callbacks_completed=2,
    )
    report = reports.AgentReport(start=row.start, end=row.end, by="day", timezone="Asia/Shanghai", rows=[row])
    zh, en = catalogue("zh-CN"), catalogue("en")
    for given, words in ((Words("zh-CN"), zh), (Words("en"), en)):
        lang = given.lang
        out = io.StringIO()
        Console(file=out, width=240, color_system=None).print(agent_table(report, given))
        text = out.getvalue()
        assert words["cli.col_average_handle"] in text and words["cli.col_cb_completed"] in text, lang
        assert words["unit.seconds"].format(s="300.0") in text, lang
        if lang == "zh-CN":
            assert "Average" not in text and "Agent" not in text


# --- the staffing commands: `tierline forecast`, `tierline forecast --plan`, `tierline simulate` ---

ARRIVALS = "start,vip,mid,standard\n08:00,3,10,30\n08:15,3,12,34\n"


def set_lang(monkeypatch: pytest.MonkeyPatch, lang: str) -> None:
    """LANG alone decides (the other variables gettext reads first are cleared)."""
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", lang)


def english_words_left(text: str, data: set[str]) -> list[str]:
    """Words of the English catalogue (those Chinese words differently) found in `text`, save `data`."""
    en, zh = catalogue("en"), catalogue("zh-CN")
    english = {w for k, v in en.items() if zh[k] != v for w in re.findall(r"[A-Za-z]{4,}", v)}
    english -= data | {"Erlang"}  # the model's name is the same in both
    return [word for word in re.findall(r"[A-Za-z]{4,}", text) if word in english]


def forecast_answer(model: Model) -> dict[str, Any]:
    """`GET /admin/forecast`'s answer as the service builds it: an hour of observed traffic
    (200 calls, 190 ended at 180 s each; 20 abandons after 300 s of waiting in all) through
    admin/forecast.py's plan and the route's view."""
    from tierline.admin import forecast
    from tierline.queue.store import Traffic
    from tierline.router.config import load_settings
    from tierline.router.forecast_api import _view

    now = 1_800_000_000.0
    arrived: dict[Tier, int] = {"vip": 20, "mid": 60, "standard": 120, "blacklisted": 0}
    traffic = Traffic(start=now - 3600, now=now, arrived=arrived, ended=190, handle_sum_s=190 * 180.0)
    waits = forecast.WaitSample(wait_sum_s=20 * 300.0, abandons=20)
    settings = load_settings(None, env={})
    figures = forecast.plan(
        traffic, 3600.0, settings, total=None, per_tier={}, aht_given=None, agents=None, model=model, waits=waits
    )
    answer: dict[str, Any] = msgspec.to_builtins(_view("default", "60m", traffic, figures, None))
    return answer


@pytest.mark.parametrize("model", ["erlang_c", "erlang_a"])
def test_the_forecast_in_both_languages_by_lang(monkeypatch: pytest.MonkeyPatch, model: Model) -> None:
    from rich.console import Console

    from tierline.router.cli.forecast import render

    answer = forecast_answer(model)
    assert answer["notes"] == [] and answer["agents"]  # notes are the service's words: none here
    zh, en = catalogue("zh-CN"), catalogue("en")
    for lang, words in (("zh_CN.UTF-8", zh), ("en_US.UTF-8", en)):
        set_lang(monkeypatch, lang)
        out = io.StringIO()
        render(answer, Console(file=out, width=240, color_system=None))
        text = out.getvalue()
        keys = ["cli.col_pooled_sl", "cli.col_calls_per_h", "cli.col_needed", "cli.fc_stable", "tier.standard"]
        keys += ["cli.col_abandon_share" if model == "erlang_a" else "cli.col_mean_wait", "cli.source_observed"]
        for key in keys:
            assert words[key] in text, (lang, key)
        assert words["unit.seconds"].format(s="180.0") in text, lang  # the AHT observed
        if words is zh:
            assert "已结束 190 通" in text and "坐席：" in text and "输入：窗口 60m" in text
            assert english_words_left(text, {"default"}) == []
        else:
            assert "Forecast for default" in text and "AHT 180.0 s (observed, 190 calls ended)" in text


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    from tierline.router.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_the_day_plan_in_both_languages_by_lang(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`tierline forecast --plan --arrivals` (the plan worked out here, printed by the same
    render as the service's answer)."""
    (tmp_path / "arrivals.csv").write_text(ARRIVALS)
    argv = ("forecast", "--plan", "--arrivals", str(tmp_path / "arrivals.csv"), "--aht-s", "180")
    zh, en = catalogue("zh-CN"), catalogue("en")
    for lang, words in (("zh_CN.UTF-8", zh), ("C", en)):
        set_lang(monkeypatch, lang)
        text = run_cli(capsys, *argv)
        for key in ("cli.col_time", "cli.col_erlangs", "cli.col_agents", "tier.vip", "tier.mid", "cli.plan_source_csv"):
            assert words[key] in text, (lang, key)
        assert words["unit.seconds"].format(s="180.0") in text and "08:15" in text, lang
        if words is zh:
            assert "排班计划" in text and "坐席工时" in text and "note" not in text
            assert english_words_left(text, set()) == []
        else:
            assert "Plan for" in text and "agent-hours" in text


def test_the_simulation_in_both_languages_by_lang(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "arrivals.csv").write_text(ARRIVALS)
    (tmp_path / "staffing.csv").write_text("start,end,agents\n08:00,08:45,8\n")
    argv = ["simulate", "--arrivals", str(tmp_path / "arrivals.csv"), "--staffing", str(tmp_path / "staffing.csv")]
    argv += ["--aht-s", "180", "--patience-s", "120", "--overflow-after-s", "mid=30", "--replications", "2"]
    zh, en = catalogue("zh-CN"), catalogue("en")
    for lang, words in (("zh_CN.UTF-8", zh), ("en_GB.UTF-8", en)):
        set_lang(monkeypatch, lang)
        text = run_cli(capsys, *argv)
        keys = ["cli.col_interval", "cli.col_agents", "dash.col_abandoned", "cli.col_cb_in_time", "cli.col_met"]
        for key in (*keys, "dash.col_overflowed", "tier.standard"):
            assert words[key] in text, (lang, key)
        assert words["cli.col_tier_sl"].format(tier=words["tier.mid"]) in text, lang
        flat = re.sub(r"\s+", "", text)  # the heading wraps at the console's width
        assert re.sub(r"\s+", "", words["formula.default"]) in flat and "08:15" in text, lang
        if words is zh:
            assert "±为95%置信区间" in flat
            assert english_words_left(text, {"default"}) == []
        else:
            assert "95%interval" in flat
