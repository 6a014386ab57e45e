"""The drifting loss L = ||x - sg(x + V)||^2 (paper eqs. 4-6). The only place with stop-gradient.

The drift function is a callable ``drift_fn(x_detached, y_pos) -> field`` whose result has a ``v``
attribute of shape [N, D] (a :class:`~drift_core.drift.DriftField` or
:class:`~drift_core.lookahead.LookaheadField`); baseline and lookahead differ only in that callable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["DriftLoss", "drifting_loss"]


@dataclass(frozen=True)
class DriftLoss:
    """``loss``: scalar MSE(x, sg(x + V)) = mean(V^2), differentiable in x with dL/dx = -2 V / numel.
    ``field``: whatever the drift function returned (computed without gradient)."""

    loss: Tensor
    field: Any


def drifting_loss(x: Tensor, y_pos: Tensor, drift_fn: Callable[[Tensor, Tensor], Any]) -> DriftLoss:
    """Compute the drift of ``x`` [N, D] towards ``y_pos`` [P, D] without gradient, then the MSE to
    the frozen target x + V. Drift is computed in fp32 (or fp64 if x is fp64)."""
    with torch.no_grad():
        x_frozen = x.detach()
        if x_frozen.dtype not in (torch.float32, torch.float64):
            x_frozen = x_frozen.float()
        field = drift_fn(x_frozen, y_pos.to(x_frozen.dtype))
        target = (x_frozen + field.v).to(x.dtype)
    return DriftLoss(loss=F.mse_loss(x, target), field=field)
