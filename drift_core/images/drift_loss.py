"""The feature-space drifting loss: one drifting loss per feature group, summed (official code, paper A.6).

For each group j with generated features phi_j(x) [N, D_j] (differentiable) and positive features
phi_j(y) [P, D_j] (no gradient):

    S_j      = max( mean_{i, t} ||phi_j(x_i) - target_t|| / sqrt(D_j), 1e-3 ),  targets = [phi_j(x); phi_j(y)]
               (stop-gradient; the official ``scale_inputs``: after dividing by S_j the mean distance is sqrt(D_j))
    x~, y~   = phi_j(x) / S_j, phi_j(y) / S_j
    V_j      = drift_fn(x~, y~).v       (lookahead_field / drifting_field: multi-temperature, per-tau RMS
                                         normalisation, distances divided by their mean so tau is dimensionless)
    L_j      = drifting_loss(x~, y~, drift_fn) = mean((x~ - sg(x~ + V_j))^2)
    L        = sum_j L_j

A group drifted per location (:func:`drift_core.images.features.drift_groups` with ``per_location``) has
features [N, L, C]: L drift problems of dimension C over the batch, as the official ``drift_loss`` usage.
Then S_j = max(mean over locations l, rows i and targets t of ||phi_j(x_i)_l - target_lt|| / sqrt(C), 1e-3)
is one scale for all locations, V_j comes from ``batched_drift_fn`` on the [L, N, C] problems (one batched
computation, :mod:`drift_core.images.batched_drift`, with the per-temperature RMS over all locations) and
L_j = mean over all locations, rows and channels of (x~ - sg(x~ + V_j))^2, i.e. the official mean over
problems of the per-problem loss.

Nothing here re-implements the drift: the field comes from ``drift_fn`` (the same callable as in 2D,
:func:`drift_core.train.make_drift_fn`) or ``batched_drift_fn`` and the stop-gradient from
:func:`drift_core.loss.drifting_loss`.

Multi-process (DDP): ``gather`` concatenates a tensor over all ranks (rank order). The scale S_j and the
field are computed over the *gathered* batch (the full group of generated samples and positives, as
the field's definition needs), and each rank keeps its own rows of V_j for the gradient of its local
x~. Every rank therefore computes the same field as one process with the whole batch would.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from ..lookahead import LookaheadField
from ..loss import drifting_loss

__all__ = ["Gather", "FeatureDriftLoss", "FeatureDrift", "feature_scale", "feature_drift_loss", "feature_drift"]

DriftFn = Callable[[Tensor, Tensor], LookaheadField]
"""``fn(x, y_pos) -> LookaheadField``: [N, D] problems (``drift_fn``) or [B, N, D] (``batched_drift_fn``)."""


class Gather:
    """Concatenate a tensor over all processes, in rank order. This base class is the one-process
    case (identity); :class:`drift_core.images.train.AllGather` is the torch.distributed one."""

    rank: int = 0
    world_size: int = 1

    def __call__(self, t: Tensor) -> Tensor:
        return t

    def local_rows(self, n: int) -> slice:
        """The rows of a gathered [world * n, ...] tensor that belong to this process."""
        return slice(self.rank * n, (self.rank + 1) * n)


@dataclass(frozen=True)
class FeatureDriftLoss:
    """``loss``: sum of per-group losses (scalar, differentiable); ``group_loss``: {group: float};
    ``group_rms``: {group: mean over temperatures of the base term's raw drift RMS (the convergence
    signal, in normalised feature units)}; ``term_rms``: RMS of each lookahead term U_0..U_K averaged
    over groups; ``scales``: {group: S_j}."""

    loss: Tensor
    group_loss: dict[str, float]
    group_rms: dict[str, float]
    term_rms: tuple[float, ...]
    scales: dict[str, float]


def feature_scale(x: Tensor, y: Tensor) -> Tensor:
    """S = max(mean ||x_i - t|| over targets t in [x; y], self-pairs included) / sqrt(D), 1e-3); x [N, D],
    y [P, D]. For groups drifted per location, x [N, L, C] and y [P, L, C]: the mean over all L
    locations of the per-location distances, divided by sqrt(C) (one scale for the whole map)."""
    if x.ndim == 3:
        xs, ys = x.transpose(0, 1), y.transpose(0, 1)  # [L, N, C], [L, P, C]
        mean_distance = torch.cdist(xs, torch.cat([xs, ys], 1)).mean()
    else:
        mean_distance = torch.cdist(x, torch.cat([x, y])).mean()
    return (mean_distance / math.sqrt(x.shape[-1])).clamp_min(1e-3)


def _drift_precision(t: Tensor) -> Tensor:
    """The drift's dtype: fp32 (half precision and bf16 features are cast up), or fp64 when given fp64."""
    return t if t.dtype == torch.float64 else t.float()


