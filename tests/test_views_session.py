"""What the app's controls do to a browser session (drift_views.session.LabSession), without Streamlit:
a setting within or beyond the server's limits, a scenario, an upload and a checkpoint (good and bad),
a page's run built, kept with live changes or rebuilt, Play / Step / Reset / Step back, the timeline and
a fork. The AppTests and the browser tests drive the same methods through the widgets."""

from __future__ import annotations

import io

import torch

from drift_core.checkpoint import checkpoint_bytes
from drift_core.config import ExperimentConfig
from drift_core.limits import Limits
from drift_core.scenarios import SCENARIOS
from drift_views.session import LabSession

SMALL = ExperimentConfig().with_values({"dataset": "8gaussians", "width": 16, "depth": 1, "batch_size": 32})


def session() -> LabSession:
    return LabSession(config=SMALL)


def test_a_setting_is_applied_or_refused_with_the_reason():
    lab = session()
    lab.set_setting("tau", 0.2, Limits())
    assert lab.config.drift.tau == 0.2 and "setting" not in lab.notices
    lab.set_setting("tau", -1, Limits())
    assert lab.config.drift.tau == 0.2 and lab.notices["setting"].startswith("Setting not applied")
    lab.set_setting("batch_size", 4096, Limits(max_batch=1024))
    assert lab.config.train.batch_size == 32 and "1024" in lab.notices["setting"]
    lab.set_setting("K", 2, Limits())
    assert lab.config.drift.K == 2 and "setting" not in lab.notices


def test_a_scenario_sets_the_config_and_restarts_the_2d_pages():
    lab = session()
    lab.run_for("playground", lab.config)
    key = next(iter(SCENARIOS))
    lab.apply_scenario(key)
    assert lab.config == SCENARIOS[key].config and lab.scenario == key and "playground" not in lab.runs


def test_uploaded_points_become_the_data_and_a_bad_file_changes_nothing():
    lab = session()
    lab.take_points(b"x,y\n0,0\n1,1\n0.5,0.2\n", "mine.csv", Limits())
    assert lab.config.data.dataset == "custom" and lab.points.version == 1 and len(lab.points.points) == 3
    run = lab.run_for("playground", lab.config)
    lab.take_points(b"\x00\xff not points", "bad.csv", Limits())
    assert lab.points.version == 1 and "Could not use bad.csv" in lab.notices["upload"]
    assert lab.run_for("playground", lab.config) is run
    lab.take_points(b"x,y\n2,2\n3,3\n", "more.csv", Limits())
    assert "upload" not in lab.notices and lab.run_for("playground", lab.config) is not run  # new points: new run
    assert "uploaded points" in lab.notices["playground"]


def test_a_checkpoint_replaces_the_pages_run_and_a_bad_one_is_refused():
    lab = session()
    source = session().run_for("playground", SMALL.with_values({"K": 1}))
    source.advance(3)
    data = checkpoint_bytes(source.trainer.state_dict(), kind="toy2d")
    run = lab.run_for("playground", lab.config)
    lab.take_checkpoint("playground", b"garbage", "bad.pt", Limits())
    assert lab.runs["playground"] is run and lab.notices["checkpoint"].startswith("error:Could not load bad.pt")
    lab.take_checkpoint("playground", data, "good.pt", Limits())
    loaded = lab.runs["playground"]
    assert loaded is not run and loaded.step == 3 and lab.config.drift.K == 1
    assert lab.notices["checkpoint"].startswith("Loaded good.pt")
    assert lab.run_for("playground", lab.config) is loaded  # the session's settings are the checkpoint's
    torch.testing.assert_close(
        next(loaded.trainer.model.parameters()), next(source.trainer.model.parameters()), rtol=0, atol=0
    )


