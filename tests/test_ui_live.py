"""The live-animation helpers: one frame outside a timer run (ui.live.frame_ticks; the pacing itself is
tested in test_views_pacing.py) and the in-place Plotly view's asset (ui.live_plot). The animation
itself is proven in the browser test."""

from __future__ import annotations

import json

import plotly

from ui import live, live_plot


def test_frame_ticks_draws_one_frame_outside_a_timer_run():
    # no Streamlit script run here (as in a full page run): one frame only
    assert list(live.frame_ticks(lambda: True)) == [0]
    assert not live.timer_run()


def test_plotly_js_is_copied_from_the_plotly_package_once(tmp_path):
    target = live_plot.ensure_plotly_js(tmp_path / "static")
    source = live_plot.Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert target.read_bytes() == source.read_bytes()
    mtime = target.stat().st_mtime_ns
    assert live_plot.ensure_plotly_js(tmp_path / "static").stat().st_mtime_ns == mtime  # kept
    target.write_bytes(b"truncated")  # a broken copy is replaced
    assert live_plot.ensure_plotly_js(tmp_path / "static").read_bytes() == source.read_bytes()
    assert [p.name for p in (tmp_path / "static").iterdir()] == ["plotly.min.js"]  # no temporary left


def test_static_serving_is_on_and_the_url_follows_the_base_path(monkeypatch):
    config = (live_plot.STATIC_DIR.parent / ".streamlit" / "config.toml").read_text()
    assert "enableStaticServing = true" in config
    options = {"server.baseUrlPath": ""}
    monkeypatch.setattr(live_plot.st, "get_option", lambda name: options[name])
    assert live_plot.plotly_url() == "/app/static/plotly.min.js"
    options["server.baseUrlPath"] = "/labs/drift/"
    assert live_plot.plotly_url() == "/labs/drift/app/static/plotly.min.js"


def test_without_static_serving_the_pages_fall_back_to_st_plotly_chart(monkeypatch):
    from tests.app_support import SMALL_URL, open_page

    real = live_plot.st.get_option
    monkeypatch.setattr(
        live_plot.st, "get_option", lambda name: False if name == "server.enableStaticServing" else real(name)
    )
    at = open_page("playground", SMALL_URL)
    assert not [el for el in at.get("bidi_component") if el.proto.component_name == "drift_lab.live_plot"]
    names = [t.get("name") for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]]
    assert "generated" in names


def test_a_read_only_app_folder_falls_back_to_st_plotly_chart(monkeypatch, caplog):
    def refuse(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(live_plot, "ensure_plotly_js", refuse)
    monkeypatch.setattr(live_plot, "_PLOTLY_JS_READY", [])
    assert not live_plot.plotly_js_ready()
    assert "fall back to st.plotly_chart" in caplog.text
    from tests.app_support import SMALL_URL, open_page

    at = open_page("playground", SMALL_URL)
    assert not at.exception
    assert not [el for el in at.get("bidi_component") if el.proto.component_name == "drift_lab.live_plot"]
    assert any(t.get("name") == "generated" for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"])
