"""Streamlit helpers of the Sweep page: axis pickers, the background job (progress, cancel), the heatmap
figure, per-cell thumbnails and "open this cell in the Playground".

The sweep itself (training, metrics, cache) is :mod:`drift_core.sweep`; it runs in a worker process
(:class:`drift_core.sweep.SweepJob`, kept in ``st.session_state``), and a ``run_every`` fragment polls
its progress, which reads a few shared numbers: the server's script runs never compete with the training.
"""
from __future__ import annotations

import io
import os

import numpy as np
import streamlit as st

from drift_core.config import ConfigError, ExperimentConfig
from drift_core.sweep import AXES, METRICS, SweepJob, SweepResult, SweepSpec, prepare_workers

from .controls import BATCH_OPTIONS, LR_OPTIONS, TAU_OPTIONS, limits
from .session import lab

JOB_KEY = "sweep_job"
RESULT_KEY = "sweep_result"
POLL_S = 0.5

AXIS_OPTIONS = {"K": tuple(range(0, 9)), "tau": TAU_OPTIONS, "batch_size": BATCH_OPTIONS, "lr": LR_OPTIONS}
DEFAULT_VALUES = {"K": (0, 1, 2), "tau": (0.02, 0.05, 0.2), "batch_size": (32, 128, 512), "lr": (1e-3, 5e-3, 2e-2)}


def axis_label(axis: str) -> str:
    return AXES[axis]


def axis_options(axis: str) -> list:
    lim = limits()
    options = list(AXIS_OPTIONS[axis])
    if axis == "K":
        options = [k for k in options if k <= lim.max_k]
    if axis == "batch_size":
        options = [b for b in options if b <= lim.max_batch]
    return options


def axis_picker(slot: str, default_axis: str, exclude: str | None = None) -> tuple[str, list]:
    """An axis selectbox and a multiselect of its values (keys ``sw_{slot}_axis`` / ``sw_{slot}_values_{axis}``)."""
    ss = st.session_state
    choices = [a for a in AXES if a != exclude]
    key = f"sw_{slot}_axis"
    if ss.get(key) not in choices:
        ss[key] = default_axis if default_axis in choices else choices[0]
    axis = st.sidebar.selectbox(f"{slot.upper()} axis ({'columns' if slot == 'x' else 'rows'})", choices, key=key,
                                format_func=axis_label)
    values_key = f"sw_{slot}_values_{axis}"
    options = axis_options(axis)
    if values_key not in ss:
        ss[values_key] = [v for v in DEFAULT_VALUES[axis] if v in options]
    values = st.sidebar.multiselect(f"{axis_label(axis)} values", options, key=values_key,
                                    format_func=lambda v: f"{v:g}")
    return axis, sorted(values)


def build_spec(base: ExperimentConfig, dataset: str, x_axis: str, x_values: list, y_axis: str, y_values: list,
               steps: int) -> tuple[SweepSpec | None, str]:
    """The spec, or None with the reason (shown to the user; nothing is lost)."""
    if not x_values or not y_values:
        return None, "Pick at least one value on each axis."
    try:
        base = base.with_values({"dataset": dataset}) if base.data.dataset != dataset else base
        return SweepSpec(base, x_axis, tuple(x_values), y_axis, tuple(y_values), steps=int(steps)), ""
    except ConfigError as err:
        return None, str(err)


def sweep_base_config() -> ExperimentConfig:
    """The session's current configuration (network, seed, unswept settings), or the defaults."""
    cfg = lab().config
    if cfg.data.dataset == "custom":
        cfg = ExperimentConfig()
    return cfg


def prepare() -> None:
    """Get the sweep worker's process server going (it imports torch in the background while the user
    picks the grid), so pressing Run does not wait for that. Cheap after the first call."""
    if os.environ.get("DRIFT_SWEEP_SYNC") != "1":
        try:
            prepare_workers()
        except OSError:
            pass  # the job reports it if worker processes cannot start


def start(spec: SweepSpec) -> SweepJob:
    """Start a sweep in a worker process (or in this thread when ``DRIFT_SWEEP_SYNC=1``)."""
    old = st.session_state.get(JOB_KEY)
    if old is not None and not old.done:
        old.cancel()
    job = SweepJob(spec)
    st.session_state[JOB_KEY] = job
    if os.environ.get("DRIFT_SWEEP_SYNC") == "1":
        job.run_here()
    else:
        job.start()
    return job


def cancel() -> None:
    job = st.session_state.get(JOB_KEY)
    if job is not None:
        job.cancel()