def _layout_drift(x: Tensor, drift_fn: DriftFn, batched_drift_fn: DriftFn | None) -> DriftFn:
    """The drift of a group in x's layout: [N, D] through ``drift_fn``; [N, L, C] through
    ``batched_drift_fn`` on the L problems [L, N, C], its V handed back as [N, L, C] (the field's
    other tensors stay [L, N, C])."""
    if x.ndim == 2:
        return drift_fn
    if batched_drift_fn is None:
        raise ValueError("a group drifted per location ([N, L, C] features) needs batched_drift_fn")

    def fn(x: Tensor, y: Tensor) -> LookaheadField:
        field = batched_drift_fn(x.transpose(0, 1), y.transpose(0, 1))
        return replace(field, v=field.v.transpose(0, 1))

    return fn


@dataclass(frozen=True)
class _LocalField:
    v: Tensor  # this process's rows of the gathered field's V
    field: LookaheadField  # the field of the gathered batch


def _gathered_drift(drift_fn: DriftFn, gather: Gather, n_local: int) -> Callable[[Tensor, Tensor], _LocalField]:
    def fn(x_local: Tensor, y_local: Tensor) -> _LocalField:
        field = drift_fn(gather(x_local), gather(y_local))
        return _LocalField(v=field.v[gather.local_rows(n_local)], field=field)

    return fn


def feature_drift_loss(
    gen_features: Mapping[str, Tensor],
    pos_features: Mapping[str, Tensor],
    drift_fn: DriftFn,
    *,
    batched_drift_fn: DriftFn | None = None,
    gather: Gather | None = None,
) -> FeatureDriftLoss:
    """Sum over groups of the drifting loss on distance-normalised features (module docstring).

    Args:
        gen_features: {group: [N, D_j] or [N, L_j, C_j]} features of the generated images, with gradient.
        pos_features: {group: [P, D_j] or [P, L_j, C_j]} features of real images (treated as constants).
        drift_fn: ``drift_fn(x [N', D], y [P', D]) -> LookaheadField`` (:func:`drift_core.train.make_drift_fn`;
            K = 0 is the baseline).
        batched_drift_fn: ``fn(x [L, N', C], y [L, P', C]) -> LookaheadField`` for the groups drifted per
            location (:func:`drift_core.images.batched_drift.make_batched_drift_fn` of the same config).
        gather: all-gather over processes (default: one process).
    """
    gather = gather or Gather()
    total = None
    group_loss, group_rms, scales, term_rms = {}, {}, {}, []
    for name, fx in gen_features.items():
        fx, fy = _drift_precision(fx), _drift_precision(pos_features[name].detach())
        with torch.no_grad():
            scale = feature_scale(gather(fx.detach()), gather(fy))
        drift = _layout_drift(fx, drift_fn, batched_drift_fn)
        result = drifting_loss(fx / scale, fy / scale, _gathered_drift(drift, gather, fx.shape[0]))
        total = result.loss if total is None else total + result.loss
        field = result.field.field  # the LookaheadField of the gathered batch
        group_loss[name] = float(result.loss.detach())
        group_rms[name] = float(field.base.raw_rms.mean())
        scales[name] = float(scale)
        term_rms.append(field.raw_rms.reshape(-1))
    terms = torch.stack(term_rms).mean(0)
    return FeatureDriftLoss(
        loss=total, group_loss=group_loss, group_rms=group_rms, term_rms=tuple(float(t) for t in terms), scales=scales
    )


@dataclass(frozen=True)
class FeatureDrift:
    """The drift of one feature group, for looking at: ``v`` the training target displacement in the
    features' own units (target = features + v; the shape of the generated features), ``scale`` S_j,
    ``field`` the field in normalised units (as the loss computes it)."""

    v: Tensor
    scale: float
    field: LookaheadField


@torch.no_grad()
def feature_drift(
    gen: Tensor, pos: Tensor, drift_fn: DriftFn, *, batched_drift_fn: DriftFn | None = None
) -> FeatureDrift:
    """The drift V_j of one group exactly as :func:`feature_drift_loss` computes it (one process), returned
    in feature units: v = S_j * drift_fn(x / S_j, y / S_j).v, so that gen + v is the loss's target.

    Args:
        gen: generated features [N, D] or [N, L, C]; pos: real features [P, D] or [P, L, C].
        drift_fn, batched_drift_fn: as :func:`feature_drift_loss`.
    """
    gen, pos = _drift_precision(gen), _drift_precision(pos)
    scale = feature_scale(gen, pos)
    field = _layout_drift(gen, drift_fn, batched_drift_fn)(gen / scale, pos / scale)
    return FeatureDrift(v=field.v * scale, scale=float(scale), field=field)
