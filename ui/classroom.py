"""Classroom tools for the Playground and Compare pages: presenter mode, guided scenarios, replay with
"fork from here" branches, exports and the estimator-noise layer.

Each helper is called by a page with a line or two; the mathematics lives in ``drift_core``
(:mod:`~drift_core.replay`, :mod:`~drift_core.export`, :mod:`~drift_core.scenarios`,
:mod:`~drift_core.estimator_noise`). Session-scoped state is kept in ``st.session_state`` under keys
derived from the page's run key, so two tabs never share anything.
"""
from __future__ import annotations


import numpy as np
import streamlit as st

from drift_core.config import ConfigError, ExperimentConfig, flat_field_names
from drift_core.estimator_noise import EstimatorNoise, estimator_noise
from drift_core.export import (
    config_json, frames_mp4, gif_bytes, mp4_bytes, mp4_encoder, record_rows, records_csv, rows_csv, side_by_side_frames, side_by_side_gif,
)
from drift_core.run import TAPE_STATES, Run
from drift_core.scenarios import SCENARIOS

from .widgets import BATCH_OPTIONS, TAU_OPTIONS, limits

TRUTHY = ("1", "true", "yes", "on")
PRESENTER_SCALE = 1.5
"""Plots are this much taller in presenter mode."""

PRESENTER_CSS = """
<style>
section[data-testid="stSidebar"], div[data-testid="stSidebarCollapsedControl"],
button[data-testid="stExpandSidebarButton"], header[data-testid="stHeader"],
div[data-testid="stToolbar"], [data-testid="stSidebarNav"],
[data-testid="stExpander"], [data-testid="stCaptionContainer"], .st-key-layers, .st-key-pg_noise,
.st-key-pg_timeline, .st-key-cmp_layers, .st-key-cmp_difference, .st-key-cmp_timeline,
.st-key-dismiss_url_notices { display: none !important; }
.block-container, [data-testid="stMainBlockContainer"] { padding-top: 1rem !important; max-width: 100% !important; }
html, body, [data-testid="stAppViewContainer"] { font-size: 20px; }
[data-testid="stMetricValue"] { font-size: 2.4rem !important; }
[data-testid="stCaptionContainer"] { font-size: 1.05rem !important; }
</style>
"""


# ---- presenter mode ---------------------------------------------------------------------------------
def presenter_active() -> bool:
    """``?presenter=1`` in the URL turns presenter mode on for this session (``?presenter=0`` off)."""
    ss = st.session_state
    raw = st.query_params.get("presenter")
    if raw is not None:
        ss["presenter"] = str(raw).strip().lower() in TRUTHY
    return bool(ss.get("presenter", False))


def url_extras() -> dict:
    """Extra URL parameters a page should keep when it rewrites the URL (``widgets.sync_url``)."""
    return {"presenter": True} if st.session_state.get("presenter") else {}


def plot_height(height: int) -> int:
    return int(height * PRESENTER_SCALE) if st.session_state.get("presenter") else height


def _exit_presenter() -> None:
    st.session_state["presenter"] = False
    if "presenter" in st.query_params:
        del st.query_params["presenter"]


def apply_presenter() -> bool:
    """In presenter mode: hide the sidebar (all settings), the header, the toolbar, the layer pickers,
    timeline, expanders and captions (Play / Pause / Step / Reset stay), enlarge text, metrics and plots,
    and offer one small "exit" button. Returns whether presenter mode is on."""
    if not presenter_active():
        return False
    st.markdown(PRESENTER_CSS, unsafe_allow_html=True)
    st.button("Exit presenter mode", key="presenter_exit", on_click=_exit_presenter, type="tertiary",
              icon=":material/close_fullscreen:")
    return True


# ---- guided scenarios -------------------------------------------------------------------------------
def _apply_scenario(key: str, run_key: str) -> None:
    """on_click: make the scenario's configuration the session's (widget keys included) and start a
    fresh run with it."""
    ss = st.session_state
    cfg = SCENARIOS[key].config
    ss["config"] = cfg
    flat = cfg.to_flat()
    for name in flat_field_names():
        ss[name] = flat[name]
    ss.pop(run_key, None)
    ss["scenario_active"] = key


def scenario_buttons(run_key: str, *, expanded: bool = False) -> None:
    """One button per guided scenario (in an expander) and, once one is chosen, its "what to watch"."""
    with st.expander("Guided scenarios: one click each", expanded=expanded, icon=":material/school:"):
        items = list(SCENARIOS.values())
        per_row = 4
        for start in range(0, len(items), per_row):
            cols = st.columns(per_row)
            for col, sc in zip(cols, items[start:start + per_row]):
                col.button(sc.title, key=f"scenario_{sc.key}", on_click=_apply_scenario, args=(sc.key, run_key),
                           width="stretch", help=sc.watch)
    active = st.session_state.get("scenario_active")
    if active in SCENARIOS:
        sc = SCENARIOS[active]
        st.info(f"**{sc.title}.** {sc.watch} Press **Play**.", icon=":material/visibility:")


