"""Sidebar controls keyed by config field names, and the URL (st.query_params) round trip.

One configuration per browser session lives in ``st.session_state["config"]``; it is read from the URL
on the session's first run (``ExperimentConfig.from_query``: unknown keys ignored, bad values kept,
out-of-range values clamped, each with a notice) and written back to the URL after every change, so a
shared link reproduces the view. Widget keys are the config's flat field names (``K``, ``tau``,
``batch_size``...), which are also the URL parameter names.
"""
from __future__ import annotations

import streamlit as st

from drift_core.config import PRESETS, ConfigError, ExperimentConfig, Limits
from drift_core.data.points import PointSetError, load_points
from drift_core.data.toy2d import SAMPLERS
from drift_core.lookahead import NEGATIVES, SCALINGS, WEIGHTINGS

TAU_OPTIONS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0, 2.0)
LR_OPTIONS = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1, 0.2, 0.5, 1.0)
BATCH_OPTIONS = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
WIDTH_OPTIONS = (16, 32, 64, 128, 256, 512)
START_LABELS = {"default": "default (network init)", "between": "between the modes", "far": "far away",
                "collapsed": "collapsed onto one mode"}
SCENARIOS = {"bimodal_between": "Between", "bimodal_far": "Far away", "bimodal_collapsed": "Collapsed"}
EXTRA_PARAMS = {"steps_per_frame": 5, "fairness": False}
"""Non-config settings that also live in the URL, with their defaults."""


def limits() -> Limits:
    return Limits.from_env()


def load_config() -> ExperimentConfig:
    """The session's configuration; on the session's first run, read from the URL (notices kept in
    ``st.session_state["url_notices"]`` for the page to show)."""
    ss = st.session_state
    if "config" not in ss:
        params = st.query_params.to_dict()
        cfg, notices = ExperimentConfig().from_query(params, limits())
        if cfg.data.dataset == "custom":
            notices.append("the link uses uploaded points, which are not part of a link: upload the CSV again")
        ss["config"] = cfg
        ss["url_notices"] = notices
        spf = params.get("steps_per_frame")
        try:
            ss["steps_per_frame"] = min(max(1, int(spf)), limits().max_steps_per_frame) if spf else 5
        except ValueError:
            ss["url_notices"].append(f"ignored steps_per_frame={spf!r}: not a whole number")
        ss["fairness"] = str(params.get("fairness", "")).lower() in ("1", "true", "yes", "on")
    return ss["config"]


def show_url_notices() -> None:
    notices = st.session_state.get("url_notices") or []
    if notices:
        st.info("Link settings adjusted: " + "; ".join(notices), icon=":material/link:")
        if st.button("Dismiss", key="dismiss_url_notices"):
            st.session_state["url_notices"] = []
            st.rerun()


def sync_url(config: ExperimentConfig, extras: dict | None = None) -> None:
    """Write the configuration (fields that differ from the defaults) and extras into the URL."""
    wanted = dict(config.to_query())
    for name, value in (extras or {}).items():
        if value != EXTRA_PARAMS.get(name):
            wanted[name] = str(value).lower() if isinstance(value, bool) else str(value)
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)


def _seed(config: ExperimentConfig, names) -> None:
    """Give each widget key its config value unless the widget already holds one."""
    flat = config.to_flat()
    for name in names:
        if name not in st.session_state:
            st.session_state[name] = flat[name]


def _options(base, key) -> list:
    return sorted(set(base) | {st.session_state[key]})


def _apply_scenario() -> None:
    """on_change of the scenario pills: set the preset's data, start, temperature and budget widgets."""
    name = st.session_state.get("scenario")
    if name not in PRESETS:
        return
    cfg = PRESETS[name].to_flat()
    for key in ("dataset", "init", "tau", "steps"):
        st.session_state[key] = cfg[key]
    st.session_state["scenario"] = None


def _take_upload() -> None:
    """on_change of the CSV uploader: load and validate; on success switch to the uploaded data,
    on failure keep everything as it was and say why."""
    ss = st.session_state
    file = ss.get("upload_csv")
    if file is None:
        return
    try:
        points = load_points(file.getvalue())
    except PointSetError as err:
        ss["upload_error"] = f"Could not use {file.name}: {err}. Your previous data is unchanged."
        return
    ss["custom_points"] = points
    ss["custom_points_name"] = file.name
    ss["custom_points_version"] = ss.get("custom_points_version", 0) + 1
    ss["upload_error"] = ""
    ss["dataset"] = "custom"


