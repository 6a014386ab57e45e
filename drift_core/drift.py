"""The drifting field V of Deng et al. (2026), Algorithm 2, as a pure function of tensors.

Notation (paper Sec. 3.2-3.3 and Appendix A.1):

* ``x``      generated samples, shape [N, D] (the queries).
* ``y_pos``  positives (data), shape [P, D].
* ``y_neg``  negatives, shape [M, D]; ``None`` means "the generated set itself" (M = N) with the
  self-pairs i == i masked, as in Algorithm 1.

For one temperature tau the estimator is (t runs over the P + M targets y_pos ++ y_neg)

    d_it   = ||x_i - y_t||  (+ a large constant on the masked self-pairs)   [N, P+M]  L2, *not* squared
    l_it   = -d_it / tau             (kernel "laplace", the paper's eq. 12)  [N, P+M]  logits, k = exp(l)
           = -d_it^2 / (2 tau^2)     (kernel "gaussian")
    A_it   = sqrt(softmax_t(l)_it * softmax_i(l)_it)                        [N, P+M]  row and column softmax
           = k_it / sqrt(r_i c_t),  k = exp(l), r_i = sum_t k_it, c_t = sum_i k_it
    s+_i   = sum_{j in pos} A_ij,   s-_i = sum_{k in neg} A_ik               [N]
    W+     = A+ * s-[:, None],      W- = A- * s+[:, None]                    [N, P], [N, M]  cross-weighting
    V+     = W+ y_pos - s+ s- x,    V- = W- y_neg - s+ s- x                  [N, D]  (paper eqs. 8-9)
    V      = V+ - V-  =  W+ y_pos - W- y_neg                                 [N, D]  (paper eqs. 10-11)

The row sums of W+ and W- are equal (s+ s-), so the "-x" terms cancel in V and V is exactly
anti-symmetric: swapping positives and negatives negates V, and V = 0 when they are the same set.
Several temperatures give one field each, RMS-normalised and summed (paper A.6, eqs. 23-26).

Both properties hold for either kernel and with the official code's affinity floor
A = max(A, sqrt(floor)) (the floor acts on each entry alone, so swapping the sets still swaps the
columns), whenever the queries x are not among the targets. They fail for ``attraction_only``
(V = V+ alone: swapping gives V-, and V+ != 0 when p = q) and for extra negatives weighted other than 1.

This module is the specification: :func:`drifting_field_reference` is Algorithm 2 written literally
(several N x (P+M) matrices), :func:`drift_weights` its weights for inspection, and
:func:`drifting_field` the same function computed by the fast kernel (:mod:`drift_core._drift_kernel`:
one exp per kernel entry, chunked, memory-bounded; equal to the reference to fp tolerance). Compiling
the kernel is the caller's choice: ``drifting_field(..., compile=True)`` or
:func:`compiled_drifting_field`. On the CPU the kernel's thread count is chosen per call (it gives
up threads while other processes keep the cores busy; :mod:`drift_core.runtime`); while a CUDA graph
is being captured (or inside :func:`drift_core._drift_kernel.graph_safe`) it runs a dense kernel
without host synchronisation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from . import _drift_kernel
from .runtime import adaptive_cpu_threads

__all__ = [
    "DriftField",
    "DriftWeights",
    "drifting_field",
    "drifting_field_reference",
    "drift_weights",
    "compiled_drifting_field",
    "SELF_MASK_DISTANCE",
    "NORMALIZED_MASK_DISTANCE",
    "KERNELS",
    "OFFICIAL_AFFINITY_FLOOR",
]

KERNELS: tuple[str, ...] = ("laplace", "gaussian")
"""The kernels k(x, y) of the field: "laplace" exp(-||x - y|| / tau) (the paper's eq. 12, every official
code path) and "gaussian" exp(-||x - y||^2 / (2 tau^2)) (under which the one-sided mean shift V+ - V-
is tau^2 times a difference of kernel-smoothed scores, ``shared/reference/lookahead.md`` 3.1)."""

OFFICIAL_AFFINITY_FLOOR = 1e-6
"""The floor of the official ``drift_loss``: A = sqrt(max(row * col, 1e-6)), so every pair, masked self
included, has an affinity of at least 1e-3 (``shared/reference/drifting.md``, pitfall 6)."""

SELF_MASK_DISTANCE = 1e6
"""Distance added to masked self-pairs (Algorithm 2 uses 1e6 in raw units)."""

NORMALIZED_MASK_DISTANCE = 100.0
"""Distance added to masked self-pairs when distances are normalised by their batch mean."""


@dataclass(frozen=True)
class DriftField:
    """Result of :func:`drifting_field` (and :func:`drifting_field_reference`).

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


