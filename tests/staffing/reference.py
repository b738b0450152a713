"""Independent references for the staffing maths: the priority queue's own Markov chain,
truncated and solved with numpy/scipy (nothing shared with admin/staffing but the model).

For a class k the chain is lumped exactly to (n, q): n every call in the system, q the calls
of classes 1..k waiting. Arrivals of 1..k add to q while every agent is busy, the others only
to n; an agent that finishes takes a 1..k call when q > 0, else a lower one (q unchanged).
A class-k arrival sees (n, q) with the stationary law (PASTA); it waits when n ≥ N, and then
until q + 1 departures at N·μ outrun the higher classes' arrivals behind which it queues:
that passage is solved as a transient chain with scipy's matrix exponential. Abandonment
(patience ~ Exp(θ) for every caller) is optional: waiting callers leave at θ each, and the
passage then also ends, unanswered, at θ.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import expm_multiply, spsolve


def _layout(agents: int, max_extra: int, max_q: int, lowest: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The states (n, q) in order and each n's first index. For the lowest class every waiting
    call is of classes 1..k, so only q = n − N is reachable."""
    n_all = np.arange(agents + max_extra + 1)
    top = np.minimum(np.maximum(n_all - agents, 0), max_q)
    low = top if lowest else np.zeros_like(top)
    counts = top - low + 1
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    n = np.repeat(n_all, counts)
    q = np.concatenate([np.arange(a, b + 1) for a, b in zip(low, top, strict=True)])
    return n, q, np.stack([first, low, top])


def stationary_ahead(
    agents: int, rates: list[float], mu: float, k: int, max_extra: int, max_q: int, theta: float = 0.0
) -> np.ndarray:
    """P(n ≥ N and q = j) for j = 0..max_q, as a class-k arrival finds it."""
    lam_all, lam_k = sum(rates), sum(rates[: k + 1])
    lowest = lam_k >= lam_all
    if lowest:
        max_q = max_extra  # q = n − N: the whole waiting line
    n, q, (first, low, top) = _layout(agents, max_extra, max_q, lowest)
    size = len(n)
    busy = n >= agents
    waiting = np.maximum(n - agents, 0)
    src: list[np.ndarray] = []
    dst: list[np.ndarray] = []
    val: list[np.ndarray] = []

    def add(mask: np.ndarray, n2: np.ndarray, q2: np.ndarray, rate: np.ndarray | float) -> None:
        rate = np.broadcast_to(rate, n.shape)
        ok = mask & (rate > 0) & (n2 >= 0) & (n2 < len(first))
        n2c = np.clip(n2, 0, len(first) - 1)
        ok &= (q2 >= low[n2c]) & (q2 <= top[n2c])
        src.append(np.nonzero(ok)[0])
        dst.append(first[n2c[ok]] + q2[ok] - low[n2c[ok]])
        val.append(rate[ok])

    add(busy, n + 1, q + 1, lam_k)
    add(~busy, n + 1, q * 0, lam_k)
    add(np.ones(size, bool), n + 1, q, lam_all - lam_k)
    served = np.minimum(n, agents) * mu
    add((n > agents) & (q > 0), n - 1, q - 1, served)
    add((n > agents) & (q == 0), n - 1, q, served)
    add((n > 0) & (n <= agents), n - 1, q * 0, served)
    if theta > 0:  # one of the q waiting 1..k calls, or one of the others, gives up
        add(q > 0, n - 1, q - 1, q * theta)
        add(waiting - q > 0, n - 1, q, (waiting - q) * theta)
    gen = sp.csr_matrix((np.concatenate(val), (np.concatenate(src), np.concatenate(dst))), shape=(size, size))
    gen = gen - sp.diags(np.asarray(gen.sum(axis=1)).ravel())
    a = gen.T.tolil()
    a[0, :] = np.ones(size)
    b = np.zeros(size)
    b[0] = 1.0
    pi = spsolve(a.tocsr(), b)
    ahead = np.zeros(max_q + 1)
    np.add.at(ahead, q[busy], pi[busy])
    return ahead


def priority_tail(
    agents: int, rates: list[float], mu: float, k: int, t: float, max_extra: int, max_q: int
) -> tuple[float, float]:
    """(P(wait > 0), P(wait > t)) for a class-k call (k from 0, highest first), by the chain."""
    if sum(rates[: k + 1]) >= sum(rates):
        max_q = max_extra
    ahead = stationary_ahead(agents, rates, mu, k, max_extra, max_q)
    lam_high = sum(rates[:k])
    levels = max_q + 1 + max_extra  # m = calls ahead + the call itself, from 1
    pool = agents * mu
    diag = np.full(levels, -(pool + lam_high))
    diag[-1] = -pool  # the top level cannot rise (its mass is negligible)
    gen = sp.diags([diag, np.full(levels - 1, pool), np.full(levels - 1, lam_high)], [0, -1, 1], format="csc")
    survive = expm_multiply(gen * t, np.ones(levels))  # P(not answered by t | level m)
    return float(ahead.sum()), float(ahead @ survive[: max_q + 1])


def abandonment_fates(
    agents: int, rates: list[float], mu: float, theta: float, k: int, t: float, max_extra: int, max_q: int
) -> tuple[float, float]:
    """Erlang A per class by the chain: (P(answered within t), P(abandon)) for a class-k call.

    The passage: level m = calls ahead + 1; down at N·μ + (m − 1)·θ (an answer, or an abandon
    ahead), from 1 at N·μ the call itself is answered, up at the higher classes' rate, and
    the call abandons at θ from every level. Absorbing states: answered, abandoned.
    """
    if sum(rates[: k + 1]) >= sum(rates):
        max_q = max_extra
    ahead = stationary_ahead(agents, rates, mu, k, max_extra, max_q, theta)
    p_busy = float(ahead.sum())
    lam_high = sum(rates[:k])
    levels = max_q + 1 + max_extra
    pool = agents * mu
    size = levels + 2  # 0..levels-1 are m = 1..levels; then answered, abandoned
    answered, abandoned = levels, levels + 1
    rows, cols, vals = [], [], []
    for i in range(levels):
        down = pool + i * theta
        rows += [i, i]
        cols += [i - 1 if i > 0 else answered, abandoned]
        vals += [down, theta]
        if i + 1 < levels and lam_high > 0:
            rows.append(i)
            cols.append(i + 1)
            vals.append(lam_high)
    gen = sp.csr_matrix((vals, (rows, cols)), shape=(size, size))
    gen = (gen - sp.diags(np.asarray(gen.sum(axis=1)).ravel())).tocsc()
    reward = np.zeros(size)
    reward[answered] = 1.0
    by_t = expm_multiply(gen * t, reward)  # P(answered by t | start)
    # P(abandoned in the end | start): the transient block G x = −θ·1.
    ever = spsolve(gen[:levels, :levels].tocsc(), -theta * np.ones(levels))
    answered_within = (1.0 - p_busy) + float(ahead @ by_t[: max_q + 1])
    return answered_within, float(ahead @ ever[: max_q + 1])
