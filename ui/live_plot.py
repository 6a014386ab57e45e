"""A Plotly view that updates in place (``Plotly.react``) instead of being rebuilt on every frame.

Why: Streamlit 1.67's ``st.plotly_chart`` derives the element's identity from the figure, so a chart
whose data changes is unmounted and mounted again on every animation frame: a new WebGL context and a
fresh Plotly DOM each time. Profiled in Chromium while the Playground played, WebGL context creation
alone took ~17% of the page's main thread, and the browser showed ~4 of the server's ~6 frames a second.
(Keeping the id stable instead freezes the picture: that version's frontend keeps the first figure.)

How: a small ``st.components.v2`` component keeps one ``<div>`` per key and hands every new figure to
``Plotly.react``, which diffs it against the previous one and redraws in place; the user's zoom and pan
survive updates through ``layout.uirevision``. Plotly.js itself is the copy that the ``plotly`` Python
package ships (no network), served by Streamlit's static file serving (``.streamlit/config.toml``:
``server.enableStaticServing``) from ``static/`` next to app.py, where :func:`ensure_plotly_js` copies it.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import plotly
import plotly.io as pio
import streamlit as st

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
"""Streamlit serves this folder (next to app.py) at ``app/static/`` when static serving is on."""
PLOTLY_JS = "plotly.min.js"

_JS = """
let loading = null;

function loadPlotly(url) {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = new URL(url, window.location.origin).href;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => { loading = null; reject(new Error("could not load " + script.src)); };
      document.head.appendChild(script);
    });
  }
  return loading;
}

// One plot <div> per view name for the page's lifetime. Streamlit mounts a new component element whenever
// the key changes (and a key may appear once per script run, so successive frames of one run use
// successive keys); each new element adopts the view's existing <div> (moving a DOM node keeps its
// Plotly state and WebGL context), so Plotly.react updates it in place instead of building a new plot.
const views = window.__driftLiveViews || (window.__driftLiveViews = new Map());

export default function (component) {
  const { data, parentElement } = component;
  let div = views.get(data.view);
  if (!div) {
    div = document.createElement("div");
    div.className = "drift-live-plot";
    div.dataset.view = data.view;
    div.style.width = "100%";
    views.set(data.view, div);
  }
  if (div.parentNode !== parentElement) parentElement.appendChild(div);
  div.__latest = data;
  loadPlotly(data.plotly_url).then((Plotly) => {
    if (div.__latest !== data) return;  // a newer frame arrived meanwhile: draw that one instead
    const figure = JSON.parse(data.figure);
    return Plotly.react(div, figure.data, figure.layout, data.config);
  }).catch((err) => {
    div.textContent = "The particle view could not start Plotly.js (" + err.message + ").";
  });
}
"""

_COMPONENT = []


def ensure_plotly_js(static_dir: Path = STATIC_DIR) -> Path:
    """Copy the plotly package's ``plotly.min.js`` into ``static_dir`` unless an identical-size copy
    is there (written to a temporary file and renamed, so a concurrent reader never sees half a file)."""
    source = Path(plotly.__file__).resolve().parent / "package_data" / PLOTLY_JS
    target = static_dir / PLOTLY_JS
    if target.is_file() and target.stat().st_size == source.stat().st_size:
        return target
    static_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=static_dir, suffix=".part")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _component():
    if not _COMPONENT:
        ensure_plotly_js()
        _COMPONENT.append(st.components.v2.component("drift_lab.live_plot", js=_JS, isolate_styles=False))
    return _COMPONENT[0]


def figure_json(figure) -> str:
    """The figure (a ``go.Figure`` or one of ui.figures' dicts) as Plotly JSON; numpy arrays travel as
    typed binary."""
    return pio.to_json(figure, validate=False)


def plotly_url() -> str:
    """Absolute URL path of the served Plotly.js (under ``server.baseUrlPath`` when one is set)."""
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return "/" + "/".join(part for part in (base, "app/static", PLOTLY_JS) if part)


def live_plotly_chart(figure, *, view: str, key: str, config: dict | None = None) -> None:
    """Draw ``figure`` in the page's live view ``view``; it updates in place across frames and runs.

    ``key`` must be unique within one script run (use e.g. the frame index when one run draws several
    frames into a placeholder). The figure's ``layout.height`` sets the height; the width follows the
    container. Without static file serving (the app started with another config) this falls back to
    ``st.plotly_chart``, which works but remounts the chart on every frame."""
    options = {"displaylogo": False, **(config or {})}
    if not st.get_option("server.enableStaticServing"):
        st.plotly_chart(figure, key=key, config=options)
        return
    layout = figure.get("layout", {}) if isinstance(figure, dict) else figure.layout.to_plotly_json()
    height = layout.get("height")
    data = {"view": view, "figure": figure_json(figure), "config": {"responsive": True, **options},
            "plotly_url": plotly_url()}
    _component()(key=key, data=data, height=int(height) if height else "content")
