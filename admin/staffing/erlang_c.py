"""Erlang B and C for one pool of N agents (M/M/N): P(wait), the pooled service level and ASA.

Pure: numbers in, numbers out. A = λ·AHT Erlangs. P(wait) = Erlang C(N, A) from the Erlang B
recursion B₀ = 1, B_k = A·B_{k−1}/(k + A·B_{k−1}), C = B/(1 − (A/N)(1 − B)), which stays finite
for hundreds of thousands of agents where factorials overflow (FACTS "Staffing arithmetic").
SL(T) = 1 − P(wait)·e^(−(N−A)·T/AHT), ASA = P(wait)·AHT/(N−A). Cost: O(N) per call.
"""

from __future__ import annotations

import math

from tierline.admin.staffing import checks


def erlang_b(agents: int, load: float) -> float:
    """Erlang B blocking probability B(N, A) by the recursion B₀ = 1, B_k = A·B_{k−1}/(k + A·B_{k−1})."""
    checks.agents(agents, minimum=0)
    checks.load(load)
    b = 1.0
    for k in range(1, agents + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(agents: int, load: float) -> float:
    """P(wait) = Erlang C(N, A); 1.0 when N ≤ A (no steady state: every call waits)."""
    checks.agents(agents)
    checks.load(load)
    if agents <= load:
        return 1.0
    return c_from_b(erlang_b(agents, load), agents, load)


def c_from_b(b: float, agents: int, load: float) -> float:
    """Erlang C from Erlang B at the same N and A (N > A)."""
    return b / (1.0 - (load / agents) * (1.0 - b))


def service_level(agents: int, load: float, aht_s: float, threshold_s: float) -> float:
    """Pooled SL(T) = 1 − P(wait)·e^(−(N−A)·T/AHT); 0.0 when N ≤ A."""
    checks.aht(aht_s)
    checks.seconds(threshold_s, "a threshold")
    if agents <= load:
        checks.agents(agents)
        return 0.0
    p_wait = erlang_c(agents, load)
    return 1.0 - p_wait * math.exp(-(agents - load) * threshold_s / aht_s)


def average_speed_of_answer(agents: int, load: float, aht_s: float) -> float:
    """Pooled ASA = P(wait)·AHT/(N−A); infinity when N ≤ A."""
    checks.aht(aht_s)
    if agents <= load:
        checks.agents(agents)
        return math.inf
    return erlang_c(agents, load) * aht_s / (agents - load)