# ---- step 0: defaults and casting (shared by the reference and the fast kernel) -----------------


class _Batch(NamedTuple):
    x: Tensor  # [N, D], fp32 or fp64
    y_pos: Tensor  # [P, D]
    y_neg: Tensor  # [M, D]: the negatives (x itself when None was given), then any extra negatives
    neg_weight: Tensor | None  # [M] weight of each negative column (1, or extra_neg_weight), None if all 1
    mask_diagonal: bool  # mask the pairs (x_i, y_neg_i)


def _prepare(
    x: Tensor,
    y_pos: Tensor,
    y_neg: Tensor | None,
    extra_neg: Tensor | None,
    extra_neg_weight: float,
    mask_diagonal: bool | None,
) -> _Batch:
    """Check shapes, cast to x's float dtype and device (half precision computes in fp32), append the
    extra negatives with their weight, and resolve the self-mask default (on iff ``y_neg`` is None)."""
    if x.ndim != 2 or y_pos.ndim != 2:
        raise ValueError(f"x and y_pos must be [N, D] and [P, D], got {tuple(x.shape)} and {tuple(y_pos.shape)}")
    if y_pos.shape[1] != x.shape[1]:
        raise ValueError(f"dimension mismatch: x has D={x.shape[1]}, y_pos has D={y_pos.shape[1]}")
    if y_pos.shape[0] == 0 or x.shape[0] == 0:
        raise ValueError("x and y_pos must each hold at least one sample")
    if y_neg is not None and (y_neg.ndim != 2 or y_neg.shape[1] != x.shape[1]):
        raise ValueError(f"y_neg must be [M, {x.shape[1]}], got {tuple(y_neg.shape)}")
    if extra_neg is not None and (extra_neg.ndim != 2 or extra_neg.shape[1] != x.shape[1]):
        raise ValueError(f"extra_neg must be [E, {x.shape[1]}], got {tuple(extra_neg.shape)}")
    dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    cast = lambda t: t.to(dtype=dtype, device=x.device)  # noqa: E731
    x = cast(x)
    mask = (y_neg is None) if mask_diagonal is None else bool(mask_diagonal)
    negatives = x if y_neg is None else cast(y_neg)
    if mask and negatives.shape[0] != x.shape[0]:
        raise ValueError("mask_diagonal needs as many negatives as queries (row i of x pairs with row i of y_neg)")
    neg_weight = None
    if extra_neg is not None:
        neg_weight = torch.ones(negatives.shape[0] + extra_neg.shape[0], dtype=dtype, device=x.device)
        neg_weight[negatives.shape[0] :] = float(extra_neg_weight)
        negatives = torch.cat([negatives, cast(extra_neg)])
    return _Batch(x, cast(y_pos), negatives, neg_weight, mask)


def _check_kernel(kernel: str, affinity_floor: float | None) -> None:
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    if affinity_floor is not None and not 0.0 <= affinity_floor < 1.0:
        raise ValueError(f"affinity_floor must be in [0, 1), got {affinity_floor}")


def _as_temperatures(tau: float | Sequence[float]) -> tuple[float, ...]:
    taus = (float(tau),) if isinstance(tau, (int, float)) else tuple(float(t) for t in tau)
    if not taus:
        raise ValueError("at least one temperature is needed")
    for t in taus:
        if not (t > 0 and math.isfinite(t)):
            raise ValueError(f"temperature must be a positive finite number, got {t}")
    return taus


MEAN_SQUARE_FLOOR = 1e-8
"""Normalising divides a field by sqrt(max(mean square, this)), as the official code does: a field
whose RMS is below 1e-4 is not blown up to RMS 1."""


def sum_temperatures(
    terms: list[tuple[Tensor, Tensor]], normalize_drift: bool | None, attraction_only: bool
) -> DriftField:
    """Sum the per-temperature (V+, V-) pairs, each divided by its field's RMS over every entry (floored
    by :data:`MEAN_SQUARE_FLOOR`) when ``normalize_drift`` (None: when there are several temperatures).
    Any leading shape: [N, D] here, [B, N, D] for the batched image field."""
    if normalize_drift is None:
        normalize_drift = len(terms) > 1
    v_pos_total, v_neg_total, raw_rms = 0.0, 0.0, []
    for v_pos, v_neg in terms:
        mean_square = (v_pos if attraction_only else v_pos - v_neg).square().mean()
        raw_rms.append(mean_square.sqrt())
        scale = mean_square.clamp_min(MEAN_SQUARE_FLOOR).rsqrt() if normalize_drift else 1.0
        v_pos_total = v_pos_total + v_pos * scale
        v_neg_total = v_neg_total + v_neg * scale
    if attraction_only:
        v_neg_total = torch.zeros_like(v_pos_total)
    return DriftField(v=v_pos_total - v_neg_total, v_pos=v_pos_total, v_neg=v_neg_total, raw_rms=torch.stack(raw_rms))


