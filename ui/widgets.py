"""Sidebar controls keyed by config field names, and the URL (st.query_params) round trip.

One configuration per browser session lives in ``st.session_state["config"]``; it is read from the URL
on the session's first run (``drift_core.limits.config_from_query``: unknown keys ignored, bad values kept,
out-of-range values clamped, each with a notice) and written back to the URL after every change, so a
shared link reproduces the view. Widget keys are the config's flat field names (``K``, ``tau``,
``batch_size``...), which are also the URL parameter names.
"""
from __future__ import annotations

import streamlit as st

from drift_core.config import ConfigError, ExperimentConfig
from drift_core.limits import Limits, config_from_query
from drift_core.data.points import PointSetError, load_points
from drift_core.data.toy2d import SAMPLERS
from drift_core.lookahead import NEGATIVES, SCALINGS, WEIGHTINGS
from drift_core.scenarios import SCENARIOS as GUIDED

TAU_OPTIONS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0, 2.0)
LR_OPTIONS = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1, 0.2, 0.5, 1.0)
BATCH_OPTIONS = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
WIDTH_OPTIONS = (16, 32, 64, 128, 256, 512)
START_LABELS = {"default": "default (network init)", "between": "between the modes", "far": "far away",
                "collapsed": "collapsed onto one mode"}
START_CASES = {"start_between": "Between", "start_far": "Far away", "start_collapsed": "Collapsed"}
"""The paper's three start cases as sidebar pills: keys of :data:`drift_core.scenarios.SCENARIOS`."""
EXTRA_PARAMS = {"steps_per_frame": 5, "fairness": False}
"""Non-config settings that also live in the URL, with their defaults."""
VIEW_DEFAULTS = {**EXTRA_PARAMS, "layers": ["V"], "cmp_layers": ["V"], "arrow_scale": 3, "cmp_difference": True,
                 "inspect_n": 48}
"""Display settings kept per session beside the config (``view_settings``)."""


def limits() -> Limits:
    return Limits.from_env()


def load_config() -> ExperimentConfig:
    """The session's configuration; on the session's first run, read from the URL (notices kept in
    ``st.session_state["url_notices"]`` for the page to show)."""
    ss = st.session_state
    if "config" not in ss:
        params = st.query_params.to_dict()
        cfg, notices = config_from_query(ExperimentConfig(), params, limits())
        if cfg.data.dataset == "custom":
            notices.append("the link uses uploaded points, which are not part of a link: upload the CSV again")
        ss["config"] = cfg
        ss["url_notices"] = notices
        spf = params.get("steps_per_frame")
        try:
            set_view_setting("steps_per_frame", min(max(1, int(spf)), limits().max_steps_per_frame) if spf else 5)
        except ValueError:
            ss["url_notices"].append(f"ignored steps_per_frame={spf!r}: not a whole number")
        set_view_setting("fairness", str(params.get("fairness", "")).lower() in ("1", "true", "yes", "on"))
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


def _bind(config: ExperimentConfig, names) -> None:
    """Give each widget key its value from the session's config, on every script run.

    The config in ``st.session_state["config"]`` is the only copy of the settings: Streamlit drops
    the state of widgets a page does not draw (a sidebar page switch, a run cut short by a click), so a
    widget key must never be the place a setting lives. A widget's change reaches the config through
    its ``on_change`` callback (:func:`_commit`), which runs before the script; the value written here
    is then the one the user just chose."""
    flat = config.to_flat()
    for name in names:
        st.session_state[name] = flat[name]


def _commit(name: str, key: str | None = None) -> None:
    """on_change of a config widget (key ``key``, default the field's name): the config with this field
    set to the widget's value. A value the engine refuses keeps the previous config and says why."""
    ss = st.session_state
    try:
        cfg = ss["config"].with_values({name: ss[key or name]})
        limits().check(cfg)
    except ConfigError as err:
        ss["setting_error"] = f"Setting not applied: {err}"
        return
    ss["config"] = cfg
    ss["setting_error"] = ""


def view_setting(name: str):
    """A display setting kept beside the config (steps per frame, fairness arm, layers, arrow length)."""
    settings = st.session_state.setdefault("view_settings", dict(VIEW_DEFAULTS))
    return settings.get(name, VIEW_DEFAULTS.get(name))


def set_view_setting(name: str, value) -> None:
    st.session_state.setdefault("view_settings", dict(VIEW_DEFAULTS))[name] = value


def bind_view(name: str) -> dict:
    """Widget kwargs for a display setting: its key seeded from the view settings on every run and an
    on_change that stores the widget's value back (see :func:`_bind` for why)."""
    st.session_state[name] = view_setting(name)
    return {"key": name, "on_change": lambda: set_view_setting(name, st.session_state[name])}


def _field(name: str) -> dict:
    return {"key": name, "on_change": _commit, "args": (name,)}


def _options(base, key) -> list:
    return sorted(set(base) | {st.session_state[key]})


def _apply_start_case() -> None:
    """on_change of the start-case pills: the whole scenario configuration becomes the session's (its
    data, start, temperature, distance normalisation and budget), so a start case moves as it should."""
    ss = st.session_state
    name = ss.get("start_case")
    if name in GUIDED:
        ss["config"] = GUIDED[name].config
        ss["scenario_active"] = name
    ss["start_case"] = None


