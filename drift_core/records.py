"""The record types a run produces: a training batch, what one step reports, one frame to draw.

Plain frozen dataclasses of numbers and arrays, so history, export and probes use them without the
trainer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import Tensor

__all__ = ["Batch", "StepRecord", "Snapshot"]


@dataclass(frozen=True)
class Batch:
    noise: Tensor  # [N, noise_dim]
    positives: Tensor  # [P, 2]


@dataclass(frozen=True)
class StepRecord:
    """What one training step reports.

    ``drift_rms`` holds the RMS of each raw term U_0..U_K (the convergence signal); ``loss`` is
    mean(V^2) of the combined target displacement; ``wall_s`` is cumulative training time.
    ``diverged`` is True when the step found NaN/inf and did not update the model.
    """

    step: int
    loss: float
    drift_rms: tuple[float, ...]
    wall_s: float
    step_s: float
    lr: float
    K: int
    tau: float
    batch_size: int
    diverged: bool = False
    message: str = ""

    def as_row(self) -> dict:
        row = {
            k: getattr(self, k)
            for k in ("step", "loss", "wall_s", "step_s", "lr", "K", "tau", "batch_size", "diverged")
        }
        for k, value in enumerate(self.drift_rms):
            row[f"drift_rms_{k}"] = value
        return row


@dataclass(frozen=True)
class Snapshot:
    """Numpy arrays for drawing one frame (all [n, 2] unless noted).

    generated: model outputs on the fixed display noise; positives: display data; v, v_pos, v_neg:
    the combined field and the base term's attraction/repulsion parts; terms: V_0..V_K; points:
    z^0..z^K; step: the training step this frame shows.
    """

    step: int
    generated: np.ndarray
    positives: np.ndarray
    v: np.ndarray
    v_pos: np.ndarray
    v_neg: np.ndarray
    terms: list[np.ndarray]
    points: list[np.ndarray]
    weights: tuple[float, ...]
