"""The app's figure builders produce valid Plotly figures (the app skips Plotly's validation at run
time for speed, so it is done here), and the run helpers behave."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from drift_core import palette
from drift_core.config import ExperimentConfig
from drift_core.probes import density_on_grid, field_on_grid, grid_points, inspect_step
from drift_core.run import view_bounds
from drift_core.train import Trainer
from drift_views import figures
from drift_views.figures import resolve_theme
from drift_views.inspector import STAGES

SMALL = ExperimentConfig().with_values(
    {"batch_size": 32, "width": 16, "depth": 1, "method": "lookahead", "K": 2, "dataset": "8gaussians"}
)


def test_segments_are_start_end_gap_triples():
    starts = np.array([[0.0, 0.0], [1.0, 1.0]])
    x, y = figures.segments(starts, np.array([[1.0, 0.0], [0.0, -1.0]]), scale=2.0)
    assert list(x[:2]) == [0.0, 2.0] and np.isnan(x[2]) and list(y[3:5]) == [1.0, -1.0] and np.isnan(y[5])


def test_every_figure_builder_output_validates():
    """Plotly validates every builder's figure once its theme tokens are resolved (the app skips
    validation at run time for speed); the particle figure draws each layer with its palette stroke."""
    trainer = Trainer(SMALL)
    snap = trainer.snapshot(32)
    bounds = view_bounds(snap.positives, snap.generated)
    grid = grid_points(bounds, 5)
    field = field_on_grid(grid, torch.as_tensor(snap.generated), torch.as_tensor(snap.positives), SMALL.drift)
    density = density_on_grid(snap.generated, bounds, 10)
    fig = figures.particle_figure(
        snap,
        bounds,
        figures.LAYERS,
        grid=grid.numpy(),
        grid_field=field.numpy(),
        density=density,
        other=snap.generated + 0.01,
        other_name="baseline",
    )
    traces = {t["name"]: t for t in fig["data"]}
    assert {
        "V",
        "V⁺ attraction",
        "−V⁻ repulsion",
        "V₀",
        "V₁",
        "V₂",
        "V on a grid (longest = one cell)",
        "density",
    } <= set(traces)
    assert traces["V⁺ attraction"]["line"]["dash"] != traces["−V⁻ repulsion"]["line"]["dash"] != "solid"
    assert (
        traces["V"]["line"]["color"] == figures.TEXT
        and traces["generated"]["marker"]["color"] == palette.GENERATED.colour
    )
    ins = inspect_step(trainer)
    built = [
        fig,
        figures.kernel_matrix_figure(ins.w_pos, ins.w_neg),
        figures.lens_figure(ins, 3, bounds),
        figures.curves_figure(
            {"a": ([1, 2, 3], [1.0, 0.1, 0.01]), "b": ([1, 2], [0.5, 0.0])},
            title="t",
            x_title="step",
            y_title="loss",
            log_y=True,
            style=figures.Style(text=19),
        ),
    ]
    built += [figures.stage_figure(ins, stage.draws, bounds) for stage in STAGES]
    for figure in built:
        resolved = resolve_theme(figure)
        assert "theme:" not in json.dumps(resolved, default=str)
        go.Figure(resolved)  # validates
    assert figures.fast_figure(fig).layout.xaxis.range == tuple(bounds[:2])  # fixed axes


def test_presenter_style_makes_text_projector_sized():
    snap = Trainer(SMALL).snapshot(32)
    bounds = view_bounds(snap.positives, snap.generated)
    big = figures.particle_figure(snap, bounds, title="t", style=figures.Style(text=19))["layout"]
    assert big["title"]["font"]["size"] >= 18 and big["xaxis"]["tickfont"]["size"] >= 18
    assert big["legend"]["font"]["size"] >= 18


def test_log_axes_only_where_values_span_decades_and_never_for_zero():
    flat = figures.curves_figure({"a": ([0, 1, 2], [0.5, 0.4, 0.3])}, title="", x_title="step", y_title="e", log_y=True)
    wide = figures.curves_figure(
        {"a": ([0, 1, 2], [1.0, 0.01, 0.0])}, title="", x_title="step", y_title="e", log_y=True
    )
    assert flat["layout"]["yaxis"]["type"] == "linear" and wide["layout"]["yaxis"]["type"] == "log"
    assert list(wide["data"][0]["y"]) == [1.0, 0.01]  # the 0 is left out of the log axis


def test_a_curve_without_points_says_how_to_get_some():
    for series in ({}, {"energy": ([], [])}, {"a": ([0], [float("nan")]), "b": ([1], [0.0])}):
        figure = figures.curves_figure(series, title="", x_title="step", y_title="e", log_y=True)
        assert [a["text"] for a in figure["layout"]["annotations"]] == ["no steps yet: press Play or Step"]
        go.Figure(resolve_theme(figure))  # valid
    drawn = figures.curves_figure({"a": ([0, 1], [0.5, 0.4])}, title="", x_title="step", y_title="e")
    assert drawn["layout"]["annotations"] == []


def test_inspector_arrows_are_scaled_to_be_seen():
    bounds = (-1.0, 1.0, -1.0, 1.0)
    tiny = np.full((10, 2), 1e-6)
    scale = figures.visible_scale(tiny, bounds)
    assert np.sqrt(2) * 1e-6 * scale == pytest.approx(0.05 * 2)  # the median arrow is 5 % of the view


def test_grid_arrows_keep_directions_and_fit_a_cell():
    grid = np.array([[0.0, 0.0], [0.5, 0.0], [0.0, 0.5], [0.5, 0.5]])
    field = np.array([[3.0, 4.0], [0.0, 1.0], [-2.0, 0.0], [0.0, 0.0]])
    drawn = figures.grid_arrows(grid, field)
    lengths = np.sqrt((drawn**2).sum(1))
    assert lengths.max() == pytest.approx(0.45)  # 0.9 x spacing 0.5
    assert np.allclose(drawn[0] / lengths[0], [0.6, 0.8]) and lengths[1] / lengths[0] == pytest.approx(0.2)


def test_view_bounds_are_square_and_hold_the_points():
    pts = np.array([[0.0, 0.0], [2.0, 0.5]])
    x0, x1, y0, y1 = view_bounds(pts)
    assert x1 - x0 == pytest.approx(y1 - y0) and x0 < 0 < 2 < x1 and y0 < 0 < 0.5 < y1


def test_run_cards_and_titles_read_the_run_at_the_step_shown():
    """The cards and view titles are the run's own numbers at the step shown: a single arm's loss and
    drift RMS are its record's at that step, a comparison has one energy card per arm, and a replayed
    step is named in the card's tooltip and the title."""
    from drift_core.run import Run
    from drift_views.words import arm_title, run_cards

    config = ExperimentConfig().with_values(
        {"dataset": "8gaussians", "width": 16, "depth": 1, "noise_dim": 4, "batch_size": 32, "K": 1}
    )
    single = Run.single(config)
    single.advance(3)
    cards = {card.label: card for card in run_cards(single, 2, compare=False, replayed=True, counter_rate="12")}
    assert list(cards) == ["Step", "Loss", "Drift RMS", "Energy", "Sliced W₂", "Modes"]
    record = single.history.record_at(2)
    assert cards["Step"].value == "2" and "replayed" in cards["Step"].help
    assert cards["Loss"].value == f"{record.loss:.2e}" and cards["Drift RMS"].value == f"{record.drift_rms[0]:.2e}"
    assert cards["Modes"].value.endswith("/8")
    title = arm_title(single, next(iter(single.trainers)), 2, compare=False, replay_step=2)
    assert title.startswith("replay of step 2 · ") and "τ = 0.05 · N = 32" in title
    pair = Run.compare(config, False, None)
    pair.advance(2)
    labels = [card.label for card in run_cards(pair, pair.step, compare=True)]
    assert labels == ["Step"] + [f"{name}: energy distance" for name in pair.trainers]
    assert arm_title(pair, "baseline", pair.step, compare=True).startswith("<b>baseline</b> · energy ")