def data_controls(config: ExperimentConfig, *, upload: bool = True) -> None:
    """Reset controls: data, start scenario, architecture, seed."""
    sb = st.sidebar
    sb.markdown("#### :material/restart_alt: Restart the run when changed")
    sb.caption("Data, start, network and seed define a new run: changing one resets training.")
    _seed(config, ("dataset", "init", "width", "depth", "seed"))
    sb.pills("The paper's start cases (bimodal data)", list(SCENARIOS), key="scenario", format_func=SCENARIOS.get,
             on_change=_apply_scenario,
             help="Fig. 3 of the drifting paper: outputs start between the two modes, far away, or collapsed onto "
                  "one mode (dataset bimodal, τ = 0.1, 300 steps)")
    if upload:
        with sb.expander("Your own points (CSV of x,y rows)", expanded=False):
            st.file_uploader("CSV file", type=["csv", "txt"], key="upload_csv", on_change=_take_upload)
            if st.session_state.get("custom_points") is not None:
                st.caption(f"Loaded {len(st.session_state['custom_points']):,} points from "
                           f"{st.session_state.get('custom_points_name', 'your file')}.")
    if st.session_state.get("upload_error"):
        sb.error(st.session_state["upload_error"], icon=":material/upload_file:")
    names = list(SAMPLERS) + ["custom"]
    sb.selectbox("Dataset", names, key="dataset",
                 format_func=lambda d: "your uploaded points" if d == "custom" else d)
    sb.selectbox("Start", list(START_LABELS), key="init", format_func=START_LABELS.get,
                 help="Where the generator's outputs start (the paper's three start cases use the bimodal data)")
    c1, c2 = sb.columns(2)
    c1.select_slider("Width", _options(WIDTH_OPTIONS, "width"), key="width")
    c2.select_slider("Depth", _options(range(1, 7), "depth"), key="depth")
    sb.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key="seed")


def training_controls(config: ExperimentConfig, *, method: bool = True, batch: bool = True, speed: bool = True) -> None:
    """Live controls: method, K, temperature, batch size, learning rate, budget, steps per frame."""
    lim = limits()
    sb = st.sidebar
    sb.markdown("#### :material/bolt: Applies live")
    sb.caption("These change the running trainer without a reset.")
    names = ["method", "K", "tau", "multi_temperature", "batch_size", "lr", "steps",
             "alpha", "scaling", "weighting", "negatives", "attraction_only", "normalize_distance", "gamma", "lam"]
    _seed(config, names)
    if st.session_state["K"] > lim.max_k:
        st.session_state["K"] = lim.max_k
    if method:
        sb.radio("Method", ["baseline", "lookahead"], key="method", horizontal=True,
                 help="lookahead computes K further drifting terms per step (K = 0 is the baseline)")
    sb.slider("K (lookahead terms)", 0, min(8, lim.max_k), key="K",
              help="Used when the method is lookahead" if method else "K of the lookahead arm")
    sb.select_slider("Temperature τ (log scale)", _options(TAU_OPTIONS, "tau"), key="tau",
                     format_func=lambda v: f"{v:g}", help="kernel exp(−‖x−y‖/τ): the distance at which points still see each other")
    sb.toggle("Multi-temperature (τ × {0.4, 1, 4})", key="multi_temperature")
    if batch:
        sb.select_slider("Batch size N", [b for b in _options(BATCH_OPTIONS, "batch_size") if b <= lim.max_batch]
                         or [st.session_state["batch_size"]], key="batch_size")
    sb.select_slider("Learning rate (log scale)", _options(LR_OPTIONS, "lr"), key="lr", format_func=lambda v: f"{v:g}")
    if speed:
        if st.session_state.get("steps_per_frame", 5) > lim.max_steps_per_frame:
            st.session_state["steps_per_frame"] = lim.max_steps_per_frame
        sb.slider("Steps per frame", 1, lim.max_steps_per_frame, key="steps_per_frame",
                  help="training steps between two redraws")
    sb.number_input("Step budget", min_value=0, max_value=1_000_000, step=100, key="steps",
                    help="training pauses by itself after this many steps")
    with sb.expander("More drift settings (live)"):
        st.slider("α (step between lookahead terms)", 0.0, 3.0, step=0.1, key="alpha")
        st.selectbox("Term scaling", list(SCALINGS), key="scaling")
        st.selectbox("Term weighting", list(WEIGHTINGS), key="weighting")
        st.selectbox("Lookahead negatives", list(NEGATIVES), key="negatives")
        st.toggle("Attraction only (ablation)", key="attraction_only")
        st.toggle("Normalise distances", key="normalize_distance")


def config_from_widgets(config: ExperimentConfig) -> ExperimentConfig:
    """The config with every field whose widget exists in this run replaced by the widget's value.
    A value the engine refuses keeps the previous config (with a message)."""
    from drift_core.config import flat_field_names

    values = {name: st.session_state[name] for name in flat_field_names() if name in st.session_state}
    try:
        cfg = config.with_values(values)
        limits().check(cfg)
    except ConfigError as err:
        st.sidebar.error(f"Setting not applied: {err}")
        return config
    st.session_state["config"] = cfg
    return cfg
