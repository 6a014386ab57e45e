"""The naive baseline: Algorithm 2 of Deng et al. (2026, Appendix A.1) written literally, as the
benchmarks' yardstick (and a second, independent reference for the fast-path tests).

    dist  = cdist(x, [y_pos; y_neg])            [N, P+M]   (+1e6 on the masked self-pairs)
    logit = -dist / tau                         (concatenated positive and negative logits)
    A     = sqrt(softmax_row(logit) * softmax_col(logit))
    W+    = A+ * rowsum(A-),  W- = A- * rowsum(A+)
    V     = W+ y_pos - W- y_neg

It materialises several full N x (P+M) matrices (dist, logit, two softmaxes, their product, A, W+, W-),
which is exactly what the fast path in :mod:`drift_core.drift` avoids.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["naive_drift", "exp_floor"]


def naive_drift(x: Tensor, y_pos: Tensor, y_neg: Tensor | None = None, *, tau: float,
                mask_diagonal: bool | None = None) -> Tensor:
    """V [N, D] by the literal Algorithm 2. ``y_neg=None`` means the negatives are ``x`` with the
    self-pairs masked (Algorithm 1)."""
    mask = (y_neg is None) if mask_diagonal is None else mask_diagonal
    if y_neg is None:
        y_neg = x
    n, p = x.shape[0], y_pos.shape[0]
    dist_pos = torch.cdist(x, y_pos)
    dist_neg = torch.cdist(x, y_neg)
    if mask:
        dist_neg = dist_neg + torch.eye(n, y_neg.shape[0], dtype=x.dtype, device=x.device) * 1e6
    logit = torch.cat([-dist_pos / tau, -dist_neg / tau], dim=1)
    a_row = logit.softmax(dim=-1)
    a_col = logit.softmax(dim=-2)
    a = torch.sqrt(a_row * a_col)
    a_pos, a_neg = a[:, :p], a[:, p:]
    w_pos = a_pos * a_neg.sum(dim=1, keepdim=True)
    w_neg = a_neg * a_pos.sum(dim=1, keepdim=True)
    return w_pos @ y_pos - w_neg @ y_neg


def exp_floor(n: int, n_targets: int, *, dtype=torch.float32, device="cpu") -> tuple[Tensor]:
    """The floor's input: one [N, P+M] tensor; the floor itself is ``torch.exp`` of it."""
    return (torch.randn(n, n_targets, dtype=dtype, device=device),)