def test_the_inspector_state_walks_the_stages_and_takes_real_steps():
    """InspectorState: next_step takes one real step of the run's trainer and starts at the first
    stage; Play walks the stages and, after the last, takes the next step; a diverged step pauses
    the run with the reason; the cards read the inspected step."""
    from drift_core.run import Run
    from drift_views.inspector import InspectorState, inspection_cards

    config = ExperimentConfig().with_values(
        {"dataset": "8gaussians", "width": 16, "depth": 1, "noise_dim": 4, "batch_size": 24, "K": 2}
    )
    run = Run.single(config)
    state = InspectorState()
    state.next_step(run)
    assert (state.stage, state.run, run.trainer.step_count, state.error) == (0, run, 1, "")
    for stage in range(1, len(STAGES)):
        state.advance_stage(run)
        assert state.stage == stage and run.trainer.step_count == 1
    state.advance_stage(run)
    assert state.stage == 0 and run.trainer.step_count == 2 and state.inspection.step == 2
    cards = {card.label: card.value for card in inspection_cards(state.inspection)}
    assert cards["Step"] == "2" and cards["Lookahead terms"] == "2"
    with torch.no_grad():
        for parameter in run.trainer.model.parameters():
            parameter.fill_(float("nan"))
    state.next_step(run)  # the step that diverges is recorded as such; the next one is refused
    run.playing = True
    state.next_step(run)
    assert "diverged" in state.error and not run.playing


def test_figure_json_sends_arrays_as_typed_binary_from_a_dict_or_a_figure():
    figure = {
        "data": [{"type": "scattergl", "x": np.arange(512, dtype=np.float32), "y": np.zeros(512)}],
        "layout": {"height": 300},
    }
    for given in (figure, figures.fast_figure(figure)):
        spec = json.loads(figures.figure_json(given))
        assert spec["data"][0]["x"]["dtype"] == "f4" and "bdata" in spec["data"][0]["x"]
        assert spec["layout"]["height"] == 300