# ---- replay and fork ----------------------------------------------------------------------------------
def timeline(prefix: str, snapshots, *, disabled: bool = False):
    """A slider over the kept snapshots plus "live". Returns the chosen snapshot index, or None for live.

    The chosen step lives in ``{prefix}replay`` (None = live), not only in the widget: the options grow
    with every kept snapshot and a run cut short by a click may drop the widget's state, which must
    never turn into a replay nobody asked for. Play returns to live (:func:`go_live`)."""
    steps = [s.step for s in snapshots]
    if len(steps) < 2:
        return None
    ss = st.session_state
    chosen = ss.get(prefix + "replay")
    if chosen not in steps:
        chosen = ss[prefix + "replay"] = None
    key = prefix + "timeline"
    ss[key] = "live" if chosen is None else chosen
    st.select_slider("Timeline (scrub back through training; 'live' follows the run)", steps + ["live"],
                     key=key, disabled=disabled, format_func=lambda v: v if v == "live" else f"step {v}",
                     on_change=_choose_replay, args=(prefix,))
    return None if chosen is None else steps.index(chosen)


def _choose_replay(prefix: str) -> None:
    """on_change of the timeline: remember the chosen step; a replay pauses the run."""
    ss = st.session_state
    value = ss.get(prefix + "timeline")
    ss[prefix + "replay"] = None if value == "live" else value
    if value != "live":
        target = ss.get(prefix + "run_key")
        run = ss.get(target) if target else None
        if run is not None:
            run.playing = False


def go_live(prefix: str) -> None:
    """Leave a replay: the timeline follows the run again (Play, Step, Reset, fork)."""
    st.session_state[prefix + "replay"] = None


def fork_controls(prefix: str, config: ExperimentConfig, step: int, can_fork: bool) -> dict | None:
    """New K / tau / batch size for a fork, and the button. Returns the fork's changes when clicked."""
    lim = limits()
    with st.container(border=True):
        st.markdown(f"**Fork from step {step}** with new settings; the branch trains next to this run.")
        c1, c2, c3, c4 = st.columns([1, 1, 1, 1.2])
        k = c1.slider("K", 0, min(8, lim.max_k), value=config.drift.K, key=prefix + "fork_K")
        taus = sorted(set(TAU_OPTIONS) | {config.drift.tau})
        tau = c2.select_slider("τ", taus, value=config.drift.tau, key=prefix + "fork_tau", format_func=lambda v: f"{v:g}")
        batches = sorted({b for b in BATCH_OPTIONS if b <= lim.max_batch} | {config.train.batch_size})
        n = c3.select_slider("N", batches, value=config.train.batch_size, key=prefix + "fork_batch")
        clicked = c4.button("Fork", key=prefix + "fork", type="primary", disabled=not can_fork,
                            icon=":material/call_split:", width="stretch",
                            help=None if can_fork else "the state of this step is no longer kept (only the latest "
                                                       f"{TAPE_STATES} are); pick a later step")
    if not clicked:
        return None
    return {"K": max(k, 0), "method": "lookahead" if k > 0 else "baseline", "tau": tau, "batch_size": n}


def make_branch(run: Run, step: int, changes: dict) -> Run | None:
    """:meth:`Run.branch` from the Playground's fork controls; a refusal is shown, not raised."""
    try:
        return run.branch(step, **changes)
    except (ConfigError, KeyError) as err:
        st.error(f"Cannot fork from step {step}: {err}")
        return None


def branches_panel(run_key: str, run: Run, steps_per_frame: int, *, arrow_scale: float = 10.0, height: int = 360) -> None:
    """Train every branch of ``run`` along with it (while it plays) and draw each branch's particles and
    the energy-vs-step curves of the original and its branches."""
    from . import figures

    items = run.branches
    if not items:
        return
    c1, c2 = st.columns([3, 1])
    c1.markdown(f"##### Branches ({len(items)})")
    extra = c2.button("+50 steps", key=run_key + "_branch_step", icon=":material/fast_forward:",
                      width="stretch", help="50 more steps for every branch (they also train while the run plays)")
    for _, branch in items:
        if run.playing:
            branch.advance(steps_per_frame)
        if extra:
            branch.advance(50)
    cols = st.columns(min(len(items), 2))
    for k, (name, branch) in enumerate(items):
        snap = branch.frame()
        col = cols[k % len(cols)]
        col.plotly_chart(figures.particle_figure(snap, branch.bounds, {"V"}, arrow_scale=arrow_scale,
                                                 title=f"{name} · step {snap.step}", height=plot_height(height),
                                                 uirevision=f"branch{k}"),
                         key=f"{run_key}_branch_fig_{k}", config={"displaylogo": False})
        if branch.message:
            col.caption(branch.message)
    series = {"original": run.history.metric_rows(300)}
    for name, branch in items:
        series[name] = branch.history.metric_rows(300)
    st.altair_chart(figures.curves_chart(figures.long_rows(series, "step", "energy"), "step", "energy",
                                         title="energy distance vs step: original and branches", height=220),
                    width="stretch")
    if st.button("Remove branches", key=run_key + "_branch_clear", icon=":material/delete:", type="tertiary"):
        items.clear()
        st.rerun()


