"""A Plotly view that updates in place (``Plotly.react``) instead of being rebuilt on every frame.

Why: Streamlit 1.67's ``st.plotly_chart`` derives the element's identity from the figure, so a chart
whose data changes is unmounted and mounted again on every animation frame: a new WebGL context and a
fresh Plotly DOM each time. Profiled in Chromium while the Playground played, WebGL context creation
alone took ~17% of the page's main thread, and the browser showed ~4 of the server's ~6 frames a second.
(Keeping the id stable instead freezes the picture: that version's frontend keeps the first figure.)

How: a small ``st.components.v2`` component keeps one ``<div>`` per view and hands every new figure to
``Plotly.react``, which diffs it against the previous one and redraws in place; the user's zoom and pan
survive updates through ``layout.uirevision``. The view's element keeps one key, so Streamlit keeps it
mounted from run to run; later frames of the same run reach it through zero-height "feed" elements
(:class:`LiveView`). Plotly.js itself is the copy that the ``plotly`` Python
package ships (no network), served by Streamlit's static file serving (``.streamlit/config.toml``:
``server.enableStaticServing``) from ``static/`` next to app.py, where :func:`ensure_plotly_js` copies it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import plotly
import plotly.graph_objects as go
import plotly.io as pio
import streamlit as st

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
"""Streamlit serves this folder (next to app.py) at ``app/static/`` when static serving is on."""
PLOTLY_JS = "plotly.min.js"

_JS = r"""
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

// One plot <div> per view name for the page's lifetime, held by the view's element. That element has a
// stable key, so Streamlit keeps it mounted from run to run and each new figure goes to Plotly.react on
// the same <div>, which redraws in place. A key may appear only once per script run, so the further
// frames of one run arrive through "feed" elements, which show nothing and hand their figure to the
// view. Sequence numbers keep an element that is re-rendered with older data from drawing it.
const views = window.__driftLiveViews || (window.__driftLiveViews = new Map());

// Colours that follow the app's theme: ui/figures.py writes these tokens, this replaces them.
function resolveTheme(value, colours) {
  if (typeof value === "string") return colours[value] || value;
  if (Array.isArray(value)) return value.map((v) => resolveTheme(v, colours));
  if (value && typeof value === "object" && !ArrayBuffer.isView(value) && !value.bdata) {
    for (const key of Object.keys(value)) value[key] = resolveTheme(value[key], colours);
  }
  return value;
}

// The text colour (hex or rgb()) at a given opacity, as rgba() (Plotly does not read color-mix()).
function faint(colour, alpha) {
  let rgb = (colour.match(/[\d.]+/g) || []).slice(0, 3).map(Number);
  if (colour.startsWith("#")) {
    const hex = colour.length === 4 ? colour.slice(1).split("").map((c) => c + c).join("") : colour.slice(1, 7);
    rgb = [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16));
  }
  return rgb.length === 3 ? "rgba(" + rgb.join(",") + "," + alpha + ")" : "rgba(128,128,128," + alpha + ")";
}

// A click on the plot area sends its data coordinates to Python (the Inspector picks the particle
// nearest to it).
function bindClicks(div) {
  if (div.__clickBound) return;
  div.__clickBound = true;
  div.addEventListener("click", (event) => {
    const fl = div._fullLayout;
    if (!div.__clicks || !div.__setTrigger || !fl || !fl.xaxis || !fl.yaxis) return;
    const box = div.getBoundingClientRect();
    const px = event.clientX - box.left - fl.xaxis._offset, py = event.clientY - box.top - fl.yaxis._offset;
    if (px < 0 || py < 0 || px > fl.xaxis._length || py > fl.yaxis._length) return;
    div.__setTrigger("click", {x: fl.xaxis.p2l(px), y: fl.yaxis.p2l(py), at: Date.now()});
  });
}