def _take_upload() -> None:
    """on_change of the CSV uploader: load and validate; on success switch to the uploaded data,
    on failure keep everything as it was and say why."""
    ss = st.session_state
    file = ss.get("upload_csv")
    if file is None:
        return
    try:
        notes: list[str] = []
        points = load_points(file.getvalue(), max_points=limits().max_upload_points, notes=notes)
    except PointSetError as err:
        ss["upload_error"] = f"Could not use {file.name}: {err}. Your previous data is unchanged."
        return
    ss["custom_points"] = points
    ss["custom_points_name"] = file.name + (f" ({'; '.join(notes)})" if notes else "")
    ss["custom_points_version"] = ss.get("custom_points_version", 0) + 1
    ss["upload_error"] = ""
    ss["config"] = ss["config"].with_values({"dataset": "custom"})


def data_controls(config: ExperimentConfig, *, upload: bool = True) -> None:
    """Reset controls: data, start scenario, architecture, seed."""
    sb = st.sidebar
    sb.markdown("#### :material/restart_alt: Restart the run when changed")
    sb.caption("Data, start, network and seed define a new run: changing one resets training.")
    _bind(config, ("dataset", "init", "width", "depth", "seed"))
    sb.pills("The paper's start cases (bimodal data)", list(START_CASES), key="start_case", format_func=START_CASES.get,
             on_change=_apply_start_case,
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
    sb.selectbox("Dataset", names, **_field("dataset"),
                 format_func=lambda d: "your uploaded points" if d == "custom" else d)
    sb.selectbox("Start", list(START_LABELS), **_field("init"), format_func=START_LABELS.get,
                 help="Where the generator's outputs start (the paper's three start cases use the bimodal data)")
    c1, c2 = sb.columns(2)
    c1.select_slider("Width", _options(WIDTH_OPTIONS, "width"), **_field("width"))
    c2.select_slider("Depth", _options(range(1, 7), "depth"), **_field("depth"))
    sb.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, **_field("seed"))


def training_controls(config: ExperimentConfig, *, lookahead_arm: bool = False, batch: bool = True,
                      speed: bool = True) -> None:
    """Live controls: K, temperature, batch size, learning rate, budget, steps per frame. With
    ``lookahead_arm`` (Compare), K is that of the lookahead arm (at least 1)."""
    lim = limits()
    sb = st.sidebar
    sb.markdown("#### :material/bolt: Applies live")
    sb.caption("These change the running trainer without a reset.")
    names = ["K", "tau", "multi_temperature", "batch_size", "lr", "steps",
             "alpha", "scaling", "weighting", "negatives", "attraction_only", "normalize_distance"]
    _bind(config, names)
    st.session_state["K"] = min(st.session_state["K"], lim.max_k)
    if lookahead_arm:
        st.session_state["lookahead_K"] = max(1, st.session_state["K"])
        sb.slider("K of the lookahead arm", 1, max(1, min(8, lim.max_k)), key="lookahead_K", on_change=_commit,
                  args=("K", "lookahead_K"), help="lookahead terms after the base term; the baseline arm has K = 0")
    else:
        sb.slider("K (lookahead terms; 0 = baseline)", 0, min(8, lim.max_k), **_field("K"),
                  help="K further drifting terms per step, each on the points moved by the ones before it")
    sb.select_slider("Temperature τ (log scale)", _options(TAU_OPTIONS, "tau"), **_field("tau"),
                     format_func=lambda v: f"{v:g}", help="kernel exp(−‖x−y‖/τ): the distance at which points still see each other")
    sb.toggle("Multi-temperature (τ × {0.4, 1, 4})", **_field("multi_temperature"))
    if batch:
        sb.select_slider("Batch size N", [b for b in _options(BATCH_OPTIONS, "batch_size") if b <= lim.max_batch]
                         or [st.session_state["batch_size"]], **_field("batch_size"))
    sb.select_slider("Learning rate (log scale)", _options(LR_OPTIONS, "lr"), **_field("lr"), format_func=lambda v: f"{v:g}")
    if speed:
        set_view_setting("steps_per_frame", min(view_setting("steps_per_frame"), lim.max_steps_per_frame))
        sb.slider("Steps per frame", 1, lim.max_steps_per_frame, **bind_view("steps_per_frame"),
                  help="training steps between two redraws")
    sb.number_input("Step budget", min_value=0, max_value=1_000_000, step=100, **_field("steps"),
                    help="training pauses by itself after this many steps")
    with sb.expander("More drift settings (live)"):
        st.slider("α (step between lookahead terms)", 0.0, 3.0, step=0.1, **_field("alpha"))
        st.selectbox("Term scaling", list(SCALINGS), **_field("scaling"))
        st.selectbox("Term weighting", list(WEIGHTINGS), **_field("weighting"))
        st.selectbox("Lookahead negatives", list(NEGATIVES), **_field("negatives"))
        st.toggle("Attraction only (ablation)", **_field("attraction_only"))
        st.toggle("Normalise distances", **_field("normalize_distance"))


def current_config() -> ExperimentConfig:
    """The session's config after this run's widget callbacks, with the message of a refused setting."""
    if st.session_state.get("setting_error"):
        st.sidebar.error(st.session_state["setting_error"])
    return st.session_state["config"]
