"""One grading pass over customers built in Python (`Population`): the same engine a run over
files uses (`engine.grade`), fed tables made from the lists. For tests and small populations;
a nightly run never builds a Population.
"""

from __future__ import annotations

import datetime as dt

from tierline.tiers.grading.config import GradingSettings
from tierline.tiers.grading.engine import Graded, grade
from tierline.tiers.grading.inputs import Population, load_population


def default_as_of(today: dt.date) -> dt.date:
    """A nightly job grades up to yesterday: today's business is not over yet."""
    return today - dt.timedelta(days=1)


def grade_population(population: Population, settings: GradingSettings, as_of: dt.date) -> Graded:
    """Grade `population`; the result holds its DuckDB connection until `close` (or collection)."""
    return grade(load_population(population, settings), settings, as_of)
