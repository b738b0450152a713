"""The words the staffing tables share (`tierline forecast`, `--plan`, `simulate`): where an
input came from, the models' names and seconds, from the catalogues (admin/i18n.py)."""

from __future__ import annotations

from tierline.admin.i18n import Words

# where an input came from, and the models, as the catalogue words them (forecast and plan)
SOURCE_KEY: dict[str, str] = {
    "observed": "cli.source_observed",
    "given": "cli.source_given",
    "split": "cli.source_split",
    "archive": "cli.source_archive",
}
MODEL_KEY: dict[str, str] = {"erlang_c": "cli.model_erlang_c", "erlang_a": "cli.model_erlang_a"}


def source_words(source: str, w: Words) -> str:
    return w.t(SOURCE_KEY[source]) if source in SOURCE_KEY else source


def model_words(model: str, w: Words) -> str:
    return w.t(MODEL_KEY[model]) if model in MODEL_KEY else model


def seconds(value: float | None, w: Words) -> str:
    return "-" if value is None else w.t("unit.seconds", s=w.number(value, 1))


def formula_words(name: str, w: Words) -> str:
    """The service's formula by its name; Erlang C's "any" is the catalogue's own words."""
    return w.t("formula." + name) if "formula." + name in w.strings else w.t("cli.fc_formula_any")
