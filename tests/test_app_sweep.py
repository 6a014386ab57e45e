"""AppTest of the Sweep page: a 2×2 grid runs in the sweep's worker process (polled by repeated ``at.run()``),
the heatmap and thumbnails appear, a repeated sweep comes from the cache, cancel stops a long sweep,
bad input is refused with a message, and a cell opens in the Playground with its configuration."""
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


def small_grid(at: AppTest, steps: int = 3) -> None:
    at.selectbox(key="sw_dataset").set_value("8gaussians")
    at.selectbox(key="sw_x_axis").set_value("K").run()
    at.multiselect(key="sw_x_values_K").set_value([0, 1])
    at.selectbox(key="sw_y_axis").set_value("tau").run()
    at.multiselect(key="sw_y_values_tau").set_value([0.05, 0.2])
    at.number_input(key="sw_steps").set_value(steps).run()
    assert not at.exception, at.exception


def wait_for_result(at: AppTest, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        assert not at.exception, at.exception
        result = at.session_state["sweep_result"] if "sweep_result" in at.session_state else None
        job = at.session_state["sweep_job"]
        if result is not None and result is job.result:
            return result
        time.sleep(0.3)
    raise AssertionError("the sweep did not finish in time")


def test_sweep_page_runs_a_grid_in_the_background_and_caches_it():
    at = open_sweep()
    assert any("Run sweep" in i.value for i in at.info)
    small_grid(at)
    assert any("2 × 2 = 4 cells" in c.value for c in at.caption)
    at.button(key="sw_run").click().run()
    assert not at.exception, at.exception
    job = at.session_state["sweep_job"]
    result = wait_for_result(at)
    assert job.error is None and result.complete and result.cached_cells == 0
    assert result.spec.base.model.width == 16  # the session's settings are the base
    assert result.grid("energy").shape == (2, 2)
    # heatmap, 4 thumbnails with Open buttons, downloads
    assert len(at.get("plotly_chart")) == 1
    assert len(at.get("image")) == 4
    for i in range(2):
        for j in range(2):
            assert at.button(key=f"sw_open_{i}_{j}")
    assert len(at.get("download_button")) == 2
    assert any("Best energy distance" in c.value for c in at.caption)
    # switching metric redraws without re-running
    at.button_group(key="sw_metric").set_value("w2").run()
    assert not at.exception and at.session_state["sweep_result"] is result
    # the same sweep again: every cell from the cache
    at.button(key="sw_run").click().run()
    again = wait_for_result(at)
    assert again is not result and again.cached_cells == 4
    assert (again.grid("energy") == result.grid("energy")).all()
    assert any("4 cell(s) from the cache" in c.value for c in at.caption)


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
    at.multiselect(key="sw_x_values_K").set_value([]).run()
    assert at.button(key="sw_run").disabled
    assert any("at least one value" in w.value for w in at.warning)


def test_sweep_cell_opens_in_playground_with_its_config():
    at = open_sweep()
    small_grid(at)
    at.button(key="sw_run").click().run()
    result = wait_for_result(at)
    at.button(key="sw_open_1_1").click().run()
    assert not at.exception, at.exception
    config = at.session_state["lab"].config
    assert config == result.spec.cell_config(1, 1)
    assert config.drift.tau == 0.2 and config.drift.K == 1 and config.data.dataset == "8gaussians"
    # we are on the Playground now, with the cell's settings in its widgets and the URL
    assert at.session_state["lab"].runs["playground"].config == config
    assert at.slider(key="K").value == 1
    tau = at.query_params["tau"]
    assert (tau[0] if isinstance(tau, list) else tau) == "0.2"


def test_sweep_page_presenter_mode_hides_the_sidebar():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update({**SMALL_URL, "presenter": "1"})
    at.run()
    at.switch_page("pages/sweep.py").run()
    assert not at.exception, at.exception
    assert any('section[data-testid="stSidebar"]' in m.value for m in at.markdown)
    assert at.button(key="presenter_exit")
