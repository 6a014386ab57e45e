"""The kernel-flattening chart's state (drift_views.flattening): computed on request for a run's
current particles, embedded as a run with that D would embed them."""

from __future__ import annotations

import torch

from drift_core.config import ExperimentConfig
from drift_core.probes import neighbours_by_dimension
from drift_core.run import Run
from drift_views.flattening import POINTS, FlatteningChart

SMALL = ExperimentConfig().with_values({"dataset": "8gaussians", "width": 16, "depth": 1, "batch_size": 32})


def test_the_flattening_chart_is_computed_for_the_runs_current_particles():
    run = Run.single(SMALL)
    run.advance(2)
    chart = FlatteningChart()
    assert chart.result is None
    chart.compute(run)
    assert chart.step == run.step == 2 and chart.result.dimensions[0] == 2
    snap = run.frame(evaluate=False)  # the same particles, embedded the same way: the same chart
    again = neighbours_by_dimension(
        torch.as_tensor(snap.generated),
        torch.as_tensor(snap.positives),
        run.config.drift,
        embedding_noise=run.config.data.embedding_noise,
        seed=run.config.train.seed,
        max_points=POINTS,
    )
    assert again.neighbours == chart.result.neighbours and again.overlap == chart.result.overlap


def test_the_charts_caption_names_the_runs_embedding_noise():
    from drift_views.words import flattening_caption

    assert "noise of 0.05 in the extra coordinates" in flattening_caption(0.05)
    assert "noise of 0.2 in" in flattening_caption(0.2)
