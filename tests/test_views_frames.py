"""What a frame of the live view shows (drift_views.frames), without Streamlit: a kept step while paused
on the timeline or the live run, one figure per arm with the page's layers, the warning above the
picture and what the transport buttons offer."""

from __future__ import annotations

import torch

from drift_core.config import ExperimentConfig
from drift_core.replay import StateTape
from drift_core.run import Run
from drift_views.display import ViewSettings
from drift_views.frames import (
    Frame,
    Transport,
    arm_figures,
    branch_figures,
    fork_refusal,
    noise_applies,
    noise_note,
    run_warning,
)

SMALL = ExperimentConfig().with_values({"dataset": "8gaussians", "width": 16, "depth": 1, "batch_size": 32, "steps": 3})


def kept_run(config: ExperimentConfig = SMALL, *, compare: bool = False) -> Run:
    """A run with snapshots kept at steps 0, 1 and 2."""
    run = Run.compare(config.with_values({"K": 1})) if compare else Run.single(config)
    run.frames(64, force_snapshot=True)
    for _ in range(2):
        run.advance(1)
        run.frames(64, force_snapshot=True)
    return run


def test_a_frame_replays_a_kept_step_only_while_paused():
    run = kept_run()
    replayed = Frame.of(run, 1)
    assert replayed.replay_step == 1 and replayed.step(run) == 1 and replayed.snaps["run"].step == 1
    assert Frame.of(run, -1).replay_step is None  # nothing kept that early: the live run
    run.playing = True
    live = Frame.of(run, 1)
    assert live.replay_step is None and live.step(run) == run.step == 2 and live.snaps["run"].step == 2


def test_one_figure_per_arm_with_the_pages_layers():
    run = kept_run(compare=True)
    frame = Frame.of(run, None)
    view = ViewSettings(compare_layers=("V",), difference=True)
    built = arm_figures(run, frame, view, compare=True, height=300)
    assert set(built) == set(run.trainers) and all(f["layout"]["height"] == 300 for f in built.values())
    names = {name: {trace.get("name") for trace in figure["data"]} for name, figure in built.items()}
    extra = names["lookahead"] - names["baseline"]
    assert extra, "the lookahead panel draws its difference lines to the baseline's particles"
    plain = arm_figures(run, frame, ViewSettings(compare_layers=("V",), difference=False), compare=True, height=300)
    assert {t.get("name") for t in plain["lookahead"]["data"]} == names["baseline"]
    replay = arm_figures(run, Frame.of(run, 1), view, compare=True, height=300)
    assert all("1" in str(figure["layout"]["title"]) for figure in replay.values())


def test_the_warning_says_why_the_run_paused_and_nothing_when_all_is_well():
    run = kept_run()
    assert run_warning(run) is None
    with torch.no_grad():
        for parameter in run.trainer.model.parameters():
            parameter.fill_(float("nan"))
    run.advance(1)
    warning = run_warning(run)
    assert warning is not None and warning.icon == "pause_circle" and warning.text == run.message != ""


def test_the_transport_offers_step_back_while_diverged_and_play_until_the_budget_is_spent():
    run = kept_run()
    transport = Transport.of(run)
    assert not transport.diverged and transport.budget_steps == 3 and not transport.budget_spent
    run.advance(1)
    assert Transport.of(run).budget_spent and "step budget (3 steps)" in Transport.of(run).play_help
    run.playing = True
    assert not Transport.of(run).budget_spent  # while playing, Pause stays enabled
    run = kept_run(SMALL.with_values({"steps": 100}))
    with torch.no_grad():
        for parameter in run.trainer.model.parameters():
            parameter.fill_(float("nan"))
    run.advance(1)
    transport = Transport.of(run)
    assert transport.diverged and transport.step_back_to is not None and transport.step_back_to < run.step
    assert transport.step_back_to == max(s for s in run.kept_steps() if s < run.step)
    assert transport.step_back_label == f"Step back to step {transport.step_back_to}"


def test_estimator_noise_applies_to_a_single_network_run_on_2d_data():
    assert noise_applies(Run.single(SMALL))
    assert not noise_applies(Run.single(SMALL.with_values({"mode": "particles"})))
    assert not noise_applies(Run.single(SMALL.with_values({"dimension": 8})))
    assert not noise_applies(Run.compare(SMALL.with_values({"K": 1})))


def test_the_estimator_noise_note_adds_its_layer_only_when_asked_and_live():
    run = kept_run()
    figure = arm_figures(run, Frame.of(run, None), ViewSettings(), compare=False, height=300)["run"]
    traces = len(figure["data"])
    assert noise_note(run, Frame.of(run, None), ViewSettings(), figure) is None and len(figure["data"]) == traces
    on = ViewSettings(estimator_noise=True)
    assert noise_note(run, Frame.of(run, 1), on, figure) is None  # a replayed frame: no fresh batches to draw
    note = noise_note(run, Frame.of(run, None), on, figure)
    assert note.startswith(f"Estimator noise at N = {SMALL.train.batch_size}") and len(figure["data"]) > traces


def test_each_branch_is_drawn_small_beside_the_energy_curves_of_all():
    run = kept_run()
    run.branch(2, K=1)
    run.branch(2, tau=0.2)
    run.branches[1][1].advance(1)
    drawn, curves = branch_figures(run, ViewSettings(), 250)
    assert len(drawn) == 2 and all(figure["layout"]["height"] == 250 for figure, _ in drawn)
    titles = [str(figure["layout"]["title"]) for figure, _ in drawn]
    assert run.branches[0][0] in titles[0] and "step 2" in titles[0] and "step 3" in titles[1]
    assert all(message is None for _, message in drawn)
    assert {trace["name"] for trace in curves["data"]} >= {"original", *(name for name, _ in run.branches)}


def test_a_step_whose_state_is_gone_says_where_the_run_can_be_forked():
    run = Run.single(SMALL.with_values({"steps": 1000}))
    run.tapes["run"] = StateTape(max_states=3)  # a short tape: the oldest states go after three
    assert fork_refusal(run, 0).startswith("Step 0's training state is not kept: train a few steps")
    for _ in range(6):
        run.advance(1)
        run.frames(64, force_snapshot=True)
    kept = run.kept_steps()
    assert len(kept) == 3 and kept[-1] == run.step == 6
    assert fork_refusal(run, kept[0]) == fork_refusal(run, run.step) == ""  # kept: Fork is enabled
    for step in (0, 1, kept[0] - 1):
        assert fork_refusal(run, step).endswith(f"pick step {kept[0]} or later on the timeline to fork.")
    assert fork_refusal(run, 9).endswith("pick step 6 or earlier on the timeline.")
