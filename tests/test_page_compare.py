"""AppTest of Compare (pages/compare.py with ui.run_view): lock-step arms, live K for the lookahead arm,
the fairness arm, replay, "fork from here" continuing the comparison, and exports."""

from __future__ import annotations

import pytest

from tests.app_support import SMALL_URL, lab_of, open_page, step_counter, tick, titles


@pytest.mark.slow
def test_compare_lockstep_live_k_and_fairness_reset():
    at = open_page("compare", SMALL_URL)
    assert at.slider(key="K").value == 1 and at.slider(key="K").min == 1  # the lookahead arm's K
    at.button(key="play").click().run()
    tick(at, 2)
    run = lab_of(at).runs["compare"]
    assert step_counter(at) >= 4
    assert set(run.trainers) == {"baseline", "lookahead"}
    assert all(t.step_count == run.step for t in run.trainers.values())  # lock-step
    for _ in range(3):  # the page evaluates every half second: evaluate at a few steps to have a comparison
        run.evaluate()
        tick(at)
    sentence = next((m.value for m in at.markdown if m.value.startswith("At step")), "")
    assert "at equal training time" in sentence, sentence
    before = step_counter(at)
    at.slider(key="K").set_value(2).run()
    tick(at)
    assert lab_of(at).runs["compare"] is run and step_counter(at) > before
    assert run.trainers["lookahead"].config.drift.K == 2 and run.trainers["baseline"].config.drift.K == 0
    at.toggle(key="fairness").set_value(True).run()
    new = lab_of(at).runs["compare"]
    assert new is not run and set(new.trainers) == {"baseline", "lookahead", "baseline 2×lr"}
    assert step_counter(at) == 0
    assert new.trainers["baseline 2×lr"].config.train.lr == pytest.approx(2 * new.trainers["baseline"].config.train.lr)
    assert at.query_params.get("fairness") in ("true", ["true"])


@pytest.mark.slow
def test_compare_replay_fork_and_export():
    at = open_page("compare", {**SMALL_URL, "steps_per_frame": "10", "width": "16", "depth": "1"})
    at.button(key="play").click().run()
    tick(at, 3)
    run = lab_of(at).runs["compare"]
    assert run.step >= 30
    at.button(key="play").click().run()
    at.select_slider(key="timeline").set_value(10).run()
    assert sum("replay of step 10" in t for t in titles(at)) == 2
    at.slider(key="fork_K").set_value(3)
    at.button(key="fork").click().run()
    assert not at.exception, at.exception
    forked = lab_of(at).runs["compare"]
    assert forked is not run and forked.step == 10
    assert forked.trainers["lookahead"].config.drift.K == 3
    assert at.slider(key="K").value == 3  # the sidebar agrees with the fork
    assert [r.step for r in forked.histories["baseline"].records][-1] == 10
    at.button(key="play").click().run()
    tick(at, 1)
    assert forked.step > 10 and lab_of(at).runs["compare"] is forked
    assert {b.proto.label for b in at.get("download_button")} >= {"GIF", "MP4", "Metrics CSV", "Config JSON"}


@pytest.mark.slow
def test_compare_in_particle_mode_has_the_doubled_step_control():
    """Is lookahead only a larger step? In particle mode the fairness arm doubles the particle step."""
    at = open_page("compare", {**SMALL_URL, "mode": "particles", "fairness": "true"})
    run = lab_of(at).runs["compare"]
    assert set(run.trainers) == {"baseline", "lookahead", "baseline 2×step"}
    assert (
        run.trainers["baseline 2×step"].config.train.particle_step
        == 2 * run.trainers["baseline"].config.train.particle_step
    )
    at.button(key="play").click().run()
    tick(at, 2)
    assert all(t.step_count == run.step > 0 for t in run.trainers.values())
    assert any("(particles)" in t or "2×step" in t for t in titles(at))