def test_a_pages_run_is_kept_with_live_changes_and_rebuilt_when_it_must_be():
    lab = session()
    run = lab.run_for("playground", lab.config)
    assert lab.run_for("playground", lab.config.with_values({"tau": 0.1})) is run
    assert run.config.drift.tau == 0.1 and "Applied live" in lab.notices["playground"]
    rebuilt = lab.run_for("playground", lab.config.with_values({"width": 8}))
    assert rebuilt is not run and "Restarted the run" in lab.notices["playground"]
    lab.set_view(beside_particles=True)
    both = lab.run_for("playground", lab.config.with_values({"width": 8}))
    assert both is not rebuilt and "particles" in both.trainers
    pair = lab.run_for("compare", lab.config, fairness=True)
    assert len(pair.trainers) == 3 and lab.run_for("compare", lab.config, fairness=False) is not pair


def test_transport_play_step_reset_and_the_timeline():
    lab = session()
    run = lab.run_for("playground", lab.config)
    lab.play_pause("playground")
    assert run.playing
    lab.play_pause("playground")
    assert not run.playing
    lab.step("playground")
    lab.step("playground")
    assert run.step == 2
    assert lab.timeline("playground") == ([], None)  # one kept frame: nothing to scrub
    run.frames(64, force_snapshot=True)
    assert lab.timeline("playground") == ([0, 2], None)
    lab.play_pause("playground")
    assert lab.timeline("playground") == ([], None)  # while playing the timeline only says how to scrub
    lab.choose_replay("playground", 0)
    assert lab.timeline("playground") == ([0, 2], 0)
    assert lab.replay["playground"] == 0 and not run.playing  # scrubbing back pauses
    lab.play_pause("playground")
    assert lab.replay["playground"] is None and run.playing  # Play returns to the live run
    lab.choose_replay("playground", "live")
    assert lab.replay["playground"] is None
    lab.reset("playground")
    assert "playground" not in lab.runs and lab.run_for("playground", lab.config).step == 0


def test_step_back_after_a_divergence_and_forks():
    lab = session()
    run = lab.run_for("playground", lab.config.with_values({"lr": 1.0}))
    lab.step_back("playground")
    assert "playground" in lab.notices  # nothing kept before step 0: the reason, not an error
    run.advance(2)
    run.frames(64, force_snapshot=True)
    with torch.no_grad():
        for parameter in run.trainer.model.parameters():
            parameter.fill_(float("nan"))
    run.advance(1)
    assert run.diverged
    lab.step_back("playground")
    assert not run.diverged and run.step < 3 and f"Stepped back to step {run.step}" in lab.notices["playground"]
    lab.fork("playground", run.step, {"K": 1, "tau": 0.1, "batch_size": 16})
    assert len(run.branches) == 1
    pair = lab.run_for("compare", lab.config.with_values({"K": 1, "lr": 1e-3}))
    pair.advance(2)
    pair.frames(64, force_snapshot=True)
    lab.fork("compare", 2, {"K": 2, "tau": 0.2, "batch_size": 16})
    forked = lab.runs["compare"]
    assert forked is not pair and forked.step == 2 and lab.config.drift.K == 2 and lab.config.drift.tau == 0.2
    lab.fork("compare", 1, {"K": 2, "tau": 0.2, "batch_size": 16})
    assert lab.notices["compare"].startswith("Cannot fork from step 1")


def test_the_fork_controls_choices_are_kept_until_the_run_they_fork_is_replaced():
    lab = session()
    lab.config = lab.config.with_values({"K": 0, "tau": 0.5})
    run = lab.run_for("playground", lab.config)
    assert lab.fork_settings("playground") == {"K": 0, "tau": 0.5, "batch_size": 32}  # the run's own settings
    lab.choose_fork("playground", "K", 2)
    lab.choose_fork("playground", "batch_size", 16)
    run.advance(2)
    run.frames(64, force_snapshot=True)
    lab.fork("playground", 2)  # what the Fork button does: the chosen settings
    ((_, branch),) = run.branches
    assert branch.base_config.drift.K == 2 and branch.base_config.train.batch_size == 16
    assert branch.base_config.drift.tau == 0.5
    assert lab.fork_settings("playground")["K"] == 2  # kept for the next branch
    lab.reset("playground")
    lab.run_for("playground", lab.config)
    assert lab.fork_settings("playground") == {"K": 0, "tau": 0.5, "batch_size": 32}  # a new run: its settings


