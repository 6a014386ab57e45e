"""drift_views.sweep: the heatmap's colour range against seed noise, the cell a click selects, and
the grid a page's choices describe (or why there is none)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from drift_core.config import ExperimentConfig
from drift_views.sweep import (
    build_spec,
    cell_text,
    colour_range,
    fixed_settings,
    grid_size,
    selected_cell,
    thumbnail_caption,
)

finite = st.floats(-1e3, 1e3, allow_nan=False)
spread = st.floats(0, 1e2, allow_nan=False)


@given(arrays(float, (3, 4), elements=finite), arrays(float, (3, 4), elements=spread))
def test_colour_range_holds_every_mean_and_is_no_narrower_than_the_noise(mean, std):
    lo, hi = colour_range(mean, std)
    assert lo <= mean.min() + 1e-9 and hi >= mean.max() - 1e-9
    noise = np.sqrt(np.mean(std**2))
    assert hi - lo >= 4 * noise * (1 - 1e-9)  # ± 2 × the typical spread at least
    assert np.isclose((lo + hi) / 2, (mean.min() + mean.max()) / 2)  # centred on the means' range


def test_colour_range_without_values_or_spread():
    assert colour_range(np.full((2, 2), np.nan), np.full((2, 2), np.nan)) is None
    mean = np.array([[1.0, 3.0]])
    assert colour_range(mean, np.full_like(mean, np.nan)) == (1.0, 3.0)  # one seed: the means' range
    assert cell_text(np.nan, 0.1) == "n/a" and cell_text(0.5, np.nan) == "0.5" and "±" in cell_text(0.5, 0.1)


def test_selected_cell_reads_only_a_cell_of_the_grid():
    spec = build_spec(ExperimentConfig(), "8gaussians", "K", [0, 1], "tau", [0.05, 0.1, 0.2], 10)[0]
    result = SimpleNamespace(spec=spec)
    pick = {"selection": {"points": [{"customdata": [2, 1]}]}}
    assert selected_cell(pick, result) == (2, 1)
    assert selected_cell(SimpleNamespace(selection=SimpleNamespace(points=[{"customdata": [0, 0]}])), result) == (0, 0)
    for junk in (None, {}, {"selection": None}, {"selection": {"points": [{"customdata": [3, 0]}, {"x": 1}]}}, 7):
        assert selected_cell(junk, result) is None


def test_build_spec_says_why_there_is_no_grid():
    base = ExperimentConfig()
    assert build_spec(base, "8gaussians", "K", [], "tau", [0.1], 10) == (None, "Pick at least one value on each axis.")
    spec, reason = build_spec(base, "8gaussians", "K", [0, 2], "tau", [0.1], 10, seeds=(0, 1))
    assert reason == "" and spec.shape == (1, 2) and spec.seeds == (0, 1)
    assert spec.trial_config(0, 1).drift.K == 2 and spec.trial_config(0, 1).data.dataset == "8gaussians"
    spec, reason = build_spec(base, "8gaussians", "K", [0], "tau", [0.1], 0)
    assert spec is None and reason  # the config refuses zero steps, and the page shows why
    sentence = fixed_settings(base, "K", "tau", (3, 4))
    assert "τ =" not in sentence and f"N = {base.train.batch_size}" in sentence and "seeds 3, 4" in sentence
    spec, _ = build_spec(base, "8gaussians", "K", [0, 1, 2], "tau", [0.1, 0.2], 300, seeds=(0, 1))
    assert grid_size(spec) == "2 × 3 = 6 cells × 2 seeds × 300 steps = 3,600 training steps"
    spec, _ = build_spec(base, "8gaussians", "K", [0], "tau", [0.1], 50)
    assert grid_size(spec) == "1 × 1 = 1 cell × 50 steps = 50 training steps"


def test_the_sweep_page_state_swaps_axes_keeps_values_and_runs_a_job_here():
    """SweepPage: choosing the other slot's axis swaps the two; each axis keeps its chosen values; the
    offered values respect the server's limits; start runs the grid (here: in this thread) and
    take_finished adopts its result once."""
    from drift_core.limits import Limits
    from drift_views.sweep import SweepPage, axis_options

    state = SweepPage()
    state.set_values("K", [2, 0])
    state.set_axis("x", "tau")
    assert (state.x_axis, state.y_axis) == ("tau", "K") and state.values["K"] == (0, 2)
    assert state.chosen("K", axis_options("K", Limits(max_k=1))) == [0]
    assert max(axis_options("batch_size", Limits(max_batch=256))) == 256
    base = ExperimentConfig().with_values({"dataset": "8gaussians", "width": 8, "depth": 1, "batch_size": 16})
    spec, problem = build_spec(base, "8gaussians", "K", [0, 1], "tau", [0.1], 2, (0,))
    assert spec is not None, problem
    state.start(spec, here=True)
    assert state.job.done and state.take_finished() and state.result is state.job.result
    assert not state.take_finished()
    assert len(state.result.spec.cells()) == 2
    # the words under each thumbnail: the cell, its metric, and "not run" for a cell without trials
    result = state.result
    caption = thumbnail_caption(result, 0, 0, "energy")
    assert caption.startswith(f"{spec.cell_label(0, 0)} · energy distance: ") and "diverged" not in caption
    assert cell_text(result.mean("energy")[0, 0], result.std("energy")[0, 0]) in caption
    result.trials.pop((0, 1, 0))
    assert thumbnail_caption(result, 0, 1, "energy") == f"{spec.cell_label(0, 1)}: not run"
    # a click on the heatmap selects its cell; anything else keeps the selection
    state.take_selection({"selection": {"points": [{"customdata": [0, 1]}]}})
    assert state.selected == (0, 1)
    for junk in (None, 7, {"selection": {"points": [{"customdata": [5, 5]}]}}):
        state.take_selection(junk)
        assert state.selected == (0, 1)
    # "Open in Playground" hands over the selected cell's settings once
    assert state.take_open_request() is None
    state.selected = (0, 1)
    state.request_open()
    assert state.take_open_request() == spec.trial_config(0, 1) and state.take_open_request() is None


def test_a_metrics_note_and_the_verdicts_confidence():
    """Mode coverage says why it is empty off the mixtures; a verdict is confident only when several
    seeds separate the best cell from every other."""
    from drift_core.sweep import run_sweep
    from drift_views.sweep import metric_note, verdict

    base = ExperimentConfig().with_values({"dataset": "8gaussians", "width": 8, "depth": 1, "batch_size": 16})
    spec, _ = build_spec(base, "moons", "K", [0, 1], "tau", [0.1], 2, (0,))
    moons = run_sweep(spec)
    assert metric_note(moons, "modes").startswith("Mode coverage is defined for the mixture datasets (8gaussians")
    assert metric_note(moons, "energy") == ""
    text, separated = verdict(moons, "energy")
    assert text and not separated  # one seed cannot separate anything
    spec, _ = build_spec(base, "8gaussians", "K", [0, 1], "tau", [0.1], 2, (0,))
    assert metric_note(run_sweep(spec), "modes") == ""
