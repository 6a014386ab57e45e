"""AppTest of the Sweep page: a 2×2 grid runs in the sweep's worker process (polled by repeated ``at.run()``),
the heatmap and thumbnails appear, a repeated sweep comes from the cache, seeds give mean ± std and a
verdict, cancel stops a long sweep, bad input is refused with a message, the page's state survives a
page switch, and the selected cell opens in the Playground with its configuration."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

SMALL_URL = {"batch_size": "32", "width": "16", "depth": "1"}


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIFT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DRIFT_SWEEP_SYNC", raising=False)


def open_sweep(query=None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update(query or SMALL_URL)
    at.run()
    assert not at.exception, at.exception
    # the Playground reads the URL into the session's config (the sweep's base settings)
    at.switch_page("pages/playground.py").run()
    at.switch_page("pages/sweep.py").run()
    assert not at.exception, at.exception
    return at


def page(at: AppTest):
    """The Sweep page's state object in the session (ui.sweep_view.SweepPage)."""
    return at.session_state["lab"].pages["sweep"]


def small_grid(at: AppTest, steps: int = 3, seeds: int = 1) -> None:
    at.selectbox(key="dataset").set_value("8gaussians")
    at.selectbox(key="sw_x_axis").set_value("K").run()
    at.multiselect(key="sw_x_values").set_value([0, 1])
    at.selectbox(key="sw_y_axis").set_value("tau").run()
    at.multiselect(key="sw_y_values").set_value([0.05, 0.2])
    at.number_input(key="steps").set_value(steps)
    at.number_input(key="sw_seeds").set_value(seeds).run()
    assert not at.exception, at.exception