def test_take_points_reads_bytes_of_any_kind_without_raising():
    lab = session()
    for data in (b"", io.BytesIO(b"1,2").getvalue(), bytes(range(256)), "x,y\n∞,1\n".encode()):
        lab.take_points(data, "f.csv", Limits())
    assert lab.points is None and "upload" in lab.notices


def test_the_images_pair_is_kept_with_live_changes_and_rebuilt_with_a_note(tmp_path, monkeypatch):
    from drift_views.images import ImagesPage

    monkeypatch.setenv("DRIFT_DATA_DIR", str(tmp_path))
    lab, config = session(), ImagesPage().config.with_values({"batch_size": 8, "positives": 8})
    pair, note = lab.images_run(config)
    assert note == "" and lab.runs["images"] is pair and set(pair.trainers) == {"baseline", "lookahead"}
    kept, note = lab.images_run(config.with_values({"steps": 50}))
    assert kept is pair and note == "" and pair.base_config.train.steps == 50
    rebuilt, note = lab.images_run(config.with_values({"K": 2}))
    assert rebuilt is not pair and "restarted" in note and rebuilt.trainers["lookahead"].config.drift.K == 2
    again, note = lab.images_run(config.with_values({"K": 2}), reset=True)
    assert again is not rebuilt and note == "restarted"


def test_a_link_is_read_once_and_later_links_only_switch_presenter_mode():
    lab = LabSession()
    lab.open_link(
        {"tau": "0.2", "batch_size": "999999", "layers": "V,nope", "K": "x", "junk": "1"}, Limits(max_batch=1024)
    )
    assert lab.config.drift.tau == 0.2 and lab.config.train.batch_size == 1024 and lab.view.layers == ("V",)
    notice = lab.notices["link"]
    assert notice.startswith("Link settings adjusted: ") and "batch_size" in notice and "layers" in notice
    lab.open_link({"tau": "0.5", "presenter": "yes"}, Limits())
    assert lab.config.drift.tau == 0.2 and lab.view.presenter  # the settings are the session's now
    custom = LabSession()
    custom.open_link({"dataset": "custom"}, Limits())
    assert "upload the CSV again" in custom.notices["link"]


def test_play_right_after_reset_starts_the_fresh_run_playing():
    """Clicks faster than a rerun reach the session together, in click order: Reset (no run now),
    then Play, whose effect is kept for the run the page builds next; Play then Reset stays reset."""
    lab = session()
    lab.run_for("playground", lab.config).advance(3)
    lab.reset("playground")
    lab.play_pause("playground")
    fresh = lab.run_for("playground", lab.config)
    assert fresh.step == 0 and fresh.playing
    assert not lab.play_next and lab.run_for("playground", lab.config) is fresh
    lab.play_pause("playground")  # pause, then Play and Reset in that order
    lab.play_pause("playground")
    lab.reset("playground")
    assert not lab.run_for("playground", lab.config).playing


def test_the_inspector_continues_from_a_copy_of_the_playgrounds_network():
    lab = session()
    inspector_config = lab.config.with_values({"batch_size": 16, "steps": 10**6})
    assert lab.inspectable_playground(inspector_config) is None  # no Playground run yet
    source = lab.run_for("playground", lab.config)
    assert lab.inspectable_playground(inspector_config) is None  # step 0: nothing to copy
    source.advance(3)
    assert lab.inspectable_playground(inspector_config) is source
    assert lab.inspectable_playground(inspector_config.with_values({"width": 32})) is None  # another network
    lab.inspect_playground(inspector_config)
    copied = lab.runs["inspector"]
    assert copied is not source and copied.step == 3 and copied.config.train.batch_size == 16
    before = [p.clone() for p in source.trainer.model.parameters()]
    copied.advance(1)
    assert all(torch.equal(a, b) for a, b in zip(before, source.trainer.model.parameters()))  # untouched
    assert "step 3" in lab.notices["inspector"]
    lab.config = lab.config.with_values({"mode": "particles"})
    lab.reset("playground")
    particles = lab.run_for("playground", lab.config)
    particles.advance(2)
    assert lab.inspectable_playground(inspector_config.with_values({"mode": "particles"})) is None


