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
import streamlit as st

from drift_views.figures import figure_json, resolve_theme

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
"""Streamlit serves this folder (next to app.py) at ``app/static/`` when static serving is on."""
PLOTLY_JS = "plotly.min.js"

_JS = (Path(__file__).with_name("live_plot.js")).read_text(encoding="utf-8")
"""The component's JavaScript (ui/live_plot.js)."""

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
