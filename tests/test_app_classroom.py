"""AppTest of the classroom tools on the Playground and Compare pages: presenter mode, guided scenarios,
replay timeline and "fork from here", exports, and the estimator-noise layer. Ticks are driven by
repeated ``at.run()`` (``run_every`` fragments do not tick under AppTest)."""
from __future__ import annotations

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from drift_core.scenarios import SCENARIOS
from tests.conftest import ROOT

SMALL_URL = {"batch_size": "64", "width": "16", "depth": "1", "steps_per_frame": "10"}


def open_page(page: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update(query or {})
    at.run()
    assert not at.exception, at.exception
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def tick(at: AppTest, n: int = 1) -> None:
    for _ in range(n):
        at.run()
        assert not at.exception, at.exception


def figure_specs(at: AppTest) -> list[dict]:
    """The Plotly figures on the page: the live views (ui.live_plot) first, then st.plotly_chart's."""
    live = [json.loads(json.loads(el.proto.json)["figure"]) for el in at.get("bidi_component")
            if el.proto.component_name == "drift_lab.live_plot"]
    return live + [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def query_value(at: AppTest, name: str):
    value = at.query_params.get(name)
    return value[0] if isinstance(value, list) else value


def test_presenter_mode_hides_controls_enlarges_plots_and_survives_url_sync():
    normal = open_page("playground", SMALL_URL)
    normal_height = figure_specs(normal)[0]["layout"]["height"]
    at = open_page("playground", {**SMALL_URL, "presenter": "1"})
    css = " ".join(m.value for m in at.markdown)
    assert 'section[data-testid="stSidebar"]' in css and "display: none" in css
    assert figure_specs(at)[0]["layout"]["height"] == pytest.approx(1.5 * normal_height, abs=1)
    assert query_value(at, "presenter") == "true"  # kept when the page rewrites the URL
    at.button(key="presenter_exit").click().run()
    assert not at.exception
    assert not any("stSidebar" in m.value for m in at.markdown)
    assert figure_specs(at)[0]["layout"]["height"] == normal_height
    assert "presenter" not in at.query_params


def test_guided_scenario_sets_config_restarts_and_explains():
    at = open_page("playground", SMALL_URL)
    at.button(key="pg_play").click().run()
    tick(at, 1)
    old = at.session_state["playground_run"]
    assert old.step > 0
    for key in ("attraction_only", "start_far"):
        at.button(key=f"scenario_{key}").click().run()
        assert not at.exception, at.exception
        run = at.session_state["playground_run"]
        assert run is not old and run.step == 0 and run.config == SCENARIOS[key].config
        assert at.session_state["config"] == SCENARIOS[key].config
        assert any(SCENARIOS[key].watch in i.value for i in at.info)
        old = run
    assert at.selectbox(key="dataset").value == "bimodal" and at.selectbox(key="init").value == "far"


def test_replay_timeline_and_fork_from_here_make_a_branch():
    at = open_page("playground", SMALL_URL)
    at.button(key="pg_play").click().run()
    tick(at, 3)
    run = at.session_state["playground_run"]
    steps = [s.step for s in run.history.snapshots]
    assert 10 in steps and run.step >= 30
    at.select_slider(key="pg_timeline").set_value(10).run()
    assert not at.exception, at.exception
    assert not run.playing  # scrubbing pauses the run
    assert any("replay of step 10" in spec["layout"]["title"]["text"] for spec in figure_specs(at))
    at.slider(key="pg_fork_K").set_value(2)
    at.select_slider(key="pg_fork_batch").set_value(128)
    at.button(key="pg_fork").click().run()
    assert not at.exception, at.exception
    branches = at.session_state["playground_run"].branches
    assert len(branches) == 1
    branch = branches[0][1]
    assert branch.step == 10 and branch.config.drift.K == 2 and branch.config.train.batch_size == 128
    assert run.step >= 30  # the original is untouched
    at.button(key="playground_run_branch_step").click().run()
    assert not at.exception, at.exception
    assert branch.step == 60
    titles = [spec["layout"]["title"]["text"] for spec in figure_specs(at)]
    assert any(t.startswith("fork @10") for t in titles)
    # back to live: the original picture returns
    at.select_slider(key="pg_timeline").set_value("live").run()
    assert not any("replay of step" in spec["layout"]["title"]["text"] for spec in figure_specs(at))


def test_export_buttons_are_offered():
    ours = {"GIF", "MP4", "Metrics CSV", "Config JSON"}
    at = open_page("playground", SMALL_URL)
    first = {b.proto.label: b.proto.disabled for b in at.get("download_button") if b.proto.label in ours}
    assert set(first) == ours and first["GIF"] and first["MP4"]  # one kept frame: nothing to animate yet
    at.button(key="pg_play").click().run()
    tick(at, 2)
    labels = {b.proto.label: b.proto.disabled for b in at.get("download_button") if b.proto.label in ours}
    assert labels == {"GIF": False, "MP4": False, "Metrics CSV": False, "Config JSON": False}


def test_estimator_noise_layer_shrinks_with_batch_size():
    at = open_page("playground", SMALL_URL)
    at.button(key="pg_step").click().run()
    at.toggle(key="pg_noise").set_value(True).run()
    assert not at.exception, at.exception
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


@pytest.mark.slow
def test_compare_replay_fork_and_export():
    at = open_page("compare", SMALL_URL)
    at.button(key="cmp_play").click().run()
    tick(at, 3)
    run = at.session_state["compare_run"]
    assert run.step >= 30
    at.select_slider(key="cmp_timeline").set_value(10).run()
    assert not at.exception, at.exception
    titles = [spec["layout"]["title"]["text"] for spec in figure_specs(at)]
    assert sum("step 10 (replay)" in t for t in titles) == 2
    at.slider(key="cmp_fork_K").set_value(3)
    at.button(key="cmp_fork").click().run()
    assert not at.exception, at.exception
    forked = at.session_state["compare_run"]
    assert forked is not run and forked.step == 10
    assert forked.trainers["lookahead"].config.drift.K == 3
    assert at.slider(key="lookahead_K").value == 3  # the sidebar agrees with the fork
    assert [r.step for r in forked.histories["baseline"].records][-1] == 10
    at.button(key="cmp_play").click().run()
    tick(at, 1)
    assert forked.step > 10 and at.session_state["compare_run"] is forked
    assert {b.proto.label for b in at.get("download_button")} >= {"GIF", "MP4", "Metrics CSV", "Config JSON"}