export default function (component) {
  const { data, parentElement } = component;
  let div = views.get(data.view);
  if (!data.feed) {
    if (!div) {
      div = document.createElement("div");
      div.className = "drift-live-plot";
      div.dataset.view = data.view;
      div.style.width = "100%";
      views.set(data.view, div);
    }
    if (div.parentNode !== parentElement) parentElement.appendChild(div);  // (re)mounted: take the view along
    div.__setTrigger = component.setTriggerValue;
    div.__clicks = !!data.clicks;
    bindClicks(div);
  } else if (!div || !div.isConnected) {
    return;  // no view on the page to feed
  }
  if (div.__seq !== undefined && data.seq <= div.__seq) return;
  div.__seq = data.seq;
  loadPlotly(data.plotly_url).then((Plotly) => {
    if (div.__seq !== data.seq) return;  // a newer frame arrived meanwhile: that one is drawn instead
    const figure = JSON.parse(data.figure);
    // follow the app's theme (light or dark): its text colour and font on a transparent paper, and
    // the figure's theme tokens in the text colour (faint for the grid)
    const style = getComputedStyle(div);
    const text = style.getPropertyValue("--st-text-color").trim() || "#31333F";
    const font = style.getPropertyValue("--st-font").trim();
    const grid = faint(text, 0.14);
    resolveTheme(figure, {"theme:text": text, "theme:grid": grid});
    const layout = figure.layout;
    if (layout.paper_bgcolor === undefined) layout.paper_bgcolor = "rgba(0,0,0,0)";
    layout.font = Object.assign({color: text}, font ? {family: font} : {}, layout.font || {});
    const start = performance.now();
    return Plotly.react(div, figure.data, layout, data.config).then(() => {
      // paint times per view, for the frame-budget benchmark (benchmarks/app_redraw.py)
      const paints = window.__driftPaints || (window.__driftPaints = {});
      (paints[data.view] || (paints[data.view] = [])).push(performance.now() - start);
      if (paints[data.view].length > 500) paints[data.view].shift();
    });
  }).catch((err) => {
    div.textContent = "The view could not start Plotly.js (" + err.message + ").";
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


_PLOTLY_JS_READY: list[bool] = []


def plotly_js_ready() -> bool:
    """Whether the served copy of Plotly.js is in place (copied on first call; a read-only app folder
    leaves it missing, and the views then fall back to ``st.plotly_chart``)."""
    if not _PLOTLY_JS_READY:
        try:
            ensure_plotly_js()
            _PLOTLY_JS_READY.append(True)
        except OSError as err:
            logging.getLogger(__name__).warning(
                "live views fall back to st.plotly_chart: could not place Plotly.js in %s (%s)", STATIC_DIR, err
            )
            _PLOTLY_JS_READY.append(False)
    return _PLOTLY_JS_READY[0]


def _component():
    if not _COMPONENT:
        _COMPONENT.append(st.components.v2.component("drift_lab.live_plot", js=_JS, isolate_styles=False))
    return _COMPONENT[0]


def figure_json(figure) -> str:
    """The figure (a ``go.Figure`` or one of ui.figures' dicts) as Plotly JSON; numpy arrays travel as
    typed binary (a dict goes through an unvalidated ``go.Figure``: serialising that is faster than
    serialising the dict itself, benchmarks/RESULTS.md)."""
    if isinstance(figure, dict):
        figure = go.Figure(figure, _validate=False)
    return pio.to_json(figure, validate=False)


def plotly_url() -> str:
    """Absolute URL path of the served Plotly.js (under ``server.baseUrlPath`` when one is set)."""
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return "/" + "/".join(part for part in (base, "app/static", PLOTLY_JS) if part)


def static_serving() -> bool:
    """Whether this server serves ``static/`` with Plotly.js in it (the in-place view needs both)."""
    return bool(st.get_option("server.enableStaticServing")) and plotly_js_ready()


class LiveView:
    """A Plotly view that frames redraw in place. Create it where the view should appear (it places
    its placeholders there), then ``draw`` each frame.

    Frame 0 of a script run draws through the view's own element (key ``name``, stable from run to
    run: Streamlit keeps it mounted and the plot is updated, never rebuilt); frames 1, 2, ... of the
    same run go through a zero-height feed element with a per-frame key. Without static file serving
    (the app started with another config) or when Plotly.js could not be placed in ``static/`` (a
    read-only folder), every frame falls back to ``st.plotly_chart``, which works but rebuilds the chart
    each time."""

    def __init__(self, name: str):
        self.name = name
        self.live = static_serving()
        # a container, not st.empty: an empty placeholder is sent as an empty element first in every
        # run, which unmounts the view for a moment (measured: detached gaps of up to 15 ms)
        self.chart = st.container() if self.live else st.empty()
        self.feed = st.empty()

    def draw(self, figure, frame_index: int = 0, config: dict | None = None, *, clickable: bool = False):
        """Draw ``figure`` (frame ``frame_index`` of this script run). With ``clickable``, returns the
        data coordinates {x, y} of a click on the plot area when this run was caused by one (else None)."""
        options = {"displaylogo": False, **(config or {})}
        if not self.live:
            self.chart.plotly_chart(resolve_theme(figure), key=f"{self.name}_{frame_index}", config=options)
            return None
        height = (figure.get("layout", {}) if isinstance(figure, dict) else figure.layout.to_plotly_json()).get(
            "height"
        )
        data = {
            "view": self.name,
            "figure": figure_json(figure),
            "config": {"responsive": True, **options},
            "plotly_url": plotly_url(),
            "seq": time.monotonic_ns(),
            "feed": frame_index > 0,
            "clicks": clickable,
        }
        if frame_index == 0:
            with self.chart:
                events = {"on_click_change": _ignore} if clickable else {}
                result = _component()(key=self.name, data=data, height=int(height) if height else "content", **events)
            return result.get("click") if clickable else None
        with self.feed.container():
            _component()(key=f"{self.name}_feed_{frame_index}", data=data, height="content")
        return None


def _ignore() -> None:
    """A click is read from the component's result in the same run; the callback only registers it."""


LIGHT_THEME = {"theme:text": "#31333F", "theme:grid": "rgba(49, 51, 63, 0.14)"}


def resolve_theme(figure, colours: dict[str, str] = LIGHT_THEME):
    """``figure`` (a dict) with the theme tokens of :mod:`ui.figures` replaced by ``colours``, for
    drawing without the in-place view (``st.plotly_chart``, which cannot know the browser's theme)."""
    if isinstance(figure, str):
        return colours.get(figure, figure)
    if isinstance(figure, dict):
        return {key: resolve_theme(value, colours) for key, value in figure.items()}
    if isinstance(figure, (list, tuple)):
        return type(figure)(resolve_theme(value, colours) for value in figure)
    return figure
