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

Nothing here re-implements the drift: the field comes from ``drift_fn`` (the same callable as in 2D,
:func:`drift_core.train.make_drift_fn`) and the stop-gradient from :func:`drift_core.loss.drifting_loss`.

Multi-process (DDP): ``gather`` concatenates a tensor over all ranks (rank order). The scale S_j and the
field are computed over the *gathered* batch (the full group of generated samples and positives, as
the field's definition needs), and each rank keeps its own rows of V_j for the gradient of its local
x~. Every rank therefore computes the same field as one process with the whole batch would.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from ..lookahead import LookaheadField
from ..loss import drifting_loss

__all__ = ["Gather", "FeatureDriftLoss", "feature_scale", "feature_drift_loss"]


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
    """S = max(mean ||x_i - t|| over targets t in [x; y], self-pairs included) / sqrt(D), 1e-3); x [N, D], y [P, D]."""
    targets = torch.cat([x, y])
    mean_distance = torch.cdist(x, targets).mean()
    return (mean_distance / math.sqrt(x.shape[1])).clamp_min(1e-3)


@dataclass(frozen=True)
class _LocalField:
    v: Tensor  # this process's rows of the gathered field's V
    field: LookaheadField  # the field of the gathered batch


def _gathered_drift(
    drift_fn: Callable[[Tensor, Tensor], LookaheadField], gather: Gather, n_local: int
) -> Callable[[Tensor, Tensor], _LocalField]:
    def fn(x_local: Tensor, y_local: Tensor) -> _LocalField:
        field = drift_fn(gather(x_local), gather(y_local))
        return _LocalField(v=field.v[gather.local_rows(n_local)], field=field)

    return fn


def feature_drift_loss(
    gen_features: Mapping[str, Tensor],
    pos_features: Mapping[str, Tensor],
    drift_fn: Callable[[Tensor, Tensor], LookaheadField],
    *,
    gather: Gather | None = None,
) -> FeatureDriftLoss:
    """Sum over groups of the drifting loss on distance-normalised features (module docstring).

    Args:
        gen_features: {group: [N, D_j]} features of the generated images, with gradient.
        pos_features: {group: [P, D_j]} features of real images (treated as constants).
        drift_fn: ``drift_fn(x [N', D], y [P', D]) -> LookaheadField`` (:func:`drift_core.train.make_drift_fn`;
            K = 0 is the baseline).
        gather: all-gather over processes (default: one process).
    """
    gather = gather or Gather()
    total = None
    group_loss, group_rms, scales, term_rms = {}, {}, {}, []
    for name, fx in gen_features.items():
        fy = pos_features[name].detach().float()
        fx = fx.float()
        with torch.no_grad():
            scale = feature_scale(gather(fx.detach()), gather(fy))
        result = drifting_loss(fx / scale, fy / scale, _gathered_drift(drift_fn, gather, fx.shape[0]))
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
