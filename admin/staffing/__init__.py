"""Staffing maths, pure (no HTTP, no store, no clock): numbers in, numbers out.

Modules, each with its model and its limits in its docstring:
* `erlang_c`: Erlang B/C for one pool — `erlang_b`, `erlang_c`, `service_level`,
  `average_speed_of_answer`.
* `priority`: exact per-tier waits under strict non-preemptive priority (Erlang C per tier) —
  `class_waits(agents, rates_per_s, aht_s, thresholds_s)` -> `ClassWait` per class.
* `erlang_a`: abandonment (M/M/N+M) — `pooled(...)` in closed form, `class_fates(...)` per tier;
  `Fates.level(formula)` is the service level under a queue/service_level formula.
* `patience`: the mean patience observed in a window (maximum-likelihood, censored waits).
* `outlook`: the forecast per tier — `TierDemand`, `Assumptions(model=, patience_s=, formula=,
  short_abandon_s=)`, `outlook(agents, demands, aht_s, assumptions)`,
  `tier_levels(agents, demands, aht_s, assumptions)` (each tier's service level at N, the one
  figure an interval plan compares with the targets), `agents_needed(...)` per tier and
  `staffing(...)` (the smallest N meeting every tier that has calls).

Rates are calls per second, times in seconds, tiers in any order (sorted by rank inside).
Bad input raises ValueError with a readable message.
"""
