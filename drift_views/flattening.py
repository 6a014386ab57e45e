"""The kernel-flattening chart's state: how the kernel's weights flatten as the current particles and
data are embedded in more dimensions (:func:`drift_core.probes.neighbours_by_dimension`), computed on
request for a page's run; :func:`drift_views.figures.flattening_figures` draws it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from drift_core.probes import NeighboursByDimension, neighbours_by_dimension
from drift_core.run import Run

POINTS = 128
"""Particles and data points the chart embeds (evenly spaced over the drawn ones)."""


@dataclass
class FlatteningChart:
    """The last computed chart of a page (None until asked for) and the step it was computed at."""

    result: NeighboursByDimension | None = None
    step: int = -1

    def compute(self, run: Run) -> None:
        """Embed ``run``'s current particles and data in D = 2 … 64 as a run with that D would (its
        rotation and embedding noise, its seed) and measure the kernel's weights there."""
        snap = run.frame(evaluate=False)
        config = run.config
        self.result = neighbours_by_dimension(
            torch.as_tensor(snap.generated),
            torch.as_tensor(snap.positives),
            config.drift,
            embedding_noise=config.data.embedding_noise,
            seed=config.train.seed,
            max_points=POINTS,
        )
        self.step = snap.step
