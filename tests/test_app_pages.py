"""AppTest for every page: widgets set by key, ticks driven by repeated ``at.run()`` (``run_every``
fragments do not tick under AppTest), no exceptions, the step counter advances, live changes apply
without a reset, reset fields reset, the URL round-trips, and runs pause on divergence and at the budget."""
from __future__ import annotations

import math

import pytest
import torch
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

@pytest.fixture(autouse=True, scope="module")
def _restore_torch_threads():
    """app.py sets torch to one thread (DRIFT_TORCH_THREADS) for the server; give later test modules
    in this process their thread count back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


SMALL_URL = {"batch_size": "64", "width": "32", "depth": "2", "steps_per_frame": "2"}


def open_page(page: str | None, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update(query or {})
    at.run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, at.exception
    return at


def step_counter(at: AppTest) -> int:
    values = [m.value for m in at.metric if m.label == "Step"]
    assert values, "no 'Step' metric on the page"
    return int(values[0])


def tick(at: AppTest, n: int = 1) -> None:
    for _ in range(n):
        at.run()
        assert not at.exception, at.exception


def test_home_page_renders_picture_and_links():
    at = open_page(None)
    text = " ".join(m.value for m in at.markdown)
    assert "drifting field" in text and "Lookahead" in text
    assert at.title[0].value == "Drift Lab"


def test_playground_plays_applies_live_changes_and_resets():
    at = open_page("playground", SMALL_URL)
    assert step_counter(at) == 0
    at.button(key="pg_play").click().run()
    tick(at, 2)
    after_play = step_counter(at)
    assert after_play >= 4  # 2 steps per frame, one frame per run
    run = at.session_state["playground_run"]
    # live change: K (K > 0 is lookahead) applies to the same trainer, the counter keeps going
    at.slider(key="K").set_value(3).run()
    assert at.session_state["playground_run"] is run
    assert run.trainer.config.drift.K == 3
    tick(at)
    assert step_counter(at) > after_play
    assert len(run.trainer.last_record.drift_rms) == 4  # the step used K = 3 (4 terms)
    assert any("Applied live" in c.value for c in at.caption)
    assert at.query_params["K"] == ["3"] or at.query_params["K"] == "3"
    # a reset field (seed) rebuilds the run from step 0
    at.number_input(key="seed").set_value(7).run()
    assert not at.exception
    assert at.session_state["playground_run"] is not run
    assert step_counter(at) == 0
    assert any("Restarted" in c.value and "seed" in c.value for c in at.caption)
    # Step and Reset buttons
    at.button(key="pg_step").click().run()
    assert step_counter(at) == 1
    at.button(key="pg_reset").click().run()
    assert step_counter(at) == 0


def test_playground_layers_and_scenario_buttons():
    at = open_page("playground", SMALL_URL)
    at.button_group(key="layers").set_value(["V", "V⁺", "V⁻", "lookahead terms", "field on a grid", "density"]).run()
    assert not at.exception
    at.button_group(key="start_case").set_value("start_far").run()
    assert not at.exception
    run = at.session_state["playground_run"]
    cfg = run.config
    assert (cfg.data.dataset, cfg.model.init, cfg.drift.tau, cfg.train.steps) == ("bimodal", "far", 0.1, 300)
    assert cfg.drift.normalize_distance  # the far start case moves only with normalised distances
    assert not any("cannot see the data" in w.value for w in at.warning)


def test_far_start_moves_and_a_vanished_kernel_says_why():
    """The sidebar's "Far away" start case trains (its outputs travel towards the data); with raw
    distances it cannot, and the page says why instead of sitting still silently."""
    at = open_page("playground", SMALL_URL)
    at.button_group(key="start_case").set_value("start_far").run()
    run = at.session_state["playground_run"]
    before = run.frame(evaluate=True).generated.mean(0)
    run.advance(40)
    after = run.frame(evaluate=True).generated.mean(0)
    assert float(((after - before) ** 2).sum()) > 0.5, (before, after)  # ~4 units away: it travels
    at.sidebar.toggle(key="normalize_distance").set_value(False).run()
    at.button(key="pg_reset").click().run()
    warnings = " ".join(w.value for w in at.warning)
    assert "cannot see the data" in warnings and "Normalise distances" in warnings
    run = at.session_state["playground_run"]
    start = run.frame(evaluate=True).generated.copy()
    run.advance(40)
    assert abs(run.frame(evaluate=True).generated - start).max() < 1e-3  # the reason shown is the real one


def test_url_sets_config_and_reports_bad_values():
    at = open_page("playground", {**SMALL_URL, "dataset": "moons", "tau": "0.2", "K": "99", "lr": "abc"})
    cfg = at.session_state["playground_run"].config
    assert cfg.data.dataset == "moons" and cfg.drift.tau == 0.2 and cfg.drift.K == 8 and cfg.train.lr == 1e-3
    assert at.selectbox(key="dataset").value == "moons"
    notes = " ".join(i.value for i in at.info)
    assert "K" in notes and "lr" in notes


def test_playground_pauses_on_divergence_and_at_budget():
    at = open_page("playground", {**SMALL_URL, "steps": "6"})
    at.button(key="pg_play").click().run()
    tick(at, 4)
    run = at.session_state["playground_run"]
    assert run.step == 6 and not run.playing
    assert any("budget" in w.value for w in at.warning)
    # divergence: poison the weights, play, and the run pauses with a plain message
    at.number_input(key="steps").set_value(100).run()
    with torch.no_grad():
        run.trainer.model.head.weight.fill_(math.nan)
    at.button(key="pg_play").click().run()
    tick(at, 1)
    assert not run.playing and run.trainer.diverged
    assert any("diverged" in w.value for w in at.warning)
    at.button(key="pg_reset").click().run()
    assert not at.session_state["playground_run"].trainer.diverged and step_counter(at) == 0


def test_two_sessions_have_their_own_trainers():
    a = open_page("playground", SMALL_URL)
    b = open_page("playground", SMALL_URL)
    a.button(key="pg_play").click().run()
    tick(a, 2)
    b.run()
    assert step_counter(a) > 0 and step_counter(b) == 0
    assert a.session_state["playground_run"] is not b.session_state["playground_run"]


@pytest.mark.slow
def test_compare_lockstep_live_k_and_fairness_reset():
    at = open_page("compare", SMALL_URL)
    at.button(key="cmp_play").click().run()
    tick(at, 2)
    run = at.session_state["compare_run"]
    assert step_counter(at) >= 4
    assert set(run.trainers) == {"baseline", "lookahead"}
    assert all(t.step_count == run.step for t in run.trainers.values())  # lock-step
    before = step_counter(at)
    at.slider(key="lookahead_K").set_value(2).run()
    tick(at)
    assert at.session_state["compare_run"] is run and step_counter(at) > before
    assert run.trainers["lookahead"].config.drift.K == 2
    assert run.trainers["baseline"].config.drift.K == 0
    at.toggle(key="fairness").set_value(True).run()
    new = at.session_state["compare_run"]
    assert new is not run and set(new.trainers) == {"baseline", "lookahead", "baseline 2×lr"}
    assert step_counter(at) == 0
    assert new.trainers["baseline 2×lr"].config.train.lr == pytest.approx(2 * new.trainers["baseline"].config.train.lr)
    assert at.query_params.get("fairness") in ("true", ["true"])


@pytest.mark.slow
def test_inspector_walks_stages_steps_and_lens():
    at = open_page("inspector", {"width": "32", "depth": "2"})
    assert step_counter(at) == 1
    for stage in ("kernel", "V⁺ V⁻ V", "lookahead", "targets", "loss", "optimiser step", "moved"):
        at.select_slider(key="stage").set_value(stage).run()
        assert not at.exception, stage
    at.number_input(key="lens_particle").set_value(5).run()
    assert any("Particle **5**" in m.value for m in at.markdown)
    at.button(key="ins_step").click().run()
    assert step_counter(at) == 2 and at.select_slider(key="stage").value == "noise"
    # Play walks the stages; after the last one a new step starts
    at.button(key="ins_play").click().run()
    tick(at, 10)
    assert step_counter(at) == 3
    # live K change keeps the trainer; a seed change resets it
    run = at.session_state["inspector_run"]
    at.slider(key="K").set_value(2).run()
    assert at.session_state["inspector_run"] is run
    at.button(key="ins_step").click().run()
    assert len(at.session_state["inspection"].terms) == 3
    at.number_input(key="seed").set_value(3).run()
    assert at.session_state["inspector_run"] is not run and step_counter(at) == 1
