"""AppTest of the Playground (pages/playground.py with ui.run_view, ui.controls, ui.classroom): widgets
set by key, ticks driven by repeated ``at.run()``; the counter advances, live changes apply without a
reset, reset fields reset, the URL round-trips, runs pause on divergence and at the budget, and the
classroom tools (scenarios, replay and fork, export, estimator noise, presenter mode) work."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from drift_core.config import ExperimentConfig
from drift_core.scenarios import SCENARIOS
from tests.app_support import (
    SMALL_URL,
    figure_specs,
    lab_of,
    open_page,
    query_value,
    step_counter,
    texts,
    tick,
    titles,
)


@pytest.fixture(autouse=True, scope="module")
def _restore_torch_threads():
    """app.py sets torch to one thread (DRIFT_TORCH_THREADS) for the server; give later test modules
    in this process their thread count back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_home_page_renders_picture_and_links_to_every_page():
    at = open_page(None)
    text = " ".join(m.value for m in at.markdown)
    assert "drifting field" in text and "Lookahead" in text
    assert at.title[0].value == "Drift Lab"
    links = {link.proto.page for link in at.get("page_link")}
    assert {"playground", "compare", "inspector", "sweep", "cifar10"} <= links, links


def test_playground_plays_applies_live_changes_and_resets():
    at = open_page("playground", SMALL_URL)
    assert step_counter(at) == 0
    at.button(key="play").click().run()
    tick(at, 2)
    after_play = step_counter(at)
    assert after_play >= 4  # 2 steps per frame, one frame per run
    run = lab_of(at).runs["playground"]
    # live change: K applies to the same trainer, the counter keeps going
    at.slider(key="K").set_value(3).run()
    assert lab_of(at).runs["playground"] is run and run.trainer.config.drift.K == 3
    # a setting's tooltip is its config field's meaning, the text the CLI's help shows
    assert at.select_slider(key="tau").help == ExperimentConfig.meanings()["tau"]
    tick(at)
    assert step_counter(at) > after_play
    assert len(run.trainer.last_record.drift_rms) == 4  # the step used K = 3 (4 terms)
    assert "Applied live" in texts(at.caption)
    assert query_value(at, "K") == "3"
    # a reset field (seed) rebuilds the run from step 0
    at.number_input(key="seed").set_value(7).run()
    assert lab_of(at).runs["playground"] is not run and step_counter(at) == 0
    assert "Restarted" in texts(at.caption) and "seed" in texts(at.caption)
    # Pause replaces Play while playing; Step and Reset
    at.button(key="play").click().run()
    assert at.button(key="play").label == "Pause"  # one button: Play while paused, Pause while playing
    at.button(key="play").click().run()
    assert not lab_of(at).runs["playground"].playing
    paused_at = step_counter(at)
    at.button(key="step").click().run()
    assert step_counter(at) == paused_at + 1
    at.button(key="reset").click().run()
    assert step_counter(at) == 0


def test_playground_layers_and_the_start_case_pills():
    at = open_page("playground", SMALL_URL)
    at.button_group(key="layers").set_value(["V", "V⁺", "V⁻", "lookahead terms", "field on a grid", "density"]).run()
    assert not at.exception
    assert lab_of(at).view.layers == ("V", "V⁺", "V⁻", "lookahead terms", "field on a grid", "density")
    assert "density" in query_value(at, "layers")  # the layers are part of a shared link
    names = {t.get("name") for t in figure_specs(at)[0]["data"]}
    assert {"V⁺ attraction", "−V⁻ repulsion", "density"} <= names
    at.button_group(key="start_case").set_value("start_far").run()
    cfg = lab_of(at).runs["playground"].config
    assert (cfg.data.dataset, cfg.model.init, cfg.drift.tau, cfg.train.steps) == ("bimodal", "far", 0.1, 300)
    assert cfg.drift.normalize_distance  # the far start case moves only with normalised distances
    assert "cannot see the data" not in texts(at.warning)