# ---- Algorithm 2, literally ----------------------------------------------------------------------


def _weights(
    b: _Batch, tau: float, normalize_distance: bool, affinity_floor: float | None, kernel: str = "laplace"
) -> DriftWeights:
    """Steps 1-6 of Algorithm 2 for one temperature, on full [N, P+M] matrices."""
    n, p = b.x.shape[0], b.y_pos.shape[0]
    col_weight = torch.ones(p + b.y_neg.shape[0], dtype=b.x.dtype, device=b.x.device)  # [P+M]
    if b.neg_weight is not None:
        col_weight[p:] = b.neg_weight
    # 1. distances to every target, positives then negatives (cdist; its exact difference form for
    #    D <= 3, where 2-D points far from the origin would lose digits in the matmul form)
    mode = "donot_use_mm_for_euclid_dist" if b.x.shape[1] <= 3 else "use_mm_for_euclid_dist_if_necessary"
    dist = torch.cdist(b.x, torch.cat([b.y_pos, b.y_neg]), compute_mode=mode)  # [N, P+M]
    #    optionally divided by their (weighted) batch mean, self-pairs included, stop-gradient
    scale = max(float((dist @ col_weight).sum()) / (float(col_weight.sum()) * n), 1e-3) if normalize_distance else 1.0
    dist = dist / scale
    # 2. mask the self-pairs (x_i, y_neg_i)
    if b.mask_diagonal:
        mask = NORMALIZED_MASK_DISTANCE if normalize_distance else SELF_MASK_DISTANCE
        dist[:, p : p + n] += mask * torch.eye(n, dtype=dist.dtype, device=dist.device)
    # 3. logits: log k of the (masked) distances
    logit = -dist / tau if kernel == "laplace" else -dist.square() / (2.0 * tau * tau)
    # 4. A = sqrt(row softmax * column softmax), the product taken in the log domain (it underflows fp32
    #    for far-apart points); the official code's floor is A = sqrt(max(row * col, floor))
    a = (0.5 * (logit.log_softmax(dim=-1) + logit.log_softmax(dim=-2))).exp()
    if affinity_floor is not None:
        a = a.clamp_min(math.sqrt(affinity_floor))
    a = a * col_weight  # extra negatives weighted after the softmaxes
    # 5. split into positives and negatives
    a_pos, a_neg = a[:, :p], a[:, p:]
    # 6. cross-weighting
    w_pos = a_pos * a_neg.sum(1, keepdim=True)
    w_neg = a_neg * a_pos.sum(1, keepdim=True)
    return DriftWeights(w_pos=w_pos, w_neg=w_neg, affinity=a, distance=dist * scale)


def drifting_field_reference(
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
    kernel: str = "laplace",
) -> DriftField:
    """:func:`drifting_field` by Algorithm 2 written literally: the same arguments and result, on full
    N x (P+M) matrices (memory O(N (P+M)); for small batches, tests and benchmarks). Steps 1-6 (the
    weights) are :func:`_weights` just above; step 7 and the sum over temperatures are here."""
    taus = _as_temperatures(tau)
    _check_kernel(kernel, affinity_floor)
    b = _prepare(x, y_pos, y_neg, extra_neg, extra_neg_weight, mask_diagonal)
    terms = []
    for t in taus:
        w = _weights(b, t, normalize_distance, affinity_floor, kernel)  # steps 1-6
        # 7. V+ = W+ y_pos - rowsum(W+) x,  V- = W- y_neg - rowsum(W-) x
        v_pos = w.w_pos @ b.y_pos - w.w_pos.sum(1, keepdim=True) * b.x
        v_neg = w.w_neg @ b.y_neg - w.w_neg.sum(1, keepdim=True) * b.x
        terms.append((v_pos, v_neg))
    return sum_temperatures(terms, normalize_drift, attraction_only)


