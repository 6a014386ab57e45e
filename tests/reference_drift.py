"""An independent, slow reference of Algorithm 2 (Deng et al. 2026, Appendix A.1), written as plain
Python loops over float64 numbers: no torch, no vectorisation, no log-domain tricks."""

from __future__ import annotations

import math


def reference_drift(x, y_pos, y_neg=None, tau=0.05, mask_diagonal=None, kernel="laplace", affinity_floor=None):
    """x, y_pos, y_neg: lists of D-tuples. Returns V as a list of D-lists. ``mask_diagonal`` masks the
    pairs (x_i, y_neg_i); default: only when y_neg is None (the negatives are x itself). ``kernel``:
    "laplace" k = exp(-d / tau) or "gaussian" k = exp(-d^2 / (2 tau^2)), of the (masked) distance d.
    ``affinity_floor``: the official code's A = sqrt(max(row * col, floor))."""
    self_neg = y_neg is None if mask_diagonal is None else mask_diagonal
    if y_neg is None:
        y_neg = x
    n, p, m = len(x), len(y_pos), len(y_neg)
    targets = list(y_pos) + list(y_neg)
    logits = [[0.0] * (p + m) for _ in range(n)]
    for i in range(n):
        for t in range(p + m):
            d = math.sqrt(sum((a - b) ** 2 for a, b in zip(x[i], targets[t])))
            if self_neg and t - p == i:
                d += 1e6
            logits[i][t] = -d / tau if kernel == "laplace" else -(d * d) / (2 * tau * tau)
    # softmax over targets (rows) and over x (columns), with max-subtraction
    row = [[0.0] * (p + m) for _ in range(n)]
    for i in range(n):
        mx = max(logits[i])
        e = [math.exp(v - mx) for v in logits[i]]
        s = sum(e)
        row[i] = [v / s for v in e]
    col = [[0.0] * (p + m) for _ in range(n)]
    for t in range(p + m):
        mx = max(logits[i][t] for i in range(n))
        e = [math.exp(logits[i][t] - mx) for i in range(n)]
        s = sum(e)
        for i in range(n):
            col[i][t] = e[i] / s
    v = []
    for i in range(n):
        a = [math.sqrt(max(row[i][t] * col[i][t], affinity_floor or 0.0)) for t in range(p + m)]
        a_pos, a_neg = a[:p], a[p:]
        s_pos, s_neg = sum(a_pos), sum(a_neg)
        out = [0.0] * len(x[i])
        for j in range(p):
            for d in range(len(out)):
                out[d] += a_pos[j] * s_neg * y_pos[j][d]
        for k in range(m):
            for d in range(len(out)):
                out[d] -= a_neg[k] * s_pos * y_neg[k][d]
        v.append(out)
    return v