def snapshot_at(history, step: int):
    """The kept snapshot of ``history`` for ``step`` (or the nearest earlier one)."""
    best = None
    for snap in history.snapshots:
        if snap.step <= step:
            best = snap
    return best if best is not None else (history.snapshots[0] if history.snapshots else None)


def _fork_compare(run_key: str, prefix: str, step: int) -> None:
    """on_click of the Compare page's "Fork from here": continue the lock-step comparison from ``step``
    with the fork's K / tau / N (written into the session's config too, so the sidebar agrees)."""
    ss = st.session_state
    run = ss.get(run_key)
    if run is None:
        return
    k = int(ss.get(prefix + "fork_K", run.base_config.drift.K))
    values = {"K": max(1, k), "tau": ss.get(prefix + "fork_tau", run.base_config.drift.tau),
              "batch_size": ss.get(prefix + "fork_batch", run.base_config.train.batch_size)}
    try:
        forked = run.fork(step, **values)
    except (ConfigError, KeyError) as err:
        ss[prefix + "fork_error"] = f"Cannot fork from step {step}: {err}"
        return
    ss[run_key] = forked
    config = forked.base_config
    current = ss.get("config")
    live = {n: config.to_flat()[n] for n in ("K", "tau", "batch_size")}
    ss["config"] = current.with_values(live) if isinstance(current, ExperimentConfig) else config
    go_live(prefix)
    ss[prefix + "fork_error"] = ""
    ss["cmp_note"] = f"Forked from step {step}: K = {config.drift.K}, τ = {config.drift.tau:g}, N = {config.train.batch_size}."


def compare_fork_controls(run_key: str, prefix: str, config: ExperimentConfig, step: int) -> None:
    """Fork controls for the Compare page (the comparison itself continues from ``step``)."""
    lim = limits()
    ok = st.session_state[run_key].can_fork(step)
    with st.container(border=True):
        st.markdown(f"**Fork from step {step}**: every arm continues from there with new settings.")
        c1, c2, c3, c4 = st.columns(4)
        c1.slider("K (lookahead arm)", 1, max(1, min(8, lim.max_k)), value=max(1, min(config.drift.K, lim.max_k)),
                  key=prefix + "fork_K")
        c2.select_slider("τ", sorted(set(TAU_OPTIONS) | {config.drift.tau}), value=config.drift.tau,
                         key=prefix + "fork_tau", format_func=lambda v: f"{v:g}")
        c3.select_slider("N", sorted({b for b in BATCH_OPTIONS if b <= lim.max_batch} | {config.train.batch_size}),
                         value=config.train.batch_size, key=prefix + "fork_batch")
        c4.button("Fork", key=prefix + "fork", type="primary", icon=":material/call_split:", disabled=not ok,
                  on_click=_fork_compare, args=(run_key, prefix, step), width="stretch",
                  help=None if ok else f"this step's state is no longer kept (only the latest {TAPE_STATES})")
    if st.session_state.get(prefix + "fork_error"):
        st.error(st.session_state[prefix + "fork_error"])


# ---- exports -----------------------------------------------------------------------------------------
def export_buttons(prefix: str, config: ExperimentConfig, history, *, title: str = "") -> None:
    """Download buttons for one run's :class:`~drift_core.history.History`: animated GIF (and MP4 when an
    encoder is available) of the kept snapshots, metrics CSV, config JSON. The buffers are copied now
    (cheap: references) and the files produced only when a button is clicked (deferred downloads), so a
    playing run pays nothing for them."""
    snaps = list(history.snapshots)
    recs = list(history.records)
    metrics = list(history.metrics)

    def csv_text() -> str:
        return records_csv(recs, [{"step": m.step, "wall_s": m.wall_s, **m.values} for m in metrics])

    _download_row(prefix, config, lambda: gif_bytes(snaps, title=title), lambda: mp4_bytes(snaps, title=title),
                  csv_text, len(snaps))