def test_far_start_moves_and_a_vanished_kernel_says_why():
    """The sidebar's "Far away" start case trains (its outputs travel towards the data); with raw
    distances it cannot, and the page says why instead of sitting still silently."""
    at = open_page("playground", SMALL_URL)
    at.button_group(key="start_case").set_value("start_far").run()
    run = lab_of(at).runs["playground"]
    before = run.frame(evaluate=True).generated.mean(0)
    run.advance(40)
    after = run.frame(evaluate=True).generated.mean(0)
    assert float(((after - before) ** 2).sum()) > 0.5, (before, after)  # ~4 units away: it travels
    at.sidebar.toggle(key="normalize_distance").set_value(False).run()
    at.button(key="reset").click().run()
    warnings = texts(at.warning)
    assert "cannot see the data" in warnings and "Normalise distances" in warnings
    run = lab_of(at).runs["playground"]
    start = run.frame(evaluate=True).generated.copy()
    run.advance(40)
    assert abs(run.frame(evaluate=True).generated - start).max() < 1e-3  # the reason shown is the real one


def test_url_sets_config_and_reports_bad_values():
    at = open_page(
        "playground",
        {
            **SMALL_URL,
            "dataset": "moons",
            "tau": "0.2",
            "K": "99",
            "lr": "abc",
            "arrow_scale": "7",
            "layers": "V,bogus",
        },
    )
    cfg = lab_of(at).runs["playground"].config
    assert cfg.data.dataset == "moons" and cfg.drift.tau == 0.2 and cfg.drift.K == 8 and cfg.train.lr == 1e-3
    assert at.selectbox(key="dataset").value == "moons"
    assert lab_of(at).view.arrow_scale == 7 and at.slider(key="arrow_scale").value == 7
    notes = texts(at.info)
    assert "K" in notes and "lr" in notes and "bogus" in notes


def test_playground_pauses_on_divergence_and_at_budget():
    at = open_page("playground", {**SMALL_URL, "steps": "6"})
    at.button(key="play").click().run()
    tick(at, 4)
    run = lab_of(at).runs["playground"]
    assert run.step == 6 and not run.playing
    assert "budget" in texts(at.warning)
    at.number_input(key="steps").set_value(100).run()
    with torch.no_grad():  # poison the weights: the run pauses with a plain message
        run.trainer.model.head.weight.fill_(math.nan)
    at.button(key="play").click().run()
    tick(at, 1)
    assert not run.playing and run.trainer.diverged
    assert "diverged" in texts(at.warning)
    at.button(key="reset").click().run()
    assert not lab_of(at).runs["playground"].trainer.diverged and step_counter(at) == 0


def test_two_sessions_have_their_own_runs():
    a = open_page("playground", SMALL_URL)
    b = open_page("playground", SMALL_URL)
    a.button(key="play").click().run()
    tick(a, 2)
    b.run()
    assert step_counter(a) > 0 and step_counter(b) == 0
    assert lab_of(a).runs["playground"] is not lab_of(b).runs["playground"]


def test_guided_scenario_sets_config_restarts_and_explains_while_it_applies():
    at = open_page("playground", SMALL_URL)
    at.button(key="play").click().run()
    tick(at, 1)
    old = lab_of(at).runs["playground"]
    assert old.step > 0
    for key in ("attraction_only", "start_far"):
        at.button_group(key="scenario").set_value(key).run()
        run = lab_of(at).runs["playground"]
        assert run is not old and run.step == 0 and run.config == SCENARIOS[key].config
        assert lab_of(at).config == SCENARIOS[key].config
        assert SCENARIOS[key].watch in texts(at.info)
        old = run
    assert at.selectbox(key="dataset").value == "bimodal" and at.selectbox(key="init").value == "far"
    at.select_slider(key="tau").set_value(0.15).run()  # the setup changed: its text no longer applies
    assert SCENARIOS["start_far"].watch not in texts(at.info)


def test_replay_timeline_and_fork_from_here_make_a_branch():
    at = open_page("playground", {**SMALL_URL, "steps_per_frame": "10", "width": "16", "depth": "1"})
    at.button(key="play").click().run()
    tick(at, 3)
    run = lab_of(at).runs["playground"]
    assert 10 in [s.step for s in run.history.snapshots] and run.step >= 30
    assert not [s for s in at.select_slider if s.key == "timeline"]  # while playing it cannot lag behind the run
    at.button(key="play").click().run()
    at.select_slider(key="timeline").set_value(10).run()
    assert not run.playing
    assert any("replay of step 10" in t for t in titles(at))
    assert step_counter(at) == 10  # the cards show the replayed step, not the live one
    at.slider(key="fork_K").set_value(2)
    at.select_slider(key="fork_batch_size").set_value(128)
    at.button(key="fork").click().run()
    assert not at.exception, at.exception
    assert len(run.branches) == 1
    branch = run.branches[0][1]
    assert branch.step == 10 and branch.config.drift.K == 2 and branch.config.train.batch_size == 128
    assert run.step >= 30  # the original is untouched
    at.button(key="branch_steps").click().run()
    assert branch.step == 60
    assert any(t.startswith("fork @10") for t in titles(at))
    at.select_slider(key="timeline").set_value("live").run()  # back to live: the original picture returns
    assert not any("replay of step" in t for t in titles(at))
    assert step_counter(at) == run.step
    at.button(key="branch_clear").click().run()
    assert run.branches == [] and not any(t.startswith("fork @10") for t in titles(at))


