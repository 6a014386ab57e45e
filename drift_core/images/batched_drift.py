"""Many independent drift problems at once: the drifting field and its lookahead for x [B, N, D] (B
problems, e.g. the spatial locations of a feature map, each with N generated samples of dimension D)
as one batched computation, with the official ``drift_loss``'s shared normalisations.

For problem b (t runs over the P + M targets y_pos[b] ++ y_neg[b]; the negatives are x itself):

    d_bit  = ||x_bi - y_bt||                                              [B, N, P+M]
    s      = max(mean_{b,i,t} d_bit, 1e-3)                                one scalar over ALL problems, self-pairs
                                                                          included (normalize_distance; else s = 1)
    d~     = d / s  + mask on the self-pairs (x_bi, y_neg_bi)             mask 100 (normalised) or 1e6 (raw units)
    A_bit  = sqrt(softmax_t(-d~/tau)_bit * softmax_i(-d~/tau)_bit)        row and column softmax within problem b
    s+_bi  = sum_{t in pos} A_bit,  s-_bi = sum_{t in neg} A_bit
    V_b    = s-_b (A+_b y_pos_b - s+_b x_b)  -  s+_b (A-_b y_neg_b - s-_b x_b)        [B, N, D]
    V      = sum_tau V_tau / RMS(V_tau)                                   RMS over ALL problems, rows and
                                                                          coordinates (normalize_drift)

This is Algorithm 2 of :mod:`drift_core.drift` applied to each problem, except that the distance scale
and the per-temperature RMS are shared by the B problems, as the official code shares them over its
(class x location) problems (``shared/reference/drifting.md`` sections 2.4-2.5). With B = 1 it is
:func:`drift_core.drift.drifting_field` and :func:`batched_lookahead_field` is
:func:`drift_core.lookahead.lookahead_field` (tested to fp tolerance); with K = 0 the lookahead is
exactly the base field (tested bit for bit).

Memory: the dense [B, N, P+M] kernel, a few copies of it per temperature (no chunking: the feature maps
of the image encoders have at most a few dozen locations). Everything runs without gradient.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import Tensor

from ..config import DriftConfig
from ..drift import NORMALIZED_MASK_DISTANCE, SELF_MASK_DISTANCE, DriftField, sum_temperatures
from ..lookahead import LookaheadField, lookahead_options, lookahead_terms

__all__ = [
    "batched_drifting_field",
    "batched_lookahead_field",
    "make_batched_drift_fn",
    "BATCHED_DRIFT_SETTINGS",
    "unsupported_drift_settings",
]

BATCHED_DRIFT_SETTINGS = frozenset(
    {
        "K",
        "tau",
        "multi_temperature",
        "alpha",
        "scaling",
        "weighting",
        "gamma",
        "lam",
        "negatives",
        "normalize_distance",
        "attraction_only",
    }
)
"""The :class:`~drift_core.config.DriftConfig` fields the batched field honours; any other drift setting
(one added later) must keep its default for per-location drift (:func:`unsupported_drift_settings`)."""


def unsupported_drift_settings(drift: DriftConfig) -> list[str]:
    """The drift settings of ``drift`` that differ from their defaults but that the batched field does
    not implement (empty when per-location drift can run these settings)."""
    default = DriftConfig()
    return [
        f.name
        for f in dataclasses.fields(drift)
        if f.name not in BATCHED_DRIFT_SETTINGS and getattr(drift, f.name) != getattr(default, f.name)
    ]


def _temperatures(tau: float | Sequence[float]) -> tuple[float, ...]:
    taus = (float(tau),) if isinstance(tau, (int, float)) else tuple(float(t) for t in tau)
    if not taus or not all(t > 0 and math.isfinite(t) for t in taus):
        raise ValueError(f"temperatures must be positive finite numbers, got {taus}")
    return taus


def batched_drifting_field(
    x: Tensor,
    y_pos: Tensor,
    y_neg: Tensor | None = None,
    *,
    tau: float | Sequence[float],
    normalize_drift: bool | None = None,
    normalize_distance: bool = False,
    mask_diagonal: bool | None = None,
    attraction_only: bool = False,
) -> DriftField:
    """The drifting field of B independent problems (module docstring), one batched computation.

    Args:
        x: generated samples (queries), shape [B, N, D]. Call under no_grad.
        y_pos: positives, shape [B, P, D].
        y_neg: negatives, shape [B, M, D]; ``None``: x itself with the self-pairs masked.
        tau: temperature(s); several give one field each, summed (RMS-normalised when ``normalize_drift``).
        normalize_drift: divide each temperature's field by its RMS over all B problems (default: on
            for several temperatures, as :func:`drift_core.drift.drifting_field`).
        normalize_distance: divide distances by their mean over all B problems (tau dimensionless).
        mask_diagonal: mask the pairs (x_bi, y_neg_bi); default: True iff ``y_neg`` is None.
        attraction_only: V = V+ alone (the ablation).

    Returns:
        :class:`~drift_core.drift.DriftField` with v, v_pos, v_neg of shape [B, N, D] and ``raw_rms`` [T]
        (each temperature's un-normalised RMS over all problems).
    """
    if x.ndim != 3 or y_pos.ndim != 3 or x.shape[0] != y_pos.shape[0] or x.shape[2] != y_pos.shape[2]:
        raise ValueError(f"x and y_pos must be [B, N, D] and [B, P, D], got {tuple(x.shape)} and {tuple(y_pos.shape)}")
    if x.shape[1] == 0 or y_pos.shape[1] == 0:
        raise ValueError("x and y_pos must each hold at least one sample per problem")
    taus = _temperatures(tau)
    dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    x, y_pos = x.to(dtype), y_pos.to(dtype=dtype, device=x.device)
    negatives = x if y_neg is None else y_neg.to(dtype=dtype, device=x.device)
    if negatives.ndim != 3 or negatives.shape[0] != x.shape[0] or negatives.shape[2] != x.shape[2]:
        raise ValueError(f"y_neg must be [{x.shape[0]}, M, {x.shape[2]}], got {tuple(negatives.shape)}")
    mask = (y_neg is None) if mask_diagonal is None else bool(mask_diagonal)
    n, p = x.shape[1], y_pos.shape[1]
    if mask and negatives.shape[1] != n:
        raise ValueError("mask_diagonal needs as many negatives as queries (row i of x pairs with row i of y_neg)")
    targets = torch.cat([y_pos, negatives], 1)  # [B, P+M, D]
    # distances, the matmul form on points centred per problem (distances are translation invariant)
    centre = targets.mean(1, keepdim=True)
    dist = torch.cdist(x - centre, targets - centre)  # [B, N, P+M]
    if normalize_distance:
        dist = dist / dist.mean().clamp_min(1e-3)
    if mask:
        mask_distance = NORMALIZED_MASK_DISTANCE if normalize_distance else SELF_MASK_DISTANCE
        dist[:, :, p : p + n].diagonal(dim1=1, dim2=2).add_(mask_distance)
    terms = []
    for t in taus:
        logit = -dist / t
        a = (0.5 * (logit.log_softmax(dim=-1) + logit.log_softmax(dim=-2))).exp()
        a_pos, a_neg = a[:, :, :p], a[:, :, p:]
        s_pos, s_neg = a_pos.sum(-1, keepdim=True), a_neg.sum(-1, keepdim=True)
        terms.append((s_neg * (a_pos @ y_pos - s_pos * x), s_pos * (a_neg @ negatives - s_neg * x)))
    return sum_temperatures(terms, normalize_drift, attraction_only)


def batched_lookahead_field(
    x: Tensor,
    y_pos: Tensor,
    *,
    K: int,
    tau: float | Sequence[float],
    alpha: float = 1.0,
    scaling: str = "none",
    weighting: str = "uniform",
    gamma: float = 0.5,
    lam: float = 0.5,
    negatives: str = "moved",
    **drift_options,
) -> LookaheadField:
    """:func:`drift_core.lookahead.lookahead_field` for B problems at once: the same terms, steps,
    scalings and weights, each term a :func:`batched_drifting_field`; every RMS (the per-term scaling
    c_k and the reported ``raw_rms``) is taken over all B problems.

    Args:
        x: generated samples [B, N, D]; y_pos: positives [B, P, D].
        K, tau, alpha, scaling, weighting, gamma, lam, negatives: as
            :func:`~drift_core.lookahead.lookahead_field` (K = 0 is the base field, exactly).
        **drift_options: forwarded to :func:`batched_drifting_field`.

    Returns:
        :class:`~drift_core.lookahead.LookaheadField` whose tensors are [B, N, D].
    """
    return lookahead_terms(
        lambda z, fixed: batched_drifting_field(
            z, y_pos, z if fixed is None else fixed, tau=tau, mask_diagonal=True, **drift_options
        ),
        x,
        K=K,
        alpha=alpha,
        scaling=scaling,
        weighting=weighting,
        gamma=gamma,
        lam=lam,
        negatives=negatives,
    )


def make_batched_drift_fn(drift: DriftConfig) -> Callable[[Tensor, Tensor], LookaheadField]:
    """The batched drift callable for a config, the counterpart of :func:`drift_core.train.make_drift_fn`:
    ``fn(x [B, N, D], y_pos [B, P, D]) -> LookaheadField`` with K = drift.K (K = 0 is the baseline).
    Raises ValueError for drift settings it does not implement (:func:`unsupported_drift_settings`)."""
    unsupported = unsupported_drift_settings(drift)
    if unsupported:
        raise ValueError(f"per-location drift does not implement {', '.join(unsupported)}; keep their defaults")
    return partial(
        batched_lookahead_field,
        **lookahead_options(drift),
        tau=drift.temperatures,
        normalize_distance=drift.normalize_distance,
        attraction_only=drift.attraction_only,
    )