def compare_export_buttons(prefix: str, config: ExperimentConfig, histories: dict) -> None:
    """Exports of a comparison: a side-by-side GIF/MP4 of the arms, all arms' metrics in one CSV (column
    ``arm``), the shared config."""
    snaps = {name: list(h.snapshots) for name, h in histories.items()}
    kept = {name: (list(h.records), list(h.metrics)) for name, h in histories.items()}
    n = min((len(s) for s in snaps.values()), default=0)

    def csv_text() -> str:
        rows: list[dict] = []
        for name, (recs, metrics) in kept.items():  # arms differ in columns (one drift_rms per term)
            arm_rows = record_rows(recs, [{"step": m.step, "wall_s": m.wall_s, **m.values} for m in metrics])
            rows.extend({"arm": name, **row} for row in arm_rows)
        return rows_csv(rows, "arm")

    def mp4() -> bytes:
        return frames_mp4(side_by_side_frames(snaps))

    _download_row(prefix, config, lambda: side_by_side_gif(snaps), mp4, csv_text, n)


def _download_row(prefix: str, config: ExperimentConfig, gif, mp4, csv_text, frames: int) -> None:
    cols = st.columns(4)
    cols[0].download_button("GIF", gif, file_name="drift_lab_run.gif", mime="image/gif", key=prefix + "dl_gif",
                            disabled=frames < 2, on_click="ignore", icon=":material/gif_box:", width="stretch",
                            help=f"animated GIF of the {frames} kept frames")
    encoder = mp4_encoder()
    cols[1].download_button("MP4", mp4, file_name="drift_lab_run.mp4", mime="video/mp4", key=prefix + "dl_mp4",
                            disabled=frames < 2 or encoder is None, on_click="ignore", icon=":material/movie:",
                            width="stretch",
                            help="MP4 needs an encoder: pip install imageio-ffmpeg" if encoder is None else
                            f"H.264 video of the {frames} kept frames")
    cols[2].download_button("Metrics CSV", csv_text, file_name="drift_lab_metrics.csv", mime="text/csv",
                            key=prefix + "dl_csv", on_click="ignore", icon=":material/table:", width="stretch")
    cols[3].download_button("Config JSON", config_json(config), file_name="drift_lab_config.json",
                            mime="application/json", key=prefix + "dl_json", on_click="ignore",
                            icon=":material/data_object:", width="stretch",
                            help="python -m drift_core train --config drift_lab_config.json reproduces this run")
    if frames < 2:
        st.caption("GIF/MP4 export needs at least two kept frames: train a few more steps.")


# ---- estimator noise ----------------------------------------------------------------------------------
NOISE_RESAMPLES = 8
NOISE_PROBES = 48


def noise_layer(run, figure: dict, arrow_scale: float) -> EstimatorNoise | None:
    """Add the estimator-noise layer to a particle figure: for ``NOISE_PROBES`` particles, the V of each of
    ``NOISE_RESAMPLES`` fresh batches (thin orange arrows) and a circle of radius = the spread of V."""
    try:
        noise = estimator_noise(run.trainer, resamples=NOISE_RESAMPLES, probes=NOISE_PROBES, seed=run.step)
    except (ValueError, RuntimeError) as err:
        st.caption(f"Estimator noise unavailable: {err}")
        return None
    starts = np.repeat(noise.probes[None], noise.samples.shape[0], 0).reshape(-1, 2)
    vectors = noise.samples.reshape(-1, 2)
    ends = starts + arrow_scale * vectors
    seg = np.full((len(starts), 3, 2), np.nan)
    seg[:, 0], seg[:, 1] = starts, ends
    seg = seg.reshape(-1, 2)
    figure["data"].append({"type": "scattergl", "mode": "lines", "x": seg[:, 0], "y": seg[:, 1],
                           "name": f"V from {noise.samples.shape[0]} fresh batches", "hoverinfo": "skip",
                           "line": {"color": "rgba(227, 98, 9, 0.55)", "width": 1}})
    tips = noise.probes + arrow_scale * noise.mean
    figure["data"].append({"type": "scatter", "mode": "markers", "x": tips[:, 0], "y": tips[:, 1],
                           "name": "spread of V (circle radius)", "hoverinfo": "skip",
                           "marker": {"symbol": "circle-open", "color": "rgba(227, 98, 9, 0.9)",
                                      "size": np.clip(2 * arrow_scale * noise.spread * _px_per_unit(figure), 4, 80)}})
    return noise


def _px_per_unit(figure: dict) -> float:
    layout = figure.get("layout", {})
    x0, x1 = layout.get("xaxis", {}).get("range", [-1.5, 1.5])
    return 0.8 * float(layout.get("height", 480)) / max(float(x1 - x0), 1e-9)


def noise_caption(noise: EstimatorNoise) -> str:
    return (f"Estimator noise at N = {noise.batch_size}: the spread of V over {noise.samples.shape[0]} fresh "
            f"batches is {np.median(noise.spread):.2e} (median), {noise.noise_to_signal:.0%} of the size of V. "
            "Quadruple N to roughly halve it.")