def heatmap_figure(result: SweepResult, metric: str, *, height: int = 420) -> dict:
    """A Plotly heatmap of one metric (rows: y values, columns: x values; best = bright), the value in
    each cell, and an invisible marker per cell so a click selects that cell."""
    spec = result.spec
    values = result.grid(metric)
    name, lower = METRICS[metric]
    xs = [f"{v:g}" for v in spec.x_values]
    ys = [f"{v:g}" for v in spec.y_values]
    finite = values[np.isfinite(values)]
    log = bool(finite.size) and finite.min() > 0 and finite.max() / finite.min() > 10
    shade = np.where(np.isfinite(values), np.log10(np.where(values > 0, values, 1)) if log else values, np.nan)
    text = [[("n/a" if not np.isfinite(v) else f"{v:.3g}") for v in row] for row in values]
    cx = [x for _ in ys for x in xs]
    cy = [y for y in ys for _ in xs]
    return {
        "data": [
            {"type": "heatmap", "z": shade.tolist(), "x": xs, "y": ys, "text": text, "texttemplate": "%{text}",
             "colorscale": "Viridis", "reversescale": lower, "hoverinfo": "skip",
             "colorbar": {"title": {"text": ("log₁₀ " if log else "") + name}}},
            {"type": "scatter", "mode": "markers", "x": cx, "y": cy, "name": "cells",
             # square markers almost as tall as a cell (plotly selects points on click, not heatmap cells)
             "marker": {"size": max(12, int(0.9 * (height - 90) / len(ys))), "symbol": "square", "opacity": 0,
                        "color": "black"},
             "customdata": [[i, j] for i in range(len(ys)) for j in range(len(xs))],
             "hovertemplate": f"{spec.y_axis}=%{{y}}, {spec.x_axis}=%{{x}}<br>click to select<extra></extra>",
             "showlegend": False},
        ],
        "layout": {
            "height": height, "margin": {"l": 60, "r": 10, "t": 40, "b": 50},
            "title": {"text": f"{name} after {spec.steps} steps ({'lower' if lower else 'higher'} is better)",
                      "font": {"size": 14}, "x": 0.02},
            # fixed ranges: the big click markers must not pad the axes (row 0 at the top, like the thumbnails)
            "xaxis": {"title": {"text": axis_label(spec.x_axis)}, "type": "category",
                      "range": [-0.5, len(xs) - 0.5], "autorange": False},
            "yaxis": {"title": {"text": axis_label(spec.y_axis)}, "type": "category",
                      "range": [len(ys) - 0.5, -0.5], "autorange": False},
            "clickmode": "event+select", "dragmode": False,
        },
    }


def selected_cell(event, result: SweepResult) -> tuple[int, int] | None:
    """The (row, col) clicked in the heatmap (from ``st.plotly_chart(..., on_select="rerun")``)."""
    try:
        points = event.selection.points if hasattr(event, "selection") else event["selection"]["points"]
    except (KeyError, TypeError, AttributeError):
        return None
    for point in points or []:
        data = point.get("customdata")
        if data is not None and len(data) == 2:
            i, j = int(data[0]), int(data[1])
            if 0 <= i < result.spec.shape[0] and 0 <= j < result.spec.shape[1]:
                return i, j
    return None


def thumbnail_png(result: SweepResult, i: int, j: int, size: int = 180) -> bytes | None:
    from drift_core.cli.sweep import cell_thumbnail

    image = cell_thumbnail(result, i, j, size=size)
    if image is None:
        return None
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def request_open(i: int, j: int) -> None:
    """on_click of a cell's "Open in Playground" button (the page switch happens in the page body)."""
    st.session_state["sweep_open"] = (int(i), int(j))


def open_in_playground(config: ExperimentConfig) -> None:
    """Make ``config`` the session's configuration (widget keys included) and go to the Playground with
    it in the URL. Stops the script (st.switch_page)."""
    session = lab()
    session.config = config
    session.runs.pop("playground", None)  # the Playground builds a fresh run for this configuration
    session.notices["playground"] = "Opened from the Sweep page: this is the configuration of the cell you picked."
    st.switch_page("pages/playground.py", query_params=config.to_query())


def results_csv(result: SweepResult) -> str:
    import csv

    rows = result.rows()
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def heatmap_png(result: SweepResult, metric: str) -> bytes:
    from drift_core.cli.sweep import heatmap_for

    buffer = io.BytesIO()
    heatmap_for(result, metric).save(buffer, format="PNG")
    return buffer.getvalue()