def drift_weights(
    x: Tensor,
    y_pos: Tensor,
    y_neg: Tensor | None = None,
    *,
    tau: float,
    normalize_distance: bool = False,
    affinity_floor: float | None = None,
    extra_neg: Tensor | None = None,
    extra_neg_weight: float = 1.0,
    mask_diagonal: bool | None = None,
    kernel: str = "laplace",
) -> DriftWeights:
    """Full weight matrices W+ [N, P] and W- [N, M] of one temperature, for inspecting small batches
    (the Inspector's kernel lens): steps 1-6 of :func:`drifting_field_reference`."""
    (t,) = _as_temperatures(tau)
    _check_kernel(kernel, affinity_floor)
    return _weights(
        _prepare(x, y_pos, y_neg, extra_neg, extra_neg_weight, mask_diagonal),
        t,
        normalize_distance,
        affinity_floor,
        kernel,
    )


# ---- the same function, fast ---------------------------------------------------------------------


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
    kernel: str = "laplace",
    block_rows: int | None = None,
    compile: bool = False,
) -> DriftField:
    """Drifting field V_{p,q}(x) = V+_p(x) - V-_q(x) by Algorithm 2 of Deng et al. (2026), computed by
    the fast kernel; equal to :func:`drifting_field_reference` to fp tolerance.

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
        affinity_floor: the official code's floor, A = sqrt(max(row * col, floor))
            (:data:`OFFICIAL_AFFINITY_FLOOR` there); None: no floor (the paper and the toy notebook).
        extra_neg: extra negatives [E, D] (e.g. unconditional reals for CFG, paper A.7), weighted by
            ``extra_neg_weight`` after the softmaxes.
        mask_diagonal: mask pairs (x_i, y_neg_i). Default: True iff ``y_neg`` is None.
        attraction_only: return V = V+ alone (the paper's Table 1 ablation; breaks anti-symmetry).
        kernel: "laplace", k = exp(-d / tau) (paper eq. 12), or "gaussian", k = exp(-d^2 / (2 tau^2)), of
            the distance d (normalised when ``normalize_distance``; self-pairs masked by adding the mask
            constant to d before the kernel is applied, for both).
        block_rows: queries per block for the memory-bounded path (the N x (P+M) kernel is never
            kept; peak extra memory ~ 2 * block_rows * (P+M) floats). Default: automatic (the kernel
            is kept when it fits ``_drift_kernel.KEEP_ELEMENTS``, else cache-sized blocks are recomputed).
        compile: run a dense kernel through ``torch.compile`` (compiled on the first call per shape).
            Cases it does not cover (``block_rows``, affinity floor, extra negatives, very large
            batches) run the eager kernel.

    Returns:
        :class:`DriftField` with v, v_pos, v_neg of shape [N, D] in the dtype of ``x`` (fp32 or
        fp64; half precision inputs are computed in fp32) and ``raw_rms`` of shape [T].
    """
    taus = _as_temperatures(tau)
    _check_kernel(kernel, affinity_floor)
    b = _prepare(x, y_pos, y_neg, extra_neg, extra_neg_weight, mask_diagonal)
    options = dict(
        taus=taus,
        kernel=kernel,
        normalize_distance=bool(normalize_distance),
        affinity_floor=affinity_floor,
        mask_distance=NORMALIZED_MASK_DISTANCE if normalize_distance else SELF_MASK_DISTANCE,
    )
    with _thread_choice(b.x):
        if _drift_kernel.graph_safe_wanted(b.x):
            terms = _drift_kernel.graph_safe_field_terms(*b, **options)
        elif compile and block_rows is None:
            terms = _drift_kernel.compiled_field_terms(*b, **options)
        else:
            terms = _drift_kernel.field_terms(*b, block_rows=block_rows, **options)
    return sum_temperatures(terms, normalize_drift, attraction_only)


def _thread_choice(x: Tensor):
    """The CPU thread count for one kernel call: chosen per call from the other processes' CPU use
    (:func:`drift_core.runtime.adaptive_cpu_threads`) for D <= 3, whose result does not depend on the
    thread count (tested); for larger D the matmul distance form may round differently with it, so
    the configured count is kept and such runs stay bitwise reproducible."""
    return adaptive_cpu_threads(x.device) if x.shape[1] <= 3 else nullcontext()


def compiled_drifting_field(x: Tensor, y_pos: Tensor, y_neg: Tensor | None = None, **options) -> DriftField:
    """``drifting_field(x, y_pos, y_neg, compile=True, **options)``: the same arguments and result."""
    return drifting_field(x, y_pos, y_neg, compile=True, **options)