def test_play_returns_from_a_replay_to_the_live_run():
    at = open_page("playground", {**SMALL_URL, "steps_per_frame": "10"})
    at.button(key="play").click().run()
    tick(at, 2)
    at.button(key="play").click().run()
    at.select_slider(key="timeline").set_value(10).run()
    assert any("replay of step 10" in t for t in titles(at))
    at.button(key="play").click().run()
    run = lab_of(at).runs["playground"]
    assert run.playing and not any("replay" in t for t in titles(at)) and step_counter(at) == run.step > 20


def test_export_buttons_are_offered():
    ours = {"GIF", "MP4", "Metrics CSV", "Config JSON"}
    at = open_page("playground", SMALL_URL)
    first = {b.proto.label: b.proto.disabled for b in at.get("download_button") if b.proto.label in ours}
    assert set(first) == ours and first["GIF"] and first["MP4"]  # one kept frame: nothing to animate yet
    at.button(key="play").click().run()
    tick(at, 6)
    labels = {b.proto.label: b.proto.disabled for b in at.get("download_button") if b.proto.label in ours}
    assert labels == {"GIF": False, "MP4": False, "Metrics CSV": False, "Config JSON": False}


def test_estimator_noise_layer_shrinks_with_batch_size():
    at = open_page("playground", SMALL_URL)
    at.button(key="step").click().run()
    at.toggle(key="estimator_noise").set_value(True).run()
    names = [t.get("name", "") for t in figure_specs(at)[0]["data"]]
    assert "V from 8 fresh batches" in names and "spread of V (circle radius)" in names

    def spread() -> float:
        text = next(c.value for c in at.caption if c.value.startswith("Estimator noise at N"))
        return float(re.search(r"is ([0-9.e+-]+) \(median\)", text).group(1))

    at.select_slider(key="batch_size").set_value(16).run()
    small = spread()
    at.select_slider(key="batch_size").set_value(1024).run()
    large = spread()
    assert small > 3 * large


def test_presenter_mode_hides_controls_enlarges_plots_and_survives_url_sync():
    normal = open_page("playground", SMALL_URL)
    normal_height = figure_specs(normal)[0]["layout"]["height"]
    at = open_page("playground", {**SMALL_URL, "presenter": "1"})
    css = " ".join(m.value for m in at.markdown)
    assert 'section[data-testid="stSidebar"]' in css and "display: none" in css
    assert figure_specs(at)[0]["layout"]["height"] == pytest.approx(1.5 * normal_height, abs=1)
    assert query_value(at, "presenter") == "true"  # kept when the page rewrites the URL
    at.button(key="presenter_exit").click().run()
    assert not any("stSidebar" in m.value for m in at.markdown)
    assert figure_specs(at)[0]["layout"]["height"] == normal_height
    assert "presenter" not in at.query_params


def test_predict_then_reveal_trains_the_chosen_steps_and_says_how_close_the_guess_was():
    at = open_page("playground", SMALL_URL)
    at.button(key="play").click().run()
    tick(at, 2)
    at.button(key="predict").click().run()  # pauses and rings one particle
    run = lab_of(at).runs["playground"]
    game = lab_of(at).pages["playground:predict"]
    assert game.active and not run.playing and game.start is not None
    assert "click where the ringed particle will be" in texts(at.markdown)
    names = {t.get("name") for t in figure_specs(at)[0]["data"]}
    assert {"the particle to predict", "V at the start (true length)"} <= names
    game.take_click({"x": game.start[0] + 0.1, "y": game.start[1]})  # what a click on the picture sends
    at.segmented_control(key="predict_horizon").set_value(50).run()
    assert game.guess is None  # a new horizon asks for a new guess
    game.take_click({"x": game.start[0] + 0.1, "y": game.start[1]})
    before = run.step
    at.button(key="predict_reveal").click().run()
    assert run.step == before + 50 and len(game.path) == 51
    truth = run.frame(evaluate=False).generated[game.particle]
    assert game.path[-1] == pytest.approx(tuple(truth), abs=1e-6)  # the path ends where the particle is
    assert "It moved" in texts(at.markdown) and "your guess was" in texts(at.markdown)
    assert {"your guess", "where it went", "where it is now"} <= {t.get("name") for t in figure_specs(at)[0]["data"]}
    particle = game.particle
    at.button(key="predict_new").click().run()
    assert game.path is None and game.rounds == 2 and (game.particle != particle or game.start != tuple(truth))