def wait_for_result(at: AppTest, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        assert not at.exception, at.exception
        state = page(at)
        if state.result is not None and state.job is not None and state.result is state.job.result:
            return state.result
        time.sleep(0.3)
    raise AssertionError("the sweep did not finish in time")


def test_sweep_page_runs_a_grid_in_the_background_and_caches_it():
    at = open_sweep()
    assert any("Run sweep" in i.value for i in at.info)
    small_grid(at)
    assert any("2 × 2 = 4 cells × 3 steps" in c.value for c in at.caption)
    # K is swept: the sidebar's summary of the shared settings does not call the cells "baseline"
    shared = next(c.value for c in at.sidebar.caption if "not swept" in c.value)
    assert "baseline" not in shared and "lookahead" not in shared and "τ" not in shared and "seed 0" in shared
    at.button(key="sw_run").click().run()
    assert not at.exception, at.exception
    job = page(at).job
    result = wait_for_result(at)
    assert job.error is None and result.complete and result.cached_trials == 0
    assert result.spec.base.model.width == 16  # the session's settings are the base
    assert result.mean("energy").shape == (2, 2)
    # heatmap, 4 thumbnails, one cell picker and one Open button, downloads
    assert len(at.get("plotly_chart")) == 1
    assert len(at.get("image")) == 4
    assert at.selectbox(key="sw_cell") and at.button(key="sw_open")
    labels = [button.proto.label for button in at.get("download_button")]
    assert labels == ["Cells: mean and std (CSV)", "Every seed (CSV)", "Heatmap (PNG)"]
    # one seed: the page says the best cell may be seed noise
    assert any("one seed per cell" in w.value for w in at.warning)
    # switching metric redraws without re-running
    at.button_group(key="sw_metric").set_value("w2").run()
    assert not at.exception and page(at).result is result and page(at).metric == "w2"
    # the same sweep again: every trial from the cache
    at.button(key="sw_run").click().run()
    again = wait_for_result(at)
    assert again is not result and again.cached_trials == 4
    assert (again.mean("energy") == result.mean("energy")).all()
    assert any("4 run(s) from the cache" in c.value for c in at.caption)


def test_sweep_page_seeds_show_mean_and_spread_and_a_verdict():
    at = open_sweep()
    small_grid(at, steps=2, seeds=2)
    assert any("× 2 seeds × 2 steps = 16 training steps" in c.value for c in at.caption)
    assert any("seeds 0, 1" in c.value for c in at.sidebar.caption)
    at.button(key="sw_run").click().run()
    result = wait_for_result(at)
    assert result.spec.seeds == (0, 1) and len(result.trials) == 8
    captions = [c.value for c in at.caption]
    assert sum("· energy distance: " in c and " ± " in c for c in captions) == 4  # every thumbnail: mean ± std
    verdicts = [m.value for m in [*at.warning, *at.success] if "mean of 2 seeds" in m.value]
    assert len(verdicts) == 1 and ("not separated" in verdicts[0]) == bool(result.not_separated_from_best("energy"))
    # the selected cell (the best one at first) lists its seeds' values
    i, j = result.best_cell("energy")
    assert any(c.startswith(f"energy distance of {result.spec.cell_label(i, j)}: seed 0:") for c in captions)


def test_sweep_page_cancel_and_bad_input():
    at = open_sweep()
    small_grid(at, steps=5000)
    at.button(key="sw_run").click().run()
    assert at.button(key="sw_cancel").disabled is False
    at.button(key="sw_cancel").click().run()
    result = wait_for_result(at)
    assert result.cancelled and not result.complete
    assert any("Cancelled" in w.value for w in at.warning)
    # no values on an axis: the Run button is disabled and the page says why
    at.multiselect(key="sw_x_values").set_value([]).run()
    assert at.button(key="sw_run").disabled
    assert any("at least one value" in w.value for w in at.warning)


def test_sweep_page_state_survives_a_page_switch_and_axis_swaps():
    at = open_sweep()
    small_grid(at, steps=7, seeds=3)
    at.multiselect(key="sw_y_values").set_value([0.02, 0.2]).run()
    # choosing the y axis's setting for x swaps the two axes; each axis keeps its chosen values
    at.selectbox(key="sw_x_axis").set_value("tau").run()
    assert not at.exception, at.exception
    state = page(at)
    assert (state.x_axis, state.y_axis) == ("tau", "K")
    assert at.multiselect(key="sw_x_values").value == [0.02, 0.2] and at.multiselect(key="sw_y_values").value == [0, 1]
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/sweep.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="sw_x_axis").value == "tau" and at.multiselect(key="sw_y_values").value == [0, 1]
    assert at.number_input(key="steps").value == 7 and at.number_input(key="sw_seeds").value == 3
    # the grid's dataset and steps have the 2D fields' names as keys: the Playground shows its own
    at.switch_page("pages/playground.py").run()
    assert at.number_input(key="steps").value == at.session_state["lab"].config.train.steps != 7
    assert at.selectbox(key="dataset").value == at.session_state["lab"].config.data.dataset
    at.number_input(key="steps").set_value(900).run()
    at.switch_page("pages/sweep.py").run()
    assert at.number_input(key="steps").value == 7 and page(at).steps == 7
    assert at.session_state["lab"].config.train.steps == 900


def test_sweep_cell_opens_in_playground_with_its_config():
    at = open_sweep()
    small_grid(at)
    at.button(key="sw_run").click().run()
    result = wait_for_result(at)
    cells = result.spec.cells()
    at.selectbox(key="sw_cell").set_value(cells.index((1, 1))).run()
    assert page(at).selected == (1, 1)
    at.button(key="sw_open").click().run()
    assert not at.exception, at.exception
    config = at.session_state["lab"].config
    assert config == result.spec.trial_config(1, 1)
    assert config.drift.tau == 0.2 and config.drift.K == 1 and config.data.dataset == "8gaussians"
    # we are on the Playground now, with the cell's settings in its widgets and the URL, at step 0
    assert at.session_state["lab"].runs["playground"].config == config
    assert at.session_state["lab"].runs["playground"].step == 0
    assert any("from step 0" in c.value for c in at.caption)
    assert at.slider(key="K").value == 1
    tau = at.query_params["tau"]
    assert (tau[0] if isinstance(tau, list) else tau) == "0.2"


def test_sweep_page_presenter_mode_hides_the_sidebar_and_says_how_to_choose_a_grid():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update({**SMALL_URL, "presenter": "1"})
    at.run()
    at.switch_page("pages/sweep.py").run()
    assert not at.exception, at.exception
    assert any('section[data-testid="stSidebar"]' in m.value for m in at.markdown)
    assert at.button(key="presenter_exit")
    assert not any("in the sidebar, then press" in i.value for i in at.info)
    assert any("Exit presenter mode" in i.value for i in at.info)
