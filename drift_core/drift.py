"""The drifting field V of Deng et al. (2026), Algorithm 2, as a pure function of tensors.

Notation (paper Sec. 3.2-3.3 and Appendix A.1):

* ``x``      generated samples, shape [N, D] (the queries).
* ``y_pos``  positives (data), shape [P, D].
* ``y_neg``  negatives, shape [M, D]; ``None`` means "the generated set itself" (M = N) with the
  self-pairs i == i masked, as in Algorithm 1.

For one temperature tau the estimator is

    l_it   = -||x_i - y_t|| / tau                     (L2 distance, *not* squared; t over pos ++ neg)
    A_it   = sqrt(softmax_t(l)_it * softmax_i(l)_it)  (row softmax over targets, column softmax over x)
           = k_it / sqrt(r_i c_j)                     (closed form; computed here in the log domain)
    s+_i   = sum_{j in pos} A_ij,   s-_i = sum_{k in neg} A_ik
    W+     = A+ * s-[:, None],      W- = A- * s+[:, None]    (cross-weighting)
    V      = W+ y_pos - W- y_neg  =  V+ - V-                 (paper eqs. 8-11)

The row sums of W+ and W- are equal, so the "-x" terms of eq. 8-9 cancel and V is exactly
anti-symmetric: swapping positives and negatives negates V, and V = 0 when they are the same set.

Everything is computed in the log domain (log-sum-exp row and column normalisers), so a small tau
or far-away points give tiny affinities rather than 0/0. For large N the kernel matrix is processed
in row blocks of ``block_rows`` queries (two passes: normalisers, then weights), so peak memory is
O(block_rows * (P + M)) rather than several full N x (P + M) matrices.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

__all__ = ["DriftField", "drifting_field", "drift_weights", "SELF_MASK_DISTANCE"]

SELF_MASK_DISTANCE = 1e6
"""Distance added to masked self-pairs (Algorithm 2 uses 1e6 in raw units)."""

DEFAULT_BLOCK_ELEMENTS = 1 << 24
"""Kernel entries per block (16 Mi floats = 64 MB in fp32) before the blocked path is used."""


@dataclass(frozen=True)
class DriftField:
    """Result of :func:`drifting_field`.

    Attributes:
        v: the drifting field V = V+ - V-, shape [N, D].
        v_pos: attraction part V+ = W+ y_pos - (rowsum W+) x, shape [N, D].
        v_neg: repulsion part  V- = W- y_neg - (rowsum W-) x, shape [N, D]; ``v == v_pos - v_neg``.
        raw_rms: RMS of the un-normalised field per temperature, shape [T]. This is the convergence
            signal: it falls towards the Monte-Carlo noise floor as q approaches p, even when the
            field itself is RMS-normalised.
    """

    v: Tensor
    v_pos: Tensor
    v_neg: Tensor
    raw_rms: Tensor


@dataclass(frozen=True)
class DriftWeights:
    """Cross-weighted kernel weights of one temperature (for inspection of small batches).

    Attributes:
        w_pos: W+ [N, P]; w_neg: W- [N, M]; affinity: A [N, P + M] before cross-weighting;
        distance: the distances used in the logits [N, P + M] (self-pairs masked).
    """

    w_pos: Tensor
    w_neg: Tensor
    affinity: Tensor
    distance: Tensor


def _as_temperatures(tau: float | Sequence[float]) -> tuple[float, ...]:
    taus = (float(tau),) if isinstance(tau, (int, float)) else tuple(float(t) for t in tau)
    if not taus:
        raise ValueError("at least one temperature is needed")
    for t in taus:
        if not (t > 0 and math.isfinite(t)):
            raise ValueError(f"temperature must be a positive finite number, got {t}")
    return taus


def _pairwise_distance(a: Tensor, b: Tensor) -> Tensor:
    """Euclidean distances [A, B]. For D <= 3 the exact difference form (no cancellation for
    points far from the origin); otherwise the matmul form, clamped before the sqrt."""
    if a.shape[1] <= 3:
        return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")
    sq = (a * a).sum(1, keepdim=True) + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return sq.clamp_min_(1e-12).sqrt_()


def _check_inputs(x: Tensor, y_pos: Tensor, y_neg: Tensor | None) -> None:
    if x.ndim != 2 or y_pos.ndim != 2:
        raise ValueError(f"x and y_pos must be [N, D] and [P, D], got {tuple(x.shape)} and {tuple(y_pos.shape)}")
    if y_pos.shape[1] != x.shape[1]:
        raise ValueError(f"dimension mismatch: x has D={x.shape[1]}, y_pos has D={y_pos.shape[1]}")
    if y_pos.shape[0] == 0 or x.shape[0] == 0:
        raise ValueError("x and y_pos must each hold at least one sample")
    if y_neg is not None and (y_neg.ndim != 2 or y_neg.shape[1] != x.shape[1]):
        raise ValueError(f"y_neg must be [M, {x.shape[1]}], got {tuple(y_neg.shape)}")


class _Problem:
    """The inputs of one drift computation, with negatives (and extra negatives) concatenated."""

    def __init__(self, x, y_pos, y_neg, mask_diagonal, extra_neg, extra_neg_weight, normalize_distance):
        _check_inputs(x, y_pos, y_neg)
        dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        self.x = x.to(dtype)
        self.y_pos = y_pos.to(dtype)
        negs = [self.x if y_neg is None else y_neg.to(dtype)]
        self.n_own_neg = negs[0].shape[0]
        self.mask_diagonal = (y_neg is None) if mask_diagonal is None else bool(mask_diagonal)
        if self.mask_diagonal and self.n_own_neg != self.x.shape[0]:
            raise ValueError("mask_diagonal needs as many negatives as queries (row i of x pairs with row i of y_neg)")
        self.neg_weight = None
        if extra_neg is not None:
            if extra_neg.ndim != 2 or extra_neg.shape[1] != x.shape[1]:
                raise ValueError(f"extra_neg must be [E, {x.shape[1]}], got {tuple(extra_neg.shape)}")
            negs.append(extra_neg.to(dtype))
            w = torch.ones(self.n_own_neg + extra_neg.shape[0], dtype=dtype, device=x.device)
            w[self.n_own_neg:] = float(extra_neg_weight)
            self.neg_weight = w
        self.y_neg = torch.cat(negs) if len(negs) > 1 else negs[0]
        self.targets = torch.cat([self.y_pos, self.y_neg])
        self.n_pos = self.y_pos.shape[0]
        self.distance_scale = self._mean_distance() if normalize_distance else 1.0

    def _mean_distance(self) -> float:
        """Weighted mean of all x-to-target distances (self-pairs included), as the official code."""
        n, total, weight = self.x.shape[0], 0.0, 0.0
        rows = max(1, DEFAULT_BLOCK_ELEMENTS // max(1, self.targets.shape[0]))
        w = torch.ones(self.targets.shape[0], dtype=self.x.dtype, device=self.x.device)
        if self.neg_weight is not None:
            w[self.n_pos:] = self.neg_weight
        for start in range(0, n, rows):
            d = _pairwise_distance(self.x[start:start + rows], self.targets)
            total += float((d * w).sum())
            weight += float(w.sum()) * d.shape[0]
        return max(total / weight, 1e-3)

    def distance(self, start: int, stop: int) -> Tensor:
        """Distances [stop-start, P+M] of query rows start..stop, self-pairs masked."""
        d = _pairwise_distance(self.x[start:stop], self.targets)
        if self.distance_scale != 1.0:
            d = d / self.distance_scale
        if self.mask_diagonal:
            rows = torch.arange(start, stop, device=d.device)
            mask = SELF_MASK_DISTANCE if self.distance_scale == 1.0 else 100.0
            d[rows - start, self.n_pos + rows] += mask
        return d


def _log_normalisers(problem: _Problem, tau: float, block_rows: int) -> tuple[Tensor, Tensor]:
    """Row log-sum-exp [N] over targets and column log-sum-exp [P+M] over queries."""
    n = problem.x.shape[0]
    row_lse = torch.empty(n, dtype=problem.x.dtype, device=problem.x.device)
    col_lse = None
    for start in range(0, n, block_rows):
        stop = min(n, start + block_rows)
        logits = problem.distance(start, stop).div_(-tau)
        row_lse[start:stop] = torch.logsumexp(logits, dim=1)
        block_col = torch.logsumexp(logits, dim=0)
        col_lse = block_col if col_lse is None else torch.logaddexp(col_lse, block_col)
    return row_lse, col_lse


def _affinity(problem, tau, start, stop, row_lse, col_lse, affinity_floor) -> Tensor:
    """A = sqrt(row softmax * column softmax) for query rows start..stop, [rows, P+M]."""
    logits = problem.distance(start, stop).div_(-tau)
    log_a = logits.sub_(0.5 * row_lse[start:stop, None]).sub_(0.5 * col_lse[None, :])
    a = log_a.exp_()
    if affinity_floor is not None:
        a.clamp_min_(math.sqrt(affinity_floor))
    if problem.neg_weight is not None:
        a[:, problem.n_pos:] *= problem.neg_weight
    return a


def _single_temperature(problem: _Problem, tau: float, affinity_floor, block_rows) -> tuple[Tensor, Tensor]:
    """Un-normalised (V+, V-) for one temperature, each [N, D]."""
    n = problem.x.shape[0]
    row_lse, col_lse = _log_normalisers(problem, tau, block_rows)
    v_pos = torch.empty_like(problem.x)
    v_neg = torch.empty_like(problem.x)
    p = problem.n_pos
    for start in range(0, n, block_rows):
        stop = min(n, start + block_rows)
        a = _affinity(problem, tau, start, stop, row_lse, col_lse, affinity_floor)
        a_pos, a_neg = a[:, :p], a[:, p:]
        s_pos = a_pos.sum(1, keepdim=True)
        s_neg = a_neg.sum(1, keepdim=True)
        x_block = problem.x[start:stop]
        # W+ = A+ * s-, W- = A- * s+ ; both rows sum to s+ s-, so the x terms are s+ s- x.
        v_pos[start:stop] = s_neg * (a_pos @ problem.y_pos - s_pos * x_block)
        v_neg[start:stop] = s_pos * (a_neg @ problem.y_neg - s_neg * x_block)
    return v_pos, v_neg


def _block_rows(n: int, n_targets: int, block_rows: int | None) -> int:
    if block_rows is not None:
        if block_rows < 1:
            raise ValueError("block_rows must be positive")
        return block_rows
    return max(1, min(n, DEFAULT_BLOCK_ELEMENTS // max(1, n_targets)))


def drifting_field(
    x: Tensor,
    y_pos: Tensor,
    y_neg: Tensor | None = None,
    *,
    tau: float | Sequence[float],
    normalize_drift: bool | None = None,
    normalize_distance: bool = False,
    affinity_floor: float | None = None,
    extra_neg: Tensor | None = None,
    extra_neg_weight: float = 1.0,
    mask_diagonal: bool | None = None,
    attraction_only: bool = False,
    block_rows: int | None = None,
) -> DriftField:
    """Drifting field V_{p,q}(x) = V+_p(x) - V-_q(x) by Algorithm 2 of Deng et al. (2026).

    Args:
        x: generated samples (queries), shape [N, D]. Not differentiated: call under no_grad.
        y_pos: positive (data) samples, shape [P, D].
        y_neg: negative samples, shape [M, D]. ``None``: the negatives are ``x`` itself with the
            self-pairs masked (Algorithm 1, y_neg = x).
        tau: kernel temperature, k(x, y) = exp(-||x - y|| / tau) (paper eq. 12). A sequence of
            temperatures computes one field per temperature and sums them (paper A.6).
        normalize_drift: divide each temperature's field by its RMS over the whole batch before
            summing (paper eqs. 23-26). Default (None): on when several temperatures are given, off
            for one (the official toy notebook's form).
        normalize_distance: divide distances by their batch mean (stop-gradient), so tau is
            dimensionless (paper eqs. 18-22; official code).
        affinity_floor: the official code's floor, A = sqrt(max(row * col, floor)) (1e-6 there).
        extra_neg: extra negatives [E, D] (e.g. unconditional reals for CFG, paper A.7), weighted by
            ``extra_neg_weight`` after the softmaxes.
        mask_diagonal: mask pairs (x_i, y_neg_i). Default: True iff ``y_neg`` is None.
        attraction_only: return V = V+ alone (the paper's Table 1 ablation; breaks anti-symmetry).
        block_rows: queries per block; default chooses blocks of about 16M kernel entries.

    Returns:
        :class:`DriftField` with v, v_pos, v_neg of shape [N, D] in the dtype of ``x`` (fp32 or
        fp64; half precision inputs are computed in fp32) and ``raw_rms`` of shape [T].
    """
    taus = _as_temperatures(tau)
    if normalize_drift is None:
        normalize_drift = len(taus) > 1
    problem = _Problem(x, y_pos, y_neg, mask_diagonal, extra_neg, extra_neg_weight, normalize_distance)
    rows = _block_rows(problem.x.shape[0], problem.targets.shape[0], block_rows)
    v_pos_total = torch.zeros_like(problem.x)
    v_neg_total = torch.zeros_like(problem.x)
    raw_rms = []
    for t in taus:
        v_pos, v_neg = _single_temperature(problem, t, affinity_floor, rows)
        v_raw = v_pos if attraction_only else v_pos - v_neg
        rms = v_raw.square().mean().sqrt()
        raw_rms.append(rms)
        if normalize_drift:
            scale = 1.0 / rms.clamp_min(1e-8)
            v_pos, v_neg = v_pos * scale, v_neg * scale
        v_pos_total += v_pos
        v_neg_total += v_neg
    if attraction_only:
        v_neg_total.zero_()
    return DriftField(
        v=v_pos_total - v_neg_total,
        v_pos=v_pos_total,
        v_neg=v_neg_total,
        raw_rms=torch.stack(raw_rms),
    )


def drift_weights(
    x: Tensor,
    y_pos: Tensor,
    y_neg: Tensor | None = None,
    *,
    tau: float,
    normalize_distance: bool = False,
    affinity_floor: float | None = None,
) -> DriftWeights:
    """Full weight matrices W+ [N, P] and W- [N, M] of one temperature, for inspecting small batches
    (the Inspector's kernel lens). Same equations as :func:`drifting_field`; materialises N x (P+M)."""
    (t,) = _as_temperatures(tau)
    problem = _Problem(x, y_pos, y_neg, None, None, 1.0, normalize_distance)
    n = problem.x.shape[0]
    row_lse, col_lse = _log_normalisers(problem, t, n)
    a = _affinity(problem, t, 0, n, row_lse, col_lse, affinity_floor)
    p = problem.n_pos
    a_pos, a_neg = a[:, :p], a[:, p:]
    return DriftWeights(
        w_pos=a_pos * a_neg.sum(1, keepdim=True),
        w_neg=a_neg * a_pos.sum(1, keepdim=True),
        affinity=a,
        distance=problem.distance(0, n) * problem.distance_scale,
    )