def test_predict_then_reveal_starts_stops_and_changes_its_horizon():
    from drift_views.predict import Prediction

    lab = session()
    run = lab.run_for("playground", lab.config)
    run.playing = True
    game = Prediction()
    game.toggle(run)
    assert game.active and not run.playing and game.start is not None and game.rounds == 1
    game.take_click({"x": 0.1, "y": 0.2})
    game.set_horizon(50)
    assert game.horizon == 50 and game.guess is None  # a guess for the old horizon is dropped
    game.next_round(run)
    assert game.rounds == 2
    game.toggle(None)
    assert not game.active


def test_the_sessions_game_moves_and_the_inspectors_next_step():
    """LabSession.predict plays the page's game on the page's run (a move without a run is ignored,
    except stopping); inspect_next_step pauses the Inspector's run and inspects one more step."""
    from drift_views.inspector import InspectorState
    from drift_views.predict import Prediction

    lab = session()
    lab.predict("playground", "reveal")  # no run yet: nothing happens
    assert not lab.page("playground:predict", Prediction).active
    run = lab.run_for("playground", lab.config)
    lab.predict("playground", "toggle")
    lab.predict("playground", "set_horizon", 50)
    game = lab.page("playground:predict", Prediction)
    assert game.active and game.horizon == 50
    game.take_click({"x": 0.0, "y": 0.0})
    lab.predict("playground", "reveal")
    assert run.step == 50 and game.path is not None
    inspected = lab.run_for("inspector", lab.config)
    inspected.playing = True
    lab.inspect_next_step("inspector")
    state = lab.page("inspector", InspectorState)
    assert not inspected.playing and state.run is inspected and inspected.step == 1
    lab.inspect_next_step("inspector")
    assert inspected.step == 2 and state.inspection.step == 2


def test_branches_train_by_the_frame_or_fifty_at_a_time_and_can_be_removed():
    lab = session()
    run = lab.run_for("playground", lab.config)
    run.advance(2)
    run.frames(64, force_snapshot=True)
    lab.fork("playground", 2, {"K": 1, "tau": 0.1, "batch_size": 16})
    lab.fork("playground", 2, {"K": 2, "tau": 0.1, "batch_size": 16})
    lab.set_view(steps_per_frame=0)  # "auto": a branch still takes one step per frame
    lab.advance_branches("playground")
    assert [branch.step for _, branch in run.branches] == [3, 3]
    lab.set_view(steps_per_frame=5)
    lab.advance_branches("playground")
    lab.advance_branches("playground", 50)
    assert [branch.step for _, branch in run.branches] == [58, 58] and run.step == 2  # the run itself waits
    lab.remove_branches("playground")
    assert run.branches == []


def test_a_sweep_cell_opened_in_the_playground_starts_a_new_run_with_its_settings():
    lab = session()
    old = lab.run_for("playground", lab.config)
    old.advance(2)
    cell = lab.config.with_values({"tau": 0.3, "K": 2, "seed": 7})
    lab.open_in_playground(cell)
    run = lab.run_for("playground", lab.config)
    assert run is not old and run.step == 0 and run.base_config == cell
    assert "seed 7" in lab.notices["playground"]


def test_an_evicted_session_frees_its_runs_and_keeps_its_settings_and_points():
    lab = session()
    lab.set_setting("tau", 0.2, Limits())
    lab.take_points(b"x,y\n0,0\n1,1\n2,0\n", "three.csv", Limits())
    lab.run_for("playground", lab.config)
    lab.page("sweep", dict)
    lab.release()
    assert lab.runs == {} and lab.pages == {} and lab.config.drift.tau == 0.2 and lab.points is not None
    assert lab.take_notice("session") == LabSession.EVICTED_NOTICE and lab.take_notice("session") == ""