def test_the_field_without_the_network_dimensions_and_kernels_from_the_sidebar():
    """Issue #15's 2D views: particle mode (alone, and beside the network), data in D dimensions with the
    flattening chart, the Gaussian kernel and the affinity floor as live options."""
    from drift_core.particles import ParticleTrainer

    at = open_page("playground", SMALL_URL)
    at.toggle(key="beside_particles").set_value(True).run()
    run = lab_of(at).runs["playground"]
    assert set(run.trainers) == {"network", "particles"} and isinstance(run.trainers["particles"], ParticleTrainer)
    at.button(key="play").click().run()
    tick(at, 2)
    assert run.trainers["network"].step_count == run.trainers["particles"].step_count > 0  # lock-step
    assert sum(t.startswith("<b>particles</b>") for t in titles(at)) == 1 and len(titles(at)) >= 2
    at.selectbox(key="kernel").set_value("gaussian").run()  # live: both arms take it, no restart
    assert lab_of(at).runs["playground"] is run
    assert {t.config.drift.kernel for t in run.trainers.values()} == {"gaussian"}
    at.select_slider(key="affinity_floor").set_value(1e-6).run()
    assert run.trainers["particles"].config.drift.affinity_floor == 1e-6
    at.segmented_control(key="mode").set_value("particles").run()  # the whole run in particle mode
    alone = lab_of(at).runs["playground"]
    assert list(alone.trainers) == ["run"] and isinstance(alone.trainer, ParticleTrainer)
    at.select_slider(key="particle_step").set_value(2.0).run()
    assert alone.trainer.config.train.particle_step == 2.0
    at.segmented_control(key="mode").set_value("network").run()
    at.select_slider(key="dimension").set_value(8).run()
    eight = lab_of(at).runs["playground"]
    assert eight.config.data.dimension == 8 and "dimension" in texts(at.caption)
    at.button(key="step").click().run()
    assert np.asarray(eight.frame(evaluate=False).generated).shape[1] == 2  # drawn in the data's plane
    at.button(key="flattening").click().run()
    chart = lab_of(at).pages["playground:flattening"].result
    assert chart.dimensions[-1] == 64 and set(chart.neighbours) >= {"raw distances", "normalised distances"}
    assert any("neighbours ÷ data points" in t for t in titles(at))


@pytest.mark.parametrize("page", ["playground", "compare", "inspector"])
def test_a_link_to_uploaded_points_asks_for_the_upload_and_trains_nothing(page):
    """Uploaded points are not part of a link: a link with dataset=custom says so, the page asks for
    the CSV (its sidebar stays usable) and no run is built until points arrive."""
    at = open_page(page, {"dataset": "custom", "tau": "0.2"})
    assert any("upload the CSV again" in i.value for i in at.info), texts(at)
    assert any("Upload a CSV of x,y points" in i.value for i in at.info)
    assert page not in lab_of(at).runs and at.select_slider(key="tau").value == 0.2


def test_the_sidebar_shows_a_links_values_even_off_the_widgets_steps_and_ranges():
    """A link's α = 64 is read as 10 (the link's bound) and τ = 0.04 lies between the slider's steps: the
    sidebar shows exactly what the run trains with, not the nearest value a widget usually offers."""
    at = open_page("playground", {**SMALL_URL, "alpha": "64", "tau": "0.04"})
    config = lab_of(at).config
    assert (config.drift.alpha, config.drift.tau) == (10.0, 0.04)
    assert at.slider(key="alpha").value == 10.0 and at.select_slider(key="tau").value == 0.04
    at.button(key="step").click().run()
    assert not at.exception, at.exception
    assert lab_of(at).runs["playground"].trainer.config.drift.alpha == 10.0
