"""The two languages on the terminal: `tierline` tables in English or Simplified Chinese.

The words are the pages' catalogues (static/i18n.en.json, static/i18n.zh-CN.json, shipped as
package data): one catalogue per language for the dashboard, the workbench and the CLI. The
language is LANGUAGE's first entry, else LC_ALL, LC_MESSAGES or LANG (the first set, as
gettext reads them): Chinese ("zh…") or English (anything else, "C" and "POSIX" included);
router/config.py's `env_language` reads them from the environment.
A key missing from the catalogue shows as ⟦key⟧, never the other language's words.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from importlib import resources
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Lang = Literal["en", "zh-CN"]
LANGS: Final[tuple[Lang, ...]] = ("en", "zh-CN")
_PLACEHOLDER: Final = re.compile(r"\{(\w+)\}")


def language(env: Mapping[str, str]) -> Lang:
    wanted = (env.get("LANGUAGE") or "").split(":")[0] or env.get("LC_ALL") or env.get("LC_MESSAGES") or env.get("LANG")
    return "zh-CN" if (wanted or "").lower().startswith("zh") else "en"


@functools.cache
def catalogue(lang: Lang) -> dict[str, str]:
    text = resources.files("tierline.admin").joinpath("static", f"i18n.{lang}.json").read_text(encoding="utf-8")
    loaded: dict[str, str] = json.loads(text)
    return loaded


class Words:
    """One language's words and its ways with numbers and times."""

    def __init__(self, lang: Lang) -> None:
        self.lang: Lang = lang
        self.strings = catalogue(self.lang)

    def t(self, key: str, **values: object) -> str:
        text = self.strings.get(key)
        if text is None:
            return f"⟦{key}⟧"
        return _PLACEHOLDER.sub(lambda m: str(values[m[1]]) if m[1] in values else m[0], text)

    def number(self, value: float, digits: int | None = None) -> str:
        # Both languages group thousands with commas and use a full stop for decimals.
        return f"{value:,.{digits}f}" if digits is not None else f"{value:,}"

    def percent(self, value: float | None) -> str:
        return "–" if value is None else f"{value * 100:.1f}%"

    def seconds(self, value: float | None) -> str:
        """Under a minute in the catalogue's unit ("4.0 s", "4.0 秒"), else m:ss or h:mm:ss."""
        if value is None:
            return "–"
        if value < 60:
            return self.t("unit.seconds", s=self.number(value, 1))
        minutes, seconds = divmod(round(value), 60)
        if minutes < 60:
            return f"{minutes}:{seconds:02d}"
        hours, minutes = divmod(minutes, 60)
        return f"{hours}:{minutes:02d}:{seconds:02d}"

    def instant(self, iso: str, zone: str) -> str:
        """An RFC 3339 instant as the wall clock of `zone` in this language's form."""
        try:
            tz: tzinfo = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            tz = UTC
        when = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(tz)
        if self.lang == "zh-CN":
            return f"{when.year}年{when.month}月{when.day}日 {when:%H:%M:%S}"
        return f"{when:%Y-%m-%d %H:%M:%S}"
